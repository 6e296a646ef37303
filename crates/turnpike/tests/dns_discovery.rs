//! Server discovery by DNS (RFC 8489 §8 for stun:, RFC 5928 §3 for turn:) against a real DNS
//! server: dnsmasq on a free loopback port serving SRV and NAPTR records for `test.example`,
//! queried through `--dns-server`; `turnpike serve` on free ports found only through them.
//! The A/AAAA fallback to the default ports is unit-tested (src/discovery): port 3478 cannot
//! be bound reliably here.

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

mod common;

use std::net::SocketAddr;
use std::process::{Command, Output};

use common::dnsmasq::{free_udp_and_tcp_port, Dnsmasq, ZONE};
use common::Server;
use serde_json::Value;

/// `turnpike ARGS…` with no `TURNPIKE_*` or `RUST_LOG` from the environment.
fn turnpike(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_turnpike"));
    command.args(args);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("TURNPIKE_") {
            command.env_remove(&name);
        }
    }
    command.env_remove("RUST_LOG");
    command.output().expect("the turnpike binary runs")
}

fn json(output: &Output) -> Value {
    let text = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {text}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// A server on free loopback ports, relaying on loopback, with one static user.
fn serve() -> Server {
    Server::spawn(
        &[
            "--listen",
            "127.0.0.1:0",
            "--http",
            "false",
            "--relay-ip",
            "127.0.0.1",
            "--realm",
            "dns.example",
            "--users",
            "alice:alice-pass",
        ],
        |command| {
            command.env_remove("TURNPIKE_USERS");
        },
    )
}

fn host_record(name: &str) -> String {
    format!("--host-record={name}.{ZONE},127.0.0.1")
}

fn srv_record(service: &str, target: &str, port: u16, priority: u16, weight: u16) -> String {
    format!("--srv-host={service}.{ZONE},{target}.{ZONE},{port},{priority},{weight}")
}

// RFC 8489 §8: `stun:HOST` without a port → SRV `_stun._udp.HOST`, whose target and port lead
// to the server (announced nowhere else).
#[test]
fn stun_finds_the_server_by_srv() {
    let server = serve();
    let port = server.address("udp").port();
    let dns = Dnsmasq::start(&[
        srv_record("_stun._udp", "relay", port, 10, 0),
        host_record("relay"),
    ]);
    let uri = format!("stun:{ZONE}");
    let output = turnpike(&["stun", &uri, "--json", "--dns-server", &dns.server()]);
    assert!(output.status.success(), "{output:?}");
    let report = json(&output);
    let expected = SocketAddr::from(([127, 0, 0, 1], port)).to_string();
    assert_eq!(report["server"], expected.as_str(), "{report}");
}

// RFC 2782: the lowest priority first; when it does not answer, the next one.
#[test]
fn stun_moves_past_a_dead_target_to_the_next_priority() {
    let server = serve();
    let live = server.address("udp").port();
    let dead = free_udp_and_tcp_port();
    let dns = Dnsmasq::start(&[
        srv_record("_stun._udp", "dead", dead, 10, 100),
        srv_record("_stun._udp", "live", live, 20, 0),
        host_record("dead"),
        host_record("live"),
    ]);
    let uri = format!("stun:{ZONE}");
    // Two targets share 6 s: 3 s of silence from the dead one, then the live one answers.
    let output = turnpike(&[
        "stun",
        &uri,
        "--json",
        "--timeout",
        "6",
        "--rto",
        "200",
        "--dns-server",
        &dns.server(),
    ]);
    assert!(output.status.success(), "{output:?}");
    let expected = SocketAddr::from(([127, 0, 0, 1], live)).to_string();
    assert_eq!(json(&output)["server"], expected.as_str());
}

// RFC 8489 §8: an explicit port means no SRV: the host's A record with that port, even
// when an SRV record would lead elsewhere.
#[test]
fn an_explicit_port_skips_srv() {
    let server = serve();
    let port = server.address("udp").port();
    let elsewhere = free_udp_and_tcp_port();
    let dns = Dnsmasq::start(&[
        srv_record("_stun._udp", "relay", elsewhere, 10, 0),
        format!("--host-record={ZONE},127.0.0.1"),
        host_record("relay"),
    ]);
    let uri = format!("stun:{ZONE}:{port}");
    let output = turnpike(&["stun", &uri, "--json", "--dns-server", &dns.server()]);
    assert!(output.status.success(), "{output:?}");
    let expected = SocketAddr::from(([127, 0, 0, 1], port)).to_string();
    assert_eq!(json(&output)["server"], expected.as_str());
}
