//! What the TURN cores of several workers share: which relay addresses are taken, and the
//! allocation quotas. A server may run one [`super::TurnServer`] per worker thread, each with
//! its own allocations (sharded by client 5-tuple); these few facts must still hold for the
//! whole server.
//!
//! - Relay addresses: one bit per (relay IP, port of the range), set with an atomic
//!   `fetch_or` when a core claims a port, so that no two cores hand out the same one, and read
//!   with a relaxed load on the data path ("is this peer one of our relays?", RFC 8656 §7.2
//!   and the relay↔relay rule) — no lock per packet.
//! - Reservations (EVEN-PORT with R=1, RFC 8656 §7.2): the token is redeemed by another
//!   Allocate, from another 5-tuple that may land on another worker, so the table of tokens
//!   is shared (behind a mutex taken on Allocate and by the timers). A reserved port is held
//!   by its claim alone; its socket is bound by the core that redeems the token.
//! - Quotas (RFC 8656 §7.2 step 10): the total count is an atomic; the per-username counts sit
//!   behind a mutex taken only on Allocate and when an allocation goes, never per packet.
//!
//! - CONNECTION-IDs (RFC 6062 §6.2.1): a ConnectionBind arrives on a new connection, which
//!   may land on another worker, so an id must name one peer data connection in the whole
//!   server; the set of ids in use sits behind a mutex taken on Connect, on a peer's
//!   connection and when one ends.
//!
//! A single core gets its own instance ([`SharedState::new`] in [`super::TurnServer::new`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;
use stun::attributes::ReservationToken;

use super::addresses::RelayAddr;

/// A port held for a later Allocate that presents its RESERVATION-TOKEN.
#[derive(Debug, Clone, Copy)]
struct Reservation {
    addr: RelayAddr,
    expires: Instant,
}

