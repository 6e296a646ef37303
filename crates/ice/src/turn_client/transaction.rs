//! One TURN request in flight over UDP: its bytes, and when it is resent or given up
//! (RFC 8489 §6.2.1, on the schedule of [`RetransmitTiming`]).

use std::time::Instant;

use stun::TransactionId;

use super::error::TurnError;
use super::request::RequestKind;
use crate::timing::RetransmitTiming;
use crate::transaction::later;

/// What a timer tick means for a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Tick {
    /// Not due yet.
    Wait,
    /// Send the request again now.
    Resend,
    /// Out of sends and waiting: the transaction failed.
    GiveUp(TurnError),
}

/// A request that has been sent and awaits its response.
#[derive(Debug, Clone)]
pub(super) struct Transaction {
    /// The transaction id, drawn from the client's RNG.
    pub(super) id: TransactionId,
    /// What the request asks for.
    pub(super) kind: RequestKind,
    /// The encoded request, resent byte for byte (RFC 8489 §6.2.1).
    pub(super) request: Vec<u8>,
    /// True when the request carries MESSAGE-INTEGRITY: its answers must too.
    pub(super) authenticated: bool,
    /// Challenges (401, 438) answered so far for this request, across its retries.
    pub(super) challenges: u8,
    /// Responses discarded for bad or missing integrity (RFC 8489 §9.2.5).
    pub(super) discarded: u32,
    sends: u32,
    first_send: Instant,
    next: Instant,
}

impl Transaction {
    /// A transaction whose first request leaves at `now` (the caller queues it).
    pub(super) fn sent(
        now: Instant,
        id: TransactionId,
        kind: RequestKind,
        request: Vec<u8>,
        authenticated: bool,
        timing: &RetransmitTiming,
    ) -> Transaction {
        let mut tx = Transaction {
            id,
            kind,
            request,
            authenticated,
            challenges: 0,
            discarded: 0,
            sends: 1,
            first_send: now,
            next: now,
        };
        tx.next = tx.wait_from(now, timing);
        tx
    }

    /// When [`Self::tick`] next has something to do.
    pub(super) fn deadline(&self) -> Instant {
        self.next
    }

    /// Advances the clock: a resend when one is due, a failure after the last wait.
    pub(super) fn tick(&mut self, now: Instant, timing: &RetransmitTiming) -> Tick {
        if now < self.next {
            return Tick::Wait;
        }
        let deadline_passed = timing
            .give_up_after
            .is_some_and(|limit| now >= later(self.first_send, limit));
        if self.sends >= timing.sends() || deadline_passed {
            return Tick::GiveUp(if self.discarded > 0 {
                TurnError::IntegrityViolated {
                    discarded: self.discarded,
                }
            } else {
                TurnError::Timeout { sends: self.sends }
            });
        }
        self.sends += 1;
        self.next = self.wait_from(now, timing);
        Tick::Resend
    }

    /// The next deadline after a send at `now`: the next resend or the final timeout,
    /// whichever `timing` says, bounded by its overall deadline.
    fn wait_from(&self, now: Instant, timing: &RetransmitTiming) -> Instant {
        let next = later(now, timing.wait_after(self.sends));
        match timing.give_up_after {
            Some(limit) => next.min(later(self.first_send, limit)),
            None => next,
        }
    }
}
