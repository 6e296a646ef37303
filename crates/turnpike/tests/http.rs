//! The HTTP server of `turnpike serve` over real loopback sockets: health check, pages, the ICE
//! server API (whose TURN credential must work against the same server), the signaling
//! WebSocket (docs/signaling.md), the origin allow-list, join tokens and `turnpike token`.

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use stun::Class;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message as Frame};

/// A secret for the token tests (at least 16 bytes).
const SECRET: &str = "0123456789abcdef0123";

mod common;

use common::signaling_client::Client;
use common::{allocate, Server};

/// Starts a server on free loopback ports, relaying on loopback, with `args` added.
fn start(args: &[&str]) -> Server {
    let mut all = vec!["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"];
    all.extend(["--relay-ip", "127.0.0.1"]);
    all.extend(args);
    Server::spawn(&all, |command| {
        command.env_remove("TURNPIKE_SIGNALING_SECRET");
    })
}

/// The HTTP listener of `server`.
fn http(server: &Server) -> SocketAddr {
    server.address("http")
}

/// An HTTP response: status, headers (lowercase names), body.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// `GET path` over HTTP/1.1 with `Host: host` and `headers`, read to the end.
fn get(addr: SocketAddr, host: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    tcp.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|line| {
            let (name, value) = line.split_once(':').unwrap();
            (name.trim().to_ascii_lowercase(), value.trim().to_owned())
        })
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Response {
        status,
        headers,
        body,
    }
}

/// Decodes a chunked body (RFC 9112 §7.1).
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").unwrap();
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
}

/// The `turn:` entry of an ICE server list: (username, credential).
fn turn_credential(servers: &Value) -> (String, String) {
    let turn = servers
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["urls"][0].as_str().unwrap().starts_with("turn"))
        .unwrap();
    (
        turn["username"].as_str().unwrap().to_owned(),
        turn["credential"].as_str().unwrap().to_owned(),
    )
}

/// Runs `turnpike ARGS` with no signaling secret in the environment.
fn turnpike(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_turnpike"))
        .args(args)
        .env_remove("TURNPIKE_SIGNALING_SECRET")
        .env_remove("TURNPIKE_CONFIG")
        .output()
        .unwrap()
}

#[test]
fn health_check_pages_and_404() {
    let server = start(&[]);
    let health = get(http(&server), "localhost", "/healthz", &[]);
    assert_eq!((health.status, health.body.as_str()), (200, "ok"));
    let pages = [
        ("/", "text/html; charset=utf-8"),
        ("/room/lobby", "text/html; charset=utf-8"),
        ("/diagnostics", "text/html; charset=utf-8"),
        ("/static/style.css", "text/css; charset=utf-8"),
        ("/static/signaling.js", "text/javascript; charset=utf-8"),
        ("/static/room.js", "text/javascript; charset=utf-8"),
        ("/static/diagnostics.js", "text/javascript; charset=utf-8"),
    ];
    for (path, content_type) in pages {
        let page = get(http(&server), "localhost", path, &[]);
        assert_eq!(page.status, 200, "{path}");
        assert_eq!(page.header("content-type"), Some(content_type), "{path}");
        assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
        let csp = page.header("content-security-policy").unwrap();
        assert!(csp.contains("default-src 'self'"), "{csp}");
        assert!(csp.contains("connect-src 'self' ws: wss:"), "{csp}");
        assert!(!page.body.is_empty(), "{path}");
    }
    // Every room gets the same page.
    assert_eq!(
        get(http(&server), "localhost", "/room/a", &[]).body,
        get(http(&server), "localhost", "/room/other-room", &[]).body
    );
    for path in [
        "/nope",
        "/static/nope.js",
        "/static/../index.html",
        "/room/",
        "/api",
    ] {
        assert_eq!(
            get(http(&server), "localhost", path, &[]).status,
            404,
            "{path}"
        );
    }
}

