//! Relay sockets: opened and closed as the TURN core asks (its [`RelayCommand`]s, run by
//! [`crate::server::relay_commands`]), kept in a slab and registered with their worker's
//! epoll set, which the worker loop ([`crate::server::worker_loop`]) waits on: one wake-up
//! returns every socket with datagrams waiting, relay sockets (read by
//! [`crate::server::relay_loop`]) and listeners alike. Opening one binds it and registers it;
//! no task is spawned, and nothing here calls back into the core.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use slab::Slab;
use tracing::trace;
use turn::relay::{OpenTicket, PeerAddr, RelayAddr, RelayCommand, RelayOpenError, SocketKind};

use crate::server::tcp_relay::{TcpOwners, TcpRelays};

use crate::metrics::io::IoCounters;
use crate::server::worker_handle::Mailbox;

/// The listener sockets, by bound address, through which peer data reaches UDP clients.
#[derive(Debug, Default)]
pub struct Egress {
    /// UDP listener sockets by their bound address (the server side of a UDP 5-tuple).
    pub udp: HashMap<SocketAddr, Arc<UdpSocket>>,
    /// The worker's I/O drop counters (sends that failed, full TCP/TLS queues).
    pub io: Arc<IoCounters>,
}

/// A UDP relay socket (non-blocking). Shared only for the length of one send: the client →
/// peer path takes a handle from the registry and sends after its batch is decided.
pub type RelaySocket = Arc<UdpSocket>;

/// One open UDP relay socket.
#[derive(Debug)]
pub struct RelaySlot {
    /// Its relayed transport address.
    pub addr: RelayAddr,
    /// The socket.
    pub socket: RelaySocket,
}

/// The open relay sockets.
#[derive(Debug)]
pub struct RelayRegistry {
    /// UDP relay sockets; a slot's key is its epoll token.
    slots: Slab<RelaySlot>,
    by_addr: HashMap<RelayAddr, usize>,
    /// The worker's epoll set (the worker loop waits on it).
    registry: Registry,
    /// TCP allocations' listening sockets and peer connections (RFC 6062).
    pub tcp: TcpRelays,
    /// Where the TCP relay tasks (RFC 6062 is still task-per-connection) report to the core:
    /// its worker's loop.
    mailbox: Mailbox,
}

impl RelayRegistry {
    /// An empty registry whose UDP sockets join `registry`'s epoll set; `mailbox` is where
    /// the TCP relay tasks reach the core, `owners` the server's table of TCP peer
    /// connections.
    pub fn new(registry: Registry, mailbox: Mailbox, owners: TcpOwners) -> Self {
        RelayRegistry {
            slots: Slab::new(),
            by_addr: HashMap::new(),
            registry,
            tcp: TcpRelays::new(owners),
            mailbox,
        }
    }

    /// The socket bound to `addr`, to send a client's data to a peer.
    pub fn socket(&self, addr: RelayAddr) -> Option<RelaySocket> {
        let key = *self.by_addr.get(&addr)?;
        self.slots.get(key).map(|slot| slot.socket.clone())
    }

    /// The relay socket of epoll token `token`, if it is still open (a token read from an
    /// event may name a socket closed meanwhile, or its slot reused: a read then finds
    /// nothing, which is harmless).
    pub fn slot(&self, token: usize) -> Option<&RelaySlot> {
        self.slots.get(token)
    }

    /// Closes every relay socket (the worker is stopping).
    pub fn close_all(&mut self) {
        let addrs: Vec<RelayAddr> = self.by_addr.keys().copied().collect();
        for addr in addrs {
            self.close_udp(addr);
        }
        self.tcp = TcpRelays::new(self.tcp.owners().clone());
    }

    fn close_udp(&mut self, addr: RelayAddr) -> bool {
        let Some(key) = self.by_addr.remove(&addr) else {
            return false;
        };
        let slot = self.slots.remove(key);
        // Explicitly, not by closing the fd: a send in progress may still hold a handle.
        let _ = self
            .registry
            .deregister(&mut SourceFd(&slot.socket.as_raw_fd()));
        true
    }
}

