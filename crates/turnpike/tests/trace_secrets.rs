//! No log level leaks a secret (issue #10, docs/signaling.md "frames are never logged"): the
//! real binary at `--log-level trace` goes through a token join, a `joined` with a TURN
//! credential, an offer with a recognisable payload and a resume; then the whole log is
//! searched for every secret.

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

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
    let mut child = Command::new(env!("CARGO_BIN_EXE_turnpike"))
        .args(["serve", "--log-format", "json", "--log-level", "trace"])
        .args(["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
        .args(["--relay-ip", "127.0.0.1", "--rest-secrets", REST_SECRET])
        .args(["--signaling-secret", SIGNALING_SECRET])
        .args(["--drain-timeout", "0"])
        .env_remove("TURNPIKE_CONFIG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut log = Vec::new();
    let mut addresses = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap();
        let v: Value = serde_json::from_str(&line).unwrap_or_default();
        if v["fields"]["message"] == "listening" {
            let transport = v["fields"]["transport"].as_str().unwrap().to_owned();
            let address: SocketAddr = v["fields"]["address"].as_str().unwrap().parse().unwrap();
            addresses.push((transport, address));
        }
        let ready = v["fields"]["message"] == "ready";
        log.push(line);
        if ready {
            break;
        }
    }
    let find = |t: &str| addresses.iter().find(|(x, _)| x == t).unwrap().1;
    let (http, udp) = (find("http"), find("udp"));

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

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let _ = child.wait();
    reader.join().unwrap();
    log.extend(rx.try_iter());

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
