//! A client transaction: one Binding request over UDP, retransmitted until answered or given
//! up (RFC 8489 §6.2.1, §6.3).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use stun::{Class, EncodeError, Message, Method, TransactionId, MAGIC_COOKIE};

use crate::error::TransactionError;
use crate::request::{RequestOptions, MAX_REQUEST_LEN};
use crate::response::{interpret, BindingResponse};
use crate::timing::RetransmitTiming;
use crate::transmit::Transmit;

/// Where the transaction stands.
#[derive(Debug, Clone)]
enum State {
    /// A request is due (the first, or a retransmission) since `since`.
    SendDue { since: Instant },
    /// A request is out; at `until` the next one is due, or the transaction fails.
    Waiting { until: Instant },
    /// Over; the outcome waits in the slot until [`BindingTransaction::poll_result`] takes it.
    Finished(Option<Result<BindingResponse, TransactionError>>),
}

/// One Binding request to one server, over UDP.
///
/// The request is encoded once, at creation, into a buffer inside the struct; sends and
/// resends only lend it out. A response is matched by transaction id alone, not by source
/// address: with CHANGE-REQUEST (RFC 5780 §7.2) it comes from another address on purpose.
///
/// ```
/// # use std::time::{Duration, Instant};
/// # use ice::{BindingTransaction, RequestOptions, RetransmitTiming};
/// # use stun::TransactionId;
/// let start = Instant::now();
/// let server = "192.0.2.1:3478".parse().unwrap();
/// let mut tx = BindingTransaction::new(
///     start, server, TransactionId([7; 12]), &RequestOptions::default(), RetransmitTiming::default(),
/// )?;
/// let first = tx.poll_transmit(start).expect("the first request is due at once");
/// assert_eq!(first.destination, server);
/// assert_eq!(tx.poll_timeout(), Some(start + Duration::from_millis(500)));
/// # Ok::<(), stun::EncodeError>(())
/// ```
#[derive(Debug, Clone)]
pub struct BindingTransaction {
    transaction_id: TransactionId,
    server: SocketAddr,
    timing: RetransmitTiming,
    request: [u8; MAX_REQUEST_LEN],
    request_len: usize,
    state: State,
    sends: u32,
    first_send: Option<Instant>,
    last_send: Option<Instant>,
}

impl BindingTransaction {
    /// Starts a transaction to `server`; its first request is due at `now`.
    ///
    /// `transaction_id` must be random (RFC 8489 §5: uniformly and cryptographically
    /// random); the caller draws it. Fails only when the request does not fit
    /// [`MAX_REQUEST_LEN`] bytes (too much PADDING or SOFTWARE).
    pub fn new(
        now: Instant,
        server: SocketAddr,
        transaction_id: TransactionId,
        options: &RequestOptions,
        timing: RetransmitTiming,
    ) -> Result<Self, EncodeError> {
        let mut request = [0u8; MAX_REQUEST_LEN];
        let request_len = options.encode(transaction_id, &mut request)?;
        Ok(BindingTransaction {
            transaction_id,
            server,
            timing,
            request,
            request_len,
            state: State::SendDue { since: now },
            sends: 0,
            first_send: None,
            last_send: None,
        })
    }

    /// Starts a transaction whose request the caller has already encoded (an ICE check with
    /// USERNAME, PRIORITY and MESSAGE-INTEGRITY, RFC 8445 §7.1). `request` must carry
    /// `transaction_id`; it is copied once into the transaction. Fails when it is longer
    /// than [`MAX_REQUEST_LEN`].
    pub fn with_request(
        now: Instant,
        server: SocketAddr,
        transaction_id: TransactionId,
        request: &[u8],
        timing: RetransmitTiming,
    ) -> Result<Self, EncodeError> {
        let mut buf = [0u8; MAX_REQUEST_LEN];
        buf.get_mut(..request.len())
            .ok_or(EncodeError::BufferTooSmall)?
            .copy_from_slice(request);
        Ok(BindingTransaction {
            transaction_id,
            server,
            timing,
            request: buf,
            request_len: request.len(),
            state: State::SendDue { since: now },
            sends: 0,
            first_send: None,
            last_send: None,
        })
    }

