//! ALTERNATE-SERVER between two real `turnpike serve` processes (RFC 8656 §7.2 step 11, RFC
//! 8489 §10): node A holds one allocation at most (`total-quota = 1`) and names node B in
//! `alternate-server`; `turnpike check` against A makes its first allocation on A, is sent to
//! B by a 300 for the second, and relays data between the two. A logs the refusal with its
//! cause and the 300 it sent. Over TLS and DTLS, B's certificate carries another name than
//! A's, which A names in ALTERNATE-DOMAIN (`tls-alternate-domain`).

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

mod common;

use std::net::SocketAddr;
use std::process::Command;

use common::{Server, TlsFiles};
use serde_json::Value;

const USER: &str = "alice";
const PASSWORD: &str = "alice-pass";
const REALM: &str = "fleet.example";

/// A node relaying on loopback, where the other node's relay addresses are peers too.
fn node(extra: &[&str]) -> Server {
    let user = format!("{USER}:{PASSWORD}");
    let mut args = vec![
        "--realm",
        REALM,
        "--users",
        &user,
        // The other node's relay addresses are loopback addresses, denied by default.
        "--allowed-peers",
        "127.0.0.1/32",
    ];
    args.extend(extra);
    common::loopback_relay(&args)
}

/// `turnpike check --json URI` with alice's credentials: exit code and the one result.
fn check(uri: &str) -> (i32, Value) {
    check_with(uri, &[])
}

/// [`check`], then `extra` arguments.
fn check_with(uri: &str, extra: &[&str]) -> (i32, Value) {
    let output = Command::new(env!("CARGO_BIN_EXE_turnpike"))
        .args([
            "check",
            "--json",
            uri,
            "--user",
            USER,
            "--password",
            PASSWORD,
        ])
        .args(["--count", "5", "--interval", "5"])
        .args(extra)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {text}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code().unwrap(), report["results"][0].clone())
}

fn step<'a>(result: &'a Value, name: &str) -> &'a Value {
    result["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name}: {result:#}"))
}

/// The check passed: exit 0, every step ok (there are steps: at least the two allocations).
fn passed(code: i32, result: &Value, transport: &str) {
    assert_eq!(code, 0, "{transport}: {result:#}");
    let steps = result["steps"].as_array().unwrap();
    assert!(steps.len() > 2, "{transport}: {result:#}");
    assert!(
        steps.iter().all(|s| s["verdict"] == "ok"),
        "{transport}: {result:#}"
    );
}

