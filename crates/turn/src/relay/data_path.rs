//! The data path (RFC 8656 §11, §12.6, §12.7): Send indications and ChannelData from the
//! client, datagrams from peers. Nothing here allocates, logs or formats: a packet is either
//! routed or counted as dropped.

use std::ops::Range;
use std::time::Instant;
use stun::attributes::ChannelNumber;

use stun::attributes::{Data, DontFragment, XorPeerAddress};
use stun::{
    padded_len, AttributeType, Class, Message, MessageType, MessageWriter, Method, TransactionId,
};

use super::addresses::{PeerAddr, RelayAddr};
use super::allocation::RelayTransport;
use super::five_tuple::{ClientTransport, FiveTuple};
use super::server::{ClientOutcome, PeerOutcome, TurnServer, PEER_HEADROOM};
use super::stats::{Direction, DropCause};

impl TurnServer {
    /// Counts a client's datagram dropped for `cause`; nothing to send.
    pub(super) fn drop_client_packet(&mut self, cause: DropCause) -> ClientOutcome {
        self.stats.drop_packet(cause);
        ClientOutcome::Nothing
    }

    /// Counts a peer's datagram dropped for `cause`; nothing to send.
    fn drop_peer_packet(&mut self, cause: DropCause) -> Option<PeerOutcome> {
        self.stats.drop_packet(cause);
        None
    }

    /// A ChannelData message from the client (RFC 8656 §12.6): relay its payload to the
    /// peer bound to the channel; silently drop it when there is no such binding.
    pub(super) fn channel_data_from_client(
        &mut self,
        now: Instant,
        five_tuple: FiveTuple,
        packet: &[u8],
    ) -> ClientOutcome {
        let Some(head) = packet.get(..4) else {
            return ClientOutcome::Nothing;
        };
        let number = ChannelNumber(u16::from_be_bytes([head[0], head[1]]));
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        // Over UDP the datagram may carry padding after the data (RFC 8656 §12.5).
        if packet.len() < 4 + len {
            return self.drop_client_packet(DropCause::Malformed);
        }
        let Some(id) = self.allocation_id(&five_tuple) else {
            return self.drop_client_packet(DropCause::NoAllocation);
        };
        let Some(allocation) = self.allocations.get(&id) else {
            return self.drop_client_packet(DropCause::NoAllocation);
        };
        let Some(peer) = allocation.channel_peer(now, number) else {
            return self.drop_client_packet(DropCause::NoChannel);
        };
        self.relay_to_peer(now, id, peer, 4..4 + len, false)
    }

    /// A Send indication (RFC 8656 §11.2): relay DATA to XOR-PEER-ADDRESS if a permission
    /// exists; otherwise, or when anything is missing or invalid, discard it.
    pub(super) fn send_indication(
        &mut self,
        now: Instant,
        five_tuple: FiveTuple,
        message: &Message<'_>,
    ) -> ClientOutcome {
        let Some(id) = self.allocation_id(&five_tuple) else {
            return self.drop_client_packet(DropCause::NoAllocation);
        };
        let Some(Ok(XorPeerAddress(peer))) = message.get::<XorPeerAddress>() else {
            return self.drop_client_packet(DropCause::Malformed);
        };
        let peer = PeerAddr::from(peer);
        let Some(data) = message
            .attributes()
            .find(|a| a.attribute == AttributeType::DATA)
        else {
            return self.drop_client_packet(DropCause::Malformed);
        };
        let dont_fragment = message.contains::<DontFragment>();
        if dont_fragment && !self.config.dont_fragment {
            return self.drop_client_packet(DropCause::DontFragment);
        }
        let allowed = self
            .allocations
            .get(&id)
            .is_some_and(|a| a.permits(now, peer.ip()));
        if !allowed {
            return self.drop_client_packet(DropCause::NoPermission);
        }
        let start = data.offset + 4;
        self.relay_to_peer(
            now,
            id,
            peer,
            start..start + data.value.len(),
            dont_fragment,
        )
    }

    /// Last checks before sending to a peer: its transport address is allowed, the
    /// allocation relays its family, and the bandwidth cap has room.
    fn relay_to_peer(
        &mut self,
        now: Instant,
        id: super::server::AllocationId,
        peer: PeerAddr,
        payload: Range<usize>,
        dont_fragment: bool,
    ) -> ClientOutcome {
        if !self.peer_endpoint_allowed(peer) {
            return self.drop_client_packet(DropCause::PeerPolicy);
        }
        let bound_peer = self.bound_address(peer);
        let Some(allocation) = self.allocations.get_mut(&id) else {
            return self.drop_client_packet(DropCause::NoAllocation);
        };
        if allocation.transport != RelayTransport::Udp {
            // A TCP allocation (RFC 6062) has no UDP socket to send from.
            return self.drop_client_packet(DropCause::Unsupported);
        }
        let Some(relay) = allocation.relays.for_peer(peer.ip()) else {
            return self.drop_client_packet(DropCause::AddressFamily);
        };
        if !allocation.spend(now, payload.len()) {
            return self.drop_client_packet(DropCause::BandwidthCap);
        }
        allocation.session.traffic.to_peer.count(payload.len());
        let transport = allocation.five_tuple.transport;
        self.stats
            .relayed(Direction::ToPeer, transport, payload.len());
        ClientOutcome::Relay {
            relay,
            peer: bound_peer,
            payload,
            dont_fragment,
        }
    }

