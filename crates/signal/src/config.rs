//! How the hub is set up: limits, heartbeat, resume window, token secret; and the ICE
//! servers a connection's `joined` carries.

use std::time::Duration;

use serde_json::value::RawValue;

/// The hub's configuration. [`HubConfig::default`] gives the defaults of `docs/signaling.md`.
#[derive(Clone)]
pub struct HubConfig {
    /// Peers a room holds, counting those in their grace window (`room-full` when over).
    pub room_capacity: usize,
    /// Largest text frame accepted, in bytes of UTF-8 (`too-large` when over).
    pub max_message_bytes: usize,
    /// Frames queued for a peer in its grace window (`queue-full` when over).
    pub queue_length: usize,
    /// Frames per second a connection may send, sustained; 0 means no limit.
    pub message_rate: u32,
    /// Frames a connection may send at once after being quiet (the bucket's size).
    pub message_burst: u32,
    /// How often the server sends `ping` to each connection; zero disables pings.
    pub ping_interval: Duration,
    /// A connection from which nothing arrived for this long is closed; zero disables it.
    pub silence_timeout: Duration,
    /// How long a peer whose connection closed without `leave` stays in its room, waiting
    /// to be resumed; zero means it leaves at once.
    pub resume_grace: Duration,
    /// When set, `join` needs a `token` signed with this secret (see [`crate::token`]).
    pub token_secret: Option<Vec<u8>>,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            room_capacity: 16,
            max_message_bytes: 64 * 1024,
            queue_length: 256,
            message_rate: 50,
            message_burst: 100,
            ping_interval: Duration::from_secs(10),
            silence_timeout: Duration::from_secs(30),
            resume_grace: Duration::from_secs(30),
            token_secret: None,
        }
    }
}

impl std::fmt::Debug for HubConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubConfig")
            .field("room_capacity", &self.room_capacity)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("queue_length", &self.queue_length)
            .field("message_rate", &self.message_rate)
            .field("message_burst", &self.message_burst)
            .field("ping_interval", &self.ping_interval)
            .field("silence_timeout", &self.silence_timeout)
            .field("resume_grace", &self.resume_grace)
            .field(
                "token_secret",
                &self.token_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// The ICE servers one connection's `joined` carries: the I/O layer mints ephemeral TURN
/// credentials per connection and hands them over in [`crate::Hub::connect`].
#[derive(Debug, Clone)]
pub struct IceConfig {
    /// An `RTCIceServer[]` JSON array, inserted verbatim as `iceServers`. The hub trusts it
    /// to be valid JSON (it comes from the I/O layer, not from the network).
    pub servers: Box<RawValue>,
    /// Seconds the credentials in `servers` stay valid, sent as `iceTtl`.
    pub ttl: u64,
}

impl IceConfig {
    /// No ICE servers: `"iceServers":[]`, `"iceTtl":0`.
    pub fn empty() -> IceConfig {
        IceConfig {
            servers: RawValue::from_string("[]".to_owned()).expect("`[]` is valid JSON, a literal"),
            ttl: 0,
        }
    }
}

/// Who a connection's join token admitted, for minting credentials that carry its identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant<'a> {
    /// The room of the token (the peer's room).
    pub room: &'a str,
    /// When the token expires, Unix seconds: credentials minted for it must not outlive it.
    pub expiry_unix: u64,
}

/// Mints the ICE servers of one `joined`, when it is sent: given the grant of the join token
/// (`None` when the hub needs no token) and the wall clock in Unix seconds.
pub type IceMinter = Box<dyn Fn(Option<Grant<'_>>, u64) -> IceConfig + Send + Sync>;

/// Where a connection's `joined` gets its ICE servers.
pub enum IceSource {
    /// The same list for every `joined` of the connection.
    Fixed(IceConfig),
    /// Minted for each `joined`, from the identity the join token proved: the TURN
    /// credentials then name the room and never outlive the token.
    Minted(IceMinter),
}

impl IceSource {
    /// The ICE servers for a `joined` of a peer admitted by `grant`, at `unix_now`.
    pub fn for_join(&self, grant: Option<Grant<'_>>, unix_now: u64) -> IceConfig {
        match self {
            IceSource::Fixed(ice) => ice.clone(),
            IceSource::Minted(mint) => mint(grant, unix_now),
        }
    }
}

impl From<IceConfig> for IceSource {
    fn from(ice: IceConfig) -> IceSource {
        IceSource::Fixed(ice)
    }
}

impl std::fmt::Debug for IceSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IceSource::Fixed(ice) => f.debug_tuple("Fixed").field(ice).finish(),
            IceSource::Minted(_) => f.write_str("Minted"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_token_secret() {
        let config = HubConfig {
            token_secret: Some(b"hunter2".to_vec()),
            ..HubConfig::default()
        };
        let text = format!("{config:?}");
        assert!(!text.contains("104") && !text.contains("hunter2"), "{text}");
        assert!(text.contains("<redacted>"));
    }

    #[test]
    fn empty_ice_config_is_an_empty_array() {
        assert_eq!(IceConfig::empty().servers.get(), "[]");
    }
}
