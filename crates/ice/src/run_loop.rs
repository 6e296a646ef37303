//! The run-loop contract ([`sansio::Core`]) of this crate's cores: the STUN transaction, NAT
//! discovery, the TURN client and the ICE agent all take a [`Datagram`] and a clock, answer
//! what they can at once, and queue the rest as transmits and events. Each implementation
//! only names its types; the methods are the cores' own.

use std::net::SocketAddr;
use std::time::Instant;

use sansio::{Core, Datagram};

use crate::agent::{AgentInput, AgentTransmit, IceAgent, IceEvent};
use crate::error::TransactionError;
use crate::nat::{NatDiscovery, NatReport, NatSocket, NatTransmit};
use crate::response::BindingResponse;
use crate::transaction::BindingTransaction;
use crate::transmit::Transmit;
use crate::turn_client::{TurnClient, TurnEvent, TurnInput, TurnTransmit};

/// One Binding transaction (RFC 8489 §6.2): its event is its one result.
impl Core for BindingTransaction {
    type Input<'a> = Datagram<'a>;
    /// True when the datagram was this transaction's response.
    type Handled<'a> = bool;
    type Transmit<'a> = Transmit<'a>;
    type Event = Result<BindingResponse, TransactionError>;

    fn handle_input<'a>(&mut self, now: Instant, input: Datagram<'a>) -> bool
    where
        Self: 'a,
    {
        BindingTransaction::handle_input(self, now, input.from, input.bytes)
    }

    fn handle_timeout(&mut self, now: Instant) {
        BindingTransaction::handle_timeout(self, now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        BindingTransaction::poll_timeout(self)
    }

    fn poll_transmit(&mut self, now: Instant) -> Option<Transmit<'_>> {
        BindingTransaction::poll_transmit(self, now)
    }

    fn poll_event(&mut self) -> Option<Self::Event> {
        self.poll_result()
    }
}

/// NAT behaviour discovery (RFC 5780 §4) over its sockets: its event is the report.
impl Core for NatDiscovery {
    type Input<'a> = Datagram<'a, NatSocket>;
    /// True when the datagram answered a probe under way.
    type Handled<'a> = bool;
    type Transmit<'a> = NatTransmit<'a>;
    type Event = NatReport;

    fn handle_input<'a>(&mut self, now: Instant, input: Datagram<'a, NatSocket>) -> bool
    where
        Self: 'a,
    {
        NatDiscovery::handle_input(self, now, input.local, input.from, input.bytes)
    }

    fn handle_timeout(&mut self, now: Instant) {
        NatDiscovery::handle_timeout(self, now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        NatDiscovery::poll_timeout(self)
    }

    fn poll_transmit(&mut self, now: Instant) -> Option<NatTransmit<'_>> {
        NatDiscovery::poll_transmit(self, now)
    }

    fn poll_event(&mut self) -> Option<NatReport> {
        self.poll_result()
    }
}

/// The TURN client (RFC 8656): relayed data comes back from the input at once.
impl Core for TurnClient {
    type Input<'a> = Datagram<'a>;
    type Handled<'a> = TurnInput<'a>;
    type Transmit<'a> = TurnTransmit;
    type Event = TurnEvent;

    fn handle_input<'a>(&mut self, now: Instant, input: Datagram<'a>) -> TurnInput<'a>
    where
        Self: 'a,
    {
        TurnClient::handle_input(self, now, input.from, input.bytes)
    }

    fn handle_timeout(&mut self, now: Instant) {
        TurnClient::handle_timeout(self, now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        TurnClient::poll_timeout(self)
    }

    fn poll_transmit(&mut self, _: Instant) -> Option<TurnTransmit> {
        TurnClient::poll_transmit(self)
    }

    fn poll_event(&mut self) -> Option<TurnEvent> {
        TurnClient::poll_event(self)
    }
}

/// The ICE agent (RFC 8445) over its host sockets, named by their addresses: application data
/// comes back from the input at once.
impl Core for IceAgent {
    type Input<'a> = Datagram<'a, SocketAddr>;
    type Handled<'a> = AgentInput<'a>;
    type Transmit<'a> = AgentTransmit;
    type Event = IceEvent;

    fn handle_input<'a>(&mut self, now: Instant, input: Datagram<'a, SocketAddr>) -> AgentInput<'a>
    where
        Self: 'a,
    {
        IceAgent::handle_input(self, now, input.local, input.from, input.bytes)
    }

    fn handle_timeout(&mut self, now: Instant) {
        IceAgent::handle_timeout(self, now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        IceAgent::poll_timeout(self)
    }

    fn poll_transmit(&mut self, _: Instant) -> Option<AgentTransmit> {
        IceAgent::poll_transmit(self)
    }

    fn poll_event(&mut self) -> Option<IceEvent> {
        IceAgent::poll_event(self)
    }
}
