//! One probe of NAT behaviour discovery: a Binding transaction sent from one of the client's
//! sockets, or, for hairpinning, a request that should come back to its sender.

use std::net::SocketAddr;
use std::time::Instant;

use stun::{Message, MessageType};

use super::report::{NatSocket, ProbeOutcome, Test};
use crate::error::TransactionError;
use crate::transaction::BindingTransaction;

/// A probe under way.
#[derive(Debug, Clone)]
pub(crate) struct Probe {
    pub(crate) test: Test,
    pub(crate) socket: NatSocket,
    pub(crate) started: Instant,
    tx: BindingTransaction,
    outcome: Option<ProbeOutcome>,
}

impl Probe {
    pub(crate) fn new(test: Test, socket: NatSocket, now: Instant, tx: BindingTransaction) -> Self {
        Probe {
            test,
            socket,
            started: now,
            tx,
            outcome: None,
        }
    }

    pub(crate) fn transaction(&self) -> &BindingTransaction {
        &self.tx
    }

    /// True if a request is due now; the caller then sends [`BindingTransaction::request`].
    pub(crate) fn take_send(&mut self, now: Instant) -> bool {
        self.outcome.is_none() && self.tx.poll_transmit(now).is_some()
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        if self.outcome.is_some() {
            return None;
        }
        self.tx.poll_timeout()
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if self.outcome.is_none() {
            self.tx.handle_timeout(now);
            self.collect();
        }
    }

    /// Offers a datagram that arrived on `socket` from `from`; true when it belongs to this
    /// probe.
    pub(crate) fn handle_input(
        &mut self,
        now: Instant,
        socket: NatSocket,
        from: SocketAddr,
        bytes: &[u8],
    ) -> bool {
        if self.outcome.is_some() {
            return false;
        }
        if self.test == Test::Hairpin && socket == NatSocket::Primary && self.is_own_request(bytes)
        {
            self.outcome = Some(ProbeOutcome::Hairpinned { from });
            return true;
        }
        if !self.tx.handle_input(now, from, bytes) {
            return false;
        }
        if let Some(result) = self.tx.poll_result() {
            self.outcome = Some(match result {
                Ok(response) => ProbeOutcome::Answered { response, socket },
                Err(error) => outcome_of(error),
            });
        }
        true
    }

    /// Our own request, back from the NAT: same message type and transaction id.
    fn is_own_request(&self, bytes: &[u8]) -> bool {
        Message::decode(bytes).is_ok_and(|message| {
            let header = message.header();
            header.message_type == MessageType::BINDING_REQUEST
                && header.transaction_id == self.tx.transaction_id()
        })
    }

    /// Moves the transaction's result, if any, into `outcome`.
    fn collect(&mut self) {
        if let Some(result) = self.tx.poll_result() {
            self.outcome = Some(match result {
                // Only `handle_input` produces answers, and it records the socket itself.
                Ok(response) => ProbeOutcome::Answered {
                    response,
                    socket: self.socket,
                },
                Err(error) => outcome_of(error),
            });
        }
    }

    /// The outcome, once the probe is over.
    pub(crate) fn take_outcome(&mut self) -> Option<ProbeOutcome> {
        self.outcome.take()
    }
}

fn outcome_of(error: TransactionError) -> ProbeOutcome {
    match error {
        TransactionError::Timeout { sends } => ProbeOutcome::NoAnswer { sends },
        other => ProbeOutcome::Failed(other),
    }
}
