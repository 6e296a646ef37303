//! The TURN client's knobs.

use crate::timing::RetransmitTiming;

/// How many permissions and channels a client tracks by default: enough for an ICE session
/// with many remote candidates, small enough to bound memory.
pub const DEFAULT_TABLE_LIMIT: usize = 64;

/// Timing and bounds of a [`super::TurnClient`]. The default is RFC 8489 §6.2.1 timing
/// (RTO 500 ms, Rc 7, Rm 16), 64 permissions and 64 channels, over UDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TurnClientConfig {
    /// Retransmission schedule of every request.
    pub timing: RetransmitTiming,
    /// Peer IPs with a permission at most; more are refused with
    /// [`super::TurnEvent::PermissionFailed`].
    pub max_permissions: usize,
    /// Channel bindings at most; more are refused with [`super::TurnEvent::ChannelFailed`].
    pub max_channels: usize,
    /// The client ↔ server leg is a stream (TCP or TLS, RFC 8656 §3.1) rather than UDP:
    /// ChannelData is padded to a multiple of four bytes (§12.5). The caller cuts the bytes
    /// it receives into messages with `stun::framing::next_frame`, and gives a reliable
    /// transport a timing of one send (RFC 8489 §6.2.2: no retransmissions over TCP).
    pub stream: bool,
    /// Also report each request's course: [`super::TurnEvent::Challenged`],
    /// [`super::TurnEvent::Refreshed`] and [`super::TurnEvent::RequestFailed`]. Off by
    /// default: a session needs only the outcomes, a deployment checker wants the steps.
    pub diagnostics: bool,
    /// On a 300 (Try Alternate) to the Allocate, try the server its ALTERNATE-SERVER names,
    /// once (RFC 8656 §7.2 step 11, RFC 8489 §10). Over UDP the driver has nothing to do
    /// (requests go to [`super::TurnClient::server`]); over a stream it must open a new
    /// connection to that server when [`super::TurnEvent::Redirected`] comes, before it sends
    /// the next request (over TLS or DTLS checking its certificate against the event's
    /// ALTERNATE-DOMAIN, else the first server's name), and should leave this off when it
    /// cannot. On by default.
    pub follow_alternate: bool,
}

impl Default for TurnClientConfig {
    fn default() -> Self {
        TurnClientConfig {
            timing: RetransmitTiming::RFC_8489,
            max_permissions: DEFAULT_TABLE_LIMIT,
            max_channels: DEFAULT_TABLE_LIMIT,
            stream: false,
            diagnostics: false,
            follow_alternate: true,
        }
    }
}
