//! Server discovery by DNS (RFC 8489 §8 for stun:, RFC 5928 §3 for turn:) against a real DNS
//! server: dnsmasq on a free loopback port serving SRV and NAPTR records for `test.example`,
//! queried through `--dns-server`; `turnpike serve` on free ports found only through them.
//! The A/AAAA fallback to the default ports is unit-tested (src/discovery): port 3478 cannot
//! be bound reliably here.

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

mod common;

use std::net::SocketAddr;
use std::process::Output;

use common::dnsmasq::{free_udp_and_tcp_port, Dnsmasq, ZONE};
use common::{run_turnpike as turnpike, Server};
use serde_json::Value;

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
    common::loopback_relay(&["--realm", "dns.example", "--users", "alice:alice-pass"])
}

fn host_record(name: &str) -> String {
    format!("--host-record={name}.{ZONE},127.0.0.1")
}

fn srv_record(service: &str, target: &str, port: u16, priority: u16, weight: u16) -> String {
    format!("--srv-host={service}.{ZONE},{target}.{ZONE},{port},{priority},{weight}")
}

/// A zone whose only STUN server is `relay.test.example` (127.0.0.1) on `port`, by SRV.
fn stun_zone(port: u16, priority: u16, weight: u16) -> Dnsmasq {
    Dnsmasq::start(&[
        srv_record("_stun._udp", "relay", port, priority, weight),
        host_record("relay"),
    ])
}

// RFC 8489 §8: `stun:HOST` without a port → SRV `_stun._udp.HOST`, whose target and port lead
// to the server (announced nowhere else).
#[test]
fn stun_finds_the_server_by_srv() {
    let server = serve();
    let port = server.address("udp").port();
    let dns = stun_zone(port, 10, 0);
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

fn naptr_record(order: u16, preference: u16, protocol: &str, srv: &str) -> String {
    format!("--naptr-record={ZONE},{order},{preference},S,RELAY:{protocol},,{srv}.{ZONE}")
}

/// `turnpike check --json ARGS…`: the exit code and the report of the first URI.
fn check_json(args: &[&str]) -> (i32, Value) {
    let mut all = vec!["check", "--json"];
    all.extend(args);
    let output = turnpike(&all);
    let report = json(&output);
    (output.status.code().unwrap(), report["results"][0].clone())
}

fn step_details(report: &Value, name: &str) -> Vec<String> {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"] == name)
        .map(|s| s["detail"].as_str().unwrap().to_owned())
        .collect()
}

// RFC 5928 §3: `turn:HOST` without port or transport → NAPTR RELAY:turn.* (order, then
// preference) → SRV → A; the allocation and relayed data go through the server found, over
// the transport the first record names. `check` shows each query and what was picked.
#[test]
fn check_allocates_through_naptr_and_srv() {
    let server = serve();
    let port = server.address("udp").port();
    let tcp_port = server.address("tcp").port();
    let dns = Dnsmasq::start(&[
        naptr_record(10, 20, "turn.udp", "_turn._udp"),
        naptr_record(10, 10, "turn.tcp", "_turn._tcp"),
        srv_record("_turn._udp", "relay", port, 0, 0),
        srv_record("_turn._tcp", "relay", tcp_port, 0, 0),
        host_record("relay"),
    ]);
    let uri = format!("turn:{ZONE}");
    let dns_server = dns.server();
    let args = [
        "-u",
        "alice",
        "-p",
        "alice-pass",
        "--dns-server",
        &dns_server,
    ];
    let (code, report) = check_json(&[&[uri.as_str()], &args[..]].concat());
    assert_eq!(code, 0, "{report}");
    // Preference 10 (TCP) before 20 (UDP) within order 10.
    assert_eq!(report["transport"], "tcp", "{report}");
    let expected = SocketAddr::from(([127, 0, 0, 1], tcp_port)).to_string();
    assert_eq!(report["server"], expected.as_str(), "{report}");
    let dns_steps = step_details(&report, "dns");
    assert!(
        dns_steps[0].starts_with(&format!("NAPTR {ZONE}: ")),
        "{dns_steps:?}"
    );
    assert!(
        dns_steps[0].contains(&format!("using _turn._tcp.{ZONE}, _turn._udp.{ZONE}")),
        "{dns_steps:?}"
    );
    assert!(
        dns_steps[1].starts_with(&format!("SRV _turn._tcp.{ZONE}: relay.{ZONE}:{tcp_port}")),
        "{dns_steps:?}"
    );
    assert!(
        dns_steps
            .last()
            .unwrap()
            .starts_with(&format!("using {expected} (tcp, relay.{ZONE})")),
        "{dns_steps:?}"
    );
    for step in ["allocate", "refresh"] {
        assert!(!step_details(&report, step).is_empty(), "{step}: {report}");
    }

    // ?transport=udp: SRV _turn._udp only, no NAPTR (RFC 5928 §3).
    let uri = format!("turn:{ZONE}?transport=udp");
    let (code, report) = check_json(&[&[uri.as_str()], &args[..]].concat());
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["transport"], "udp");
    let dns_steps = step_details(&report, "dns");
    assert!(
        dns_steps[0].starts_with(&format!("SRV _turn._udp.{ZONE}: ")),
        "{dns_steps:?}"
    );
}

