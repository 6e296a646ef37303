//! A sans-IO TURN client (RFC 8656) over UDP, TCP or TLS with long-term credentials (RFC 8489
//! §9.2).
//!
//! [`TurnClient`] holds one allocation on one server: it sends the Allocate at once, answers
//! the 401 challenge (REALM, NONCE, PASSWORD-ALGORITHMS, USERHASH when the nonce cookie asks
//! for it) and 438 Stale Nonce, retransmits on the RFC 8489 §6.2.1 schedule
//! ([`RetransmitTiming`](crate::RetransmitTiming)), checks MESSAGE-INTEGRITY(-SHA256) on every
//! response to a signed request and discards forged ones, refreshes the allocation (at 80 %
//! of its lifetime), permissions (300 s) and channels (600 s), follows one signed 300 (Try
//! Alternate) to the server its ALTERNATE-SERVER names (RFC 8656 §7.2, RFC 8489 §10;
//! [`TurnEvent::Redirected`]), frames data as Send
//! indications or ChannelData, reads Data indications and ChannelData, and deallocates.
//! Permissions and channels are bounded ([`TurnClientConfig`], 64 each by default). Over a
//! stream (`TurnClientConfig::stream`) ChannelData is padded (RFC 8656 §12.5) and the caller
//! frames what it reads with `stun::framing`; with `TurnClientConfig::diagnostics` each
//! challenge, refresh and failed request is reported too (what `turnpike check` prints).
//!
//! Like the rest of the crate it owns no socket, never calls `Instant::now()` and draws its
//! randomness (transaction ids) from a `StdRng` seeded by the caller.
//!
//! ## Run loop
//! ```text
//! let mut turn = TurnClient::new(now(), server, TurnCredentials { username, password }, seed);
//! loop {
//!     while let Some(t) = turn.poll_transmit() { socket.send_to(&t.payload, t.destination); }
//!     while let Some(event) = turn.poll_event() {
//!         match event {
//!             TurnEvent::Allocated { relayed, .. } => turn.bind_channel(now(), peer),
//!             TurnEvent::AllocationFailed(error) => return Err(error),
//!             _ => {}
//!         }
//!     }
//!     select! {
//!         sleep_until(turn.poll_timeout()) => turn.handle_timeout(now()),
//!         (n, from) = socket.recv_from(&mut buf) => match turn.handle_input(now(), from, &buf[..n]) {
//!             TurnInput::Data { peer, payload } => deliver(peer, payload),
//!             TurnInput::NotMine => { /* STUN for someone else, or not from the server */ }
//!             TurnInput::Consumed => {}
//!         },
//!         data = app.recv() => {
//!             let t = turn.send_to(now(), peer, &data);          // ChannelData or Send indication
//!             socket.send_to(&t.payload, t.destination);
//!         }
//!     }
//! }
//! ```
//! `crates/ice/examples/turn_probe.rs` is this loop over a blocking `std::net::UdpSocket`.
//! Tests drive it with a hand-moved clock against `turn::relay::TurnServer`.

mod allocation;
mod channels;
mod client;
mod config;
mod credentials;
mod error;
mod event;
mod framing;
mod lease;
mod permissions;
mod request;
mod response;
mod transaction;
mod transmit;

pub use channels::{CHANNEL_LIFETIME, FIRST_CHANNEL, LAST_CHANNEL};
pub use client::TurnClient;
pub use config::{TurnClientConfig, DEFAULT_TABLE_LIMIT};
pub use credentials::TurnCredentials;
pub use error::TurnError;
pub use event::TurnEvent;
pub use permissions::PERMISSION_LIFETIME;
pub use request::RequestKind as TurnRequest;
pub use transmit::{TurnInput, TurnTransmit};
