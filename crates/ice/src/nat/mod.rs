//! NAT behaviour discovery (RFC 5780 §4), and the classic NAT type of RFC 3489 §10.1.
//!
//! [`NatDiscovery`] is a state machine over several
//! [`BindingTransaction`](crate::BindingTransaction)s: it decides which probe to send from which of the client's
//! sockets, and reads the answers (or their absence) into a [`NatReport`]: the public address,
//! the mapping (§4.3) and filtering (§4.4) behaviour, hairpinning (RFC 4787 §6), optionally
//! the binding lifetime (§4.6), and the RFC 3489 name. Like the rest of the crate it owns no
//! socket and reads no clock.
//!
//! ## Run loop
//! ```text
//! let mut nat = NatDiscovery::new(now(), config, servers, primary.local_addr(), random_id);
//! loop {
//!     if let Some(report) = nat.poll_result() { break report; }
//!     while let Some(t) = nat.poll_transmit(now()) {
//!         socket(t.socket).send_to(t.payload, t.destination);   // Primary or LifetimeProbe
//!     }
//!     select! {
//!         sleep_until(nat.poll_timeout()) => nat.handle_timeout(now()),
//!         (n, from) = primary.recv_from(&mut buf) =>
//!             { nat.handle_input(now(), NatSocket::Primary, from, &buf[..n]); }
//!         (n, from) = lifetime_probe.recv_from(&mut buf) =>
//!             { nat.handle_input(now(), NatSocket::LifetimeProbe, from, &buf[..n]); }
//!     }
//! }
//! ```
//! The lifetime sockets are used only when [`NatConfig::lifetime`] is set: the probe socket,
//! and one fresh socket per trial ([`NatSocket::LifetimeBinding`]), bound on first use;
//! their answers come in through `handle_input` like the others.
//!
//! ## Limits
//! RFC 5780 §4: the results are the NAT's behaviour at the moment of the test, for the port
//! used, and "can be regarded as upper bounds". Filtering tests are sensitive to earlier
//! traffic from the same port, so use a fresh socket for each discovery.

mod behaviour;
mod config;
mod discovery;
mod lifetime;
mod lifetime_run;
mod probe;
mod report;

pub use behaviour::{Filtering, Mapping, NatType};
pub use config::{LifetimeConfig, NatConfig};
pub use discovery::{NatDiscovery, NatTransmit};
pub use lifetime::Lifetime;
pub use report::{
    BindingAge, Lifetimes, NatReport, NatSocket, Note, ProbeOutcome, ProbeRecord,
    ServerObservation, Test, Undecided,
};
