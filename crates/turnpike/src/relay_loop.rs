//! The task reading one relay socket: peer datagrams in batches (`recvmmsg`), handed to the
//! worker's TURN core under one lock per batch, which frames each in place (ChannelData header
//! or Data indication, RFC 8656 §11.3, §12.7); then out to the client from the listener socket
//! of the allocation's 5-tuple (`sendmmsg`, or one GSO send when the batch is all for one
//! client in equal sizes: the kernel reads each datagram from its slot), or onto its TCP/TLS
//! connection's queue.
//!
//! The receive buffers are the worker thread's, not the socket's: a worker runs one task at a
//! time, and a batch is received, framed and sent without an `await` in between, so all relay
//! sockets of a worker share one set of buffers (thread-local). An allocation then costs no
//! receive buffer of its own, and opening one allocates none. Because the send cannot wait
//! for room in the socket buffer, a send that finds it full drops the rest of the batch, as
//! the kernel would drop datagrams arriving at a full receive queue.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use net::{Batching, RecvBatch, Transmit, MAX_BATCH};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tracing::{debug, trace};
use turn::relay::{ClientTransport, FiveTuple, PEER_HEADROOM};

use crate::metrics::io::IoCounters;
use crate::receive::{receive, Received};
use crate::relay_registry::{is_transient, Egress};
use crate::shared::{lock, Shared, StreamSender};

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

/// A worker thread's buffers for its relay sockets.
struct Buffers {
    /// Headroom for the Data indication or ChannelData header before each payload, and three
    /// bytes of padding after the largest datagram.
    batch: RecvBatch,
    routes: [Option<Route>; MAX_BATCH],
}

thread_local! {
    static BUFFERS: RefCell<Option<Buffers>> = const { RefCell::new(None) };
}

/// Reads datagrams from peers on one relay socket, a batch at a time, until it is closed.
pub async fn run(
    relay: SocketAddr,
    socket: Arc<UdpSocket>,
    shared: Weak<Mutex<Shared>>,
    egress: Arc<Egress>,
) {
    let batching = Batching::detect();
    loop {
        if let Err(e) = socket.readable().await {
            debug!(%relay, error = %e, "relay socket failed");
            return;
        }
        loop {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            // No await inside: the thread's buffers are borrowed for one batch only.
            let served = BUFFERS.with_borrow_mut(|buffers| {
                let buffers = buffers.get_or_insert_with(|| Buffers {
                    batch: RecvBatch::new(MAX_BATCH, PEER_HEADROOM, MAX_PEER_DATAGRAM, 3),
                    routes: [None; MAX_BATCH],
                });
                serve_batch(relay, &socket, &shared, &egress, buffers, batching)
            });
            match served {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) if is_transient(&e) => {}
                Err(e) => {
                    debug!(%relay, error = %e, "relay socket failed");
                    return;
                }
            }
        }
    }
}

/// Receives one batch, frames it and sends it. True when the socket is drained.
fn serve_batch(
    relay: SocketAddr,
    socket: &UdpSocket,
    shared: &Mutex<Shared>,
    egress: &Egress,
    buffers: &mut Buffers,
    batching: Batching,
) -> io::Result<bool> {
    let Received { count, drained } = receive(socket, &mut buffers.batch, batching)?;
    if count == 0 {
        return Ok(true);
    }
    let routes = &mut buffers.routes[..count];
    let streams = frame_batch(shared, relay, &mut buffers.batch, routes);
    if let Some(streams) = streams {
        send_to_streams(&buffers.batch, routes, &streams, &egress.io);
    }
    let batch = &buffers.batch;
    if !(batching.gso && try_gso(egress, batch, routes, batching)) {
        send_to_clients(egress, batch, routes, batching);
    }
    Ok(drained)
}

/// Gives each datagram of the batch to the core (one lock for the batch), which frames it in
/// its slot; fills `routes`. Returns the TCP/TLS connections, when any route goes to one.
fn frame_batch(
    shared: &Mutex<Shared>,
    relay: SocketAddr,
    batch: &mut RecvBatch,
    routes: &mut [Option<Route>],
) -> Option<Vec<Option<StreamSender>>> {
    let mut state = lock(shared);
    // The peer path needs only the monotonic clock (no credentials are checked).
    let now = Instant::now();
    let mut any_stream = false;
    for (i, route) in routes.iter_mut().enumerate() {
        let (slot, meta) = batch.slot_mut(i);
        *route = state
            .core
            .handle_peer(now, relay, meta.source, slot, meta.len)
            .map(|o| Route {
                start: o.data.start,
                end: o.data.end,
                to: o.to,
            });
        any_stream |= route.is_some_and(|r| r.to.transport.has_session());
    }
    // TCP/TLS/DTLS clients are the rare case: their queue handles are looked up (and a Vec
    // allocated) only when the batch has one.
    any_stream.then(|| {
        routes
            .iter()
            .map(|r| {
                r.filter(|r| r.to.transport.has_session())
                    .and_then(|r| state.streams.get(&(r.to.client, r.to.server)).cloned())
            })
            .collect()
    })
}

/// Queues the datagrams for TCP/TLS clients; a full queue means a client that does not
/// read: drop, as UDP would.
fn send_to_streams(
    batch: &RecvBatch,
    routes: &[Option<Route>],
    streams: &[Option<StreamSender>],
    io: &IoCounters,
) {
    for (i, (route, stream)) in routes.iter().zip(streams).enumerate() {
        let Some(route) = route.filter(|r| r.to.transport.has_session()) else {
            continue;
        };
        match stream {
            Some(stream) => {
                if !stream.try_send(batch.slot(i)[route.data()].to_vec()) {
                    io.queue_full();
                }
            }
            // The connection closed meanwhile.
            None => io.lost(1),
        }
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
            send_now(from, &items[..queued], batching, &egress.io);
            queued = 0;
        }
        from = Some(listener);
        items[queued] = Transmit {
            data: &batch.slot(i)[route.data()],
            to: route.to.client,
        };
        queued += 1;
    }
    send_now(from, &items[..queued], batching, &egress.io);
}

/// Sends `items` from `socket` now; what finds the socket buffer full is dropped (and
/// counted).
fn send_now(
    socket: Option<&Arc<UdpSocket>>,
    items: &[Transmit<'_>],
    batching: Batching,
    io: &IoCounters,
) {
    let Some(socket) = socket.filter(|_| !items.is_empty()) else {
        return;
    };
    let sent = socket.try_io(Interest::WRITABLE, || {
        net::send_batch(&**socket, items, batching)
    });
    match sent {
        Ok(n) if n < items.len() => {
            io.buffer_full(items.len() - n);
            trace!(dropped = items.len() - n, "socket buffer full");
        }
        Ok(_) => {}
        Err(e) => {
            io.send_failed(&e, items.len());
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
        net::send_segments(&**listener, segments, first.to.client, batching)
    });
    if let Err(e) = sent {
        egress.io.send_failed(&e, routes.len());
        trace!(error = %e, "GSO send failed; batch dropped");
    }
    true
}