    /// A datagram from `peer` arrived on relay socket `relay`, its payload at
    /// `buf[PEER_HEADROOM..PEER_HEADROOM + len]` (RFC 8656 §11.3). If a permission allows it,
    /// frames it in place — ChannelData when a channel is bound (§12.7), a Data indication
    /// otherwise — and returns where to send it.
    pub fn handle_peer(
        &mut self,
        now: Instant,
        relay: RelayAddr,
        peer: PeerAddr,
        buf: &mut [u8],
        len: usize,
    ) -> Option<PeerOutcome> {
        if buf.len() < PEER_HEADROOM + padded_len(len) {
            return self.drop_peer_packet(DropCause::TooLarge);
        }
        let Some(&id) = self.by_relay.get(&relay) else {
            return self.drop_peer_packet(DropCause::NoAllocation);
        };
        // A peer that is another of our relays is known to the client by its advertised
        // address: permissions and channels were made for that one.
        let peer = if self.shared.is_relay(peer) {
            PeerAddr::new(self.advertised(peer.get()))
        } else {
            peer
        };
        let Some(allocation) = self.allocations.get_mut(&id) else {
            return self.drop_peer_packet(DropCause::NoAllocation);
        };
        if !allocation.permits(now, peer.ip()) {
            return self.drop_peer_packet(DropCause::NoPermission);
        }
        if !allocation.spend(now, len) {
            return self.drop_peer_packet(DropCause::BandwidthCap);
        }
        allocation.session.traffic.to_client.count(len);
        let channel = allocation.peer_channel(now, peer);
        let to = allocation.five_tuple;
        let data = match channel {
            Some(number) => channel_data_in_place(buf, number, len, to.transport),
            None => {
                let mut tid = [0u8; 12];
                self.rng.fill_bytes(&mut tid);
                match data_indication_in_place(buf, peer, len, TransactionId(tid)) {
                    Some(data) => data,
                    None => return self.drop_peer_packet(DropCause::TooLarge),
                }
            }
        };
        self.stats.relayed(Direction::ToClient, to.transport, len);
        Some(PeerOutcome { to, data })
    }
}

/// Writes the 4-byte ChannelData header before the payload (RFC 8656 §12.4), and the padding
/// after it when the client is on TCP/TLS (§12.5).
fn channel_data_in_place(
    buf: &mut [u8],
    number: ChannelNumber,
    len: usize,
    transport: ClientTransport,
) -> Range<usize> {
    let start = PEER_HEADROOM - 4;
    buf[start..start + 2].copy_from_slice(&number.0.to_be_bytes());
    // `len` came from a UDP datagram, so it fits in 16 bits.
    buf[start + 2..start + 4].copy_from_slice(&(len as u16).to_be_bytes());
    let mut end = PEER_HEADROOM + len;
    if transport.is_stream() {
        let padded = PEER_HEADROOM + padded_len(len);
        buf[end..padded].fill(0);
        end = padded;
    }
    start..end
}

/// Writes a Data indication around the payload (RFC 8656 §11.3): header and XOR-PEER-ADDRESS
/// and the DATA attribute header before it, padding after it.
fn data_indication_in_place(
    buf: &mut [u8],
    peer: PeerAddr,
    len: usize,
    tid: TransactionId,
) -> Option<Range<usize>> {
    let mut head = [0u8; PEER_HEADROOM - 4];
    let mut w = MessageWriter::new(
        &mut head,
        MessageType::new(Method::DATA, Class::Indication),
        tid,
    )
    .ok()?;
    w.add(&XorPeerAddress(peer.get())).ok()?;
    let head_len = w.finish();
    let start = PEER_HEADROOM - 4 - head_len;
    let total = head_len - 20 + 4 + padded_len(len);
    buf[start..start + head_len].copy_from_slice(&head[..head_len]);
    buf[start + 2..start + 4].copy_from_slice(&u16::try_from(total).ok()?.to_be_bytes());
    let data_header = PEER_HEADROOM - 4;
    buf[data_header..data_header + 2]
        .copy_from_slice(&<Data<'_> as stun::Attribute<'_>>::TYPE.0.to_be_bytes());
    buf[data_header + 2..data_header + 4].copy_from_slice(&(len as u16).to_be_bytes());
    let end = PEER_HEADROOM + padded_len(len);
    buf[PEER_HEADROOM + len..end].fill(0);
    Some(start..end)
}
