//! A set of keyed deadlines, earliest first: at most one deadline per key, in a
//! deterministic order (by instant, then by key).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

/// Deadlines keyed by `K`.
#[derive(Debug, Clone)]
pub(crate) struct Deadlines<K> {
    /// (deadline, key), earliest first.
    by_time: BTreeSet<(Instant, K)>,
    /// Each key's deadline.
    by_key: BTreeMap<K, Instant>,
}

impl<K: Ord + Copy> Deadlines<K> {
    /// No deadlines.
    pub(crate) fn new() -> Self {
        Deadlines {
            by_time: BTreeSet::new(),
            by_key: BTreeMap::new(),
        }
    }

    /// Sets `key`'s deadline to `at`, replacing any earlier one.
    pub(crate) fn schedule(&mut self, key: K, at: Instant) {
        if let Some(old) = self.by_key.insert(key, at) {
            self.by_time.remove(&(old, key));
        }
        self.by_time.insert((at, key));
    }

    /// Removes `key`'s deadline, if any.
    pub(crate) fn cancel(&mut self, key: K) {
        if let Some(old) = self.by_key.remove(&key) {
            self.by_time.remove(&(old, key));
        }
    }

    /// `key`'s deadline.
    pub(crate) fn get(&self, key: K) -> Option<Instant> {
        self.by_key.get(&key).copied()
    }

    /// The earliest deadline.
    pub(crate) fn first(&self) -> Option<Instant> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// Removes and returns the key with the earliest deadline, if that is at or before `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<K> {
        let &(at, key) = self.by_time.first()?;
        if at > now {
            return None;
        }
        self.by_time.pop_first();
        self.by_key.remove(&key);
        Some(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn earliest_first_and_rescheduling_replaces() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut d = Deadlines::new();
        d.schedule(1, t0 + 3 * s);
        d.schedule(2, t0 + s);
        d.schedule(1, t0 + 2 * s);
        assert_eq!(d.first(), Some(t0 + s));
        assert_eq!(d.pop_due(t0), None);
        assert_eq!(d.pop_due(t0 + 5 * s), Some(2));
        assert_eq!(d.get(1), Some(t0 + 2 * s));
        d.cancel(1);
        assert_eq!(d.pop_due(t0 + 5 * s), None);
        assert_eq!(d.first(), None);
    }
}
