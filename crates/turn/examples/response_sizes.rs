//! Prints the response/request size ratio of the Binding core for typical requests, including
//! the RFC 5780 ones quoted in docs/stun.md. Run: `cargo run -p turnpike-turn --example
//! response_sizes`. The figures from outside (every request type, TURN too, Turnpike next to
//! coturn, and the per-source budget over a burst) come from `tests/interop/amplification.py`.

use std::net::SocketAddr;

use stun::attributes::{ChangeRequest, Software};
use stun::{AnyAttribute, AttributeType, MessageType, MessageWriter, TransactionId};
use turn::{BindingConfig, BindingServer, ServerSockets, SocketId, Transport};

fn request(attributes: &[AnyAttribute<'_>], fingerprint: bool, classic: bool) -> Vec<u8> {
    let mut buf = vec![0u8; 512];
    let mut w = if classic {
        MessageWriter::with_cookie(
            &mut buf,
            MessageType::BINDING_REQUEST,
            0x0102_0304,
            TransactionId([1; 12]),
        )
    } else {
        MessageWriter::new(
            &mut buf,
            MessageType::BINDING_REQUEST,
            TransactionId([1; 12]),
        )
    }
    .expect("512 bytes hold a header");
    for a in attributes {
        w.add_any(a).expect("512 bytes hold these attributes");
    }
    if fingerprint {
        w.add_fingerprint().expect("room for FINGERPRINT");
    }
    let len = w.finish();
    buf.truncate(len);
    buf
}

fn main() {
    let v4: SocketAddr = "198.51.100.7:40000".parse().expect("literal");
    let v6: SocketAddr = "[2001:db8::7]:40000".parse().expect("literal");
    let plain = BindingServer::new(BindingConfig {
        sockets: ServerSockets::single("192.0.2.1:3478".parse().expect("literal")),
        software: None,
    });
    let discovery = BindingServer::new(BindingConfig {
        sockets: ServerSockets {
            primary: "192.0.2.1:3478".parse().expect("literal"),
            alternate_ip: Some("192.0.2.2".parse().expect("literal")),
            alternate_port: Some(3479),
        },
        software: None,
    });
    let unknown = [AnyAttribute::Unknown {
        attribute: AttributeType(0x0031),
        value: b"",
    }];
    let software = [AnyAttribute::Software(Software("client 1.0"))];
    let change = [AnyAttribute::ChangeRequest(ChangeRequest {
        change_ip: true,
        change_port: true,
    })];
    let cases: [(&str, &BindingServer, SocketAddr, Vec<u8>); 9] = [
        (
            "Binding, header only (IPv4 client)",
            &plain,
            v4,
            request(&[], false, false),
        ),
        (
            "Binding, header only (IPv6 client)",
            &plain,
            v6,
            request(&[], false, false),
        ),
        (
            "Binding + FINGERPRINT",
            &plain,
            v4,
            request(&[], true, false),
        ),
        (
            "Binding + SOFTWARE + FINGERPRINT",
            &plain,
            v4,
            request(&software, true, false),
        ),
        (
            "RFC 3489 classic Binding",
            &plain,
            v4,
            request(&[], false, true),
        ),
        (
            "unknown required attribute (420)",
            &plain,
            v4,
            request(&unknown, false, false),
        ),
        (
            "RFC 5780 on: Binding, header only",
            &discovery,
            v4,
            request(&[], false, false),
        ),
        (
            "RFC 5780 on: CHANGE-REQUEST",
            &discovery,
            v4,
            request(&change, false, false),
        ),
        (
            "RFC 5780 on: RFC 3489 classic Binding",
            &discovery,
            v4,
            request(&[], false, true),
        ),
    ];
    println!("| request | request bytes | response bytes | ratio |");
    println!("|---|---:|---:|---:|");
    let mut out = [0u8; 1500];
    for (name, server, source, bytes) in cases {
        let t = server
            .handle(Transport::Udp, SocketId::PRIMARY, source, &bytes, &mut out)
            .expect("answered");
        println!(
            "| {name} | {} | {} | {:.2} |",
            bytes.len(),
            t.len,
            t.len as f64 / bytes.len() as f64
        );
    }
}
