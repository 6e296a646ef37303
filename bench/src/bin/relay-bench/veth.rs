//! The veth topology (`--topology veth`): two network namespaces joined by a veth pair, so that
//! Turnpike's kernel fast path (XDP) can carry the traffic, which it cannot on loopback.
//!
//! ```text
//!   namespace S (servers)                      namespace C (generator, echo peer)
//!   10.77.0.1  veth rb<pid>s  <─────────────>  veth rb<pid>c  10.77.0.2
//!   turnpike / turnserver / udp-forwarder      checksum offload off (tx), relay.o attached
//!   (+ the "direct" run's echo peer)           (empty maps: passes everything)
//! ```
//!
//! Two facts of Linux (6.18) make this shape necessary (crates/xdp/README.md): a UDP socket
//! sending over `lo` or a veth leaves a partial checksum that XDP cannot complete, so the
//! client side sends with full checksums (`ethtool -K tx off`); and XDP_TX on a veth is
//! delivered only when the other end runs NAPI, so the client's veth gets an XDP program too.
//!
//! The namespaces are removed when [`Topology`] is dropped, and also when this process dies
//! any other way: a watchdog shell started with `setpriv --pdeathsig TERM` removes them then.
//! Removing a namespace destroys its veth end, hence the pair and both XDP attachments.

use std::fs::File;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{anyhow, bail, Context};
use nix::sched::CloneFlags;

use crate::servers::{self, Placement};

/// The server namespace's address.
pub const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
/// The client namespace's address (generator and echo peer).
pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);

/// The two namespaces and the veth pair; removed when dropped.
#[derive(Debug)]
pub struct Topology {
    /// The servers' namespace.
    pub server_ns: String,
    /// The generator's namespace.
    pub client_ns: String,
    /// The veth end in the server namespace (where Turnpike attaches XDP).
    pub server_if: String,
    /// The veth end in the client namespace.
    pub client_if: String,
    watchdog: Option<Child>,
}

impl Topology {
    /// Creates the namespaces (names with our pid), the veth pair, the addresses, turns
    /// checksum offload off on the client side and attaches `object` (crates/xdp's relay.o)
    /// to the client's veth. Needs root.
    pub fn create(object: &Path) -> anyhow::Result<Topology> {
        if !nix::unistd::geteuid().is_root() {
            bail!("--topology veth needs root (network namespaces, veth, XDP): run it as root");
        }
        for tool in ["ip", "ethtool", "curl"] {
            if servers::which(tool).is_none() {
                bail!("--topology veth needs `{tool}` on the PATH");
            }
        }
        if !object.is_file() {
            bail!("no XDP object at {}", object.display());
        }
        let pid = std::process::id();
        let mut topology = Topology {
            server_ns: format!("relay-bench-{pid}-s"),
            client_ns: format!("relay-bench-{pid}-c"),
            server_if: format!("rb{pid}s"),
            client_if: format!("rb{pid}c"),
            watchdog: None,
        };
        // From here on, dropping `topology` (an error below too) removes what exists.
        topology.watchdog = Some(topology.start_watchdog()?);
        let (s, c) = (&topology.server_ns, &topology.client_ns);
        let (sif, cif) = (&topology.server_if, &topology.client_if);
        ip(&["netns", "add", s])?;
        ip(&["netns", "add", c])?;
        ip(&[
            "link", "add", sif, "netns", s, "type", "veth", "peer", "name", cif, "netns", c,
        ])?;
        for (ns, dev, addr) in [(s, sif, SERVER_IP), (c, cif, CLIENT_IP)] {
            ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        ip(&["netns", "exec", c, "ethtool", "-K", cif, "tx", "off"])?;
        let object = object.display().to_string();
        ip(&[
            "-n", c, "link", "set", "dev", cif, "xdpdrv", "obj", &object, "sec", "xdp",
        ])?;
        Ok(topology)
    }

    /// Where the servers run and what they may relay to.
    pub fn placement(&self) -> Placement {
        Placement {
            server_ip: SERVER_IP,
            client_ip: CLIENT_IP,
            netns: Some(self.server_ns.clone()),
            allowed_peers: "10.77.0.0/24".into(),
            xdp_interface: Some(self.server_if.clone()),
        }
    }

    /// A shell that removes the namespaces when this process dies (SIGTERM from
    /// `--pdeathsig`, or SIGINT/SIGHUP from the terminal with the rest of the process group).
    fn start_watchdog(&self) -> anyhow::Result<Child> {
        let script = format!(
            "trap 'ip netns del {s} 2>/dev/null; ip netns del {c} 2>/dev/null; exit 0' TERM INT HUP; \
             while :; do sleep 1 & wait $!; done",
            s = self.server_ns,
            c = self.client_ns
        );
        let mut command = match servers::which("setpriv") {
            Some(setpriv) => {
                let mut command = Command::new(setpriv);
                command.args(["--pdeathsig", "TERM", "sh"]);
                command
            }
            None => Command::new("sh"),
        };
        command
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting the namespace watchdog")
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for ns in [&self.server_ns, &self.client_ns] {
            if Path::new("/var/run/netns").join(ns).exists() {
                if let Err(e) = ip(&["netns", "del", ns]) {
                    eprintln!("relay-bench: warning: {e:#}");
                }
            }
        }
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill(); // SIGKILL: no trap, nothing left to remove
            let _ = watchdog.wait();
        }
    }
}

/// Runs `f` on a thread of its own inside namespace `ns`: sockets it makes belong to `ns`
/// (for good: a socket stays in the namespace it was made in), and so do processes it starts.
pub fn in_namespace<T: Send>(
    ns: &str,
    f: impl FnOnce() -> anyhow::Result<T> + Send,
) -> anyhow::Result<T> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let path = Path::new("/var/run/netns").join(ns);
                let file =
                    File::open(&path).with_context(|| format!("opening {}", path.display()))?;
                nix::sched::setns(&file, CloneFlags::CLONE_NEWNET)
                    .with_context(|| format!("entering network namespace {ns}"))?;
                f()
            })
            .join()
            .map_err(|_| anyhow!("a thread in namespace {ns} panicked"))?
    })
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("cannot run ip")?;
    if !out.status.success() {
        bail!(
            "ip {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
