//! The search for a NAT binding's lifetime (RFC 5780 §4.6): which waits to try, given the
//! waits after which a binding was found alive or expired.
//!
//! Every wait is tried on a binding of its own (see [`super::lifetime_run`]), so the waits
//! of the growing phase (first wait, doubled up to the longest) can all run at once; the
//! narrowing phase then bisects one wait at a time.

use std::time::Duration;

use super::config::LifetimeConfig;

/// What is known about a binding's lifetime: it outlived `alive` and did not outlive
/// `expired`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    /// The longest wait after which the binding was still there (zero if none was).
    pub alive: Duration,
    /// The shortest wait after which it was gone; `None` if it never was, up to the longest
    /// wait tried (then `alive` is that wait).
    pub expired: Option<Duration>,
}

/// The search state: bounds so far and the configuration.
#[derive(Debug, Clone)]
pub(crate) struct LifetimeSearch {
    config: LifetimeConfig,
    known: Lifetime,
}

impl LifetimeSearch {
    pub(crate) fn new(config: LifetimeConfig) -> Self {
        LifetimeSearch {
            config,
            known: Lifetime {
                alive: Duration::ZERO,
                expired: None,
            },
        }
    }

    /// The bounds found so far.
    pub(crate) fn known(&self) -> Lifetime {
        self.known
    }

    /// The waits worth trying now: while no binding has been seen to expire, every wait of
    /// the doubling ladder (first wait, doubled, up to the longest) that is still above the
    /// longest wait known alive; after that, the one bisecting wait. Empty when the search is
    /// over.
    pub(crate) fn wanted(&self) -> Vec<Duration> {
        if self.known.expired.is_some() {
            return self.next_wait().into_iter().collect();
        }
        let mut waits = Vec::new();
        let mut wait = self.next_wait();
        while let Some(w) = wait {
            waits.push(w);
            let next = w.saturating_mul(2).min(self.config.max_wait);
            wait = (next > w).then_some(next);
        }
        waits
    }

    /// True while a result for `wait` would still narrow the bounds.
    pub(crate) fn informative(&self, wait: Duration) -> bool {
        wait > self.known.alive && self.known.expired.is_none_or(|e| wait < e)
    }

    /// The next wait to try, or `None` when the search is over.
    pub(crate) fn next_wait(&self) -> Option<Duration> {
        let LifetimeConfig {
            first_wait,
            max_wait,
            resolution,
            ..
        } = self.config;
        let first_wait = first_wait.max(Duration::from_millis(1)).min(max_wait);
        match self.known.expired {
            // Growing: double until the binding expires or the cap is reached.
            None if self.known.alive >= max_wait => None,
            None if self.known.alive.is_zero() => Some(first_wait),
            None => Some(self.known.alive.saturating_mul(2).min(max_wait)),
            // Narrowing: bisect until the interval is small enough.
            Some(expired) => {
                let width = expired.saturating_sub(self.known.alive);
                let tolerance = resolution.max(expired / 20);
                if width <= tolerance {
                    None
                } else {
                    Some(self.known.alive + width / 2)
                }
            }
        }
    }

    /// Records that after `wait` the binding was `alive` (or not).
    pub(crate) fn record(&mut self, wait: Duration, alive: bool) {
        if alive {
            self.known.alive = self.known.alive.max(wait);
        } else {
            self.known.expired = Some(self.known.expired.map_or(wait, |e| e.min(wait)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// Runs the search against a binding that lives `lifetime`; returns the waits tried.
    fn search(config: LifetimeConfig, lifetime: Duration) -> (Vec<Duration>, Lifetime) {
        let mut search = LifetimeSearch::new(config);
        let mut waits = Vec::new();
        while let Some(wait) = search.next_wait() {
            assert!(waits.len() < 64, "the search must end");
            waits.push(wait);
            search.record(wait, wait < lifetime);
        }
        (waits, search.known())
    }

    // RFC 5780 §4.6: "a binary search through T, arriving eventually at the value where the
    // response is not received for any timer greater than T, but is received for any timer
    // less than T".
    #[test]
    fn doubles_then_bisects() {
        let (waits, known) = search(LifetimeConfig::default(), Duration::from_millis(30_500));
        assert_eq!(
            waits,
            [1, 2, 4, 8, 16, 32, 24, 28, 30, 31].map(secs).to_vec()
        );
        assert_eq!(
            known,
            Lifetime {
                alive: secs(30),
                expired: Some(secs(31))
            }
        );
    }

    #[test]
    fn stops_at_the_longest_wait() {
        let config = LifetimeConfig {
            max_wait: secs(20),
            ..LifetimeConfig::default()
        };
        let (waits, known) = search(config, secs(1000));
        assert_eq!(waits, [1, 2, 4, 8, 16, 20].map(secs).to_vec());
        assert_eq!(
            known,
            Lifetime {
                alive: secs(20),
                expired: None
            }
        );
    }

    #[test]
    fn shorter_than_the_first_wait() {
        let (waits, known) = search(LifetimeConfig::default(), Duration::from_millis(300));
        assert_eq!(waits, [secs(1)]);
        assert_eq!(
            known,
            Lifetime {
                alive: Duration::ZERO,
                expired: Some(secs(1))
            }
        );
    }

    // The growing phase runs its waits at once, each on a binding of its own; a result
    // drops the waits it makes pointless.
    #[test]
    fn the_ladder_is_wanted_at_once_then_one_bisecting_wait() {
        let config = LifetimeConfig {
            max_wait: secs(20),
            ..LifetimeConfig::default()
        };
        let mut search = LifetimeSearch::new(config);
        assert_eq!(search.wanted(), [1, 2, 4, 8, 16, 20].map(secs).to_vec());
        search.record(secs(4), true);
        assert_eq!(search.wanted(), [8, 16, 20].map(secs).to_vec());
        assert!(!search.informative(secs(2)) && search.informative(secs(8)));
        search.record(secs(8), false);
        assert!(!search.informative(secs(16)));
        assert_eq!(search.wanted(), [secs(6)]);
        search.record(secs(6), true);
        search.record(secs(7), true);
        assert_eq!(search.wanted(), Vec::<Duration>::new());
    }

    #[test]
    fn coarse_for_long_lifetimes() {
        // 5 % of the upper bound: within 6 s of a 2-minute lifetime.
        let (waits, known) = search(LifetimeConfig::default(), secs(121));
        assert_eq!(
            waits,
            [1, 2, 4, 8, 16, 32, 64, 128, 96, 112, 120, 124]
                .map(secs)
                .to_vec()
        );
        assert_eq!(known.alive, secs(120));
        assert_eq!(known.expired, Some(secs(124)));
    }
}
