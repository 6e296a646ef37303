//! TLS server configuration from PEM files (rustls, ring provider).

use std::fs::File;
use std::io::BufReader;
use std::sync::Arc;

use anyhow::Context;
use tokio_rustls::TlsAcceptor;

use crate::config::TlsFiles;

/// Builds a TLS acceptor from the certificate chain and private key files.
pub fn acceptor(files: &TlsFiles) -> anyhow::Result<TlsAcceptor> {
    let certs = {
        let file = File::open(&files.cert)
            .with_context(|| format!("opening tls-cert {}", files.cert.display()))?;
        rustls_pemfile::certs(&mut BufReader::new(file))
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("reading tls-cert {}", files.cert.display()))?
    };
    anyhow::ensure!(
        !certs.is_empty(),
        "tls-cert {}: no certificate found",
        files.cert.display()
    );
    let key = {
        let file = File::open(&files.key)
            .with_context(|| format!("opening tls-key {}", files.key.display()))?;
        rustls_pemfile::private_key(&mut BufReader::new(file))
            .with_context(|| format!("reading tls-key {}", files.key.display()))?
            .with_context(|| format!("tls-key {}: no private key found", files.key.display()))?
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("tls-cert and tls-key do not form a usable pair")?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
