//! `turnpike p2p` end to end on loopback: two processes meet through a real `turnpike serve`
//! (signaling + STUN + TURN), connect with ICE and QUIC, and move a file or chat lines. The
//! NAT cases (hole punching, relay fallback) are in tests/netns/test_p2p.py.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::scrape::{sum, wait_until};
use common::Server;

fn start_server() -> Server {
    start_server_with(&[])
}

/// [`start_server`] with `extra` arguments.
fn start_server_with(extra: &[&str]) -> Server {
    let base = [
        "--listen",
        "127.0.0.1:0",
        "--http-listen",
        "127.0.0.1:0",
        "--rest-secrets",
        "p2p-test-secret",
        // Host candidates are loopback addresses here.
        "--allowed-peers",
        "127.0.0.0/8",
    ];
    Server::spawn(&[&base[..], extra].concat(), |_| {})
}

/// The signaling URL peers use: wss:// by the name of the test certificate when `server`
/// serves HTTPS, else ws://.
fn signal_url(server: &Server) -> String {
    match server.listening.iter().find(|(t, _)| t == "https") {
        Some((_, addr)) => format!("wss://localhost:{}/ws", addr.port()),
        None => format!("ws://{}/ws", server.address("http")),
    }
}

/// A running `turnpike p2p`, its stdout and stderr lines arriving on one channel.
struct Peer {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Peer {
    fn spawn(server: &Server, room: &str, args: &[&str]) -> Peer {
        let signal = signal_url(server);
        let mut child = Command::new(env!("CARGO_BIN_EXE_turnpike"))
            .args([
                "p2p",
                "--signal",
                &signal,
                "--room",
                room,
                "--timeout",
                "30",
            ])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let tx_err = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx_err.send(line);
            }
        });
        Peer {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line containing `text`; returns it.
    fn expect(&mut self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => panic!("no line with {text:?}; output so far: {:#?}", self.seen),
            }
        }
    }

    fn wait(&mut self) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(40);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("p2p did not exit; output: {:#?}", self.seen);
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn transfer(server: &Server, extra: &[&str], room: &str) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    let source = dir.path().join("data.bin");
    let payload: Vec<u8> = (0..1_500_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    std::fs::write(&source, &payload).unwrap();

    let mut receiver = Peer::spawn(
        server,
        room,
        &[&["--receive", inbox.to_str().unwrap()], extra].concat(),
    );
    receiver.expect("waiting for a peer");
    let mut sender = Peer::spawn(
        server,
        room,
        &[&["--send", source.to_str().unwrap()], extra].concat(),
    );
    let sender_path = sender.expect("connected");
    let receiver_path = receiver.expect("connected");
    // Between "calling peer" and "connected", each says what it gathered.
    for peer in [&sender, &receiver] {
        assert!(
            peer.seen
                .iter()
                .any(|line| line.starts_with("gathered host 127.0.0.1:")),
            "{:#?}",
            peer.seen
        );
    }
    sender.expect("the receiver verified the SHA-256");
    receiver.expect("SHA-256 verified");
    assert_eq!(sender.wait(), 0);
    assert_eq!(receiver.wait(), 0);
    assert_eq!(std::fs::read(inbox.join("data.bin")).unwrap(), payload);
    assert_no_partial_files(&inbox);
    (sender_path, receiver_path)
}

fn assert_no_partial_files(dir: &Path) {
    let names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec!["data.bin".to_string()]);
}

