//! Relay port selection (RFC 8656 §7.2): random ports from the configured range (RFC 6056
//! recommends randomisation), even ports, and reservations of the next port with a token.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use rand::{Rng, RngCore};

use super::shared_state::SharedState;

/// How long a port reserved by EVEN-PORT (R=1) stays reserved: RFC 8656 §7.2 says at least
/// 30 seconds.
pub const RESERVATION_LIFETIME: Duration = Duration::from_secs(30);

/// Attempts at a random port before giving up on an allocation (508).
const ATTEMPTS: usize = 64;

/// What the I/O layer provides to the core: binding and closing relay sockets. Kept behind a
/// trait so that the core decides which address to use and learns at once whether it could
/// be bound (another program may hold a port of the range).
pub trait RelaySockets {
    /// Binds a UDP relay socket on `addr`; false when the address is unavailable.
    fn open(&mut self, addr: SocketAddr) -> bool;
    /// Closes the relay socket on `addr`.
    fn close(&mut self, addr: SocketAddr);
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
    fn claim_and_open(
        shared: &SharedState,
        sockets: &mut dyn RelaySockets,
        addr: SocketAddr,
    ) -> bool {
        if !shared.claim(addr) {
            return false;
        }
        if sockets.open(addr) {
            return true;
        }
        shared.release(addr);
        false
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
    ) -> Option<SocketAddr> {
        let (low, high) = (*self.range.start(), *self.range.end());
        for _ in 0..ATTEMPTS {
            let mut port = rng.gen_range(low..=high);
            if even {
                port &= !1;
                if port < low {
                    continue;
                }
            }
            let addr = SocketAddr::new(ip, port);
            if Self::claim_and_open(shared, sockets, addr) {
                return Some(addr);
            }
        }
        None
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
    ) -> Option<(SocketAddr, [u8; 8])> {
        let (low, high) = (*self.range.start(), *self.range.end());
        for _ in 0..ATTEMPTS {
            let port = rng.gen_range(low..=high) & !1;
            if port < low || port >= high {
                continue;
            }
            let (first, second) = (SocketAddr::new(ip, port), SocketAddr::new(ip, port + 1));
            if !Self::claim_and_open(shared, sockets, first) {
                continue;
            }
            if !shared.claim(second) {
                sockets.close(first);
                shared.release(first);
                continue;
            }
            let mut token = [0u8; 8];
            rng.fill_bytes(&mut token);
            shared.reserve(token, second, now + RESERVATION_LIFETIME);
            return Some((first, token));
        }
        None
    }
}
