//! Turnpike's kernel fast path for TURN channels: an XDP program that relays ChannelData of
//! bound channels inside the kernel, and a small safe API to load it and fill its maps.
//!
//! # What the program does
//! - **Client → peer**: a UDP datagram from a client whose (client ip, client port, server
//!   port, channel number) is installed, with a consistent ChannelData length (RFC 8656 §12:
//!   4-byte header, then the data, then at most 3 bytes of padding), loses its header and
//!   padding and is sent from the relay address to the peer.
//! - **Peer → client**: a UDP datagram from a peer to a relay address whose (peer, relay) pair is
//!   installed gains a ChannelData header and is sent from the server address to the client,
//!   unless the result would exceed the maximum packet size given to [`FastPath::attach`].
//! - Both leave through the interface they came in on (`XDP_TX`, Ethernet addresses swapped),
//!   with TTL/hop limit decremented and IP/UDP checksums updated incrementally (an IPv4 UDP
//!   checksum of 0, "none", stays 0).
//! - Everything else passes to userspace untouched (`XDP_PASS`): other traffic, IP options,
//!   IPv6 extension headers, fragments, malformed lengths, TTL 1, family crossing. Correctness
//!   never depends on the fast path: userspace relays whatever the kernel does not.
//!
//! The crate knows nothing of TURN state. The TURN core decides which channels are bound; the
//! server mirrors them here with [`FastPath::install`] and [`FastPath::remove`] (entries never
//! expire by themselves: the maps are plain hashes, not LRU, so nothing silently vanishes).
//!
//! # Use
//! ```no_run
//! # fn main() -> Result<(), xdp::XdpError> {
//! use xdp::{Channel, FastPath};
//! let mut fast = FastPath::attach(&["eth0".to_string()], 1500)?; // needs root / CAP_BPF
//! let channel = Channel {
//!     client: "203.0.113.5:40000".parse().expect("literal"),
//!     server: "192.0.2.10:3478".parse().expect("literal"),
//!     number: 0x4000,
//!     relay: "192.0.2.10:50000".parse().expect("literal"),
//!     peer: "198.51.100.7:6000".parse().expect("literal"),
//! };
//! fast.install(&channel)?;
//! let counters = fast.remove(&channel)?; // on unbind or allocation expiry
//! # let _ = counters; Ok(()) }
//! ```
//! Dropping the [`FastPath`] detaches the program; so does the death of the process.
//!
//! # Maps (see `bpf/relay.c` and `src/layout.rs`)
//! | map | type | key | value |
//! |---|---|---|---|
//! | `client_channels` | hash, 65,536 | client ip, client port, server port, channel, family | relay ip, peer ip, relay port, peer port, family, flags, packets, bytes |
//! | `peer_channels` | hash, 65,536 | peer ip, relay ip, peer port, relay port, family | server ip, client ip, server port, client port, channel, family, flags, packets, bytes |
//! | `config` | array, 1 | 0 | max IP packet length (0: 1500) |
//! | `stats` | per-CPU array | cause | count ([`Stats`]) |
//!
//! Addresses are 16 bytes (IPv4 as `::ffff:a.b.c.d`) with a family byte; ports and channel
//! numbers are in network byte order; counters are host-order u64 added atomically.
//!
//! # The object
//! `bpf/relay.o` is built from `bpf/relay.c` by `bpf/build.sh` (Debian clang, reproducible) and
//! committed; the test `object_is_fresh` fails when they disagree.

//!
//! XDP is Linux-only: on other systems this crate is empty.

#![cfg(target_os = "linux")]

mod channel;
mod error;
mod fast_path;
mod layout;
mod mode;
mod stats;

pub use channel::{Channel, ChannelCounters};
pub use error::XdpError;
pub use fast_path::{FastPath, MAP_CAPACITY};
pub use mode::{AttachMode, Attachment};
pub use stats::Stats;
