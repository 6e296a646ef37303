//! `turnpike serve` over real loopback sockets: UDP, TCP framing (RFC 8489 §6.2.2), TLS,
//! idle timeout, the connection cap, bad input, bind errors and clean shutdown.

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stun::attributes::XorMappedAddress;
use stun::{Class, Message, MessageType, MessageWriter, TransactionId};

mod common;

use common::{binding_request, Server};

/// Starts a server with `args` and HTTP off (these tests run servers side by side).
fn start(args: &[&str]) -> Server {
    Server::spawn(args, |command| {
        command.env("TURNPIKE_HTTP", "false");
    })
}

/// Checks a Binding success for transaction `tid` mapping to `client`.
fn assert_binding_success(bytes: &[u8], tid: u8, client: SocketAddr) {
    let m = Message::decode(bytes).unwrap();
    assert_eq!(m.header().message_type.class, Class::Success);
    assert_eq!(m.header().transaction_id, TransactionId([tid; 12]));
    assert_eq!(m.get::<XorMappedAddress>().unwrap().unwrap().0, client);
}

fn read_exact_timeout(stream: &mut impl Read, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    stream.read_exact(&mut buf).unwrap();
    buf
}

// RFC 8489 §6.3.1: Binding over UDP; garbage in between changes nothing.
#[test]
fn udp_binding_and_bad_datagrams() {
    let server = start(&["--listen", "127.0.0.1:0", "--tcp", "false"]);
    let addr = server.address("udp");
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    for garbage in [&b"hello"[..], &[0u8; 19], &[0xFF; 40]] {
        client.send_to(garbage, addr).unwrap();
    }
    client.send_to(&binding_request(1), addr).unwrap();
    let mut buf = [0u8; 1500];
    let (len, from) = client.recv_from(&mut buf).unwrap();
    assert_eq!(from, addr);
    assert_binding_success(&buf[..len], 1, client.local_addr().unwrap());
    assert_eq!(server.stop(), Some(0), "SIGTERM is a clean stop");
}

// RFC 8489 §6.2.2: several messages per connection, and a message split across reads.
#[test]
fn tcp_pipelined_and_split_messages() {
    let server = start(&["--listen", "127.0.0.1:0", "--udp", "false"]);
    let mut tcp = TcpStream::connect(server.address("tcp")).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let me = tcp.local_addr().unwrap();
    let mut two = binding_request(1);
    two.extend(binding_request(2));
    tcp.write_all(&two).unwrap();
    assert_binding_success(&read_exact_timeout(&mut tcp, 32), 1, me);
    assert_binding_success(&read_exact_timeout(&mut tcp, 32), 2, me);
    let split = binding_request(3);
    tcp.write_all(&split[..7]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    tcp.write_all(&split[7..]).unwrap();
    assert_binding_success(&read_exact_timeout(&mut tcp, 32), 3, me);
    // Bytes that are neither STUN nor ChannelData: the stream cannot be resynchronised.
    tcp.write_all(&[0xFF; 8]).unwrap();
    let mut rest = Vec::new();
    assert_eq!(tcp.read_to_end(&mut rest).unwrap(), 0, "connection closed");
}

// Idle TCP connections are closed after tcp-idle-timeout.
#[test]
fn idle_connections_are_closed() {
    let server = start(&[
        "--listen",
        "127.0.0.1:0",
        "--udp",
        "false",
        "--tcp-idle-timeout",
        "1",
    ]);
    let mut tcp = TcpStream::connect(server.address("tcp")).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    assert_eq!(tcp.read_to_end(&mut rest).unwrap(), 0);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
}

// max-tcp-connections bounds concurrent connections: the one over the cap is closed at once,
// the others keep working.
#[test]
fn connection_cap() {
    let server = start(&[
        "--listen",
        "127.0.0.1:0",
        "--udp",
        "false",
        "--max-tcp-connections",
        "1",
    ]);
    let addr = server.address("tcp");
    let mut first = TcpStream::connect(addr).unwrap();
    first
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    first.write_all(&binding_request(1)).unwrap();
    assert_binding_success(
        &read_exact_timeout(&mut first, 32),
        1,
        first.local_addr().unwrap(),
    );
    let mut second = TcpStream::connect(addr).unwrap();
    second
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = second.write_all(&binding_request(2));
    let mut rest = Vec::new();
    assert!(
        matches!(second.read_to_end(&mut rest), Ok(0) | Err(_)),
        "over the cap: closed"
    );
    first.write_all(&binding_request(3)).unwrap();
    assert_binding_success(
        &read_exact_timeout(&mut first, 32),
        3,
        first.local_addr().unwrap(),
    );
}

// Binding over TLS (RFC 8489 §6.2.3) with a certificate and key from PEM files.
#[test]
fn tls_binding() {
    let tls_files = common::TlsFiles::new();
    let (cert_path, key_path, certified) = (&tls_files.cert, &tls_files.key, &tls_files.certified);
    let server = start(&[
        "--listen",
        "127.0.0.1:0",
        "--tls-listen",
        "127.0.0.1:0",
        "--tls-cert",
        cert_path.to_str().unwrap(),
        "--tls-key",
        key_path.to_str().unwrap(),
    ]);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(server.address("tls")).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let me = tcp.local_addr().unwrap();
    let mut tls = rustls::StreamOwned::new(connection, tcp);
    let mut two = binding_request(7);
    two.extend(binding_request(8));
    tls.write_all(&two).unwrap();
    assert_binding_success(&read_exact_timeout(&mut tls, 32), 7, me);
    assert_binding_success(&read_exact_timeout(&mut tls, 32), 8, me);
}

// A port already in use is reported with the address, and the process exits 1.
#[test]
fn port_in_use_is_a_clear_error() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = Command::new(env!("CARGO_BIN_EXE_turnpike"))
        .args(["serve", "--listen", &addr, "--tcp", "false"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("binding UDP {addr}")), "{stderr}");
}

