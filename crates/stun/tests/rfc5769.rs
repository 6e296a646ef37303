//! RFC 5769 test vectors: every sample parses, and its integrity and fingerprint verify.

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use stun::attributes::PasswordAlgorithmId;
use stun::attributes::{
    IceControlled, Nonce, Priority, Realm, Software, Username, XorMappedAddress,
};
use stun::{Class, DecodeError, LongTermKey, Message, MessageType, MessageWriter, Method};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const PASSWORD: &[u8] = b"VOkJxbRl1RmTxUk/WvJxBt";

/// RFC 5769 §2.1.
const REQUEST: &str = "000100582112a442b7e7a701bc34d686fa87dfae802200105354554e207465737420636c69656e74002400046e0001ff80290008932ff9b151263b36000600096576746a3a68367659202020000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a280280004e57a3bcf";
/// RFC 5769 §2.2.
const RESPONSE_V4: &str = "0101003c2112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220002000080001a147e112a643000800142b91f599fd9e90c38c7489f92af9ba53f06be7d780280004c07d4c96";
/// RFC 5769 §2.3.
const RESPONSE_V6: &str = "010100482112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220002000140002a1470113a9faa5d3f179bc25f4b5bed2b9d900080014a382954e4be67bf11784c97c8292c275bfe3ed4180280004c8fb0b4c";
/// RFC 5769 §2.4.
const REQUEST_LONG_TERM: &str = "000100602112a44278ad3433c6ad72c029da412e00060012e3839ee38388e383aae38383e382afe382b900000015001c662f2f3439396b39353464364f4c33346f4c394653547679363473410014000b6578616d706c652e6f72670000080014f67024656dd64a3e02b8e0712e85c9a28ca89666";

#[test]
fn rfc5769_2_1_sample_request() {
    let bytes = hex(REQUEST);
    let m = Message::decode(&bytes).unwrap();
    assert_eq!(
        m.header().message_type,
        MessageType::new(Method::BINDING, Class::Request)
    );
    assert_eq!(
        m.get::<Software<'_>>().unwrap().unwrap(),
        Software("STUN test client")
    );
    assert_eq!(m.get::<Priority>().unwrap().unwrap(), Priority(0x6e0001ff));
    assert_eq!(
        m.get::<IceControlled>().unwrap().unwrap(),
        IceControlled(0x932ff9b151263b36)
    );
    assert_eq!(
        m.get::<Username<'_>>().unwrap().unwrap(),
        Username("evtj:h6vY")
    );
    assert!(m.has_fingerprint());
    m.verify_integrity(PASSWORD).unwrap();
    assert!(m.verify_integrity(b"wrong password").is_err());
    assert_eq!(m.unknown_comprehension_required().count(), 0);
}

#[test]
fn rfc5769_2_2_sample_ipv4_response() {
    let bytes = hex(RESPONSE_V4);
    let m = Message::decode(&bytes).unwrap();
    assert_eq!(
        m.header().message_type,
        MessageType::new(Method::BINDING, Class::Success)
    );
    assert_eq!(
        m.get::<Software<'_>>().unwrap().unwrap(),
        Software("test vector")
    );
    let mapped = m.get::<XorMappedAddress>().unwrap().unwrap();
    assert_eq!(mapped.0, "192.0.2.1:32853".parse().unwrap());
    m.verify_integrity(PASSWORD).unwrap();
}

#[test]
fn rfc5769_2_3_sample_ipv6_response() {
    let bytes = hex(RESPONSE_V6);
    let m = Message::decode(&bytes).unwrap();
    let mapped = m.get::<XorMappedAddress>().unwrap().unwrap();
    assert_eq!(
        mapped.0,
        "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
            .parse()
            .unwrap()
    );
    m.verify_integrity(PASSWORD).unwrap();
    assert!(m.has_fingerprint());
}

#[test]
fn rfc5769_2_4_sample_request_with_long_term_authentication() {
    let bytes = hex(REQUEST_LONG_TERM);
    let m = Message::decode(&bytes).unwrap();
    let username = m.get::<Username<'_>>().unwrap().unwrap().0;
    assert_eq!(username, "\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}");
    assert_eq!(
        m.get::<Nonce<'_>>().unwrap().unwrap(),
        Nonce("f//499k954d6OL34oL9FSTvy64sA")
    );
    let realm = m.get::<Realm<'_>>().unwrap().unwrap().0;
    assert_eq!(realm, "example.org");
    // The password before SASLprep; the key derivation applies it (RFC 5389 §15.4).
    let key = LongTermKey::derive(
        PasswordAlgorithmId::MD5,
        username,
        realm,
        "The\u{00AD}M\u{00AA}tr\u{2168}",
    )
    .unwrap();
    m.verify_integrity(key.as_bytes()).unwrap();
    let wrong =
        LongTermKey::derive(PasswordAlgorithmId::MD5, username, realm, "TheMatrix").unwrap();
    assert!(m.verify_integrity(wrong.as_bytes()).is_err());
}

/// Flipping any bit of a protected vector never leaves a message that still passes both its
/// FINGERPRINT and its MESSAGE-INTEGRITY check. (A flipped length can make an attribute
/// swallow MESSAGE-INTEGRITY and FINGERPRINT: that message decodes, but unprotected.)
#[test]
fn rfc5769_vectors_detect_every_single_bit_flip() {
    for vector in [REQUEST, RESPONSE_V4, RESPONSE_V6] {
        let good = hex(vector);
        for bit in 0..good.len() * 8 {
            let mut bad = good.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            if let Ok(m) = Message::decode(&bad) {
                let still_protected = m.has_fingerprint() && m.verify_integrity(PASSWORD).is_ok();
                assert!(
                    !still_protected,
                    "bit {bit} flipped and the message still verifies"
                );
            }
        }
    }
}

/// Our writer produces the same attribute bytes as the vector, and a message that verifies.
#[test]
fn rfc5769_2_2_re_encoded() {
    let bytes = hex(RESPONSE_V4);
    let m = Message::decode(&bytes).unwrap();
    let mut buf = [0u8; 128];
    let mut w = MessageWriter::response(&mut buf, m.header(), Class::Success).unwrap();
    w.add(&Software("test vector")).unwrap();
    w.add(&XorMappedAddress("192.0.2.1:32853".parse().unwrap()))
        .unwrap();
    w.add_message_integrity(PASSWORD).unwrap();
    w.add_fingerprint().unwrap();
    let len = w.finish();
    assert_eq!(len, bytes.len());
    // Identical but for SOFTWARE's padding byte (the vector pads with 0x20, we with 0) and
    // the HMAC and CRC that cover it.
    assert_eq!(&buf[..20], &bytes[..20]);
    assert_eq!(&buf[36..48], &bytes[36..48], "XOR-MAPPED-ADDRESS bytes");
    let again = Message::decode(&buf[..len]).unwrap();
    again.verify_integrity(PASSWORD).unwrap();
}

#[test]
fn truncated_vectors_are_rejected() {
    let bytes = hex(REQUEST);
    for cut in 0..bytes.len() {
        assert!(Message::decode(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    assert_eq!(
        Message::decode(&bytes[..19]).unwrap_err(),
        DecodeError::NotStun
    );
}
