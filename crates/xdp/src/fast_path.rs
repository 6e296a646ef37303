//! The loaded program, its attachments and its maps.

use std::fmt;

use aya::maps::{Array, HashMap, MapData, MapError, PerCpuArray};
use aya::programs::xdp::XdpLinkId;
use aya::programs::{Xdp, XdpFlags};
use aya::{Ebpf, EbpfLoader};

use crate::channel::{Channel, ChannelCounters};
use crate::error::XdpError;
use crate::layout::{self, ClientKey, ClientValue, PeerKey, PeerValue};
use crate::mode::{AttachMode, Attachment};
use crate::stats::{Stats, STAT_COUNT};

/// The object built from bpf/relay.c by bpf/build.sh, committed so that building Turnpike needs
/// only the Rust toolchain.
static OBJECT: &[u8] = aya::include_bytes_aligned!("../bpf/relay.o");
const PROGRAM: &str = "turnpike_relay";
/// Capacity of each channel map (relay.c: MAP_ENTRIES).
pub const MAP_CAPACITY: u32 = 65_536;

/// The XDP fast path: owns the loaded program, its attachments and maps. Dropping it detaches
/// the program from every interface (the kernel also detaches it if the process dies, since the
/// attachments are BPF links owned by this process).
pub struct FastPath {
    ebpf: Ebpf,
    links: Vec<XdpLinkId>,
    attachments: Vec<Attachment>,
    client_channels: HashMap<MapData, ClientKey, ClientValue>,
    peer_channels: HashMap<MapData, PeerKey, PeerValue>,
    stats: PerCpuArray<MapData, u64>,
}

impl fmt::Debug for FastPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FastPath")
            .field("attachments", &self.attachments)
            .finish_non_exhaustive()
    }
}

fn take_map(ebpf: &mut Ebpf, name: &str) -> Result<aya::maps::Map, XdpError> {
    ebpf.take_map(name).ok_or_else(|| XdpError::Bpf {
        during: "loading the embedded object".into(),
        message: format!("map {name} missing from relay.o"),
    })
}

fn map_err(during: &str) -> impl Fn(MapError) -> XdpError + '_ {
    move |e| XdpError::from_aya(during, &e)
}

impl FastPath {
    /// Loads the embedded object and attaches it to every interface: native (driver) mode where
    /// the driver supports it, else generic (SKB) mode; [`FastPath::modes`] tells which.
    ///
    /// `max_packet` is the largest IP packet (header included) the peer → client direction may
    /// produce; larger ones go to userspace (which may fragment or refuse). 0 means 1500.
    pub fn attach(interfaces: &[String], max_packet: u16) -> Result<FastPath, XdpError> {
        let mut ebpf = EbpfLoader::new()
            .load(OBJECT)
            .map_err(|e| XdpError::from_aya("loading the XDP object", &e))?;
        let mut config: Array<MapData, u32> = Array::try_from(take_map(&mut ebpf, "config")?)
            .map_err(map_err("opening map config"))?;
        config
            .set(0, u32::from(max_packet), 0)
            .map_err(map_err("setting the maximum packet size"))?;
        let client_channels = HashMap::try_from(take_map(&mut ebpf, "client_channels")?)
            .map_err(map_err("opening map client_channels"))?;
        let peer_channels = HashMap::try_from(take_map(&mut ebpf, "peer_channels")?)
            .map_err(map_err("opening map peer_channels"))?;
        let stats = PerCpuArray::try_from(take_map(&mut ebpf, "stats")?)
            .map_err(map_err("opening map stats"))?;

        let mut links = Vec::new();
        let mut attachments = Vec::new();
        {
            let program = xdp_program(&mut ebpf)?;
            program
                .load()
                .map_err(|e| XdpError::from_aya("loading the XDP program", &e))?;
            for interface in interfaces {
                let (link, mode) = attach_one(program, interface)?;
                links.push(link);
                attachments.push(Attachment {
                    interface: interface.clone(),
                    mode,
                });
            }
        }
        Ok(FastPath {
            ebpf,
            links,
            attachments,
            client_channels,
            peer_channels,
            stats,
        })
    }

