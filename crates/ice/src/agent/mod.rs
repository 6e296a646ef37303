//! # The ICE agent (RFC 8445)
//!
//! A sans-IO, full (not lite) ICE agent for one component over UDP, with regular
//! nomination, trickle (RFC 8838), consent freshness (RFC 7675) and relayed candidates
//! through [`crate::turn_client::TurnClient`] (RFC 8656).
//!
//! - [`candidate`]: the RFC 8839 `candidate` attribute, priorities (§5.1.2) and foundations
//!   (§5.1.1.3).
//! - [`pair`], [`checklist`]: pair priority (§6.1.2.3), pruning (§6.1.2.4), the frozen
//!   algorithm (§6.1.2.6), the triggered-check queue (§7.3.1.4).
//! - [`check`]: the Binding requests and responses of connectivity checks (§7.1–§7.3).
//! - [`consent`]: consent timers (RFC 7675 §5.1).
//! - [`IceAgent`] ties them together; the private `pairing`, `outbound` and `inbound`
//!   modules hold its bookkeeping, its own sends and its answers to the network.
//!
//! ## Contract
//! - The agent owns no socket and never reads the clock: every call carries `now`. All
//!   randomness (ufrag, password, tie-breaker, transaction ids, consent jitter) comes from a
//!   `StdRng` seeded by the caller.
//! - Every host socket is given to the agent with [`IceAgent::add_host_candidate`]; every
//!   datagram received on one goes to [`IceAgent::handle_input`] with the socket's address,
//!   and every [`AgentTransmit`] names the host socket to send from.
//! - Each local candidate has a base: a host socket, or a TURN allocation made from one. The
//!   agent wraps what it sends from a relayed base with `TurnClient::send_to`, hands what
//!   the TURN server sends to `TurnClient::handle_input`, creates a permission for every
//!   remote candidate it pairs with a relayed one, and binds a channel for a selected
//!   relayed pair. The caller sees only host-socket datagrams.
//! - Defaults ([`AgentConfig::new`]): Ta 50 ms (§14.2), check retransmissions at 0, 0.5,
//!   1.5, 3.1, 4.7, 6.3, 7.9 s and failure at 9.9 s, nomination once no better pair is
//!   pending or 1 s after the first valid pair, consent checks every 5 s ± 20 %,
//!   Disconnected after 10 s and Failed after 30 s without a consent response.
//!
//! ## Run loop
//! ```text
//! let mut agent = IceAgent::new(now(), AgentConfig::new(controlling), seed);
//! agent.add_host_candidate(now(), socket.local_addr());
//! signal(agent.local_credentials()); // and every IceEvent::LocalCandidate
//! agent.set_remote_credentials(ufrag, pwd);      // from signalling, whenever they come
//! agent.add_remote_candidate(now(), candidate);  // trickled, any time
//! loop {
//!     while let Some(t) = agent.poll_transmit() { socket(t.source).send_to(&t.payload, t.destination); }
//!     while let Some(event) = agent.poll_event() { /* signal candidates, watch the state */ }
//!     select! {
//!         sleep_until(agent.poll_timeout()) => agent.handle_timeout(now()),
//!         (n, from) = socket.recv_from(&mut buf) => match agent.handle_input(now(), local, from, &buf[..n]) {
//!             AgentInput::Data(payload) => deliver(payload),
//!             AgentInput::Consumed | AgentInput::Ignored => {}
//!         },
//!         data = app.recv() => if let Some(t) = agent.send_data(now(), &data) { send(t) },
//!     }
//! }
//! ```
//! `crates/ice/examples/ice_peer.rs` is this loop over a blocking `std::net::UdpSocket`;
//! `crates/ice/tests/agent/` drives two agents through a simulated network with a
//! hand-moved clock.

#[allow(clippy::module_inception)]
mod agent;
pub mod candidate;
pub mod check;
pub mod checklist;
pub mod config;
pub mod consent;
pub mod event;
mod inbound;
mod outbound;
pub mod pair;
mod pairing;

pub use agent::{IceAgent, MAX_REMOTE_CANDIDATES};
pub use candidate::{Candidate, CandidateError, CandidateKind, Transport};
pub use checklist::CheckCounts;
pub use config::AgentConfig;
pub use event::{AgentInput, AgentTransmit, IceConnectionState, IceEvent};
