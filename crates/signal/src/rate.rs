//! A token bucket per connection, kept as one instant (GCRA, the "virtual scheduling" form):
//! `tat` is when the bucket would be full again. A frame is allowed when, after adding its
//! cost, the bucket holds at most `burst` frames' worth. Time is injected.

use std::time::{Duration, Instant};

/// `rate` frames per second sustained, `burst` at once.
#[derive(Debug, Clone)]
pub(crate) struct RateLimiter {
    /// Time one frame costs (1 s / rate); `None`: unlimited.
    cost: Option<Duration>,
    /// The bucket's size in time (`burst` × `cost`).
    size: Duration,
    /// Theoretical arrival time: the bucket is full again at this instant.
    tat: Instant,
}

impl RateLimiter {
    /// A full bucket at `now`. A `rate` of 0 means no limit; a `burst` of 0 counts as 1.
    pub(crate) fn new(now: Instant, rate: u32, burst: u32) -> RateLimiter {
        let cost = (rate > 0).then(|| Duration::from_secs(1) / rate);
        let size = cost
            .and_then(|c| c.checked_mul(burst.max(1)))
            .unwrap_or(Duration::MAX);
        RateLimiter {
            cost,
            size,
            tat: now,
        }
    }

    /// Takes one frame's worth from the bucket; false (and nothing taken) when it is empty.
    pub(crate) fn allow(&mut self, now: Instant) -> bool {
        let Some(cost) = self.cost else {
            return true;
        };
        let Some(tat) = self.tat.max(now).checked_add(cost) else {
            return false;
        };
        if tat.duration_since(now) > self.size {
            return false;
        }
        self.tat = tat;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill_at_rate() {
        // docs/signaling.md rate-limited: 50 frames/s, burst 100.
        let t0 = Instant::now();
        let mut bucket = RateLimiter::new(t0, 50, 100);
        assert_eq!((0..150).filter(|_| bucket.allow(t0)).count(), 100);
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!((0..150).filter(|_| bucket.allow(t1)).count(), 50);
        let t2 = t1 + Duration::from_millis(20);
        assert!(bucket.allow(t2));
        assert!(!bucket.allow(t2));
    }

    #[test]
    fn quiet_connection_refills_to_burst_only() {
        let t0 = Instant::now();
        let mut bucket = RateLimiter::new(t0, 10, 5);
        let later = t0 + Duration::from_secs(3600);
        assert_eq!((0..100).filter(|_| bucket.allow(later)).count(), 5);
    }

    #[test]
    fn zero_rate_is_unlimited() {
        let t0 = Instant::now();
        let mut bucket = RateLimiter::new(t0, 0, 0);
        assert!((0..10_000).all(|_| bucket.allow(t0)));
    }
}
