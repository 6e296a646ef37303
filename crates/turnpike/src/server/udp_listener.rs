//! The UDP event loop: receive a batch of datagrams (`recvmmsg`), hand each to the right core,
//! send what they return (`sendmmsg`, one call per run of datagrams from the same socket).
//!
//! Binding requests go to the stateless Binding core. Everything else (TURN requests, Send
//! indications, ChannelData) goes to this worker's TURN core, whose lock is taken once per
//! batch (it is never contended: see [`crate::server::worker`]) and released before anything is sent;
//! a relayed payload is sent from the allocation's relay socket straight out of the receive
//! buffer. Buffers are allocated once per task; the per-datagram path allocates nothing,
//! reads the clocks once per batch and logs only at `trace`.

use std::io;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::{Arc, MutexGuard};

use net::{Batching, RecvBatch, MAX_BATCH};
use tokio::net::UdpSocket;
use tracing::trace;
use turn::relay::{
    is_binding_request, ClientAddr, ClientOutcome, ClientTransport, FiveTuple, PeerAddr,
};
use turn::{BindingServer, SocketId};

use crate::metrics::io::IoCounters;
use crate::server::outbox::{Outbox, Via};
use crate::server::receive::{receive, Received};
use crate::server::relay_registry::{is_transient, send_to_peer, RelaySocket};
use crate::server::shared::{lock, now, Shared, SharedCore};

/// The sockets of one RFC 5780 grid, indexed by [`grid_index`].
pub type UdpGrid = [Option<Arc<UdpSocket>>; 4];

/// Position of a socket in a [`UdpGrid`].
pub fn grid_index(id: SocketId) -> usize {
    usize::from(id.alternate_ip) * 2 + usize::from(id.alternate_port)
}

/// Largest datagram we read; anything longer is truncated by the kernel and then fails to
/// decode (its length field no longer matches), which drops it. The receive slots are this
/// large, but only the pages datagrams touch become resident.
const RECEIVE_BUFFER: usize = 65_536;
/// Room for any answer the cores write (Binding caps PADDING to one MTU; TURN responses are
/// small); one per datagram of a batch.
const SEND_BUFFER: usize = 1_500;

/// What to do with one datagram of a batch: decided under the lock, done after it.
#[derive(Debug)]
enum Action {
    Nothing,
    /// Send the reply written in this datagram's reply slot.
    Reply {
        len: usize,
        from: SocketId,
        to: SocketAddr,
    },
    /// Send `datagram[payload]` from the relay socket to the peer.
    Relay {
        socket: RelaySocket,
        payload: Range<usize>,
        peer: PeerAddr,
        dont_fragment: bool,
    },
}

/// This listener's fixed context.
struct Listener {
    binding: Arc<BindingServer>,
    id: SocketId,
    local: SocketAddr,
    grid: Arc<UdpGrid>,
    shared: SharedCore,
    batching: Batching,
    /// The worker's I/O counters (Binding answers).
    io: Arc<IoCounters>,
}

/// Serves socket `id` of `grid` until a fatal socket error.
pub async fn run(
    binding: Arc<BindingServer>,
    id: SocketId,
    grid: Arc<UdpGrid>,
    shared: SharedCore,
    io: Arc<IoCounters>,
) -> io::Result<()> {
    let Some(socket) = grid[grid_index(id)].clone() else {
        return Ok(());
    };
    let listener = Listener {
        binding,
        id,
        local: socket.local_addr()?,
        grid,
        shared,
        batching: Batching::detect(),
        io,
    };
    let mut incoming = RecvBatch::new(MAX_BATCH, 0, RECEIVE_BUFFER, 0);
    let mut replies = vec![0u8; MAX_BATCH * SEND_BUFFER];
    let mut actions: [Action; MAX_BATCH] = std::array::from_fn(|_| Action::Nothing);
    loop {
        socket.readable().await?;
        // Drain the socket: batch after batch until one comes back short.
        loop {
            let Received { count, drained } =
                match receive(&socket, &mut incoming, listener.batching) {
                    Ok(received) => received,
                    Err(e) if is_transient(&e) => continue,
                    Err(e) => return Err(e),
                };
            let actions = &mut actions[..count];
            listener.decide(&incoming, &mut replies, actions);
            listener.execute(&incoming, &replies, actions).await;
            if drained {
                break;
            }
        }
    }
}

