//! The QUIC identity of a p2p peer: a self-signed certificate made for this run, and TLS
//! verifiers that accept exactly the certificate whose fingerprint the other peer announced
//! through signaling — the trust model of WebRTC's DTLS (RFC 8827 §6.5, `a=fingerprint` of
//! RFC 8122). Nothing else is trusted: no CA, no name check.
//!
//! Signatures are still verified (rustls' own code with the ring provider), so a peer must hold
//! the private key of the announced certificate. Both sides present a certificate (mutual
//! authentication), and only TLS 1.3 is offered (QUIC requires it, RFC 9001 §4.2).

use std::fmt::Write as _;
use std::sync::Arc;

use anyhow::Context;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use sha2::{Digest, Sha256};

/// The ALPN protocol both sides offer, so that a QUIC peer of another application fails the
/// handshake rather than misread our streams.
pub const ALPN: &[u8] = b"turnpike-p2p/1";
/// The name the client asks for; the verifier ignores it (fingerprints identify peers).
pub const SERVER_NAME: &str = "turnpike-p2p";

/// This run's certificate and key.
#[derive(Debug)]
pub struct Identity {
    certificate: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
}

impl Identity {
    /// A fresh self-signed certificate (ECDSA P-256, from rcgen).
    pub fn generate() -> anyhow::Result<Self> {
        let certified = rcgen::generate_simple_self_signed(vec![SERVER_NAME.to_owned()])
            .context("cannot make a certificate")?;
        Ok(Identity {
            certificate: certified.cert.der().clone(),
            key: PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()),
        })
    }

    /// `sha-256 AB:CD:…` of the certificate, as SDP writes it.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.certificate)
    }

    /// The QUIC client configuration: present our certificate, accept only `peer_fingerprint`.
    pub fn client_config(&self, peer_fingerprint: &str) -> anyhow::Result<quinn::ClientConfig> {
        let verifier = Arc::new(PinnedPeer::new(peer_fingerprint));
        let mut tls = rustls::ClientConfig::builder_with_provider(verifier.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(vec![self.certificate.clone()], self.private_key())?;
        tls.alpn_protocols = vec![ALPN.to_vec()];
        let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)?;
        Ok(quinn::ClientConfig::new(Arc::new(crypto)))
    }

    /// The QUIC server configuration: require a client certificate matching
    /// `peer_fingerprint`.
    pub fn server_config(&self, peer_fingerprint: &str) -> anyhow::Result<quinn::ServerConfig> {
        let verifier = Arc::new(PinnedPeer::new(peer_fingerprint));
        let mut tls = rustls::ServerConfig::builder_with_provider(verifier.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![self.certificate.clone()], self.private_key())?;
        tls.alpn_protocols = vec![ALPN.to_vec()];
        let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)?;
        Ok(quinn::ServerConfig::with_crypto(Arc::new(crypto)))
    }

    fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key.clone_key())
    }
}

/// `sha-256 AB:CD:…` (RFC 8122 §5) of a DER certificate.
pub fn fingerprint(certificate: &[u8]) -> String {
    let digest = Sha256::digest(certificate);
    let mut text = String::from("sha-256 ");
    for (i, byte) in digest.iter().enumerate() {
        if i > 0 {
            text.push(':');
        }
        let _ = write!(text, "{byte:02X}");
    }
    text
}

/// Accepts exactly one certificate: the one with the announced fingerprint.
#[derive(Debug)]
struct PinnedPeer {
    expected: String,
    provider: Arc<CryptoProvider>,
}

impl PinnedPeer {
    fn new(expected: &str) -> Self {
        PinnedPeer {
            // RFC 8122 §5: hex digits are upper case, but compare case-insensitively.
            expected: expected.trim().to_ascii_uppercase(),
            provider: Arc::new(rustls::crypto::ring::default_provider()),
        }
    }

    fn check(&self, certificate: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        // The fingerprint is public, so a timing difference reveals nothing secret.
        if fingerprint(certificate).to_ascii_uppercase() == self.expected {
            Ok(())
        } else {
            Err(rustls::Error::General(
                "the peer's certificate does not match the fingerprint it announced".into(),
            ))
        }
    }
}

/// The signature checks both verifier traits need, the same for both: rustls' own
/// verification with the ring provider's algorithms.
macro_rules! signature_checks {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls12_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls13_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.provider
                .signature_verification_algorithms
                .supported_schemes()
        }
    };
}

impl ServerCertVerifier for PinnedPeer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity)
            .map(|()| ServerCertVerified::assertion())
    }

    signature_checks!();
}

impl ClientCertVerifier for PinnedPeer {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity)
            .map(|()| ClientCertVerified::assertion())
    }

    signature_checks!();
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::net::{Ipv4Addr, SocketAddr};

    /// A QUIC handshake between two real endpoints on loopback, each pinning the fingerprint
    /// it is given for the other.
    async fn handshake(
        client: &Identity,
        server: &Identity,
        client_expects: &str,
        server_expects: &str,
    ) -> anyhow::Result<()> {
        let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let server_endpoint =
            quinn::Endpoint::server(server.server_config(server_expects)?, loopback)?;
        let server_addr = server_endpoint.local_addr()?;
        let accept = tokio::spawn(async move {
            let incoming = server_endpoint.accept().await.unwrap();
            incoming.await.map(|_| ())
        });
        let mut client_endpoint = quinn::Endpoint::client(loopback)?;
        client_endpoint.set_default_client_config(client.client_config(client_expects)?);
        let connecting = client_endpoint.connect(server_addr, SERVER_NAME)?;
        let client_result = tokio::time::timeout(std::time::Duration::from_secs(10), connecting)
            .await?
            .map(|_| ());
        let server_result =
            tokio::time::timeout(std::time::Duration::from_secs(10), accept).await??;
        client_result?;
        server_result?;
        Ok(())
    }

    #[test]
    fn fingerprints_are_sdp_style_sha256() {
        // RFC 8122 §5: "sha-256" then 32 upper-case hex pairs joined by colons.
        let text = fingerprint(b"abc");
        assert_eq!(
            text,
            "sha-256 BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD"
        );
    }

    #[tokio::test]
    async fn peers_with_the_announced_certificates_connect() {
        let (a, b) = (Identity::generate().unwrap(), Identity::generate().unwrap());
        handshake(&a, &b, &b.fingerprint(), &a.fingerprint().to_lowercase())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_server_with_another_certificate_is_refused() {
        let (a, b, mallory) = (
            Identity::generate().unwrap(),
            Identity::generate().unwrap(),
            Identity::generate().unwrap(),
        );
        // The client expects b, but mallory answers.
        let error = handshake(&a, &mallory, &b.fingerprint(), &a.fingerprint())
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("certificate"), "{error}");
    }

    #[tokio::test]
    async fn a_client_with_another_certificate_is_refused() {
        let (a, b, mallory) = (
            Identity::generate().unwrap(),
            Identity::generate().unwrap(),
            Identity::generate().unwrap(),
        );
        // The server expects a, but mallory calls.
        let error = handshake(&mallory, &b, &b.fingerprint(), &a.fingerprint())
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("certificate"), "{error}");
    }
}
