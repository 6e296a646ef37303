//! Property tests (ARCHITECTURE.md, test layer 3): `decode(encode(x)) == x` for every typed
//! attribute, and decoding never panics on arbitrary, structured-random or mutated bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use proptest::prelude::*;
use proptest::sample::Index;
use stun::attributes::{
    AdditionalAddressFamily, AddressErrorCode, AddressFamily, AlternateDomain, AlternateServer,
    CacheTimeout, ChangeRequest, ChangedAddress, ChannelNumber, ConnectionId, Data, DontFragment,
    ErrorCode, EvenPort, IceControlled, IceControlling, Icmp, Lifetime, MappedAddress,
    MessageIntegritySha256, Nonce, OtherAddress, Padding, Password, PasswordAlgorithm,
    PasswordAlgorithmId, PasswordAlgorithms, Priority, Realm, ReflectedFrom,
    RequestedAddressFamily, RequestedTransport, ReservationToken, ResponseAddress, ResponseOrigin,
    ResponsePort, Software, SourceAddress, UnknownAttributes, UseCandidate, Userhash, Username,
    XorMappedAddress, XorPeerAddress, XorRelayedAddress,
};
use stun::framing::{next_frame, Frame};
use stun::{
    AnyAttribute, AttributeType, Class, IntegrityError, Message, MessageType, MessageWriter,
    Method, TransactionId, HEADER_LEN, MAGIC_COOKIE,
};

#[path = "../../../fuzz/fuzz_targets/check.rs"]
mod check;

/// 512 cases a property: the whole suite stays within seconds in a debug build.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------
// Strategies: attributes are generated as owned data, then borrowed as `AnyAttribute`.

/// A text attribute; the variant says which limits apply.
#[derive(Debug, Clone, Copy)]
enum TextKind {
    Username,
    Realm,
    Nonce,
    Software,
    AlternateDomain,
}

/// An opaque-bytes attribute.
#[derive(Debug, Clone, Copy)]
enum BytesKind {
    Data,
    Padding,
    Password,
}

/// One body attribute (anything but the closing MESSAGE-INTEGRITY(-SHA256) and FINGERPRINT),
/// owning what the borrowed attribute points to.
#[derive(Debug, Clone)]
enum Owned {
    /// Attributes that borrow nothing: addresses, numbers, flags, fixed arrays.
    Plain(AnyAttribute<'static>),
    Text(TextKind, String),
    Bytes(BytesKind, Vec<u8>),
    ErrorCode {
        code: u16,
        reason: String,
    },
    AddressErrorCode {
        family: u8,
        code: u16,
        reason: String,
    },
    UnknownAttributes(Vec<AttributeType>),
    PasswordAlgorithm {
        algorithm: u16,
        parameters: Vec<u8>,
    },
    PasswordAlgorithms(Vec<PasswordAlgorithmId>),
    Unknown(AttributeType, Vec<u8>),
}

impl Owned {
    fn borrow(&self) -> AnyAttribute<'_> {
        match self {
            Owned::Plain(a) => *a,
            Owned::Text(kind, s) => match kind {
                TextKind::Username => AnyAttribute::Username(Username(s)),
                TextKind::Realm => AnyAttribute::Realm(Realm(s)),
                TextKind::Nonce => AnyAttribute::Nonce(Nonce(s)),
                TextKind::Software => AnyAttribute::Software(Software(s)),
                TextKind::AlternateDomain => AnyAttribute::AlternateDomain(AlternateDomain(s)),
            },
            Owned::Bytes(kind, b) => match kind {
                BytesKind::Data => AnyAttribute::Data(Data(b)),
                BytesKind::Padding => AnyAttribute::Padding(Padding(b)),
                BytesKind::Password => AnyAttribute::Password(Password(b)),
            },
            Owned::ErrorCode { code, reason } => AnyAttribute::ErrorCode(ErrorCode {
                code: *code,
                reason,
            }),
            Owned::AddressErrorCode {
                family,
                code,
                reason,
            } => AnyAttribute::AddressErrorCode(AddressErrorCode {
                family: AddressFamily(*family),
                code: *code,
                reason,
            }),
            Owned::UnknownAttributes(types) => {
                AnyAttribute::UnknownAttributes(UnknownAttributes::new(types))
            }
            Owned::PasswordAlgorithm {
                algorithm,
                parameters,
            } => AnyAttribute::PasswordAlgorithm(PasswordAlgorithm {
                algorithm: PasswordAlgorithmId(*algorithm),
                parameters,
            }),
            Owned::PasswordAlgorithms(ids) => {
                AnyAttribute::PasswordAlgorithms(PasswordAlgorithms::new(ids))
            }
            Owned::Unknown(attribute, value) => AnyAttribute::Unknown {
                attribute: *attribute,
                value,
            },
        }
    }
}

