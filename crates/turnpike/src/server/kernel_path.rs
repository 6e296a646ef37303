//! The kernel fast path (`xdp-interfaces`, issue 15) as the server drives it.
//!
//! One XDP program is attached for the whole process (crates/xdp); its maps hold the channels
//! of every worker. Each worker's TURN core decides which of its channels may be relayed below
//! it (see `turn::relay::fast_path`) and hands out the differences; [`sync`] mirrors them into
//! the maps right after the core call that caused them (a request, a timer, a reload, a kick),
//! in the worker's loop, so the kernel never relays for a channel the core has dropped for
//! longer than it takes to run that call. [`read_back`] folds the program's per-channel
//! counters into the core's session records and counters, every 2 s on the worker's event
//! tick, and a channel's last counters when it leaves the maps.
//!
//! Failing to attach (not root, no BPF, a verifier rejection, an unknown interface) is one
//! warning: the userspace path serves everything, as without `xdp-interfaces`. A map update
//! that fails (a full map) leaves that channel to userspace and is counted.

use std::collections::HashMap;
#[cfg(target_os = "linux")]
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

#[cfg(target_os = "linux")]
use turn::relay::ClientAddr;
use turn::relay::{FastChannel, FastPathChange, Traffic, TurnServer};

/// The attached program, shared by every worker.
#[derive(Debug)]
pub struct KernelPath {
    #[cfg(target_os = "linux")]
    program: Mutex<Program>,
    /// Map updates that failed (the channel stays in userspace).
    failed_updates: AtomicU64,
}

/// The program and which server address owns each client → peer key.
#[cfg(target_os = "linux")]
#[derive(Debug)]
struct Program {
    fast: xdp::FastPath,
    /// The program matches ChannelData on (client address, server *port*, channel): the
    /// server IP is not in its key. Two allocations of one client address on two server IPs
    /// with the same port and channel number (possibly on two workers) would share an entry;
    /// the second stays in userspace instead.
    owners: HashMap<(ClientAddr, u16, u16), SocketAddr>,
}

#[cfg(target_os = "linux")]
impl std::ops::Deref for Program {
    type Target = xdp::FastPath;
    fn deref(&self) -> &xdp::FastPath {
        &self.fast
    }
}

#[cfg(target_os = "linux")]
fn client_key(channel: &FastChannel) -> (ClientAddr, u16, u16) {
    (channel.client, channel.server.port(), channel.number.0)
}

/// One worker's view: the channels it installed, with the counters last read for each.
#[derive(Debug)]
pub struct WorkerChannels {
    path: Arc<KernelPath>,
    installed: HashMap<FastChannel, Counters>,
}

/// A channel's counters, both ways.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counters {
    to_peer: Traffic,
    to_client: Traffic,
}

impl Counters {
    fn since(self, earlier: Counters) -> Counters {
        let minus = |a: Traffic, b: Traffic| Traffic {
            packets: a.packets.saturating_sub(b.packets),
            bytes: a.bytes.saturating_sub(b.bytes),
        };
        Counters {
            to_peer: minus(self.to_peer, earlier.to_peer),
            to_client: minus(self.to_client, earlier.to_client),
        }
    }
}

