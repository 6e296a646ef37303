//! What the hub remembers: connections, peers and rooms.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::config::{HubConfig, IceSource};
use crate::ids::{PeerId, ResumeSecret};
use crate::output::ConnId;
use crate::rate::RateLimiter;

/// What a deadline is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Timer {
    /// A connection's next ping or silence check, whichever comes first.
    Conn(ConnId),
    /// The end of an away peer's grace window.
    Grace(PeerId),
}

/// An open WebSocket.
#[derive(Debug)]
pub(super) struct Connection {
    /// Where the ICE servers of this connection's `joined` come from.
    pub(super) ice: IceSource,
    /// When the last frame arrived (or the connection opened).
    pub(super) last_seen: Instant,
    /// When the next `ping` is due; `None` when pings are off.
    pub(super) next_ping: Option<Instant>,
    /// Whether a frame other than a `ping` went to this connection since its last ping slot:
    /// with a frame from it in the same interval, traffic already proves the connection alive
    /// both ways and the ping is skipped ([`super::Hub::connection_due`]).
    pub(super) sent_since_slot: bool,
    /// Frames per second.
    pub(super) limiter: RateLimiter,
    /// When the last `rate-limited` error went out.
    pub(super) last_rate_error: Option<Instant>,
    /// The peer this connection speaks for, once joined.
    pub(super) peer: Option<PeerId>,
}

impl Connection {
    /// A connection that opened at `now`.
    pub(super) fn new(now: Instant, ice: IceSource, config: &HubConfig) -> Connection {
        Connection {
            ice,
            last_seen: now,
            next_ping: later(now, config.ping_interval),
            sent_since_slot: false,
            limiter: RateLimiter::new(now, config.message_rate, config.message_burst),
            last_rate_error: None,
            peer: None,
        }
    }

    /// When the connection counts as silent; `None` when silence is allowed.
    pub(super) fn silent_at(&self, silence_timeout: Duration) -> Option<Instant> {
        later(self.last_seen, silence_timeout)
    }

    /// When the connection's timer should fire next.
    pub(super) fn deadline(&self, silence_timeout: Duration) -> Option<Instant> {
        [self.next_ping, self.silent_at(silence_timeout)]
            .into_iter()
            .flatten()
            .min()
    }

    /// True when a `rate-limited` error may go out at `now` (at most one per second), and
    /// records it.
    pub(super) fn may_report_rate_limit(&mut self, now: Instant) -> bool {
        let due = self
            .last_rate_error
            .is_none_or(|last| now.duration_since(last) >= Duration::from_secs(1));
        if due {
            self.last_rate_error = Some(now);
        }
        due
    }
}

/// `at + d`; `None` when `d` is zero (disabled) or the sum overflows.
pub(super) fn later(at: Instant, d: Duration) -> Option<Instant> {
    if d.is_zero() {
        return None;
    }
    at.checked_add(d)
}

/// Where a peer is.
#[derive(Debug)]
pub(super) enum Presence {
    /// Connected on this connection.
    Online(ConnId),
    /// Its connection closed without `leave`: it stays in the room until `until`, and frames
    /// sent to it wait in `queue`.
    Away {
        /// The end of the grace window (exclusive for a resume).
        until: Instant,
        /// Frames for the peer, oldest first, at most `queue_length`.
        queue: VecDeque<String>,
    },
}

/// A member of a room.
#[derive(Debug)]
pub(super) struct Peer {
    /// Its room's name.
    pub(super) room: String,
    /// The secret of its current resume token.
    pub(super) secret: ResumeSecret,
    /// Online or away.
    pub(super) presence: Presence,
    /// When the join token that admitted it expires (Unix seconds); `None` without tokens.
    pub(super) token_expiry: Option<u64>,
}

/// A room: its members in join order (never empty: an empty room is removed).
#[derive(Debug, Default)]
pub(super) struct Room {
    /// Peer ids, in join order.
    pub(super) members: Vec<PeerId>,
}
