//! `turnpike stun` run as a user would, against in-test UDP responders built on
//! `turn::BindingServer` (not on `turnpike serve`): output, exit codes and messages.

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

mod common;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::Output;

use common::run_turnpike as run;
use std::time::{Duration, Instant};

use stun::attributes::{ErrorCode, UnknownAttributes};
use stun::{AttributeType, Class, Message, MessageWriter};
use turn::{BindingConfig, BindingServer, ServerSockets, SocketId, Transport};

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Serves `server` on `sockets` (one per [`SocketId`] it has), one thread per socket; an
/// answer leaves from the socket the core names. The threads live until the test process
/// ends.
fn serve(server: BindingServer, sockets: Vec<(SocketId, UdpSocket)>) {
    let all: Vec<(SocketId, UdpSocket)> = sockets
        .iter()
        .map(|(id, s)| (*id, s.try_clone().expect("UDP sockets can be cloned")))
        .collect();
    let all = std::sync::Arc::new(all);
    for (id, socket) in sockets {
        let (server, all) = (server.clone(), all.clone());
        std::thread::spawn(move || {
            let (mut buf, mut out) = ([0u8; 2048], [0u8; 1500]);
            while let Ok((len, from)) = socket.recv_from(&mut buf) {
                if let Some(t) = server.handle(Transport::Udp, id, from, &buf[..len], &mut out) {
                    let sender = all.iter().find(|(s, _)| *s == t.from).map(|(_, s)| s);
                    sender
                        .expect("the core answers from a socket it has")
                        .send_to(&out[..t.len], t.to)
                        .ok();
                }
            }
        });
    }
}

fn bind(addr: SocketAddr) -> UdpSocket {
    UdpSocket::bind(addr).expect("loopback UDP sockets can be bound")
}

/// A plain Binding server on 127.0.0.1; returns its address.
fn plain_server(software: Option<&str>) -> SocketAddr {
    let socket = bind("127.0.0.1:0".parse().unwrap());
    let primary = socket.local_addr().unwrap();
    let config = BindingConfig {
        sockets: ServerSockets::single(primary),
        software: software.map(str::to_owned),
    };
    serve(
        BindingServer::new(config),
        vec![(SocketId::PRIMARY, socket)],
    );
    primary
}

/// An RFC 5780 server on 127.0.0.1 and 127.0.0.2 (all of 127/8 is loopback on Linux), two
/// ports each; returns the primary address and OTHER-ADDRESS.
fn discovery_server() -> (SocketAddr, SocketAddr) {
    let (a1, a2): (IpAddr, IpAddr) = ("127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap());
    // The same port must be free on both IPs; retry with fresh ports until it is.
    let pair = || {
        for _ in 0..50 {
            let first = bind(SocketAddr::new(a1, 0));
            let port = first.local_addr().unwrap().port();
            if let Ok(second) = UdpSocket::bind(SocketAddr::new(a2, port)) {
                return (first, second, port);
            }
        }
        panic!("no port free on both 127.0.0.1 and 127.0.0.2");
    };
    let (p1a1, p1a2, p1) = pair();
    let (p2a1, p2a2, p2) = pair();
    let sockets = ServerSockets {
        primary: SocketAddr::new(a1, p1),
        alternate_ip: Some(a2),
        alternate_port: Some(p2),
    };
    let config = BindingConfig {
        sockets,
        software: None,
    };
    let ids = SocketId::ALL;
    serve(
        BindingServer::new(config),
        vec![
            (ids[0], p1a1),
            (ids[1], p2a1),
            (ids[2], p1a2),
            (ids[3], p2a2),
        ],
    );
    (SocketAddr::new(a1, p1), SocketAddr::new(a2, p2))
}

/// A server that answers every Binding request with 420 Unknown Attribute.
fn refusing_server() -> SocketAddr {
    let socket = bind("127.0.0.1:0".parse().unwrap());
    let addr = socket.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut buf, mut out) = ([0u8; 2048], [0u8; 512]);
        while let Ok((len, from)) = socket.recv_from(&mut buf) {
            let Ok(request) = Message::decode(&buf[..len]) else {
                continue;
            };
            let mut w = MessageWriter::response(&mut out, request.header(), Class::Error).unwrap();
            w.add(&ErrorCode {
                code: 420,
                reason: "Unknown Attribute",
            })
            .unwrap();
            w.add(&UnknownAttributes::new(&[AttributeType(0x0031)]))
                .unwrap();
            let len = w.finish();
            socket.send_to(&out[..len], from).ok();
        }
    });
    addr
}

