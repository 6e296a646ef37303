//! STUN codec micro-benchmarks: decode, typed read, encode into a stack buffer, integrity
//! and key derivation. Results and the command that produced them: `docs/benchmarks.md`.
//!
//! `cargo bench -p turnpike-stun --bench codec -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::net::SocketAddr;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use stun::attributes::{PasswordAlgorithmId, Software, XorMappedAddress};
use stun::{Class, LongTermKey, Message, MessageType, MessageWriter, Method, TransactionId};

/// RFC 5769 §2.1: Binding request with SOFTWARE, PRIORITY, ICE-CONTROLLED, USERNAME,
/// MESSAGE-INTEGRITY and FINGERPRINT (108 bytes).
const RFC5769_REQUEST: &str = "000100582112a442b7e7a701bc34d686fa87dfae802200105354554e207465737420636c69656e74002400046e0001ff80290008932ff9b151263b36000600096576746a3a68367659202020000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a280280004e57a3bcf";
/// RFC 5769 §2.2: Binding success with SOFTWARE, XOR-MAPPED-ADDRESS (IPv4),
/// MESSAGE-INTEGRITY and FINGERPRINT (80 bytes).
const RFC5769_RESPONSE_V4: &str = "0101003c2112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220002000080001a147e112a643000800142b91f599fd9e90c38c7489f92af9ba53f06be7d780280004c07d4c96";
/// The RFC 5769 short-term password.
const PASSWORD: &[u8] = b"VOkJxbRl1RmTxUk/WvJxBt";

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digits"))
        .collect()
}

fn tid() -> TransactionId {
    TransactionId([
        0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
    ])
}

fn mapped() -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 1], 32853))
}

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(1));
    let request = hex(RFC5769_REQUEST);
    g.bench_function("rfc5769_request_with_fingerprint", |b| {
        b.iter(|| Message::decode(black_box(&request)).expect("valid vector"))
    });
    let mut minimal = [0u8; 20];
    let len = MessageWriter::new(&mut minimal, MessageType::BINDING_REQUEST, tid())
        .expect("20 bytes hold a header")
        .finish();
    g.bench_function("binding_request_minimal", |b| {
        b.iter(|| Message::decode(black_box(&minimal[..len])).expect("valid header"))
    });
    let response = hex(RFC5769_RESPONSE_V4);
    g.bench_function("rfc5769_response_get_xor_mapped_address", |b| {
        b.iter(|| {
            let m = Message::decode(black_box(&response)).expect("valid vector");
            m.get::<XorMappedAddress>()
                .expect("present")
                .expect("valid")
        })
    });
    g.finish();
}

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(1));
    let success = MessageType::new(Method::BINDING, Class::Success);
    g.bench_function("binding_success_xor_mapped_address", |b| {
        b.iter(|| {
            let mut buf = [0u8; 64];
            let mut w = MessageWriter::new(&mut buf, success, black_box(tid())).expect("room");
            w.add(&XorMappedAddress(black_box(mapped()))).expect("room");
            let len = w.finish();
            black_box(buf);
            len
        })
    });
    g.bench_function("binding_success_integrity_fingerprint", |b| {
        b.iter(|| {
            let mut buf = [0u8; 128];
            let mut w = MessageWriter::new(&mut buf, success, black_box(tid())).expect("room");
            w.add(&Software("test vector")).expect("room");
            w.add(&XorMappedAddress(black_box(mapped()))).expect("room");
            w.add_message_integrity(black_box(PASSWORD))
                .expect("in order");
            w.add_fingerprint().expect("in order");
            let len = w.finish();
            black_box(buf);
            len
        })
    });
    g.finish();
}

fn integrity(c: &mut Criterion) {
    let mut g = c.benchmark_group("integrity");
    g.throughput(Throughput::Elements(1));
    let request = hex(RFC5769_REQUEST);
    let m = Message::decode(&request).expect("valid vector");
    g.bench_function("verify_hmac_sha1", |b| {
        b.iter(|| m.verify_integrity(black_box(PASSWORD)).expect("verifies"))
    });
    let mut buf = [0u8; 128];
    let mut w = MessageWriter::new(&mut buf, MessageType::BINDING_REQUEST, tid()).expect("room");
    w.add(&Software("STUN test client")).expect("room");
    w.add_message_integrity_sha256(PASSWORD).expect("in order");
    w.add_fingerprint().expect("in order");
    let len = w.finish();
    let m = Message::decode(&buf[..len]).expect("written message decodes");
    g.bench_function("verify_hmac_sha256", |b| {
        b.iter(|| {
            m.verify_integrity_sha256(black_box(PASSWORD))
                .expect("verifies")
        })
    });
    g.bench_function("long_term_key_derive_md5", |b| {
        b.iter(|| {
            LongTermKey::derive(
                PasswordAlgorithmId::MD5,
                black_box("evtj:h6vY"),
                black_box("example.org"),
                black_box("VOkJxbRl1RmTxUk/WvJxBt"),
            )
            .expect("MD5 is defined")
        })
    });
    g.finish();
}

criterion_group!(benches, decode, encode, integrity);
criterion_main!(benches);