// RFC 5780 §6: with an alternate IP and port the server binds the four sockets, and
// CHANGE-REQUEST makes the answer come from the one it names.
#[test]
fn behaviour_discovery_grid() {
    use stun::attributes::{ChangeRequest, OtherAddress, ResponseOrigin};
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    let alternate_port = probe.local_addr().unwrap().port();
    drop(probe);
    let server = start(&[
        "--listen",
        "127.0.0.1:0",
        "--alternate-ip",
        "127.0.0.2",
        "--alternate-port",
        &alternate_port.to_string(),
        "--tcp",
        "false",
    ]);
    let udp: Vec<SocketAddr> = server
        .listening
        .iter()
        .filter(|(t, _)| t == "udp")
        .map(|(_, a)| *a)
        .collect();
    assert_eq!(udp.len(), 4, "{udp:?}");
    let primary = udp[0];
    let other = SocketAddr::new("127.0.0.2".parse().unwrap(), alternate_port);
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = vec![0u8; 64];
    let mut w = MessageWriter::new(
        &mut buf,
        MessageType::BINDING_REQUEST,
        TransactionId([5; 12]),
    )
    .unwrap();
    w.add(&ChangeRequest {
        change_ip: true,
        change_port: true,
    })
    .unwrap();
    let len = w.finish();
    client.send_to(&buf[..len], primary).unwrap();
    let mut answer = [0u8; 1500];
    let (n, from) = client.recv_from(&mut answer).unwrap();
    assert_eq!(from, other, "answered from A2:P2");
    let m = Message::decode(&answer[..n]).unwrap();
    assert_eq!(m.get::<ResponseOrigin>().unwrap().unwrap().0, other);
    assert_eq!(m.get::<OtherAddress>().unwrap().unwrap().0, other);
}

