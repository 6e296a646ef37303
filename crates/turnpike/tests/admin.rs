//! The admin API and `turnpike admin` (docs/operations.md, "Admin"): off without
//! `admin-token`, bearer token required, sessions listed with their traffic, kick ending an
//! allocation (its relay stops), info, and the CLI's token sources and output.

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;

use serde_json::Value;

mod common;
mod control_support;

use control_support::{admin, http, peer, ConfigFile, Turn, PATIENCE, TOKEN};

const USERS: &str = "users = [\"alice:alice-pw\", \"bob:bob-pw\"]";

fn with_admin() -> (ConfigFile, common::Server) {
    let file = ConfigFile::new(&format!(
        "{USERS}\nadmin-token = \"{TOKEN}\"\nadmin-listen = \"127.0.0.1:0\""
    ));
    let server = file.serve(&[]);
    (file, server)
}

fn json(output: &std::process::Output) -> Value {
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn nothing_listens_without_an_admin_token() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let file = ConfigFile::new(&format!("{USERS}\nadmin-listen = \"127.0.0.1:{port}\""));
    let server = file.serve(&[]);
    let transports: Vec<&str> = server.listening.iter().map(|(t, _)| t.as_str()).collect();
    assert!(transports.contains(&"udp"), "{transports:?}");
    assert!(!transports.contains(&"admin"), "{transports:?}");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    assert!(
        TcpStream::connect(addr).is_err(),
        "something answers on {addr}"
    );
}

