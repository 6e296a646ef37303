//! Replays the committed fuzz corpus (`fuzz/corpus/stun_decode/`) through the checks the
//! `stun_decode` fuzz target runs, so that `cargo test` catches a regression on any seed or
//! past crash without nightly or cargo-fuzz.
//!
//! The seeds are written by `write_seed_corpus` below (ignored; run it by name to rewrite
//! them). Crash reproducers found by the fuzzer are added to the directory by hand, named
//! `crash-*`.

use std::fs;
use std::path::PathBuf;

use stun::attributes::{
    AdditionalAddressFamily, AddressErrorCode, AddressFamily, AlternateDomain, AlternateServer,
    CacheTimeout, ChangeRequest, ChangedAddress, ChannelNumber, ConnectionId, Data, DontFragment,
    EvenPort, IceControlled, IceControlling, Icmp, Lifetime, MappedAddress, Nonce, OtherAddress,
    Padding, Password, PasswordAlgorithm, PasswordAlgorithmId, PasswordAlgorithms, Priority, Realm,
    ReflectedFrom, RequestedAddressFamily, RequestedTransport, ReservationToken, ResponseAddress,
    ResponseOrigin, ResponsePort, Software, SourceAddress, UnknownAttributes, UseCandidate,
    Userhash, Username, XorMappedAddress, XorPeerAddress, XorRelayedAddress,
};
use stun::{
    error_code, AnyAttribute, AttributeType, Class, MessageType, MessageWriter, Method,
    TransactionId,
};

#[path = "../../../fuzz/fuzz_targets/check.rs"]
mod check;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/stun_decode")
}

#[test]
fn every_corpus_file_passes_the_fuzz_checks() {
    let mut files: Vec<PathBuf> = fs::read_dir(corpus_dir())
        .expect("fuzz/corpus/stun_decode exists")
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "the corpus at {} is empty",
        corpus_dir().display()
    );
    let mut decoded = 0;
    for path in &files {
        let bytes = fs::read(path).expect("readable corpus file");
        let result = std::panic::catch_unwind(|| check::check(&bytes));
        match result {
            Ok(true) => decoded += 1,
            Ok(false) => {}
            Err(_) => panic!("{} fails the fuzz checks", path.display()),
        }
    }
    // Most seeds are valid messages: a codec that rejects them all has regressed.
    assert!(
        decoded * 2 > files.len(),
        "only {decoded} of {} corpus files decode",
        files.len()
    );
}

// ---------------------------------------------------------------------------------------
// The seed corpus.

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("seed construction cannot fail"))
        .collect()
}

/// RFC 5769 §2.1 to §2.4, as in `rfc5769.rs`.
const RFC5769: [(&str, &str); 4] = [
    ("rfc5769-2.1-request", "000100582112a442b7e7a701bc34d686fa87dfae802200105354554e207465737420636c69656e74002400046e0001ff80290008932ff9b151263b36000600096576746a3a68367659202020000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a280280004e57a3bcf"),
    ("rfc5769-2.2-response-ipv4", "0101003c2112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220002000080001a147e112a643000800142b91f599fd9e90c38c7489f92af9ba53f06be7d780280004c07d4c96"),
    ("rfc5769-2.3-response-ipv6", "010100482112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220002000140002a1470113a9faa5d3f179bc25f4b5bed2b9d900080014a382954e4be67bf11784c97c8292c275bfe3ed4180280004c8fb0b4c"),
    ("rfc5769-2.4-request-long-term", "000100602112a44278ad3433c6ad72c029da412e00060012e3839ee38388e383aae38383e382afe382b900000015001c662f2f3439396b39353464364f4c33346f4c394653547679363473410014000b6578616d706c652e6f72670000080014f67024656dd64a3e02b8e0712e85c9a28ca89666"),
];

/// The key the fuzz checks verify with (`check.rs`), so that these seeds reach the
/// successful HMAC path too.
const KEY: &[u8] = b"VOkJxbRl1RmTxUk/WvJxBt";

