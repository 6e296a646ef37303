//! The checks the `stun_decode` fuzz target runs on every input.
//!
//! Shared, through `#[path]`, with `crates/stun/tests/fuzz_corpus.rs` (which replays the
//! committed corpus) and `crates/stun/tests/proptest.rs` (which feeds it mutated messages),
//! so that the fuzz crate stays out of the workspace and the checks exist once.
//!
//! Every check panics on failure: a panic is what libFuzzer reports as a crash.

use stun::attributes::{
    Data, ErrorCode, Fingerprint, Lifetime, MessageIntegrity, MessageIntegritySha256, Nonce,
    PasswordAlgorithms, Realm, Software, UnknownAttributes, Username, XorMappedAddress,
    XorPeerAddress,
};
use stun::framing::{next_frame, Frame};
use stun::{AnyAttribute, AttributeType, IntegrityError, Message, MessageWriter, HEADER_LEN};

/// The key every integrity check uses (the RFC 5769 short-term password, so that the
/// RFC 5769 seeds verify).
const KEY: &[u8] = b"VOkJxbRl1RmTxUk/WvJxBt";

/// Room for the largest message: 20 bytes of header and 65535 of attributes.
const REENCODE_BUFFER: usize = 70 * 1024;

/// Runs every check on `data`; returns true when it decoded as a STUN message.
pub fn check(data: &[u8]) -> bool {
    check_framing(data);
    let Ok(message) = Message::decode(data) else {
        return false;
    };
    exercise(&message);
    re_encode(&message);
    true
}

/// Stream framing never claims more bytes than it was given.
fn check_framing(data: &[u8]) {
    match next_frame(data) {
        Frame::Stun(n) => {
            assert!(
                (HEADER_LEN..=data.len()).contains(&n),
                "Stun({n}) of {} bytes",
                data.len()
            );
            assert_eq!(
                next_frame(&data[..n]),
                Frame::Stun(n),
                "a frame is stable when cut"
            );
        }
        Frame::ChannelData(n) => {
            assert!(
                (4..=data.len()).contains(&n),
                "ChannelData({n}) of {} bytes",
                data.len()
            );
            assert_eq!(
                next_frame(&data[..n]),
                Frame::ChannelData(n),
                "stable when cut"
            );
        }
        Frame::Incomplete | Frame::Invalid => {}
    }
}

/// Calls every accessor and checks that they agree with each other.
fn exercise(m: &Message<'_>) {
    let tid = m.header().transaction_id;
    assert_eq!(
        usize::from(m.header().length) + HEADER_LEN,
        m.as_bytes().len()
    );
    let mut last = None;
    for raw in m.attributes() {
        last = Some(raw.attribute);
        // Every typed decoder accepts exactly the bytes it would write back.
        if let Ok(any) = AnyAttribute::decode(raw.attribute, raw.value, &tid) {
            assert_eq!(any.attribute_type(), raw.attribute);
            assert_eq!(
                any.encoded_len(),
                raw.value.len(),
                "{:?} changes length",
                raw.attribute
            );
        }
    }
    assert_eq!(m.decoded_attributes().count(), m.attributes().count());
    if m.has_fingerprint() {
        assert_eq!(
            last,
            Some(AttributeType::FINGERPRINT),
            "FINGERPRINT is last"
        );
    }
    for unknown in m.unknown_comprehension_required() {
        assert!(unknown.is_comprehension_required() && !unknown.is_known());
        assert!(m.attributes().any(|raw| raw.attribute == unknown));
    }
    let sha1 = m.verify_integrity(KEY);
    let sha256 = m.verify_integrity_sha256(KEY);
    assert_eq!(
        sha1 == Err(IntegrityError::Missing),
        !m.contains::<MessageIntegrity>()
    );
    assert_eq!(
        sha256 == Err(IntegrityError::Missing),
        !m.contains::<MessageIntegritySha256<'_>>()
    );
    let missing = Err(IntegrityError::Missing);
    assert_eq!(m.has_integrity(), sha1 != missing || sha256 != missing);
    exercise_getters(m);
}

/// The typed getters, including the iterators some attributes carry.
fn exercise_getters(m: &Message<'_>) {
    let _ = m.get::<XorMappedAddress>();
    let _ = m.get::<Username<'_>>();
    let _ = m.get::<Realm<'_>>();
    let _ = m.get::<Nonce<'_>>();
    let _ = m.get::<Software<'_>>();
    let _ = m.get::<ErrorCode<'_>>();
    let _ = m.get::<Lifetime>();
    let _ = m.get::<Data<'_>>();
    let _ = m.get::<Fingerprint>();
    let _ = m.get_all::<XorPeerAddress>().count();
    if let Some(Ok(list)) = m.get::<UnknownAttributes<'_>>() {
        let _ = list.iter().count();
    }
    if let Some(Ok(list)) = m.get::<PasswordAlgorithms<'_>>() {
        let _ = list.iter().count();
    }
}

/// Writes every attribute that counts back with [`MessageWriter::add_any`] (typed when it
/// decodes, raw when not; FINGERPRINT recomputed) and decodes the result: it must decode,
/// to the same header and the same attributes.
fn re_encode(m: &Message<'_>) {
    let header = m.header();
    let tid = header.transaction_id;
    let mut buf = vec![0u8; REENCODE_BUFFER];
    let mut w = MessageWriter::with_cookie(&mut buf, header.message_type, header.cookie, tid)
        .expect("70 KB hold a header");
    for raw in m.attributes() {
        if raw.attribute == AttributeType::FINGERPRINT {
            w.add_fingerprint().expect("FINGERPRINT closes the message");
            continue;
        }
        let any =
            AnyAttribute::decode(raw.attribute, raw.value, &tid).unwrap_or(AnyAttribute::Unknown {
                attribute: raw.attribute,
                value: raw.value,
            });
        w.add_any(&any)
            .unwrap_or_else(|e| panic!("re-encoding {any:?}: {e}"));
    }
    let len = w.finish();
    assert!(
        len <= m.as_bytes().len(),
        "re-encoding never grows a message"
    );
    let again = Message::decode(&buf[..len]).expect("a re-encoded message decodes");
    assert_eq!(again.header().message_type, header.message_type);
    assert_eq!(again.header().cookie, header.cookie);
    assert_eq!(again.header().transaction_id, tid);
    assert_eq!(again.has_fingerprint(), m.has_fingerprint());
    assert_eq!(again.has_integrity(), m.has_integrity());
    assert!(again
        .unknown_comprehension_required()
        .eq(m.unknown_comprehension_required()));
    assert_eq!(again.attributes().count(), m.attributes().count());
    for (before, after) in m.decoded_attributes().zip(again.decoded_attributes()) {
        match (before, after) {
            // The CRC covers bytes the typed decoders normalise (RFFU, padding): not compared.
            (Ok(AnyAttribute::Fingerprint(_)), Ok(AnyAttribute::Fingerprint(_))) => {}
            (before, after) => assert_eq!(before, after),
        }
    }
}
