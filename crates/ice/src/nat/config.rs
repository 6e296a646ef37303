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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LifetimeConfig {
    /// The first wait between the refresh from the primary socket and the check from the
    /// lifetime probe socket.
    pub first_wait: Duration,
    /// The longest wait tried; a binding still alive then is reported as "longer than this".
    pub max_wait: Duration,
    /// Stop once the lifetime is known to within this.
    pub resolution: Duration,
}

impl Default for LifetimeConfig {
    /// 1 s, doubling up to 600 s, to within 1 s.
    fn default() -> Self {
        LifetimeConfig {
            first_wait: Duration::from_secs(1),
            max_wait: Duration::from_secs(600),
            resolution: Duration::from_secs(1),
        }
    }
}
