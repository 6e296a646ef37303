//! `turnpike check` run as an operator would, against `turnpike serve` on free loopback ports:
//! every step over UDP, TCP, TLS and DTLS, the exit code of each outcome, and the diagnoses of the
//! classic mistakes (wrong password, realm, REST credentials, certificates, nothing listening).
//! The same command against coturn's `turnserver` is in tests/interop/test_check.py.

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

mod common;

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::process::Output;

use common::{Server, TlsFiles};
use serde_json::Value;

const USER: &str = "alice";
const PASSWORD: &str = "alice-pass";
const REALM: &str = "check.example";
const SECRET: &str = "a-rest-secret-for-tests";

/// `turnpike check ARGS…` with no `TURNPIKE_*` or `RUST_LOG` from the environment.
fn check(args: &[&str]) -> Output {
    let mut command = common::turnpike_command(&["check"]);
    command.args(args);
    command.output().expect("the turnpike binary runs")
}

/// The JSON report of `turnpike check --json ARGS…` and the exit code.
fn check_json(args: &[&str]) -> (i32, Value) {
    let mut all = vec!["--json"];
    all.extend(args);
    let output = check(&all);
    let text = String::from_utf8_lossy(&output.stdout);
    let report = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {text}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code().unwrap(), report)
}

/// A server with a static user, REST secrets and (optionally) TLS, relaying on loopback.
fn start(tls: Option<&TlsFiles>) -> Server {
    start_with(tls, &[])
}

/// [`start`] with TLS over TCP and DTLS over UDP (RFC 7350), both with `files`.
fn start_dtls(files: &TlsFiles) -> Server {
    let dtls = [
        "--dtls-listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
    ];
    start_with(Some(files), &dtls)
}

/// [`start`], then `extra` arguments.
fn start_with(tls: Option<&TlsFiles>, extra: &[&str]) -> Server {
    let mut args = vec!["--realm", REALM, "--rest-secrets", SECRET];
    let user = format!("{USER}:{PASSWORD}");
    args.extend(["--users", &user]);
    let paths;
    if let Some(files) = tls {
        paths = (
            files.cert.to_str().unwrap().to_owned(),
            files.key.to_str().unwrap().to_owned(),
        );
        args.extend(["--tls-listen", "127.0.0.1:0", "--tls-cert", &paths.0]);
        args.extend(["--tls-key", &paths.1]);
    }
    args.extend(extra);
    common::loopback_relay(&args)
}

fn uri(scheme: &str, address: SocketAddr, query: &str) -> String {
    format!("{scheme}:{address}{query}")
}

