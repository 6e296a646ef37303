//! Reloading a [`CertStore`] under a live TLS listener: new handshakes see the new
//! certificate, an established connection keeps working, bad files keep the old certificate.

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::*;

/// A fresh self-signed certificate for "localhost": (certificate PEM, key PEM, DER).
fn generate() -> (String, String, CertificateDer<'static>) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    (
        certified.cert.pem(),
        certified.key_pair.serialize_pem(),
        certified.cert.der().clone(),
    )
}

fn write(files: &TlsFiles, cert: &str, key: &str) {
    std::fs::write(&files.cert, cert).unwrap();
    std::fs::write(&files.key, key).unwrap();
}

/// Accepts TLS connections on a loopback port and echoes what each sends.
async fn echo_server(store: &Arc<CertStore>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = store.acceptor(&[]).unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = [0u8; 64];
                while let Ok(n @ 1..) = tls.read(&mut buf).await {
                    if tls.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// A client trusting every certificate in `trusted`. It never resumes a session: a resumed
/// session reports the certificate of the session it resumes, not the one now in use.
fn connector(trusted: &[&CertificateDer<'static>]) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in trusted {
        roots.add((*cert).clone()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    TlsConnector::from(Arc::new(config))
}

/// Connects and returns the stream and the leaf certificate the server presented.
async fn connect(
    connector: &TlsConnector,
    addr: SocketAddr,
) -> (TlsStream<TcpStream>, CertificateDer<'static>) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let tls = tokio::time::timeout(Duration::from_secs(10), connector.connect(name, tcp))
        .await
        .unwrap()
        .unwrap();
    let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    (tls, leaf)
}

/// Sends `message` and expects it back.
async fn echo(tls: &mut TlsStream<TcpStream>, message: &[u8]) {
    tls.write_all(message).await.unwrap();
    let mut back = vec![0u8; message.len()];
    tokio::time::timeout(Duration::from_secs(10), tls.read_exact(&mut back))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back, message);
}

fn files_in(dir: &Path) -> TlsFiles {
    TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    }
}

#[tokio::test]
async fn reload_swaps_the_certificate_for_new_handshakes_only() {
    let dir = tempfile::tempdir().unwrap();
    let files = files_in(dir.path());
    let (cert_a, key_a, der_a) = generate();
    let (cert_b, key_b, der_b) = generate();
    write(&files, &cert_a, &key_a);
    let store = CertStore::load(&files, KeyNames::TLS).unwrap();
    let addr = echo_server(&store).await;
    let client = connector(&[&der_a, &der_b]);

    let (mut old, leaf) = connect(&client, addr).await;
    assert_eq!(leaf, der_a);
    echo(&mut old, b"before").await;

    write(&files, &cert_b, &key_b);
    store.reload().unwrap();
    let (mut new, leaf) = connect(&client, addr).await;
    assert_eq!(
        leaf, der_b,
        "a handshake after reload sees the new certificate"
    );
    echo(&mut new, b"new").await;
    echo(&mut old, b"the old connection goes on").await;
}

#[tokio::test]
async fn bad_files_keep_the_old_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let files = files_in(dir.path());
    let (cert_a, key_a, der_a) = generate();
    let (cert_b, key_b, _) = generate();
    write(&files, &cert_a, &key_a);
    let store = CertStore::load(&files, KeyNames::TLS).unwrap();
    let addr = echo_server(&store).await;
    let client = connector(&[&der_a]);

    // A certificate file being rewritten (empty), a key file that is not PEM, a key that is
    // not the certificate's, a missing file: each refused, naming the key and the path.
    let cases: [(&str, &str, &str); 3] = [
        ("", &key_a, "tls-cert"),
        (&cert_a, "not a key", "tls-key"),
        (&cert_b, &key_a, "do not form a usable pair"),
    ];
    for (cert, key, expected) in cases {
        write(&files, cert, key);
        let error = format!("{:#}", store.reload().unwrap_err());
        assert!(error.contains(expected), "{error}");
        assert!(error.contains(&files.cert.display().to_string()) || expected == "tls-key");
        assert!(!error.contains("PRIVATE KEY"), "no key material: {error}");
        let (mut tls, leaf) = connect(&client, addr).await;
        assert_eq!(leaf, der_a, "the old certificate stays after: {error}");
        echo(&mut tls, b"still served").await;
    }
    std::fs::remove_file(&files.key).unwrap();
    let error = format!("{:#}", store.reload().unwrap_err());
    assert!(error.contains("tls-key") && error.contains(&files.key.display().to_string()));
    assert!(!error.contains(&key_b));
    let (_, leaf) = connect(&client, addr).await;
    assert_eq!(leaf, der_a);
}

#[test]
fn https_shares_the_tls_store_unless_it_has_its_own_files() {
    let dir = tempfile::tempdir().unwrap();
    let turn = files_in(dir.path());
    let (cert, key, _) = generate();
    write(&turn, &cert, &key);
    let mut config = Config {
        tls: Some(turn.clone()),
        https: Some(turn.clone()),
        ..Config::default()
    };
    let shared = Certificates::load(&config).unwrap();
    assert!(Arc::ptr_eq(
        shared.turn.as_ref().unwrap(),
        shared.https.as_ref().unwrap()
    ));
    assert_eq!(shared.stores().count(), 1, "one store, reloaded once");

    let web_dir = tempfile::tempdir().unwrap();
    let web = files_in(web_dir.path());
    let (cert, key, _) = generate();
    write(&web, &cert, &key);
    config.https = Some(web.clone());
    let separate = Certificates::load(&config).unwrap();
    assert_eq!(separate.stores().count(), 2);
    separate.reload().unwrap();
    // A broken HTTPS pair is reported by its own key names; the TLS pair still reloads.
    std::fs::write(&web.cert, "").unwrap();
    let error = format!("{:#}", separate.reload().unwrap_err());
    assert!(error.starts_with("https-cert "), "{error}");
    assert!(!error.contains("tls-"), "{error}");
}
