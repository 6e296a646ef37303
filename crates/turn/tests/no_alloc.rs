//! The UDP Binding path allocates nothing per request: checked with a counting allocator,
//! not with timing (`allocation-counter` installs the counting global allocator).

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use stun::attributes::ChangeRequest;
use stun::{AnyAttribute, AttributeType, MessageType, MessageWriter, TransactionId};
use turn::{BindingConfig, BindingServer, ServerSockets, SocketId, Transport};

#[test]
fn binding_path_does_not_allocate() {
    let server = BindingServer::new(BindingConfig {
        sockets: ServerSockets {
            primary: "192.0.2.1:3478".parse().unwrap(),
            alternate_ip: Some("192.0.2.2".parse().unwrap()),
            alternate_port: Some(3479),
        },
        software: Some("turnpike".into()),
    });
    let mut requests = Vec::new();
    let attribute_sets: [&[AnyAttribute<'_>]; 3] = [
        &[],
        &[AnyAttribute::ChangeRequest(ChangeRequest {
            change_ip: true,
            change_port: true,
        })],
        &[AnyAttribute::Unknown {
            attribute: AttributeType(0x0031),
            value: b"abcd",
        }],
    ];
    for attributes in attribute_sets {
        let mut buf = vec![0u8; 256];
        let mut w = MessageWriter::new(
            &mut buf,
            MessageType::BINDING_REQUEST,
            TransactionId([1; 12]),
        )
        .unwrap();
        for a in attributes {
            w.add_any(a).unwrap();
        }
        w.add_fingerprint().unwrap();
        let len = w.finish();
        buf.truncate(len);
        requests.push(buf);
    }
    let source = "198.51.100.7:40000".parse().unwrap();
    let mut out = [0u8; 1500];

    let mut answered = 0;
    let info = allocation_counter::measure(|| {
        for _ in 0..1000 {
            for r in &requests {
                answered += usize::from(
                    server
                        .handle(Transport::Udp, SocketId::PRIMARY, source, r, &mut out)
                        .is_some(),
                );
            }
        }
    });
    assert_eq!(answered, 3000);
    assert_eq!(info.count_total, 0, "allocations on the Binding path");
    // The counter does count: one Vec is one allocation.
    let control = allocation_counter::measure(|| drop(std::hint::black_box(vec![0u8; 64])));
    assert_eq!(control.count_total, 1);
}
