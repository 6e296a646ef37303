//! The server under test: finding or building the binary, starting `turnpike serve` on free
//! loopback ports, waiting until it answers, and reading its memory and CPU from `/proc`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// How long the server may take to answer `/healthz` after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The `turnpike` binary to run: `--server-bin` as given, else the one next to this program
/// (same profile), rebuilt with cargo first so that it matches the sources.
pub fn resolve_binary(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        if !path.is_file() {
            bail!("--server-bin {}: no such file", path.display());
        }
        return Ok(path.to_path_buf());
    }
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let dir = exe
        .parent()
        .context("this program's path has no directory")?
        .to_path_buf();
    let binary = dir.join("turnpike");
    let release = dir.file_name().is_some_and(|name| name == "release");
    let mut build = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    build.args(["build", "-q", "-p", "turnpike"]);
    if release {
        build.arg("--release");
    }
    let profile = if release { "release" } else { "debug" };
    eprintln!("signal-load: cargo build -p turnpike ({profile}) ...");
    match build.status() {
        Ok(status) if status.success() => {}
        Ok(status) if binary.is_file() => eprintln!(
            "signal-load: warning: building turnpike failed ({status}); using the existing {}",
            binary.display()
        ),
        Err(e) if binary.is_file() => eprintln!(
            "signal-load: warning: cannot run cargo ({e}); using the existing {}",
            binary.display()
        ),
        Ok(status) => bail!("building turnpike failed ({status})"),
        Err(e) => bail!("cannot run cargo to build turnpike: {e}"),
    }
    if !binary.is_file() {
        bail!("no turnpike binary at {}", binary.display());
    }
    Ok(binary)
}

/// A running `turnpike serve`, killed when dropped.
#[derive(Debug)]
pub struct Server {
    child: Child,
    /// The WebSocket URL of its signaling hub.
    pub ws_url: String,
    /// Its command line, for the report.
    pub command: String,
    /// Lines it wrote to stderr or stdout (it logs at `warn`: each is worth a look).
    pub log_lines: Arc<AtomicU64>,
}

/// Settings the server is started with.
#[derive(Debug, Clone, Copy)]
pub struct ServerSettings {
    /// `--message-rate`: frames per second per connection.
    pub message_rate: u64,
    /// `--max-tcp-connections`: the cap on HTTP connections.
    pub max_connections: usize,
}

impl Server {
    /// Starts `binary serve` on free loopback ports, with `extra` flags (the cluster's), and
    /// waits until `/healthz` answers `ok` (with a cluster: connected to Redis). Its output is
    /// copied to stderr prefixed with `[label]`.
    pub fn start(
        binary: &Path,
        settings: ServerSettings,
        extra: &[String],
        label: &str,
    ) -> anyhow::Result<Server> {
        let listen = free_udp_tcp_port()?;
        let http = free_tcp_port()?;
        let mut args: Vec<String> = vec![
            "serve".into(),
            "--listen".into(),
            listen.to_string(),
            "--http-listen".into(),
            http.to_string(),
            "--log-level".into(),
            "warn".into(),
            "--metrics-listen".into(),
            "off".into(),
            "--room-capacity".into(),
            "2".into(),
            "--message-rate".into(),
            settings.message_rate.to_string(),
            "--max-tcp-connections".into(),
            settings.max_connections.to_string(),
            // Every simulated client connects from 127.0.0.1: one source may hold them all.
            "--http-connections-per-ip".into(),
            settings.max_connections.to_string(),
        ];
        args.extend(extra.iter().cloned());
        let mut command = Command::new(binary);
        command
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Only the flags above configure it: no config file or TURNPIKE_* from the caller.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("TURNPIKE_") {
                command.env_remove(key);
            }
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let log_lines = Arc::new(AtomicU64::new(0));
        if let Some(out) = child.stdout.take() {
            forward(out, label, log_lines.clone());
        }
        if let Some(err) = child.stderr.take() {
            forward(err, label, log_lines.clone());
        }
        let mut server = Server {
            child,
            ws_url: format!("ws://{http}/ws"),
            command: format!("{} {}", binary.display(), args.join(" ")),
            log_lines,
        };
        server.wait_ready(http)?;
        Ok(server)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Polls `GET /healthz` until it answers 200 `ok` (a cluster node says `degraded` until
    /// it has reached Redis).
    fn wait_ready(&mut self, http: SocketAddr) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("turnpike exited at start ({status}); its output is above");
            }
            if healthz(http).unwrap_or(false) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("turnpike did not answer GET /healthz on {http} within {START_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Copies the server's output to ours, prefixed with `[label]`, counting the lines.
fn forward(stream: impl Read + Send + 'static, label: &str, lines: Arc<AtomicU64>) {
    let label = label.to_owned();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            lines.fetch_add(1, Ordering::Relaxed);
            eprintln!("[{label}] {line}");
        }
    });
}

/// One `GET /healthz` over a fresh connection: true on `200` with the body `ok`.
fn healthz(addr: SocketAddr) -> std::io::Result<bool> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    Ok(answer.starts_with(b"HTTP/1.1 200") && answer.ends_with(b"\r\n\r\nok"))
}

/// A loopback port free for TCP now (the server binds it a moment later).
pub fn free_tcp_port() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?)
}

/// A loopback port free for both UDP and TCP (STUN/TURN listens on both).
fn free_udp_tcp_port() -> anyhow::Result<SocketAddr> {
    for _ in 0..50 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        let addr = udp.local_addr()?;
        if TcpListener::bind(addr).is_ok() {
            return Ok(addr);
        }
    }
    bail!("no loopback port free for both UDP and TCP")
}

pub use turnpike_bench::procfs::{
    clock_ticks, cpu_time, cpu_times, machine_busy, memory, open_fds,
};
