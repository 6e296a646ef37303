//! The peer side of the worker loop ([`crate::server::worker_loop`]): reading the relay
//! sockets that one `epoll_wait` of the loop found ready. The sockets are registered with
//! the worker's epoll set ([`crate::server::relay_registry`]); one pass
//! - receives from each (`recvmmsg`) into one shared batch, several sockets' datagrams side
//!   by side (at 1,000 allocations of modest rate a socket has one datagram per wake-up; a
//!   batch per socket would be a batch of one),
//! - has the TURN core frame each datagram in place (ChannelData header or Data indication,
//!   RFC 8656 §11.3, §12.7), the core held once for the whole pass,
//! - and sends each full batch to the clients from the listener socket of the allocation's
//!   5-tuple (`sendmmsg` per run of datagrams leaving from one socket, or one GSO send when
//!   the batch is all for one client in equal sizes), or queues it on a TCP/TLS client's
//!   connection.
//!
//! Before, each relay socket had its own task: one task wake-up, one lock and one
//! `sendmmsg` per datagram at modest rates (docs/benchmarks.md, "relay loop").
//!
//! Fairness: a socket gets at most [`BUDGET`] batches per pass; one that still has datagrams
//! waiting (its edge-triggered event will not come again) is carried to the next pass.
//!
//! No silent drops: a send that finds a listener socket's buffer full drops the rest of the
//! batch, as the kernel would drop datagrams arriving at a full receive queue, and counts
//! them (`turnpike_dropped_packets{cause="socket_buffer_full"}`); so does every other loss
//! here, by cause.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use net::{Batching, RecvBatch, Transmit, MAX_BATCH};
use tracing::{debug, trace};
use turn::relay::{ClientTransport, FiveTuple, PeerAddr, RelayAddr, PEER_HEADROOM};

use crate::server::relay_registry::{is_transient, Egress};
use crate::server::worker_loop::{Drained, BUDGET};
use crate::server::worker_state::WorkerState;

/// Largest peer datagram.
const MAX_PEER_DATAGRAM: usize = 65_535;

/// Where one framed peer datagram goes.
#[derive(Debug, Clone, Copy)]
struct Route {
    /// The bytes to send, in the datagram's slot: `start..end`.
    start: usize,
    end: usize,
    /// The allocation's 5-tuple.
    to: FiveTuple,
}

impl Route {
    fn data(&self) -> Range<usize> {
        self.start..self.end
    }

    fn len(&self) -> usize {
        self.end - self.start
    }
}

/// The loop's buffers: one batch shared by every relay socket of the worker. Headroom for
/// the Data indication or ChannelData header before each payload, and three bytes of padding
/// after the largest datagram.
struct Buffers {
    batch: RecvBatch,
    /// What became of each datagram of the batch (`None`: dropped, or queued for a TCP/TLS
    /// client already).
    routes: [Option<Route>; MAX_BATCH],
}

/// The relay side of the worker loop: the batch that several relay sockets' datagrams
/// share, and the listener sockets that framed datagrams leave from.
pub struct RelayReader {
    egress: Egress,
    buffers: Buffers,
    batching: Batching,
    /// Datagrams in the batch, framed, not yet sent.
    filled: usize,
}

impl RelayReader {
    /// A reader that sends through `egress`'s listener sockets.
    pub fn new(egress: Egress, batching: Batching) -> Self {
        RelayReader {
            egress,
            buffers: Buffers {
                batch: RecvBatch::new(MAX_BATCH, PEER_HEADROOM, MAX_PEER_DATAGRAM, 3),
                routes: [None; MAX_BATCH],
            },
            batching,
            filled: 0,
        }
    }

    /// Reads up to [`BUDGET`] batches from the relay socket of epoll token `token` into the
    /// shared batch, has the core frame them, and sends the batch each time it is full.
    /// `Drained::No` when the socket still has datagrams waiting.
    pub fn serve(&mut self, state: &mut WorkerState, token: usize, now: Instant) -> Drained {
        let Some(slot) = state.relays.slot(token) else {
            return Drained::Yes; // closed meanwhile
        };
        let (relay, socket) = (slot.addr, slot.socket.clone());
        let mut batches = 0;
        loop {
            let filled = self.filled;
            let capacity = self.buffers.batch.capacity();
            let received = match self.buffers.batch.recv_at(filled, &*socket, self.batching) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Drained::Yes,
                // An ICMP error of an earlier datagram surfacing: read on.
                Err(e) if is_transient(&e) => {
                    batches += 1;
                    if batches == BUDGET {
                        return Drained::No;
                    }
                    continue;
                }
                Err(e) => {
                    // Not expected of a bound UDP socket; the allocation expires as usual.
                    debug!(%relay, error = %e, "relay socket failed");
                    return Drained::Yes;
                }
            };
            let drained = filled + received < capacity;
            frame(
                state,
                &self.egress,
                &mut self.buffers,
                now,
                relay,
                filled..filled + received,
            );
            self.filled += received;
            if self.filled == capacity {
                self.flush();
            }
            if drained {
                return Drained::Yes;
            }
            batches += 1;
            if batches == BUDGET {
                return Drained::No;
            }
        }
    }

    /// Sends the framed datagrams still in the batch (at the end of a pass).
    pub fn flush(&mut self) {
        if self.filled > 0 {
            send(&self.egress, &self.buffers, self.filled, self.batching);
            self.filled = 0;
        }
    }
}