/// The step names and verdicts of one result.
fn verdicts(result: &Value) -> Vec<(String, String)> {
    result["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["verdict"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn diagnoses(result: &Value) -> String {
    result["diagnoses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A certificate for `names` valid until `not_after`, written beside the server's files.
fn certificate(names: &[&str], not_after: (i32, u8, u8)) -> TlsFiles {
    TlsFiles::for_names(names, not_after)
}

// The whole list of RFC 8656 steps passes over UDP, TCP and TLS (RFC 7065 URIs), and a stun:
// URI gets the Binding only (RFC 7064).
#[test]
fn every_step_passes_over_udp_tcp_and_tls() {
    let files = certificate(&["localhost", "127.0.0.1"], (2999, 1, 1));
    let server = start(Some(&files));
    let (udp, tcp, tls) = (
        server.address("udp"),
        server.address("tcp"),
        server.address("tls"),
    );
    let uris = [
        uri("turn", udp, ""),
        uri("turn", tcp, "?transport=tcp"),
        uri("turns", tls, ""),
        uri("stun", udp, ""),
    ];
    let mut args: Vec<&str> = uris.iter().map(String::as_str).collect();
    let ca = files.cert.to_str().unwrap();
    args.extend(["--user", USER, "--password", PASSWORD, "--realm", REALM]);
    args.extend(["--ca-file", ca, "--count", "5", "--interval", "5"]);
    let (code, report) = check_json(&args);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["outcome"], "ok");
    let results = report["results"].as_array().unwrap();
    let turn_steps = [
        "allocate",
        "allocate (second)",
        "permissions",
        "send/data",
        "channels",
        "channel data",
        "refresh",
        "deallocate",
    ];
    for (result, transport) in results.iter().zip(["udp", "tcp", "tls", "udp"]) {
        assert_eq!(result["transport"], transport, "{result:#}");
        let steps = verdicts(result);
        assert!(steps.iter().all(|(_, v)| v == "ok"), "{result:#}");
        let names: Vec<&str> = steps.iter().map(|(n, _)| n.as_str()).collect();
        if result["uri"].as_str().unwrap().starts_with("stun:") {
            assert_eq!(names, ["dns", "binding"]);
            continue;
        }
        assert!(names.ends_with(&turn_steps), "{names:?}");
        let facts = &result["facts"];
        assert_eq!(facts["realm"], REALM);
        assert_eq!(facts["relayed"].as_array().unwrap().len(), 2);
        for framing in ["send_data", "channel_data"] {
            let stats = &facts[framing];
            assert_eq!(
                (
                    stats["sent"].as_u64(),
                    stats["delivered"].as_u64(),
                    stats["returned"].as_u64()
                ),
                (Some(5), Some(5), Some(5)),
                "{framing}: {stats}"
            );
            assert!(stats["rtt_ms_max"].as_f64().unwrap() < 5000.0);
        }
        assert!(diagnoses(result).is_empty(), "{result:#}");
    }
    let certificate = &results[2]["facts"]["certificate"];
    assert_eq!(
        certificate["names"],
        serde_json::json!(["localhost", "127.0.0.1"])
    );
    assert!(certificate["expires_in_days"].as_i64().unwrap() > 300 * 365);
    let text_args = [uris[0].as_str(), "-u", USER, "-p", PASSWORD, "--count", "2"];
    let text = String::from_utf8(check(&text_args).stdout).unwrap();
    assert!(
        text.contains("401 realm \"check.example\" → 200: relayed 127.0.0.1:"),
        "{text}"
    );
    assert!(text.contains("  result: ok"), "{text}");
}

// RFC 8489 §9.2.5: a 401 to the request signed with the fresh nonce means wrong credentials:
// exit 5, and the diagnosis names the realm the key is derived in.
#[test]
fn wrong_password_and_wrong_realm_are_authentication_failures() {
    let server = start(None);
    let target = uri("turn", server.address("udp"), "");
    let (code, report) = check_json(&[&target, "-u", USER, "-p", "not-the-password"]);
    assert_eq!(code, 5, "{report:#}");
    let result = &report["results"][0];
    assert_eq!(result["outcome"], "auth");
    assert_eq!(
        verdicts(result).last().unwrap(),
        &("allocate".into(), "fail".into())
    );
    let said = diagnoses(result);
    assert!(
        said.starts_with("Wrong username or password for realm \"check.example\""),
        "{said}"
    );

    let (code, report) = check_json(&[
        &target,
        "-u",
        USER,
        "-p",
        PASSWORD,
        "--realm",
        "other.example",
    ]);
    assert_eq!(code, 5, "{report:#}");
    let said = diagnoses(&report["results"][0]);
    assert!(
        said.contains("realm is \"check.example\", not \"other.example\""),
        "{said}"
    );
}

// TURN REST credentials (draft-uberti-behave-turn-rest-00 §2.2): minted with the server's
// secret they pass; with another secret, or expired, the diagnosis says which.
#[test]
fn rest_credentials_minted_wrong_and_expired() {
    let server = start(None);
    let target = uri("turn", server.address("tcp"), "?transport=tcp");
    let (code, report) = check_json(&[
        &target,
        "--rest-secret",
        SECRET,
        "--user",
        "probe",
        "--count",
        "2",
    ]);
    assert_eq!(code, 0, "{report:#}");

    let (code, report) = check_json(&[&target, "--rest-secret", "not-the-server-secret"]);
    assert_eq!(code, 5, "{report:#}");
    let said = diagnoses(&report["results"][0]);
    assert!(
        said.contains("--rest-secret is not one of the server's rest-secrets"),
        "{said}"
    );

    // Expired at 1000 s after the epoch, with the right password for that name.
    let name = "1000:probe";
    let password = turn::auth::rest::password(SECRET, name);
    let (code, report) = check_json(&[&target, "-u", name, "-p", &password]);
    assert_eq!(code, 5, "{report:#}");
    let said = diagnoses(&report["results"][0]);
    assert!(said.starts_with("The REST username expired"), "{said}");
}

// Certificates: a name the certificate does not hold, and one that has expired, fail the tls
// step (exit 4) with a diagnosis; --insecure goes on and warns.
#[test]
fn certificate_name_mismatch_and_expiry() {
    let files = certificate(&["turn.example.org"], (2999, 1, 1));
    let server = start(Some(&files));
    let target = uri("turns", server.address("tls"), "");
    let ca = files.cert.to_str().unwrap();
    let (code, report) = check_json(&[&target, "--ca-file", ca, "-u", USER, "-p", PASSWORD]);
    assert_eq!(code, 4, "{report:#}");
    let said = diagnoses(&report["results"][0]);
    assert!(
        said.contains("for turn.example.org, not 127.0.0.1"),
        "{said}"
    );
    drop(server);

    let files = certificate(&["127.0.0.1"], (2021, 1, 1));
    let server = start(Some(&files));
    let target = uri("turns", server.address("tls"), "");
    let ca = files.cert.to_str().unwrap();
    let (code, report) = check_json(&[&target, "--ca-file", ca, "-u", USER, "-p", PASSWORD]);
    assert_eq!(code, 4, "{report:#}");
    let result = &report["results"][0];
    assert!(
        result["facts"]["certificate"]["expires_in_days"]
            .as_i64()
            .unwrap()
            < -365
    );
    assert!(
        diagnoses(result).contains("The certificate expired"),
        "{result:#}"
    );

    let (code, report) = check_json(&[
        &target,
        "--insecure",
        "-u",
        USER,
        "-p",
        PASSWORD,
        "--count",
        "2",
    ]);
    assert_eq!(code, 0, "{report:#}");
    let steps = verdicts(&report["results"][0]);
    assert!(steps.contains(&("tls".into(), "warn".into())), "{steps:?}");
    assert_eq!(steps.last().unwrap(), &("deallocate".into(), "ok".into()));
}

// RFC 7350: `turns:…?transport=udp` is TURN over DTLS. Every step (Binding, two Allocates,
// permissions, data both ways in Send/Data and ChannelData, Refresh, deallocation) runs inside
// DTLS sessions, the certificate trusted through --ca-file.
#[test]
fn every_step_passes_over_dtls() {
    let files = certificate(&["localhost", "127.0.0.1"], (2999, 1, 1));
    let server = start_dtls(&files);
    let target = uri("turns", server.address("dtls"), "?transport=udp");
    let ca = files.cert.to_str().unwrap();
    let (code, report) = check_json(&[
        &target,
        "-u",
        USER,
        "-p",
        PASSWORD,
        "--realm",
        REALM,
        "--ca-file",
        ca,
        "--count",
        "5",
        "--interval",
        "5",
        // A bound, not a wait: the debug build's handshakes on a busy machine get room.
        "--timeout",
        "10",
    ]);
    assert_eq!(code, 0, "{report:#}");
    let result = &report["results"][0];
    assert_eq!(result["transport"], "dtls", "{result:#}");
    let steps = verdicts(result);
    assert!(steps.iter().all(|(_, v)| v == "ok"), "{result:#}");
    let names: Vec<&str> = steps.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "dns",
            "dtls",
            "binding",
            "allocate",
            "allocate (second)",
            "permissions",
            "send/data",
            "channels",
            "channel data",
            "refresh",
            "deallocate"
        ]
    );
    let facts = &result["facts"];
    assert!(facts["mapped"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert_eq!(facts["relayed"].as_array().unwrap().len(), 2);
    for framing in ["send_data", "channel_data"] {
        let stats = &facts[framing];
        assert_eq!(
            (stats["sent"].as_u64(), stats["returned"].as_u64()),
            (Some(5), Some(5)),
            "{framing}: {stats}"
        );
    }
    assert_eq!(
        facts["certificate"]["names"],
        serde_json::json!(["localhost", "127.0.0.1"])
    );
    assert!(diagnoses(result).is_empty(), "{result:#}");
    // Both sessions ended with a close_notify: the server holds them no longer (rather than
    // for tcp-idle-timeout, 300 s).
    common::scrape::wait_for(server.address("metrics"), "turnpike_dtls_sessions", 0.0);
}

// Over DTLS the certificate is checked as over TLS: without --ca-file a self-signed one is
// refused, a one-sentence diagnosis says why (exit 4); --insecure goes on with a warning.
#[test]
fn dtls_without_the_ca_file_is_a_certificate_failure() {
    let files = certificate(&["127.0.0.1"], (2999, 1, 1));
    let server = start_dtls(&files);
    let target = uri("turns", server.address("dtls"), "?transport=udp");
    let output = check(&[
        &target,
        "-u",
        USER,
        "-p",
        PASSWORD,
        "--json",
        "--timeout",
        "10",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let result = &report["results"][0];
    assert_eq!(
        verdicts(result).last().unwrap(),
        &("dtls".into(), "fail".into()),
        "{result:#}"
    );
    let said = diagnoses(result);
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(
        said.contains("not signed by a CA this client trusts"),
        "{said}"
    );
    assert_eq!(
        result["facts"]["certificate"]["names"],
        serde_json::json!(["127.0.0.1"])
    );

    let args: [&str; 10] = [
        &target,
        "-u",
        USER,
        "-p",
        PASSWORD,
        "--insecure",
        "--count",
        "2",
        "--timeout",
        "10",
    ];
    let (code, report) = check_json(&args);
    assert_eq!(code, 0, "{report:#}");
    let steps = verdicts(&report["results"][0]);
    assert!(steps.contains(&("dtls".into(), "warn".into())), "{steps:?}");
    assert_eq!(steps.last().unwrap(), &("deallocate".into(), "ok".into()));
}

// Nothing listening: UDP answered with ICMP port unreachable, TCP refused: exit 3. A UDP
// failure next to a working TCP URI of the same host says so.
#[test]
fn unreachable_servers_exit_3() {
    let server = start(None);
    // A port that was free a moment ago, for both UDP and TCP (a free UDP port may be a TCP
    // port in use: try another).
    let closed = (0..100)
        .find_map(|_| {
            let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
            let port = udp.local_addr().unwrap();
            TcpListener::bind(port).ok().map(|_| port)
        })
        .unwrap();
    let tcp = uri("turn", server.address("tcp"), "?transport=tcp");
    let dead_udp = uri("turn", closed, "");
    let (code, report) = check_json(&[
        &dead_udp,
        &tcp,
        "-u",
        USER,
        "-p",
        PASSWORD,
        "--timeout",
        "2",
        "--count",
        "2",
    ]);
    assert_eq!(code, 3, "{report:#}");
    let said = diagnoses(&report["results"][0]);
    assert!(said.contains("ICMP port unreachable"), "{said}");
    assert!(
        said.contains("UDP is blocked but TCP to the same host works"),
        "{said}"
    );
    assert_eq!(report["results"][1]["outcome"], "ok");

    // RFC 7350: nothing speaks DTLS there either; the handshake is refused by ICMP.
    let dead_dtls = uri("turns", closed, "?transport=udp");
    let args: [&str; 7] = [&dead_dtls, "-u", USER, "-p", PASSWORD, "--timeout", "2"];
    let (code, report) = check_json(&args);
    assert_eq!(code, 3, "{report:#}");
    let result = &report["results"][0];
    assert_eq!(
        verdicts(result).last().unwrap(),
        &("dtls".into(), "fail".into())
    );
    assert!(
        diagnoses(result).contains("ICMP port unreachable"),
        "{result:#}"
    );

    let dead_tcp = uri("turn", closed, "?transport=tcp");
    let (code, report) = check_json(&[&dead_tcp, "-u", USER, "-p", PASSWORD]);
    assert_eq!(code, 3, "{report:#}");
    assert!(diagnoses(&report["results"][0]).contains("Nothing accepts TCP connections"));
}

// A TCP port that accepts connections but never speaks STUN: no answer to the Binding
// (RFC 8489 §6.2.2: one request, no retransmission over TCP), exit 3.
#[test]
fn a_silent_tcp_server_is_unreachable() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    // Accepts and holds connections until the test process ends.
    std::thread::spawn(move || {
        let held: Vec<_> = listener.incoming().map_while(Result::ok).collect();
        drop(held);
    });
    let target = uri("turn", address, "?transport=tcp");
    let (code, report) = check_json(&[&target, "-u", USER, "-p", PASSWORD, "--timeout", "1"]);
    assert_eq!(code, 3, "{report:#}");
    let result = &report["results"][0];
    assert_eq!(
        verdicts(result).last().unwrap(),
        &("binding".into(), "fail".into())
    );
    assert!(
        diagnoses(result).contains("does not answer STUN"),
        "{result:#}"
    );
}

// Usage errors exit 2: a TURN URI without credentials, a bad URI, nothing to check.
#[test]
fn usage_errors_exit_2() {
    for args in [
        &["turn:127.0.0.1:3478"][..],
        &["turn://127.0.0.1"][..],
        &["turn:127.0.0.1:3478", "-p", "b"][..],
        &[][..],
    ] {
        let output = check(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
        assert!(!output.stderr.is_empty());
    }
}