#[test]
fn ice_servers_hand_out_a_working_turn_credential() {
    let server = start(&[]);
    let port = server.address("udp").port();
    let response = get(
        http(&server),
        &format!("localhost:{}", http(&server).port()),
        "/api/ice-servers",
        &[],
    );
    assert_eq!(response.status, 200);
    assert_eq!(response.header("cache-control"), Some("no-store"));
    assert_eq!(response.header("content-type"), Some("application/json"));
    let body = response.json();
    assert_eq!(body["iceTtl"], 86_400);
    let servers = &body["iceServers"];
    assert_eq!(
        servers[0],
        json!({ "urls": [format!("stun:localhost:{port}")] })
    );
    assert_eq!(
        servers[1]["urls"],
        json!([
            format!("turn:localhost:{port}?transport=udp"),
            format!("turn:localhost:{port}?transport=tcp"),
        ])
    );
    let (username, credential) = turn_credential(servers);
    let (expiry, id) = username.split_once(':').unwrap();
    assert_eq!(id, "turnpike");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expiry: u64 = expiry.parse().unwrap();
    assert!(expiry.abs_diff(now + 86_400) < 60, "{expiry} vs {now}");
    assert_eq!(
        allocate(server.address("udp"), &username, &credential),
        Class::Success
    );
    assert_eq!(
        allocate(server.address("udp"), &username, "wrong"),
        Class::Error
    );
}

// Issue #10: with static users and no `rest-secrets`, no REST credential is minted: the API
// and `joined` list STUN URLs only (before: a made-up secret minted working 24 h credentials).
#[test]
fn users_without_rest_secrets_get_stun_urls_only() {
    let server = start(&["--users", "alice:wonderland", "--ice-ttl", "600"]);
    assert!(
        !server
            .startup
            .iter()
            .any(|v| v["fields"]["password"].is_string()),
        "no credential printed"
    );
    assert!(
        server.startup.iter().any(|v| v["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no `rest-secrets`"))),
        "one line says why and what to configure"
    );
    let port = server.address("udp").port();
    let stun_only = json!([{ "urls": [format!("stun:localhost:{port}")] }]);
    let body = get(http(&server), "localhost", "/api/ice-servers", &[]).json();
    assert_eq!(body["iceServers"], stun_only);
    let mut client = Client::open(http(&server));
    let joined = client.join("users", None);
    assert_eq!(
        joined["iceServers"],
        json!([{ "urls": [format!("stun:127.0.0.1:{port}")] }])
    );
    assert_eq!(
        allocate(server.address("udp"), "alice", "wonderland"),
        Class::Success
    );
}