fn socket_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port)),
        (any::<[u8; 16]>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port)),
    ]
}

/// Every address attribute, with IPv4 and IPv6 addresses.
fn address_attribute() -> impl Strategy<Value = AnyAttribute<'static>> {
    let kinds: [fn(SocketAddr) -> AnyAttribute<'static>; 11] = [
        |a| AnyAttribute::MappedAddress(MappedAddress(a)),
        |a| AnyAttribute::XorMappedAddress(XorMappedAddress(a)),
        |a| AnyAttribute::XorPeerAddress(XorPeerAddress(a)),
        |a| AnyAttribute::XorRelayedAddress(XorRelayedAddress(a)),
        |a| AnyAttribute::AlternateServer(AlternateServer(a)),
        |a| AnyAttribute::ResponseOrigin(ResponseOrigin(a)),
        |a| AnyAttribute::OtherAddress(OtherAddress(a)),
        |a| AnyAttribute::ResponseAddress(ResponseAddress(a)),
        |a| AnyAttribute::SourceAddress(SourceAddress(a)),
        |a| AnyAttribute::ChangedAddress(ChangedAddress(a)),
        |a| AnyAttribute::ReflectedFrom(ReflectedFrom(a)),
    ];
    (prop::sample::select(kinds.to_vec()), socket_addr()).prop_map(|(kind, addr)| kind(addr))
}

/// Numbers, flags and fixed-size values: everything that borrows nothing.
fn plain_attribute() -> impl Strategy<Value = AnyAttribute<'static>> {
    prop_oneof![
        any::<u32>().prop_map(|v| AnyAttribute::Priority(Priority(v))),
        any::<u64>().prop_map(|v| AnyAttribute::IceControlled(IceControlled(v))),
        any::<u64>().prop_map(|v| AnyAttribute::IceControlling(IceControlling(v))),
        Just(AnyAttribute::UseCandidate(UseCandidate)),
        any::<u32>().prop_map(|v| AnyAttribute::Lifetime(Lifetime(v))),
        any::<u32>().prop_map(|v| AnyAttribute::ConnectionId(ConnectionId(v))),
        any::<u32>().prop_map(|v| AnyAttribute::CacheTimeout(CacheTimeout(v))),
        any::<u16>().prop_map(|v| AnyAttribute::ChannelNumber(ChannelNumber(v))),
        any::<u16>().prop_map(|v| AnyAttribute::ResponsePort(ResponsePort(v))),
        any::<u8>().prop_map(|v| AnyAttribute::RequestedTransport(RequestedTransport(v))),
        any::<u8>().prop_map(|v| {
            AnyAttribute::RequestedAddressFamily(RequestedAddressFamily(AddressFamily(v)))
        }),
        any::<u8>().prop_map(|v| {
            AnyAttribute::AdditionalAddressFamily(AdditionalAddressFamily(AddressFamily(v)))
        }),
        any::<bool>().prop_map(|reserve_next| AnyAttribute::EvenPort(EvenPort { reserve_next })),
        (any::<bool>(), any::<bool>()).prop_map(|(change_ip, change_port)| {
            AnyAttribute::ChangeRequest(ChangeRequest {
                change_ip,
                change_port,
            })
        }),
        Just(AnyAttribute::DontFragment(DontFragment)),
        any::<[u8; 8]>().prop_map(|v| AnyAttribute::ReservationToken(ReservationToken(v))),
        any::<[u8; 32]>().prop_map(|v| AnyAttribute::Userhash(Userhash(v))),
        (0u8..0x80, 0u16..0x200, any::<u32>()).prop_map(|(icmp_type, icmp_code, error_data)| {
            AnyAttribute::Icmp(Icmp {
                icmp_type,
                icmp_code,
                error_data,
            })
        }),
    ]
}

