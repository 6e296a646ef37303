//! CreatePermission and ChannelBind (RFC 8656 §10, §12).

use std::time::Instant;

use stun::attributes::{ChannelNumber, XorPeerAddress};
use stun::error_code::INSUFFICIENT_CAPACITY;
use stun::Message;

use super::addresses::PeerAddr;
use super::allocation::RelayTransport;
use super::events::ServerErrorCause;
use super::five_tuple::FiveTuple;
use super::refusal::Refusal;
use super::respond::respond_result;
use super::server::{AllocationId, TurnServer};
use crate::auth::Authenticated;

/// Channel numbers a client may bind (RFC 8656 §12).
pub const CHANNEL_NUMBERS: std::ops::RangeInclusive<u16> = 0x4000..=0x4FFF;
/// Channel numbers RFC 5766 §11 allowed, still used by its clients.
pub const RFC5766_CHANNEL_NUMBERS: std::ops::RangeInclusive<u16> = 0x4000..=0x7FFF;

impl TurnServer {
    /// Checks peers against the allocation's families (443) and the policy (403).
    fn check_peers(
        &self,
        id: AllocationId,
        peers: impl Iterator<Item = PeerAddr>,
    ) -> Result<(), Refusal> {
        let relays = self.allocations[&id].relays;
        for peer in peers {
            if relays.for_peer(peer.ip()).is_none() {
                return Err(Refusal::PeerFamily);
            }
            if !self.peer_ip_allowed(peer.ip()) {
                return Err(Refusal::PeerForbidden);
            }
        }
        Ok(())
    }

    /// CreatePermission (RFC 8656 §10.2): every XOR-PEER-ADDRESS valid (400), of a relayed
    /// family (443), allowed by policy (403), within the permission limit (508) — or none
    /// is installed.
    pub(super) fn create_permission(
        &mut self,
        now: Instant,
        five_tuple: FiveTuple,
        message: &Message<'_>,
        auth: &Authenticated,
        out: &mut [u8],
    ) -> Option<usize> {
        let result = self.owned_allocation(&five_tuple, auth).and_then(|id| {
            let peers = || message.get_all::<XorPeerAddress>();
            if peers().next().is_none() || peers().any(|p| p.is_err()) {
                return Err(Refusal::PeerAddress);
            }
            let ips = || peers().filter_map(Result::ok).map(|p| PeerAddr::from(p.0));
            self.check_peers(id, ips())?;
            if !self.allocations[&id].has_room_for(
                now,
                ips().map(|p| p.ip()),
                self.config.max_permissions,
            ) {
                let cause = ServerErrorCause::PermissionLimit;
                self.emit_server_error(INSUFFICIENT_CAPACITY, cause, five_tuple, &auth.username);
                return Err(Refusal::PermissionLimit);
            }
            let lifetime = self.config.permission_lifetime;
            if let Some(allocation) = self.allocations.get_mut(&id) {
                for peer in ips() {
                    allocation.permit(now, peer.ip(), lifetime);
                }
            }
            self.reschedule(id);
            self.fast_path_touch(id);
            Ok(())
        });
        respond_result(message, result, Some(auth), out)
    }

    /// ChannelBind (RFC 8656 §12.2).
    pub(super) fn channel_bind(
        &mut self,
        now: Instant,
        five_tuple: FiveTuple,
        message: &Message<'_>,
        auth: &Authenticated,
        out: &mut [u8],
    ) -> Option<usize> {
        let result = self.owned_allocation(&five_tuple, auth).and_then(|id| {
            let (Some(Ok(number)), Some(Ok(XorPeerAddress(peer)))) = (
                message.get::<ChannelNumber>(),
                message.get::<XorPeerAddress>(),
            ) else {
                return Err(Refusal::ChannelNumber);
            };
            let peer = PeerAddr::from(peer);
            let range = if self.config.rfc5766_channel_numbers {
                RFC5766_CHANNEL_NUMBERS
            } else {
                CHANNEL_NUMBERS
            };
            if !range.contains(&number.0) {
                return Err(Refusal::ChannelNumber);
            }
            let allocation = &self.allocations[&id];
            // A TCP allocation relays connections, not datagrams: no channels (RFC 6062).
            if allocation.transport != RelayTransport::Udp {
                return Err(Refusal::WrongRelayTransport);
            }
            allocation
                .check_channel(now, number, peer)
                .map_err(Refusal::ChannelConflict)?;
            self.check_peers(id, std::iter::once(peer))?;
            if !self.peer_endpoint_allowed(peer) {
                return Err(Refusal::PeerForbidden);
            }
            let allocation = &self.allocations[&id];
            let full_channels = allocation.is_new_channel(number)
                && allocation.channel_count() >= self.config.max_channels;
            let full_permissions = !allocation.has_room_for(
                now,
                std::iter::once(peer.ip()),
                self.config.max_permissions,
            );
            if full_channels || full_permissions {
                let (cause, refusal) = if full_channels {
                    (ServerErrorCause::ChannelLimit, Refusal::ChannelLimit)
                } else {
                    (ServerErrorCause::PermissionLimit, Refusal::PermissionLimit)
                };
                self.emit_server_error(INSUFFICIENT_CAPACITY, cause, five_tuple, &auth.username);
                return Err(refusal);
            }
            let lifetimes = self.config.lifetimes();
            if let Some(allocation) = self.allocations.get_mut(&id) {
                allocation.bind_channel(now, number, peer, lifetimes);
            }
            self.reschedule(id);
            self.fast_path_touch(id);
            Ok(())
        });
        respond_result(message, result, Some(auth), out)
    }
}
