//! Allocate requests waiting for a relay socket (RFC 8656 §7.2): the core has claimed an
//! address and asked the I/O layer to bind it ([`RelayCommand::Open`]); the Allocate is
//! answered when the driver reports with [`TurnServer::relay_opened`].
//!
//! What finishing needs is kept here: the 5-tuple and listener, a copy of the request (decoded
//! again to answer it: requests are small), its authentication, the lifetime and transport
//! asked for, and the `RelaySearch` (`relay_search.rs`) with the addresses chosen so far. A
//! ticket the driver never answers is dropped by [`TurnServer::handle_timeout`] after
//! [`OPEN_TIMEOUT`], its claims and quota given back.

use std::time::{Duration, Instant};

use stun::{Message, Method};

use super::allocation::RelayTransport;
use super::commands::{OpenTicket, RelayCommand, SocketKind};
use super::five_tuple::FiveTuple;
use super::ports::RelayOpenError;
use super::relay_search::{RelaySearch, Step};
use super::server::{ClientOutcome, TurnServer};
use crate::auth::Authenticated;
use crate::sockets::{SocketId, Transmit};

/// How long the core waits for the answer to a [`RelayCommand::Open`] before it gives the
/// Allocate up (without an answer: the client retransmits, RFC 8489 §6.2.1).
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(5);

/// An Allocate waiting for its relay socket.
#[derive(Debug)]
pub(super) struct PendingAllocate {
    pub(super) five_tuple: FiveTuple,
    /// The listener the request came in on (the answer leaves from it).
    pub(super) local: SocketId,
    /// The request, to decode again when answering.
    pub(super) request: Vec<u8>,
    pub(super) auth: Authenticated,
    pub(super) lifetime: Duration,
    pub(super) transport: RelayTransport,
    pub(super) search: RelaySearch,
    /// Given up at this instant when still waiting.
    pub(super) deadline: Instant,
    /// The client went (its connection closed): clean up when the driver answers.
    pub(super) cancelled: bool,
}

impl TurnServer {
    /// The driver's answer to [`RelayCommand::Open`] `ticket`: `Ok` when the socket is bound
    /// (it is the core's now, until a [`RelayCommand::Close`]), else the bind's error. The
    /// outcome is the Allocate's answer, as [`TurnServer::handle_client`] would have given it,
    /// or [`ClientOutcome::Nothing`] while another `Open` is queued (another port after
    /// EADDRINUSE, the second family of a dual allocation) or when `ticket` is unknown (timed
    /// out, or answered already).
    pub fn relay_opened(
        &mut self,
        now: Instant,
        ticket: OpenTicket,
        result: Result<(), RelayOpenError>,
        out: &mut [u8],
    ) -> ClientOutcome {
        let Some(mut pending) = self.pending_opens.remove(&ticket) else {
            return ClientOutcome::Nothing;
        };
        if pending.cancelled {
            let (_, in_flight) = pending.search.held();
            if let (Ok(()), Some(addr)) = (result, in_flight) {
                self.command(RelayCommand::Close(addr));
            }
            self.abandon(pending);
            return ClientOutcome::Nothing;
        }
        let step = self.resume_search(now, &mut pending.search, result);
        self.continue_allocate(now, pending, step, out)
    }

    /// Queues the `Open` a search asks for, or answers the Allocate once the search is done.
    pub(super) fn continue_allocate(
        &mut self,
        now: Instant,
        pending: PendingAllocate,
        step: Step,
        out: &mut [u8],
    ) -> ClientOutcome {
        match step {
            Step::Open(addr) => {
                self.queue_open(addr, pending);
                ClientOutcome::Nothing
            }
            Step::Done(opened) => {
                // The same bytes decoded when the request arrived; should that ever fail, the
                // Allocate is given up (the client retransmits) rather than the worker.
                let Ok(message) = Message::decode(&pending.request) else {
                    // What the search opened is what it holds: `abandon` closes it.
                    self.abandon(pending);
                    return ClientOutcome::Nothing;
                };
                let len = self.finish_allocate(
                    now,
                    (pending.five_tuple, &message, &pending.auth),
                    (pending.lifetime, pending.transport),
                    opened,
                    out,
                );
                self.stats
                    .answered(Method::ALLOCATE, len.map(|len| &out[..len]));
                match len {
                    Some(len) => ClientOutcome::Reply(Transmit {
                        from: pending.local,
                        to: pending.five_tuple.client.get(),
                        len,
                    }),
                    None => ClientOutcome::Nothing,
                }
            }
        }
    }

    /// Asks the driver to bind `addr` for `pending`.
    pub(super) fn queue_open(&mut self, addr: super::RelayAddr, pending: PendingAllocate) {
        let ticket = OpenTicket(self.next_ticket);
        self.next_ticket += 1;
        let kind = match pending.transport {
            RelayTransport::Udp => SocketKind::Udp,
            RelayTransport::Tcp => SocketKind::TcpListener,
        };
        self.pending_opens.insert(ticket, pending);
        self.command(RelayCommand::Open { ticket, addr, kind });
    }

    /// The Allocate waiting on `five_tuple`, if any.
    pub(super) fn pending_allocate(&self, five_tuple: &FiveTuple) -> Option<&PendingAllocate> {
        self.pending_opens
            .values()
            .find(|p| p.five_tuple == *five_tuple && !p.cancelled)
    }

    /// The client on `five_tuple` went: its waiting Allocate is given up when the driver
    /// answers (the socket being bound is closed then).
    pub(super) fn cancel_pending(&mut self, five_tuple: &FiveTuple) {
        for pending in self.pending_opens.values_mut() {
            if pending.five_tuple == *five_tuple {
                pending.cancelled = true;
            }
        }
    }

    /// The first deadline of a waiting Allocate.
    pub(super) fn next_open_deadline(&self) -> Option<Instant> {
        self.pending_opens.values().map(|p| p.deadline).min()
    }

    /// Gives up the Allocates whose `Open` was not answered by `now`. The address being
    /// bound is released but not closed: the core never learnt that it was bound.
    pub(super) fn expire_pending_opens(&mut self, now: Instant) {
        let due: Vec<OpenTicket> = self
            .pending_opens
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(ticket, _)| *ticket)
            .collect();
        for ticket in due {
            if let Some(pending) = self.pending_opens.remove(&ticket) {
                self.abandon(pending);
            }
        }
    }

    /// Gives back what a waiting Allocate holds: the relays bound so far (closed), the claim
    /// of the address being bound, and its place in the quotas.
    fn abandon(&mut self, pending: PendingAllocate) {
        let (relays, in_flight) = pending.search.held();
        for addr in relays.iter() {
            self.command(RelayCommand::Close(addr));
            self.shared.release(addr);
        }
        if let Some(addr) = in_flight {
            self.shared.release(addr);
        }
        self.shared.remove_allocation(&pending.auth.username);
    }
}
