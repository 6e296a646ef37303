//! No log level leaks a secret (issue #10, docs/signaling.md "frames are never logged"): the
//! real binary at `--log-level trace` goes through a token join, a `joined` with a TURN
//! credential, an offer with a recognisable payload and a resume; then the whole log is
//! searched for every secret.

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

mod common;

use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use common::Server;

use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::{self, Message as Frame, WebSocket};

const SIGNALING_SECRET: &str = "signaling-secret-Qw7Zp3Lm9Xv2";
const REST_SECRET: &str = "rest-secret-Hk4Tn8Rb1Yc6";
const PAYLOAD: &str = "PAYLOAD-MARKER-5d1e9a";

/// A signaling client over a blocking socket.
struct Client(WebSocket<TcpStream>);

impl Client {
    fn open(addr: SocketAddr) -> Client {
        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let (socket, _) = tungstenite::client(format!("ws://{addr}/ws"), tcp)
            .ok()
            .unwrap();
        Client(socket)
    }

    fn send(&mut self, value: Value) {
        self.0.send(Frame::text(value.to_string())).unwrap();
    }

    /// The next JSON frame that is not a ping.
    fn recv(&mut self) -> Value {
        loop {
            if let Frame::Text(text) = self.0.read().unwrap() {
                let value: Value = serde_json::from_str(text.as_str()).unwrap();
                if value["type"] != "ping" {
                    return value;
                }
            }
        }
    }
}

#[test]
fn a_trace_level_log_holds_no_secret() {
    let server = Server::spawn_logging(
        "trace",
        &[
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--relay-ip",
            "127.0.0.1",
            "--rest-secrets",
            REST_SECRET,
            "--signaling-secret",
            SIGNALING_SECRET,
        ],
        |command| {
            command.env_remove("TURNPIKE_CONFIG").env_remove("RUST_LOG");
        },
    );
    let (http, udp) = (server.address("http"), server.address("udp"));

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = signal::token::mint(SIGNALING_SECRET.as_bytes(), "vault", now + 3600);
    let mut alice = Client::open(http);
    alice.send(json!({ "type": "join", "room": "vault", "token": token }));
    let joined = alice.recv();
    assert_eq!(joined["type"], "joined", "{joined}");
    let turn = joined["iceServers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["credential"].is_string())
        .unwrap()
        .clone();
    let password = turn["credential"].as_str().unwrap().to_owned();
    let resume = joined["resume"].as_str().unwrap().to_owned();
    let mut bob = Client::open(http);
    bob.send(json!({ "type": "join", "room": "vault", "token": token }));
    let bob_id = bob.recv()["id"].as_str().unwrap().to_owned();
    assert_eq!(alice.recv()["type"], "peer-joined");
    alice.send(json!({ "type": "offer", "to": bob_id, "data": { "sdp": PAYLOAD } }));
    let offer = bob.recv();
    assert_eq!(offer["data"]["sdp"], PAYLOAD, "{offer}");
    drop(alice);
    let mut again = Client::open(http);
    again.send(json!({ "type": "join", "room": "vault", "resume": resume }));
    let resumed = again.recv();
    assert_eq!(resumed["resumed"], true, "{resumed}");
    let new_resume = resumed["resume"].as_str().unwrap().to_owned();
    // A datagram that is not STUN: the UDP listener drops it with a trace-level line, so the
    // log provably runs at trace.
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    probe.send_to(b"not stun at all", udp).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    drop((bob, again));

    let startup = server.startup.clone();
    let (_, after) = server.stop_with_log();
    let log: Vec<String> = startup.iter().chain(&after).map(Value::to_string).collect();

    assert!(log.len() > 10, "a log to search: {} lines", log.len());
    assert!(
        log.iter().any(|l| l.contains(r#""level":"TRACE""#)),
        "the log runs at trace"
    );
    let secrets = [
        ("signaling secret", SIGNALING_SECRET.to_owned()),
        ("REST secret", REST_SECRET.to_owned()),
        ("join token", token.clone()),
        (
            "join token payload",
            token.split('.').next().unwrap().to_owned(),
        ),
        ("resume token", resume),
        ("second resume token", new_resume),
        ("TURN password", password),
        ("payload", PAYLOAD.to_owned()),
    ];
    for (what, secret) in &secrets {
        let leaks: Vec<&String> = log.iter().filter(|l| l.contains(secret.as_str())).collect();
        assert!(leaks.is_empty(), "the {what} is in the log: {leaks:?}");
    }
}
