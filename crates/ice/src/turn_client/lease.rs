//! Something the server grants for a while and the client renews before it lapses: a
//! permission (300 s, RFC 8656 §9) or a channel binding (600 s, §12).

use std::time::{Duration, Instant};

use crate::transaction::later;

/// The part of a lifetime after which the client renews: 80 %, leaving a fifth of the
/// lifetime (60 s of a permission's 300 s) for the retransmissions of the renewal.
pub(super) fn renew_after(lifetime: Duration) -> Duration {
    lifetime / 5 * 4
}

/// Where one grant stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Lease {
    /// Until when the server last confirmed it; `None` before the first confirmation.
    confirmed_until: Option<Instant>,
    /// When a request is due; `None` while one is in flight.
    renew_at: Option<Instant>,
}

impl Lease {
    /// A lease wanted from `now` on: its first request is due at once.
    pub(super) fn wanted(now: Instant) -> Lease {
        Lease {
            confirmed_until: None,
            renew_at: Some(now),
        }
    }

    /// When its next request is due, unless one is in flight.
    pub(super) fn renew_at(&self) -> Option<Instant> {
        self.renew_at
    }

    /// True when a request is due at `now`.
    pub(super) fn is_due(&self, now: Instant) -> bool {
        self.renew_at.is_some_and(|at| at <= now)
    }

    /// Makes a request due at `at` (a retry after a lost renewal).
    pub(super) fn due_at(&mut self, at: Instant) {
        self.renew_at = Some(at);
    }

    /// A request has been sent; no other until it is answered.
    pub(super) fn requested(&mut self) {
        self.renew_at = None;
    }

    /// The server granted it for `lifetime` from `now`; renew at 80 % of that.
    pub(super) fn confirmed(&mut self, now: Instant, lifetime: Duration) {
        self.confirmed_until = Some(later(now, lifetime));
        self.renew_at = Some(later(now, renew_after(lifetime)));
    }

    /// True when the server has confirmed it and the lifetime has not run out.
    pub(super) fn is_live(&self, now: Instant) -> bool {
        self.confirmed_until.is_some_and(|until| now < until)
    }

    /// When it lapses, once confirmed.
    pub(super) fn expires(&self) -> Option<Instant> {
        self.confirmed_until
    }

    /// True once the server has confirmed it at least once.
    pub(super) fn was_confirmed(&self) -> bool {
        self.confirmed_until.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 8656 §9: permissions last 300 s; renewing at 240 s leaves a minute of margin.
    #[test]
    fn renews_at_four_fifths() {
        let t0 = Instant::now();
        let mut lease = Lease::wanted(t0);
        assert!(lease.is_due(t0));
        lease.requested();
        assert!(!lease.is_due(t0 + Duration::from_secs(1000)));
        lease.confirmed(t0, Duration::from_secs(300));
        assert_eq!(lease.renew_at(), Some(t0 + Duration::from_secs(240)));
        assert!(lease.is_live(t0 + Duration::from_secs(299)));
        assert!(!lease.is_live(t0 + Duration::from_secs(300)));
    }
}
