//! What the hub asks the I/O layer to do: send a text frame, or close a connection.

/// A connection, as the I/O layer numbers them (unique among open connections).
pub type ConnId = u64;

/// One command for the I/O layer, from [`crate::Hub::poll_output`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output {
    /// Send `text` as one WebSocket text frame on `conn`.
    Send {
        /// The connection.
        conn: ConnId,
        /// The frame: one JSON object.
        text: String,
    },
    /// Close `conn` (after sending the frames queued before this command). The hub has
    /// already forgotten the connection: do not call [`crate::Hub::disconnect`] for it.
    Close {
        /// The connection.
        conn: ConnId,
        /// Why.
        reason: CloseReason,
    },
}

/// Why the hub closes a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// `join` without a valid token (an `error` `bad-token` frame precedes the close).
    BadToken,
    /// Nothing arrived for `silence_timeout` (heartbeat lost); the peer is in its grace
    /// window and may resume.
    Silent,
    /// The peer sent `leave`: it is out of the room, and the connection is done.
    Left,
    /// A new connection resumed this connection's peer (a client that reconnected before
    /// the server noticed the old connection die).
    Replaced,
}

impl CloseReason {
    /// The WebSocket close code (RFC 6455 §7.4) to send: 1000 after `leave`, 1008 (policy
    /// violation) for a bad token, 4000 for silence and 4001 when replaced.
    pub fn code(self) -> u16 {
        match self {
            CloseReason::Left => 1000,
            CloseReason::BadToken => 1008,
            CloseReason::Silent => 4000,
            CloseReason::Replaced => 4001,
        }
    }

    /// A short reason for the close frame.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Left => "left",
            CloseReason::BadToken => "bad-token",
            CloseReason::Silent => "silent",
            CloseReason::Replaced => "replaced",
        }
    }
}