impl Listener {
    /// Asks the cores what to do with each datagram of the batch; replies are written into
    /// the datagram's slot of `replies`.
    fn decide(&self, incoming: &RecvBatch, replies: &mut [u8], actions: &mut [Action]) {
        let mut state: Option<MutexGuard<'_, Shared>> = None;
        let (now, unix_now) = now();
        let slots = replies.chunks_exact_mut(SEND_BUFFER);
        for (i, (action, out)) in actions.iter_mut().zip(slots).enumerate() {
            let (packet, source) = incoming.datagram(i);
            if is_binding_request(packet) {
                let answer = self.binding.handle_udp(now, self.id, source, packet, out);
                self.io
                    .binding_answered(answer.as_ref().map(|t| &out[..t.len]));
                *action = match answer {
                    Some(t) => Action::Reply {
                        len: t.len,
                        from: t.from,
                        to: t.to,
                    },
                    None => Action::Nothing,
                };
                continue;
            }
            let five_tuple = FiveTuple {
                client: ClientAddr::from(source),
                server: self.local,
                transport: ClientTransport::Udp,
            };
            let state = &mut **state.get_or_insert_with(|| lock(&self.shared));
            let outcome = state.handle_client(now, unix_now, five_tuple, self.id, packet, out);
            *action = match outcome {
                ClientOutcome::Reply(t) => Action::Reply {
                    len: t.len,
                    from: t.from,
                    to: t.to,
                },
                ClientOutcome::Relay {
                    relay,
                    peer,
                    payload,
                    dont_fragment,
                } => match state.relays.socket(relay) {
                    Some(socket) => Action::Relay {
                        socket,
                        payload,
                        peer,
                        dont_fragment,
                    },
                    None => {
                        self.io.lost(1);
                        Action::Nothing
                    }
                },
                // Never over UDP: ConnectionBind needs a TCP/TLS connection (RFC 6062 §5.4).
                ClientOutcome::Nothing | ClientOutcome::ConnectionBound { .. } => {
                    trace!(%source, len = packet.len(), "dropped");
                    Action::Nothing
                }
            };
        }
        // A ChannelBind or CreatePermission in the batch may hand a channel to the kernel;
        // before the answers go out, so that the client's next ChannelData finds it there.
        if let Some(state) = &mut state {
            state.sync_kernel(now);
        }
    }

    /// Sends what [`Listener::decide`] decided, in order, batching runs from one socket.
    async fn execute(&self, incoming: &RecvBatch, replies: &[u8], actions: &mut [Action]) {
        let mut outbox = Outbox::new(self.batching);
        for (i, action) in actions.iter_mut().enumerate() {
            match std::mem::replace(action, Action::Nothing) {
                Action::Nothing => {}
                Action::Reply { len, from, to } => {
                    match &self.grid[grid_index(from)] {
                        Some(socket) => {
                            let start = i * SEND_BUFFER;
                            let reply = &replies[start..start + len];
                            outbox.push(Via::Listener(socket), reply, to).await;
                        }
                        // The core named a socket of the grid this worker does not have.
                        None => self.io.lost(1),
                    }
                }
                Action::Relay {
                    socket,
                    payload,
                    peer,
                    dont_fragment,
                } => {
                    let data = &incoming.datagram(i).0[payload];
                    if dont_fragment {
                        // DF is a socket option: set for this one datagram, after those
                        // queued before it have gone.
                        outbox.flush().await;
                        if let Err(e) = send_to_peer(&socket, data, peer, true) {
                            self.io.send_failed(&e, 1);
                        }
                    } else {
                        outbox.push(Via::Relay(&socket), data, peer.get()).await;
                    }
                }
            }
        }
        outbox.flush().await;
        self.io.lost(outbox.unsent());
        self.io.buffer_full(outbox.full());
    }
}
