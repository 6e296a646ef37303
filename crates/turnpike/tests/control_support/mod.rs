//! What the reload, drain and admin tests share: a server started from a configuration file
//! they can rewrite, a TURN client (the ICE crate's, driven over a real UDP socket) with a
//! peer to relay through it, and small HTTP and log helpers.

// Each test binary uses a different part of this module.
#![allow(dead_code)]
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use ice::turn_client::{TurnClient, TurnClientConfig, TurnCredentials, TurnEvent, TurnInput};
use serde_json::Value;
use stun::{Class, Message};

use crate::common::Server;

/// The realm of every test configuration.
pub const REALM: &str = "control.test";
/// The admin token of the test configurations.
pub const TOKEN: &str = "test-admin-token-0123456789";
/// How long a test waits for anything that should happen promptly (a loaded 2-core box).
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A configuration file in a temporary directory, rewritten by the tests.
pub struct ConfigFile {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl ConfigFile {
    /// A file with the listeners on loopback (kernel-picked ports), relaying on 127.0.0.1 to
    /// loopback peers, realm [`REALM`], plus `extra` lines.
    pub fn new(extra: &str) -> ConfigFile {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("turnpike.toml");
        let file = ConfigFile { dir, path };
        file.write(extra);
        file
    }

    /// Rewrites the file: the base keys plus `extra`.
    pub fn write(&self, extra: &str) {
        let text = format!(
            "listen = [\"127.0.0.1:0\"]\n\
             tcp = false\n\
             http-listen = [\"127.0.0.1:0\"]\n\
             relay-ip = [\"127.0.0.1\"]\n\
             allowed-peers = [\"127.0.0.1\"]\n\
             realm = \"{REALM}\"\n\
             {extra}\n"
        );
        std::fs::write(&self.path, text).unwrap();
    }

    /// Starts `turnpike serve -c FILE --log-level info ARGS`.
    pub fn serve(&self, args: &[&str]) -> Server {
        self.serve_logging("info", args)
    }

    /// Starts `turnpike serve -c FILE ARGS` with the log filter `level` (empty: the file's).
    pub fn serve_logging(&self, level: &str, args: &[&str]) -> Server {
        let path = self.path.to_str().unwrap().to_owned();
        let mut all = vec!["-c", path.as_str()];
        all.extend_from_slice(args);
        Server::spawn_logging(level, &all, |command| {
            command.env_remove("TURNPIKE_CONFIG");
        })
    }
}

/// Sends `signal` ("HUP", "TERM", "INT") to the server.
pub fn signal(server: &Server, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// The first log line after now whose message is `message`, within [`PATIENCE`]; panics with
/// the lines seen otherwise.
pub fn wait_for_log(server: &Server, message: &str) -> Value {
    let deadline = Instant::now() + PATIENCE;
    let mut seen = Vec::new();
    loop {
        let Ok(line) = server
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        else {
            panic!("no `{message}` log line; saw:\n{}", seen.join("\n"));
        };
        let value: Value = serde_json::from_str(&line).unwrap_or_default();
        if value["fields"]["message"] == message {
            return value;
        }
        seen.push(line);
    }
}

/// Waits (within `limit`) for the server to exit; its exit code and how long it took.
pub fn wait_exit(server: &mut Server, limit: Duration) -> (Option<i32>, Duration) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = server.child.try_wait().unwrap() {
            return (status.code(), start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the server did not exit within {limit:?}");
}

/// True while the server runs.
pub fn running(server: &mut Server) -> bool {
    server.child.try_wait().unwrap().is_none()
}

/// An HTTP/1.1 GET or POST (no body) to `addr`; the status code and the body.
pub fn http(addr: SocketAddr, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, body)| body.to_owned());
    (status, body)
}

/// Runs `turnpike admin --url http://ADMIN ARGS` with the token in `TURNPIKE_ADMIN_TOKEN`.
pub fn admin(server: &Server, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_turnpike"))
        .args([
            "admin",
            "--url",
            &format!("http://{}", server.address("admin")),
        ])
        .args(args)
        .env("TURNPIKE_ADMIN_TOKEN", TOKEN)
        .env_remove("TURNPIKE_CONFIG")
        .env_remove("TURNPIKE_ADMIN_URL")
        .output()
        .unwrap()
}

/// A TURN client (the ICE crate's, an implementation independent of the server's core) on
/// its own UDP socket.
pub struct Turn {
    pub client: TurnClient,
    pub socket: UdpSocket,
    pub server: SocketAddr,
    /// The last error response the server sent, as received.
    pub last_error: Option<Vec<u8>>,
}

/// How an Allocate ended.
pub enum Allocated {
    /// The relayed address.
    Relayed(Turn, SocketAddr),
    /// The error code, and the client (whose `last_error` holds the answer).
    Refused(u16, Turn),
}

impl Turn {
    /// Allocates on `server` as `user`, answering the 401 challenge.
    pub fn allocate(server: SocketAddr, user: &str, password: &str) -> Allocated {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let credentials = TurnCredentials {
            username: user.to_owned(),
            password: password.to_owned(),
        };
        // The tests look at the server's own answer: a 300 is reported, not followed.
        let config = TurnClientConfig {
            follow_alternate: false,
            ..TurnClientConfig::default()
        };
        let client =
            TurnClient::with_config(Instant::now(), server, credentials, rand::random(), config);
        let mut turn = Turn {
            client,
            socket,
            server,
            last_error: None,
        };
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            match turn.step(Duration::from_millis(50)).1 {
                Some(TurnEvent::Allocated { relayed, .. }) => {
                    return Allocated::Relayed(turn, relayed)
                }
                Some(TurnEvent::AllocationFailed(error)) => {
                    let code = error
                        .code()
                        .unwrap_or_else(|| panic!("Allocate failed: {error}"));
                    return Allocated::Refused(code, turn);
                }
                _ => {}
            }
        }
        panic!("no answer to the Allocate");
    }

