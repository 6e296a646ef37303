//! The three programs under test — `turnpike serve`, coturn's `turnserver` and the bare
//! `udp-forwarder` — started with equivalent settings on loopback, each logging to its own file,
//! and read from `/proc` (CPU time, resident memory) while they run.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use turnpike_bench::procfs;

use crate::turn_client;

/// Realm, user and password given to both TURN servers.
pub const REALM: &str = "turnpike-bench";
/// The long-term user of both servers.
pub const USERNAME: &str = "bench";
/// Its password.
pub const PASSWORD: &str = "bench-password";
/// Relay port range of both servers: 20,000 ports, below Linux's ephemeral range (32768–60999)
/// so that the load generator's own sockets never take a relay port.
pub const MIN_PORT: u16 = 10_000;
/// Highest relay port (see [`MIN_PORT`]).
pub const MAX_PORT: u16 = 29_999;
/// How long a server may take to answer its first Binding request (coturn prepares its relay
/// port list first).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Which program serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Kind {
    /// `turnpike serve`.
    Turnpike,
    /// coturn's `turnserver`.
    Coturn,
    /// The bare UDP forwarder (the ceiling; relay workloads only).
    Forwarder,
    /// `turnpike serve --xdp-interfaces` (veth topology only: the kernel fast path).
    TurnpikeXdp,
    /// No relay: the generator's datagrams straight to an echo peer (veth topology only).
    Direct,
}

impl Kind {
    /// The name used in tables and file names.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Turnpike => "Turnpike",
            Kind::Coturn => "coturn",
            Kind::Forwarder => "forwarder",
            Kind::TurnpikeXdp => "Turnpike XDP",
            Kind::Direct => "direct",
        }
    }
}

/// Where the servers run and what they may relay to: loopback, or the veth topology's server
/// namespace (see `veth.rs`).
#[derive(Debug, Clone)]
pub struct Placement {
    /// The address servers listen and relay on.
    pub server_ip: Ipv4Addr,
    /// The address the generator's sockets bind.
    pub client_ip: Ipv4Addr,
    /// The network namespace servers run in (`ip netns exec`), if not ours.
    pub netns: Option<String>,
    /// Turnpike's `--allowed-peers` (where the echo peer is).
    pub allowed_peers: String,
    /// The server's interface, for `--xdp-interfaces` ([`Kind::TurnpikeXdp`]).
    pub xdp_interface: Option<String>,
}

impl Placement {
    /// Everything on loopback, as the default topology runs.
    pub fn loopback() -> Placement {
        Placement {
            server_ip: Ipv4Addr::LOCALHOST,
            client_ip: Ipv4Addr::LOCALHOST,
            netns: None,
            allowed_peers: "127.0.0.1/32".into(),
            xdp_interface: None,
        }
    }

    /// `program` run in the servers' namespace (through `ip netns exec` when it is not ours).
    pub fn command(&self, program: &Path) -> Command {
        self.command_with(program, |p| Command::new(p))
    }

    /// The same, the command made by `make` (e.g. [`child_command`]).
    fn command_with(&self, program: &Path, make: fn(&Path) -> Command) -> Command {
        match &self.netns {
            Some(ns) => {
                let mut command = make(Path::new("ip"));
                command.args(["netns", "exec", ns]).arg(program);
                command
            }
            None => make(program),
        }
    }
}

/// Port of Turnpike's metrics endpoint on the veth topology.
pub const METRICS_PORT: u16 = 9100;

/// Where the programs are.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// `turnpike`.
    pub turnpike: PathBuf,
    /// `turnserver`.
    pub coturn: PathBuf,
    /// `udp-forwarder` (this crate).
    pub forwarder: PathBuf,
}

/// A running server, killed when dropped.
#[derive(Debug)]
pub struct Server {
    /// Which one.
    pub kind: Kind,
    child: Child,
    /// Where clients send (STUN/TURN listener, or the forwarder's client port).
    pub addr: SocketAddr,
    /// Its command line, for the report.
    pub command: String,
    /// Its log file.
    pub log: PathBuf,
    placement: Placement,
}

