//! What the core tells its driver: allocations created and ended, authentication failures,
//! and the server-side reasons behind 508/486 answers (and 300, when a full server sent the
//! client to an alternate). The core never logs (it has no clock
//! to rate-limit by, and a log call per request is I/O); it queues events, and the driver
//! drains them with [`TurnServer::poll_event`] and decides what to write.
//!
//! The queue is bounded so that a flood cannot grow memory: authentication failures (which
//! anyone can cause at line rate) may fill at most half of it and are counted, not queued,
//! beyond that; when the queue is full anyway the oldest event goes. Both losses are reported
//! by a [`TurnEvent::Lost`] once the queue has been drained.

use std::collections::VecDeque;
use std::net::IpAddr;

use stun::attributes::Username;
use stun::Message;

use super::addresses::ClientAddr;
use super::five_tuple::{ClientTransport, FiveTuple};
use super::ports::RelayOpenError;
use super::server::TurnServer;
use super::sessions::SessionInfo;
use crate::auth::AuthRejection;

/// Events one core holds at most before it drops the oldest. A driver drains every few
/// hundred milliseconds; this covers thousands of allocations per second per worker.
pub const EVENT_QUEUE_CAPACITY: usize = 4096;

/// The share of the queue authentication failures may take: the rest is kept for session
/// and server-error events, which a failure flood must not push out.
const AUTH_FAILURE_SHARE: usize = EVENT_QUEUE_CAPACITY / 2;

/// The longest USERNAME kept in an [`AuthFailure`] (the attribute may be 513 bytes; a log
/// line needs no more than this to identify a credential).
pub const MAX_LOGGED_USERNAME: usize = 128;

/// Why an allocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EndReason {
    /// The client deleted it (Refresh with LIFETIME 0, RFC 8656 §8.2).
    Deleted,
    /// Its lifetime ran out without a Refresh.
    Expired,
    /// An operator ended it ([`TurnServer::kick`], [`TurnServer::kick_user`]).
    Kicked,
    /// The client's TCP/TLS connection closed (RFC 8656 §3.1: the allocation goes with it).
    ConnectionClosed,
    /// The server stopped ([`TurnServer::shutdown`]).
    Shutdown,
}

impl EndReason {
    /// A stable lower-case name, for logs and APIs.
    pub fn as_str(&self) -> &'static str {
        match self {
            EndReason::Deleted => "deleted",
            EndReason::Expired => "expired",
            EndReason::Kicked => "kicked",
            EndReason::ConnectionClosed => "connection-closed",
            EndReason::Shutdown => "shutdown",
        }
    }
}

/// A request whose credentials failed (not the first, unauthenticated request of a client,
/// nor a stale nonce: both are part of the normal exchange).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthFailure {
    /// The source transport address (the client's).
    pub source: ClientAddr,
    /// Its transport.
    pub transport: ClientTransport,
    /// BadRequest (integrity without well-formed USERNAME/REALM/NONCE), WrongCredentials
    /// (unknown user, wrong password, expired REST credential, wrong realm) or RateLimited
    /// (over the source's failure allowance: dropped without an answer).
    pub reason: AuthRejection,
    /// The USERNAME the request gave, cut to [`MAX_LOGGED_USERNAME`] bytes.
    pub username: Option<String>,
}

