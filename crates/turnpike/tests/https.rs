//! The HTTP app of `turnpike serve` over TLS (`https-listen`, docs/http.md "HTTPS") on real
//! loopback sockets, with a generated certificate: the health check, pages and API, the
//! signaling WebSocket over wss://, the per-source connection cap shared with plain HTTP, and
//! the deadline that also covers the TLS handshake.

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::{ClientConfig, ClientConnection, StreamOwned};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message as Frame, WebSocket};

mod common;

use common::{Server, TlsFiles};

type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// Starts a server with HTTP and HTTPS on free loopback ports, the HTTPS listener presenting
/// `tls`'s certificate (through the dedicated https-cert/https-key, so that no `turns:`
/// listener is started), with `args` added.
fn start(tls: &TlsFiles, args: &[&str]) -> Server {
    let mut all = vec!["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"];
    all.extend(["--https-listen", "127.0.0.1:0", "--relay-ip", "127.0.0.1"]);
    all.extend(["--https-cert", tls.cert.to_str().unwrap()]);
    all.extend(["--https-key", tls.key.to_str().unwrap()]);
    all.extend(args);
    Server::spawn(&all, |command| {
        command.env_remove("TURNPIKE_SIGNALING_SECRET");
    })
}

/// A client trusting only `tls`'s certificate, offering HTTP/2 before HTTP/1.1 (as browsers
/// do) so that the server's ALPN choice shows.
fn client_config(tls: &TlsFiles) -> Arc<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(tls.certified.cert.der().clone()).unwrap();
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

/// A TCP connection to `to` from `from` (any port).
fn tcp_from(from: IpAddr, to: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::new(from, 0).into()).unwrap();
    socket.connect(&to.into()).unwrap();
    let tcp: TcpStream = socket.into();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp
}

/// A TLS connection to `to` from `from`, handshake done (or its error).
fn tls_from(tls: &TlsFiles, from: IpAddr, to: SocketAddr) -> std::io::Result<TlsStream> {
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let connection = ClientConnection::new(client_config(tls), name).unwrap();
    let mut stream = StreamOwned::new(connection, tcp_from(from, to));
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(stream)
}

fn localhost() -> IpAddr {
    [127, 0, 0, 1].into()
}

/// Sends a keep-alive `GET path` and reads the response, whose body has a Content-Length:
/// (status line, body).
fn get<S: Read + Write>(stream: &mut S, path: &str) -> (String, String) {
    let head = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.flush().unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "closed mid-response: {}",
            String::from_utf8_lossy(&raw)
        );
        raw.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&raw).into_owned();
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            continue;
        };
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().unwrap())
            })
            .expect("a Content-Length");
        if body.len() >= length {
            let status = head.lines().next().unwrap().to_owned();
            return (status, body[..length].to_owned());
        }
    }
}

#[test]
fn health_check_pages_and_api_over_https() {
    let tls = TlsFiles::new();
    let server = start(&tls, &[]);
    assert!(
        server.listening.iter().all(|(t, _)| t != "tls"),
        "https-cert starts no turns: listener: {:?}",
        server.listening
    );
    let mut stream = tls_from(&tls, localhost(), server.address("https")).unwrap();
    assert_eq!(
        stream.conn.alpn_protocol(),
        Some(&b"http/1.1"[..]),
        "HTTP/1.1 chosen over h2"
    );
    // Several requests on one connection: keep-alive works through TLS.
    assert_eq!(
        get(&mut stream, "/healthz"),
        ("HTTP/1.1 200 OK".into(), "ok".into())
    );
    let (status, body) = get(&mut stream, "/api/ice-servers");
    assert_eq!(status, "HTTP/1.1 200 OK");
    let document: Value = serde_json::from_str(&body).unwrap();
    assert!(
        !document["iceServers"].as_array().unwrap().is_empty(),
        "{body}"
    );
    let (status, body) = get(&mut stream, "/");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(body.contains("<html"), "{body}");
    // Plain HTTP goes on beside it.
    let mut plain = tcp_from(localhost(), server.address("http"));
    assert_eq!(get(&mut plain, "/healthz").1, "ok");
}