    /// Allocates and expects success.
    pub fn relayed(server: SocketAddr, user: &str, password: &str) -> (Turn, SocketAddr) {
        match Turn::allocate(server, user, password) {
            Allocated::Relayed(turn, relayed) => (turn, relayed),
            Allocated::Refused(code, _) => panic!("Allocate for {user} refused with {code}"),
        }
    }

    /// Allocates and expects an error; its code and the raw answer.
    pub fn refused(server: SocketAddr, user: &str, password: &str) -> (u16, Vec<u8>) {
        match Turn::allocate(server, user, password) {
            Allocated::Relayed(..) => panic!("Allocate for {user} succeeded"),
            Allocated::Refused(code, turn) => (code, turn.last_error.unwrap()),
        }
    }

    /// Sends what the client has to send, waits up to `wait` for one datagram and hands it
    /// over, runs the timers; returns peer data and the next event, if any.
    pub fn step(&mut self, wait: Duration) -> (Option<(SocketAddr, Vec<u8>)>, Option<TurnEvent>) {
        while let Some(transmit) = self.client.poll_transmit() {
            self.socket
                .send_to(&transmit.payload, transmit.destination)
                .unwrap();
        }
        self.socket.set_read_timeout(Some(wait)).unwrap();
        let mut buf = [0u8; 2048];
        let mut data = None;
        if let Ok((len, from)) = self.socket.recv_from(&mut buf) {
            let packet = &buf[..len];
            if let Ok(m) = Message::decode(packet) {
                if m.header().message_type.class == Class::Error {
                    self.last_error = Some(packet.to_vec());
                }
            }
            if let TurnInput::Data { peer, payload } =
                self.client.handle_input(Instant::now(), from, packet)
            {
                data = Some((peer, payload.to_vec()));
            }
        }
        self.client.handle_timeout(Instant::now());
        while let Some(transmit) = self.client.poll_transmit() {
            self.socket
                .send_to(&transmit.payload, transmit.destination)
                .unwrap();
        }
        (data, self.client.poll_event())
    }

    /// Relays `tag` to `peer` and the peer's answer back; true when both arrived within
    /// `limit` (sends again every 200 ms: the first may precede the permission).
    pub fn round_trip(
        &mut self,
        peer: &UdpSocket,
        relayed: SocketAddr,
        tag: &[u8],
        limit: Duration,
    ) -> bool {
        self.client
            .create_permission(Instant::now(), peer.local_addr().unwrap());
        peer.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let deadline = Instant::now() + limit;
        let mut reached_peer = false;
        while Instant::now() < deadline {
            let transmit = self
                .client
                .send_to(Instant::now(), peer.local_addr().unwrap(), tag);
            self.socket
                .send_to(&transmit.payload, transmit.destination)
                .unwrap();
            let mut buf = [0u8; 2048];
            while let Ok((len, from)) = peer.recv_from(&mut buf) {
                if &buf[..len] == tag && from == relayed {
                    reached_peer = true;
                }
            }
            if reached_peer {
                peer.send_to(tag, relayed).unwrap();
            }
            let until = Instant::now() + Duration::from_millis(200);
            while Instant::now() < until {
                if let (Some((from, data)), _) = self.step(Duration::from_millis(20)) {
                    if reached_peer && data == tag && from == peer.local_addr().unwrap() {
                        return true;
                    }
                }
            }
        }
        false
    }

    /// Deletes the allocation (Refresh with LIFETIME 0) and waits for the answer.
    pub fn deallocate(&mut self) {
        self.client.deallocate(Instant::now());
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if let (_, Some(TurnEvent::Deallocated)) = self.step(Duration::from_millis(50)) {
                return;
            }
        }
        panic!("no answer to the deallocation");
    }
}

/// A peer on loopback.
pub fn peer() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").unwrap()
}