/// Gives datagrams `slots` of the batch, all from `relay`, to the core, which frames each in
/// its slot; fills their routes. Datagrams for TCP/TLS/DTLS clients (the rare case) are
/// queued on their connection at once.
fn frame(
    state: &mut WorkerState,
    egress: &Egress,
    buffers: &mut Buffers,
    now: Instant,
    relay: RelayAddr,
    slots: Range<usize>,
) {
    for i in slots {
        let (slot, meta) = buffers.batch.slot_mut(i);
        let route = state
            .core
            .handle_peer(now, relay, PeerAddr::from(meta.source), slot, meta.len)
            .map(|o| Route {
                start: o.data.start,
                end: o.data.end,
                to: o.to,
            });
        buffers.routes[i] = match route {
            Some(r) if r.to.transport.has_session() => {
                match state.streams.get(&(r.to.client, r.to.server)) {
                    Some(stream) => {
                        // A full queue means a client that does not read: drop, as UDP would.
                        if !stream.try_send(slot[r.data()].to_vec()) {
                            egress.io.queue_full();
                        }
                    }
                    // The connection closed meanwhile.
                    None => egress.io.lost(1),
                }
                None
            }
            route => route,
        };
    }
}

/// Sends the first `len` framed datagrams of the batch to their UDP clients.
fn send(egress: &Egress, buffers: &Buffers, len: usize, batching: Batching) {
    let routes = &buffers.routes[..len];
    if !(batching.gso && try_gso(egress, &buffers.batch, routes, batching)) {
        send_to_clients(egress, &buffers.batch, routes, batching);
    }
}

/// Sends the framed datagrams for UDP clients from the listener socket of their 5-tuple,
/// with one `sendmmsg` per run of datagrams leaving from the same socket.
fn send_to_clients(
    egress: &Egress,
    batch: &RecvBatch,
    routes: &[Option<Route>],
    batching: Batching,
) {
    let mut items = [Transmit {
        data: &[],
        to: SocketAddr::from(([0, 0, 0, 0], 0)),
    }; MAX_BATCH];
    let mut queued = 0;
    let mut from: Option<&Arc<UdpSocket>> = None;
    for (i, route) in routes.iter().enumerate() {
        let Some(route) = route.filter(|r| r.to.transport == ClientTransport::Udp) else {
            continue;
        };
        let Some(listener) = egress.udp.get(&route.to.server) else {
            egress.io.lost(1);
            continue;
        };
        if from.is_some_and(|f| !Arc::ptr_eq(f, listener)) {
            send_now(from, &items[..queued], batching, egress);
            queued = 0;
        }
        from = Some(listener);
        items[queued] = Transmit {
            data: &batch.slot(i)[route.data()],
            to: route.to.client.get(),
        };
        queued += 1;
    }
    send_now(from, &items[..queued], batching, egress);
}

/// Sends `items` from `socket` now; what finds the socket buffer full is dropped (and
/// counted).
fn send_now(
    socket: Option<&Arc<UdpSocket>>,
    items: &[Transmit<'_>],
    batching: Batching,
    egress: &Egress,
) {
    let Some(socket) = socket.filter(|_| !items.is_empty()) else {
        return;
    };
    let sent = net::send_batch(&**socket, items, batching);
    match sent {
        Ok(n) if n < items.len() => {
            egress.io.buffer_full(items.len() - n);
            trace!(dropped = items.len() - n, "socket buffer full");
        }
        Ok(_) => {}
        Err(e) => {
            egress.io.send_failed(&e, items.len());
            trace!(error = %e, dropped = items.len(), "send failed");
        }
    }
}

/// Sends the whole batch as one GSO send when it is for one UDP client, in segments of one
/// size (the last may be shorter), each read from its slot where it was framed; false when
/// it does not qualify.
fn try_gso(
    egress: &Egress,
    batch: &RecvBatch,
    routes: &[Option<Route>],
    batching: Batching,
) -> bool {
    let Some(Some(first)) = routes.first() else {
        return false;
    };
    let segment = first.len();
    let last = routes.len() - 1;
    let uniform = routes.iter().enumerate().all(|(i, r)| {
        r.is_some_and(|r| {
            r.to == first.to && (r.len() == segment || (i == last && r.len() < segment))
        })
    });
    let total: usize = routes.iter().flatten().map(Route::len).sum();
    if routes.len() < 2
        || !uniform
        || first.to.transport != ClientTransport::Udp
        || total > net::MAX_GSO_BYTES
        || routes.len() > net::MAX_GSO_SEGMENTS
    {
        return false;
    }
    let Some(listener) = egress.udp.get(&first.to.server) else {
        egress.io.lost(routes.len()); // no way to the client: nothing to send
        return true;
    };
    let mut segments: [&[u8]; MAX_BATCH] = [&[]; MAX_BATCH];
    for (i, (slice, route)) in segments.iter_mut().zip(routes).enumerate() {
        if let Some(route) = route {
            *slice = &batch.slot(i)[route.data()];
        }
    }
    let segments = &segments[..routes.len()];
    let sent = net::send_segments(&**listener, segments, first.to.client.get(), batching);
    if let Err(e) = sent {
        egress.io.send_failed(&e, routes.len());
        trace!(error = %e, "GSO send failed; batch dropped");
    }
    true
}