    /// The transaction id.
    pub fn transaction_id(&self) -> TransactionId {
        self.transaction_id
    }

    /// The server the requests go to.
    pub fn server(&self) -> SocketAddr {
        self.server
    }

    /// The encoded request, as sent.
    pub fn request(&self) -> &[u8] {
        &self.request[..self.request_len]
    }

    /// How many requests have been sent.
    pub fn sends(&self) -> u32 {
        self.sends
    }

    /// True once the outcome is known (whether or not [`Self::poll_result`] has taken it).
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Finished(_))
    }

    /// The request to send now, if one is due. Call it until it returns `None` after every
    /// input and timeout; sending it is the caller's job, and the send counts as made at `now`.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit<'_>> {
        let State::SendDue { .. } = self.state else {
            return None;
        };
        self.sends += 1;
        let first = *self.first_send.get_or_insert(now);
        self.last_send = Some(now);
        let mut until = later(now, self.timing.wait_after(self.sends));
        if let Some(limit) = self.timing.give_up_after {
            until = until.min(later(first, limit));
        }
        self.state = State::Waiting { until };
        Some(Transmit {
            destination: self.server,
            payload: self.request(),
        })
    }

    /// When [`Self::handle_timeout`] should next be called: a retransmission or the final
    /// timeout. `None` once finished. A time in the past means "now": a send is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::SendDue { since } => Some(since),
            State::Waiting { until } => Some(until),
            State::Finished(_) => None,
        }
    }

    /// Advances the clock: schedules a retransmission, or fails the transaction with
    /// [`TransactionError::Timeout`] after the last wait (RFC 8489 §6.2.1) or at the
    /// `give_up_after` deadline. Early calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        let State::Waiting { until } = self.state else {
            return;
        };
        if now < until {
            return;
        }
        let deadline_passed = match (self.timing.give_up_after, self.first_send) {
            (Some(limit), Some(first)) => now >= later(first, limit),
            _ => false,
        };
        self.state = if self.sends >= self.timing.sends() || deadline_passed {
            State::Finished(Some(Err(TransactionError::Timeout { sends: self.sends })))
        } else {
            State::SendDue { since: until }
        };
    }

    /// Offers a datagram that arrived from `from`. Returns true when it is a response to this
    /// transaction (a success or error response with our transaction id and the magic
    /// cookie), which then ends it; a late duplicate also returns true and changes nothing.
    /// Anything else — another id, a request, bytes that are not STUN, a bad FINGERPRINT —
    /// returns false and is ignored (RFC 8489 §6.3: malformed messages are discarded).
    pub fn handle_input(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) -> bool {
        let Ok(message) = Message::decode(bytes) else {
            return false;
        };
        let header = message.header();
        let ours = header.transaction_id == self.transaction_id
            && header.cookie == MAGIC_COOKIE
            && header.message_type.method == Method::BINDING
            && matches!(header.message_type.class, Class::Success | Class::Error);
        let Some(last_send) = self.last_send.filter(|_| ours) else {
            return false;
        };
        if self.is_finished() {
            return true;
        }
        let rtt = now.saturating_duration_since(last_send);
        self.state = State::Finished(Some(interpret(&message, from, rtt, self.sends)));
        true
    }

    /// The outcome, once: `Some` the first time it is asked for after the transaction ended,
    /// `None` before and after.
    pub fn poll_result(&mut self) -> Option<Result<BindingResponse, TransactionError>> {
        match &mut self.state {
            State::Finished(slot) => slot.take(),
            _ => None,
        }
    }
}

/// `at + wait`, saturating instead of panicking where `Instant` cannot go that far.
pub(crate) fn later(at: Instant, wait: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    at.checked_add(wait)
        .or_else(|| at.checked_add(CENTURY))
        .unwrap_or(at)
}