/// Text of fewer than `max_chars` characters (at most 4 bytes each).
fn text(max_chars: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..max_chars).prop_map(String::from_iter)
}

/// Text attributes within their RFC 8489 limits.
fn text_attribute() -> impl Strategy<Value = Owned> {
    prop_oneof![
        // USERNAME: at most 512 bytes, including the boundary.
        prop_oneof![text(128), "[ -~]{0,512}", Just("u".repeat(512))]
            .prop_map(|s| Owned::Text(TextKind::Username, s)),
        // REALM, NONCE, SOFTWARE: fewer than 128 characters.
        text(128).prop_map(|s| Owned::Text(TextKind::Realm, s)),
        text(128).prop_map(|s| Owned::Text(TextKind::Nonce, s)),
        text(128).prop_map(|s| Owned::Text(TextKind::Software, s)),
        // ALTERNATE-DOMAIN: at most 255 bytes.
        text(64).prop_map(|s| Owned::Text(TextKind::AlternateDomain, s)),
    ]
}

/// Attribute types the codec does not know, comprehension-required or optional.
fn unknown_type() -> impl Strategy<Value = AttributeType> {
    any::<u16>()
        .prop_map(AttributeType)
        .prop_filter("known type", |t| !t.is_known())
}

/// Attributes that borrow a string, bytes or a list.
fn borrowing_attribute() -> impl Strategy<Value = Owned> {
    let bytes = || prop::collection::vec(any::<u8>(), 0..200);
    prop_oneof![
        bytes().prop_map(|b| Owned::Bytes(BytesKind::Data, b)),
        bytes().prop_map(|b| Owned::Bytes(BytesKind::Padding, b)),
        bytes().prop_map(|b| Owned::Bytes(BytesKind::Password, b)),
        (300u16..=699, text(32)).prop_map(|(code, reason)| Owned::ErrorCode { code, reason }),
        (any::<u8>(), 300u16..=699, text(32)).prop_map(|(family, code, reason)| {
            Owned::AddressErrorCode {
                family,
                code,
                reason,
            }
        }),
        prop::collection::vec(any::<u16>().prop_map(AttributeType), 0..8)
            .prop_map(Owned::UnknownAttributes),
        (any::<u16>(), prop::collection::vec(any::<u8>(), 0..24)).prop_map(
            |(algorithm, parameters)| Owned::PasswordAlgorithm {
                algorithm,
                parameters
            }
        ),
        prop::collection::vec(any::<u16>().prop_map(PasswordAlgorithmId), 0..6)
            .prop_map(Owned::PasswordAlgorithms),
        (unknown_type(), prop::collection::vec(any::<u8>(), 0..64))
            .prop_map(|(t, v)| Owned::Unknown(t, v)),
    ]
}

fn body_attribute() -> impl Strategy<Value = Owned> {
    prop_oneof![
        address_attribute().prop_map(Owned::Plain),
        plain_attribute().prop_map(Owned::Plain),
        text_attribute(),
        borrowing_attribute(),
    ]
}

/// MESSAGE-INTEGRITY-SHA256 as the writer computes it, or copied in as a truncated value.
#[derive(Debug, Clone)]
enum Sha256Integrity {
    Computed,
    /// 16 to 32 bytes in steps of 4 (RFC 8489 §14.6), not a valid HMAC.
    Raw(Vec<u8>),
}

/// A message to write: header fields, body attributes, closing attributes.
#[derive(Debug, Clone)]
struct Spec {
    message_type: MessageType,
    cookie: u32,
    transaction_id: TransactionId,
    body: Vec<Owned>,
    key: Vec<u8>,
    integrity: bool,
    integrity_sha256: Option<Sha256Integrity>,
    fingerprint: bool,
}

