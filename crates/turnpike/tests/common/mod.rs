//! A running `turnpike serve` for the binary's integration tests: started with JSON logs, ready
//! once it logs "ready", its listeners read from the "listening" lines, killed when dropped.

// Each test binary uses a different part of this module.
#![allow(dead_code)]
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

pub mod dnsmasq;
pub mod redis_server;
pub mod scrape;
pub mod signaling_client;

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use stun::{Class, Message, MessageType, MessageWriter, TransactionId};

/// The flags a loopback TURN test server starts with: a free loopback port, no HTTP, relay
/// addresses on loopback.
pub const LOOPBACK_RELAY: [&str; 6] = [
    "--listen",
    "127.0.0.1:0",
    "--http",
    "false",
    "--relay-ip",
    "127.0.0.1",
];

/// `turnpike serve` with [`LOOPBACK_RELAY`] and then `args`; users come only from `args` (no
/// `TURNPIKE_USERS` from the environment).
pub fn loopback_relay(args: &[&str]) -> Server {
    let all: Vec<&str> = LOOPBACK_RELAY.iter().chain(args).copied().collect();
    Server::spawn(&all, |command| {
        command.env_remove("TURNPIKE_USERS");
    })
}

/// `turnpike ARGS…` as a user runs it: no `TURNPIKE_*` or `RUST_LOG` from the test
/// environment leaking in.
pub fn turnpike_command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_turnpike"));
    command.args(args);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("TURNPIKE_") {
            command.env_remove(&name);
        }
    }
    command.env_remove("RUST_LOG");
    command
}

/// Runs [`turnpike_command`] to completion.
pub fn run_turnpike(args: &[&str]) -> std::process::Output {
    turnpike_command(args)
        .output()
        .expect("the turnpike binary runs")
}

/// A Binding request (RFC 8489 §6.1) with transaction id `[tid; 12]`.
pub fn binding_request(tid: u8) -> Vec<u8> {
    let mut buf = vec![0u8; 64];
    let len = MessageWriter::new(
        &mut buf,
        MessageType::BINDING_REQUEST,
        TransactionId([tid; 12]),
    )
    .unwrap()
    .finish();
    buf.truncate(len);
    buf
}

/// Long-term credentials as a client holds them once challenged (RFC 8489 §9.2).
pub struct Signer<'a> {
    pub username: &'a str,
    pub realm: &'a str,
    pub nonce: &'a str,
    pub key: &'a stun::LongTermKey,
}

