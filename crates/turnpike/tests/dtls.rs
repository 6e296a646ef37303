//! STUN and TURN over DTLS (RFC 7350) against the real binary, with `dimpl`'s DTLS 1.2 client
//! over a plain UDP socket: a Binding inside a session, the stateless cookie exchange (RFC
//! 6347 §4.2.1: a ClientHello without a valid cookie gets one HelloVerifyRequest, smaller than
//! itself, and no session), the cookie bound to the source address, and the handshake
//! deadline; `turnpike stun stuns:` against it. coturn's `turnutils_uclient -S` relaying through DTLS is in
//! tests/interop/test_turn_turnutils.py.

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use stun::attributes::XorMappedAddress;
use stun::{Class, Message};

mod common;

use common::{binding_request, Server, TlsFiles};

/// A DTLS server on 127.0.0.1 (any port) with metrics, and `args`.
fn start(tls: &TlsFiles, args: &[&str]) -> Server {
    let mut all = vec![
        "--listen",
        "127.0.0.1:0",
        "--tls-listen",
        "127.0.0.1:0",
        "--dtls-listen",
        "127.0.0.1:0",
        "--tls-cert",
        tls.cert.to_str().unwrap(),
        "--tls-key",
        tls.key.to_str().unwrap(),
        "--metrics-listen",
        "127.0.0.1:0",
        "--http",
        "false",
    ];
    all.extend(args);
    Server::spawn(&all, |_| {})
}

/// A `dimpl` DTLS 1.2 client (its own throw-away ECDSA certificate; the server asks for none).
fn client() -> dimpl::Dtls {
    let own = rcgen::generate_simple_self_signed(vec!["client".to_string()]).unwrap();
    let certificate = dimpl::DtlsCertificate {
        certificate: own.cert.der().to_vec(),
        private_key: own.key_pair.serialize_der(),
    };
    let mut dtls = dimpl::Dtls::new_12(
        Arc::new(dimpl::Config::default()),
        certificate,
        Instant::now(),
    );
    dtls.set_active(true);
    dtls.handle_timeout(Instant::now()).unwrap();
    dtls
}

/// What a `dimpl` client had to say: datagrams to send, application data, connected.
#[derive(Default)]
struct Said {
    packets: Vec<Vec<u8>>,
    data: Vec<Vec<u8>>,
    connected: bool,
}

fn drain(dtls: &mut dimpl::Dtls) -> Said {
    let mut said = Said::default();
    let mut buffer = vec![0u8; 4_096];
    loop {
        match dtls.poll_output(&mut buffer) {
            dimpl::Output::Packet(p) => said.packets.push(p.to_vec()),
            dimpl::Output::ApplicationData(d) => said.data.push(d.to_vec()),
            dimpl::Output::Connected => said.connected = true,
            dimpl::Output::BufferTooSmall { needed } => buffer.resize(needed, 0),
            dimpl::Output::Timeout(_) => return said,
            _ => {}
        }
    }
}

/// The datagrams that arrive on `socket` within `wait`.
fn receive(socket: &UdpSocket, wait: Duration) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let until = Instant::now() + wait;
    let mut buffer = [0u8; 65_535];
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        socket
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match socket.recv(&mut buffer) {
            Ok(n) => got.push(buffer[..n].to_vec()),
            Err(_) => break,
        }
    }
    got
}

/// The handshake message type of a plaintext handshake record (RFC 6347 §4.1, §4.2.2).
fn handshake_type(datagram: &[u8]) -> Option<u8> {
    (datagram.first() == Some(&22))
        .then(|| datagram.get(13).copied())
        .flatten()
}

const HELLO_VERIFY_REQUEST: u8 = 3;
const SERVER_HELLO: u8 = 2;

