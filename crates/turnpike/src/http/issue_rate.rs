//! How many TURN credentials one source may be handed per minute (`credential-rate`), so that a
//! caller entitled to credentials cannot mint thousands of them, each one a quota-free way into
//! the relay.
//!
//! One token bucket per source ([`Source`]: an IPv4 address, an IPv6 /64), kept as one instant
//! (GCRA, "virtual scheduling": `tat` is when the bucket is full again). The table is bounded:
//! when full, entries whose bucket has refilled (they carry no information) are swept; if none
//! has, new sources are refused until one does, so spoofed or rotating sources cost the
//! attacker, never the server's memory.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::server::source::Source;

/// Sources tracked at most: 64 Ki entries of ~40 bytes, a few MiB at worst.
pub const MAX_SOURCES: usize = 64 * 1024;
/// The least time between two sweeps of a full table, so that a flood of new sources does not
/// make every request walk the table.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Credentials per source per minute.
#[derive(Debug)]
pub struct IssueRate {
    /// What one credential costs (a minute / rate).
    cost: Duration,
    /// The bucket's size in time (`burst` × `cost`).
    size: Duration,
    /// The buckets, and when the table was last swept.
    table: Mutex<(HashMap<Source, Instant>, Option<Instant>)>,
    /// Bound of the table.
    capacity: usize,
}

impl IssueRate {
    /// `per_minute` credentials per source per minute, in bursts of as many; at most
    /// `capacity` sources tracked.
    pub fn new(per_minute: u32, capacity: usize) -> IssueRate {
        let per_minute = per_minute.max(1);
        let cost = Duration::from_secs(60) / per_minute;
        IssueRate {
            cost,
            size: cost * per_minute,
            table: Mutex::new((HashMap::new(), None)),
            capacity: capacity.max(1),
        }
    }

    /// Takes one credential from `ip`'s bucket at `now`; `Err(wait)` (nothing taken) when it
    /// is empty, with how long until the next one is allowed.
    pub fn take(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let source = Source::from(ip);
        let mut guard = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let (table, last_sweep) = &mut *guard;
        if !table.contains_key(&source) && table.len() >= self.capacity {
            let due = last_sweep.is_none_or(|at| now.duration_since(at) >= SWEEP_INTERVAL);
            if due {
                table.retain(|_, tat| *tat > now);
                *last_sweep = Some(now);
            }
            if table.len() >= self.capacity {
                return Err(self.cost);
            }
        }
        let tat = table.get(&source).copied().unwrap_or(now).max(now) + self.cost;
        let ahead = tat.duration_since(now);
        if ahead > self.size {
            return Err(ahead - self.size);
        }
        table.insert(source, tat);
        Ok(())
    }

    /// Sources tracked now (for tests).
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.table.lock().map_or(0, |t| t.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_burst_of_rate_then_one_per_interval() {
        let limit = IssueRate::new(20, 100);
        let t0 = Instant::now();
        for n in 0..20 {
            assert_eq!(limit.take(ip("192.0.2.1"), t0), Ok(()), "credential {n}");
        }
        let wait = limit.take(ip("192.0.2.1"), t0).unwrap_err();
        assert_eq!(wait, Duration::from_secs(3), "60 s / 20");
        // Another source has its own bucket.
        assert_eq!(limit.take(ip("192.0.2.2"), t0), Ok(()));
        assert!(limit.take(ip("192.0.2.1"), t0 + wait).is_ok());
        assert!(limit.take(ip("192.0.2.1"), t0 + wait).is_err());
    }

    #[test]
    fn an_ipv6_64_is_one_source_and_mapped_ipv4_is_ipv4() {
        let limit = IssueRate::new(2, 100);
        let t0 = Instant::now();
        assert!(limit.take(ip("2001:db8:1:2::1"), t0).is_ok());
        assert!(limit.take(ip("2001:db8:1:2:ffff::9"), t0).is_ok());
        assert!(
            limit.take(ip("2001:db8:1:2:abcd::1"), t0).is_err(),
            "same /64"
        );
        assert!(limit.take(ip("2001:db8:1:3::1"), t0).is_ok(), "next /64");
        assert!(limit.take(ip("198.51.100.7"), t0).is_ok());
        assert!(limit.take(ip("::ffff:198.51.100.7"), t0).is_ok());
        assert!(
            limit.take(ip("::ffff:198.51.100.7"), t0).is_err(),
            "same IPv4"
        );
    }

    #[test]
    fn the_table_is_bounded_and_refilled_buckets_make_room() {
        let limit = IssueRate::new(60, 3);
        let t0 = Instant::now();
        for n in 1..=3 {
            assert!(limit.take(ip(&format!("10.0.0.{n}")), t0).is_ok());
        }
        // Full, nobody refilled yet: a new source waits; known ones still count normally.
        assert!(limit.take(ip("10.0.0.4"), t0).is_err());
        assert!(limit.take(ip("10.0.0.1"), t0).is_ok());
        assert_eq!(limit.tracked(), 3);
        // A second later the buckets of 10.0.0.2 and .3 (one taken each) have refilled.
        let later = t0 + Duration::from_secs(2);
        assert!(limit.take(ip("10.0.0.4"), later).is_ok());
        assert!(limit.tracked() <= 3);
    }
}