    /// Installs a channel in both maps (insert or overwrite; an overwrite keeps its counters).
    /// Refuses channels the program could not relay: see [`XdpError::FamilyMismatch`] and
    /// [`XdpError::InvalidChannel`].
    pub fn install(&mut self, channel: &Channel) -> Result<(), XdpError> {
        let c = channel.validate()?;
        let (client_key, peer_key) = (layout::client_key(&c), layout::peer_key(&c));
        let old_client = self.client_channels.get(&client_key, 0).ok();
        let old_peer = self.peer_channels.get(&peer_key, 0).ok();
        let old = layout::channel_counters(old_client.as_ref(), old_peer.as_ref());
        let client_value = layout::client_value(&c, old.to_peer_packets, old.to_peer_bytes);
        let peer_value = layout::peer_value(&c, old.to_client_packets, old.to_client_bytes);
        // The peer → client direction first: once a client's datagram can take the kernel path,
        // the peer's answer to it must too, or it would go through userspace (measured: one
        // answer in 400 under load, when the worker was preempted between the two updates).
        self.peer_channels
            .insert(peer_key, peer_value, 0)
            .map_err(|e| XdpError::from_map_update("peer_channels", MAP_CAPACITY, e))?;
        if let Err(e) = self.client_channels.insert(client_key, client_value, 0) {
            // Leave no half-installed channel behind (unless it was there before).
            if old_peer.is_none() {
                let _ = self.peer_channels.remove(&peer_key);
            }
            return Err(XdpError::from_map_update(
                "client_channels",
                MAP_CAPACITY,
                e,
            ));
        }
        Ok(())
    }

    /// Removes a channel from both maps and returns its final counters.
    pub fn remove(&mut self, channel: &Channel) -> Result<ChannelCounters, XdpError> {
        let c = channel.validate()?;
        let (client_key, peer_key) = (layout::client_key(&c), layout::peer_key(&c));
        let client = self.client_channels.get(&client_key, 0).ok();
        let peer = self.peer_channels.get(&peer_key, 0).ok();
        if client.is_none() && peer.is_none() {
            return Err(XdpError::NotInstalled);
        }
        if client.is_some() {
            self.client_channels
                .remove(&client_key)
                .map_err(map_err("removing from client_channels"))?;
        }
        if peer.is_some() {
            self.peer_channels
                .remove(&peer_key)
                .map_err(map_err("removing from peer_channels"))?;
        }
        // Packets relayed between the reads and the removal are not counted (a few at most).
        Ok(layout::channel_counters(client.as_ref(), peer.as_ref()))
    }

    /// The counters of an installed channel.
    pub fn counters(&self, channel: &Channel) -> Result<ChannelCounters, XdpError> {
        let c = channel.validate()?;
        let client = self.client_channels.get(&layout::client_key(&c), 0).ok();
        let peer = self.peer_channels.get(&layout::peer_key(&c), 0).ok();
        if client.is_none() && peer.is_none() {
            return Err(XdpError::NotInstalled);
        }
        Ok(layout::channel_counters(client.as_ref(), peer.as_ref()))
    }

    /// The program's global counters, summed over CPUs.
    pub fn stats(&self) -> Result<Stats, XdpError> {
        let mut counters = [0u64; STAT_COUNT];
        for (index, counter) in (0u32..).zip(counters.iter_mut()) {
            let per_cpu = self
                .stats
                .get(&index, 0)
                .map_err(map_err("reading map stats"))?;
            *counter = per_cpu.iter().sum();
        }
        Ok(Stats::from_counters(&counters))
    }

    /// The interfaces the program is attached to, and in which mode.
    pub fn modes(&self) -> &[Attachment] {
        &self.attachments
    }
}

fn xdp_program(ebpf: &mut Ebpf) -> Result<&mut Xdp, XdpError> {
    let missing = || XdpError::Bpf {
        during: "loading the embedded object".into(),
        message: format!("program {PROGRAM} missing from relay.o"),
    };
    let program = ebpf.program_mut(PROGRAM).ok_or_else(missing)?;
    program
        .try_into()
        .map_err(|e| XdpError::from_aya("loading the embedded object", &e))
}

/// Attaches in native mode, falling back to generic mode when the driver has no XDP support.
fn attach_one(program: &mut Xdp, interface: &str) -> Result<(XdpLinkId, AttachMode), XdpError> {
    if let Ok(link) = program.attach(interface, XdpFlags::DRV_MODE) {
        return Ok((link, AttachMode::Native));
    }
    match program.attach(interface, XdpFlags::SKB_MODE) {
        Ok(link) => Ok((link, AttachMode::Generic)),
        Err(e) => {
            let busy = std::error::Error::source(&e)
                .and_then(|s| s.downcast_ref::<std::io::Error>())
                .and_then(std::io::Error::raw_os_error)
                == Some(libc::EBUSY);
            if busy {
                return Err(XdpError::InterfaceBusy {
                    interface: interface.to_string(),
                });
            }
            match XdpError::from_aya(&format!("attaching to {interface}"), &e) {
                XdpError::Bpf { .. } => Err(XdpError::AttachFailed {
                    interface: interface.to_string(),
                    source: std::io::Error::other(e.to_string()),
                }),
                other => Err(other),
            }
        }
    }
}

impl Drop for FastPath {
    fn drop(&mut self) {
        // Detach explicitly, interface by interface; aya would also detach when `ebpf` drops.
        if let Ok(program) = xdp_program(&mut self.ebpf) {
            for link in self.links.drain(..) {
                let _ = program.detach(link);
            }
        }
    }
}
