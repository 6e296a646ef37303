//! The client side of the worker loop ([`crate::server::worker_loop`]) for one UDP listener
//! socket: receive a batch of datagrams (`recvmmsg`), hand each to the right core, send what
//! they return (`sendmmsg`, one call per run of datagrams from the same socket).
//!
//! Binding requests go to the stateless Binding core. Everything else (TURN requests, Send
//! indications, ChannelData) goes to this worker's TURN core, which the loop holds for the
//! whole pass; a relayed payload is sent from the allocation's relay socket straight out of
//! the receive buffer. Buffers are allocated once per worker; the per-datagram path
//! allocates nothing, reads the clocks once per batch and logs only at `trace`.
//!
//! Fairness: a listener gets at most [`BUDGET`] batches per pass, like a relay socket; one
//! with datagrams still waiting is carried to the loop's next pass (its edge-triggered event
//! will not come again).

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::ops::Range;
use std::sync::Arc;

use net::{Batching, RecvBatch, MAX_BATCH};
use tracing::trace;
use turn::relay::{
    is_binding_request, ClientAddr, ClientOutcome, ClientTransport, FiveTuple, PeerAddr,
};
use turn::{BindingServer, SocketId};

use crate::metrics::io::IoCounters;
use crate::server::outbox::Outbox;
use crate::server::relay_registry::{is_transient, send_to_peer, RelaySocket};
use crate::server::worker_loop::{Drained, BUDGET};
use crate::server::worker_state::{now, WorkerState};

/// The sockets of one RFC 5780 grid, indexed by [`grid_index`] (non-blocking; read by the
/// worker loop through its epoll set, written directly).
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

/// What to do with one datagram of a batch: decided by the cores, then done.
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

/// The buffers of one batch from a listener, shared by all the worker's listeners (the loop
/// serves one at a time).
pub struct ListenerBuffers {
    incoming: RecvBatch,
    replies: Vec<u8>,
    actions: [Action; MAX_BATCH],
}

impl ListenerBuffers {
    /// Buffers for one batch.
    pub fn new() -> Self {
        ListenerBuffers {
            incoming: RecvBatch::new(MAX_BATCH, 0, RECEIVE_BUFFER, 0),
            replies: vec![0u8; MAX_BATCH * SEND_BUFFER],
            actions: std::array::from_fn(|_| Action::Nothing),
        }
    }
}

/// One UDP listener socket of the worker, with its fixed context.
#[derive(Debug)]
pub struct UdpListener {
    binding: Arc<BindingServer>,
    id: SocketId,
    local: SocketAddr,
    socket: Arc<UdpSocket>,
    grid: Arc<UdpGrid>,
}

impl UdpListener {
    /// Socket `id` of `grid`, or `None` when this worker has no such socket.
    pub fn new(
        binding: Arc<BindingServer>,
        id: SocketId,
        grid: Arc<UdpGrid>,
    ) -> io::Result<Option<Self>> {
        let Some(socket) = grid[grid_index(id)].clone() else {
            return Ok(None);
        };
        Ok(Some(UdpListener {
            binding,
            id,
            local: socket.local_addr()?,
            socket,
            grid,
        }))
    }

    /// Its bound address.
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// The socket, to register with the worker's epoll set.
    pub fn socket(&self) -> &UdpSocket {
        &self.socket
    }

    /// Serves up to [`BUDGET`] batches of datagrams waiting on the socket. An error is the
    /// socket's (fatal: it stops the worker).
    pub fn serve(
        &self,
        state: &mut WorkerState,
        buffers: &mut ListenerBuffers,
        batching: Batching,
    ) -> io::Result<Drained> {
        let io = state.io.clone();
        for _ in 0..BUDGET {
            let count = match buffers.incoming.recv(&*self.socket, batching) {
                Ok(count) => count,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Drained::Yes),
                // An ICMP error of an earlier datagram surfacing: read on.
                Err(e) if is_transient(&e) => continue,
                Err(e) => return Err(e),
            };
            let actions = &mut buffers.actions[..count];
            self.decide(state, &io, &buffers.incoming, &mut buffers.replies, actions);
            self.execute(&io, &buffers.incoming, &buffers.replies, actions, batching);
            // Short: the kernel found the queue empty (a datagram arriving since raises a
            // new edge), so no `recvmmsg` that could only answer `EAGAIN`.
            if count < buffers.incoming.capacity() {
                return Ok(Drained::Yes);
            }
        }
        Ok(Drained::No)
    }

    /// Asks the cores what to do with each datagram of the batch; replies are written into
    /// the datagram's slot of `replies`.
    fn decide(
        &self,
        state: &mut WorkerState,
        io: &IoCounters,
        incoming: &RecvBatch,
        replies: &mut [u8],
        actions: &mut [Action],
    ) {
        let mut turn = false;
        let (now, unix_now) = now();
        let slots = replies.chunks_exact_mut(SEND_BUFFER);
        for (i, (action, out)) in actions.iter_mut().zip(slots).enumerate() {
            let (packet, source) = incoming.datagram(i);
            if is_binding_request(packet) {
                let answer = self.binding.handle_udp(now, self.id, source, packet, out);
                io.binding_answered(answer.as_ref().map(|t| &out[..t.len]));
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
            turn = true;
            let five_tuple = FiveTuple {
                client: ClientAddr::from(source),
                server: self.local,
                transport: ClientTransport::Udp,
            };
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
                        io.lost(1);
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
        if turn {
            state.sync_kernel(now);
        }
    }

    /// Sends what [`UdpListener::decide`] decided, in order, batching runs from one socket.
    fn execute(
        &self,
        io: &IoCounters,
        incoming: &RecvBatch,
        replies: &[u8],
        actions: &mut [Action],
        batching: Batching,
    ) {
        let mut outbox = Outbox::new(batching);
        for (i, action) in actions.iter_mut().enumerate() {
            match std::mem::replace(action, Action::Nothing) {
                Action::Nothing => {}
                Action::Reply { len, from, to } => {
                    match &self.grid[grid_index(from)] {
                        Some(socket) => {
                            let start = i * SEND_BUFFER;
                            outbox.push(socket, &replies[start..start + len], to);
                        }
                        // The core named a socket of the grid this worker does not have.
                        None => io.lost(1),
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
                        outbox.flush();
                        if let Err(e) = send_to_peer(&socket, data, peer, true) {
                            io.send_failed(&e, 1);
                        }
                    } else {
                        outbox.push(&socket, data, peer.get());
                    }
                }
            }
        }
        outbox.flush();
        io.lost(outbox.unsent());
        io.buffer_full(outbox.full());
    }
}

impl Default for ListenerBuffers {
    fn default() -> Self {
        Self::new()
    }
}
