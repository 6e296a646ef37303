//! The JSON of the admin API, shared by the server ([`super::api`]) and the client
//! ([`super::command`]) so that the two cannot drift apart.

use serde::{Deserialize, Serialize};

/// `GET /v1/info`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Info {
    /// `turnpike` version.
    pub version: String,
    /// Seconds since the server started.
    pub uptime_secs: u64,
    /// Worker threads.
    pub workers: usize,
    /// Allocations now.
    pub allocations: usize,
    /// A drain is under way.
    pub draining: bool,
}

/// One allocation in `GET /v1/sessions`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    /// The username that created it.
    pub user: String,
    /// The realm.
    pub realm: String,
    /// The client's address as the server sees it.
    pub client: String,
    /// The server address the client talks to.
    pub server: String,
    /// `udp` or `tcp` (TLS counts as TCP in the 5-tuple, RFC 8656 §2).
    pub transport: String,
    /// Relayed transport addresses as given to the client (XOR-RELAYED-ADDRESS).
    pub relays: Vec<String>,
    /// Seconds since it was created.
    pub age_secs: u64,
    /// Seconds until it expires unless refreshed.
    pub expires_in_secs: u64,
    /// Live permissions.
    pub permissions: usize,
    /// Live channels.
    pub channels: usize,
    /// Client → peer packets.
    pub to_peer_packets: u64,
    /// Client → peer payload bytes.
    pub to_peer_bytes: u64,
    /// Peer → client packets.
    pub to_client_packets: u64,
    /// Peer → client payload bytes.
    pub to_client_bytes: u64,
}

/// `POST /v1/kick`: exactly one of the two.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kick {
    /// Every allocation of this username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Every allocation of this client address (IP:PORT), whatever the transport.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
}

/// The answer to `POST /v1/kick`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Kicked {
    /// Allocations ended.
    pub kicked: usize,
}

/// The answer to `POST /v1/drain`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Draining {
    /// False when a drain was already under way.
    pub started: bool,
    /// Allocations left.
    pub allocations: usize,
}

/// The answer to `POST /v1/reload`: applied (200), or the problems (422).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reload {
    /// The new configuration is in force.
    pub reloaded: bool,
    /// Why not (every problem, as `turnpike config check` prints them).
    #[serde(default)]
    pub problems: Vec<String>,
    /// Changed keys that keep their old values until a restart.
    #[serde(default)]
    pub restart_needed: Vec<String>,
    /// Static users now known.
    #[serde(default)]
    pub users: usize,
}

/// An error answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Failure {
    /// What went wrong.
    pub error: String,
}
