//! The TLS handshake of `stuns:` and `turns:` (RFC 8489 §6.2.3, RFC 8656 §3.1), with the
//! server's certificate kept for the report: its names and how many days it has left, even
//! when it does not verify; the same trust for DTLS (`turns:…?transport=udp`, RFC 7350).
//!
//! Verification is rustls' own (webpki, the ring provider); a wrapper records the chain and
//! the verdict, and with `--insecure` lets the handshake go on after a failure, so that the
//! TURN steps can still be checked.

use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use x509_parser::extensions::GeneralName;

use super::report::CertificateFacts;
use crate::client::dtls_session;

/// What the verifier saw in the handshake.
#[derive(Debug, Default)]
struct Seen {
    /// The chain the server sent, leaf first.
    chain: Vec<CertificateDer<'static>>,
    /// Why it did not verify.
    error: Option<rustls::Error>,
}

/// rustls' verifier, recording what it was shown and how it judged it.
#[derive(Debug)]
struct Recording {
    inner: Arc<WebPkiServerVerifier>,
    insecure: bool,
    seen: Mutex<Seen>,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let result = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        if let Ok(mut seen) = self.seen.lock() {
            seen.chain = std::iter::once(end_entity)
                .chain(intermediates)
                .map(|c| c.clone().into_owned())
                .collect();
            seen.error = result.as_ref().err().cloned();
        }
        match result {
            Err(_) if self.insecure => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Why the certificate was refused, as far as the diagnosis cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertProblem {
    /// It is not valid for the host of the URI.
    NameMismatch,
    /// It has expired (or is not valid yet).
    Expired,
    /// It is not signed by a trusted CA (self-signed, or a private CA without --ca-file).
    UnknownIssuer,
    /// It is a CA certificate presented as the server's own (what `openssl req -x509` makes
    /// unless told `basicConstraints=CA:FALSE`).
    CaAsLeaf,
    /// Anything else.
    Other,
}

/// The result of a handshake.
#[derive(Debug)]
pub struct Handshake {
    /// The session, when the handshake completed (with `--insecure`, also after a
    /// certificate failure).
    pub stream: Option<TlsStream<TcpStream>>,
    /// The certificate, when the server sent one.
    pub certificate: Option<CertificateFacts>,
    /// Why the certificate did not verify.
    pub problem: Option<CertProblem>,
    /// Why the handshake failed, when it did.
    pub error: Option<String>,
}

/// TLS and DTLS settings shared by the checks of one run.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    roots: Arc<rustls::RootCertStore>,
    /// `ca_file`'s certificates, which DTLS trusts as they are (as `turnpike stun` does:
    /// [`crate::client::dtls_session`]).
    pinned: Arc<Vec<CertificateDer<'static>>>,
    insecure: bool,
}

impl TlsSettings {
    /// Trusts `ca_file`'s certificates, or the public CAs.
    pub fn new(ca_file: Option<&Path>, insecure: bool) -> anyhow::Result<TlsSettings> {
        Ok(TlsSettings {
            roots: Arc::new(crate::tls::client_roots(ca_file)?),
            pinned: Arc::new(dtls_session::pinned_certificates(ca_file)?),
            insecure,
        })
    }

    /// Go on after a certificate that does not verify (`--insecure`).
    pub fn insecure(&self) -> bool {
        self.insecure
    }

    /// The DTLS client's check of the certificate of `host`, with the same trust.
    pub fn dtls_verifier(&self, host: &str) -> anyhow::Result<dtls_session::Verifier> {
        dtls_session::Verifier::with_trust(host, self.roots.clone(), self.pinned.clone())
    }