/// A signaling client over wss://.
fn open_wss(tls: &TlsFiles, addr: SocketAddr) -> WebSocket<TlsStream> {
    let stream = tls_from(tls, localhost(), addr).unwrap();
    let request = format!("wss://localhost:{}/ws", addr.port())
        .into_client_request()
        .unwrap();
    match tungstenite::client(request, stream) {
        Ok((socket, _)) => socket,
        Err(error) => panic!("WebSocket handshake over TLS: {error}"),
    }
}

/// The next JSON text frame, skipping the server's pings.
fn recv(socket: &mut WebSocket<TlsStream>) -> Value {
    loop {
        match socket.read().unwrap() {
            Frame::Text(text) if text.as_str() == r#"{"type":"ping"}"# => {}
            Frame::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
            Frame::Ping(_) | Frame::Pong(_) => {}
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

#[test]
fn two_peers_meet_in_a_room_over_wss() {
    let tls = TlsFiles::new();
    let server = start(&tls, &[]);
    let addr = server.address("https");
    let mut alice = open_wss(&tls, addr);
    alice
        .send(Frame::text(
            json!({"type": "join", "room": "secure"}).to_string(),
        ))
        .unwrap();
    let joined = recv(&mut alice);
    assert_eq!(
        (joined["type"].as_str(), joined["peers"].clone()),
        (Some("joined"), json!([]))
    );
    let alice_id = joined["id"].as_str().unwrap().to_owned();

    let mut bob = open_wss(&tls, addr);
    bob.send(Frame::text(
        json!({"type": "join", "room": "secure"}).to_string(),
    ))
    .unwrap();
    let joined = recv(&mut bob);
    assert_eq!(joined["peers"], json!([alice_id]));
    let bob_id = joined["id"].as_str().unwrap().to_owned();
    assert_eq!(
        recv(&mut alice),
        json!({"type": "peer-joined", "id": bob_id})
    );
    let offer = json!({"type": "offer", "to": alice_id, "data": {"sdp": "v=0"}});
    bob.send(Frame::text(offer.to_string())).unwrap();
    assert_eq!(
        recv(&mut alice),
        json!({"type": "offer", "from": bob_id, "data": {"sdp": "v=0"}})
    );
}

// HTTPS connections count against the same caps as plain HTTP ones: a source holding its
// `http-connections-per-ip` share (here one plain, one TLS) has a further TLS connection closed
// before the handshake, while another source is served.
#[test]
fn https_shares_the_per_source_connection_cap() {
    let tls = TlsFiles::new();
    let server = start(
        &tls,
        &[
            "--max-tcp-connections",
            "40",
            "--http-connections-per-ip",
            "2",
        ],
    );
    let https = server.address("https");
    // Two signaling WebSockets, one plain and one over TLS: both surely accepted (the upgrade
    // was answered), and held with no deadline running (unlike a keep-alive connection,
    // which the header deadline would close after 10 s).
    let plain_url = format!("ws://{}/ws", server.address("http"));
    let (_plain, _) = tungstenite::client(
        plain_url.into_client_request().unwrap(),
        tcp_from(localhost(), server.address("http")),
    )
    .unwrap();
    let held = open_wss(&tls, https);

    let refused = tls_from(&tls, localhost(), https);
    assert!(
        refused.is_err(),
        "a third connection from the source got through"
    );
    let mut other = tls_from(&tls, [127, 0, 0, 2].into(), https).unwrap();
    assert_eq!(get(&mut other, "/healthz").1, "ok");
    // A place freed is a place for the source again.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut again = loop {
        match tls_from(&tls, localhost(), https) {
            Ok(stream) => break stream,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(error) => panic!("the freed place was not given back: {error}"),
        }
    };
    assert_eq!(get(&mut again, "/healthz").1, "ok");
}

/// How long the server took to close `tcp` (reading until EOF or an error), at most 40 s.
fn closed_after(mut tcp: TcpStream) -> Duration {
    let started = Instant::now();
    tcp.set_read_timeout(Some(Duration::from_secs(40))).unwrap();
    let mut rest = Vec::new();
    match tcp.read_to_end(&mut rest) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            panic!("still open after 40 s")
        }
        _ => started.elapsed(),
    }
}