#[test]
fn a_file_crosses_a_direct_path_and_its_digest_is_verified() {
    let server = start_server();
    let (sender, receiver) = transfer(&server, &["--host-ip", "127.0.0.1"], "direct");
    let ends = |line: &str| -> ((String, String), (String, String)) {
        let pair = line
            .strip_prefix("connected: ")
            .and_then(|rest| rest.split(", RTT ").next())
            .unwrap_or_else(|| panic!("a direct `connected:` line with an RTT: {line}"));
        let (local, remote) = pair.split_once(" ↔ ").expect(line);
        let end = |e: &str| {
            let (kind, address) = e.split_once(' ').expect(line);
            (kind.to_owned(), address.to_owned())
        };
        (end(local), end(remote))
    };
    let (sender_local, sender_remote) = ends(&sender);
    let (receiver_local, receiver_remote) = ends(&receiver);
    // Each side's remote is the other's host candidate: the same transport addresses.
    assert_eq!(sender_remote.1, receiver_local.1, "{sender} / {receiver}");
    assert_eq!(receiver_remote.1, sender_local.1, "{sender} / {receiver}");
    for (kind, address) in [&sender_local, &receiver_local] {
        assert_eq!(kind, "host", "{sender} / {receiver}");
        assert!(address.starts_with("127.0.0.1:"), "{sender} / {receiver}");
    }
    // The line describes the pair when ICE connected. A check travels faster than signaling,
    // so the peer's host candidate may still be on its way then: the agent knows that address
    // as peer-reflexive until it arrives and replaces it (RFC 8445 §7.3.1.3, RFC 8838 §11;
    // tested in the ICE crate's a_candidate_signalled_after_its_check_replaces_the_selected_prflx).
    for (kind, _) in [&sender_remote, &receiver_remote] {
        assert!(kind == "host" || kind == "prflx", "{sender} / {receiver}");
    }
}

