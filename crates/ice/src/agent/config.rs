//! The agent's configuration and its RFC defaults.

use std::net::SocketAddr;
use std::time::Duration;

use crate::timing::RetransmitTiming;
use crate::turn_client::TurnCredentials;

/// How an [`super::IceAgent`] behaves. [`AgentConfig::new`] gives the RFC defaults; set
/// fields on it, or write `AgentConfig { stun_servers, ..AgentConfig::new(true) }` (the
/// struct is deliberately not `#[non_exhaustive]`, so that this works outside the crate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    /// Start as the controlling agent (RFC 8445 §6.1.1: the offerer, for full ICE on both
    /// sides). A role conflict may still switch it (§7.3.1.1).
    pub controlling: bool,
    /// STUN servers to learn server-reflexive candidates from (§5.1.1.2).
    pub stun_servers: Vec<SocketAddr>,
    /// TURN servers (UDP) to allocate a relayed candidate on, one allocation per host
    /// candidate of the same address family and server (§5.1.1.2).
    pub turn_servers: Vec<(SocketAddr, TurnCredentials)>,
    /// Ta, the pacing of new checks (§14.2: 50 ms by default).
    pub ta: Duration,
    /// Retransmissions of a connectivity check (§14.3). Default: RTO 500 ms, doubling up to
    /// 1.6 s, 7 sends, a pair fails after 9.9 s without an answer.
    pub check_timing: RetransmitTiming,
    /// Retransmissions of a Binding request to a STUN server while gathering: as checks.
    pub gather_timing: RetransmitTiming,
    /// Retransmissions of one consent check (RFC 7675 §5.1): RTO 500 ms, 4 sends, 3.5 s.
    pub consent_check_timing: RetransmitTiming,
    /// The controlling agent nominates the best valid pair once no pair of higher priority
    /// is still being checked, or this long after the first valid pair, whichever comes
    /// first (the stopping criterion of regular nomination, §8.1.1).
    pub nomination_delay: Duration,
    /// Mean interval between consent checks on the selected pair (RFC 7675 §5.1: 5 s, each
    /// interval drawn uniformly from 0.8 to 1.2 times it).
    pub consent_interval: Duration,
    /// No consent response for this long: the connection is [`super::IceConnectionState::Disconnected`]
    /// (a few missed consent checks; it recovers when a response comes).
    pub disconnected_timeout: Duration,
    /// No consent response for this long: consent is lost and the agent fails (RFC 7675
    /// §5.1: 30 s).
    pub consent_timeout: Duration,
}

/// The default check schedule: 0, 0.5, 1.5, 3.1, 4.7, 6.3, 7.9 s, give up at 9.9 s.
pub const CHECK_TIMING: RetransmitTiming = RetransmitTiming {
    initial_rto: Duration::from_millis(500),
    max_sends: 7,
    last_wait_factor: 4,
    max_interval: Some(Duration::from_millis(1600)),
    give_up_after: None,
};

/// The default consent-check schedule: 0, 0.5, 1.5, 2.5 s, give up at 3.5 s.
pub const CONSENT_CHECK_TIMING: RetransmitTiming = RetransmitTiming {
    initial_rto: Duration::from_millis(500),
    max_sends: 4,
    last_wait_factor: 2,
    max_interval: Some(Duration::from_millis(1000)),
    give_up_after: None,
};

impl AgentConfig {
    /// The defaults: no servers, Ta 50 ms, consent every ~5 s, Disconnected after 10 s
    /// without consent, Failed after 30 s.
    pub fn new(controlling: bool) -> Self {
        AgentConfig {
            controlling,
            stun_servers: Vec::new(),
            turn_servers: Vec::new(),
            ta: Duration::from_millis(50),
            check_timing: CHECK_TIMING,
            gather_timing: CHECK_TIMING,
            consent_check_timing: CONSENT_CHECK_TIMING,
            nomination_delay: Duration::from_millis(1000),
            consent_interval: Duration::from_secs(5),
            disconnected_timeout: Duration::from_secs(10),
            consent_timeout: Duration::from_secs(30),
        }
    }
}