/// The ICE servers of `GET /api/ice-servers` with `headers`, and whether a `turn:` entry is
/// among them.
fn has_turn(server: &Server, headers: &[(&str, &str)]) -> bool {
    let response = get(http(server), "localhost", "/api/ice-servers", headers);
    assert_eq!(response.status, 200, "{}", response.body);
    response.json()["iceServers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["username"].is_string())
}

// Issue #10 rule 3: without a signaling secret, a caller behind a proxy header (a reverse
// proxy on this host would make every internet caller loopback) gets STUN URLs only, in the
// API and in `joined`; `open-credentials` hands credentials to everyone, with a warning.
#[test]
fn proxied_callers_get_no_credential_without_a_secret() {
    let server = start(&[]);
    assert!(has_turn(&server, &[]), "a local caller does");
    for header in [
        ("X-Forwarded-For", "203.0.113.7"),
        ("X-Real-IP", "203.0.113.7"),
        ("Forwarded", "for=203.0.113.7"),
    ] {
        assert!(!has_turn(&server, &[header]), "{header:?}");
    }
    let mut request = format!("ws://{}/ws", http(&server))
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("X-Forwarded-For", "203.0.113.7".parse().unwrap());
    let tcp = TcpStream::connect(http(&server)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut proxied = Client(tungstenite::client(request, tcp).ok().unwrap().0);
    let joined = proxied.join("proxied", None);
    assert_eq!(
        joined["iceServers"].as_array().unwrap().len(),
        1,
        "{joined}"
    );
    let mut local = Client::open(http(&server));
    let (username, _) = turn_credential(&local.join("proxied", None)["iceServers"]);
    assert!(username.ends_with(":turnpike"), "{username}");
    drop(server);

    let open = start(&["--open-credentials"]);
    assert!(
        open.startup.iter().any(|v| v["level"] == "WARN"
            && v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("anyone who can reach HTTP can use the relay"))),
        "a loud warning at start"
    );
    assert!(has_turn(&open, &[("X-Forwarded-For", "203.0.113.7")]));
}

/// The first IPv4 address of this host that is not loopback, from `ip -4 -o addr`.
fn non_loopback_ipv4() -> Option<std::net::Ipv4Addr> {
    let out = Command::new("ip")
        .args(["-4", "-o", "addr"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|line| {
            let address = line
                .split_whitespace()
                .skip_while(|w| *w != "inet")
                .nth(1)?;
            let ip: std::net::Ipv4Addr = address.split('/').next()?.parse().ok()?;
            (!ip.is_loopback()).then_some(ip)
        })
}

/// A TCP connection to `to` from source address `from` (port chosen by the kernel).
fn connect_from(from: std::net::IpAddr, to: SocketAddr) -> TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let stream = runtime.block_on(async {
        let socket = if from.is_ipv4() {
            tokio::net::TcpSocket::new_v4()
        } else {
            tokio::net::TcpSocket::new_v6()
        }
        .unwrap();
        socket.bind(SocketAddr::new(from, 0)).unwrap();
        socket.connect(to).await.unwrap()
    });
    let stream = stream.into_std().unwrap();
    stream.set_nonblocking(false).unwrap();
    stream
}

// Issue #10 rule 3 with a real non-loopback TCP peer: a caller from this host's own LAN
// address (the traffic stays in the host) gets STUN URLs only.
#[test]
fn a_non_loopback_caller_gets_no_credential() {
    let Some(lan) = non_loopback_ipv4() else {
        eprintln!("no non-loopback IPv4 address on this host: covered by the unit tests only");
        return;
    };
    let server = Server::spawn(
        &[
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "0.0.0.0:0",
            "--relay-ip",
            "127.0.0.1",
        ],
        |command| {
            command.env_remove("TURNPIKE_SIGNALING_SECRET");
        },
    );
    let port = http(&server).port();
    let mut tcp = connect_from(lan.into(), SocketAddr::from((lan, port)));
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    tcp.write_all(b"GET /api/ice-servers HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = String::new();
    tcp.read_to_string(&mut raw).unwrap();
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    assert!(raw.contains("stun:h:") && !raw.contains("turn:"), "{raw}");
    let local = SocketAddr::from(([127, 0, 0, 1], port));
    assert!(
        has_turn_at(local),
        "the same server gives a loopback caller one"
    );
}

/// Whether `GET /api/ice-servers` at `addr` lists a credential.
fn has_turn_at(addr: SocketAddr) -> bool {
    get(addr, "h", "/api/ice-servers", &[])
        .body
        .contains("\"username\"")
}

/// Seconds since the Unix epoch.
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

// Issue #10 rule 2: with a signaling secret, `/api/ice-servers` needs a valid join token
// (Bearer or ?token=), also from loopback; the username names the token's room and the
// credential expires with the token at the latest; it works against the TURN server.
#[test]
fn ice_servers_need_a_token_when_a_secret_is_set() {
    // At debug, so that the allocations' log lines name their users (checked at the end).
    let server = Server::spawn_logging(
        "debug",
        &[
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--relay-ip",
            "127.0.0.1",
            "--signaling-secret",
            SECRET,
        ],
        |command| {
            command.env_remove("TURNPIKE_SIGNALING_SECRET");
        },
    );
    let now = unix_now();
    let refused = |headers: &[(&str, &str)], path: &str| {
        let response = get(http(&server), "localhost", path, headers);
        assert_eq!(
            response.status, 401,
            "{path} {headers:?}: {}",
            response.body
        );
        assert_eq!(response.header("www-authenticate"), Some("Bearer"));
        assert_eq!(response.json()["error"], "unauthorized");
    };
    refused(&[], "/api/ice-servers");
    let other = signal::token::mint(b"another secret of 16+", "lobby", now + 600);
    refused(
        &[("Authorization", &format!("Bearer {other}"))],
        "/api/ice-servers",
    );
    let expired = signal::token::mint(SECRET.as_bytes(), "lobby", now - 1);
    refused(&[], &format!("/api/ice-servers?token={expired}"));
    refused(&[("Authorization", "Bearer garbage")], "/api/ice-servers");
    let mut forged = signal::token::mint(SECRET.as_bytes(), "lobby", now + 600);
    forged.pop();
    refused(&[], &format!("/api/ice-servers?token={forged}"));

    // A token valid two minutes: the credential expires with it, not in 24 h.
    let token = signal::token::mint(SECRET.as_bytes(), "team:42", now + 120);
    for (headers, path) in [
        (
            vec![("Authorization", format!("Bearer {token}"))],
            "/api/ice-servers".to_owned(),
        ),
        (vec![], format!("/api/ice-servers?token={token}")),
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let response = get(http(&server), "localhost", &path, &headers);
        assert_eq!(response.status, 200, "{}", response.body);
        let body = response.json();
        let (username, credential) = turn_credential(&body["iceServers"]);
        assert_eq!(username, format!("{}:team_42", now + 120));
        assert!(body["iceTtl"].as_u64().unwrap() <= 120, "{body}");
        assert_eq!(
            allocate(server.address("udp"), &username, &credential),
            Class::Success
        );
    }

    // The `joined` credential comes from the join token too, and never outlives it.
    let token = signal::token::mint(SECRET.as_bytes(), "lobby", now + 300);
    let mut client = Client::open(http(&server));
    let joined = client.join("lobby", Some(&token));
    let (username, credential) = turn_credential(&joined["iceServers"]);
    let (expiry, room) = username.split_once(':').unwrap();
    assert_eq!(room, "lobby");
    assert!(expiry.parse::<u64>().unwrap() <= now + 300, "{username}");
    assert!(joined["iceTtl"].as_u64().unwrap() <= 300, "{joined}");
    assert_eq!(
        allocate(server.address("udp"), &username, &credential),
        Class::Success
    );

    // Abuse is traceable: each allocation's log line names the user, hence the token's room.
    let (_, log) = server.stop_with_log();
    let users: Vec<&str> = log
        .iter()
        .filter(|line| line["fields"]["message"] == "allocation created")
        .filter_map(|line| line["fields"]["user"].as_str())
        .collect();
    assert!(
        users.contains(&format!("{}:team_42", now + 120).as_str()),
        "{users:?}"
    );
    assert!(users.contains(&username.as_str()), "{users:?}");
}

// Issue #10: at most `credential-rate` credentials per source per minute; then 429 with
// Retry-After. Callers who get no credential (STUN only) are not counted.
#[test]
fn credential_issuing_is_rate_limited() {
    let server = start(&["--credential-rate", "3"]);
    for n in 0..3 {
        assert!(has_turn(&server, &[]), "credential {n}");
    }
    let response = get(http(&server), "localhost", "/api/ice-servers", &[]);
    assert_eq!(response.status, 429, "{}", response.body);
    assert_eq!(response.header("retry-after"), Some("20"), "60 s / 3");
    assert_eq!(response.json()["error"], "rate-limited");
    // `joined` on a limited source carries STUN URLs only; signaling still works.
    let mut client = Client::open(http(&server));
    let joined = client.join("limited", None);
    assert_eq!(
        joined["iceServers"].as_array().unwrap().len(),
        1,
        "{joined}"
    );
}

#[test]
fn ice_server_urls_follow_the_host_ice_host_tls_and_turn_off() {
    let server = start(&[]);
    let port = server.address("udp").port();
    // IPv6 hosts go in brackets.
    let body = get(http(&server), "[::1]:8080", "/api/ice-servers", &[]).json();
    assert_eq!(
        body["iceServers"][0]["urls"][0],
        format!("stun:[::1]:{port}")
    );
    drop(server);

    let tls_files = common::TlsFiles::new();
    let (cert, key) = (&tls_files.cert, &tls_files.key);
    let server = start(&[
        "--ice-host",
        "turn.example.org",
        "--tcp",
        "false",
        "--tls-listen",
        "127.0.0.1:0",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    let (port, tls) = (server.address("udp").port(), server.address("tls").port());
    let body = get(http(&server), "localhost", "/api/ice-servers", &[]).json();
    assert_eq!(
        body["iceServers"][1]["urls"],
        json!([
            format!("turn:turn.example.org:{port}?transport=udp"),
            format!("turns:turn.example.org:{tls}?transport=tcp"),
        ])
    );
    drop(server);

    let server = start(&["--turn", "false"]);
    let port = server.address("udp").port();
    let body = get(http(&server), "localhost", "/api/ice-servers", &[]).json();
    assert_eq!(
        body["iceServers"],
        json!([{ "urls": [format!("stun:localhost:{port}")] }])
    );
}

// docs/signaling.md: join, presence, directed frames relayed verbatim with `from` stamped,
// broadcast, unknown-peer, ping/pong, leave.
#[test]
fn two_peers_meet_in_a_room() {
    let server = start(&[]);
    let mut alice = Client::open(http(&server));
    let joined = alice.join("lobby", None);
    assert_eq!(joined["type"], "joined", "{joined}");
    assert_eq!(joined["room"], "lobby");
    assert_eq!(joined["peers"], json!([]));
    assert_eq!(joined["resumed"], false);
    assert!(joined["resume"].is_string());
    assert_eq!(joined["iceTtl"], 86_400);
    let (username, credential) = turn_credential(&joined["iceServers"]);
    assert_eq!(
        allocate(server.address("udp"), &username, &credential),
        Class::Success,
        "the credential of `joined` works too"
    );
    let alice_id = joined["id"].as_str().unwrap().to_owned();

    let mut bob = Client::open(http(&server));
    let joined = bob.join("lobby", None);
    assert_eq!(joined["peers"], json!([alice_id]));
    let bob_id = joined["id"].as_str().unwrap().to_owned();
    assert_eq!(alice.recv(), json!({ "type": "peer-joined", "id": bob_id }));

    // `data` is forwarded byte for byte; a forged `from` is replaced.
    let data = r#"{ "sdp" : "v=0\r\n", "n": 1E+2, "nested": [ {} ] }"#;
    bob.send(&format!(
        r#"{{"type":"offer","to":"{alice_id}","from":"forged","data":{data}}}"#
    ));
    assert_eq!(
        alice.recv_text(),
        format!(r#"{{"type":"offer","from":"{bob_id}","data":{data}}}"#)
    );
    alice.send(&format!(
        r#"{{"type":"answer","to":"{bob_id}","data":"ok"}}"#
    ));
    assert_eq!(
        bob.recv(),
        json!({ "type": "answer", "from": alice_id, "data": "ok" })
    );
    alice.send(r#"{"type":"broadcast","data":{"hello":true}}"#);
    assert_eq!(
        bob.recv(),
        json!({ "type": "broadcast", "from": alice_id, "data": { "hello": true } })
    );
    bob.send(r#"{"type":"candidate","to":"nobody00","data":1}"#);
    let error = bob.recv();
    assert_eq!(
        (error["type"].as_str(), error["code"].as_str()),
        (Some("error"), Some("unknown-peer"))
    );
    bob.send(r#"{"type":"ping"}"#);
    assert_eq!(bob.recv(), json!({ "type": "pong" }));
    // Binary frames are not signaling frames: bad-message, and the connection stays.
    bob.0.send(Frame::binary(vec![1, 2, 3])).unwrap();
    assert_eq!(bob.recv()["code"], "bad-message");
    bob.send(r#"{"type":"leave"}"#);
    assert_eq!(alice.recv(), json!({ "type": "peer-left", "id": bob_id }));
    let (code, _) = bob.recv_close();
    assert_eq!(code, Some(CloseCode::Normal));
    // A client's close frame is answered (RFC 6455 §5.5.1), and the others see it leave once
    // the grace window is over (not tested here: 30 s).
    alice.0.close(None).unwrap();
    assert!(matches!(alice.0.read(), Ok(Frame::Close(_))));
}

// docs/signaling.md "Liveness and resume": a dropped socket leaves its peer in the room; a new
// connection resumes it with the same id and gets the frames queued meanwhile.
#[test]
fn a_dropped_connection_resumes() {
    let server = start(&[]);
    let mut alice = Client::open(http(&server));
    let alice_id = alice.join("lobby", None)["id"].as_str().unwrap().to_owned();
    let mut bob = Client::open(http(&server));
    let joined = bob.join("lobby", None);
    let (bob_id, resume) = (joined["id"].clone(), joined["resume"].clone());
    assert_eq!(alice.recv()["type"], "peer-joined");
    // The socket goes away without a close frame.
    bob.0.get_mut().shutdown(std::net::Shutdown::Both).unwrap();
    drop(bob);
    std::thread::sleep(Duration::from_millis(300));
    alice.send(&format!(
        r#"{{"type":"message","to":{bob_id},"data":"while away"}}"#
    ));
    let mut bob = Client::open(http(&server));
    bob.send_json(json!({ "type": "join", "room": "lobby", "resume": resume }));
    let joined = bob.recv();
    assert_eq!(
        (joined["id"].clone(), joined["resumed"].clone()),
        (bob_id, json!(true))
    );
    assert_eq!(
        bob.recv(),
        json!({ "type": "message", "from": alice_id, "data": "while away" })
    );
    // Alice saw nothing of it: her next frame is the answer to her ping.
    alice.send(r#"{"type":"ping"}"#);
    assert_eq!(alice.recv(), json!({ "type": "pong" }));
}

// A frame over max-message-bytes gets `too-large` and the connection stays; one far over it
// is refused by the WebSocket layer, which closes the connection.
#[test]
fn message_size_limits() {
    let server = start(&["--max-message-bytes", "1024"]);
    let mut client = Client::open(http(&server));
    client.join("big", None);
    let big = format!(r#"{{"type":"broadcast","data":"{}"}}"#, "x".repeat(2000));
    client.send(&big);
    assert_eq!(client.recv()["code"], "too-large");
    client.send(r#"{"type":"ping"}"#);
    assert_eq!(client.recv(), json!({ "type": "pong" }));
    let huge = format!(
        r#"{{"type":"broadcast","data":"{}"}}"#,
        "x".repeat(64 * 1024)
    );
    client.send(&huge);
    // docs/signaling.md: over the hard limit, the connection is closed with 1009 (RFC 6455
    // §7.4.1), not dropped (issue #10: the client saw 1006).
    let (closed, texts) = client.recv_close();
    assert_eq!(closed, Some(CloseCode::Size), "{texts:?}");
}

// Issue #10 item 4: on SIGTERM every WebSocket gets a close frame 1001 "going away" (RFC 6455
// §7.4.1) instead of a dropped connection.
#[test]
fn sigterm_closes_websockets_with_going_away() {
    let server = start(&[]);
    let mut client = Client::open(http(&server));
    assert_eq!(client.join("bye", None)["type"], "joined");
    let mut idle = Client::open(http(&server));
    Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(client.recv_close().0, Some(CloseCode::Away));
    assert_eq!(
        idle.recv_close().0,
        Some(CloseCode::Away),
        "also before join"
    );
}

// A peer that does not read its frames is closed as a slow consumer (1013) once its queue of
// queue-length frames is full. It is then away (it may resume): frames for it are queued in
// the hub, and once that queue is full too the sender gets `queue-full`.
#[test]
fn a_slow_consumer_is_closed() {
    let server = start(&["--message-rate", "10000"]);
    let mut reader = Client::open(http(&server));
    reader.join("flood", None);
    let mut sender = Client::open(http(&server));
    sender.join("flood", None);
    let frame = format!(r#"{{"type":"broadcast","data":"{}"}}"#, "x".repeat(60_000));
    // Socket buffers take a few MB; the queue of 256 frames takes 15 MB more.
    for _ in 0..1000 {
        sender.send(&frame);
    }
    sender.send(r#"{"type":"ping"}"#);
    let mut queue_full = 0;
    loop {
        let frame = sender.recv();
        if frame["type"] == "pong" {
            break;
        }
        assert_eq!(frame["code"], "queue-full", "{frame}");
        queue_full += 1;
    }
    assert!(queue_full > 0, "the reader went away");
    reader
        .0
        .get_mut()
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let (code, texts) = reader.recv_close();
    assert_eq!(code, Some(CloseCode::Again));
    assert!(texts.len() < 1000, "{} frames", texts.len());
}

#[test]
fn the_origin_allow_list() {
    let server = start(&[
        "--allowed-origins",
        "https://app.example.org,http://localhost:8080",
    ]);
    let refused = Client::connect(http(&server), Some("https://evil.example")).err();
    match refused {
        Some(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("expected 403, got {other:?}"),
    }
    for origin in [
        Some("https://app.example.org"),
        Some("http://localhost:8080"),
        None,
    ] {
        let mut client = Client::connect(http(&server), origin).unwrap();
        client.send(r#"{"type":"ping"}"#);
        assert_eq!(client.recv(), json!({ "type": "pong" }), "{origin:?}");
    }
    // Any origin when the list is empty.
    let open = start(&[]);
    let mut client = Client::connect(http(&open), Some("https://anywhere.example")).unwrap();
    assert_eq!(client.join("x", None)["type"], "joined");
}

#[test]
fn tokens_are_required_when_a_secret_is_set() {
    let server = start(&["--signaling-secret", SECRET]);
    // No token: bad-token, then the server closes the connection (1008).
    let mut client = Client::open(http(&server));
    let error = client.join("lobby", None);
    assert_eq!(error["code"], "bad-token", "{error}");
    let (code, _) = client.recv_close();
    assert_eq!(code, Some(CloseCode::Policy));

    let minted = turnpike(&[
        "token", "--room", "lobby", "--ttl", "1h", "--secret", SECRET,
    ]);
    assert_eq!(minted.status.code(), Some(0));
    let token = String::from_utf8(minted.stdout).unwrap().trim().to_owned();
    let mut client = Client::open(http(&server));
    assert_eq!(client.join("lobby", Some(&token))["type"], "joined");
    // The token admits to its room only.
    let mut other = Client::open(http(&server));
    assert_eq!(other.join("hall", Some(&token))["code"], "bad-token");
    // A token minted with another secret is forged.
    let forged = turnpike(&[
        "token",
        "--room",
        "lobby",
        "--secret",
        "another-secret-of-16",
    ]);
    let forged = String::from_utf8(forged.stdout).unwrap().trim().to_owned();
    let mut client = Client::open(http(&server));
    assert_eq!(client.join("lobby", Some(&forged))["code"], "bad-token");
}

#[test]
fn token_command_reads_the_secret_from_flag_env_or_file() {
    let missing = turnpike(&["token", "--room", "lobby"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no signaling secret"));
    let short = turnpike(&["token", "--room", "lobby", "--secret", "short"]);
    assert_eq!(short.status.code(), Some(2));
    let bad_room = turnpike(&["token", "--room", "a b", "--secret", SECRET]);
    assert_eq!(bad_room.status.code(), Some(2));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("turnpike.toml");
    std::fs::write(&file, format!("signaling-secret = \"{SECRET}\"\n")).unwrap();
    let from_file = turnpike(&[
        "token",
        "--room",
        "lobby",
        "--ttl",
        "90s",
        "--config",
        file.to_str().unwrap(),
    ]);
    assert_eq!(
        from_file.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&from_file.stderr)
    );
    let from_env = Command::new(env!("CARGO_BIN_EXE_turnpike"))
        .args(["token", "--room", "lobby"])
        .env("TURNPIKE_SIGNALING_SECRET", SECRET)
        .output()
        .unwrap();
    assert_eq!(from_env.status.code(), Some(0));
    let server = start(&["--config", file.to_str().unwrap()]);
    for output in [from_file, from_env] {
        let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
        let mut client = Client::open(http(&server));
        assert_eq!(client.join("lobby", Some(&token))["type"], "joined");
    }
    std::fs::write(&file, "realm = \"x\"\n").unwrap();
    let unset = turnpike(&[
        "token",
        "--room",
        "lobby",
        "--config",
        file.to_str().unwrap(),
    ]);
    assert_eq!(unset.status.code(), Some(2));
}

// The HTTP listener is part of start-up: a port in use stops the server with the address.
#[test]
fn http_port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = Command::new(env!("CARGO_BIN_EXE_turnpike"))
        .args(["serve", "--listen", "127.0.0.1:0", "--http-listen", &addr])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("binding HTTP {addr}")), "{stderr}");
}

// `http = false` binds nothing for HTTP.
#[test]
fn http_can_be_switched_off() {
    let server = start(&["--http", "false"]);
    // The same server with `http = true` would list an "http" listener beside these (the
    // other tests here use it); the STUN/TURN ones show the list was read at all.
    let transports: Vec<&str> = server.listening.iter().map(|(t, _)| t.as_str()).collect();
    assert!(transports.contains(&"udp"), "{transports:?}");
    assert!(transports.contains(&"tcp"), "{transports:?}");
    assert!(!transports.contains(&"http"), "{transports:?}");
}

// Bounded memory: the HTTP listeners hold at most `max-tcp-connections` connections; one more
// waits in the backlog until a connection closes.
#[test]
fn http_connections_are_capped() {
    let server = start(&[
        "--max-tcp-connections",
        "2",
        "--http-connections-per-ip",
        "2",
    ]);
    let addr = server.address("http");
    let idle: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut third = TcpStream::connect(addr).unwrap(); // the kernel completes the handshake
    third
        .set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 64];
    let waited = third.read(&mut buf);
    assert!(waited.is_err(), "answered over the cap: {waited:?}");
    drop(idle);
    third
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let n = third.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
}

// An HTTP connection silent for `tcp-idle-timeout` is closed, freeing its place.
#[test]
fn idle_http_connections_are_closed() {
    let server = start(&["--tcp-idle-timeout", "1"]);
    let mut idle = TcpStream::connect(server.address("http")).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    let _ = idle.read_to_end(&mut rest);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
}

/// `GET /healthz` over a connection from `from`: the status line, and how long it took.
fn healthz_from(from: std::net::IpAddr, to: SocketAddr) -> (String, Duration) {
    let started = std::time::Instant::now();
    let mut tcp = connect_from(from, to);
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = String::new();
    let _ = tcp.read_to_string(&mut raw);
    let status = raw.lines().next().unwrap_or_default().to_owned();
    (status, started.elapsed())
}

// Issue #10 item 4: one source opening more connections than its share, each stuck in a
// partial request head, cannot take the HTTP server down for others: connections beyond
// `http-connections-per-ip` are closed at once, and `/healthz` from another address
// (127.0.0.2, also loopback) answers promptly. Before: all `max-tcp-connections` permits went
// to the one source and /healthz waited in the backlog.
#[test]
fn one_source_cannot_take_every_http_connection() {
    let server = start(&[
        "--max-tcp-connections",
        "40",
        "--http-connections-per-ip",
        "10",
    ]);
    let addr = http(&server);
    let attacker: std::net::IpAddr = [127, 0, 0, 1].into();
    let mut held = Vec::new();
    let mut closed_at_once = 0;
    for _ in 0..60 {
        let mut tcp = connect_from(attacker, addr);
        // A request head that never ends.
        let _ = tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: h\r\nX-Slow: ");
        tcp.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut buf = [0u8; 16];
        match tcp.read(&mut buf) {
            // Still waiting for the rest of the head.
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                held.push(tcp);
            }
            // EOF or reset, without a byte of answer: closed at once.
            Ok(0) | Err(_) => closed_at_once += 1,
            Ok(n) => panic!("answered {:?}", String::from_utf8_lossy(&buf[..n])),
        }
    }
    assert_eq!(held.len(), 10, "the per-source share");
    assert_eq!(closed_at_once, 50);
    let (status, took) = healthz_from([127, 0, 0, 2].into(), addr);
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(took < Duration::from_secs(3), "{took:?}");
}

// Issue #10 item 4: a request head must arrive within 10 s (HEADER_READ_TIMEOUT), however
// slowly it trickles: the connection is then closed. Before: every byte restarted the
// 300 s idle timer, so a byte every 2 s held the connection for ever.
#[test]
fn a_trickling_request_head_is_cut_at_the_header_deadline() {
    let server = start(&[]);
    let mut tcp = TcpStream::connect(http(&server)).unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: h\r\n")
        .unwrap();
    let started = std::time::Instant::now();
    let mut writer = tcp.try_clone().unwrap();
    let trickle = std::thread::spawn(move || {
        // One header byte every 500 ms, for at most 40 s; stops once the server has closed.
        for _ in 0..80 {
            std::thread::sleep(Duration::from_millis(500));
            if writer.write_all(b"x").is_err() {
                break;
            }
        }
    });
    tcp.set_read_timeout(Some(Duration::from_secs(40))).unwrap();
    let mut rest = Vec::new();
    let _ = tcp.read_to_end(&mut rest);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(9) && took < Duration::from_secs(25),
        "closed after {took:?}"
    );
    let _ = tcp.shutdown(std::net::Shutdown::Both);
    trickle.join().unwrap();
}
