//! Counting failed authentications per source, once for the whole server.
//!
//! The counts live in a [`SourceTable`] (fixed size, lock-free, keyed hash) that every
//! worker's [`crate::auth::Authenticator`] shares, so the limit is `failures_allowed` per
//! source, not per source per worker. A failure opens a window for its source; the failures
//! after the first `failures_allowed` of the window are dropped without an answer (no 401, so
//! no password-guessing oracle) until the window ends. Successes neither reset the count nor
//! are refused: behind a shared NAT, a legitimate user logging in must not refill an
//! attacker's allowance, and the attacker's failures must not lock that user out.
//!
//! Only failures create entries, and a failure needs a nonce valid for the source's
//! transport address (checked before credentials), which only a party that receives packets
//! at that address can get: an off-path attacker spoofing addresses can neither fill the
//! table nor push anybody over the limit.
//!
//! A slot holds a 20-bit count (the limit is at most 1,000,000) and the 28-bit start of the
//! window in seconds since the table's first use, compared modulo 2^28 (8.5 years). A source
//! whose slot another source took over starts afresh: an attacker holding more addresses
//! than the table has slots (each able to receive our challenges) gets fresh allowances, so
//! beyond that the limiter bounds nothing more than its packet rate, while memory stays fixed.

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::source_table::{SourceTable, STATE_BITS};

/// Bits of the window start.
const TIME_BITS: u32 = 28;
const TIME_MASK: u64 = (1 << TIME_BITS) - 1;
/// The largest count a slot holds.
const COUNT_MAX: u64 = (1 << (STATE_BITS - TIME_BITS)) - 1;

/// Failed authentications per source, in a fixed-size table shared by all workers.
#[derive(Debug)]
pub struct FailureLimiter {
    table: SourceTable,
    allowed: u32,
    window_secs: u64,
    /// The instant second 0 of the window starts refers to: the first `now` seen.
    epoch: OnceLock<Instant>,
}

impl FailureLimiter {
    /// A limiter allowing `allowed` failures per source per `window` (whole seconds, at
    /// least one), in a table of `capacity` slots (0: limiting off) placed by a hash keyed
    /// with `key`.
    pub fn new(allowed: u32, window: Duration, capacity: usize, key: [u8; 16]) -> FailureLimiter {
        FailureLimiter {
            table: SourceTable::new(capacity, key),
            allowed,
            window_secs: window.as_secs().clamp(1, TIME_MASK),
            epoch: OnceLock::new(),
        }
    }

    /// True when `ip`'s source has used up its allowance in the current window.
    pub fn is_limited(&self, now: Instant, ip: IpAddr) -> bool {
        let now = self.seconds(now);
        self.table.get(ip).is_some_and(|state| {
            let (count, start) = decode(state);
            self.live(start, now) && count >= u64::from(self.allowed)
        })
    }

    /// Counts one failure from `ip` at `now` and returns the source's failures in the
    /// current window, this one included (0 when limiting is off). More than `allowed`
    /// means the failure is over the limit.
    pub fn record_failure(&self, now: Instant, ip: IpAddr) -> u32 {
        let now = self.seconds(now);
        let state = self.table.update(ip, |state| {
            Some(match state.map(decode) {
                Some((count, start)) if self.live(start, now) => {
                    encode((count + 1).min(COUNT_MAX), start)
                }
                _ => encode(1, now),
            })
        });
        state.map_or(0, |s| u32::try_from(decode(s).0).unwrap_or(u32::MAX))
    }

    /// True when a source with `failures` failures in its window is over the limit.
    pub fn over(&self, failures: u32) -> bool {
        failures > self.allowed
    }

    /// Sources tracked so far (slots taken); never more than the table's capacity.
    pub fn tracked(&self) -> usize {
        self.table.occupied()
    }