fn message_type() -> impl Strategy<Value = MessageType> {
    let class = prop::sample::select(vec![
        Class::Request,
        Class::Indication,
        Class::Success,
        Class::Error,
    ]);
    (0u16..=0x0FFF, class).prop_map(|(method, class)| {
        MessageType::new(Method::new(method).expect("12-bit method"), class)
    })
}

fn spec() -> impl Strategy<Value = Spec> {
    let sha256 = prop_oneof![
        Just(None),
        Just(Some(Sha256Integrity::Computed)),
        (4usize..=8)
            .prop_flat_map(|words| prop::collection::vec(any::<u8>(), words * 4))
            .prop_map(|raw| Some(Sha256Integrity::Raw(raw))),
    ];
    let cookie = prop_oneof![4 => Just(MAGIC_COOKIE), 1 => any::<u32>()];
    (
        (message_type(), cookie, any::<[u8; 12]>()),
        prop::collection::vec(body_attribute(), 0..=12),
        prop::collection::vec(any::<u8>(), 0..48),
        any::<bool>(),
        sha256,
        any::<bool>(),
    )
        .prop_map(
            |((message_type, cookie, tid), body, key, integrity, integrity_sha256, fp)| Spec {
                message_type,
                cookie,
                transaction_id: TransactionId(tid),
                body,
                key,
                integrity,
                integrity_sha256,
                fingerprint: fp,
            },
        )
}

/// Writes the message `spec` describes into `buf`; returns its length.
fn write(spec: &Spec, buf: &mut [u8]) -> usize {
    let mut w =
        MessageWriter::with_cookie(buf, spec.message_type, spec.cookie, spec.transaction_id)
            .expect("buffer holds a header");
    for attribute in &spec.body {
        w.add_any(&attribute.borrow()).expect("body attribute fits");
    }
    if spec.integrity {
        w.add_message_integrity(&spec.key)
            .expect("MESSAGE-INTEGRITY in order");
    }
    match &spec.integrity_sha256 {
        None => {}
        Some(Sha256Integrity::Computed) => {
            w.add_message_integrity_sha256(&spec.key)
                .expect("-SHA256 in order");
        }
        Some(Sha256Integrity::Raw(raw)) => {
            let truncated = AnyAttribute::MessageIntegritySha256(MessageIntegritySha256(raw));
            w.add_any(&truncated).expect("raw -SHA256 in order");
        }
    }
    if spec.fingerprint {
        w.add_fingerprint().expect("FINGERPRINT closes");
    }
    w.finish()
}

/// Generous for 12 attributes of at most 516 bytes plus the closing ones.
const BUF_LEN: usize = 16 * 1024;

/// A valid message, as bytes.
fn valid_message() -> impl Strategy<Value = Vec<u8>> {
    spec().prop_map(|spec| {
        let mut buf = vec![0u8; BUF_LEN];
        let len = write(&spec, &mut buf);
        buf.truncate(len);
        buf
    })
}

/// A header that passes `Header::parse` and a body of random type-length-value records
/// whose lengths add up: the typed decoders see garbage values.
fn tlv_soup() -> impl Strategy<Value = Vec<u8>> {
    // FINGERPRINT is left out: one in the middle, or a wrong one, fails decoding.
    let not_fingerprint = |t: &u16| AttributeType(*t) != AttributeType::FINGERPRINT;
    let known = prop::sample::select(
        (0..=u16::MAX)
            .filter(|&t| AttributeType(t).is_known() && not_fingerprint(&t))
            .collect::<Vec<_>>(),
    );
    let typ =
        prop_oneof![4 => known, 1 => any::<u16>().prop_filter("FINGERPRINT", not_fingerprint)];
    let record = (typ, prop::collection::vec(any::<u8>(), 0..40));
    (
        0u16..0x4000,
        any::<[u8; 12]>(),
        prop::collection::vec(record, 0..10),
    )
        .prop_map(|(message_type, tid, records)| {
            let mut out = Vec::new();
            out.extend_from_slice(&message_type.to_be_bytes());
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
            out.extend_from_slice(&tid);
            for (typ, value) in records {
                out.extend_from_slice(&typ.to_be_bytes());
                out.extend_from_slice(&(value.len() as u16).to_be_bytes());
                out.extend_from_slice(&value);
                out.resize(out.len().next_multiple_of(4), 0);
            }
            let len = (out.len() - HEADER_LEN) as u16;
            out[2..4].copy_from_slice(&len.to_be_bytes());
            out
        })
}

