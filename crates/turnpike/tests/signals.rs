//! Signals a running `turnpike serve` gets from service managers and terminals: SIGHUP (sent
//! by `systemctl reload`, or when a terminal closes) must not kill it (it reloads the
//! configuration: tests/reload.rs); SIGTERM stops it cleanly (with allocations, it drains:
//! tests/drain.rs).

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use std::net::UdpSocket;
use std::process::Command;
use std::time::{Duration, Instant};

use stun::{Class, Message, TransactionId};

mod common;

use common::{binding_request, Server};

/// Sends one Binding request to the server's UDP listener and checks the success answer.
fn assert_answers_binding(server: &Server, tid: u8) {
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    client
        .send_to(&binding_request(tid), server.address("udp"))
        .unwrap();
    let mut buf = [0u8; 1500];
    let (n, _) = client.recv_from(&mut buf).unwrap();
    let answer = Message::decode(&buf[..n]).unwrap();
    assert_eq!(answer.header().message_type.class, Class::Success);
    assert_eq!(answer.header().transaction_id, TransactionId([tid; 12]));
}

#[test]
fn sighup_is_logged_and_the_server_keeps_serving() {
    let server = Server::spawn(&["--listen", "127.0.0.1:0", "--tcp", "false"], |command| {
        command.env("TURNPIKE_HTTP", "false");
    });
    assert_answers_binding(&server, 1);
    let status = Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let reloaded = loop {
        let line = server
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("no reload line in the log"));
        let value: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if value["fields"]["message"] == "configuration reloaded" {
            break value;
        }
    };
    assert_eq!(reloaded["level"], "INFO");
    assert_eq!(reloaded["fields"]["cause"], "SIGHUP");
    assert_answers_binding(&server, 2);
    assert_eq!(server.stop(), Some(0), "SIGTERM still stops cleanly");
}
