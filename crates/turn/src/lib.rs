//! # turnpike-turn: the server core
//!
//! Sans-IO protocol logic for the Turnpike server. Today: STUN Binding (RFC 8489, classic
//! RFC 3489 clients, RFC 5780 behaviour discovery). The TURN relay (RFC 8656) builds here.
//!
//! ## Run loop
//! The I/O layer reads a packet, calls [`BindingServer::handle`] with the socket it came
//! in on, the source address and a buffer for the answer, and sends the returned
//! [`Transmit`] (if any) from the socket it names. The core owns no socket, reads no clock
//! and allocates nothing per request.

pub mod auth;
pub mod binding;
pub mod budget;
pub mod policy;
pub mod relay;
pub mod sockets;
pub mod source_table;

pub use binding::{BindingConfig, BindingServer};
pub use sockets::{ServerSockets, SocketId, Transmit, Transport};
