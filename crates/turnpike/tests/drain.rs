//! Drain on SIGTERM and through the admin API (docs/operations.md, "Drain"): new Allocates
//! refused with 300 and ALTERNATE-SERVER (RFC 8489 §10, RFC 8656 §7.2) or 508, `/healthz` 503
//! at once, signaling WebSockets closed with 1001, existing allocations relayed until they end
//! or `drain-timeout` passes, then exit 0; a second SIGTERM or a SIGINT exits at once.

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use std::net::SocketAddr;
use std::time::Duration;

use stun::attributes::{AlternateServer, PasswordAlgorithmId};
use stun::{LongTermKey, Message};
use tokio_tungstenite::tungstenite;
use tungstenite::client::IntoClientRequest as _;
use tungstenite::protocol::frame::coding::CloseCode;

mod common;
mod control_support;

use control_support::{
    admin, http, peer, running, signal, wait_exit, wait_for_log, ConfigFile, Turn, PATIENCE, REALM,
    TOKEN,
};

type WebSocket = tungstenite::WebSocket<std::net::TcpStream>;

/// A signaling WebSocket to the HTTP listener at `addr`.
fn open_websocket(addr: SocketAddr) -> WebSocket {
    let tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(PATIENCE)).unwrap();
    let request = format!("ws://{addr}/ws").into_client_request().unwrap();
    match tungstenite::client(request, tcp) {
        Ok((socket, _)) => socket,
        Err(error) => panic!("WebSocket handshake: {error}"),
    }
}

/// The code of the close frame the server sends next.
fn close_code(socket: &mut WebSocket) -> Option<CloseCode> {
    loop {
        match socket.read() {
            Ok(tungstenite::Message::Close(frame)) => return frame.map(|f| f.code),
            Ok(_) => {}
            Err(error) => panic!("expected a close frame, got {error}"),
        }
    }
}

const USERS: &str = "users = [\"alice:alice-pw\", \"bob:bob-pw\"]";

#[test]
fn sigterm_drains_relays_on_refuses_with_300_and_exits_when_the_last_allocation_ends() {
    let v4: SocketAddr = "192.0.2.7:3478".parse().unwrap();
    let v6: SocketAddr = "[2001:db8::7]:3478".parse().unwrap();
    let file = ConfigFile::new(&format!("{USERS}\nalternate-server = [\"{v6}\", \"{v4}\"]"));
    let mut server = file.serve(&["--drain-timeout", "600"]);
    let udp = server.address("udp");
    let health = server.address("http");
    assert_eq!(
        http(health, "GET", "/healthz", None),
        (200, "ok".to_owned())
    );
    let peer = peer();
    let (mut alice, relayed) = Turn::relayed(udp, "alice", "alice-pw");
    assert!(alice.round_trip(&peer, relayed, b"before", PATIENCE));

    signal(&server, "TERM");
    let line = wait_for_log(
        &server,
        "draining: new allocations are refused, existing ones are served until they end",
    );
    assert_eq!(line["fields"]["allocations"], 1);
    assert_eq!(http(health, "GET", "/healthz", None).0, 503);
    // New WebSockets are refused too: the signaling clients go to another server.
    let tcp = std::net::TcpStream::connect(health).unwrap();
    tcp.set_read_timeout(Some(PATIENCE)).unwrap();
    let request = format!("ws://{health}/ws").into_client_request().unwrap();
    match tungstenite::client(request, tcp) {
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            assert_eq!(response.status(), 503);
        }
        other => panic!("expected 503, got {:?}", other.map(|_| ())),
    }

    // A new client is sent elsewhere: 300, the IPv4 alternate first (the client is IPv4),
    // then the IPv6 one; the answer is signed with the client's key.
    let (code, answer) = Turn::refused(udp, "bob", "bob-pw");
    assert_eq!(code, 300);
    let message = Message::decode(&answer).unwrap();
    let alternates: Vec<SocketAddr> = message
        .get_all::<AlternateServer>()
        .map(|a| a.unwrap().0)
        .collect();
    assert_eq!(alternates, [v4, v6]);
    // The ICE client picks SHA-256 from PASSWORD-ALGORITHMS: the answer uses the same
    // integrity attribute as the request (RFC 8489 §9.2.4).
    let key = LongTermKey::derive(PasswordAlgorithmId::SHA256, "bob", REALM, "bob-pw").unwrap();
    message.verify_integrity_sha256(key.as_bytes()).unwrap();

    // The existing allocation is served on, and the server waits for it.
    assert!(alice.round_trip(&peer, relayed, b"during", PATIENCE));
    assert!(running(&mut server));
    alice.deallocate();
    let (code, took) = wait_exit(&mut server, PATIENCE);
    assert_eq!(code, Some(0));
    assert!(took < PATIENCE, "{took:?}");
}

#[test]
fn admin_drain_without_alternate_answers_508_and_stops_at_drain_timeout() {
    let file = ConfigFile::new(&format!(
        "{USERS}\nadmin-token = \"{TOKEN}\"\nadmin-listen = \"127.0.0.1:0\""
    ));
    let mut server = file.serve(&["--drain-timeout", "2"]);
    let udp = server.address("udp");
    let peer = peer();
    let (mut alice, relayed) = Turn::relayed(udp, "alice", "alice-pw");
    assert!(alice.round_trip(&peer, relayed, b"before", PATIENCE));

    let mut websocket = open_websocket(server.address("http"));

    let output = admin(&server, &["drain"]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "draining: 1 allocation(s) left\n"
    );
    // Signaling clients hear 1001 "going away" when the drain begins, not at the exit.
    assert_eq!(close_code(&mut websocket), Some(CloseCode::Away));
    assert!(running(&mut server));
    assert_eq!(http(server.address("http"), "GET", "/healthz", None).0, 503);
    assert_eq!(Turn::refused(udp, "bob", "bob-pw").0, 508);
    // A second call says so.
    let output = admin(&server, &["drain"]);
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("already draining"));

    // alice never leaves: the drain ends at drain-timeout (2 s after it began).
    let line = wait_for_log(
        &server,
        "drain-timeout reached: stopping with allocations left",
    );
    assert_eq!(line["fields"]["allocations"], 1);
    let (code, _) = wait_exit(&mut server, PATIENCE);
    assert_eq!(code, Some(0));
}

#[test]
fn a_second_sigterm_or_a_sigint_stops_a_drain_at_once() {
    for second in ["TERM", "INT"] {
        let file = ConfigFile::new(USERS);
        let mut server = file.serve(&["--drain-timeout", "3600"]);
        let (_alice, _) = Turn::relayed(server.address("udp"), "alice", "alice-pw");
        signal(&server, "TERM");
        wait_for_log(
            &server,
            "draining: new allocations are refused, existing ones are served until they end",
        );
        std::thread::sleep(Duration::from_millis(300));
        assert!(running(&mut server), "waits for alice");
        signal(&server, second);
        let (code, took) = wait_exit(&mut server, PATIENCE);
        assert_eq!(code, Some(0), "SIG{second}");
        assert!(took < Duration::from_secs(5), "SIG{second}: {took:?}");
    }
}