// A server started without credentials makes up a REST secret for the run and prints one
// credential, which works for an Allocate (RFC 8656 §7.2, RFC 8489 §9.2).
#[test]
fn ephemeral_credential_allocates() {
    use stun::attributes::{
        ErrorCode, Nonce, PasswordAlgorithmId, Realm, RequestedTransport, Username,
        XorRelayedAddress,
    };
    use stun::{LongTermKey, Method};
    let server = start(&[
        "--listen",
        "127.0.0.1:0",
        "--tcp",
        "false",
        "--relay-ip",
        "127.0.0.1",
    ]);
    let line = server
        .startup
        .iter()
        .find(|v| {
            v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("made up one for this run"))
        })
        .expect("the credential is printed");
    let username = line["fields"]["username"].as_str().unwrap().to_string();
    let password = line["fields"]["password"].as_str().unwrap().to_string();
    let realm = line["fields"]["realm"].as_str().unwrap().to_string();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let allocate = MessageType::new(Method::ALLOCATE, Class::Request);
    let exchange = |bytes: &[u8]| {
        client.send_to(bytes, server.address("udp")).unwrap();
        let mut buf = [0u8; 1500];
        let len = client.recv(&mut buf).unwrap();
        buf[..len].to_vec()
    };
    let mut buf = [0u8; 512];
    let mut w = MessageWriter::new(&mut buf, allocate, TransactionId([1; 12])).unwrap();
    w.add(&RequestedTransport(RequestedTransport::UDP)).unwrap();
    let len = w.finish();
    let challenge = exchange(&buf[..len]);
    let challenge = Message::decode(&challenge).unwrap();
    assert_eq!(challenge.get::<ErrorCode<'_>>().unwrap().unwrap().code, 401);
    let nonce = challenge.get::<Nonce<'_>>().unwrap().unwrap().0.to_string();
    let key = LongTermKey::derive(PasswordAlgorithmId::MD5, &username, &realm, &password).unwrap();
    let mut w = MessageWriter::new(&mut buf, allocate, TransactionId([2; 12])).unwrap();
    w.add(&RequestedTransport(RequestedTransport::UDP)).unwrap();
    w.add(&Username(&username)).unwrap();
    w.add(&Realm(&realm)).unwrap();
    w.add(&Nonce(&nonce)).unwrap();
    w.add_message_integrity(key.as_bytes()).unwrap();
    let len = w.finish();
    let reply = exchange(&buf[..len]);
    let reply = Message::decode(&reply).unwrap();
    assert_eq!(
        reply.header().message_type.class,
        Class::Success,
        "{reply:?}"
    );
    reply.verify_integrity(key.as_bytes()).unwrap();
    let relayed = reply.get::<XorRelayedAddress>().unwrap().unwrap().0;
    assert_eq!(relayed.ip().to_string(), "127.0.0.1");
    assert_eq!(server.stop(), Some(0));
}

// A wildcard `listen` answers UDP from the address the request was sent to, even on a
// multi-homed host: a request from this host's LAN address to 127.0.0.1 is answered from
// 127.0.0.1 (clients ignore answers from another address).
#[test]
fn wildcard_listen_answers_from_the_address_it_was_sent_to() {
    // A port free for both TCP and UDP (the server binds both): a free TCP port's UDP twin may
    // be taken by another test's socket.
    let port = (0..50)
        .find_map(|_| {
            let probe = std::net::TcpListener::bind("0.0.0.0:0").ok()?;
            let port = probe.local_addr().ok()?.port();
            UdpSocket::bind(("0.0.0.0", port)).ok()?;
            Some(port)
        })
        .expect("a port free for both TCP and UDP");
    let listen = format!("0.0.0.0:{port}");
    let server = start(&["--listen", &listen]);
    let udp: Vec<SocketAddr> = server
        .listening
        .iter()
        .filter(|(t, _)| t == "udp")
        .map(|(_, a)| *a)
        .collect();
    assert!(
        udp.contains(&SocketAddr::from(([127, 0, 0, 1], port))),
        "{udp:?}"
    );
    let lan = udp.iter().map(|a| a.ip()).find(|ip| !ip.is_loopback());
    let from = lan.map_or("127.0.0.1".parse().unwrap(), |ip| ip);
    let client = UdpSocket::bind(SocketAddr::new(from, 0)).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let to = SocketAddr::from(([127, 0, 0, 1], port));
    client.send_to(&binding_request(4), to).unwrap();
    let mut buf = [0u8; 1500];
    let (len, answered_from) = client.recv_from(&mut buf).unwrap();
    assert_eq!(answered_from, to);
    assert_binding_success(&buf[..len], 4, client.local_addr().unwrap());
}