    /// Runs the handshake over `tcp` for `host` (a name, or an IP literal checked against
    /// the certificate's IP addresses).
    pub async fn handshake(
        &self,
        tcp: TcpStream,
        host: &str,
        unix_now: i64,
    ) -> anyhow::Result<Handshake> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let inner =
            WebPkiServerVerifier::builder_with_provider(self.roots.clone(), provider.clone())
                .build()
                .context("TLS certificate verifier")?;
        let verifier = Arc::new(Recording {
            inner,
            insecure: self.insecure,
            seen: Mutex::new(Seen::default()),
        });
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone())
            .with_no_client_auth();
        let name = match host.parse::<IpAddr>() {
            Ok(ip) => ServerName::IpAddress(ip.into()),
            Err(_) => ServerName::try_from(host.to_owned())
                .with_context(|| format!("\"{host}\" is not a valid TLS server name"))?,
        };
        let result = TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await;
        let seen = match verifier.seen.lock() {
            Ok(mut seen) => std::mem::take(&mut *seen),
            Err(_) => Seen::default(),
        };
        let problem = seen.error.as_ref().map(problem_of);
        let certificate = seen.chain.first().map(|leaf| {
            let mut facts = certificate_facts(leaf, unix_now);
            facts.chain_len = seen.chain.len();
            facts.error = seen.error.as_ref().map(ToString::to_string);
            facts
        });
        let (stream, error) = match result {
            Ok(stream) => (Some(stream), None),
            Err(error) => (None, Some(error.to_string())),
        };
        Ok(Handshake {
            stream,
            certificate,
            problem,
            error,
        })
    }
}

/// The diagnosis' view of a verification error.
pub fn problem_of(error: &rustls::Error) -> CertProblem {
    match error {
        rustls::Error::InvalidCertificate(e) => match e {
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                CertProblem::NameMismatch
            }
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => CertProblem::Expired,
            CertificateError::UnknownIssuer => CertProblem::UnknownIssuer,
            // webpki's CaUsedAsEndEntity reaches us wrapped in an opaque `Other`; its name is
            // the only handle without depending on webpki itself.
            CertificateError::Other(other)
                if format!("{other:?}").contains("CaUsedAsEndEntity") =>
            {
                CertProblem::CaAsLeaf
            }
            _ => CertProblem::Other,
        },
        _ => CertProblem::Other,
    }
}

/// Names and expiry of a DER certificate; an unparsable one has no names and 0 days.
pub fn certificate_facts(der: &[u8], unix_now: i64) -> CertificateFacts {
    let mut facts = CertificateFacts {
        names: Vec::new(),
        expires_in_days: 0,
        chain_len: 1,
        error: None,
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return facts;
    };
    let not_after = cert.validity().not_after.timestamp();
    // Whole days, towards zero: "expired 1 day ago" for 25 hours.
    facts.expires_in_days = (not_after - unix_now) / 86_400;
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(dns) => facts.names.push((*dns).to_owned()),
                GeneralName::IPAddress(bytes) => {
                    let ip = match bytes.len() {
                        4 => <[u8; 4]>::try_from(*bytes).ok().map(IpAddr::from),
                        16 => <[u8; 16]>::try_from(*bytes).ok().map(IpAddr::from),
                        _ => None,
                    };
                    facts.names.extend(ip.map(|ip| ip.to_string()));
                }
                _ => {}
            }
        }
    }
    if facts.names.is_empty() {
        let cn = cert.subject().iter_common_name().next();
        facts
            .names
            .extend(cn.and_then(|cn| cn.as_str().ok()).map(str::to_owned));
    }
    facts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_days_are_read_from_the_certificate() {
        let mut params =
            rcgen::CertificateParams::new(vec!["turn.example.org".to_owned()]).unwrap();
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress("192.0.2.1".parse().unwrap()));
        params.not_after = rcgen::date_time_ymd(2030, 1, 11);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        // 2030-01-01T00:00:00Z: ten days before it expires.
        let facts = certificate_facts(cert.der(), 1_893_456_000);
        assert_eq!(facts.names, ["turn.example.org", "192.0.2.1"]);
        assert_eq!(facts.expires_in_days, 10);
        // 25 hours after it expired: a day ago.
        let facts = certificate_facts(cert.der(), 1_893_456_000 + 11 * 86_400 + 3600);
        assert_eq!(facts.expires_in_days, -1);
        assert!(certificate_facts(b"junk", 0).names.is_empty());
    }
}