impl RelayRegistry {
    /// Executes one of the core's commands; for an `Open`, the result to report with
    /// [`turn::relay::TurnServer::relay_opened`].
    pub fn execute(
        &mut self,
        command: RelayCommand,
    ) -> Option<(OpenTicket, Result<(), RelayOpenError>)> {
        match command {
            RelayCommand::Open { ticket, addr, kind } => {
                let result = match kind {
                    SocketKind::Udp => self.open_udp(addr),
                    SocketKind::TcpListener => self.listen_tcp(addr),
                    _ => Err(RelayOpenError::Other(io::ErrorKind::Unsupported)),
                };
                Some((ticket, result))
            }
            RelayCommand::Close(addr) => {
                if !self.close_udp(addr) {
                    self.tcp.close_listener(addr);
                }
                None
            }
            RelayCommand::ConnectTcp { id, relay, peer } => {
                self.tcp.connect(id, relay, peer, self.mailbox.clone());
                None
            }
            RelayCommand::CloseTcp(id) => {
                self.tcp.close(id);
                None
            }
            _ => None,
        }
    }

    /// Binds a UDP relay socket on `addr` and registers it with the epoll set.
    fn open_udp(&mut self, addr: RelayAddr) -> Result<(), RelayOpenError> {
        // RFC 8656 §14: relayed datagrams leave with DF clear unless a Send indication asks.
        let bound = net::bind_udp(addr.get())
            .and_then(|s| net::set_dont_fragment(&s, addr.is_ipv6(), false).map(|()| s));
        let socket = match bound {
            Ok(socket) => socket,
            Err(e) => {
                // The core reports the cause (once per interval, see `server_events`).
                trace!(%addr, error = %e, "relay port unavailable");
                return Err(open_error(&e));
            }
        };
        let entry = self.slots.vacant_entry();
        // Edge-triggered: the worker loop drains a socket (or carries it) on each event.
        let registered = self.registry.register(
            &mut SourceFd(&socket.as_raw_fd()),
            Token(entry.key()),
            Interest::READABLE,
        );
        if let Err(e) = registered {
            trace!(%addr, error = %e, "relay socket not registered");
            return Err(open_error(&e));
        }
        let key = entry.key();
        entry.insert(RelaySlot {
            addr,
            socket: Arc::new(socket),
        });
        self.by_addr.insert(addr, key);
        Ok(())
    }

    /// Binds a TCP listening socket on `addr`, a TCP allocation's relayed address (RFC 6062).
    fn listen_tcp(&mut self, addr: RelayAddr) -> Result<(), RelayOpenError> {
        self.tcp.listen(addr, self.mailbox.clone()).map_err(|e| {
            trace!(%addr, error = %e, "relay port unavailable for TCP");
            open_error(&e)
        })
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

/// Sends a client's payload to a peer from a relay socket, without waiting: a relay socket
/// whose send buffer is full (`WouldBlock`, which the 4 MiB buffers make rare) fails the
/// send, and the caller counts the drop with its cause ([`IoCounters::send_failed`]). With
/// `dont_fragment` (a Send indication's DONT-FRAGMENT, RFC 8656 §14) the DF bit is set for
/// this datagram only.
pub fn send_to_peer(
    relay: &UdpSocket,
    payload: &[u8],
    peer: PeerAddr,
    dont_fragment: bool,
) -> io::Result<()> {
    let ipv6 = peer.is_ipv6();
    if dont_fragment {
        net::set_dont_fragment(relay, ipv6, true)?;
    }
    let sent = relay.send_to(payload, peer.get());
    if let Err(e) = &sent {
        trace!(%peer, error = %e, "relay send failed");
    }
    if dont_fragment {
        let _ = net::set_dont_fragment(relay, ipv6, false);
    }
    sent.map(|_| ())
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
