//! The per-source amplification budget: how many bytes more than it sent a source may get
//! back in answers it did not authenticate.
//!
//! STUN and TURN over UDP can be aimed at a victim by spoofing the source address. Answers
//! that are not larger than their requests give an attacker nothing it could not send itself;
//! the others (Binding responses, 401 and 438 challenges) are charged by their **excess**,
//! `response − request` bytes, to the source they go to, in a token bucket per source
//! (GCRA: one deadline per source, in a [`SourceTable`] shared by every worker). An answer
//! the bucket cannot pay for is dropped silently; a client retransmits (RFC 8489 §6.2.1) and
//! is answered once the bucket refills. So over any interval of `t` seconds, a source gets at
//! most `burst + rate × t` bytes more than it sent, whatever the request mix — the bound an
//! operator can state about reflection through this server.
//!
//! Not charged: answers over TCP/TLS (the handshake proved the address, nothing to reflect),
//! authenticated answers, and loopback sources, which cannot be spoofed from the network
//! (RFC 1122 §3.2.1.3: 127/8 "MUST NOT appear outside a host"; Linux drops such packets
//! arriving on other interfaces) and which local load generators share.

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Instant;

use crate::source_table::{SourceTable, STATE_MAX};

/// Bytes per second a source may get beyond what it sent, when none is configured.
pub const DEFAULT_BUDGET_RATE: u32 = 4096;
/// How many seconds of the rate a source may use at once.
pub const BURST_SECONDS: u32 = 4;

const MICROS: u64 = 1_000_000;

/// Per-source byte budget for unauthenticated answers larger than their requests.
#[derive(Debug)]
pub struct ResponseBudget {
    table: SourceTable,
    /// Bytes per second; 0 turns the budget off.
    rate: u64,
    /// The burst, as time: a source's deadline may run this far ahead of now.
    tolerance_us: u64,
    /// The instant microsecond 0 of the deadlines refers to: the first `now` seen.
    epoch: OnceLock<Instant>,
}

impl ResponseBudget {
    /// A budget of `rate` bytes per second per source with a burst of [`BURST_SECONDS`] of
    /// it, in a table of `capacity` slots placed by a hash keyed with `key`. A rate or
    /// capacity of 0 turns it off.
    pub fn new(rate: u32, capacity: usize, key: [u8; 16]) -> ResponseBudget {
        let capacity = if rate == 0 { 0 } else { capacity };
        ResponseBudget {
            table: SourceTable::new(capacity, key),
            rate: u64::from(rate),
            tolerance_us: u64::from(BURST_SECONDS) * MICROS,
            epoch: OnceLock::new(),
        }
    }

    /// A budget that allows everything.
    pub fn unlimited() -> ResponseBudget {
        ResponseBudget::new(0, 0, [0; 16])
    }

    /// Decides whether a `response`-byte answer to a `request`-byte request from `ip` may go
    /// at `now`, and charges the excess to `ip`'s source if so.
    pub fn allow(&self, now: Instant, ip: IpAddr, request: usize, response: usize) -> bool {
        let excess = response.saturating_sub(request);
        if excess == 0 || self.table.capacity() == 0 || ip.to_canonical().is_loopback() {
            return true;
        }
        let cost = u64::try_from(excess)
            .unwrap_or(u64::MAX)
            .saturating_mul(MICROS)
            .div_ceil(self.rate);
        let now = self.micros(now);
        let decided = self.table.update(ip, |deadline| {
            // The deadline is compared modulo 2^48 µs (8.9 years): one behind now (or
            // unknown) is now.
            let ahead = deadline
                .map(|d| d.wrapping_sub(now) & STATE_MAX)
                .filter(|&a| a <= STATE_MAX / 2)
                .unwrap_or(0);
            let ahead = ahead.saturating_add(cost);
            (ahead <= self.tolerance_us).then(|| now.wrapping_add(ahead) & STATE_MAX)
        });
        decided.is_some()
    }

    /// Microseconds since the epoch, modulo 2^48.
    fn micros(&self, now: Instant) -> u64 {
        let epoch = *self.epoch.get_or_init(|| now);
        let micros = now.saturating_duration_since(epoch).as_micros();
        u64::try_from(micros & u128::from(STATE_MAX)).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    // Over a burst, a source gets at most `burst` bytes beyond what it sent; then the rate.
    #[test]
    fn caps_the_excess_per_source() {
        let t0 = Instant::now();
        let budget = ResponseBudget::new(1000, 64, [1; 16]);
        let victim = ip("192.0.2.1");
        // 4 s × 1000 B/s = 4000 bytes of excess: 40 answers of 100 bytes to 0-byte requests.
        let sent = (0..1000)
            .filter(|_| budget.allow(t0, victim, 0, 100))
            .count();
        assert_eq!(sent, 40);
        // Another source has its own budget.
        assert!(budget.allow(t0, ip("192.0.2.2"), 0, 100));
        // One second later, 1000 bytes more.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(
            (0..100)
                .filter(|_| budget.allow(t1, victim, 0, 100))
                .count(),
            10
        );
    }

    // Answers no larger than their requests cost nothing and always go.
    #[test]
    fn answers_within_the_request_size_are_free() {
        let t0 = Instant::now();
        let budget = ResponseBudget::new(1, 64, [1; 16]);
        let source = ip("192.0.2.1");
        assert!((0..1000).all(|_| budget.allow(t0, source, 100, 100)));
        assert!(budget.allow(t0, source, 0, 4));
        assert!(!budget.allow(t0, source, 0, 4));
    }

    #[test]
    fn loopback_and_off_are_unlimited() {
        let t0 = Instant::now();
        let budget = ResponseBudget::new(1, 64, [1; 16]);
        assert!((0..100).all(|_| budget.allow(t0, ip("127.0.0.1"), 0, 1000)));
        assert!((0..100).all(|_| budget.allow(t0, ip("::1"), 0, 1000)));
        let off = ResponseBudget::unlimited();
        assert!((0..100).all(|_| off.allow(t0, ip("192.0.2.1"), 0, 1000)));
    }
}
