//! One worker's TURN state: its core, its relay sockets and its TCP/TLS connections' queues,
//! owned by value by the worker's loop ([`crate::server::worker_loop`]). Nothing else holds
//! it: the rest of the server sends the loop jobs that run on it
//! ([`crate::server::worker_handle`]), so there is no lock to take and none to contend.
//! Binding requests need no core state: the Binding core is stateless.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use turn::relay::{ClientAddr, TurnServer};

use crate::metrics::io::IoCounters;
use crate::server::relay_registry::RelayRegistry;

/// Identifies a TCP/TLS client connection: (client address, server address).
pub type StreamKey = (ClientAddr, SocketAddr);

/// Bytes queued for one TCP/TLS client; a full queue drops (a slow reader must not grow the
/// server's memory).
pub use crate::server::stream_queue::StreamSender;

/// One worker's state, owned by value by its loop: what its data and control paths work on.
#[derive(Debug)]
pub struct WorkerState {
    /// The sans-IO TURN core.
    pub core: TurnServer,
    /// Open relay sockets.
    pub relays: RelayRegistry,
    /// Live TCP/TLS connections, to deliver peer data to them.
    pub streams: HashMap<StreamKey, StreamSender>,
    /// The worker's I/O drop counters.
    pub io: Arc<IoCounters>,
    /// The channels this worker has in the kernel fast path (`xdp-interfaces`).
    pub kernel: Option<crate::server::kernel_path::WorkerChannels>,
}

impl WorkerState {
    /// Mirrors the core's fast-path changes into the kernel (see [`crate::server::kernel_path`]):
    /// after every core call that may change a channel, permission or allocation.
    pub fn sync_kernel(&mut self, now: Instant) {
        if let Some(channels) = &mut self.kernel {
            crate::server::kernel_path::sync(&mut self.core, channels, now);
        }
    }
}

/// The two clocks the core takes: monotonic for lifetimes, Unix seconds for credentials.
pub fn now() -> (Instant, u64) {
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    (Instant::now(), unix)
}
