//! The `error` frames' codes: one enum, one wire string and one human text per code.

use std::fmt;

/// The `code` of an `error` frame (`docs/signaling.md`, "Errors"). [`fmt::Display`] gives
/// the wire code (`room-full`), [`ErrorCode::message`] a human text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// Not JSON, not an object, unknown `type`, missing or ill-typed member, bad room name.
    BadMessage,
    /// A frame other than `join`, `ping` or `pong` before `join`.
    NotJoined,
    /// A second `join` on one connection.
    AlreadyJoined,
    /// The join token is missing, malformed, forged, expired or for another room; the
    /// connection is closed.
    BadToken,
    /// The resume token is unknown, for another room, or its grace window is over.
    ResumeFailed,
    /// The room already holds `room_capacity` peers.
    RoomFull,
    /// `to` names no peer of the sender's room.
    UnknownPeer,
    /// The frame is over `max_message_bytes`.
    TooLarge,
    /// The connection sends faster than `message_rate` (after its burst); the frame is
    /// dropped.
    RateLimited,
    /// The recipient is away (grace window) and its queue is full; the frame is dropped.
    QueueFull,
}

impl ErrorCode {
    /// Every code, in the order of the table in `docs/signaling.md`.
    pub const ALL: [ErrorCode; 10] = [
        ErrorCode::BadMessage,
        ErrorCode::NotJoined,
        ErrorCode::AlreadyJoined,
        ErrorCode::BadToken,
        ErrorCode::ResumeFailed,
        ErrorCode::RoomFull,
        ErrorCode::UnknownPeer,
        ErrorCode::TooLarge,
        ErrorCode::RateLimited,
        ErrorCode::QueueFull,
    ];

    /// The wire code, as in `{"type":"error","code":"room-full",…}`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadMessage => "bad-message",
            ErrorCode::NotJoined => "not-joined",
            ErrorCode::AlreadyJoined => "already-joined",
            ErrorCode::BadToken => "bad-token",
            ErrorCode::ResumeFailed => "resume-failed",
            ErrorCode::RoomFull => "room-full",
            ErrorCode::UnknownPeer => "unknown-peer",
            ErrorCode::TooLarge => "too-large",
            ErrorCode::RateLimited => "rate-limited",
            ErrorCode::QueueFull => "queue-full",
        }
    }

    /// The code for a wire string, if it is one.
    pub fn from_wire(code: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == code)
    }

    /// A human text for the `message` member (clients must not parse it).
    pub fn message(self) -> &'static str {
        match self {
            ErrorCode::BadMessage => "malformed frame",
            ErrorCode::NotJoined => "join a room first",
            ErrorCode::AlreadyJoined => "this connection has already joined a room",
            ErrorCode::BadToken => "a valid token for this room is required",
            ErrorCode::ResumeFailed => "cannot resume: join afresh",
            ErrorCode::RoomFull => "the room is full",
            ErrorCode::UnknownPeer => "no such peer in this room",
            ErrorCode::TooLarge => "frame too large",
            ErrorCode::RateLimited => "too many frames: slow down",
            ErrorCode::QueueFull => "the recipient is away and its queue is full",
        }
    }

    /// True when the server closes the connection after sending this error.
    pub fn closes_connection(self) -> bool {
        self == ErrorCode::BadToken
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_codes_round_trip() {
        // docs/signaling.md "Errors": every code has one wire string.
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_wire(&code.to_string()), Some(code));
            assert!(!code.message().is_empty());
        }
        assert_eq!(ErrorCode::from_wire("nope"), None);
    }
}