impl Server {
    /// Starts `kind` on a free loopback port, logging to `log_dir`, and waits until it answers
    /// (a STUN Binding for the TURN servers, the "listening" line for the forwarder).
    /// `echo_peer` is where the forwarder sends; `placement` where it runs.
    pub fn start(
        kind: Kind,
        binaries: &Binaries,
        log_dir: &Path,
        label: &str,
        echo_peer: SocketAddr,
        placement: &Placement,
    ) -> anyhow::Result<Server> {
        let port = free_udp_port()?;
        let addr = SocketAddr::from((placement.server_ip, port));
        let log = log_dir.join(format!("{}-{label}.log", kind.name().replace(' ', "-")));
        let (program, args) = match kind {
            Kind::Turnpike => (&binaries.turnpike, turnpike_args(addr, placement, None)),
            Kind::TurnpikeXdp => (
                &binaries.turnpike,
                turnpike_args(addr, placement, placement.xdp_interface.as_deref()),
            ),
            Kind::Direct => bail!("direct runs have no server"),
            Kind::Coturn => (&binaries.coturn, coturn_args(addr, &log, log_dir)),
            Kind::Forwarder => (
                &binaries.forwarder,
                vec![
                    "--listen".into(),
                    addr.to_string(),
                    "--peer".into(),
                    echo_peer.to_string(),
                ],
            ),
        };
        let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        let mut command = placement.command_with(program, child_command);
        command
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        // Only the flags configure the servers: no TURNPIKE_* or RUST_LOG from the caller.
        for (key, _) in std::env::vars_os() {
            let key_text = key.to_string_lossy();
            if key_text.starts_with("TURNPIKE_") || key_text == "RUST_LOG" {
                command.env_remove(key);
            }
        }
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {}", program.display()))?;
        let mut server = Server {
            kind,
            child,
            addr,
            command: format!("{} {}", program.display(), args.join(" ")),
            log,
            placement: placement.clone(),
        };
        server.wait_ready()?;
        Ok(server)
    }

