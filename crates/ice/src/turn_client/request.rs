//! The four TURN requests the client sends, and their encoding (RFC 8656 §7.1, §8, §9.1,
//! §12.1).

use std::net::SocketAddr;

use stun::attributes::{ChannelNumber, Lifetime, RequestedTransport, XorPeerAddress};
use stun::{Class, EncodeError, MessageType, MessageWriter, Method, TransactionId};

use super::credentials::Auth;
use crate::request::MAX_REQUEST_LEN;

/// What a request asks for; events name the request they concern with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestKind {
    /// Allocate a UDP relayed address (RFC 8656 §7.1).
    Allocate,
    /// Refresh the allocation with the server's default lifetime (§8).
    Refresh,
    /// Refresh with LIFETIME 0: delete the allocation (§7, §8).
    Deallocate,
    /// Install or refresh the permission for the peer's IP (§9.1).
    CreatePermission {
        /// The peer; only its IP counts, the port is sent as given.
        peer: SocketAddr,
    },
    /// Bind `channel` to `peer`, or refresh the binding (§12.1).
    ChannelBind {
        /// The peer.
        peer: SocketAddr,
        /// The channel number, 0x4000 to 0x4FFF.
        channel: u16,
    },
}

impl RequestKind {
    /// The STUN method of the request.
    pub(super) fn method(self) -> Method {
        match self {
            RequestKind::Allocate => Method::ALLOCATE,
            RequestKind::Refresh | RequestKind::Deallocate => Method::REFRESH,
            RequestKind::CreatePermission { .. } => Method::CREATE_PERMISSION,
            RequestKind::ChannelBind { .. } => Method::CHANNEL_BIND,
        }
    }

    /// Encodes the request, signed with `auth` when a challenge has been answered, and
    /// closed with FINGERPRINT.
    pub(super) fn encode(
        self,
        id: TransactionId,
        auth: Option<&Auth>,
        username: &str,
    ) -> Result<Vec<u8>, EncodeError> {
        let mut buf = vec![0u8; MAX_REQUEST_LEN];
        let mut w = MessageWriter::new(
            &mut buf,
            MessageType::new(self.method(), Class::Request),
            id,
        )?;
        match self {
            // RFC 8656 §7.1: REQUESTED-TRANSPORT is mandatory; UDP is the only value.
            RequestKind::Allocate => w.add(&RequestedTransport(RequestedTransport::UDP))?,
            // §8: without LIFETIME the server applies its default (600 s).
            RequestKind::Refresh => {}
            RequestKind::Deallocate => w.add(&Lifetime(0))?,
            RequestKind::CreatePermission { peer } => w.add(&XorPeerAddress(peer))?,
            RequestKind::ChannelBind { peer, channel } => {
                w.add(&ChannelNumber(channel))?;
                w.add(&XorPeerAddress(peer))?;
            }
        }
        if let Some(auth) = auth {
            auth.sign(&mut w, username)?;
        }
        w.add_fingerprint()?;
        let len = w.finish();
        buf.truncate(len);
        Ok(buf)
    }
}
