//! How NAT behaviour discovery runs: probe timing, pacing and the binding-lifetime search.

use std::time::Duration;

use crate::timing::RetransmitTiming;

/// How [`NatDiscovery`](super::NatDiscovery) runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatConfig {
    /// The retransmission schedule of every probe. Filtering and hairpinning probes are
    /// expected to go unanswered, so their `give_up_after` is what discovery waits for them:
    /// the default sends at 0, 0.5 and 1.5 s and gives up after 3 s.
    pub probe_timing: RetransmitTiming,
    /// The least time between the starts of two probes. RFC 5780 §5: "A client SHOULD NOT
    /// generate more than ten new STUN transactions per second"; the default is 100 ms.
    pub pace: Duration,
    /// Measure the binding lifetime (RFC 5780 §4.6); `None` (the default) skips it.
    pub lifetime: Option<LifetimeConfig>,
}

impl NatConfig {
    /// The default probe timeout.
    pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(3);

    /// The defaults with another probe timeout (the `give_up_after` of every probe).
    pub fn with_probe_timeout(timeout: Duration) -> Self {
        NatConfig {
            probe_timing: RetransmitTiming {
                give_up_after: Some(timeout),
                ..RetransmitTiming::RFC_8489
            },
            ..NatConfig::default()
        }
    }
}

impl Default for NatConfig {
    fn default() -> Self {
        NatConfig {
            probe_timing: RetransmitTiming {
                give_up_after: Some(Self::DEFAULT_PROBE_TIMEOUT),
                ..RetransmitTiming::RFC_8489
            },
            pace: Duration::from_millis(100),
            lifetime: None,
        }
    }
}

/// The binding-lifetime search (RFC 5780 §4.6): waits double from `first_wait` until the
/// binding is found expired or `max_wait` is reached, then a binary search narrows the
/// interval down to `resolution` (or 5 % of the upper bound, whichever is larger).
///
/// Two lifetimes are searched at once, each wait on a fresh binding (a new local port): a
/// *new* binding's (one request and its answer, then silence), and a *refreshed* one's
/// (a second request `warm_up` after the first, then silence). NATs often keep the second
/// longer: Linux conntrack gives 30 s to a flow answered within its first 2 s and 120 s to
/// one still active after that (`nf_conntrack_udp_timeout`, `..._timeout_stream`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LifetimeConfig {
    /// The first wait between the refresh from the primary socket and the check from the
    /// lifetime probe socket.
    pub first_wait: Duration,
    /// The longest wait tried; a binding still alive then is reported as "longer than this".
    pub max_wait: Duration,
    /// Stop once the lifetime is known to within this.
    pub resolution: Duration,
    /// For the refreshed lifetime: the time between a binding's first request and the one
    /// that refreshes it. It must stay below the new-binding lifetime, or the refresh finds
    /// the binding gone and makes a new one.
    pub warm_up: Duration,
}

impl Default for LifetimeConfig {
    /// 1 s, doubling up to 600 s, to within 1 s; refreshed 3 s after creation (past
    /// conntrack's 2 s, well within the 30 s and more NATs keep a new binding).
    fn default() -> Self {
        LifetimeConfig {
            first_wait: Duration::from_secs(1),
            max_wait: Duration::from_secs(600),
            resolution: Duration::from_secs(1),
            warm_up: Duration::from_secs(3),
        }
    }
}