    /// The process id, for `/proc`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        let probe = UdpSocket::bind((self.placement.client_ip, 0))?;
        probe.set_read_timeout(Some(Duration::from_millis(100)))?;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited at start ({status}); see {}",
                    self.kind.name(),
                    self.log.display()
                );
            }
            let ready = match self.kind {
                Kind::Forwarder => std::fs::read_to_string(&self.log)
                    .map(|text| text.contains("listening"))
                    .unwrap_or(false),
                _ => turn_client::binding_answered(&probe, self.addr),
            };
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not answer on {} within {START_TIMEOUT:?}; see {}",
                    self.kind.name(),
                    self.addr,
                    self.log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// User + system CPU time of the whole process (all threads) so far.
    pub fn cpu(&self) -> Duration {
        cpu_time(self.pid()).unwrap_or_default()
    }

    /// Resident memory in bytes.
    pub fn rss(&self) -> anyhow::Result<u64> {
        rss(self.pid())
    }

    /// The receive buffer (bytes, as the kernel accounts it) of its UDP listener, from `ss`.
    pub fn listener_rcvbuf(&self) -> Option<u64> {
        let out = self
            .placement
            .command(Path::new("ss"))
            .args(["-uampnH", "sport", "=", &format!(":{}", self.addr.port())])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let at = text.find(",rb")?;
        let digits: String = text[at + 3..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    }

    /// Turnpike's metrics (Prometheus text), read with `curl` in its namespace (veth topology).
    pub fn metrics(&self) -> anyhow::Result<String> {
        let url = format!("http://{}:{METRICS_PORT}/metrics", self.placement.server_ip);
        let out = self
            .placement
            .command(Path::new("curl"))
            .args(["-sf", "--max-time", "5", &url])
            .stdin(Stdio::null())
            .output()
            .context("cannot run curl")?;
        if !out.status.success() {
            bail!("curl {url} failed ({})", out.status);
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops it: SIGTERM (via `kill`), then SIGKILL after a second.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if !self.running() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Drop kills it.
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.running() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// `turnpike serve`, set up as coturn below: one UDP listener on loopback, no TCP, TLS or
/// HTTP, a static user, relay ports 10000–29999 on 127.0.0.1, the loopback echo peer allowed,
/// no allocation quota (coturn has none by default), default log level. Elsewhere (veth) the
/// placement's addresses, its metrics endpoint (to count what the kernel relayed) and, with
/// `xdp`, the kernel fast path on that interface.
fn turnpike_args(addr: SocketAddr, placement: &Placement, xdp: Option<&str>) -> Vec<String> {
    let metrics = match placement.netns {
        Some(_) => format!("{}:{METRICS_PORT}", placement.server_ip),
        None => "off".into(),
    };
    let mut args: Vec<String> = [
        "serve",
        // SIGTERM drains until the last allocation ends: stop at once between runs.
        "--drain-timeout",
        "0",
        "--listen",
        &addr.to_string(),
        "--tcp",
        "false",
        "--http",
        "false",
        "--metrics-listen",
        &metrics,
        "--realm",
        REALM,
        "--users",
        &format!("{USERNAME}:{PASSWORD}"),
        "--relay-ip",
        &placement.server_ip.to_string(),
        "--min-port",
        &MIN_PORT.to_string(),
        "--max-port",
        &MAX_PORT.to_string(),
        "--allowed-peers",
        &placement.allowed_peers,
        "--total-quota",
        "10000000",
        "--log-format",
        "json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if placement.netns.is_some() {
        // All clients come from one address, which is not loopback (exempt): without this,
        // the 401 challenges of a thousand Allocates exceed one source's budget. coturn has
        // no such cap.
        args.extend(["--amplification-budget".to_string(), "0".to_string()]);
    }
    if let Some(interface) = xdp {
        args.extend(["--xdp-interfaces".to_string(), interface.to_string()]);
    }
    args
}

/// coturn: no config file (`-n`), the same listener, realm, user, relay range and peer policy;
/// TLS, DTLS, TCP and the telnet CLI off; its default thread count (one relay thread per CPU);
/// its log in a file of ours and its pid file in our directory (not /var/run).
fn coturn_args(addr: SocketAddr, log: &Path, dir: &Path) -> Vec<String> {
    [
        "-n",
        "--listening-ip",
        &addr.ip().to_string(),
        "--listening-port",
        &addr.port().to_string(),
        "--relay-ip",
        &addr.ip().to_string(),
        "--min-port",
        &MIN_PORT.to_string(),
        "--max-port",
        &MAX_PORT.to_string(),
        "--realm",
        REALM,
        "--lt-cred-mech",
        "--user",
        &format!("{USERNAME}:{PASSWORD}"),
        "--allow-loopback-peers",
        "--no-tls",
        "--no-dtls",
        "--no-tcp",
        "--no-cli",
        "--log-file",
        &log.display().to_string(),
        "--no-stdout-log",
        "--simple-log",
        "--pidfile",
        &dir.join("turnserver.pid").display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A command for `program` that dies with us: run through `setpriv --pdeathsig KILL` (util-linux)
/// when it is there, so that servers and tools started by a run that is killed do not live on
/// (without `unsafe`, which this crate may not use, there is no other way to ask for it).
pub fn child_command(program: &Path) -> Command {
    match which("setpriv") {
        Some(setpriv) => {
            let mut command = Command::new(setpriv);
            command.args(["--pdeathsig", "KILL"]).arg(program);
            command
        }
        None => Command::new(program),
    }
}

/// A loopback UDP port free now (the server binds it a moment later).
pub fn free_udp_port() -> anyhow::Result<u16> {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(socket.local_addr()?.port())
}

/// A loopback UDP port P with P + 1 free as well (turnutils_peer binds both).
pub fn free_udp_port_pair() -> anyhow::Result<u16> {
    for _ in 0..100 {
        let first = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = first.local_addr()?.port();
        if port < u16::MAX && UdpSocket::bind((Ipv4Addr::LOCALHOST, port + 1)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no two consecutive loopback UDP ports free")
}

/// User + system CPU time of `pid` so far (all its threads).
pub fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    procfs::cpu_time(pid, clock_ticks())
}

/// Resident memory of `pid` in bytes (`VmRSS`).
pub fn rss(pid: u32) -> anyhow::Result<u64> {
    procfs::memory(pid, "VmRSS")
}

/// Clock ticks per second of `/proc/PID/stat`, asked once.
fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(procfs::clock_ticks)
}

/// Busy CPU time of the whole machine so far (all cores).
pub fn machine_busy() -> Duration {
    procfs::machine_busy(clock_ticks()).unwrap_or_default()
}

/// Makes sure `program` exists, installing Debian `package` with apt-get when it does not
/// (as root, as CI runs); returns its path.
pub fn ensure_installed(program: &str, package: &str) -> anyhow::Result<PathBuf> {
    if let Some(path) = which(program) {
        return Ok(path);
    }
    eprintln!("relay-bench: {program} not found: apt-get install -y {package}");
    apt_install(package)?;
    which(program).with_context(|| format!("{program} still not found after installing {package}"))
}

/// Installs a Debian package (apt-get update first if the plain install fails).
pub fn apt_install(package: &str) -> anyhow::Result<()> {
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-q", package])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
    };
    if install().map(|s| s.success()).unwrap_or(false) {
        return Ok(());
    }
    let _ = Command::new("apt-get")
        .args(["update", "-q"])
        .stdout(Stdio::null())
        .status();
    match install() {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => bail!("apt-get install -y {package} failed ({status}); install it by hand"),
        Err(e) => bail!("cannot run apt-get to install {package}: {e}; install it by hand"),
    }
}

/// `program` on the PATH.
pub fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|path| path.is_file())
    })
}