/// Takes a mutex, taking over a poisoned one: the maps behind these locks are updated in
/// single statements that a panic cannot leave half done.
fn take<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Why an allocation could not be counted (RFC 8656 §7.2 step 10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaExceeded {
    /// The username holds its quota already (486).
    User,
    /// The server holds its total already (508).
    Total,
}

/// One bit per port of the range, for one relay IP.
#[derive(Debug)]
struct PortBits {
    ip: IpAddr,
    bits: Box<[AtomicU64]>,
}

/// State shared by the cores of all workers of one server.
#[derive(Debug)]
pub struct SharedState {
    ports: RangeInclusive<u16>,
    relays: Vec<PortBits>,
    total: AtomicUsize,
    per_user: Mutex<HashMap<String, usize>>,
    reservations: Mutex<BTreeMap<ReservationToken, Reservation>>,
    connection_ids: Mutex<HashSet<u32>>,
}

impl SharedState {
    /// Shared state for relay sockets on `relay_ips` with ports in `ports`.
    pub fn new(relay_ips: &[IpAddr], ports: RangeInclusive<u16>) -> Self {
        let span = usize::from(*ports.end()).saturating_sub(usize::from(*ports.start())) + 1;
        let words = span.div_ceil(64);
        let mut relays: Vec<PortBits> = Vec::new();
        for &ip in relay_ips {
            if relays.iter().all(|r| r.ip != ip) {
                relays.push(PortBits {
                    ip,
                    bits: (0..words).map(|_| AtomicU64::new(0)).collect(),
                });
            }
        }
        SharedState {
            ports,
            relays,
            total: AtomicUsize::new(0),
            per_user: Mutex::new(HashMap::new()),
            reservations: Mutex::new(BTreeMap::new()),
            connection_ids: Mutex::new(HashSet::new()),
        }
    }

    /// The word and bit of `addr`, when it is a relay IP and a port of the range.
    fn slot(&self, addr: SocketAddr) -> Option<(&AtomicU64, u64)> {
        if !self.ports.contains(&addr.port()) {
            return None;
        }
        let relay = self.relays.iter().find(|r| r.ip == addr.ip())?;
        let index = usize::from(addr.port() - *self.ports.start());
        Some((relay.bits.get(index / 64)?, 1u64 << (index % 64)))
    }

    /// Claims `addr` for a relay socket; false when another core (or this one) holds it. An
    /// address outside the relay IPs and port range cannot be tracked, and is left to the
    /// bind to refuse.
    pub fn claim(&self, addr: RelayAddr) -> bool {
        match self.slot(addr.get()) {
            Some((word, bit)) => word.fetch_or(bit, Ordering::AcqRel) & bit == 0,
            None => true,
        }
    }

    /// Claims CONNECTION-ID `id`; false when it is in use (by any core).
    pub fn claim_connection_id(&self, id: u32) -> bool {
        take(&self.connection_ids).insert(id)
    }

    /// Gives CONNECTION-ID `id` back.
    pub fn release_connection_id(&self, id: u32) {
        take(&self.connection_ids).remove(&id);
    }

    /// Peer data connections of every core (RFC 6062), in any state.
    pub fn peer_connections(&self) -> usize {
        take(&self.connection_ids).len()
    }

    /// Gives `addr` back.
    pub fn release(&self, addr: RelayAddr) {
        if let Some((word, bit)) = self.slot(addr.get()) {
            word.fetch_and(!bit, Ordering::AcqRel);
        }
    }

    /// True when `addr` (any transport address: a peer's, typically) is a relay address held
    /// by some core (an allocation's or a reservation's). Relaxed: a relay that appears a
    /// moment late only delays a peer's first packet, as would the network.
    pub fn is_relay(&self, addr: impl Into<SocketAddr>) -> bool {
        self.slot(addr.into())
            .is_some_and(|(word, bit)| word.load(Ordering::Relaxed) & bit != 0)
    }

    /// Counts one more allocation for `username`, unless the user's quota (`user_quota`, 0
    /// for none) or the server's total would be exceeded.
    pub fn add_allocation(
        &self,
        username: &str,
        user_quota: usize,
        total_quota: usize,
    ) -> Result<(), QuotaExceeded> {
        let mut per_user = take(&self.per_user);
        let held = per_user.get(username).copied().unwrap_or(0);
        if user_quota > 0 && held >= user_quota {
            return Err(QuotaExceeded::User);
        }
        // Under the same lock, so that two cores cannot both take the last place.
        if self.total.load(Ordering::Acquire) >= total_quota {
            return Err(QuotaExceeded::Total);
        }
        self.total.fetch_add(1, Ordering::AcqRel);
        *per_user.entry(username.to_string()).or_default() += 1;
        Ok(())
    }

    /// Uncounts an allocation of `username`.
    pub fn remove_allocation(&self, username: &str) {
        let mut per_user = take(&self.per_user);
        if let Some(count) = per_user.get_mut(username) {
            *count -= 1;
            if *count == 0 {
                per_user.remove(username);
            }
            self.total.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Allocations held by all cores.
    pub fn allocations(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }

    /// Relay port pool usage, per relay IP: (IP, ports claimed, ports in the range). Walks
    /// the bit sets: for metrics, not the data path.
    pub fn port_usage(&self) -> impl Iterator<Item = (IpAddr, u64, u64)> + '_ {
        let span = u64::from(*self.ports.end()).saturating_sub(u64::from(*self.ports.start())) + 1;
        self.relays.iter().map(move |relay| {
            let used = relay
                .bits
                .iter()
                .map(|word| u64::from(word.load(Ordering::Relaxed).count_ones()))
                .sum();
            (relay.ip, used, span)
        })
    }

    /// Holds `addr` (already claimed) for the Allocate that presents `token`, until
    /// `expires`.
    pub fn reserve(&self, token: ReservationToken, addr: RelayAddr, expires: Instant) {
        take(&self.reservations).insert(token, Reservation { addr, expires });
    }

    /// Takes the address reserved under `token`, still claimed, if the reservation is valid
    /// at `now`; an expired one is released.
    pub fn redeem(&self, now: Instant, token: ReservationToken) -> Option<RelayAddr> {
        let reservation = take(&self.reservations).remove(&token)?;
        if reservation.expires > now {
            return Some(reservation.addr);
        }
        self.release(reservation.addr);
        None
    }

    /// Releases the reservations expired by `now`.
    pub fn expire_reservations(&self, now: Instant) {
        let mut reservations = take(&self.reservations);
        reservations.retain(|_, r| {
            let live = r.expires > now;
            if !live {
                self.release(r.addr);
            }
            live
        });
    }

    /// The earliest reservation expiry.
    pub fn next_reservation_expiry(&self) -> Option<Instant> {
        take(&self.reservations).values().map(|r| r.expires).min()
    }

    /// Live reservations.
    pub fn reservations(&self) -> usize {
        take(&self.reservations).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> RelayAddr {
        RelayAddr::new(s.parse().unwrap())
    }

    // RFC 8656 §7.2: a relayed transport address is given to one allocation at a time.
    #[test]
    fn a_port_is_claimed_once_until_released() {
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let state = SharedState::new(&[ip], 50_000..=50_127);
        assert!(state.claim(addr("192.0.2.1:50063")));
        assert!(!state.claim(addr("192.0.2.1:50063")));
        assert!(state.is_relay(addr("192.0.2.1:50063")));
        assert!(!state.is_relay(addr("192.0.2.1:50064")));
        // Another IP, or a port outside the range, is not ours.
        assert!(!state.is_relay(addr("192.0.2.2:50063")));
        assert!(!state.is_relay(addr("192.0.2.1:49999")));
        state.release(addr("192.0.2.1:50063"));
        assert!(!state.is_relay(addr("192.0.2.1:50063")));
        assert!(state.claim(addr("192.0.2.1:50063")));
        // The last port of the range has a bit too.
        assert!(state.claim(addr("192.0.2.1:50127")));
        assert!(state.is_relay(addr("192.0.2.1:50127")));
        assert_eq!(state.port_usage().collect::<Vec<_>>(), [(ip, 2, 128)]);
    }

    // RFC 8656 §7.2 step 10: per-user quota (486) first, then the server's capacity (508).
    #[test]
    fn quotas_count_over_all_cores() {
        let state = SharedState::new(&[], 50_000..=50_001);
        assert_eq!(state.add_allocation("alice", 2, 3), Ok(()));
        assert_eq!(state.add_allocation("alice", 2, 3), Ok(()));
        assert_eq!(
            state.add_allocation("alice", 2, 3),
            Err(QuotaExceeded::User)
        );
        assert_eq!(state.add_allocation("bob", 2, 3), Ok(()));
        assert_eq!(
            state.add_allocation("carol", 2, 3),
            Err(QuotaExceeded::Total)
        );
        state.remove_allocation("alice");
        assert_eq!(state.allocations(), 2);
        assert_eq!(state.add_allocation("carol", 2, 3), Ok(()));
        // Removing a user that holds nothing changes nothing.
        state.remove_allocation("nobody");
        assert_eq!(state.allocations(), 3);
    }
}
