//! Relay sockets: opened and closed by the TURN core through [`RelaySockets`], each read by
//! its own task (on the runtime of the worker whose core opened it) that receives peer
//! datagrams in batches (`recvmmsg`), hands them to the core under one lock per batch, which
//! frames each in place, and forwards them to the client (`sendmmsg`, or one GSO send when a
//! batch is all for one client). No allocation per datagram on the UDP path.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use net::{Batching, RecvBatch};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::task::AbortHandle;
use tracing::{debug, trace};
use turn::relay::{ClientTransport, FiveTuple, RelaySockets, PEER_HEADROOM};

use crate::outbox::Outbox;
use crate::receive::{receive, Received};
use crate::shared::{lock, Shared, StreamSender};

/// The listener sockets, by bound address, through which peer data reaches UDP clients.
#[derive(Debug, Default)]
pub struct Egress {
    /// UDP listener sockets by their bound address (the server side of a UDP 5-tuple).
    pub udp: HashMap<SocketAddr, Arc<UdpSocket>>,
}

#[derive(Debug)]
struct RelaySocket {
    socket: Arc<UdpSocket>,
    task: AbortHandle,
}

/// The open relay sockets.
#[derive(Debug)]
pub struct RelayRegistry {
    sockets: HashMap<SocketAddr, RelaySocket>,
    shared: Weak<Mutex<Shared>>,
    egress: Arc<Egress>,
}

impl RelayRegistry {
    /// An empty registry; `shared` is where its tasks find the core.
    pub fn new(shared: Weak<Mutex<Shared>>, egress: Arc<Egress>) -> Self {
        RelayRegistry {
            sockets: HashMap::new(),
            shared,
            egress,
        }
    }

    /// The socket bound to `addr`, to send a client's data to a peer.
    pub fn socket(&self, addr: SocketAddr) -> Option<Arc<UdpSocket>> {
        self.sockets.get(&addr).map(|r| r.socket.clone())
    }
}

impl RelaySockets for RelayRegistry {
    fn open(&mut self, addr: SocketAddr) -> bool {
        // RFC 8656 §14: relayed datagrams leave with DF clear unless a Send indication asks.
        let bound = net::bind_udp(addr)
            .and_then(|s| net::set_dont_fragment(&s, addr.is_ipv6(), false).map(|()| s));
        let socket = match bound.and_then(UdpSocket::from_std) {
            Ok(socket) => Arc::new(socket),
            Err(e) => {
                trace!(%addr, error = %e, "relay port unavailable");
                return false;
            }
        };
        let task = tokio::spawn(relay_loop(
            addr,
            socket.clone(),
            self.shared.clone(),
            self.egress.clone(),
        ));
        self.sockets.insert(
            addr,
            RelaySocket {
                socket,
                task: task.abort_handle(),
            },
        );
        true
    }

    fn close(&mut self, addr: SocketAddr) {
        if let Some(relay) = self.sockets.remove(&addr) {
            relay.task.abort();
        }
    }
}

impl Drop for RelayRegistry {
    fn drop(&mut self) {
        for relay in self.sockets.values() {
            relay.task.abort();
        }
    }
}

/// Peer datagrams read per `recvmmsg` on a relay socket. Fewer than a listener's: a relay
/// socket carries one allocation, and each slot is sized for the largest datagram (only the
/// pages datagrams touch become resident).
const RELAY_BATCH: usize = 16;

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

thread_local! {
    /// The bytes of one GSO send, gathered from the slots of a batch: one buffer per worker
    /// thread, not per relay socket (used only between two awaits).
    static GSO_BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Reads datagrams from peers on one relay socket, a batch at a time, until it is closed.
async fn relay_loop(
    relay: SocketAddr,
    socket: Arc<UdpSocket>,
    shared: Weak<Mutex<Shared>>,
    egress: Arc<Egress>,
) {
    let batching = Batching::detect();
    // Headroom for the Data indication or ChannelData header, written in place before the
    // payload, and three bytes of padding after the largest datagram.
    let mut batch = RecvBatch::new(RELAY_BATCH, PEER_HEADROOM, MAX_PEER_DATAGRAM, 3);
    let mut routes: [Option<Route>; RELAY_BATCH] = [None; RELAY_BATCH];
    loop {
        if let Err(e) = socket.readable().await {
            debug!(%relay, error = %e, "relay socket failed");
            return;
        }
        loop {
            let Received { count, drained } = match receive(&socket, &mut batch, batching) {
                Ok(received) => received,
                Err(e) if is_transient(&e) => continue,
                Err(e) => {
                    debug!(%relay, error = %e, "relay socket failed");
                    return;
                }
            };
            if count == 0 {
                break;
            }
            let Some(shared) = shared.upgrade() else {
                return;
            };
            let routes = &mut routes[..count];
            let streams = frame_batch(&shared, relay, &mut batch, routes);
            drop(shared);
            if let Some(streams) = streams {
                send_to_streams(&batch, routes, &streams);
            }
            send_to_clients(&egress, &batch, routes, batching).await;
            if drained {
                break;
            }
        }
    }
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
        any_stream |= route.is_some_and(|r| r.to.transport == ClientTransport::Tcp);
    }
    // TCP/TLS clients are the rare case: their queue handles are looked up (and a Vec
    // allocated) only when the batch has one.
    any_stream.then(|| {
        routes
            .iter()
            .map(|r| {
                r.filter(|r| r.to.transport == ClientTransport::Tcp)
                    .and_then(|r| state.streams.get(&(r.to.client, r.to.server)).cloned())
            })
            .collect()
    })
}