/// A's `server_error` log lines: (code, cause).
fn server_errors(log: &[Value]) -> Vec<(u64, String)> {
    log.iter()
        .filter(|l| l["target"] == "turnpike::server_error")
        .map(|l| {
            let fields = &l["fields"];
            (
                fields["code"].as_u64().unwrap(),
                fields["cause"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_full_node_sends_the_second_allocation_to_its_alternate_over_udp_and_tcp() {
    let b = node(&[]);
    let (b_udp, b_tcp) = (b.address("udp"), b.address("tcp"));
    // One address serves both transports (`alternate-server` has one per family): the test
    // relies on B's UDP and TCP listeners sharing the port, as `listen` binds them.
    assert_eq!(b_udp, b_tcp, "B listens on one port for UDP and TCP");
    let alternate = b_udp.to_string();
    let a = node(&["--total-quota", "1", "--alternate-server", &alternate]);
    for (transport, query) in [("udp", ""), ("tcp", "?transport=tcp")] {
        let a_addr: SocketAddr = a.address(transport);
        let (code, result) = check(&format!("turn:{a_addr}{query}"));
        passed(code, &result, transport);
        let redirect = step(&result, "redirect")["detail"].as_str().unwrap();
        assert_eq!(
            redirect,
            format!("{a_addr} answered 300 (Try Alternate): allocating at {b_udp}")
        );
        assert_eq!(
            result["facts"]["redirected_to"],
            serde_json::json!([alternate])
        );
        let second = step(&result, "allocate (second)")["detail"]
            .as_str()
            .unwrap();
        assert!(
            second.contains(&format!("→ 300 → {b_udp} → 401 realm \"{REALM}\" → 200")),
            "{second}"
        );
        // Data went both ways between an allocation on A and one on B.
        for framing in ["send_data", "channel_data"] {
            let stats = &result["facts"][framing];
            assert_eq!(stats["returned"].as_u64(), Some(5), "{framing}: {stats}");
        }
    }
    let (a_status, a_log) = a.stop_with_log();
    assert_eq!(a_status, Some(0));
    let errors = server_errors(&a_log);
    assert!(
        errors
            .iter()
            .any(|(code, cause)| *code == 300 && cause == "total quota reached"),
        "A logs the redirect with its cause: {errors:?}"
    );
    let (b_status, b_log) = b.stop_with_log();
    assert_eq!(b_status, Some(0));
    assert!(server_errors(&b_log).is_empty(), "{b_log:?}");
}

/// A's and B's certificates: A's for the address the check is given, B's for a name only
/// ALTERNATE-DOMAIN can tell the client; one file trusting both for `--ca-file`.
struct Certificates {
    a: TlsFiles,
    b: TlsFiles,
    both: tempfile::NamedTempFile,
}

const B_NAME: &str = "turn-b.fleet.example";

impl Certificates {
    fn new() -> Certificates {
        let a = TlsFiles::for_names(&["127.0.0.1"], (2999, 1, 1));
        let b = TlsFiles::for_names(&[B_NAME], (2999, 1, 1));
        let both = tempfile::NamedTempFile::new().unwrap();
        let pem = [&a.cert, &b.cert].map(|c| std::fs::read_to_string(c).unwrap());
        std::fs::write(both.path(), pem.concat()).unwrap();
        Certificates { a, b, both }
    }

    fn ca_file(&self) -> &str {
        self.both.path().to_str().unwrap()
    }
}

/// A node serving TLS and DTLS with `files`, then `extra`.
fn tls_node(files: &TlsFiles, extra: &[&str]) -> Server {
    let (cert, key) = (files.cert.to_str().unwrap(), files.key.to_str().unwrap());
    let mut args = vec![
        "--tls-listen",
        "127.0.0.1:0",
        "--dtls-listen",
        "127.0.0.1:0",
    ];
    args.extend(["--tls-cert", cert, "--tls-key", key]);
    args.extend(extra);
    node(&args)
}

// RFC 8489 §10: a client redirected over TLS or DTLS checks the alternate's certificate
// against ALTERNATE-DOMAIN, which the server sends to a request signed with
// MESSAGE-INTEGRITY-SHA256 (turnpike check signs so once the server offers
// PASSWORD-ALGORITHMS). B's certificate names only B_NAME: the second allocation succeeds on
// B over TLS and over DTLS with A's `tls-alternate-domain`, and without it the check refuses
// B's certificate for A's name.
#[test]
fn a_full_node_sends_tls_and_dtls_clients_to_its_alternate_with_the_certificate_name() {
    let certs = Certificates::new();
    let b = tls_node(&certs.b, &[]);
    for (transport, query) in [("tls", ""), ("dtls", "?transport=udp")] {
        let b_addr = b.address(transport).to_string();
        let a = tls_node(
            &certs.a,
            &[
                "--total-quota",
                "1",
                "--tls-alternate-server",
                &b_addr,
                "--tls-alternate-domain",
                B_NAME,
            ],
        );
        let uri = format!("turns:{}{query}", a.address(transport));
        let (code, result) = check_with(&uri, &["--ca-file", certs.ca_file()]);
        passed(code, &result, transport);
        let redirect = step(&result, "redirect")["detail"].as_str().unwrap();
        assert!(
            redirect.ends_with(&format!(
                "allocating at {b_addr}, its certificate as {B_NAME}"
            )),
            "{transport}: {redirect}"
        );
        for framing in ["send_data", "channel_data"] {
            let stats = &result["facts"][framing];
            assert_eq!(
                stats["returned"].as_u64(),
                Some(5),
                "{transport} {framing}: {stats}"
            );
        }
        assert_eq!(a.stop(), Some(0));
    }
    // Without the name, the client checks B against the name it used for A, and B's
    // certificate does not carry it.
    let b_tls = b.address("tls").to_string();
    let a = tls_node(
        &certs.a,
        &["--total-quota", "1", "--tls-alternate-server", &b_tls],
    );
    let uri = format!("turns:{}", a.address("tls"));
    let (code, result) = check_with(&uri, &["--ca-file", certs.ca_file()]);
    assert_ne!(code, 0, "{result:#}");
    let redirect = step(&result, "redirect")["detail"].as_str().unwrap();
    assert!(
        redirect.ends_with(&format!("allocating at {b_tls}")),
        "{redirect}"
    );
    let second = step(&result, "allocate (second)");
    assert_eq!(second["verdict"], "fail", "{result:#}");
    let detail = second["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("TLS with {b_tls} as 127.0.0.1")),
        "{detail}"
    );
    assert_eq!(a.stop(), Some(0));
    assert_eq!(b.stop(), Some(0));
}
