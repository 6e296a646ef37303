//! When a client transaction over UDP sends, resends and gives up (RFC 8489 §6.2.1).

use std::time::Duration;

/// The retransmission schedule of a client transaction over an unreliable transport.
///
/// RFC 8489 §6.2.1: the first retransmission comes one RTO after the request, each interval
/// doubles, at most Rc requests are sent in all, and after the last one the client waits
/// Rm × RTO before giving up. With the defaults (RTO 500 ms, Rc 7, Rm 16) requests leave at
/// 0, 500, 1500, 3500, 7500, 15500 and 31500 ms, and the transaction fails at 39500 ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetransmitTiming {
    /// The initial retransmission timeout, RTO. RFC 8489 §6.2.1: it SHOULD be larger than
    /// 500 ms unless the RTT is known.
    pub initial_rto: Duration,
    /// Rc: how many requests are sent in all, the first included. 0 counts as 1.
    pub max_sends: u32,
    /// Rm: after the last request, wait this many initial RTOs for an answer.
    pub last_wait_factor: u32,
    /// An upper bound on the interval between two sends; RFC 8489 sets none, RFC 6298 §2.5
    /// allows one. `None`: intervals keep doubling.
    pub max_interval: Option<Duration>,
    /// Give up this long after the first send, even if the schedule has requests or waiting
    /// left (a caller's overall deadline). `None`: the schedule alone decides.
    pub give_up_after: Option<Duration>,
}

impl RetransmitTiming {
    /// RFC 8489 §6.2.1 defaults: RTO 500 ms, Rc 7, Rm 16, no cap, no overall deadline.
    pub const RFC_8489: RetransmitTiming = RetransmitTiming {
        initial_rto: Duration::from_millis(500),
        max_sends: 7,
        last_wait_factor: 16,
        max_interval: None,
        give_up_after: None,
    };

    /// The defaults with another initial RTO.
    pub const fn with_rto(initial_rto: Duration) -> Self {
        RetransmitTiming {
            initial_rto,
            ..Self::RFC_8489
        }
    }

    /// Rc, at least one.
    pub fn sends(&self) -> u32 {
        self.max_sends.max(1)
    }

    /// How long to wait after send number `sent` (1 for the first) before the next send, or,
    /// after the last send, before giving up. Not shortened by `give_up_after`.
    pub fn wait_after(&self, sent: u32) -> Duration {
        if sent >= self.sends() {
            return self.initial_rto.saturating_mul(self.last_wait_factor);
        }
        let doublings = sent.saturating_sub(1);
        let factor = 1u32.checked_shl(doublings).unwrap_or(u32::MAX);
        let interval = self.initial_rto.saturating_mul(factor);
        match self.max_interval {
            Some(cap) => interval.min(cap),
            None => interval,
        }
    }

    /// When each request leaves, as offsets from the first, if no answer comes and the sends
    /// are made on time; requests past `give_up_after` are left out.
    pub fn send_offsets(&self) -> impl Iterator<Item = Duration> + '_ {
        let mut at = Duration::ZERO;
        (1..=self.sends())
            .map(move |sent| {
                let this = at;
                at = at.saturating_add(self.wait_after(sent));
                this
            })
            .take_while(move |offset| self.give_up_after.is_none_or(|limit| *offset < limit))
    }

    /// How long after the first send an unanswered transaction fails.
    pub fn total(&self) -> Duration {
        let last = self.sends();
        let mut natural = Duration::ZERO;
        let mut sent = 1;
        while sent < last {
            let wait = self.wait_after(sent);
            if sent + 1 < last && self.wait_after(sent + 1) == wait {
                // Steady (capped, saturated or zero): the remaining intervals are all `wait`.
                natural = natural.saturating_add(wait.saturating_mul(last - sent));
                break;
            }
            natural = natural.saturating_add(wait);
            sent += 1;
        }
        natural = natural.saturating_add(self.wait_after(last));
        match self.give_up_after {
            Some(limit) => natural.min(limit),
            None => natural,
        }
    }
}

impl Default for RetransmitTiming {
    fn default() -> Self {
        Self::RFC_8489
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    // RFC 8489 §6.2.1: "requests would be sent at times 0 ms, 500 ms, 1500 ms, 3500 ms,
    // 7500 ms, 15500 ms, and 31500 ms. If the client has not received a response after
    // 39500 ms, the client will consider the transaction to have timed out."
    #[test]
    fn rfc_8489_example_schedule() {
        let timing = RetransmitTiming::default();
        let offsets: Vec<_> = timing.send_offsets().collect();
        assert_eq!(offsets, [0, 500, 1500, 3500, 7500, 15500, 31500].map(ms));
        assert_eq!(timing.total(), ms(39500));
    }

    #[test]
    fn cap_and_deadline_shorten_the_schedule() {
        let capped = RetransmitTiming {
            max_interval: Some(ms(1600)),
            ..RetransmitTiming::default()
        };
        let offsets: Vec<_> = capped.send_offsets().collect();
        assert_eq!(offsets, [0, 500, 1500, 3100, 4700, 6300, 7900].map(ms));
        let bounded = RetransmitTiming {
            give_up_after: Some(ms(5000)),
            ..RetransmitTiming::default()
        };
        assert_eq!(bounded.send_offsets().count(), 4);
        assert_eq!(bounded.total(), ms(5000));
    }

    #[test]
    fn degenerate_values_do_not_panic() {
        let zero = RetransmitTiming {
            max_sends: 0,
            ..RetransmitTiming::default()
        };
        assert_eq!(zero.send_offsets().count(), 1);
        assert_eq!(zero.total(), ms(8000));
        let huge = RetransmitTiming {
            max_sends: u32::MAX,
            initial_rto: Duration::MAX,
            ..RetransmitTiming::default()
        };
        assert_eq!(huge.wait_after(100), Duration::MAX);
        assert_eq!(huge.total(), Duration::MAX);
        let many = RetransmitTiming {
            max_sends: u32::MAX,
            max_interval: Some(ms(1)),
            ..RetransmitTiming::default()
        };
        assert!(many.total() > Duration::from_secs(3600));
    }
}
