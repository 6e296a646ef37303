//! The worker's relay loop: one task per worker reads every relay socket of its core. The
//! sockets are registered with one epoll set ([`crate::server::relay_registry`]); one wake-up
//! returns all of them with datagrams waiting, and one pass then
//! - receives from each (`recvmmsg`) into one shared batch, several sockets' datagrams side
//!   by side (at 1,000 allocations of modest rate a socket has one datagram per wake-up; a
//!   batch per socket would be a batch of one),
//! - has the TURN core frame each datagram in place (ChannelData header or Data indication,
//!   RFC 8656 §11.3, §12.7), under one lock for the whole pass,
//! - and sends each full batch to the clients from the listener socket of the allocation's
//!   5-tuple (`sendmmsg` per run of datagrams leaving from one socket, or one GSO send when
//!   the batch is all for one client in equal sizes), or queues it on a TCP/TLS client's
//!   connection.
//!
//! Before, each relay socket had its own task: one task wake-up, one lock and one
//! `sendmmsg` per datagram at modest rates (docs/benchmarks.md, "relay loop").
//!
//! Fairness: a socket gets at most [`BUDGET`] batches per pass; one that still has datagrams
//! waiting (its edge-triggered event will not come again) is kept for the next pass, and the
//! loop yields to the worker's other tasks (its listeners) between passes.
//!
//! No silent drops: a send that finds a listener socket's buffer full drops the rest of the
//! batch, as the kernel would drop datagrams arriving at a full receive queue, and counts
//! them (`turnpike_dropped_packets{cause="socket_buffer_full"}`); so does every other loss
//! here, by cause.

use std::io;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use mio::Events;
use net::{Batching, PollSet, RecvBatch, Transmit, MAX_BATCH};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tracing::{debug, trace};
use turn::relay::{ClientTransport, FiveTuple, PeerAddr, RelayAddr, PEER_HEADROOM};

use crate::server::relay_registry::{is_transient, Egress};
use crate::server::shared::{lock, Shared, SharedCore};

/// Largest peer datagram.
const MAX_PEER_DATAGRAM: usize = 65_535;

/// Readiness events taken from the epoll set per pass. More ready sockets than this stay
/// ready in the set and are read on the next pass.
const EVENTS: usize = 1_024;

/// Batches (of up to [`MAX_BATCH`] datagrams) read from one socket per pass, so that one busy
/// allocation cannot keep the others (and the worker's listeners) waiting.
pub const BUDGET: usize = 4;

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

/// Reads the worker's relay sockets, registered with `set`, until the worker stops (the task
/// is aborted); an error means the epoll set failed, which stops the worker.
pub async fn run(mut set: PollSet, shared: SharedCore, egress: Arc<Egress>) -> io::Result<()> {
    let batching = Batching::detect();
    let mut events = Events::with_capacity(EVENTS);
    let mut buffers = Buffers {
        batch: RecvBatch::new(MAX_BATCH, PEER_HEADROOM, MAX_PEER_DATAGRAM, 3),
        routes: [None; MAX_BATCH],
    };
    // Sockets left with datagrams waiting by the last pass, and those of this pass.
    let mut carried: Vec<usize> = Vec::new();
    let mut ready: Vec<usize> = Vec::with_capacity(EVENTS);
    loop {
        if carried.is_empty() {
            set.wait(&mut events).await?;
        } else {
            // Carried sockets first, without waiting; still pick up new events.
            set.poll_now(&mut events)?;
        }
        ready.clear();
        ready.append(&mut carried);
        ready.extend(events.iter().map(|e| e.token().0));
        {
            let mut state = lock(&shared);
            serve_pass(
                &mut state,
                &egress,
                &mut buffers,
                batching,
                &ready,
                &mut carried,
            );
        }
        if !carried.is_empty() {
            // Let the listeners (and every other task of the worker) run between passes.
            tokio::task::yield_now().await;
        }
    }
}

/// One pass over the ready sockets, under the lock: receive, frame, send. Sockets that still
/// have datagrams waiting when their budget is spent go to `carried`.
fn serve_pass(
    state: &mut Shared,
    egress: &Egress,
    buffers: &mut Buffers,
    batching: Batching,
    ready: &[usize],
    carried: &mut Vec<usize>,
) {
    // The peer path needs only the monotonic clock (no credentials are checked).
    let now = Instant::now();
    let mut filled = 0;
    for &token in ready {
        let Some(slot) = state.relays.slot(token) else {
            continue; // closed meanwhile
        };
        let (relay, socket) = (slot.addr, slot.socket.clone());
        let mut batches = 0;
        loop {
            let capacity = buffers.batch.capacity();
            let received = match buffers.batch.recv_at(filled, &*socket, batching) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // An ICMP error of an earlier datagram surfacing: read on.
                Err(e) if is_transient(&e) => {
                    batches += 1;
                    if batches == BUDGET {
                        carried.push(token);
                        break;
                    }
                    continue;
                }
                Err(e) => {
                    // Not expected of a bound UDP socket; the allocation expires as usual.
                    debug!(%relay, error = %e, "relay socket failed");
                    break;
                }
            };
            let drained = filled + received < capacity;
            frame(
                state,
                egress,
                buffers,
                now,
                relay,
                filled..filled + received,
            );
            filled += received;
            if filled == capacity {
                send(egress, buffers, filled, batching);
                filled = 0;
            }
            if drained {
                break;
            }
            batches += 1;
            if batches == BUDGET {
                carried.push(token);
                break;
            }
        }
    }
    if filled > 0 {
        send(egress, buffers, filled, batching);
    }
}

/// Gives datagrams `slots` of the batch, all from `relay`, to the core, which frames each in
/// its slot; fills their routes. Datagrams for TCP/TLS/DTLS clients (the rare case) are
/// queued on their connection at once.
fn frame(
    state: &mut Shared,
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
    let sent = socket.try_io(Interest::WRITABLE, || {
        net::send_batch(&**socket, items, batching)
    });
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
    let sent = listener.try_io(Interest::WRITABLE, || {
        net::send_segments(&**listener, segments, first.to.client.get(), batching)
    });
    if let Err(e) = sent {
        egress.io.send_failed(&e, routes.len());
        trace!(error = %e, "GSO send failed; batch dropped");
    }
    true
}