    /// Seconds since the epoch, modulo 2^28.
    fn seconds(&self, now: Instant) -> u64 {
        let epoch = *self.epoch.get_or_init(|| now);
        now.saturating_duration_since(epoch).as_secs() & TIME_MASK
    }

    /// True when a window that started at `start` is still open at `now`.
    fn live(&self, start: u64, now: u64) -> bool {
        (now.wrapping_sub(start) & TIME_MASK) < self.window_secs
    }
}

fn encode(count: u64, start: u64) -> u64 {
    (count << TIME_BITS) | (start & TIME_MASK)
}

fn decode(state: u64) -> (u64, u64) {
    (state >> TIME_BITS, state & TIME_MASK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const WINDOW: Duration = Duration::from_secs(60);

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn limiter(allowed: u32, capacity: usize) -> FailureLimiter {
        FailureLimiter::new(allowed, WINDOW, capacity, [9; 16])
    }

    #[test]
    fn limits_after_allowance_until_window_ends() {
        let t0 = Instant::now();
        let limiter = limiter(3, 16);
        let a = ip("192.0.2.1");
        for n in 1..=3 {
            assert!(!limiter.is_limited(t0, a));
            assert_eq!(limiter.record_failure(t0, a), n);
            assert!(!limiter.over(n));
        }
        assert!(limiter.is_limited(t0, a));
        assert!(limiter.over(limiter.record_failure(t0, a)));
        assert!(limiter.is_limited(t0 + Duration::from_secs(59), a));
        assert!(!limiter.is_limited(t0, ip("192.0.2.2")));
        assert!(!limiter.is_limited(t0 + WINDOW, a));
    }

    #[test]
    fn a_failure_after_the_window_starts_a_new_one() {
        let t0 = Instant::now();
        let limiter = limiter(2, 16);
        let a = ip("192.0.2.1");
        limiter.record_failure(t0, a);
        assert_eq!(limiter.record_failure(t0 + WINDOW, a), 1);
        assert!(!limiter.is_limited(t0 + WINDOW, a));
        limiter.record_failure(t0 + WINDOW + Duration::from_secs(1), a);
        assert!(limiter.is_limited(t0 + WINDOW + Duration::from_secs(1), a));
    }

    #[test]
    fn ipv6_counts_per_64() {
        let t0 = Instant::now();
        let limiter = limiter(2, 16);
        limiter.record_failure(t0, ip("2001:db8:1:2::1"));
        limiter.record_failure(t0, ip("2001:db8:1:2:ffff::9"));
        assert!(limiter.is_limited(t0, ip("2001:db8:1:2::77")));
        assert!(!limiter.is_limited(t0, ip("2001:db8:1:3::1")));
    }

    #[test]
    fn table_is_bounded() {
        let t0 = Instant::now();
        let limiter = limiter(1, 4);
        for i in 0..100u8 {
            limiter.record_failure(t0, IpAddr::from([10, 0, 0, i]));
            assert!(limiter.tracked() <= 4);
        }
    }

    #[test]
    fn zero_capacity_tracks_nothing() {
        let t0 = Instant::now();
        let limiter = limiter(0, 0);
        assert_eq!(limiter.record_failure(t0, ip("192.0.2.1")), 0);
        assert!(!limiter.is_limited(t0, ip("192.0.2.1")));
        assert_eq!(limiter.tracked(), 0);
    }

    // One limit for the whole server: failures counted from several threads (workers) add
    // up exactly.
    #[test]
    fn shared_by_threads_counts_exactly() {
        let t0 = Instant::now();
        let limiter = Arc::new(limiter(1000, 64));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let limiter = limiter.clone();
                std::thread::spawn(move || {
                    (0..250)
                        .filter(|_| !limiter.over(limiter.record_failure(t0, ip("192.0.2.1"))))
                        .count()
                })
            })
            .collect();
        let within: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(within, 1000);
        assert!(limiter.over(limiter.record_failure(t0, ip("192.0.2.1"))));
    }
}
