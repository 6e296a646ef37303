//! TLS server certificates from PEM files (rustls, ring provider), reloadable while serving.
//!
//! A [`CertStore`] holds the certificate chain and key read from a pair of files and hands
//! them to every new handshake (it is the rustls certificate resolver). [`CertStore::reload`]
//! re-reads the files and swaps the pair in one step when they parse and match; handshakes
//! that start afterwards present the new certificate, while connections already established
//! keep the session keys they negotiated and are not touched. A renewal (certbot and the like
//! replace the files, then signal the server) thus drops nobody. (A client that resumes a TLS
//! session begun before the reload is not shown a certificate at all, as TLS intends: the
//! session's keys were authenticated when it began.)
//!
//! Errors name the configuration key (`tls-cert`, `tls-key`, or the HTTPS pair) and the path,
//! never key material.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

use crate::config::{Config, TlsFiles};
use crate::server::dtls::DtlsIdentity;

/// The configuration keys a pair of files came from, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyNames {
    /// The key naming the certificate chain file, such as `tls-cert`.
    pub cert: &'static str,
    /// The key naming the private key file, such as `tls-key`.
    pub key: &'static str,
}

impl KeyNames {
    /// `tls-cert` and `tls-key`: the files of the `turns:` listeners.
    pub const TLS: KeyNames = KeyNames {
        cert: "tls-cert",
        key: "tls-key",
    };
    /// `https-cert` and `https-key`: the HTTPS listeners' own files.
    pub const HTTPS: KeyNames = KeyNames {
        cert: "https-cert",
        key: "https-key",
    };
}

/// Every certificate store of the server, so that one call reloads them all (SIGHUP, admin).
#[derive(Debug, Clone, Default)]
pub struct Certificates {
    /// `tls-cert`/`tls-key`: the `turns:` listeners.
    pub turn: Option<Arc<CertStore>>,
    /// The HTTPS listeners': the same store as `turn` when they share the files.
    pub https: Option<Arc<CertStore>>,
    /// The DTLS listeners' (`tls-cert`/`tls-key` too), when DTLS is on and can use the key.
    pub dtls: Option<Arc<DtlsIdentity>>,
}

impl Certificates {
    /// Reads the certificate files of `config`; fails on the first unusable pair. A key DTLS
    /// cannot use (RSA: `dimpl` signs with ECDSA only) leaves DTLS off with a warning rather
    /// than failing a server whose TLS works.
    pub fn load(config: &Config) -> anyhow::Result<Certificates> {
        let turn = config
            .tls
            .as_ref()
            .map(|files| CertStore::load(files, KeyNames::TLS))
            .transpose()?;
        let https = match &config.https {
            None => None,
            Some(files) if config.tls.as_ref() == Some(files) => turn.clone(),
            Some(files) => Some(CertStore::load(files, KeyNames::HTTPS)?),
        };
        let dtls = match config
            .tls
            .as_ref()
            .filter(|_| !config.dtls_addresses().is_empty())
        {
            None => None,
            Some(files) => match DtlsIdentity::load(files, config.tcp_frame_timeout) {
                Ok(identity) => Some(Arc::new(identity)),
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "DTLS off");
                    None
                }
            },
        };
        Ok(Certificates { turn, https, dtls })
    }

    /// Re-reads every certificate and key file ([`CertStore::reload`]): each pair that parses
    /// and matches replaces its predecessor for new handshakes, each one that does not keeps
    /// the old one. DTLS takes `tls-cert`/`tls-key` only once TLS has accepted them as a pair
    /// (rustls checks that the key is the certificate's; `dimpl` does not). The error lists
    /// every pair that failed.
    pub fn reload(&self) -> anyhow::Result<()> {
        let mut errors = Vec::new();
        for store in self.stores() {
            let mut result = store.reload();
            let is_turn = self.turn.as_ref().is_some_and(|t| Arc::ptr_eq(t, store));
            if let (Ok(()), true, Some(dtls)) = (&result, is_turn, &self.dtls) {
                result = dtls.reload();
            }
            if let Err(e) = result {
                errors.push(format!("{e:#}"));
            }
        }
        match errors.is_empty() {
            true => Ok(()),
            false => Err(anyhow::anyhow!(errors.join("; "))),
        }
    }

    /// Each distinct store once.
    fn stores(&self) -> impl Iterator<Item = &Arc<CertStore>> {
        let shared = |https: &&Arc<CertStore>| {
            self.turn
                .as_ref()
                .is_some_and(|turn| Arc::ptr_eq(turn, https))
        };
        self.turn
            .iter()
            .chain(self.https.iter().filter(move |https| !shared(https)))
    }
}

