//! Relay port selection (RFC 8656 §7.2): random ports from the configured range (RFC 6056
//! recommends randomisation), even ports, and reservations of the next port with a token.

use std::collections::BTreeMap;
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

/// A port held for a later Allocate that presents its RESERVATION-TOKEN.
#[derive(Debug, Clone, Copy)]
struct Reservation {
    addr: SocketAddr,
    expires: Instant,
}

/// Picks relay addresses and tracks reservations. Bound addresses are tracked by the server
/// (an address is in use while an allocation or reservation holds it).
#[derive(Debug)]
pub struct PortPool {
    range: RangeInclusive<u16>,
    reservations: BTreeMap<[u8; 8], Reservation>,
}

impl PortPool {
    /// A pool over `range` (RFC 8656 §7.2 recommends 49152–65535).
    pub fn new(range: RangeInclusive<u16>) -> Self {
        PortPool {
            range,
            reservations: BTreeMap::new(),
        }
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
    /// use and the token for the reserved one.
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
            if !Self::claim_and_open(shared, sockets, second) {
                sockets.close(first);
                shared.release(first);
                continue;
            }
            let mut token = [0u8; 8];
            rng.fill_bytes(&mut token);
            self.reservations.insert(
                token,
                Reservation {
                    addr: second,
                    expires: now + RESERVATION_LIFETIME,
                },
            );
            return Some((first, token));
        }
        None
    }

    /// Takes the address reserved under `token`, if the reservation is still valid. Its
    /// socket is already open.
    pub fn redeem(&mut self, now: Instant, token: [u8; 8]) -> Option<SocketAddr> {
        let reservation = self.reservations.remove(&token)?;
        (reservation.expires > now).then_some(reservation.addr)
    }

    /// Drops expired reservations, closing their sockets and releasing their claims.
    pub fn expire(&mut self, now: Instant, sockets: &mut dyn RelaySockets, shared: &SharedState) {
        let expired: Vec<[u8; 8]> = self
            .reservations
            .iter()
            .filter(|(_, r)| r.expires <= now)
            .map(|(t, _)| *t)
            .collect();
        for token in expired {
            if let Some(r) = self.reservations.remove(&token) {
                sockets.close(r.addr);
                shared.release(r.addr);
            }
        }
    }

    /// The earliest reservation expiry.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.reservations.values().map(|r| r.expires).min()
    }

    /// Number of live reservations.
    pub fn reservations(&self) -> usize {
        self.reservations.len()
    }
}
