//! The TURN relay (RFC 8656): allocations, permissions, channels and the data path, as a
//! sans-IO state machine. See [`server`] for the run loop.

pub mod addresses;
mod allocate;
pub mod allocation;
pub mod alternate;
pub mod bandwidth;
mod challenge;
pub mod commands;
pub mod config;
mod data_path;
pub mod domain_name;
pub mod drain;
pub mod events;
pub mod fast_path;
pub mod five_tuple;
pub mod pending_open;
mod permissions;
pub mod ports;
mod reconfigure;
pub mod refusal;
mod relay_search;
mod respond;
pub mod server;
pub mod sessions;
pub mod shared_state;
pub mod stats;
mod tcp;
pub mod tcp_connections;

pub use addresses::{ClientAddr, PeerAddr, RelayAddr};
pub use allocation::{Lifetimes, RelayTransport};
pub use allocation::{CHANNEL_COOLDOWN, CHANNEL_LIFETIME, PERMISSION_LIFETIME};
pub use alternate::Alternates;
pub use commands::{OpenTicket, RelayCommand, SocketKind};
pub use config::TurnConfig;
pub use domain_name::{DomainName, DomainNameError};
pub use events::{
    AuthFailure, EndReason, ServerError, ServerErrorCause, TurnEvent, EVENT_QUEUE_CAPACITY,
};
pub use fast_path::{FastChannel, FastPathChange};
pub use five_tuple::{ClientTransport, FiveTuple};
pub use pending_open::OPEN_TIMEOUT;
pub use permissions::{CHANNEL_NUMBERS, RFC5766_CHANNEL_NUMBERS};
pub use ports::{RelayOpenError, RESERVATION_LIFETIME};
pub use reconfigure::{Reloadable, Replaced};
pub use refusal::Refusal;
pub use server::{
    is_binding_request, AllocationId, ClientOutcome, PeerOutcome, TurnServer, PEER_HEADROOM,
};
pub use sessions::{RelayAddress, SessionInfo, SessionTraffic, Traffic};
pub use shared_state::{QuotaExceeded, SharedState};
pub use stats::{DropCause, TurnStats};
pub use tcp::ControlMessage;
pub use tcp_connections::{ConnectionId, BIND_TIMEOUT, CONNECT_TIMEOUT};
