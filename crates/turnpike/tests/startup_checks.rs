//! `turnpike serve` checks the host before it says "ready": an `external-ip` PRIVATE address
//! the host lacks is refused (exit 2, like a configuration error), the soft open-file limit is
//! raised to the hard one, and a hard limit too low for `total-quota` is logged with both
//! numbers.

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use std::io::Read;
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

use common::Server;

/// Runs `turnpike serve ARGS` (HTTP off) expecting it to refuse to start at once; returns
/// stderr. A server that starts instead is killed after 20 s and fails the test.
fn refused(args: &[&str]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_turnpike"))
        .arg("serve")
        .args(["--listen", "127.0.0.1:0", "--http", "false"])
        .args(["--metrics-listen", "off"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let code = status.and_then(|status| status.code());
    assert_eq!(
        code,
        Some(2),
        "still running after 20 s, or not exit 2: {stderr}"
    );
    stderr
}

/// A documentation address (RFC 5737) that no interface of this host has (test machines do
/// use some of them).
fn absent_address() -> String {
    let host: Vec<IpAddr> = if_addrs::get_if_addrs()
        .unwrap()
        .iter()
        .map(if_addrs::Interface::ip)
        .collect();
    (1..=254)
        .map(|last| IpAddr::from([198, 51, 100, last]))
        .find(|ip| !host.contains(ip))
        .unwrap()
        .to_string()
}

// An address the host lacks: relay sockets could not bind it, so every Allocate would fail
// with 508 behind a server that said "ready".
#[test]
fn an_external_ip_private_address_not_on_the_host_is_refused() {
    let private = &absent_address();
    let entry = format!("203.0.113.7/{private}");
    let stderr = refused(&["--external-ip", &entry]);
    let expected = format!(
        "--external-ip: `{entry}`: the PRIVATE address `{private}` is not an address of this host"
    );
    assert!(stderr.contains(&expected), "{stderr}");
}

#[test]
fn in_a_file_the_problem_is_located_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("turnpike.toml");
    let private = &absent_address();
    std::fs::write(
        &file,
        format!("realm = \"example.org\"\nexternal-ip = [\"203.0.113.1/{private}\"]\n"),
    )
    .unwrap();
    let stderr = refused(&["--config", file.to_str().unwrap()]);
    let expected = format!(
        "{}:2: key `external-ip`: `203.0.113.1/{private}`: the PRIVATE address `{private}`",
        file.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
}

#[test]
fn an_external_ip_private_address_of_the_host_starts() {
    let server = Server::spawn(
        &[
            "--listen",
            "127.0.0.1:0",
            "--tcp",
            "false",
            "--external-ip",
            "203.0.113.7/127.0.0.1",
        ],
        |command| {
            command.env("TURNPIKE_HTTP", "false");
        },
    );
    assert_eq!(server.stop(), Some(0));
}

/// The "Max open files" soft and hard limits of process `pid`, from /proc.
fn open_file_limits(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    (fields[3].to_owned(), fields[4].to_owned())
}

/// The WARN lines of `server`'s start-up log.
fn startup_warnings(server: &Server) -> Vec<&Value> {
    server
        .startup
        .iter()
        .filter(|line| line["level"] == "WARN")
        .collect()
}

/// A server under `prlimit --nofile=SOFT:HARD`, relaying IPv4 only, TCP off, HTTP off.
fn start_limited(soft_hard: &str, total_quota: &str) -> Server {
    let nofile = format!("--nofile={soft_hard}");
    Server::spawn_wrapped(
        &["prlimit", &nofile, "--"],
        &[
            "--listen",
            "127.0.0.1:0",
            "--relay-ip",
            "127.0.0.1",
            "--tcp",
            "false",
            "--http",
            "false",
            "--total-quota",
            total_quota,
        ],
        |_| {},
    )
}

#[test]
fn the_soft_open_file_limit_is_raised_to_the_hard_one() {
    let server = start_limited("200:4096", "100");
    assert_eq!(
        open_file_limits(server.child.id()),
        ("4096".to_owned(), "4096".to_owned())
    );
    // 100 relay sockets and the listeners fit in 4096: nothing to warn about.
    let warnings = startup_warnings(&server);
    assert!(
        !warnings.iter().any(|w| w["fields"]["limit"].is_u64()),
        "{warnings:?}"
    );
    assert_eq!(server.stop(), Some(0));
}

#[test]
fn a_hard_limit_below_total_quota_is_a_warning_with_both_numbers() {
    let server = start_limited("256:256", "100000");
    let warning = startup_warnings(&server)
        .into_iter()
        .find(|w| w["fields"]["limit"].is_u64())
        .cloned()
        .unwrap_or_else(|| panic!("no open-file warning in {:?}", server.startup));
    let fields = &warning["fields"];
    assert_eq!(fields["limit"], 256);
    assert_eq!(fields["total_quota"], 100_000);
    assert_eq!(fields["relay_sockets"], 100_000);
    assert!(fields["needed"].as_u64().unwrap() > 100_000, "{fields}");
    let message = fields["message"].as_str().unwrap();
    assert!(
        message.contains("RLIMIT_NOFILE) is 256") && message.contains("`total-quota` 100000"),
        "{message}"
    );
    // A warning, not a refusal: the server runs and stops cleanly.
    assert_eq!(server.stop(), Some(0));
}

#[test]
fn a_certificate_that_does_not_parse_is_a_configuration_error_naming_its_key() {
    // `config check` accepts any readable file (a package build may ship placeholders); the
    // server reads them before binding anything and refuses them like a bad key: exit 2.
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, "not a certificate\n").unwrap();
    std::fs::write(&key, "not a key either\n").unwrap();
    let stderr = refused(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "--tls-listen",
        "127.0.0.1:0",
    ]);
    assert!(stderr.contains("tls-cert"), "{stderr}");
    assert!(stderr.contains("cert.pem"), "{stderr}");
}