// RFC 2782: when the first target does not answer, check goes on at the next one and says so.
#[test]
fn check_goes_on_at_the_next_srv_target() {
    let server = serve();
    let live = server.address("udp").port();
    let dead = free_udp_and_tcp_port();
    let dns = Dnsmasq::start(&[
        srv_record("_stun._udp", "dead", dead, 1, 0),
        srv_record("_stun._udp", "live", live, 2, 0),
        host_record("dead"),
        host_record("live"),
    ]);
    let uri = format!("stun:{ZONE}");
    let dns_server = dns.server();
    let (code, report) = check_json(&[&uri, "--timeout", "2", "--dns-server", &dns_server]);
    assert_eq!(code, 0, "{report}");
    let expected = SocketAddr::from(([127, 0, 0, 1], live)).to_string();
    assert_eq!(report["server"], expected.as_str(), "{report}");
    let next = step_details(&report, "next target");
    assert_eq!(
        next,
        [format!("{expected} answers: going on there")],
        "{report}"
    );
}

// Text output: each query on its own line, for an operator debugging their records; and a
// name with neither SRV nor address records fails at the dns step.
#[test]
fn check_prints_the_dns_steps() {
    let server = serve();
    let port = server.address("udp").port();
    let dns = stun_zone(port, 5, 7);
    let uri = format!("stun:{ZONE}");
    let output = turnpike(&["check", &uri, "--dns-server", &dns.server()]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains(&format!(
            "SRV _stun._udp.{ZONE}: relay.{ZONE}:{port} (priority 5, weight 7)"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "A/AAAA relay.{ZONE}: 127.0.0.1 (port {port}, udp)"
        )),
        "{text}"
    );

    let uri = format!("stun:nothing.{ZONE}");
    let output = turnpike(&["check", &uri, "--dns-server", &dns.server()]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(3), "{text}");
    assert!(
        text.contains(&format!("SRV _stun._udp.nothing.{ZONE}: no records")),
        "{text}"
    );
    assert!(
        text.contains(&format!("A/AAAA nothing.{ZONE}: no address")),
        "{text}"
    );
}

// `turnpike nat` finds its server the same way (RFC 8489 §8: SRV `_stun._udp`).
#[test]
fn nat_finds_the_server_by_srv() {
    let server = serve();
    let port = server.address("udp").port();
    let dns = stun_zone(port, 10, 0);
    let uri = format!("stun:{ZONE}");
    let output = turnpike(&[
        "nat",
        &uri,
        "--json",
        "--timeout",
        "2",
        "--dns-server",
        &dns.server(),
    ]);
    assert!(output.status.success(), "{output:?}");
    let expected = SocketAddr::from(([127, 0, 0, 1], port)).to_string();
    assert_eq!(json(&output)["servers"][0]["address"], expected.as_str());
}

// A DNS server that does not answer: the resolution gives up within the timeout with a
// clear message (never the real internet: --dns-server is a silent loopback port).
#[test]
fn a_silent_dns_server_is_reported() {
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dns_server = silent.local_addr().unwrap().to_string();
    let uri = format!("stun:{ZONE}");
    let started = std::time::Instant::now();
    let output = turnpike(&["stun", &uri, "--timeout", "1", "--dns-server", &dns_server]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot resolve {ZONE}")),
        "{stderr}"
    );
    // Generous: a loaded 2-core machine.
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}
