//! Application data on the client ↔ server leg: Send and Data indications (RFC 8656 §11)
//! and ChannelData (§12.4), padded on streams (§12.5).

use std::net::SocketAddr;

use stun::attributes::{Data, XorPeerAddress};
use stun::{
    padded_len, Class, EncodeError, Message, MessageType, MessageWriter, Method, TransactionId,
};

use super::channels::{FIRST_CHANNEL, LAST_CHANNEL};

/// A Send indication carrying `data` to `peer` (RFC 8656 §11.1): XOR-PEER-ADDRESS and DATA,
/// no integrity (indications cannot be authenticated, §11).
pub(super) fn send_indication(
    id: TransactionId,
    peer: SocketAddr,
    data: &[u8],
) -> Result<Vec<u8>, EncodeError> {
    // Header, XOR-PEER-ADDRESS (IPv6 at most: 4 + 20), DATA header and padded value.
    let mut buf = vec![0u8; 20 + 24 + 4 + padded_len(data.len())];
    let mut w = MessageWriter::new(
        &mut buf,
        MessageType::new(Method::SEND, Class::Indication),
        id,
    )?;
    w.add(&XorPeerAddress(peer))?;
    w.add(&Data(data))?;
    let len = w.finish();
    buf.truncate(len);
    Ok(buf)
}

/// A ChannelData message (RFC 8656 §12.4): channel number, length, data, and with `pad`
/// zeros up to a multiple of four bytes (§12.5: "over TCP and TLS-over-TCP, the ChannelData
/// message MUST be padded"; the length field does not count them). `None` when `data` is too
/// long for the 16-bit length field.
pub(super) fn channel_data(channel: u16, data: &[u8], pad: bool) -> Option<Vec<u8>> {
    let len = u16::try_from(data.len()).ok()?;
    let total = if pad {
        padded_len(data.len())
    } else {
        data.len()
    };
    let mut out = Vec::with_capacity(4 + total);
    out.extend_from_slice(&channel.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(data);
    out.resize(4 + total, 0);
    Some(out)
}

/// Reads a ChannelData message: its channel number and data. `None` for a number outside
/// 0x4000–0x4FFF or a length longer than the datagram (RFC 8656 §12.6: discard). Bytes
/// after the announced length are ignored (padding from servers that add it on UDP too).
pub(super) fn parse_channel_data(packet: &[u8]) -> Option<(u16, &[u8])> {
    let head = packet.get(..4)?;
    let channel = u16::from_be_bytes([head[0], head[1]]);
    if !(FIRST_CHANNEL..=LAST_CHANNEL).contains(&channel) {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
    Some((channel, packet.get(4..4 + len)?))
}

/// Reads a Data indication (RFC 8656 §11.4): the peer and the data. `None` when either
/// attribute is missing or malformed (§11.6: discard).
pub(super) fn parse_data_indication<'a>(message: &Message<'a>) -> Option<(SocketAddr, &'a [u8])> {
    let peer = message.get::<XorPeerAddress>()?.ok()?.0;
    let data = message.get::<Data<'a>>()?.ok()?.0;
    Some((peer, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 8656 §12.4: 2 bytes channel, 2 bytes length, then the data; no padding on UDP.
    #[test]
    fn channel_data_round_trip() {
        let framed = channel_data(0x4001, b"hello", false).unwrap();
        assert_eq!(
            framed,
            [0x40, 0x01, 0x00, 0x05, b'h', b'e', b'l', b'l', b'o']
        );
        assert_eq!(parse_channel_data(&framed), Some((0x4001, &b"hello"[..])));
        let mut padded = framed.clone();
        padded.extend([0, 0, 0]);
        assert_eq!(parse_channel_data(&padded), Some((0x4001, &b"hello"[..])));
        assert_eq!(parse_channel_data(&framed[..8]), None, "truncated");
        assert_eq!(
            parse_channel_data(&[0x50, 0, 0, 0]),
            None,
            "reserved number"
        );
        assert_eq!(channel_data(0x4000, &vec![0; 70_000], false), None);
    }

    // RFC 8656 §12.5: on TCP and TLS the message is padded to a multiple of 4 bytes, and
    // the length field still counts the data only.
    #[test]
    fn channel_data_is_padded_on_streams() {
        let framed = channel_data(0x4001, b"hello", true).unwrap();
        assert_eq!(
            framed,
            [0x40, 0x01, 0x00, 0x05, b'h', b'e', b'l', b'l', b'o', 0, 0, 0]
        );
        assert_eq!(
            stun::framing::next_frame(&framed),
            stun::framing::Frame::ChannelData(12)
        );
        assert_eq!(parse_channel_data(&framed), Some((0x4001, &b"hello"[..])));
        assert_eq!(channel_data(0x4001, b"abcd", true).unwrap().len(), 8);
    }

    // RFC 8656 §11.1: a Send indication holds XOR-PEER-ADDRESS and DATA.
    #[test]
    fn send_indication_decodes() {
        let peer: SocketAddr = "[2001:db8::1]:5000".parse().unwrap();
        let bytes = send_indication(TransactionId([3; 12]), peer, b"abc").unwrap();
        let message = Message::decode(&bytes).unwrap();
        assert_eq!(
            message.header().message_type,
            MessageType::new(Method::SEND, Class::Indication)
        );
        assert_eq!(parse_data_indication(&message), Some((peer, &b"abc"[..])));
    }
}
