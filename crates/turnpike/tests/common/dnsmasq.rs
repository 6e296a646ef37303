//! A real DNS server for discovery tests: Debian's `dnsmasq` (package `dnsmasq-base`,
//! installed by scripts/install-test-deps) on a free loopback port, authoritative for
//! `test.example` and forwarding nothing, stopped when dropped. No test queries the internet.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The zone the tests publish records in (RFC 2606: never a real one).
pub const ZONE: &str = "test.example";

/// A running dnsmasq.
pub struct Dnsmasq {
    child: Child,
    _dir: tempfile::TempDir,
    /// Where it answers, UDP and TCP.
    pub address: SocketAddr,
}

impl Dnsmasq {
    /// Starts dnsmasq with `records`, each a dnsmasq option such as
    /// `--srv-host=_stun._udp.test.example,relay.test.example,3478,10,0`, and waits until it
    /// accepts TCP connections. A port taken between its probe and dnsmasq's bind (dnsmasq
    /// then exits) is retried on another one.
    pub fn start(records: &[String]) -> Dnsmasq {
        for _ in 0..5 {
            if let Some(server) = Self::try_start(records) {
                return server;
            }
        }
        panic!("dnsmasq did not start on any of 5 free ports (options {records:?})");
    }

    fn try_start(records: &[String]) -> Option<Dnsmasq> {
        let port = free_udp_and_tcp_port();
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("dnsmasq.pid");
        let child = Command::new("dnsmasq")
            .args(["--no-daemon", "--port", &port.to_string()])
            .args(["--listen-address", "127.0.0.1", "--bind-interfaces"])
            .args(["--no-resolv", "--no-hosts", "--conf-file=/dev/null"])
            // Answers for the test zone come from here only: unknown names are NXDOMAIN.
            .arg(format!("--local=/{ZONE}/"))
            .arg(format!("--pid-file={}", pid_file.display()))
            .args(records)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq is missing: scripts/install-test-deps installs dnsmasq-base");
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let mut server = Dnsmasq {
            child,
            _dir: dir,
            address,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(address).is_err() {
            if let Ok(Some(_)) = server.child.try_wait() {
                return None;
            }
            assert!(Instant::now() < deadline, "dnsmasq did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(server)
    }

    /// `127.0.0.1:PORT`, for `--dns-server`.
    pub fn server(&self) -> String {
        self.address.to_string()
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free on 127.0.0.1 for UDP and TCP alike (dnsmasq binds both).
pub fn free_udp_and_tcp_port() -> u16 {
    for _ in 0..100 {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both UDP and TCP");
}
