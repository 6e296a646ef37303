//! Slow and non-reading STUN/TURN clients over TCP and TLS (issue #10 §4), against the real
//! binary on loopback: a message must arrive whole within `tcp-frame-timeout` of its first
//! byte and a TLS handshake finish within it, one source gets at most
//! `max-tcp-connections-per-ip` connections, and a write blocked for `tcp-write-timeout`
//! closes the connection. Deadlines are 2 s; the assertions allow up to 10 s on a loaded box.

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};
mod common;

use common::{binding_request, Server};

/// The deadline the tests configure, seconds.
const DEADLINE: u64 = 2;

/// A server on 127.0.0.1 with TCP only (plus `args`), logging the turnpike crate at debug
/// level for the close causes.
fn start(args: &[&str]) -> Server {
    let tcp_only = ["--listen", "127.0.0.1:0", "--udp", "false"];
    let args: Vec<&str> = tcp_only.iter().chain(args).copied().collect();
    Server::spawn_logging("info,turnpike=debug", &args, |command| {
        command.env("TURNPIKE_HTTP", "false");
    })
}

/// A TCP connection to `server` from `source` (an IP of loopback), with `rcvbuf` if given.
fn connect_from(source: &str, server: SocketAddr, rcvbuf: Option<usize>) -> TcpStream {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    if let Some(size) = rcvbuf {
        socket.set_recv_buffer_size(size).unwrap();
    }
    let from: SocketAddr = format!("{source}:0").parse().unwrap();
    socket.bind(&from.into()).unwrap();
    socket.connect(&server.into()).unwrap();
    socket.into()
}