/// The server-side reason behind an error answer (508, 486) to a client's request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum ServerErrorCause {
    /// The username holds `user-quota` allocations already (486).
    #[error("user quota reached")]
    UserQuota,
    /// The server holds `total-quota` allocations already (508, or 300 with an alternate).
    #[error("total quota reached")]
    TotalQuota,
    /// No free port in the relay port range on this relay IP (508, or 300 with an alternate).
    #[error("relay port pool empty on {ip}")]
    PortPoolEmpty {
        /// The relay IP.
        ip: IpAddr,
    },
    /// Binding a relay socket on this relay IP failed for every port (508, or 300 with an
    /// alternate).
    #[error("relay socket on {ip}: {error}")]
    RelaySocket {
        /// The relay IP.
        ip: IpAddr,
        /// The OS error.
        error: RelayOpenError,
    },
    /// No relay IP of any family the request asked for (a dual allocation on a server that
    /// relays neither family; 440 answers a single family before this).
    #[error("no relay address of the requested families")]
    NoRelayAddress,
    /// A RESERVATION-TOKEN that is unknown or expired, or whose port could not be bound
    /// (508, RFC 8656 §7.2).
    #[error("reservation token unknown or expired")]
    ReservationUnavailable,
    /// The allocation holds `max-permissions` permissions already (508).
    #[error("permission limit of the allocation reached")]
    PermissionLimit,
    /// The allocation holds `max-channels` channels already (508).
    #[error("channel limit of the allocation reached")]
    ChannelLimit,
    /// The TCP allocation holds `max-peer-connections` peer data connections already (508 to
    /// a Connect, RFC 6062 §5.2).
    #[error("peer connection limit of the allocation reached")]
    PeerConnectionLimit,
    /// No free CONNECTION-ID could be drawn (508 to a Connect).
    #[error("no free connection id")]
    ConnectionIds,
}

/// An error answer the server gave for a reason of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerError {
    /// The ERROR-CODE sent (508, 486, 300 for a redirect), or carried in ADDRESS-ERROR-CODE for the family a
    /// dual allocation could not get.
    pub code: u16,
    /// Why.
    pub cause: ServerErrorCause,
    /// The request's 5-tuple.
    pub five_tuple: FiveTuple,
    /// The authenticated username.
    pub username: String,
}

impl ServerError {
    /// A server error (for drivers' tests; the core makes its own).
    pub fn new(code: u16, cause: ServerErrorCause, five_tuple: FiveTuple, username: &str) -> Self {
        ServerError {
            code,
            cause,
            five_tuple,
            username: username.to_owned(),
        }
    }
}

/// Something the driver should know (and probably log).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TurnEvent {
    /// An allocation was created (its age is zero, its traffic nil).
    AllocationCreated(SessionInfo),
    /// An allocation ended: its final state (age = duration, traffic each way) and why.
    AllocationEnded {
        /// The allocation as it ended.
        session: SessionInfo,
        /// Why.
        reason: EndReason,
    },
    /// A request failed authentication.
    AuthFailed(AuthFailure),
    /// The server refused a request for a server-side reason.
    ServerError(ServerError),
    /// Events not queued since the last `Lost`: authentication failures over their share of
    /// the queue, and older events pushed out of a full queue.
    Lost {
        /// Authentication failures not queued.
        auth_failures: u64,
        /// Other events dropped (oldest first).
        events: u64,
    },
}

/// The bounded queue.
#[derive(Debug, Default)]
pub(super) struct EventQueue {
    queue: VecDeque<TurnEvent>,
    /// Authentication failures queued now.
    auth_queued: usize,
    lost_auth: u64,
    lost_events: u64,
}

impl EventQueue {
    fn push(&mut self, event: TurnEvent) {
        if self.queue.len() >= EVENT_QUEUE_CAPACITY {
            if let Some(TurnEvent::AuthFailed(_)) = self.queue.pop_front() {
                self.auth_queued -= 1;
            }
            self.lost_events += 1;
        }
        if matches!(event, TurnEvent::AuthFailed(_)) {
            self.auth_queued += 1;
        }
        self.queue.push_back(event);
    }

    /// The queued end event of the allocation on `five_tuple`, newest first: the kernel fast
    /// path's last counters of an allocation that just ended are added to it (see
    /// [`super::fast_path`]).
    pub(super) fn ended_mut(&mut self, five_tuple: &FiveTuple) -> Option<&mut SessionInfo> {
        self.queue.iter_mut().rev().find_map(|event| match event {
            TurnEvent::AllocationEnded { session, .. } if session.five_tuple == *five_tuple => {
                Some(session)
            }
            _ => None,
        })
    }

    /// True when one more authentication failure may be queued; counts it as lost when not
    /// (before anything is built for it: a flood costs a counter, not an allocation).
    fn admit_auth_failure(&mut self) -> bool {
        if self.auth_queued >= AUTH_FAILURE_SHARE {
            self.lost_auth += 1;
            return false;
        }
        true
    }

