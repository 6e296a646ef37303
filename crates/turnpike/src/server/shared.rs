//! One worker's TURN state: its core, its relay sockets and its TCP/TLS connections, behind a
//! mutex that the worker's loop takes once per pass (see [`crate::server::worker`] for who
//! else takes it).
//!
//! The lock is never held across an `await`; the worker loop holds it for a whole pass,
//! sends included (they never wait). Binding requests need no core state: the Binding core
//! is stateless.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use turn::relay::{ClientAddr, ClientOutcome, FiveTuple, TurnServer};
use turn::SocketId;

use crate::metrics::io::IoCounters;
use crate::server::relay_registry::{RelayRegistry, RelaySocket};

/// Identifies a TCP/TLS client connection: (client address, server address).
pub type StreamKey = (ClientAddr, SocketAddr);

/// Bytes queued for one TCP/TLS client; a full queue drops (a slow reader must not grow the
/// server's memory).
pub use crate::server::stream_queue::StreamSender;

/// Everything one worker's TURN data and control paths share.
#[derive(Debug)]
pub struct Shared {
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

impl Shared {
    /// Mirrors the core's fast-path changes into the kernel (see [`crate::server::kernel_path`]):
    /// after every core call that may change a channel, permission or allocation.
    pub fn sync_kernel(&mut self, now: Instant) {
        if let Some(channels) = &mut self.kernel {
            crate::server::kernel_path::sync(&mut self.core, channels, now);
        }
    }
}

/// A handle on [`Shared`].
pub type SharedCore = Arc<Mutex<Shared>>;

/// Locks the shared state. A panic while holding the lock cannot leave the core half
/// updated in a way that matters more than stopping the server would, so a poisoned lock is
/// taken over rather than propagated.
pub fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The two clocks the core takes: monotonic for lifetimes, Unix seconds for credentials.
pub fn now() -> (Instant, u64) {
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    (Instant::now(), unix)
}

/// Gives a client's packet to the TURN core under the lock, and returns what to do, with the
/// relay socket to send from when the outcome is a relay. The send itself happens after the
/// lock is released.
pub fn handle_client(
    shared: &Mutex<Shared>,
    five_tuple: FiveTuple,
    local: SocketId,
    packet: &[u8],
    out: &mut [u8],
) -> (ClientOutcome, Option<RelaySocket>) {
    let mut state = lock(shared);
    let state = &mut *state;
    let (now, unix_now) = now();
    let outcome = state.handle_client(now, unix_now, five_tuple, local, packet, out);
    state.sync_kernel(now);
    let relay_socket = match &outcome {
        ClientOutcome::Relay { relay, .. } => state.relays.socket(*relay),
        _ => None,
    };
    (outcome, relay_socket)
}