/// What to close a written seed with.
#[derive(Clone, Copy)]
enum Close {
    Nothing,
    Fingerprint,
    Integrity,
    IntegrityFingerprint,
    Sha256Fingerprint,
    All,
}

fn written(method: Method, class: Class, attributes: &[AnyAttribute<'_>], close: Close) -> Vec<u8> {
    let mut buf = vec![0u8; 2048];
    let tid = TransactionId(*b"turnpike-fz1");
    let mut w = MessageWriter::new(&mut buf, MessageType::new(method, class), tid)
        .expect("seed construction cannot fail");
    for a in attributes {
        w.add_any(a).expect("seed construction cannot fail");
    }
    let (mi, mi256, fp) = match close {
        Close::Nothing => (false, false, false),
        Close::Fingerprint => (false, false, true),
        Close::Integrity => (true, false, false),
        Close::IntegrityFingerprint => (true, false, true),
        Close::Sha256Fingerprint => (false, true, true),
        Close::All => (true, true, true),
    };
    if mi {
        w.add_message_integrity(KEY)
            .expect("seed construction cannot fail");
    }
    if mi256 {
        w.add_message_integrity_sha256(KEY)
            .expect("seed construction cannot fail");
    }
    if fp {
        w.add_fingerprint().expect("seed construction cannot fail");
    }
    let len = w.finish();
    buf.truncate(len);
    buf
}

/// Every seed, by file name.
fn seeds() -> Vec<(String, Vec<u8>)> {
    let v4 = "192.0.2.1:32853"
        .parse()
        .expect("seed construction cannot fail");
    let v4b = "198.51.100.7:3479"
        .parse()
        .expect("seed construction cannot fail");
    let v6 = "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
        .parse()
        .expect("seed construction cannot fail");
    let unknown = [AttributeType(0x0031), AttributeType(0x7001)];
    let algorithms = [PasswordAlgorithmId::SHA256, PasswordAlgorithmId::MD5];
    use AnyAttribute as A;
    use Method as M;
    let mut seeds: Vec<(String, Vec<u8>)> = RFC5769
        .iter()
        .map(|(name, h)| (name.to_string(), hex(h)))
        .collect();
    let mut add = |name: &str, bytes: Vec<u8>| seeds.push((name.to_string(), bytes));

    // RFC 3489 §11.1: no magic cookie, a 128-bit transaction id; one plain, one asking the
    // server to change address and port.
    let mut classic = hex("000100002b9c6cf04d1ac37e61b09a3e5f8f7a21");
    add("rfc3489-binding-request", classic.clone());
    classic[3] = 8;
    classic.extend_from_slice(&hex("0003000400000006"));
    add("rfc3489-binding-request-change-request", classic);

    add(
        "binding-request-minimal",
        written(M::BINDING, Class::Request, &[], Close::Nothing),
    );
    add(
        "binding-success-addresses",
        written(
            M::BINDING,
            Class::Success,
            &[
                A::XorMappedAddress(XorMappedAddress(v4)),
                A::MappedAddress(MappedAddress(v6)),
                A::ResponseOrigin(ResponseOrigin(v4b)),
                A::OtherAddress(OtherAddress(v6)),
                A::Software(Software("turnpike fuzz seed")),
            ],
            Close::Fingerprint,
        ),
    );
    add(
        "binding-success-rfc3489-addresses",
        written(
            M::BINDING,
            Class::Success,
            &[
                A::SourceAddress(SourceAddress(v4b)),
                A::ChangedAddress(ChangedAddress(v4)),
                A::ResponseAddress(ResponseAddress(v6)),
                A::ReflectedFrom(ReflectedFrom(v4)),
                A::Password(Password(b"classic shared secret")),
            ],
            Close::Nothing,
        ),
    );
    add(
        "binding-request-rfc5780",
        written(
            M::BINDING,
            Class::Request,
            &[
                A::ChangeRequest(ChangeRequest {
                    change_ip: true,
                    change_port: false,
                }),
                A::ResponsePort(ResponsePort(40_000)),
                A::Padding(Padding(&[0; 37])),
                A::CacheTimeout(CacheTimeout(600)),
            ],
            Close::Fingerprint,
        ),
    );
    add(
        "binding-request-ice",
        written(
            M::BINDING,
            Class::Request,
            &[
                A::Username(Username("evtj:h6vY")),
                A::Priority(Priority(0x6e00_01ff)),
                A::IceControlling(IceControlling(0x932f_f9b1_5126_3b36)),
                A::UseCandidate(UseCandidate),
            ],
            Close::IntegrityFingerprint,
        ),
    );
    add(
        "binding-error-487-ice-controlled",
        written(
            M::BINDING,
            Class::Error,
            &[
                A::ErrorCode(error_code::ROLE_CONFLICT),
                A::IceControlled(IceControlled(7)),
            ],
            Close::IntegrityFingerprint,
        ),
    );
    add(
        "allocate-request-long-term",
        written(
            M::ALLOCATE,
            Class::Request,
            &[
                A::RequestedTransport(RequestedTransport(RequestedTransport::UDP)),
                A::Lifetime(Lifetime(600)),
                A::DontFragment(DontFragment),
                A::EvenPort(EvenPort { reserve_next: true }),
                A::RequestedAddressFamily(RequestedAddressFamily(AddressFamily::IPV6)),
                A::Username(Username("alice")),
                A::Realm(Realm("example.org")),
                A::Nonce(Nonce("f//499k954d6OL34oL9FSTvy64sA")),
            ],
            Close::IntegrityFingerprint,
        ),
    );
    add(
        "allocate-request-sha256-userhash",
        written(
            M::ALLOCATE,
            Class::Request,
            &[
                A::RequestedTransport(RequestedTransport(RequestedTransport::TCP)),
                A::AdditionalAddressFamily(AdditionalAddressFamily(AddressFamily::IPV6)),
                A::Userhash(Userhash(stun::userhash("alice", "example.org"))),
                A::PasswordAlgorithm(PasswordAlgorithm {
                    algorithm: PasswordAlgorithmId::SHA256,
                    parameters: &[],
                }),
                A::Realm(Realm("example.org")),
                A::Nonce(Nonce("obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA")),
            ],
            Close::Sha256Fingerprint,
        ),
    );
    add(
        "allocate-success",
        written(
            M::ALLOCATE,
            Class::Success,
            &[
                A::XorRelayedAddress(XorRelayedAddress(v4b)),
                A::XorRelayedAddress(XorRelayedAddress(v6)),
                A::XorMappedAddress(XorMappedAddress(v4)),
                A::Lifetime(Lifetime(600)),
                A::ReservationToken(ReservationToken(*b"tokentok")),
                A::AddressErrorCode(AddressErrorCode {
                    family: AddressFamily::IPV6,
                    code: 440,
                    reason: "Address Family not Supported",
                }),
            ],
            Close::All,
        ),
    );
    add(
        "allocate-error-401",
        written(
            M::ALLOCATE,
            Class::Error,
            &[
                A::ErrorCode(error_code::UNAUTHORIZED),
                A::Realm(Realm("example.org")),
                A::Nonce(Nonce("obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA")),
                A::PasswordAlgorithms(PasswordAlgorithms::new(&algorithms)),
                A::Software(Software("turnpike")),
            ],
            Close::Fingerprint,
        ),
    );
    add(
        "allocate-error-420-unknown-attributes",
        written(
            M::ALLOCATE,
            Class::Error,
            &[
                A::ErrorCode(error_code::UNKNOWN_ATTRIBUTE),
                A::UnknownAttributes(UnknownAttributes::new(&unknown)),
            ],
            Close::Nothing,
        ),
    );
    add(
        "allocate-request-unknown-attributes",
        written(
            M::ALLOCATE,
            Class::Request,
            &[
                A::Unknown {
                    attribute: AttributeType(0x0031),
                    value: b"required",
                },
                A::Unknown {
                    attribute: AttributeType(0x8055),
                    value: b"optional!",
                },
            ],
            Close::Nothing,
        ),
    );
    add(
        "refresh-error-300-alternate",
        written(
            M::REFRESH,
            Class::Error,
            &[
                A::ErrorCode(error_code::TRY_ALTERNATE),
                A::AlternateServer(AlternateServer(v6)),
                A::AlternateDomain(AlternateDomain("turn.example.org")),
            ],
            Close::Integrity,
        ),
    );
    add(
        "send-indication",
        written(
            M::SEND,
            Class::Indication,
            &[
                A::XorPeerAddress(XorPeerAddress(v4b)),
                A::Data(Data(b"hello, peer")),
            ],
            Close::Nothing,
        ),
    );
    add(
        "data-indication-icmp",
        written(
            M::DATA,
            Class::Indication,
            &[
                A::XorPeerAddress(XorPeerAddress(v6)),
                A::Icmp(Icmp {
                    icmp_type: 3,
                    icmp_code: 4,
                    error_data: 1280,
                }),
            ],
            Close::Nothing,
        ),
    );
    add(
        "create-permission-request",
        written(
            M::CREATE_PERMISSION,
            Class::Request,
            &[
                A::XorPeerAddress(XorPeerAddress(v4)),
                A::XorPeerAddress(XorPeerAddress(v4b)),
                A::XorPeerAddress(XorPeerAddress(v6)),
            ],
            Close::IntegrityFingerprint,
        ),
    );
    add(
        "channel-bind-request",
        written(
            M::CHANNEL_BIND,
            Class::Request,
            &[
                A::ChannelNumber(ChannelNumber(0x4001)),
                A::XorPeerAddress(XorPeerAddress(v4)),
            ],
            Close::IntegrityFingerprint,
        ),
    );
    add(
        "connection-bind-request",
        written(
            M::CONNECTION_BIND,
            Class::Request,
            &[A::ConnectionId(ConnectionId(0xdead_beef))],
            Close::Integrity,
        ),
    );

    // RFC 8656 §12.4: ChannelData, which the STUN decoder must reject without panicking.
    add("channel-data", hex("4001000568656c6c6f000000"));
    // Damaged messages: cut mid-attribute, header promising more than present, an
    // attribute after FINGERPRINT.
    let request = hex(RFC5769[0].1);
    add("truncated-rfc5769-2.1", request[..50].to_vec());
    let mut promise = written(M::BINDING, Class::Request, &[], Close::Nothing);
    promise[3] = 8;
    add("header-length-past-end", promise);
    let mut after_fp = written(M::BINDING, Class::Request, &[], Close::Fingerprint);
    after_fp[3] += 8;
    after_fp.extend_from_slice(&hex("8022000474657374"));
    add("attribute-after-fingerprint", after_fp);
    seeds
}

/// Rewrites the seed files (not the `crash-*` reproducers):
/// `cargo test -p turnpike-stun --test fuzz_corpus -- --ignored write_seed_corpus`.
#[test]
#[ignore = "writes into fuzz/corpus; run by hand when the seeds change"]
fn write_seed_corpus() {
    fs::create_dir_all(corpus_dir()).unwrap();
    for (name, bytes) in seeds() {
        fs::write(corpus_dir().join(name), bytes).unwrap();
    }
}

/// The seeds hold what their names say: the valid ones decode, the damaged ones do not.
#[test]
fn seeds_are_what_they_claim() {
    let damaged = [
        "channel-data",
        "truncated-",
        "header-length-",
        "attribute-after-",
    ];
    for (name, bytes) in seeds() {
        let is_damaged = damaged.iter().any(|prefix| name.starts_with(prefix));
        assert_eq!(check::check(&bytes), !is_damaged, "{name}");
    }
}