    fn pop(&mut self) -> Option<TurnEvent> {
        if let Some(event) = self.queue.pop_front() {
            if matches!(event, TurnEvent::AuthFailed(_)) {
                self.auth_queued -= 1;
            }
            return Some(event);
        }
        if self.lost_auth == 0 && self.lost_events == 0 {
            return None;
        }
        let lost = TurnEvent::Lost {
            auth_failures: self.lost_auth,
            events: self.lost_events,
        };
        (self.lost_auth, self.lost_events) = (0, 0);
        Some(lost)
    }
}

impl TurnServer {
    /// The next event, oldest first; `None` when there is none. Drain after handling
    /// packets and timers (a full queue drops the oldest, see the module doc).
    pub fn poll_event(&mut self) -> Option<TurnEvent> {
        self.events.pop()
    }

    /// Queues an event.
    pub(super) fn emit(&mut self, event: TurnEvent) {
        self.events.push(event);
    }

    /// Queues a server-side error answer.
    pub(super) fn emit_server_error(
        &mut self,
        code: stun::attributes::ErrorCode<'_>,
        cause: ServerErrorCause,
        five_tuple: FiveTuple,
        username: &str,
    ) {
        let error = ServerError::new(code.code, cause, five_tuple, username);
        self.emit(TurnEvent::ServerError(error));
    }

    /// Queues an authentication failure when `rejection` is one (a challenge or a stale
    /// nonce is not).
    pub(super) fn emit_auth_failure(
        &mut self,
        five_tuple: &FiveTuple,
        message: &Message<'_>,
        rejection: AuthRejection,
    ) {
        let failure = matches!(
            rejection,
            AuthRejection::BadRequest
                | AuthRejection::WrongCredentials
                | AuthRejection::RateLimited
        );
        if !failure || !self.events.admit_auth_failure() {
            return;
        }
        let username = message
            .get::<Username<'_>>()
            .and_then(Result::ok)
            .map(|u| truncated(u.0, MAX_LOGGED_USERNAME).to_owned());
        self.emit(TurnEvent::AuthFailed(AuthFailure {
            source: five_tuple.client,
            transport: five_tuple.transport,
            reason: rejection,
            username,
        }));
    }
}

/// `s` cut to at most `max` bytes, on a character boundary.
fn truncated(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure() -> TurnEvent {
        TurnEvent::AuthFailed(AuthFailure {
            source: ClientAddr::new(([192, 0, 2, 9], 1).into()),
            transport: ClientTransport::Udp,
            reason: AuthRejection::WrongCredentials,
            username: None,
        })
    }

    fn lost(queue: &mut EventQueue) -> (u64, u64) {
        match std::iter::from_fn(|| queue.pop()).last() {
            Some(TurnEvent::Lost {
                auth_failures,
                events,
            }) => (auth_failures, events),
            other => panic!("expected Lost last, got {other:?}"),
        }
    }

    #[test]
    fn auth_failures_take_at_most_their_share() {
        let mut queue = EventQueue::default();
        let mut queued = 0;
        for _ in 0..10_000 {
            if queue.admit_auth_failure() {
                queue.push(failure());
                queued += 1;
            }
        }
        assert_eq!(queued, AUTH_FAILURE_SHARE);
        assert_eq!(queue.queue.len(), AUTH_FAILURE_SHARE);
        assert_eq!(lost(&mut queue), ((10_000 - AUTH_FAILURE_SHARE) as u64, 0));
        assert!(queue.pop().is_none(), "Lost is reported once");
        assert_eq!(queue.auth_queued, 0);
    }

    #[test]
    fn a_full_queue_drops_the_oldest() {
        let mut queue = EventQueue::default();
        for _ in 0..EVENT_QUEUE_CAPACITY + 10 {
            queue.push(TurnEvent::Lost {
                auth_failures: 0,
                events: 7,
            });
        }
        assert_eq!(queue.queue.len(), EVENT_QUEUE_CAPACITY);
        assert_eq!(lost(&mut queue), (0, 10));
    }

    #[test]
    fn usernames_are_cut_on_a_character_boundary() {
        assert_eq!(truncated("abc", 128), "abc");
        assert_eq!(truncated("ééé", 3), "é");
        assert_eq!(truncated(&"x".repeat(600), 128).len(), 128);
    }
}
