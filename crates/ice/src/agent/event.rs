//! What the agent tells its caller: events, states, inputs' fate and datagrams to send.

use std::net::SocketAddr;

use super::candidate::Candidate;

/// The connection state (the `RTCIceConnectionState` values a caller needs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IceConnectionState {
    /// No check sent yet.
    New,
    /// Checks are running, nothing selected yet.
    Checking,
    /// A nominated pair is selected and consent is fresh.
    Connected,
    /// Consent has not been confirmed for a while; it may come back.
    Disconnected,
    /// Every pair failed, or consent was lost (RFC 7675 §5.1). Terminal.
    Failed,
}

/// Something the caller should know.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IceEvent {
    /// A candidate to signal to the peer (trickle ICE, RFC 8838).
    LocalCandidate(Candidate),
    /// Every gathering transaction has ended (signal end-of-candidates).
    GatheringComplete,
    /// The connection state changed.
    StateChanged(IceConnectionState),
    /// The pair application data now goes over.
    SelectedPair {
        /// Our candidate (host, server- or peer-reflexive, or relayed).
        local: Candidate,
        /// The peer's candidate.
        remote: Candidate,
    },
}

/// What became of a datagram given to [`super::IceAgent::handle_input`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentInput<'a> {
    /// A STUN message for the agent (check, response, gathering, TURN control).
    Consumed,
    /// Neither STUN for us nor data from a known remote candidate: drop it.
    Ignored,
    /// Application data from the peer.
    Data(&'a [u8]),
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentTransmit {
    /// The host socket to send from (a base given to [`super::IceAgent::add_host_candidate`]).
    pub source: SocketAddr,
    /// Where to send it.
    pub destination: SocketAddr,
    /// The bytes.
    pub payload: Vec<u8>,
}
