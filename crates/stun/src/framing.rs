//! Cutting a byte stream (TCP, TLS) into messages (RFC 8489 §6.2.2, RFC 8656 §12.5).
//!
//! STUN over a stream has no framing of its own: each message announces its length in its
//! header. TURN adds ChannelData, told apart by its first two bits (01) and padded to a
//! multiple of four bytes on streams.

use crate::header::HEADER_LEN;

/// What the start of a stream buffer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// Not enough bytes yet to know; read more.
    Incomplete,
    /// A STUN message of this many bytes.
    Stun(usize),
    /// A ChannelData message of this many bytes, padding included.
    ChannelData(usize),
    /// Neither STUN nor ChannelData: the stream cannot be resynchronised and should be closed.
    Invalid,
}

/// Reads the length of the first message in `buf`.
pub fn next_frame(buf: &[u8]) -> Frame {
    let Some(head) = buf.get(..4) else {
        return match buf.first() {
            Some(b) if b >> 6 >= 2 => Frame::Invalid,
            _ => Frame::Incomplete,
        };
    };
    let length = usize::from(u16::from_be_bytes([head[2], head[3]]));
    let (frame, total) = match head[0] >> 6 {
        0b00 if length % 4 == 0 => (Frame::Stun(HEADER_LEN + length), HEADER_LEN + length),
        // RFC 8656 §12.5: over TCP and TLS, ChannelData is padded to a multiple of 4.
        0b01 => {
            let padded = 4 + ((length + 3) & !3);
            (Frame::ChannelData(padded), padded)
        }
        _ => return Frame::Invalid,
    };
    if buf.len() >= total {
        frame
    } else {
        Frame::Incomplete
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames() {
        assert_eq!(next_frame(&[]), Frame::Incomplete);
        assert_eq!(next_frame(&[0x00, 0x01]), Frame::Incomplete);
        assert_eq!(next_frame(&[0xC0]), Frame::Invalid);
        let mut stun = [0u8; 24];
        stun[1] = 1;
        stun[3] = 4;
        assert_eq!(next_frame(&stun), Frame::Stun(24));
        assert_eq!(next_frame(&stun[..23]), Frame::Incomplete);
        stun[3] = 5;
        assert_eq!(next_frame(&stun), Frame::Invalid);
        // ChannelData 0x4000 with 5 bytes of data: 4 + 8 bytes on a stream.
        let cd = [0x40, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5, 0, 0, 0];
        assert_eq!(next_frame(&cd), Frame::ChannelData(12));
        assert_eq!(next_frame(&cd[..9]), Frame::Incomplete);
    }
}