/// The `turnpike` to run: `--server-bin` as given, else the one next to this program (same
/// profile), rebuilt with cargo first so that it matches the sources; and the forwarder, built
/// alongside this program.
pub fn resolve_binaries(explicit: Option<&Path>, coturn: PathBuf) -> anyhow::Result<Binaries> {
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let dir = exe
        .parent()
        .context("this program's path has no directory")?
        .to_path_buf();
    let forwarder = dir.join("udp-forwarder");
    let release = dir.file_name().is_some_and(|name| name == "release");
    let turnpike = match explicit {
        Some(path) if path.is_file() => path.to_path_buf(),
        Some(path) => bail!("--server-bin {}: no such file", path.display()),
        None => dir.join("turnpike"),
    };
    let mut build = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    build.args([
        "build",
        "-q",
        "-p",
        "turnpike-bench",
        "--bin",
        "udp-forwarder",
    ]);
    if explicit.is_none() {
        // `--bin` selects binaries across all `-p` packages: name both.
        build.args(["-p", "turnpike", "--bin", "turnpike"]);
    }
    if release {
        build.arg("--release");
    }
    eprintln!(
        "relay-bench: cargo build ({}) of {} ...",
        if release { "release" } else { "debug" },
        if explicit.is_none() {
            "turnpike and udp-forwarder"
        } else {
            "udp-forwarder"
        }
    );
    match build.status() {
        Ok(status) if status.success() => {}
        Ok(status) if turnpike.is_file() && forwarder.is_file() => eprintln!(
            "relay-bench: warning: cargo build failed ({status}); using the existing binaries"
        ),
        Err(e) if turnpike.is_file() && forwarder.is_file() => {
            eprintln!("relay-bench: warning: cannot run cargo ({e}); using the existing binaries")
        }
        Ok(status) => bail!("cargo build failed ({status})"),
        Err(e) => bail!("cannot run cargo: {e}"),
    }
    for path in [&turnpike, &forwarder] {
        if !path.is_file() {
            bail!("no binary at {}", path.display());
        }
    }
    Ok(Binaries {
        turnpike,
        coturn,
        forwarder,
    })
}

/// First line of `program --version`-like output, for the report.
pub fn version_line(program: &Path, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()
        .and_then(|out| {
            let text = if out.stdout.is_empty() {
                out.stderr
            } else {
                out.stdout
            };
            BufReader::new(&text[..])
                .lines()
                .map_while(Result::ok)
                .find(|l| !l.trim().is_empty())
        })
        .unwrap_or_default()
}
