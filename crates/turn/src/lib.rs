//! # turnpike-turn: the server core
//!
//! Sans-IO protocol logic for the Turnpike server: STUN Binding ([`binding`]: RFC 8489,
//! classic RFC 3489 clients, RFC 5780 behaviour discovery) and the TURN relay ([`relay`]:
//! RFC 8656 allocations, permissions, channels and the data path, RFC 6062 TCP allocations,
//! RFC 8489 ALTERNATE-SERVER), with what they need around them: long-term and REST
//! (time-limited) credentials, nonces and failure limits ([`auth`]), the amplification
//! budget of unauthenticated sources ([`budget`], [`source_table`]) and the peer-address
//! policy ([`policy`]).
//!
//! ## Run loop
//! The I/O layer reads a packet and gives it to a core with the time, the socket it came in
//! on and its source, plus a buffer for the answer:
//! - [`BindingServer::handle`] returns the [`Transmit`] to send (if any), from the socket it
//!   names. It is stateless; every worker shares one.
//! - [`relay::TurnServer::handle_client`] returns a [`relay::ClientOutcome`]: a reply, or a
//!   relay decision (relay address, peer, payload range: the payload is sent straight from
//!   the receive buffer). [`relay::TurnServer::handle_peer`] frames a peer datagram in place
//!   in its receive slot (ChannelData header or Data indication) and names the client.
//!   [`relay::TurnServer::poll_timeout`] / [`relay::TurnServer::handle_timeout`] expire
//!   allocations, permissions and channels; [`relay::TurnServer::poll_event`] yields what an
//!   operator sees (session logs, errors).
//! - The core never calls into I/O: it asks for relay sockets through its output. After
//!   every call, drain [`relay::TurnServer::poll_command`] and execute each
//!   [`relay::RelayCommand`] (bind, close, TCP connect, TCP close). The core picks the port
//!   and claims it; the driver answers a bind (`Open`) with
//!   [`relay::TurnServer::relay_opened`], and that call's outcome is the answer to the
//!   Allocate that waited for it (or nothing yet, when another port or family is asked for
//!   next). A driver that answers every `Open` before it returns to its loop sends the
//!   Allocate's answer within the same turn, as if the bind were synchronous.
//!
//! On the relay path, addresses are typed by what they are (RFC 8656 §2): the client's
//! transport address ([`relay::ClientAddr`], the client side of a [`relay::FiveTuple`]), a
//! peer's ([`relay::PeerAddr`]: XOR-PEER-ADDRESS, the source of a datagram on a relay
//! socket) and an allocation's relayed transport address ([`relay::RelayAddr`]), beside
//! [`relay::AllocationId`] and the channel numbers and reservation tokens of `stun`. The I/O
//! layer converts at its edge (`PeerAddr::from(source)`, `.get()` for a send).
//!
//! Both servers also follow the run-loop contract every Turnpike core shares
//! ([`sansio::Core`], in [`run_loop`]): one input type ([`run_loop::TurnServerInput`]: a
//! client's packet, a peer's datagram, a bind's result; [`run_loop::BindingInput`]), answers
//! in place, transmits and events drained after every call, one timer.
//!
//! The cores own no socket, read no clock, draw randomness only from an injected RNG, and
//! allocate nothing per relayed packet (a counting-allocator test checks it).

pub mod auth;
pub mod binding;
pub mod budget;
pub mod policy;
pub mod relay;
pub mod run_loop;
pub mod sockets;
pub mod source_table;

pub use binding::{BindingConfig, BindingServer};
pub use sockets::{ServerSockets, SocketId, Transmit, Transport};