/// A change to a valid message.
#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(Index, u8),
    SetByte(Index, u8),
    Truncate(Index),
    /// Rewrites the header's length field.
    HeaderLength(u16),
    /// Rewrites the length of one attribute (chosen among those present).
    AttributeLength(Index, u16),
    /// Appends bytes and fixes the header's length, so that decoding gets past it.
    Append(Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let small_len = prop_oneof![0u16..64, any::<u16>()];
    prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(i, bit)| Mutation::FlipBit(i, bit)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::SetByte(i, b)),
        any::<Index>().prop_map(Mutation::Truncate),
        small_len.clone().prop_map(Mutation::HeaderLength),
        (any::<Index>(), small_len).prop_map(|(i, len)| Mutation::AttributeLength(i, len)),
        prop::collection::vec(any::<u8>(), 1..16).prop_map(Mutation::Append),
    ]
}

/// Offsets of the attribute headers of `bytes`, walking the lengths while they fit.
fn attribute_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut at = HEADER_LEN;
    while at + 4 <= bytes.len() {
        offsets.push(at);
        let len = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
        at += 4 + stun::padded_len(len);
    }
    offsets
}

fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    let len = bytes.len();
    if len == 0 {
        return;
    }
    match mutation {
        Mutation::FlipBit(i, bit) => bytes[i.index(len)] ^= 1 << bit,
        Mutation::SetByte(i, b) => bytes[i.index(len)] = *b,
        Mutation::Truncate(i) => bytes.truncate(i.index(len)),
        Mutation::HeaderLength(field) if len >= 4 => {
            bytes[2..4].copy_from_slice(&field.to_be_bytes());
        }
        Mutation::AttributeLength(i, field) => {
            let offsets = attribute_offsets(bytes);
            if !offsets.is_empty() {
                let at = offsets[i.index(offsets.len())];
                bytes[at + 2..at + 4].copy_from_slice(&field.to_be_bytes());
            }
        }
        Mutation::Append(extra) if len >= HEADER_LEN => {
            bytes.extend_from_slice(extra);
            let field = (bytes.len() - HEADER_LEN) as u16;
            bytes[2..4].copy_from_slice(&field.to_be_bytes());
        }
        Mutation::HeaderLength(_) | Mutation::Append(_) => {}
    }
}

// ---------------------------------------------------------------------------------------
// Properties.

