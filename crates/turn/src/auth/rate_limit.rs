//! Counting failed authentications per source, in a table of bounded size.
//!
//! A source is an IPv4 address, or an IPv6 /64 (one host usually holds a whole /64, so
//! counting single IPv6 addresses would give it 2^64 allowances). A failure opens a window
//! for its source; once `failures_allowed` failures fall in the window, every request from
//! the source is dropped until the window ends. Successes do not reset the count: behind a
//! shared NAT, a legitimate user logging in must not refill an attacker's allowance.
//!
//! Only failures create entries, and a failure needs a nonce valid for the source's IP
//! (checked before credentials), which only a party that receives packets at that IP can
//! get: an off-path attacker spoofing source addresses can neither fill the table nor lock
//! anybody out.
//!
//! The table holds at most `capacity` sources. When a failure from a new source finds it
//! full, entries whose window has ended go first, then the one with the oldest window. So an
//! attacker controlling more than `capacity` addresses (each able to receive our challenges)
//! can push its own limited entries out before their window ends and get fresh allowances:
//! beyond that many addresses the limiter bounds nothing more than the attacker's packet
//! rate, while memory stays bounded. Legitimate clients are in the table only after failing,
//! so an eviction never locks anyone out; it only forgets.
//!
//! Ordered maps keep every decision independent of hashing.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// One source's count.
#[derive(Debug, Clone, Copy)]
struct Entry {
    window_start: Instant,
    failures: u32,
    /// Tie-breaker in the age index for windows that start at the same instant.
    seq: u64,
}

/// Failed authentications per source, bounded in size.
#[derive(Debug, Clone)]
pub struct FailureLimiter {
    allowed: u32,
    window: Duration,
    capacity: usize,
    entries: BTreeMap<IpAddr, Entry>,
    /// The same entries by window start: the front is the first to expire or be evicted.
    by_age: BTreeMap<(Instant, u64), IpAddr>,
    next_seq: u64,
}

impl FailureLimiter {
    /// A limiter allowing `allowed` failures per source per `window`, tracking at most
    /// `capacity` sources (0: none, which turns limiting off).
    pub fn new(allowed: u32, window: Duration, capacity: usize) -> FailureLimiter {
        FailureLimiter {
            allowed,
            window,
            capacity,
            entries: BTreeMap::new(),
            by_age: BTreeMap::new(),
            next_seq: 0,
        }
    }