// A client that never finishes the TLS handshake, whether silent or trickling a ClientHello a
// byte at a time, is dropped at the header deadline (10 s): the handshake is part of it. The
// idle timeout (300 s by default) would not catch the trickle.
#[test]
fn a_stalled_tls_handshake_is_cut_at_the_header_deadline() {
    let tls = TlsFiles::new();
    let server = start(&tls, &[]);
    let https = server.address("https");
    let silent = tcp_from(localhost(), https);
    let trickling = tcp_from(localhost(), https);
    let mut writer = trickling.try_clone().unwrap();
    // A handshake record header announcing 512 bytes, then one byte every 500 ms.
    writer.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00]).unwrap();
    let trickle = std::thread::spawn(move || {
        for _ in 0..80 {
            std::thread::sleep(Duration::from_millis(500));
            if writer.write_all(&[0x01]).is_err() {
                break;
            }
        }
    });
    let silent = std::thread::spawn(move || closed_after(silent));
    let took = closed_after(trickling);
    let _ = trickle.join();
    for took in [took, silent.join().unwrap()] {
        assert!(
            took >= Duration::from_secs(9) && took < Duration::from_secs(25),
            "closed after {took:?}"
        );
    }
}

// HTTPS presents `https-cert` when given, else the `turns:` listeners' `tls-cert`; each
// listener's certificate is the one its clients must trust.
#[test]
fn https_presents_its_own_certificate_or_the_tls_one() {
    let turn = TlsFiles::new();
    let web = TlsFiles::new();
    let tls_args = [
        "--tls-listen",
        "127.0.0.1:0",
        "--tls-cert",
        turn.cert.to_str().unwrap(),
        "--tls-key",
        turn.key.to_str().unwrap(),
    ];
    let server = start(&web, &tls_args);
    let (https, turns) = (server.address("https"), server.address("tls"));
    assert!(tls_from(&web, localhost(), https).is_ok());
    assert!(
        tls_from(&turn, localhost(), https).is_err(),
        "not the tls-cert"
    );
    assert!(tls_from(&turn, localhost(), turns).is_ok());
    drop(server);

    let mut args = vec!["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"];
    args.extend(["--https-listen", "127.0.0.1:0", "--relay-ip", "127.0.0.1"]);
    args.extend(tls_args);
    let server = Server::spawn(&args, |_| {});
    let mut shared = tls_from(&turn, localhost(), server.address("https")).unwrap();
    assert_eq!(get(&mut shared, "/healthz").1, "ok");
}

// Files that are not a certificate and its key fail the start (exit 1), naming the key and
// the file, never quoting the key.
#[test]
fn an_unusable_https_certificate_fails_the_start_by_name() {
    let web = TlsFiles::new();
    let other = TlsFiles::new();
    let key_pem = std::fs::read_to_string(&other.key).unwrap();
    let run = |cert: &std::path::Path, key: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_turnpike"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--http-listen",
                "127.0.0.1:0",
            ])
            .args(["--https-listen", "127.0.0.1:0", "--https-cert"])
            .arg(cert)
            .arg("--https-key")
            .arg(key)
            .output()
            .unwrap()
    };
    // A key file holding a certificate, and a key that is not the certificate's.
    for (cert, key, expected) in [
        (
            &web.cert,
            &web.cert,
            format!("https-key {}", web.cert.display()),
        ),
        (
            &web.cert,
            &other.key,
            format!("https-cert {}", web.cert.display()),
        ),
    ] {
        let output = run(cert, key);
        let stderr = String::from_utf8_lossy(&output.stderr);
        // A configuration problem found before anything is bound: exit 2, like a bad key.
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(&expected), "{expected}: {stderr}");
        assert!(
            !stderr.contains(key_pem.lines().nth(1).unwrap()),
            "{stderr}"
        );
    }
}
