//! # turnpike-stun: the STUN codec
//!
//! A sans-IO codec for STUN (RFC 8489, RFC 5389, classic RFC 3489) with every attribute of
//! RFC 8489 §14, RFC 8656 §18 (TURN), RFC 5780 §7 (NAT behaviour discovery), RFC 3489 §11.2,
//! RFC 8445 (ICE) and RFC 6062 (CONNECTION-ID).
//!
//! ## Contract
//! - **Decoding** ([`Message::decode`]) borrows from the datagram and allocates nothing. It
//!   checks structure only: header, lengths, attribute padding, FINGERPRINT last and
//!   correct. Any failure is a [`DecodeError`], which always means "drop silently".
//!   Attribute values are checked when read ([`Message::get`]); a bad value in a request
//!   deserves a 400.
//! - Attributes after MESSAGE-INTEGRITY(-SHA256) are ignored as RFC 8489 §14.5/§14.6 say;
//!   unknown attributes are kept and comprehension-required ones reported
//!   ([`Message::unknown_comprehension_required`]).
//! - **Encoding** ([`MessageWriter`]) writes into a caller's buffer, computing integrity and
//!   fingerprint in place, and refuses attributes out of order.
//! - **Integrity** is checked in constant time; keys are derived by [`LongTermKey`].
//!
//! No sockets, no clock, no randomness: transaction ids come from the caller.

pub mod attribute;
pub mod attributes;
pub mod error_code;
pub mod fingerprint;
pub mod framing;
pub mod header;
pub mod integrity;
pub mod message;
pub mod writer;

pub use attribute::{padded_len, Attribute, AttributeError, AttributeType};
pub use attributes::AnyAttribute;
pub use header::{Class, Header, MessageType, Method, TransactionId, HEADER_LEN, MAGIC_COOKIE};
pub use integrity::{userhash, IntegrityError, LongTermKey};
pub use message::{DecodeError, Message, RawAttribute};
pub use writer::{EncodeError, MessageWriter};

/// True when `bytes` may be a STUN message: first two bits zero and the magic cookie in
/// place (RFC 8489 §5). A cheap test for demultiplexing; [`Message::decode`] decides.
pub fn looks_like_stun(bytes: &[u8]) -> bool {
    bytes.len() >= HEADER_LEN && bytes[0] & 0xC0 == 0 && bytes[4..8] == MAGIC_COOKIE.to_be_bytes()
}