#[test]
fn relay_only_peers_connect_through_the_turn_relay() {
    let server = start_server_with(&["--metrics-listen", "127.0.0.1:0"]);
    let (sender, receiver) = transfer(
        &server,
        &["--host-ip", "127.0.0.1", "--relay-only"],
        "relayed",
    );
    for line in [&sender, &receiver] {
        assert!(line.starts_with("connected via relay: "), "{line}");
        assert!(line.contains("relay 127.0.0.1:"), "{line}");
    }
    // Both peers released their allocations on exit (RFC 8656 §7, Refresh with LIFETIME 0)
    // instead of leaving them to expire in 10 minutes.
    let scrape = wait_until(
        server.address("metrics"),
        |s| sum(s, "turnpike_allocations", &[]) == 0.0,
        "no allocation left",
    );
    let to_client = sum(
        &scrape,
        "turnpike_relayed_packets_total",
        &[r#"direction="to_client""#],
    );
    assert!(to_client > 1000.0, "{scrape:#?}");
}

// The servers the signaling server hands out are named in DNS (`ice-host`), and the peers
// resolve them through `--dns-server` (docs/dns.md): a name only the test's dnsmasq knows.
#[test]
fn peers_resolve_the_relay_through_the_dns_server_given() {
    use common::dnsmasq::{Dnsmasq, ZONE};
    let relay = format!("relay.{ZONE}");
    let dns = Dnsmasq::start(&[format!("--host-record={relay},127.0.0.1")]);
    let server = start_server_with(&["--ice-host", &relay]);
    let dns_server = dns.server();
    let (sender, receiver) = transfer(
        &server,
        &[
            "--host-ip",
            "127.0.0.1",
            "--relay-only",
            "--dns-server",
            &dns_server,
        ],
        "dns",
    );
    for line in [&sender, &receiver] {
        assert!(line.starts_with("connected via relay: "), "{line}");
    }
}

// `p2p` over wss:// (docs/http.md, "HTTPS"): the server's self-signed certificate is trusted
// with --ca-file; without it the connection is refused, saying why.
#[test]
fn peers_meet_over_wss_trusting_the_certificate_of_ca_file() {
    let tls = common::TlsFiles::new();
    let (cert, key) = (tls.cert.to_str().unwrap(), tls.key.to_str().unwrap());
    let server = start_server_with(&[
        "--https-listen",
        "127.0.0.1:0",
        "--https-cert",
        cert,
        "--https-key",
        key,
    ]);
    let (sender, receiver) = transfer(
        &server,
        &["--host-ip", "127.0.0.1", "--ca-file", cert],
        "wss",
    );
    for line in [&sender, &receiver] {
        assert!(line.starts_with("connected"), "{line}");
    }
    let mut untrusted = Peer::spawn(&server, "untrusted", &["--host-ip", "127.0.0.1"]);
    untrusted.expect("cannot connect to the signaling server wss://localhost");
    assert_eq!(untrusted.wait(), 1);
    assert!(
        untrusted
            .seen
            .iter()
            .any(|line| line.contains("certificate")),
        "{:#?}",
        untrusted.seen
    );
}

#[test]
fn chat_lines_reach_the_other_peer() {
    let server = start_server();
    let mut first = Peer::spawn(&server, "chat", &["--host-ip", "127.0.0.1"]);
    first.expect("waiting for a peer");
    let mut second = Peer::spawn(&server, "chat", &["--host-ip", "127.0.0.1"]);
    second.expect("connected");
    first.expect("connected");
    let mut input = second.child.stdin.take().unwrap();
    writeln!(input, "héllo from the second peer ☕").unwrap();
    first.expect("peer> héllo from the second peer ☕");
    let mut input_first = first.child.stdin.take().unwrap();
    writeln!(input_first, "and back").unwrap();
    second.expect("peer> and back");
    // EOF on stdin ends the chat on both sides.
    drop(input);
    assert_eq!(second.wait(), 0);
    first.expect("the peer closed the chat");
    drop(input_first);
    assert_eq!(first.wait(), 0);
}

#[test]
fn nobody_to_meet_is_a_timeout_with_a_clear_message() {
    let server = start_server();
    let signal = format!("ws://{}/ws", server.address("http"));
    let output = Command::new(env!("CARGO_BIN_EXE_turnpike"))
        .args([
            "p2p",
            "--signal",
            &signal,
            "--room",
            "empty",
            "--timeout",
            "1",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Nobody joined: the message says so, rather than blame the path.
    assert!(
        stderr.contains("no connection within 1 s: no peer joined room empty"),
        "{stderr}"
    );
}

/// Runs `turnpike p2p` against `signal` with `--timeout timeout`; returns the exit code,
/// stderr and how long it took.
fn p2p_alone(signal: &str, timeout: &str) -> (Option<i32>, String, Duration) {
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_turnpike"))
        .args([
            "p2p",
            "--signal",
            signal,
            "--room",
            "r",
            "--timeout",
            timeout,
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code(), stderr, started.elapsed())
}

// --timeout bounds the signaling connect too: a port that accepts TCP and never speaks
// HTTP used to hang until the server's idle timeout.
#[test]
fn a_signaling_server_that_never_answers_fails_at_the_timeout() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let signal = format!("ws://{}/ws", listener.local_addr().unwrap());
    // Accept and hold the connections, never answering.
    let held = std::thread::spawn(move || {
        let (socket, _) = listener.accept().unwrap();
        std::thread::sleep(Duration::from_secs(15));
        drop(socket);
    });
    let (code, stderr, took) = p2p_alone(&signal, "2");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(12),
        "{took:?}"
    );
    assert!(
        stderr.contains(&format!("cannot connect to the signaling server {signal}"))
            && stderr.contains("no answer within 2 s"),
        "{stderr}"
    );
    drop(held);
}

// A black-holed address (TEST-NET-1, RFC 5737: never routed; a SYN to it goes unanswered,
// or the route is missing): the command still ends by the timeout.
#[test]
fn a_black_holed_signaling_address_fails_by_the_timeout() {
    let signal = "ws://192.0.2.1:80/ws";
    let (code, stderr, took) = p2p_alone(signal, "2");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(took < Duration::from_secs(12), "{took:?}");
    assert!(
        stderr.contains("cannot connect to the signaling server ws://192.0.2.1:80/ws"),
        "{stderr}"
    );
}

/// Two peers in one room with the same role: both fail at once, naming the fix.
fn same_role(role: &str, expected: &str) {
    let server = start_server();
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("data.bin");
    std::fs::write(&source, b"payload").unwrap();
    let target = match role {
        "--send" => source.to_str().unwrap(),
        _ => dir.path().to_str().unwrap(),
    };
    let room = format!("same{role}");
    let mut first = Peer::spawn(&server, &room, &["--host-ip", "127.0.0.1", role, target]);
    first.expect("waiting for a peer");
    let started = Instant::now();
    let mut second = Peer::spawn(&server, &room, &["--host-ip", "127.0.0.1", role, target]);
    for peer in [&mut second, &mut first] {
        let error = peer.expect("error:");
        assert!(error.contains(expected), "{error}");
        assert_eq!(peer.wait(), 1);
    }
    // Promptly, not at the 30 s --timeout.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn two_senders_in_one_room_both_fail_and_say_why() {
    same_role(
        "--send",
        "both peers are sending (--send): give the other peer --receive DIR instead",
    );
}

#[test]
fn two_receivers_in_one_room_both_fail_and_say_why() {
    same_role(
        "--receive",
        "both peers are receiving (--receive): give the other peer --send FILE instead",
    );
}

#[test]
fn an_unreachable_signaling_server_is_reported() {
    let output = Command::new(env!("CARGO_BIN_EXE_turnpike"))
        .args(["p2p", "--signal", "ws://127.0.0.1:9/ws", "--room", "r"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot connect to the signaling server ws://127.0.0.1:9/ws"),
        "{stderr}"
    );
    // The cause is said once, not once per layer of the error chain.
    assert_eq!(stderr.matches("os error").count(), 1, "{stderr}");
}

/// A 100 MB transfer under way from a sender to a receiver: (sender, receiver, inbox).
fn transfer_under_way(server: &Server, room: &str) -> (Peer, Peer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    let source = dir.path().join("big.bin");
    // Large enough that the transfer is still going when the receiver stops.
    std::fs::write(&source, vec![7u8; 100_000_000]).unwrap();
    let mut receiver = Peer::spawn(
        server,
        room,
        &[
            "--host-ip",
            "127.0.0.1",
            "--receive",
            inbox.to_str().unwrap(),
        ],
    );
    receiver.expect("waiting for a peer");
    let sender = Peer::spawn(
        server,
        room,
        &["--host-ip", "127.0.0.1", "--send", source.to_str().unwrap()],
    );
    receiver.expect("receiving big.bin");
    (sender, receiver, dir)
}

#[test]
fn a_receiver_that_dies_mid_transfer_fails_the_sender_with_a_reason() {
    let server = start_server();
    let (mut sender, mut receiver, dir) = transfer_under_way(&server, "crash");
    receiver.child.kill().unwrap();
    // SIGKILL: no `leave`, so the signaling server keeps the receiver in its 30 s resume
    // window; QUIC's 30 s idle timeout and the end of that window race, and either ends the
    // sender with the reason.
    let error = sender.expect("error:");
    assert!(
        error.contains("big.bin") && error.contains("timed out") || error.contains("left the room"),
        "{error}"
    );
    assert_eq!(sender.wait(), 1);
    // Nothing half-written is left under the final name.
    assert!(!dir.path().join("inbox/big.bin").exists());
}

// A peer that stops (SIGTERM, Ctrl-C) says `bye` through signaling and closes QUIC with
// the "aborted" verdict: the other side ends at once, not 30 s later by consent loss.
#[test]
fn a_receiver_that_is_stopped_ends_the_sender_at_once() {
    let server = start_server();
    let (mut sender, mut receiver, dir) = transfer_under_way(&server, "stopped");
    let stopped = Instant::now();
    let pid = receiver.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let error = receiver.expect("error:");
    assert!(error.contains("interrupted"), "{error}");
    assert_eq!(receiver.wait(), 1);
    let error = sender.expect("error:");
    assert!(
        error.contains("left the room") || error.contains("interrupted"),
        "{error}"
    );
    // Never "verified": a receiver that stops never closes with code 0.
    assert!(
        !sender.seen.iter().any(|l| l.contains("verified")),
        "{:#?}",
        sender.seen
    );
    assert_eq!(sender.wait(), 1);
    assert!(
        stopped.elapsed() < Duration::from_secs(5),
        "{:?}",
        stopped.elapsed()
    );
    assert!(!dir.path().join("inbox/big.bin").exists());
}