#[test]
fn json_reports_the_mapped_address() {
    let server = plain_server(Some("turnpike-test"));
    let uri = format!("stun:{server}");
    let output = run(&["stun", &uri, "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert_eq!(
        text.lines().count(),
        1,
        "one JSON object on one line: {text}"
    );
    let report: serde_json::Value = serde_json::from_str(&text).expect("stdout is JSON");
    assert_eq!(report["server"], server.to_string());
    assert_eq!(report["uri"], uri);
    let mapped: SocketAddr = report["mapped"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        mapped.ip(),
        server.ip(),
        "the client's address as the server saw it"
    );
    assert_ne!(mapped.port(), 0);
    assert_ne!(mapped.port(), server.port());
    assert!(report["response_origin"].is_null());
    assert!(report["other_address"].is_null());
    assert_eq!(report["software"], "turnpike-test");
    let rtt = report["rtt_ms"].as_f64().expect("rtt_ms is a number");
    assert!((0.0..1000.0).contains(&rtt), "{rtt}");
}

#[test]
fn text_output_shows_rfc_5780_support() {
    let (server, other) = discovery_server();
    let uri = format!("stun:{server}");
    let output = run(&["stun", &uri]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], format!("server      {server} ({uri})"));
    assert!(lines[1].starts_with("mapped      127.0.0.1:"), "{text}");
    assert_eq!(lines[2], format!("origin      {server}"));
    assert_eq!(
        lines[3],
        format!("other       {other} (RFC 5780 behaviour discovery: supported)")
    );
    assert!(
        lines[4].starts_with("rtt         ") && lines[4].ends_with(" ms"),
        "{text}"
    );
    assert_eq!(lines.len(), 5, "{text}");
}

#[test]
fn plain_text_without_optional_lines() {
    let server = plain_server(None);
    let output = run(&["stun", &format!("stun:{server}"), "-4"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    let keys: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(keys, ["server", "mapped", "rtt"], "{text}");
}

#[test]
fn silent_server_times_out() {
    // Bound but never read: nothing answers and no ICMP error comes back.
    let silent = bind("127.0.0.1:0".parse().unwrap());
    let addr = silent.local_addr().unwrap();
    let started = Instant::now();
    let output = run(&["stun", &format!("stun:{addr}"), "--timeout", "1"]);
    let elapsed = started.elapsed();
    assert_ne!(output.status.code(), Some(0));
    let message = stderr(&output);
    assert!(
        message.contains(&format!("no answer from {addr} (stun:{addr}) after 1 s")),
        "{message}"
    );
    // RTO 500 ms: requests at 0 and 500 ms, the next one (1500 ms) is past the deadline.
    assert!(message.contains("(2 requests sent)"), "{message}");
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
    assert!(stdout(&output).is_empty());
}

#[test]
fn error_response_is_reported() {
    let server = refusing_server();
    let output = run(&["stun", &format!("stun:{server}"), "--json"]);
    assert_ne!(output.status.code(), Some(0));
    let message = stderr(&output);
    assert!(
        message.contains("server answered 420 Unknown Attribute"),
        "{message}"
    );
    assert!(message.contains("AttributeType(0x0031)"), "{message}");
    assert!(stdout(&output).is_empty());
}

#[test]
fn bad_uris_are_refused_with_the_reason() {
    for (uri, reason) in [
        (
            "stun://127.0.0.1:3478",
            "STUN URIs have no \"//\" (RFC 7064): write stun:127.0.0.1:3478",
        ),
        (
            "127.0.0.1:3478",
            "missing scheme: write stun:127.0.0.1:3478",
        ),
        ("stun:127.0.0.1:99999", "invalid port \"99999\""),
        ("turn:127.0.0.1", "this is a TURN URI"),
        (
            "stun:2001:db8::1",
            "IPv6 addresses go in brackets: write stun:[2001:db8::1]",
        ),
    ] {
        let output = run(&["stun", uri]);
        assert_ne!(output.status.code(), Some(0), "{uri}");
        let message = stderr(&output);
        assert!(message.contains(reason), "{uri}: {message}");
    }
}

#[test]
fn bad_timeouts_are_usage_errors() {
    for timeout in ["0", "-1", "soon"] {
        let output = run(&["stun", "stun:127.0.0.1", &format!("--timeout={timeout}")]);
        assert_ne!(output.status.code(), Some(0), "{timeout}");
        assert!(stderr(&output).contains("--timeout"), "{}", stderr(&output));
    }
}

#[test]
fn family_filter_without_a_match() {
    let output = run(&["stun", "stun:127.0.0.1", "--ipv6", "--timeout", "2"]);
    assert_ne!(output.status.code(), Some(0));
    let message = stderr(&output);
    assert!(
        message.contains("127.0.0.1 has no IPv6 address"),
        "{message}"
    );
}

#[test]
fn ipv6_loopback() {
    let Ok(socket) = UdpSocket::bind("[::1]:0") else {
        eprintln!("no IPv6 loopback here; skipped");
        return;
    };
    let primary = socket.local_addr().unwrap();
    let config = BindingConfig {
        sockets: ServerSockets::single(primary),
        software: None,
    };
    serve(
        BindingServer::new(config),
        vec![(SocketId::PRIMARY, socket)],
    );
    let output = run(&["stun", &format!("stun:[::1]:{}", primary.port()), "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    let mapped: SocketAddr = report["mapped"].as_str().unwrap().parse().unwrap();
    assert_eq!(mapped.ip(), primary.ip());
}
