//! The TLS client of `turnpike p2p`'s `wss://` signaling: rustls with the ring provider (as
//! everywhere else in Turnpike), trusting the public web CAs (webpki-roots), or with
//! `--ca-file` only the certificates of that file: a private CA, or the server's own
//! self-signed certificate. Like curl's `--cacert`, the file replaces the public CAs rather
//! than adding to them, so a private deployment trusts nothing else.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tokio_tungstenite::Connector;

/// The WebSocket handshake is an HTTP/1.1 request (RFC 6455 §4.1).
const ALPN_HTTP_1_1: &[u8] = b"http/1.1";

/// A connector for `wss://` URLs trusting `ca_file`'s certificates, or the public CAs.
pub fn connector(ca_file: Option<&Path>) -> anyhow::Result<Connector> {
    let roots = crate::tls::client_roots(ca_file)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN_HTTP_1_1.to_vec()];
    Ok(Connector::Rustls(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_ca_file_without_certificates_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate").unwrap();
        let error = format!("{:#}", connector(Some(&path)).err().unwrap());
        assert!(
            error.contains("--ca-file") && error.contains("ca.pem"),
            "{error}"
        );
        let missing = dir.path().join("missing.pem");
        let error = format!("{:#}", connector(Some(&missing)).err().unwrap());
        assert!(
            error.contains("--ca-file") && error.contains("missing.pem"),
            "{error}"
        );
        assert!(connector(None).is_ok());
    }
}
