//! The signaling hub: rooms where WebRTC peers meet to exchange offers, answers and ICE
//! candidates, as a sans-IO state machine.
//!
//! ## Contract
//! The wire protocol is `docs/signaling.md`; this crate implements it exactly. In short:
//! every frame is one JSON object with a `type`. A connection `join`s one room and gets a
//! server-assigned random peer id, the ids of the others (in join order), a resume token and
//! its ICE servers; the others see `peer-joined`. Directed frames (`offer`, `answer`,
//! `candidate`, `bye`, `message`) go to one named peer of the same room, `broadcast` to all
//! the others; the hub stamps `from` itself and copies `data` byte for byte (it is never
//! decoded or re-encoded). Limits (room capacity, frame size, rate, queue length) answer
//! with typed `error` frames ([`ErrorCode`]). A peer whose connection drops without `leave`
//! stays in its room for a grace window, collecting frames, and may `join` again with its
//! resume token; otherwise the others see `peer-left`.
//!
//! ## Run loop
//! The hub follows the contract of every Turnpike core ([`sansio::Core`], with [`HubInput`]
//! for what happens to a WebSocket and [`Output`] as its transmits); with its own names:
//! ```text
//! WebSocket opened      → hub.connect(now, conn, ice)      (ice: per-connection TURN credentials)
//! text frame arrived    → hub.handle_text(now, unix_now, conn, text)
//! socket closed         → hub.disconnect(now, conn)         (also for a slow consumer the I/O layer drops)
//! timer fired           → hub.handle_timeout(now)
//! after every call      → while let Some(out) = hub.poll_output() {
//!                             Send { conn, text }    → queue a text frame on conn
//!                             Close { conn, reason } → close conn with reason.code(); the hub forgot it
//!                         }
//!                         re-arm the timer at hub.poll_timeout()
//! ```
//! The hub never calls `Instant::now()`, never reads the wall clock and never draws
//! randomness of its own: time (`Instant` for heartbeat, rate and grace; Unix seconds for
//! token expiry) and the RNG (peer ids, resume tokens) are injected, so tests move time by
//! hand and are deterministic. Iteration order is deterministic too (peers and broadcasts in
//! join order). Nothing a client sends can make it panic.
//!
//! The I/O layer keeps a bounded outgoing queue per connection (`queue_length` frames) and
//! drops a connection that does not read (a slow consumer) by calling [`Hub::disconnect`];
//! it should cap WebSocket message size a little above `max_message_bytes`.

mod config;
mod deadlines;
mod error;
mod hub;
mod ids;
mod inbound;
mod outbound;
mod output;
mod rate;
mod run_loop;
pub mod token;

pub use config::{Grant, HubConfig, IceConfig, IceMinter, IceSource};
pub use error::ErrorCode;
pub use hub::{Hub, HubCounters, HubStats};
pub use output::{CloseReason, ConnId, Output};
pub use run_loop::HubInput;
pub use token::TokenError;
