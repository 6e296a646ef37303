//! Drain: refuse new allocations on every worker, turn `/healthz` to 503, and wait for the
//! existing allocations to end (or for `drain-timeout`) before the process exits 0.
//!
//! [`Control::begin_drain`] does the first two at once, from a signal or the admin API; the
//! serve loop then keeps a [`DrainWatch`] and asks it, a few times a second, whether to stop.

use std::time::{Duration, Instant};

use tracing::info;

use super::Control;

/// How often the remaining allocations are logged during a drain.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(10);

impl Control {
    /// Begins a drain, once: new Allocates get 300 with `alternate-server` (or 508), and
    /// `/healthz` answers 503. Returns false when a drain was already under way.
    pub fn begin_drain(&self, cause: &'static str) -> bool {
        let (alternates, timeout) = {
            let config = self.config();
            (config.alternate_server.clone(), config.drain_timeout)
        };
        if self.health.set_draining() {
            return false;
        }
        // Waiting for each worker's answer: once this returns, every core refuses.
        for worker in self.workers.iter() {
            let alternates = alternates.clone();
            worker.call_blocking(move |state| state.core.start_draining(&alternates));
        }
        info!(
            cause,
            allocations = self.allocations(),
            drain_timeout_secs = timeout.as_secs(),
            alternate_servers = alternates.len(),
            "draining: new allocations are refused, existing ones are served until they end"
        );
        self.drain_requested.notify_one();
        true
    }

    /// Resolves when a drain has begun through [`Control::begin_drain`] (a permit is kept if
    /// nobody was waiting).
    pub async fn drain_begun(&self) {
        self.drain_requested.notified().await;
    }

    /// The watch the serve loop keeps once a drain has begun.
    pub fn drain_watch(&self) -> DrainWatch {
        let now = Instant::now();
        DrainWatch {
            deadline: now + self.config().drain_timeout,
            next_progress: now + PROGRESS_INTERVAL,
        }
    }
}

/// When a drain under way ends.
#[derive(Debug)]
pub struct DrainWatch {
    deadline: Instant,
    next_progress: Instant,
}

/// Why a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainEnd {
    /// No allocation remains.
    Drained,
    /// `drain-timeout` passed with allocations left.
    TimedOut(usize),
}

impl DrainWatch {
    /// Whether the drain is over now, given the allocations left; logs the count every
    /// [`PROGRESS_INTERVAL`].
    pub fn check(&mut self, now: Instant, allocations: usize) -> Option<DrainEnd> {
        if allocations == 0 {
            info!("drain finished: no allocation left");
            return Some(DrainEnd::Drained);
        }
        if now >= self.deadline {
            info!(
                allocations,
                "drain-timeout reached: stopping with allocations left"
            );
            return Some(DrainEnd::TimedOut(allocations));
        }
        if now >= self.next_progress {
            self.next_progress = now + PROGRESS_INTERVAL;
            info!(
                allocations,
                remaining_secs = self.deadline.saturating_duration_since(now).as_secs(),
                "draining"
            );
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch(start: Instant, timeout: Duration) -> DrainWatch {
        DrainWatch {
            deadline: start + timeout,
            next_progress: start + PROGRESS_INTERVAL,
        }
    }

    #[test]
    fn a_drain_ends_with_the_last_allocation_or_at_its_deadline() {
        let start = Instant::now();
        let mut w = watch(start, Duration::from_secs(60));
        assert_eq!(w.check(start, 3), None);
        assert_eq!(w.check(start + Duration::from_secs(59), 1), None);
        assert_eq!(
            w.check(start + Duration::from_secs(59), 0),
            Some(DrainEnd::Drained)
        );
        assert_eq!(
            w.check(start + Duration::from_secs(60), 2),
            Some(DrainEnd::TimedOut(2))
        );
        // drain-timeout 0: over at the first look, unless nothing is left anyway.
        let mut now = watch(start, Duration::ZERO);
        assert_eq!(now.check(start, 5), Some(DrainEnd::TimedOut(5)));
        assert_eq!(now.check(start, 0), Some(DrainEnd::Drained));
    }

    #[test]
    fn progress_is_logged_once_per_interval() {
        let start = Instant::now();
        let mut w = watch(start, Duration::from_secs(3600));
        let later = start + PROGRESS_INTERVAL;
        assert_eq!(w.check(later, 1), None);
        assert_eq!(w.next_progress, later + PROGRESS_INTERVAL);
        assert_eq!(w.check(later + Duration::from_secs(1), 1), None);
        assert_eq!(w.next_progress, later + PROGRESS_INTERVAL);
    }
}