/// True once the server has closed `tcp` (EOF or reset), without blocking.
fn closed(tcp: &mut TcpStream) -> bool {
    tcp.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match tcp.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

/// Sends a Binding request on `tcp` and expects its answer within 5 s.
fn answers_binding(tcp: &mut TcpStream, tid: u8) -> bool {
    tcp.set_nonblocking(false).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    if tcp.write_all(&binding_request(tid)).is_err() {
        return false;
    }
    let mut answer = [0u8; 32];
    tcp.read_exact(&mut answer).is_ok() && answer[8..20] == [tid; 12]
}

/// Waits up to `within` for a log line (JSON) of `server` containing every one of `words`.
fn log_line_with(server: &Server, words: &[&str], within: Duration) -> Option<String> {
    let deadline = Instant::now() + within;
    while let Ok(line) = server
        .lines
        .recv_timeout(deadline.saturating_duration_since(Instant::now()))
    {
        if words.iter().all(|w| line.contains(w)) {
            return Some(line);
        }
    }
    None
}

// Issue #10 §4: 200 connections trickling one byte every 4 s into a promised 64 KiB message
// kept every slot. Now each is closed once its message is not complete `tcp-frame-timeout`
// after its first byte, although the trickle (every 500 ms) beats the idle timeout (5 s).
#[test]
fn a_trickled_message_is_closed_after_the_frame_deadline() {
    let deadline = DEADLINE.to_string();
    let server = start(&["--tcp-frame-timeout", &deadline, "--tcp-idle-timeout", "5"]);
    let addr = server.address("tcp");
    // A Binding request header promising 65532 bytes of attributes (RFC 8489 §6.2.2).
    let promise = [0x00, 0x01, 0xFF, 0xFC];
    let mut connections: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut tcp = TcpStream::connect(addr).unwrap();
            tcp.write_all(&promise).unwrap();
            tcp
        })
        .collect();
    let started = Instant::now();
    let mut closed_after = vec![None; connections.len()];
    while started.elapsed() < Duration::from_secs(15) && closed_after.iter().any(Option::is_none) {
        for (tcp, when) in connections.iter_mut().zip(closed_after.iter_mut()) {
            if when.is_none() && (closed(tcp) || tcp.write_all(&[0]).is_err()) {
                *when = Some(started.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    for when in &closed_after {
        let when = when.expect("a trickling connection was still open after 15 s");
        assert!(
            when >= Duration::from_millis(1_500) && when <= Duration::from_secs(10),
            "closed after {when:?}"
        );
    }
    assert_eq!(closed_after.len(), 20);
    let cause = log_line_with(&server, &["frame deadline"], Duration::from_secs(5));
    assert!(cause.is_some(), "no 'frame deadline' cause in the log");
}

// Issue #10 §4: one source cannot take every connection slot. With 8 in all and 4 per
// source, 127.0.0.1's fifth to eighth connections are closed at once, its first four keep
// working, and a client from 127.0.0.2 still connects and gets its Binding answer.
#[test]
fn one_source_cannot_take_every_connection_slot() {
    let server = start(&[
        "--max-tcp-connections",
        "8",
        "--max-tcp-connections-per-ip",
        "4",
    ]);
    let addr = server.address("tcp");
    let mut first: Vec<TcpStream> = (0..4)
        .map(|_| connect_from("127.0.0.1", addr, None))
        .collect();
    for (tid, tcp) in (1..).zip(first.iter_mut()) {
        assert!(
            answers_binding(tcp, tid),
            "connection {tid} within the share"
        );
    }
    let mut over: Vec<TcpStream> = (0..4)
        .map(|_| connect_from("127.0.0.1", addr, None))
        .collect();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) && !over.iter_mut().all(closed) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(over.len(), 4);
    for tcp in &mut over {
        assert!(closed(tcp), "over the per-IP cap: closed");
    }
    let mut other = connect_from("127.0.0.2", addr, None);
    assert!(
        answers_binding(&mut other, 9),
        "another source still gets in"
    );
    for (tid, tcp) in (10..).zip(first.iter_mut()) {
        assert!(answers_binding(tcp, tid), "the first four still work");
    }
}

// Issue #10 §4: a client that sends requests and never reads used to keep its connection
// (and megabytes of send buffer) forever. Now the blocked write closes it after
// `tcp-write-timeout`, with the cause in the log.
#[test]
fn a_client_that_does_not_read_is_closed_after_the_write_deadline() {
    let deadline = DEADLINE.to_string();
    let server = start(&["--tcp-write-timeout", &deadline, "--tcp-idle-timeout", "60"]);
    let addr = server.address("tcp");
    let mut tcp = connect_from("127.0.0.1", addr, Some(4096));
    let me = tcp.local_addr().unwrap().to_string();
    let mut writer = tcp.try_clone().unwrap();
    // 40 000 requests (800 kB) ask for 1.3 MB of answers: far more than the capped send
    // buffer and the tiny receive buffer hold. The writer stops when the server stops
    // reading (its own buffers full) or closes.
    let sender = std::thread::spawn(move || {
        writer
            .set_write_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let batch: Vec<u8> = (0..1000).flat_map(|i| binding_request(i as u8)).collect();
        let mut sent = 0;
        while sent < 40 && writer.write_all(&batch).is_ok() {
            sent += 1;
        }
        sent
    });
    let started = Instant::now();
    let cause = log_line_with(&server, &["write deadline", &me], Duration::from_secs(15));
    let waited = started.elapsed();
    assert!(
        cause.is_some(),
        "no 'write deadline' close for {me} within 15 s"
    );
    assert!(waited >= Duration::from_millis(1_500), "{waited:?}");
    // The connection is gone: reading what is left ends in EOF or a reset within seconds.
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut rest = Vec::new();
    let end = tcp.read_to_end(&mut rest);
    assert!(
        end.is_ok()
            || end
                .as_ref()
                .is_err_and(|e| e.kind() != ErrorKind::WouldBlock),
        "{end:?}"
    );
    assert!(
        rest.len() < 40_000 * 32,
        "not every answer was written: {} bytes",
        rest.len()
    );
    let _ = sender.join();
}

// A TLS client that opens a connection and never finishes its handshake is closed after
// tcp-frame-timeout (it was a fixed 10 s before, not configurable).
#[test]
fn a_stalled_tls_handshake_is_closed_after_the_frame_deadline() {
    let tls = common::TlsFiles::new();
    let deadline = DEADLINE.to_string();
    let server = start(&[
        "--tls-listen",
        "127.0.0.1:0",
        "--tls-cert",
        tls.cert.to_str().unwrap(),
        "--tls-key",
        tls.key.to_str().unwrap(),
        "--tcp-frame-timeout",
        &deadline,
    ]);
    let mut tcp = TcpStream::connect(server.address("tls")).unwrap();
    // A TLS record header (handshake, TLS 1.2) promising 512 bytes that never come.
    tcp.write_all(&[0x16, 0x03, 0x03, 0x02, 0x00]).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let end = tcp.read_to_end(&mut rest);
    let waited = started.elapsed();
    assert!(
        end.is_ok()
            || end
                .as_ref()
                .is_err_and(|e| e.kind() != ErrorKind::WouldBlock),
        "still open after 15 s: {end:?}"
    );
    assert!(
        waited >= Duration::from_millis(1_500) && waited <= Duration::from_secs(7),
        "closed after {waited:?}"
    );
}
