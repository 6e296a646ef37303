//! Relay port selection (RFC 8656 §7.2): random ports from the configured range (RFC 6056
//! recommends randomisation), even ports, and reservations of the next port with a token.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use rand::{Rng, RngCore};
use stun::attributes::ReservationToken;

use super::addresses::{PeerAddr, RelayAddr};
use super::shared_state::SharedState;
use super::tcp_connections::ConnectionId;

/// How long a port reserved by EVEN-PORT (R=1) stays reserved: RFC 8656 §7.2 says at least
/// 30 seconds.
pub const RESERVATION_LIFETIME: Duration = Duration::from_secs(30);

/// Attempts at a random port before giving up on an allocation (508).
const ATTEMPTS: usize = 64;

/// Why the I/O layer could not bind a relay socket: the OS error, as exact as the core needs
/// it to tell the operator why an Allocate got 508 (an `external-ip`/relay address that is
/// not on the host, `ulimit -n` too low, …). The driver maps its OS error onto this; the core
/// stays free of OS error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum RelayOpenError {
    /// EADDRINUSE: another program holds this port; another port may do.
    #[error("address in use (EADDRINUSE)")]
    AddrInUse,
    /// EADDRNOTAVAIL: the relay IP is not an address of this host.
    #[error("address not available on this host (EADDRNOTAVAIL)")]
    AddrNotAvailable,
    /// EMFILE: the process is at its open-file limit (`ulimit -n`, `LimitNOFILE`).
    #[error("too many open files in the process (EMFILE)")]
    ProcessFileLimit,
    /// ENFILE: the system is at its open-file limit.
    #[error("too many open files in the system (ENFILE)")]
    SystemFileLimit,
    /// EACCES/EPERM: a privileged port, or a security policy.
    #[error("permission denied")]
    PermissionDenied,
    /// Any other OS error.
    #[error("OS error: {0}")]
    Other(std::io::ErrorKind),
}

impl RelayOpenError {
    /// True when the error concerns this port only, so that another port of the range may
    /// still be bound; the other errors hold for every port of the IP (or of the process).
    pub fn is_port_specific(&self) -> bool {
        *self == RelayOpenError::AddrInUse
    }
}

/// Why no relay socket could be opened on a relay IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenFailure {
    /// No free port found: the range is taken by allocations and reservations (or by other
    /// programs).
    Exhausted,
    /// The OS refused the bind for a reason that holds for every port.
    Os(RelayOpenError),
}

/// What the I/O layer provides to the core: binding and closing relay sockets. Kept behind a
/// trait so that the core decides which address to use and learns at once whether it could
/// be bound (another program may hold a port of the range) and, when not, why.
pub trait RelaySockets {
    /// Binds a UDP relay socket on `addr`.
    fn open(&mut self, addr: RelayAddr) -> Result<(), RelayOpenError>;
    /// Closes the relay socket (or TCP listening socket) on `addr`.
    fn close(&mut self, addr: RelayAddr);
    /// Binds a TCP listening socket on `addr`, the relayed address of a TCP allocation (RFC
    /// 6062 §5.1), and reports each connection a peer makes to it with
    /// [`super::TurnServer::tcp_peer_accepted`]. A driver without TCP relaying refuses.
    fn listen_tcp(&mut self, addr: RelayAddr) -> Result<(), RelayOpenError> {
        let _ = addr;
        Err(RelayOpenError::Other(std::io::ErrorKind::Unsupported))
    }
    /// Opens a TCP connection from the relayed address `relay` to `peer` (RFC 6062 §5.2) as
    /// peer data connection `id`, and reports how it went with
    /// [`super::TurnServer::tcp_connect_result`]. No timeout is needed: the core gives up at
    /// its own deadline and calls [`RelaySockets::close_tcp`].
    fn connect_tcp(&mut self, id: ConnectionId, relay: RelayAddr, peer: PeerAddr) {
        let _ = (id, relay, peer);
    }
    /// Closes peer data connection `id` (connecting, waiting for its bind, or spliced to a
    /// client data connection, which is closed with it: RFC 6062 §5.5).
    fn close_tcp(&mut self, id: ConnectionId) {
        let _ = id;
    }
}