/// What the program did, for the metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct KernelStats {
    /// Datagrams relayed client → peer in the kernel.
    pub relayed_to_peer: u64,
    /// Datagrams relayed peer → client in the kernel.
    pub relayed_to_client: u64,
    /// Datagrams passed to userspace, by cause (name, count).
    pub passed: [(&'static str, u64); 9],
    /// Channels the kernel relays now.
    pub channels: u64,
    /// Map updates that failed.
    pub failed_updates: u64,
}

impl KernelPath {
    /// Attaches the program to `interfaces`; `None`, with one warning that says why, when it
    /// cannot be (the server then relays everything in userspace).
    pub fn attach(interfaces: &[String]) -> Option<Arc<KernelPath>> {
        if interfaces.is_empty() {
            return None;
        }
        #[cfg(target_os = "linux")]
        {
            let max_packet = smallest_mtu(interfaces);
            match xdp::FastPath::attach(interfaces, max_packet) {
                Ok(program) => {
                    for a in program.modes() {
                        tracing::info!(
                            interface = %a.interface,
                            mode = ?a.mode,
                            max_packet,
                            "XDP fast path attached: bound channels relay in the kernel"
                        );
                    }
                    Some(Arc::new(KernelPath {
                        program: Mutex::new(Program {
                            fast: program,
                            owners: HashMap::new(),
                        }),
                        failed_updates: AtomicU64::new(0),
                    }))
                }
                Err(e) => {
                    tracing::warn!(
                        error = %e,
                        "XDP fast path off (xdp-interfaces): everything relays in userspace"
                    );
                    None
                }
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            tracing::warn!("XDP fast path off (xdp-interfaces): XDP exists only on Linux");
            None
        }
    }

    /// One worker's handle.
    pub fn for_worker(self: &Arc<Self>) -> WorkerChannels {
        WorkerChannels {
            path: self.clone(),
            installed: HashMap::new(),
        }
    }

    #[cfg(target_os = "linux")]
    fn program(&self) -> MutexGuard<'_, Program> {
        self.program
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The program's counters, for a metrics scrape.
    pub fn stats(&self, channels: u64) -> KernelStats {
        let failed_updates = self.failed_updates.load(Ordering::Relaxed);
        #[cfg(target_os = "linux")]
        {
            let s = self.program().stats().unwrap_or_default();
            KernelStats {
                relayed_to_peer: s.relayed_to_peer,
                relayed_to_client: s.relayed_to_client,
                passed: [
                    ("not-udp", s.passed_not_udp),
                    ("no-channel", s.passed_no_entry),
                    ("malformed", s.passed_malformed),
                    ("too-big", s.passed_too_big),
                    ("ttl", s.passed_ttl),
                    ("family-mismatch", s.passed_family_mismatch),
                    ("disabled", s.passed_disabled),
                    ("headroom", s.passed_headroom),
                    ("partial-checksum", s.passed_partial_checksum),
                ],
                channels,
                failed_updates,
            }
        }
        #[cfg(not(target_os = "linux"))]
        KernelStats {
            channels,
            failed_updates,
            ..KernelStats::default()
        }
    }

    fn failed(&self, what: &str, channel: &FastChannel, error: &dyn std::fmt::Display) {
        let before = self.failed_updates.fetch_add(1, Ordering::Relaxed);
        // The first failure says why; the rest are in the metric.
        if before == 0 {
            tracing::warn!(
                client = %channel.client,
                peer = %channel.peer,
                error = %error,
                "XDP fast path: {what} failed; the channel relays in userspace \
                 (turnpike_xdp_failed_updates_total counts the rest)"
            );
        }
    }
}

/// The smallest MTU of `interfaces` (the longest packet the program may build), 1500 when
/// unknown; capped to what the program's config holds.
#[cfg(target_os = "linux")]
fn smallest_mtu(interfaces: &[String]) -> u16 {
    interfaces
        .iter()
        .filter_map(|i| std::fs::read_to_string(format!("/sys/class/net/{i}/mtu")).ok())
        .filter_map(|s| s.trim().parse::<u32>().ok())
        .min()
        .map_or(1500, |mtu| u16::try_from(mtu).unwrap_or(u16::MAX))
}

#[cfg(target_os = "linux")]
fn to_xdp(channel: &FastChannel) -> xdp::Channel {
    xdp::Channel {
        client: channel.client.get(),
        server: channel.server,
        number: channel.number.0,
        relay: channel.relay.get(),
        peer: channel.peer.get(),
    }
}

#[cfg(target_os = "linux")]
fn counters(c: xdp::ChannelCounters) -> Counters {
    Counters {
        to_peer: Traffic {
            packets: c.to_peer_packets,
            bytes: c.to_peer_bytes,
        },
        to_client: Traffic {
            packets: c.to_client_packets,
            bytes: c.to_client_bytes,
        },
    }
}

impl WorkerChannels {
    /// Channels this worker has in the kernel.
    pub fn len(&self) -> usize {
        self.installed.len()
    }
}

/// Mirrors the core's fast-path changes into the program's maps. Call after every core call
/// that may change a channel, a permission or an allocation (cheap when nothing changed).
pub fn sync(core: &mut TurnServer, channels: &mut WorkerChannels, now: Instant) {
    while let Some(change) = core.poll_fast_path(now) {
        match change {
            FastPathChange::Install(channel) => install(channels, channel),
            FastPathChange::Remove(channel) => {
                if let Some(last) = remove(channels, &channel) {
                    core.fast_path_traffic(&channel, last.to_peer, last.to_client);
                }
            }
        }
    }
}

#[cfg(target_os = "linux")]
fn install(channels: &mut WorkerChannels, channel: FastChannel) {
    let path = &channels.path;
    let mut program = path.program();
    let key = client_key(&channel);
    if program
        .owners
        .get(&key)
        .is_some_and(|s| *s != channel.server)
    {
        drop(program);
        let why = "another server address of this client holds the same port and channel";
        path.failed("installing a channel", &channel, &why);
        return;
    }
    match program.fast.install(&to_xdp(&channel)) {
        Ok(()) => {
            program.owners.insert(key, channel.server);
            channels.installed.insert(channel, Counters::default());
        }
        Err(e) => {
            drop(program);
            path.failed("installing a channel", &channel, &e);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn install(_: &mut WorkerChannels, _: FastChannel) {}

/// Takes `channel` out of the maps; its traffic since the last reading.
#[cfg(target_os = "linux")]
fn remove(channels: &mut WorkerChannels, channel: &FastChannel) -> Option<Counters> {
    let last = channels.installed.remove(channel)?;
    let path = &channels.path;
    let mut program = path.program();
    program.owners.remove(&client_key(channel));
    match program.fast.remove(&to_xdp(channel)) {
        Ok(c) => Some(counters(c).since(last)),
        Err(e) => {
            drop(program);
            path.failed("removing a channel", channel, &e);
            None
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn remove(_: &mut WorkerChannels, _: &FastChannel) -> Option<Counters> {
    None
}

/// Reads every installed channel's counters and reports what moved to the core (session
/// records, relay counters). One map lookup per channel: run on the event tick, not per
/// packet.
#[cfg(target_os = "linux")]
pub fn read_back(core: &mut TurnServer, channels: &mut WorkerChannels) {
    let program = channels.path.program();
    for (channel, last) in channels.installed.iter_mut() {
        let Ok(now) = program.counters(&to_xdp(channel)) else {
            continue;
        };
        let now = counters(now);
        let moved = now.since(*last);
        if moved != Counters::default() {
            core.fast_path_traffic(channel, moved.to_peer, moved.to_client);
            *last = now;
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub fn read_back(_: &mut TurnServer, _: &mut WorkerChannels) {}