    /// The key counting for `ip`: the address itself for IPv4, its /64 for IPv6.
    pub fn source(ip: IpAddr) -> IpAddr {
        match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(prefix.into())
            }
            v4 => v4,
        }
    }

    /// True when `ip` has used up its allowance in the current window. Forgets the
    /// source's entry once its window has ended.
    pub fn is_limited(&mut self, now: Instant, ip: IpAddr) -> bool {
        let source = Self::source(ip);
        let Some(entry) = self.entries.get(&source).copied() else {
            return false;
        };
        if self.ended(entry, now) {
            self.remove(source, entry);
            return false;
        }
        entry.failures >= self.allowed
    }

    /// Counts one failure from `ip` at `now`.
    pub fn record_failure(&mut self, now: Instant, ip: IpAddr) {
        if self.capacity == 0 {
            return;
        }
        let source = Self::source(ip);
        match self.entries.get(&source).copied() {
            Some(entry) if !self.ended(entry, now) => {
                if let Some(e) = self.entries.get_mut(&source) {
                    e.failures = e.failures.saturating_add(1);
                }
            }
            Some(entry) => {
                self.remove(source, entry);
                self.insert(source, now);
            }
            None => {
                self.make_room(now);
                self.insert(source, now);
            }
        }
    }

    /// Sources tracked now (including some whose window has ended but which were not yet
    /// looked at again); never more than the capacity.
    pub fn tracked(&self) -> usize {
        self.entries.len()
    }

    fn ended(&self, entry: Entry, now: Instant) -> bool {
        now.saturating_duration_since(entry.window_start) >= self.window
    }

    fn insert(&mut self, source: IpAddr, now: Instant) {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.entries.insert(
            source,
            Entry {
                window_start: now,
                failures: 1,
                seq,
            },
        );
        self.by_age.insert((now, seq), source);
    }

    fn remove(&mut self, source: IpAddr, entry: Entry) {
        self.entries.remove(&source);
        self.by_age.remove(&(entry.window_start, entry.seq));
    }

    /// Frees one slot when the table is full: ended windows first (they sit at the front
    /// of the age index), else the oldest window.
    fn make_room(&mut self, now: Instant) {
        while let Some((&(start, _), _)) = self.by_age.first_key_value() {
            let ended = now.saturating_duration_since(start) >= self.window;
            if !ended && self.entries.len() < self.capacity {
                break;
            }
            if let Some((_, source)) = self.by_age.pop_first() {
                self.entries.remove(&source);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(60);

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn limits_after_allowance_until_window_ends() {
        let t0 = Instant::now();
        let mut limiter = FailureLimiter::new(3, WINDOW, 16);
        let a = ip("192.0.2.1");
        for _ in 0..3 {
            assert!(!limiter.is_limited(t0, a));
            limiter.record_failure(t0, a);
        }
        assert!(limiter.is_limited(t0, a));
        assert!(limiter.is_limited(t0 + Duration::from_secs(59), a));
        assert!(!limiter.is_limited(t0, ip("192.0.2.2")));
        assert!(!limiter.is_limited(t0 + WINDOW, a));
        assert_eq!(limiter.tracked(), 0, "an ended window is forgotten");
    }

    #[test]
    fn a_failure_after_the_window_starts_a_new_one() {
        let t0 = Instant::now();
        let mut limiter = FailureLimiter::new(2, WINDOW, 16);
        let a = ip("192.0.2.1");
        limiter.record_failure(t0, a);
        limiter.record_failure(t0 + WINDOW, a);
        assert!(!limiter.is_limited(t0 + WINDOW, a));
        limiter.record_failure(t0 + WINDOW + Duration::from_secs(1), a);
        assert!(limiter.is_limited(t0 + WINDOW + Duration::from_secs(1), a));
        assert_eq!(limiter.by_age.len(), limiter.entries.len());
    }

    #[test]
    fn ipv6_counts_per_64() {
        let t0 = Instant::now();
        let mut limiter = FailureLimiter::new(2, WINDOW, 16);
        limiter.record_failure(t0, ip("2001:db8:1:2::1"));
        limiter.record_failure(t0, ip("2001:db8:1:2:ffff::9"));
        assert!(limiter.is_limited(t0, ip("2001:db8:1:2::77")));
        assert!(!limiter.is_limited(t0, ip("2001:db8:1:3::1")));
        assert_eq!(
            FailureLimiter::source(ip("::ffff:192.0.2.1")),
            ip("192.0.2.1")
        );
    }

    #[test]
    fn table_is_bounded_and_evicts_the_oldest() {
        let t0 = Instant::now();
        let mut limiter = FailureLimiter::new(1, WINDOW, 4);
        for i in 0..10u8 {
            let t = t0 + Duration::from_millis(u64::from(i));
            limiter.record_failure(t, IpAddr::from([10, 0, 0, i]));
            assert!(limiter.tracked() <= 4);
            assert_eq!(limiter.by_age.len(), limiter.entries.len());
        }
        let t = t0 + Duration::from_millis(10);
        assert!(!limiter.is_limited(t, ip("10.0.0.0")), "evicted");
        assert!(limiter.is_limited(t, ip("10.0.0.9")));
        // Ended windows make room before live ones are evicted.
        // 10.0.0.6 and .7 have ended, .8 and .9 have not.
        limiter.record_failure(t0 + WINDOW + Duration::from_millis(7), ip("10.0.1.1"));
        assert_eq!(limiter.tracked(), 3);
    }

    #[test]
    fn zero_capacity_tracks_nothing() {
        let t0 = Instant::now();
        let mut limiter = FailureLimiter::new(0, WINDOW, 0);
        limiter.record_failure(t0, ip("192.0.2.1"));
        assert!(!limiter.is_limited(t0, ip("192.0.2.1")));
        assert_eq!(limiter.tracked(), 0);
    }
}
