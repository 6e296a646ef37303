//! The servers under the run-loop contract ([`sansio::Core`]) that every protocol core of
//! Turnpike follows.
//!
//! Both answer in place: a request's answer is written into a buffer the driver passes with
//! it, and [`Core::handle_input`] says where it goes — the hot path copies nothing and queues
//! nothing. What does not answer an input comes out through the queues: for the TURN server,
//! the messages of RFC 6062 control connections as transmits and the session events
//! ([`TurnEvent`]) as events. The Binding server is stateless: it has no timer and no queue.
//!
//! The TURN server has two more output queues, for the driver that owns its sockets: the relay
//! sockets to open or close ([`TurnServer::poll_command`]; an `Open` is answered as an input,
//! [`TurnServerInput::RelayOpened`], before the next one) and, with the kernel fast path, the
//! channels to mirror below it ([`TurnServer::poll_fast_path`]). They are drained after every
//! call like the contract's own queues, commands first.

use std::net::SocketAddr;
use std::time::Instant;

use sansio::Core;

use crate::binding::BindingServer;
use crate::relay::{
    ClientOutcome, ControlMessage, FiveTuple, OpenTicket, PeerAddr, PeerOutcome, RelayAddr,
    RelayOpenError, TurnEvent, TurnServer,
};
use crate::sockets::{SocketId, Transmit};

/// One input of [`TurnServer`] as a [`Core`]: a client's packet, a peer's datagram, or the
/// driver's answer to a [`crate::relay::RelayCommand::Open`].
#[derive(Debug)]
pub enum TurnServerInput<'a> {
    /// A packet from a client ([`TurnServer::handle_client`]); the answer goes into `out`.
    Client {
        /// Wall-clock seconds, for credentials.
        unix_now: u64,
        /// Its 5-tuple.
        five_tuple: FiveTuple,
        /// The listener socket it arrived on.
        local: SocketId,
        /// The packet.
        packet: &'a [u8],
        /// Where the answer is written.
        out: &'a mut [u8],
    },
    /// A datagram from `peer` on relay socket `relay` ([`TurnServer::handle_peer`]), its
    /// payload at `buf[PEER_HEADROOM..PEER_HEADROOM + len]`, framed in place.
    Peer {
        /// The relay socket.
        relay: RelayAddr,
        /// The peer.
        peer: PeerAddr,
        /// The receive buffer, with headroom.
        buf: &'a mut [u8],
        /// The payload's length.
        len: usize,
    },
    /// The result of binding a relay socket ([`TurnServer::relay_opened`]); the Allocate's
    /// answer, if it is due, goes into `out`.
    RelayOpened {
        /// The `Open` answered.
        ticket: OpenTicket,
        /// The bind's result.
        result: Result<(), RelayOpenError>,
        /// Where the answer is written.
        out: &'a mut [u8],
    },
}

/// What [`TurnServer`] says about one [`TurnServerInput`] at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnServerHandled {
    /// For a client's packet or a relay socket's bind: what to send, or relay.
    Client(ClientOutcome),
    /// For a peer's datagram: where its framed bytes go, or `None` (dropped, counted).
    Peer(Option<PeerOutcome>),
}

impl Core for TurnServer {
    type Input<'a> = TurnServerInput<'a>;
    type Handled<'a> = TurnServerHandled;
    /// A message for an RFC 6062 control connection.
    type Transmit<'a> = ControlMessage;
    /// A session event (allocation made or ended, refusal, …) for logs and metrics.
    type Event = TurnEvent;

    fn handle_input<'a>(&mut self, now: Instant, input: TurnServerInput<'a>) -> TurnServerHandled
    where
        Self: 'a,
    {
        match input {
            TurnServerInput::Client {
                unix_now,
                five_tuple,
                local,
                packet,
                out,
            } => TurnServerHandled::Client(
                self.handle_client(now, unix_now, five_tuple, local, packet, out),
            ),
            TurnServerInput::Peer {
                relay,
                peer,
                buf,
                len,
            } => TurnServerHandled::Peer(self.handle_peer(now, relay, peer, buf, len)),
            TurnServerInput::RelayOpened {
                ticket,
                result,
                out,
            } => TurnServerHandled::Client(self.relay_opened(now, ticket, result, out)),
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        TurnServer::handle_timeout(self, now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        TurnServer::poll_timeout(self)
    }

    fn poll_transmit(&mut self, _: Instant) -> Option<ControlMessage> {
        self.poll_control_message()
    }

    fn poll_event(&mut self) -> Option<TurnEvent> {
        TurnServer::poll_event(self)
    }
}

/// One Binding request of [`BindingServer`] as a [`Core`], over UDP: its answer is charged to
/// the source's amplification budget.
#[derive(Debug)]
pub struct BindingInput<'a> {
    /// The listener socket it arrived on.
    pub local: SocketId,
    /// Its source.
    pub source: SocketAddr,
    /// The request.
    pub request: &'a [u8],
    /// Where the answer is written.
    pub out: &'a mut [u8],
}

/// The stateless Binding server (RFC 8489 §6.3, RFC 5780): every answer comes out of the input;
/// no timer, no transmit, no event.
impl Core for BindingServer {
    type Input<'a> = BindingInput<'a>;
    /// The answer in `out`, or `None` (dropped: not a Binding request, or over budget).
    type Handled<'a> = Option<Transmit>;
    type Transmit<'a> = std::convert::Infallible;
    type Event = std::convert::Infallible;

    fn handle_input<'a>(&mut self, now: Instant, input: BindingInput<'a>) -> Option<Transmit>
    where
        Self: 'a,
    {
        self.handle_udp(now, input.local, input.source, input.request, input.out)
    }

    fn handle_timeout(&mut self, _: Instant) {}

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    fn poll_transmit(&mut self, _: Instant) -> Option<std::convert::Infallible> {
        None
    }

    fn poll_event(&mut self) -> Option<std::convert::Infallible> {
        None
    }
}
