//! The TURN relay under str0m's relayed candidate (`--relay-only`): str0m knows a relayed
//! candidate only as an address (RFC 8445 §5.1.1.2); the allocation itself is ours, held by the
//! sans-IO [`ice::TurnClient`] (RFC 8656) on a socket of its own. What str0m sends from the
//! relayed address goes to the server as ChannelData or a Send indication; what the server
//! relays back (ChannelData, Data indications) is handed to str0m as arriving on the relayed
//! address, from the peer.

use std::net::SocketAddr;
use std::time::Instant;

use ice::{
    TurnClient, TurnClientConfig, TurnCredentials, TurnError, TurnEvent, TurnInput, TurnTransmit,
};

/// What the relay made of a datagram from the server.
#[derive(Debug, PartialEq, Eq)]
pub enum Relayed<'a> {
    /// Data from `peer`, relayed to our relayed address: for str0m.
    Data {
        /// The peer's address as the server saw it.
        peer: SocketAddr,
        /// The datagram.
        payload: &'a [u8],
    },
    /// A TURN response (or nothing of ours): handled.
    Consumed,
}

/// Why the relay cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The Allocate failed (refused, or no answer).
    #[error("the TURN server {server} gave no relay: {error}")]
    AllocationFailed {
        /// The server.
        server: SocketAddr,
        /// Why.
        error: TurnError,
    },
    /// The allocation expired or was deleted.
    #[error("the TURN allocation on {0} ended")]
    Ended(SocketAddr),
}

/// One allocation, as the relayed candidate of the peer connection.
pub struct Relay {
    turn: TurnClient,
    relayed: Option<SocketAddr>,
    /// Peers to permit, remembered so that candidates that arrive before the allocation
    /// (trickled while it is still under way) get their permission once it exists.
    wanted: Vec<SocketAddr>,
}

impl Relay {
    /// Starts an Allocate at `server`.
    pub fn allocate(
        now: Instant,
        server: SocketAddr,
        credentials: TurnCredentials,
        seed: [u8; 32],
    ) -> Self {
        Relay {
            turn: TurnClient::new(now, server, credentials, seed),
            relayed: None,
            wanted: Vec::new(),
        }
    }

    /// The relayed address, once allocated.
    pub fn relayed(&self) -> Option<SocketAddr> {
        self.relayed
    }

    /// The TURN server.
    pub fn server(&self) -> SocketAddr {
        self.turn.server()
    }

    /// A datagram from `from` on the relay's socket.
    pub fn receive<'a>(&mut self, now: Instant, from: SocketAddr, packet: &'a [u8]) -> Relayed<'a> {
        match self.turn.handle_input(now, from, packet) {
            TurnInput::Data { peer, payload } => Relayed::Data { peer, payload },
            _ => Relayed::Consumed,
        }
    }

    /// Wraps what str0m sends from the relayed address to `peer`. The first datagram to a peer
    /// asks for its permission (RFC 8656 §9); a channel is bound for it too (§12), so that the
    /// rest goes as 4-byte-header ChannelData rather than 36-byte Send indications.
    pub fn send(&mut self, now: Instant, peer: SocketAddr, data: &[u8]) -> TurnTransmit {
        self.turn.bind_channel(now, peer);
        self.turn.send_to(now, peer, data)
    }

    /// Installs a permission for a remote candidate's address before any check goes to it:
    /// the peer's checks to our relayed address are dropped by the server until then.
    /// Before the allocation exists, the address is remembered and permitted once it does.
    pub fn permit(&mut self, now: Instant, peer: SocketAddr) {
        // Permissions are per IP address (RFC 8656 §9): one per address is enough, and no more
        // than the TURN client holds (a page trickling thousands of candidates grows nothing).
        let known = self.wanted.iter().any(|p| p.ip() == peer.ip());
        if !known && self.wanted.len() < TurnClientConfig::default().max_permissions {
            self.wanted.push(peer);
        }
        self.turn.create_permission(now, peer);
    }

    /// Time passed.
    pub fn timeout(&mut self, now: Instant) {
        self.turn.handle_timeout(now);
    }

    /// When to call [`Relay::timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.turn.poll_timeout()
    }

    /// The next datagram for the server.
    pub fn poll_transmit(&mut self) -> Option<TurnTransmit> {
        self.turn.poll_transmit()
    }

    /// Reads the client's events: the relayed address once allocated; an error when the
    /// allocation failed or ended.
    pub fn poll_events(&mut self, now: Instant) -> Result<(), RelayError> {
        let server = self.turn.server();
        while let Some(event) = self.turn.poll_event() {
            match event {
                TurnEvent::Allocated { relayed, .. } => {
                    self.relayed = Some(relayed);
                    for &peer in &self.wanted {
                        self.turn.create_permission(now, peer);
                    }
                }
                TurnEvent::AllocationFailed(error) => {
                    return Err(RelayError::AllocationFailed { server, error })
                }
                TurnEvent::Expired | TurnEvent::Deallocated => {
                    return Err(RelayError::Ended(server))
                }
                other => tracing::debug!(?other, "TURN event"),
            }
        }
        Ok(())
    }

    /// Frees the allocation (a Refresh with lifetime 0) rather than let it expire.
    pub fn deallocate(&mut self, now: Instant) {
        self.turn.deallocate(now);
    }
}
