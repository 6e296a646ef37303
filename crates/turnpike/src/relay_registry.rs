//! Relay sockets: opened and closed by the TURN core through [`RelaySockets`], each read by
//! its own task on the runtime of the worker whose core opened it ([`crate::relay_loop`]).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};

use tokio::net::UdpSocket;
use tokio::task::AbortHandle;
use tracing::trace;
use turn::relay::{ConnectionId, RelayOpenError, RelaySockets};

use crate::tcp_relay::{TcpOwners, TcpRelays};

use crate::metrics::io::IoCounters;
use crate::shared::Shared;

/// The listener sockets, by bound address, through which peer data reaches UDP clients.
#[derive(Debug, Default)]
pub struct Egress {
    /// UDP listener sockets by their bound address (the server side of a UDP 5-tuple).
    pub udp: HashMap<SocketAddr, Arc<UdpSocket>>,
    /// The worker's I/O drop counters (sends that failed, full TCP/TLS queues).
    pub io: Arc<IoCounters>,
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
    /// TCP allocations' listening sockets and peer connections (RFC 6062).
    pub tcp: TcpRelays,
}

impl RelayRegistry {
    /// An empty registry; `shared` is where its tasks find the core, `owners` the server's
    /// table of TCP peer connections.
    pub fn new(shared: Weak<Mutex<Shared>>, egress: Arc<Egress>, owners: TcpOwners) -> Self {
        RelayRegistry {
            sockets: HashMap::new(),
            shared,
            egress,
            tcp: TcpRelays::new(owners),
        }
    }

    /// The socket bound to `addr`, to send a client's data to a peer.
    pub fn socket(&self, addr: SocketAddr) -> Option<Arc<UdpSocket>> {
        self.sockets.get(&addr).map(|r| r.socket.clone())
    }
}

impl RelaySockets for RelayRegistry {
    fn open(&mut self, addr: SocketAddr) -> Result<(), RelayOpenError> {
        // RFC 8656 §14: relayed datagrams leave with DF clear unless a Send indication asks.
        let bound = net::bind_udp(addr)
            .and_then(|s| net::set_dont_fragment(&s, addr.is_ipv6(), false).map(|()| s));
        let socket = match bound.and_then(UdpSocket::from_std) {
            Ok(socket) => Arc::new(socket),
            Err(e) => {
                // The core reports the cause (once per interval, see `server_events`).
                trace!(%addr, error = %e, "relay port unavailable");
                return Err(open_error(&e));
            }
        };
        let task = tokio::spawn(crate::relay_loop::run(
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
        Ok(())
    }

    fn close(&mut self, addr: SocketAddr) {
        if let Some(relay) = self.sockets.remove(&addr) {
            relay.task.abort();
        } else {
            self.tcp.close_listener(addr);
        }
    }

    fn listen_tcp(&mut self, addr: SocketAddr) -> Result<(), RelayOpenError> {
        self.tcp.listen(addr, self.shared.clone()).map_err(|e| {
            trace!(%addr, error = %e, "relay port unavailable for TCP");
            open_error(&e)
        })
    }

    fn connect_tcp(&mut self, id: ConnectionId, relay: SocketAddr, peer: SocketAddr) {
        self.tcp.connect(id, relay, peer, self.shared.clone());
    }

    fn close_tcp(&mut self, id: ConnectionId) {
        self.tcp.close(id);
    }
}

impl Drop for RelayRegistry {
    fn drop(&mut self) {
        for relay in self.sockets.values() {
            relay.task.abort();
        }
    }
}

/// The core's name for a bind error: the errno where it matters to the operator (EMFILE and
/// ENFILE have no stable `io::ErrorKind`), the kind otherwise.
fn open_error(e: &io::Error) -> RelayOpenError {
    match (e.raw_os_error(), e.kind()) {
        (Some(libc::EMFILE), _) => RelayOpenError::ProcessFileLimit,
        (Some(libc::ENFILE), _) => RelayOpenError::SystemFileLimit,
        (_, io::ErrorKind::AddrInUse) => RelayOpenError::AddrInUse,
        (_, io::ErrorKind::AddrNotAvailable) => RelayOpenError::AddrNotAvailable,
        (_, io::ErrorKind::PermissionDenied) => RelayOpenError::PermissionDenied,
        (_, kind) => RelayOpenError::Other(kind),
    }
}

/// Sends a client's payload to a peer from a relay socket. With `dont_fragment` (a Send
/// indication's DONT-FRAGMENT, RFC 8656 §14) the DF bit is set for this datagram only.
/// Errors concern this datagram alone and are not reported further.
pub async fn send_to_peer(
    relay: &UdpSocket,
    payload: &[u8],
    peer: SocketAddr,
    dont_fragment: bool,
) -> bool {
    let ipv6 = peer.is_ipv6();
    if dont_fragment && net::set_dont_fragment(relay, ipv6, true).is_err() {
        return false;
    }
    let sent = relay.send_to(payload, peer).await;
    if let Err(e) = &sent {
        trace!(%peer, error = %e, "relay send failed");
    }
    if dont_fragment {
        let _ = net::set_dont_fragment(relay, ipv6, false);
    }
    sent.is_ok()
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