/// Runs the handshake of `dtls` over `socket` (connected to the server) to the end.
fn handshake(dtls: &mut dimpl::Dtls, socket: &UdpSocket) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut said = drain(dtls);
    while !said.connected {
        assert!(Instant::now() < deadline, "DTLS handshake did not finish");
        for packet in &said.packets {
            socket.send(packet).unwrap();
        }
        for datagram in receive(socket, Duration::from_millis(300)) {
            dtls.handle_packet(&datagram).unwrap();
        }
        dtls.handle_timeout(Instant::now()).unwrap();
        said = drain(dtls);
    }
    for packet in &said.packets {
        socket.send(packet).unwrap();
    }
}

/// A socket on 127.0.0.1 connected to `server`.
fn socket_to(server: SocketAddr) -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(server).unwrap();
    socket
}

/// The value of a metric without labels, from the metrics listener.
fn metric(server: &Server, name: &str) -> f64 {
    let mut tcp = TcpStream::connect(server.address("metrics")).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        tcp,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    tcp.read_to_string(&mut body).unwrap();
    body.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{body}"))
}

/// Polls `name` until it is `want`, or fails after a generous deadline.
fn wait_for(server: &Server, name: &str, want: f64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let now = metric(server, name);
        if now == want {
            return;
        }
        assert!(Instant::now() < deadline, "{name} is {now}, never {want}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

// RFC 7350 §4: over DTLS a Binding request and its answer travel as application data, and
// the XOR-MAPPED-ADDRESS is the client's UDP address.
#[test]
fn binding_over_dtls() {
    let tls = TlsFiles::new();
    let server = start(&tls, &[]);
    let socket = socket_to(server.address("dtls"));
    let mut dtls = client();
    handshake(&mut dtls, &socket);
    dtls.send_application_data(&binding_request(7)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let answer = loop {
        assert!(Instant::now() < deadline, "no Binding answer over DTLS");
        for packet in drain(&mut dtls).packets {
            socket.send(&packet).unwrap();
        }
        for datagram in receive(&socket, Duration::from_millis(200)) {
            dtls.handle_packet(&datagram).unwrap();
        }
        if let Some(data) = drain(&mut dtls).data.pop() {
            break data;
        }
    };
    let message = Message::decode(&answer).unwrap();
    assert_eq!(message.header().message_type.class, Class::Success);
    assert_eq!(message.header().transaction_id.0, [7; 12]);
    let mapped = message.get::<XorMappedAddress>().unwrap().unwrap();
    assert_eq!(mapped.0, socket.local_addr().unwrap());
    wait_for(&server, "turnpike_dtls_sessions", 1.0);

    // Every drop is counted with its cause: a record of application data that is not STUN
    // (RFC 7350 §4) in the session, and a datagram in the clear from a client without one.
    let dropped =
        |cause: &str| format!(r#"turnpike_dtls_dropped_datagrams_total{{cause="{cause}"}}"#);
    assert_eq!(metric(&server, &dropped("not_stun")), 0.0);
    dtls.send_application_data(&[0xff; 20]).unwrap();
    for packet in drain(&mut dtls).packets {
        socket.send(&packet).unwrap();
    }
    wait_for(&server, &dropped("not_stun"), 1.0);
    let stranger = socket_to(server.address("dtls"));
    stranger.send(&binding_request(8)).unwrap();
    wait_for(&server, &dropped("no_session"), 1.0);
    assert!(receive(&stranger, Duration::from_millis(300)).is_empty());
    assert_eq!(metric(&server, &dropped("send_failed")), 0.0);
}

// RFC 6347 §4.2.1: a ClientHello without a cookie is answered with a HelloVerifyRequest and
// nothing else, smaller than the ClientHello (no amplification), and no session state; the
// cookie is bound to the source address, so a ClientHello carrying it from any other address
// (a spoofed source replaying it) gets only another HelloVerifyRequest. From its own address
// it opens the session.
#[test]
fn a_client_hello_without_a_valid_cookie_gets_only_a_hello_verify_request() {
    let tls = TlsFiles::new();
    let server = start(&tls, &[]);
    let address = server.address("dtls");
    let socket = socket_to(address);
    let mut dtls = client();
    let hello = drain(&mut dtls).packets;
    assert_eq!(hello.len(), 1);
    socket.send(&hello[0]).unwrap();
    let answers = receive(&socket, Duration::from_millis(1_500));
    assert_eq!(answers.len(), 1, "one datagram, the HelloVerifyRequest");
    let verify = &answers[0];
    assert_eq!(handshake_type(verify), Some(HELLO_VERIFY_REQUEST));
    assert!(
        verify.len() < hello[0].len(),
        "HelloVerifyRequest {} bytes for a ClientHello of {}",
        verify.len(),
        hello[0].len()
    );
    assert_eq!(metric(&server, "turnpike_dtls_sessions"), 0.0);
    assert_eq!(
        metric(&server, "turnpike_dtls_hello_verify_requests_total"),
        1.0
    );

    // The ClientHello with the cookie, replayed from another address.
    dtls.handle_packet(verify).unwrap();
    let with_cookie = drain(&mut dtls).packets;
    assert_eq!(with_cookie.len(), 1);
    let elsewhere = socket_to(address);
    elsewhere.send(&with_cookie[0]).unwrap();
    let answers = receive(&elsewhere, Duration::from_millis(1_500));
    assert_eq!(answers.len(), 1);
    assert_eq!(handshake_type(&answers[0]), Some(HELLO_VERIFY_REQUEST));
    assert_eq!(metric(&server, "turnpike_dtls_sessions"), 0.0);

    // From its own address it is a session.
    socket.send(&with_cookie[0]).unwrap();
    let answers = receive(&socket, Duration::from_millis(1_500));
    assert_eq!(
        answers.first().and_then(|a| handshake_type(a)),
        Some(SERVER_HELLO)
    );
    assert_eq!(
        metric(&server, "turnpike_dtls_sessions_accepted_total"),
        1.0
    );
}

// A session whose handshake does not finish is dropped after tcp-frame-timeout: a client that
// returns its cookie and then stalls holds its slot for that long only.
#[test]
fn a_stalled_handshake_is_dropped_at_the_deadline() {
    let tls = TlsFiles::new();
    let server = start(&tls, &["--tcp-frame-timeout", "2"]);
    let socket = socket_to(server.address("dtls"));
    let mut dtls = client();
    socket.send(&drain(&mut dtls).packets[0]).unwrap();
    let verify = receive(&socket, Duration::from_millis(1_500));
    dtls.handle_packet(&verify[0]).unwrap();
    socket.send(&drain(&mut dtls).packets[0]).unwrap();
    wait_for(&server, "turnpike_dtls_sessions", 1.0);
    let started = Instant::now();
    // The client never sends its second flight.
    wait_for(&server, "turnpike_dtls_sessions", 0.0);
    let waited = started.elapsed();
    assert!(
        waited <= Duration::from_secs(12),
        "dropped after {waited:?}"
    );
}

// `turnpike stun stuns:` (RFC 7350 §4): the Binding inside DTLS, with the server's certificate
// trusted through --ca-file, and refused without it.
#[test]
fn turnpike_stun_speaks_dtls_and_checks_the_certificate() {
    let tls = TlsFiles::new();
    let server = start(&tls, &[]);
    let uri = format!(
        "stuns:127.0.0.1:{}?transport=udp",
        server.address("dtls").port()
    );
    let ca = tls.cert.to_str().unwrap();
    let output = common::run_turnpike(&["stun", &uri, "--ca-file", ca, "--json"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert!(
        report["mapped"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{report}"
    );
    let untrusted = common::run_turnpike(&["stun", &uri, "--timeout", "3"]);
    assert_eq!(untrusted.status.code(), Some(1));
    let message = String::from_utf8_lossy(&untrusted.stderr);
    assert!(message.contains("not trusted"), "{message}");
}