/// A TURN request of `method` with `attributes`, signed with MESSAGE-INTEGRITY when `signer`
/// is given.
pub fn request_bytes(
    method: stun::Method,
    tid: TransactionId,
    attributes: &[stun::AnyAttribute<'_>],
    signer: Option<Signer<'_>>,
) -> Vec<u8> {
    use stun::attributes::{Nonce, Realm, Username};
    let mut buf = vec![0u8; 1024];
    let mut w =
        MessageWriter::new(&mut buf, MessageType::new(method, Class::Request), tid).unwrap();
    for a in attributes {
        w.add_any(a).unwrap();
    }
    if let Some(s) = signer {
        w.add(&Username(s.username)).unwrap();
        w.add(&Realm(s.realm)).unwrap();
        w.add(&Nonce(s.nonce)).unwrap();
        w.add_message_integrity(s.key.as_bytes()).unwrap();
    }
    let len = w.finish();
    buf.truncate(len);
    buf
}

/// An authenticated Allocate over UDP (RFC 8656 §7.2 with the long-term credential mechanism
/// of RFC 8489 §9.2): the class of the final answer.
pub fn allocate(server: SocketAddr, username: &str, password: &str) -> Class {
    use stun::attributes::Username;
    use stun::attributes::{ErrorCode, Nonce, PasswordAlgorithmId, Realm, RequestedTransport};
    use stun::{LongTermKey, Method};
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let allocate = MessageType::new(Method::ALLOCATE, Class::Request);
    let exchange = |bytes: &[u8]| {
        client.send_to(bytes, server).unwrap();
        let mut buf = [0u8; 1500];
        let len = client.recv(&mut buf).unwrap();
        buf[..len].to_vec()
    };
    let mut buf = [0u8; 512];
    let mut w = MessageWriter::new(&mut buf, allocate, TransactionId([1; 12])).unwrap();
    w.add(&RequestedTransport(RequestedTransport::UDP)).unwrap();
    let len = w.finish();
    let challenge = exchange(&buf[..len]);
    let challenge = Message::decode(&challenge).unwrap();
    assert_eq!(challenge.get::<ErrorCode<'_>>().unwrap().unwrap().code, 401);
    let nonce = challenge.get::<Nonce<'_>>().unwrap().unwrap().0.to_string();
    let realm = challenge.get::<Realm<'_>>().unwrap().unwrap().0.to_string();
    let key = LongTermKey::derive(PasswordAlgorithmId::MD5, username, &realm, password).unwrap();
    let mut w = MessageWriter::new(&mut buf, allocate, TransactionId([2; 12])).unwrap();
    w.add(&RequestedTransport(RequestedTransport::UDP)).unwrap();
    w.add(&Username(username)).unwrap();
    w.add(&Realm(&realm)).unwrap();
    w.add(&Nonce(&nonce)).unwrap();
    w.add_message_integrity(key.as_bytes()).unwrap();
    let len = w.finish();
    let reply = exchange(&buf[..len]);
    let class = Message::decode(&reply).unwrap().header().message_type.class;
    class
}

/// A running `turnpike serve`.
pub struct Server {
    pub child: Child,
    /// (transport, address) of every "listening" log line.
    pub listening: Vec<(String, SocketAddr)>,
    /// Every JSON log line read up to "ready".
    pub startup: Vec<Value>,
    /// The log lines after "ready".
    pub lines: mpsc::Receiver<String>,
}

impl Server {
    /// Starts `turnpike serve --log-format json --log-level info ARGS`; `configure` adds to the
    /// command (environment, more arguments) before it is spawned.
    pub fn spawn(args: &[&str], configure: impl FnOnce(&mut Command)) -> Server {
        Self::start(&[], "info", args, configure)
    }

    /// As [`Server::spawn`], with the log filter `level` instead of `info` (empty: none on the
    /// command line).
    pub fn spawn_logging(
        level: &str,
        args: &[&str],
        configure: impl FnOnce(&mut Command),
    ) -> Server {
        Self::start(&[], level, args, configure)
    }

    /// [`Server::spawn`] under `wrapper`, a program and its arguments that execs the server
    /// (such as `prlimit --nofile=256:256 --`), so that the server keeps the child's pid.
    pub fn spawn_wrapped(
        wrapper: &[&str],
        args: &[&str],
        configure: impl FnOnce(&mut Command),
    ) -> Server {
        Self::start(wrapper, "info", args, configure)
    }

    /// Starts the server under `wrapper` (may be empty) with the log filter `level`.
    fn start(
        wrapper: &[&str],
        level: &str,
        args: &[&str],
        configure: impl FnOnce(&mut Command),
    ) -> Server {
        let binary = env!("CARGO_BIN_EXE_turnpike");
        let mut command = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut command = Command::new(program);
                command.args(rest).arg(binary);
                command
            }
            None => Command::new(binary),
        };
        command
            .arg("serve")
            .args(["--log-format", "json"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // An empty level leaves `log-level` to the configuration file (reload tests).
        if !level.is_empty() {
            command.args(["--log-level", level]);
        }
        configure(&mut command);
        // The metrics listener defaults to 127.0.0.1:9641, which servers running side by side
        // would fight over: off unless the test asks for it, by the flag or by setting or
        // removing TURNPIKE_METRICS_LISTEN (removed: the built-in default).
        let metrics_chosen = command.get_args().any(|a| a == "--metrics-listen")
            || command
                .get_envs()
                .any(|(k, _)| k == "TURNPIKE_METRICS_LISTEN");
        if !metrics_chosen {
            command.args(["--metrics-listen", "off"]);
        }
        // SIGTERM drains: a test stopping a server that still holds allocations wants it
        // gone at once, unless the test is about draining.
        let sets_drain = command.get_args().any(|a| a == "--drain-timeout")
            || command
                .get_envs()
                .any(|(key, _)| key == "TURNPIKE_DRAIN_TIMEOUT");
        if !sets_drain {
            command.args(["--drain-timeout", "0"]);
        }
        if !sets_relay_range(&command) {
            let (low, high) = free_relay_range();
            command.args([
                "--min-port",
                &low.to_string(),
                "--max-port",
                &high.to_string(),
            ]);
        }
        let mut child = command.spawn().unwrap();
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        // Keeps draining stderr after start-up, so that the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut listening = Vec::new();
        let mut startup = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("server not ready; exit status {:?}", child.try_wait()));
            let v: Value = serde_json::from_str(&line).unwrap_or_default();
            startup.push(v.clone());
            match v["fields"]["message"].as_str() {
                Some("listening") => listening.push((
                    v["fields"]["transport"].as_str().unwrap().to_string(),
                    v["fields"]["address"].as_str().unwrap().parse().unwrap(),
                )),
                Some("ready") => break,
                _ => {}
            }
        }
        Server {
            child,
            listening,
            startup,
            lines: rx,
        }
    }

    /// The first listener of `transport` ("udp", "tcp", "tls", "http").
    pub fn address(&self, transport: &str) -> SocketAddr {
        self.listening
            .iter()
            .find(|(t, _)| t == transport)
            .unwrap_or_else(|| panic!("no {transport} listener in {:?}", self.listening))
            .1
    }

    /// Sends SIGTERM and returns the exit code.
    pub fn stop(self) -> Option<i32> {
        self.stop_with_log().0
    }

    /// Sends SIGTERM; returns the exit code and the log lines written after "ready": JSON
    /// lines parsed, any other line (a panic message) kept as a JSON string.
    pub fn stop_with_log(mut self) -> (Option<i32>, Vec<Value>) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                // The reader thread ends at EOF, once the process is gone.
                let lines = self
                    .lines
                    .iter()
                    .map(|line| serde_json::from_str(&line).unwrap_or(Value::String(line)))
                    .collect();
                return (status.code(), lines);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("server did not stop on SIGTERM");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A self-signed certificate for "localhost" written as PEM files into a temporary directory
/// (removed when dropped), for the TLS listeners.
pub struct TlsFiles {
    pub dir: tempfile::TempDir,
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
    pub certified: rcgen::CertifiedKey,
}

impl TlsFiles {
    pub fn new() -> TlsFiles {
        let dir = tempfile::tempdir().unwrap();
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, certified.cert.pem()).unwrap();
        std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
        TlsFiles {
            dir,
            cert,
            key,
            certified,
        }
    }

    /// A self-signed certificate for `names` (DNS names or IP addresses) valid from 2020 until
    /// `not_after` (year, month, day), in the files instead of the "localhost" one (which
    /// `certified` still holds).
    pub fn for_names(names: &[&str], not_after: (i32, u8, u8)) -> TlsFiles {
        let files = TlsFiles::new();
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = rcgen::CertificateParams::new(names).unwrap();
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(&files.cert, cert.pem()).unwrap();
        std::fs::write(&files.key, key.serialize_pem()).unwrap();
        files
    }
}