#[test]
fn every_route_needs_the_bearer_token() {
    let (_file, server) = with_admin();
    let api = server.address("admin");
    for (method, path) in [
        ("GET", "/v1/info"),
        ("GET", "/v1/sessions"),
        ("POST", "/v1/drain"),
        ("GET", "/nope"),
    ] {
        assert_eq!(
            http(api, method, path, None).0,
            401,
            "{path} without a token"
        );
        assert_eq!(
            http(api, method, path, Some("not-the-token-at-all")).0,
            401,
            "{path}"
        );
        assert_eq!(
            http(api, method, path, Some(&TOKEN[1..])).0,
            401,
            "{path}: a prefix"
        );
    }
    let (status, body) = http(api, "GET", "/v1/info", Some(TOKEN));
    assert_eq!(status, 200);
    let info: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["draining"], false);
    assert_eq!(info["allocations"], 0);
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    // With the token: unknown routes and malformed kicks are errors, not actions.
    assert_eq!(http(api, "GET", "/v1/nope", Some(TOKEN)).0, 404);
    let kick = |body: &str| {
        let mut stream = TcpStream::connect(api).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        write!(
            stream,
            "POST /v1/kick HTTP/1.1\r\nHost: {api}\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer.split(' ').nth(1).unwrap().to_owned()
    };
    assert_eq!(kick(r#"{"user": "alice", "client": "127.0.0.1:1"}"#), "400");
    assert_eq!(kick(r#"{}"#), "400");
    assert_eq!(kick(r#"{"client": "not an address"}"#), "400");
    assert_eq!(kick(r#"{"user": "nobody"}"#), "200");
    // The refused drain above did not start one.
    assert_eq!(http(server.address("http"), "GET", "/healthz", None).0, 200);
}

#[test]
fn sessions_list_each_allocation_with_its_traffic() {
    let (_file, server) = with_admin();
    let udp = server.address("udp");
    let peer = peer();
    let (mut alice, relayed) = Turn::relayed(udp, "alice", "alice-pw");
    assert!(alice.round_trip(&peer, relayed, b"ping", PATIENCE));

    let sessions = json(&admin(&server, &["--json", "sessions"]));
    let sessions = sessions.as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    let s = &sessions[0];
    assert_eq!(s["user"], "alice");
    assert_eq!(s["client"], alice.socket.local_addr().unwrap().to_string());
    assert_eq!(s["server"], udp.to_string());
    assert_eq!(s["transport"], "udp");
    assert_eq!(s["relays"][0], relayed.to_string());
    // At least the packet that reached the peer and the answer that came back.
    assert!(s["to_peer_packets"].as_u64().unwrap() >= 1, "{s}");
    assert!(s["to_peer_bytes"].as_u64().unwrap() >= 4, "{s}");
    assert_eq!(s["to_client_packets"], 1, "{s}");
    assert_eq!(s["to_client_bytes"], 4, "{s}");

    let output = admin(&server, &["sessions"]);
    assert!(output.status.success(), "{output:?}");
    let table = String::from_utf8_lossy(&output.stdout);
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "USER",
            "CLIENT",
            "PROTO",
            "RELAY",
            "AGE",
            "TO-PEER",
            "TO-CLIENT"
        ]
    );
    let row = lines.next().unwrap();
    assert!(
        row.starts_with("alice") && row.contains(&relayed.to_string()),
        "{table}"
    );
    assert!(row.contains("1p/4B"), "{table}");
    assert_eq!(lines.next(), Some("1 allocation(s)"));

    let info = json(&admin(&server, &["--json", "info"]));
    assert_eq!(info["allocations"], 1);
}

#[test]
fn kick_ends_the_allocation_and_its_relay() {
    let (_file, server) = with_admin();
    let udp = server.address("udp");
    let peer = peer();
    let (mut alice, relayed) = Turn::relayed(udp, "alice", "alice-pw");
    let (mut bob, bob_relayed) = Turn::relayed(udp, "bob", "bob-pw");
    let (_bob2, _) = Turn::relayed(udp, "bob", "bob-pw");
    assert!(alice.round_trip(&peer, relayed, b"before", PATIENCE));

    let client = alice.socket.local_addr().unwrap().to_string();
    let output = admin(&server, &["kick", &client]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "kicked 1 allocation(s)\n"
    );
    // Its relay is gone: nothing comes back through it any more.
    assert!(!alice.round_trip(&peer, relayed, b"after", std::time::Duration::from_secs(2)));
    assert!(
        bob.round_trip(&peer, bob_relayed, b"bob", PATIENCE),
        "others are untouched"
    );

    let kicked = json(&admin(&server, &["--json", "kick", "--user", "bob"]));
    assert_eq!(kicked["kicked"], 2);
    assert!(!bob.round_trip(
        &peer,
        bob_relayed,
        b"gone",
        std::time::Duration::from_secs(2)
    ));
    assert_eq!(
        json(&admin(&server, &["--json", "sessions"])),
        Value::Array(vec![])
    );
}

#[test]
fn the_cli_reads_the_token_from_a_file_or_the_configuration_never_from_argv() {
    let (file, server) = with_admin();
    let url = format!("http://{}", server.address("admin"));
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_turnpike"))
            .arg("admin")
            .args(args)
            .env_remove("TURNPIKE_ADMIN_TOKEN")
            .env_remove("TURNPIKE_CONFIG")
            .env_remove("TURNPIKE_ADMIN_URL")
            .output()
            .unwrap()
    };
    let token_file = file.dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let output = run(&[
        "--url",
        &url,
        "--token-file",
        token_file.to_str().unwrap(),
        "info",
    ]);
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("draining     no"));
    // admin-token from the server's file (admin-listen there is port 0, so --url still).
    let output = run(&["--url", &url, "-c", file.path.to_str().unwrap(), "info"]);
    assert!(output.status.success(), "{output:?}");
    // No token: a usage error, before any connection.
    let output = run(&["--url", &url, "info"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("no admin token"));
    // There is no --token flag.
    let output = run(&["--url", &url, "--token", TOKEN, "info"]);
    assert_eq!(output.status.code(), Some(2));
    // A wrong token is refused, and the error says so.
    std::fs::write(&token_file, "wrong-token-wrong-token\n").unwrap();
    let output = run(&[
        "--url",
        &url,
        "--token-file",
        token_file.to_str().unwrap(),
        "info",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("refused the token (401)"));
}

#[test]
fn reload_through_the_cli_prints_the_problems_of_an_invalid_file() {
    let (file, server) = with_admin();
    file.write(&format!(
        "{USERS}\nadmin-token = \"{TOKEN}\"\nadmin-listen = \"127.0.0.1:0\"\nmax-channels = 0"
    ));
    let output = admin(&server, &["reload"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not reloaded"), "{stderr}");
    assert!(
        stderr.contains("key `max-channels`: 0 is out of range 1..=4096"),
        "{stderr}"
    );
    let answer = json(&{
        let mut output = admin(&server, &["--json", "reload"]);
        // --json prints the answer; the exit status still says it was refused.
        assert_eq!(output.status.code(), Some(1));
        output.status = std::process::ExitStatus::default();
        output
    });
    assert_eq!(answer["reloaded"], false);
    assert_eq!(answer["problems"].as_array().unwrap().len(), 1);
}

#[test]
fn a_client_that_never_finishes_its_request_head_is_cut_at_the_header_deadline() {
    // The admin listener has the HTTP server's 10 s request-head deadline: a local process that
    // opens connections and sends half a request cannot hold them.
    let (_file, server) = with_admin();
    let mut tcp = TcpStream::connect(server.address("admin")).unwrap();
    tcp.write_all(b"GET /v1/info HTTP/1.1\r\nHost: h\r\n")
        .unwrap();
    let started = std::time::Instant::now();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(40)))
        .unwrap();
    let mut rest = Vec::new();
    let _ = tcp.read_to_end(&mut rest);
    let took = started.elapsed();
    assert!(
        took >= std::time::Duration::from_secs(9) && took < std::time::Duration::from_secs(25),
        "closed after {took:?}"
    );
}
