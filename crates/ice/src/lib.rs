//! # turnpike-ice: the client side
//!
//! Sans-IO client protocol logic: STUN URIs (RFC 7064), client transactions (RFC 8489
//! §6.2) and NAT behaviour discovery on top of them ([`nat`], RFC 5780 §4), a TURN client
//! ([`turn_client`], RFC 8656: allocation, permissions, channels, refreshes), and the ICE
//! agent ([`agent`], RFC 8445) built on the same transactions.
//!
//! ## Contract
//! - The library owns no socket, spawns no task, never calls `Instant::now()` and draws no
//!   randomness: every input carries `now`, and transaction ids come from the caller.
//! - A [`BindingTransaction`] encodes its request once, at creation, into a buffer it owns;
//!   retransmissions lend out the same bytes and allocate nothing.
//! - Responses are matched by transaction id; everything else offered to
//!   [`BindingTransaction::handle_input`] is ignored, so one socket can serve many
//!   transactions by offering each datagram to each until one takes it.
//!
//! ## Run loop
//! ```text
//! let mut tx = BindingTransaction::new(now, server, random_id, &options, timing)?;
//! loop {
//!     if let Some(result) = tx.poll_result() { break result; }
//!     while let Some(t) = tx.poll_transmit(now()) { socket.send_to(t.payload, t.destination); }
//!     select! {
//!         sleep_until(tx.poll_timeout()) => tx.handle_timeout(now()),
//!         (n, from) = socket.recv_from(&mut buf) => { tx.handle_input(now(), from, &buf[..n]); }
//!     }
//! }
//! ```
//! Tests drive the same loop with a hand-moved clock, and answer with
//! `turn::BindingServer` instead of a socket.
//!
//! Every core here — [`BindingTransaction`], [`NatDiscovery`], [`TurnClient`], [`IceAgent`] —
//! also implements the run-loop contract all Turnpike cores share ([`sansio::Core`], in
//! [`run_loop`]): a [`sansio::Datagram`] in, transmits and events out, one timer; the
//! transaction's and NAT discovery's one event is their result. A driver written against the
//! trait runs any of them (`tests/run_loop.rs` runs a Binding transaction and a TURN
//! allocation with one generic driver, against the servers driven the same way).

pub mod agent;
pub mod error;
pub mod nat;
pub mod request;
pub mod response;
pub mod run_loop;
pub mod timing;
pub mod transaction;
pub mod transmit;
pub mod turn_client;
pub mod uri;

pub use agent::{
    AgentConfig, AgentInput, AgentTransmit, Candidate, CandidateError, CandidateKind, CheckCounts,
    IceAgent, IceConnectionState, IceEvent, Transport, MAX_REMOTE_CANDIDATES,
};
pub use error::{MalformedResponse, TransactionError};
pub use nat::{NatConfig, NatDiscovery, NatReport, NatSocket, NatTransmit};
pub use request::{RequestOptions, MAX_REQUEST_LEN};
pub use response::BindingResponse;
pub use timing::RetransmitTiming;
pub use transaction::BindingTransaction;
pub use transmit::Transmit;
pub use turn_client::{
    TurnClient, TurnClientConfig, TurnCredentials, TurnError, TurnEvent, TurnInput, TurnRequest,
    TurnTransmit,
};
pub use uri::{StunUri, TurnUri, UriError, STUNS_PORT, STUN_PORT};