/// Whether the test chose the relay port range itself (flags, a config file, or environment).
fn sets_relay_range(command: &Command) -> bool {
    command
        .get_args()
        .any(|a| a == "--min-port" || a == "--max-port" || a == "--config")
        || command
            .get_envs()
            .any(|(k, _)| k == "TURNPIKE_MIN_PORT" || k == "TURNPIKE_MAX_PORT")
}

/// 200 consecutive ports in 20000–32767 that all bind for UDP on 0.0.0.0 (so on every relay
/// IP): the default range (49152–65535) is shared with every program on the machine and with
/// Linux's ephemeral ports, and one holding many of them made Allocates fail with 508 (issue
/// #13). The sockets close before the server starts; its 64 random tries per allocation absorb
/// a port taken meanwhile.
pub fn free_relay_range() -> (u16, u16) {
    const FLOOR: u16 = 20000;
    const CEILING: u16 = 32767;
    const SIZE: u16 = 200;
    for _ in 0..100 {
        let low = FLOOR + rand::random::<u16>() % (CEILING - FLOOR - SIZE + 2);
        let high = low + SIZE - 1;
        let held: Result<Vec<UdpSocket>, _> = (low..=high)
            .map(|port| UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port)))
            .collect();
        if held.is_ok() {
            return (low, high);
        }
    }
    panic!("no 200 free consecutive UDP ports in {FLOOR}–{CEILING}");
}