/// [`RelaySockets`] for a TCP allocation: "open" binds a TCP listening socket, so that the
/// port selection serves both transports unchanged.
pub(super) struct TcpListeners<'a>(pub &'a mut dyn RelaySockets);

impl RelaySockets for TcpListeners<'_> {
    fn open(&mut self, addr: RelayAddr) -> Result<(), RelayOpenError> {
        self.0.listen_tcp(addr)
    }

    fn close(&mut self, addr: RelayAddr) {
        self.0.close(addr);
    }
}

/// Picks relay addresses. Which addresses are taken (by allocations and reservations, of
/// every core) is tracked in [`SharedState`].
#[derive(Debug)]
pub struct PortPool {
    range: RangeInclusive<u16>,
}

impl PortPool {
    /// A pool over `range` (RFC 8656 §7.2 recommends 49152–65535).
    pub fn new(range: RangeInclusive<u16>) -> Self {
        PortPool { range }
    }

    /// The configured range.
    pub fn range(&self) -> &RangeInclusive<u16> {
        &self.range
    }

    /// Claims `addr` in `shared` and opens its socket; releases it again when the bind fails.
    /// `Ok(false)`: this port is taken, another may do; `Err`: no port of this IP will.
    fn claim_and_open(
        shared: &SharedState,
        sockets: &mut dyn RelaySockets,
        addr: RelayAddr,
    ) -> Result<bool, OpenFailure> {
        if !shared.claim(addr) {
            return Ok(false);
        }
        match sockets.open(addr) {
            Ok(()) => Ok(true),
            Err(e) => {
                shared.release(addr);
                if e.is_port_specific() {
                    Ok(false)
                } else {
                    Err(OpenFailure::Os(e))
                }
            }
        }
    }

    /// Opens a relay socket on `ip` at a random free port (even when asked), trying several
    /// ports. A port is taken by claiming it in `shared` first, so that the cores of other
    /// workers never pick it too (allocations and reservations hold their claims).
    pub fn open(
        &mut self,
        ip: IpAddr,
        even: bool,
        rng: &mut dyn RngCore,
        sockets: &mut dyn RelaySockets,
        shared: &SharedState,
    ) -> Result<RelayAddr, OpenFailure> {
        let (low, high) = (*self.range.start(), *self.range.end());
        for _ in 0..ATTEMPTS {
            let mut port = rng.gen_range(low..=high);
            if even {
                port &= !1;
                if port < low {
                    continue;
                }
            }
            let addr = RelayAddr::new(SocketAddr::new(ip, port));
            if Self::claim_and_open(shared, sockets, addr)? {
                return Ok(addr);
            }
        }
        Err(OpenFailure::Exhausted)
    }

    /// Opens an even port N and reserves N+1 (EVEN-PORT with R=1), returning the address in
    /// use and the token for the reserved one. The reserved port is claimed, not bound: the
    /// Allocate that redeems the token may come to another worker's core, which binds it.
    pub fn open_pair(
        &mut self,
        now: Instant,
        ip: IpAddr,
        rng: &mut dyn RngCore,
        sockets: &mut dyn RelaySockets,
        shared: &SharedState,
    ) -> Result<(RelayAddr, ReservationToken), OpenFailure> {
        let (low, high) = (*self.range.start(), *self.range.end());
        for _ in 0..ATTEMPTS {
            let port = rng.gen_range(low..=high) & !1;
            if port < low || port >= high {
                continue;
            }
            let (first, second) = (
                RelayAddr::new(SocketAddr::new(ip, port)),
                RelayAddr::new(SocketAddr::new(ip, port + 1)),
            );
            if !Self::claim_and_open(shared, sockets, first)? {
                continue;
            }
            if !shared.claim(second) {
                sockets.close(first);
                shared.release(first);
                continue;
            }
            let mut token = ReservationToken([0; 8]);
            rng.fill_bytes(&mut token.0);
            shared.reserve(token, second, now + RESERVATION_LIFETIME);
            return Ok((first, token));
        }
        Err(OpenFailure::Exhausted)
    }
}