/// The certificate and key that new TLS handshakes present, re-read from their files on
/// [`CertStore::reload`].
#[derive(Debug)]
pub struct CertStore {
    files: TlsFiles,
    names: KeyNames,
    provider: Arc<CryptoProvider>,
    /// Read by every handshake without a lock; replaced whole by `reload`.
    current: ArcSwap<CertifiedKey>,
}

impl CertStore {
    /// Reads the files; fails (naming the key and path) when either cannot be read or parsed,
    /// or when the key is not the certificate's.
    pub fn load(files: &TlsFiles, names: KeyNames) -> anyhow::Result<Arc<CertStore>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let current = read_pair(files, names, &provider)?;
        Ok(Arc::new(CertStore {
            files: files.clone(),
            names,
            provider,
            current: ArcSwap::from_pointee(current),
        }))
    }

    /// Re-reads the certificate and key files and, when they parse and match, makes new
    /// handshakes present them. On any error the certificate in use stays, and the error says
    /// which key and file are at fault. Established connections are never affected.
    ///
    /// Safe to call from any thread at any time (SIGHUP handler, admin API).
    pub fn reload(&self) -> anyhow::Result<()> {
        let fresh = read_pair(&self.files, self.names, &self.provider)?;
        self.current.store(Arc::new(fresh));
        Ok(())
    }

    /// An acceptor whose handshakes use this store's current certificate and offer the ALPN
    /// protocols `alpn` (most preferred first; none: no ALPN).
    pub fn acceptor(self: &Arc<Self>, alpn: &[&[u8]]) -> anyhow::Result<TlsAcceptor> {
        let mut config = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// Reads and checks the certificate chain and key of `files`.
fn read_pair(
    files: &TlsFiles,
    names: KeyNames,
    provider: &CryptoProvider,
) -> anyhow::Result<CertifiedKey> {
    let certs = read_certs(&files.cert, names.cert)?;
    let key = read_key(&files.key, names.key)?;
    // `from_der` checks that the key is the leaf certificate's; the rustls error says only
    // what is wrong ("key mismatch", an unsupported algorithm), never the key itself.
    CertifiedKey::from_der(certs, key, provider).with_context(|| {
        format!(
            "{} {} and {} {} do not form a usable pair",
            names.cert,
            files.cert.display(),
            names.key,
            files.key.display()
        )
    })
}

/// The certificates of a PEM file, leaf first; at least one. `key` names the setting that
/// gave `path`, for errors.
pub fn read_certs(path: &Path, key: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let file = File::open(path).with_context(|| format!("opening {key} {}", path.display()))?;
    let certs = rustls_pemfile::certs(&mut BufReader::new(file))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("reading {key} {}", path.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "{key} {}: no certificate found",
        path.display()
    );
    Ok(certs)
}

/// The certificates a TLS client trusts (`turnpike p2p`'s `wss://`, `turnpike check`'s
/// `turns:`): the public web CAs (webpki-roots), or with `--ca-file` only the certificates of
/// that file. Like curl's `--cacert`, the file replaces the public CAs rather than adding to
/// them, so a private deployment trusts nothing else.
pub fn client_roots(ca_file: Option<&Path>) -> anyhow::Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(path) => {
            for cert in read_certs(path, "--ca-file")? {
                roots.add(cert).with_context(|| {
                    format!("--ca-file {}: unusable certificate", path.display())
                })?;
            }
        }
    }
    Ok(roots)
}

/// The first private key of a PEM file.
pub fn read_key(path: &Path, key: &str) -> anyhow::Result<PrivateKeyDer<'static>> {
    let file = File::open(path).with_context(|| format!("opening {key} {}", path.display()))?;
    rustls_pemfile::private_key(&mut BufReader::new(file))
        .with_context(|| format!("reading {key} {}", path.display()))?
        .with_context(|| format!("{key} {}: no private key found", path.display()))
}

#[cfg(test)]
mod tests;