proptest! {
    #![proptest_config(config())]

    /// decode(encode(x)) == x: header, every attribute in order, the closing attributes,
    /// integrity with the right and a wrong key, FINGERPRINT iff written.
    #[test]
    fn encode_then_decode_round_trips(spec in spec()) {
        let mut buf = vec![0u8; BUF_LEN];
        let len = write(&spec, &mut buf);
        let bytes = &buf[..len];
        let m = Message::decode(bytes).expect("a written message decodes");

        let header = m.header();
        prop_assert_eq!(header.message_type, spec.message_type);
        prop_assert_eq!(header.cookie, spec.cookie);
        prop_assert_eq!(header.transaction_id, spec.transaction_id);
        prop_assert_eq!(usize::from(header.length), len - HEADER_LEN);

        let decoded: Vec<AnyAttribute<'_>> = m
            .decoded_attributes()
            .collect::<Result<_, _>>()
            .expect("every written attribute decodes");
        let expected: Vec<AnyAttribute<'_>> = spec.body.iter().map(Owned::borrow).collect();
        prop_assert_eq!(&decoded[..expected.len()], &expected[..]);

        // The closing attributes, in order, and nothing after them.
        let mut closing = decoded[expected.len()..].iter();
        if spec.integrity {
            prop_assert!(matches!(closing.next(), Some(AnyAttribute::MessageIntegrity(_))));
        }
        match &spec.integrity_sha256 {
            None => {}
            Some(Sha256Integrity::Computed) => prop_assert!(matches!(
                closing.next(),
                Some(AnyAttribute::MessageIntegritySha256(v)) if v.0.len() == 32
            )),
            Some(Sha256Integrity::Raw(raw)) => prop_assert_eq!(
                closing.next(),
                Some(&AnyAttribute::MessageIntegritySha256(MessageIntegritySha256(raw)))
            ),
        }
        if spec.fingerprint {
            prop_assert!(matches!(closing.next(), Some(AnyAttribute::Fingerprint(_))));
        }
        prop_assert_eq!(closing.next(), None);

        // Integrity: verifies with the key, fails with another (a trailing non-zero byte:
        // HMAC pads short keys with zeros, so a trailing zero would make the same key).
        let wrong_key = [&spec.key[..], b"x"].concat();
        if spec.integrity {
            prop_assert_eq!(m.verify_integrity(&spec.key), Ok(()));
            prop_assert_eq!(m.verify_integrity(&wrong_key), Err(IntegrityError::Mismatch));
        } else {
            prop_assert_eq!(m.verify_integrity(&spec.key), Err(IntegrityError::Missing));
        }
        match &spec.integrity_sha256 {
            None => prop_assert_eq!(
                m.verify_integrity_sha256(&spec.key),
                Err(IntegrityError::Missing)
            ),
            Some(Sha256Integrity::Computed) => {
                prop_assert_eq!(m.verify_integrity_sha256(&spec.key), Ok(()));
                prop_assert_eq!(
                    m.verify_integrity_sha256(&wrong_key),
                    Err(IntegrityError::Mismatch)
                );
            }
            Some(Sha256Integrity::Raw(_)) => prop_assert_eq!(
                m.verify_integrity_sha256(&spec.key),
                Err(IntegrityError::Mismatch)
            ),
        }
        prop_assert_eq!(m.has_integrity(), spec.integrity || spec.integrity_sha256.is_some());
        prop_assert_eq!(m.has_fingerprint(), spec.fingerprint);

        // RFC 8489 §6.3.1: the unknown comprehension-required types, in order.
        let unknown_required: Vec<AttributeType> = expected
            .iter()
            .map(AnyAttribute::attribute_type)
            .filter(|t| t.is_comprehension_required() && !t.is_known())
            .collect();
        prop_assert_eq!(m.unknown_comprehension_required().collect::<Vec<_>>(), unknown_required);

        // And the fuzz target's checks hold for every valid message.
        prop_assert!(check::check(bytes));
    }

    /// Arbitrary bytes never panic the decoder or anything that reads what it decoded.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        check::check(&bytes);
    }

    /// Well-framed messages of random attributes, with garbage values, never panic.
    #[test]
    fn random_attributes_never_panic(bytes in tlv_soup()) {
        prop_assert!(Message::decode(&bytes).is_ok(), "framing is valid, values are not checked");
        check::check(&bytes);
    }

    /// Valid messages with bit flips, truncation and length-field edits never panic.
    #[test]
    fn mutated_messages_never_panic(
        mut bytes in valid_message(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        for mutation in &mutations {
            apply(&mut bytes, mutation);
        }
        check::check(&bytes);
    }

    /// Stream framing never panics and never claims more bytes than it has.
    #[test]
    fn framing_stays_within_the_buffer(
        first in prop_oneof![Just(0x00u8), Just(0x40u8), any::<u8>()],
        rest in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        let mut buf = rest;
        buf.insert(0, first);
        match next_frame(&buf) {
            Frame::Stun(n) => {
                prop_assert!(n >= HEADER_LEN && n <= buf.len());
                prop_assert_eq!(n, HEADER_LEN + usize::from(u16::from_be_bytes([buf[2], buf[3]])));
            }
            Frame::ChannelData(n) => {
                prop_assert!(n >= 4 && n <= buf.len() && n % 4 == 0);
            }
            Frame::Incomplete | Frame::Invalid => {}
        }
        for cut in [0, 1, 3, 4, 19, 20] {
            let prefix = &buf[..cut.min(buf.len())];
            match next_frame(prefix) {
                Frame::Stun(n) | Frame::ChannelData(n) => prop_assert!(n <= prefix.len()),
                Frame::Incomplete | Frame::Invalid => {}
            }
        }
    }
}
