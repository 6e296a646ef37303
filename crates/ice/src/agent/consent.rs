//! Consent freshness on the selected pair (RFC 7675): when to check, and what silence means.

use std::time::{Duration, Instant};

use rand::Rng;

/// The consent timers of the selected pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consent {
    /// The last time a consent (or check) response from the peer arrived.
    pub last_seen: Instant,
    /// When the next consent check leaves.
    pub next_check: Instant,
}

/// What the silence since the last response means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Within `disconnected_timeout`.
    Fresh,
    /// Past `disconnected_timeout`, within `consent_timeout`.
    Stale,
    /// Past `consent_timeout`: consent lost (RFC 7675 §5.1).
    Lost,
}

impl Consent {
    /// Consent starts fresh when the pair is selected (its check just succeeded).
    pub fn start(now: Instant, interval: Duration, rng: &mut impl Rng) -> Self {
        Consent {
            last_seen: now,
            next_check: now + jittered(interval, rng),
        }
    }

    /// Schedules the next check after one leaves at `now`.
    pub fn checked(&mut self, now: Instant, interval: Duration, rng: &mut impl Rng) {
        self.next_check = now + jittered(interval, rng);
    }

    /// Classifies the silence at `now`.
    pub fn freshness(&self, now: Instant, disconnected: Duration, lost: Duration) -> Freshness {
        let silent = now.saturating_duration_since(self.last_seen);
        if silent >= lost {
            Freshness::Lost
        } else if silent >= disconnected {
            Freshness::Stale
        } else {
            Freshness::Fresh
        }
    }
}

/// RFC 7675 §5.1: each interval is drawn uniformly from 0.8 to 1.2 times the base interval,
/// so that consent checks of many sessions do not synchronise.
pub fn jittered(interval: Duration, rng: &mut impl Rng) -> Duration {
    let factor: f64 = rng.gen_range(0.8..=1.2);
    interval.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    // RFC 7675 §5.1: 0.8 to 1.2 times the interval; 30 s without a response loses consent.
    #[test]
    fn jitter_bounds_and_freshness() {
        let mut rng = StdRng::from_seed([3; 32]);
        let base = Duration::from_secs(5);
        for _ in 0..1000 {
            let d = jittered(base, &mut rng);
            assert!(d >= Duration::from_secs(4) && d <= Duration::from_secs(6));
        }
        let start = Instant::now();
        let consent = Consent::start(start, base, &mut rng);
        let (dis, lost) = (Duration::from_secs(10), Duration::from_secs(30));
        assert_eq!(
            consent.freshness(start + Duration::from_secs(9), dis, lost),
            Freshness::Fresh
        );
        assert_eq!(
            consent.freshness(start + Duration::from_secs(10), dis, lost),
            Freshness::Stale
        );
        assert_eq!(
            consent.freshness(start + Duration::from_secs(30), dis, lost),
            Freshness::Lost
        );
    }
}
