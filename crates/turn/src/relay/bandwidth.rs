//! A per-allocation bandwidth cap: a token bucket over bytes, refilled with injected time.

use std::time::Instant;

/// Bytes per second with a one-second burst.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: u64,
    tokens: u64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket allowing `rate` bytes per second.
    pub fn new(now: Instant, rate: u64) -> Self {
        TokenBucket {
            rate,
            tokens: rate,
            last: now,
        }
    }

    /// Takes `bytes` tokens if there are enough; false means "over the cap, drop".
    pub fn take(&mut self, now: Instant, bytes: usize) -> bool {
        let elapsed = now.saturating_duration_since(self.last);
        // Refill only in whole bytes, and keep the remainder of time for the next call.
        let refill = (elapsed.as_nanos() * u128::from(self.rate) / 1_000_000_000) as u64;
        if refill > 0 {
            self.tokens = (self.tokens + refill).min(self.rate);
            self.last = now;
        }
        let bytes = bytes as u64;
        if self.tokens >= bytes {
            self.tokens -= bytes;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn caps_and_refills() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(t0, 1000);
        assert!(b.take(t0, 600));
        assert!(!b.take(t0, 600));
        assert!(b.take(t0 + Duration::from_millis(200), 600));
        assert!(!b.take(t0 + Duration::from_millis(200), 1));
        // Never more than one second of burst.
        assert!(b.take(t0 + Duration::from_secs(100), 1000));
        assert!(!b.take(t0 + Duration::from_secs(100), 1));
    }
}