/// Queues the datagrams for TCP/TLS clients; a full queue means a client that does not
/// read: drop, as UDP would.
fn send_to_streams(batch: &RecvBatch, routes: &[Option<Route>], streams: &[Option<StreamSender>]) {
    for (i, (route, stream)) in routes.iter().zip(streams).enumerate() {
        if let (Some(route), Some(stream)) = (route, stream) {
            let _ = stream.try_send(batch.slot(i)[route.data()].to_vec());
        }
    }
}

/// Sends the framed datagrams for UDP clients from the listener socket of their 5-tuple:
/// one GSO send when they are all for one client and of one size (the last may be
/// shorter), else `sendmmsg` per run from one listener socket.
async fn send_to_clients(
    egress: &Egress,
    batch: &RecvBatch,
    routes: &[Option<Route>],
    batching: Batching,
) {
    if batching.gso && try_gso(egress, batch, routes, batching) {
        return;
    }
    let mut outbox = Outbox::new(batching);
    for (i, route) in routes.iter().enumerate() {
        let Some(route) = route.filter(|r| r.to.transport == ClientTransport::Udp) else {
            continue;
        };
        if let Some(listener) = egress.udp.get(&route.to.server) {
            outbox
                .push(listener, &batch.slot(i)[route.data()], route.to.client)
                .await;
        }
    }
    outbox.flush().await;
}

/// Sends the whole batch as one GSO send when it can (see [`send_to_clients`]); false when
/// the batch does not qualify and must go the ordinary way. A GSO send that finds the
/// socket buffer full drops the batch, as the network would.
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
    let total: usize = routes.iter().flatten().map(Route::len).sum();
    let last = routes.len() - 1;
    let uniform = routes.iter().enumerate().all(|(i, r)| {
        r.is_some_and(|r| {
            r.to == first.to && (r.len() == segment || (i == last && r.len() < segment))
        })
    });
    if routes.len() < 2
        || !uniform
        || first.to.transport != ClientTransport::Udp
        || total > net::MAX_GSO_BYTES
        || routes.len() > net::MAX_GSO_SEGMENTS
    {
        return false;
    }
    let Some(listener) = egress.udp.get(&first.to.server) else {
        return true; // no way to the client: nothing to send
    };
    GSO_BUFFER.with_borrow_mut(|buffer| {
        buffer.clear();
        for (i, route) in routes.iter().enumerate() {
            if let Some(route) = route {
                buffer.extend_from_slice(&batch.slot(i)[route.data()]);
            }
        }
        let sent = listener.try_io(Interest::WRITABLE, || {
            net::send_segments(&**listener, buffer, segment, first.to.client, batching)
        });
        if let Err(e) = sent {
            trace!(error = %e, "GSO send failed; batch dropped");
        }
    });
    true
}

/// Sends a client's payload to a peer from a relay socket. With `dont_fragment` (a Send
/// indication's DONT-FRAGMENT, RFC 8656 §14) the DF bit is set for this datagram only.
/// Errors concern this datagram alone and are not reported further.
pub async fn send_to_peer(
    relay: &UdpSocket,
    payload: &[u8],
    peer: SocketAddr,
    dont_fragment: bool,
) {
    let ipv6 = peer.is_ipv6();
    if dont_fragment && net::set_dont_fragment(relay, ipv6, true).is_err() {
        return;
    }
    if let Err(e) = relay.send_to(payload, peer).await {
        trace!(%peer, error = %e, "relay send failed");
    }
    if dont_fragment {
        let _ = net::set_dont_fragment(relay, ipv6, false);
    }
}

/// Errors that concern one earlier datagram (an ICMP error surfacing on Linux), not the
/// socket.
pub fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}
