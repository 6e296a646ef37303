//! Scenario tests of the Binding service, each naming the rule it checks.

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use std::net::SocketAddr;

use stun::attributes::{
    ChangeRequest, ChangedAddress, ErrorCode, MappedAddress, OtherAddress, Padding, ResponseOrigin,
    ResponsePort, Software, SourceAddress, UnknownAttributes, XorMappedAddress,
};
use stun::{
    AnyAttribute, AttributeType, Class, Message, MessageType, MessageWriter, Method, TransactionId,
};
use turn::{BindingConfig, BindingServer, ServerSockets, SocketId, Transmit, Transport};

const CLIENT: &str = "198.51.100.7:40000";
const TID: TransactionId = TransactionId([9; 12]);

fn client() -> SocketAddr {
    CLIENT.parse().unwrap()
}

fn plain_server() -> BindingServer {
    BindingServer::new(BindingConfig {
        sockets: ServerSockets::single("192.0.2.1:3478".parse().unwrap()),
        software: None,
    })
}

/// A server with the full RFC 5780 grid: A1=192.0.2.1, A2=192.0.2.2, P1=3478, P2=3479.
fn discovery_server() -> BindingServer {
    BindingServer::new(BindingConfig {
        sockets: ServerSockets {
            primary: "192.0.2.1:3478".parse().unwrap(),
            alternate_ip: Some("192.0.2.2".parse().unwrap()),
            alternate_port: Some(3479),
        },
        software: None,
    })
}

/// Builds a Binding request with the given attributes (and FINGERPRINT if asked).
fn request(attributes: &[AnyAttribute<'_>], fingerprint: bool) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    let mut w = MessageWriter::new(&mut buf, MessageType::BINDING_REQUEST, TID).unwrap();
    for a in attributes {
        w.add_any(a).unwrap();
    }
    if fingerprint {
        w.add_fingerprint().unwrap();
    }
    let len = w.finish();
    buf.truncate(len);
    buf
}

fn handle(
    server: &BindingServer,
    transport: Transport,
    local: SocketId,
    bytes: &[u8],
) -> Option<(Transmit, Vec<u8>)> {
    let mut out = [0u8; 1500];
    let t = server.handle(transport, local, client(), bytes, &mut out)?;
    Some((t, out[..t.len].to_vec()))
}

fn udp(server: &BindingServer, bytes: &[u8]) -> (Transmit, Vec<u8>) {
    handle(server, Transport::Udp, SocketId::PRIMARY, bytes).expect("an answer")
}

fn error_code(bytes: &[u8]) -> u16 {
    let m = Message::decode(bytes).unwrap();
    assert_eq!(m.header().message_type.class, Class::Error);
    m.get::<ErrorCode<'_>>().unwrap().unwrap().code
}

// RFC 8489 §6.3.1.1: success response with XOR-MAPPED-ADDRESS = the request's source.
#[test]
fn minimal_binding_gets_xor_mapped_address_and_nothing_else() {
    let req = request(&[], false);
    let (t, resp) = udp(&plain_server(), &req);
    assert_eq!(t.from, SocketId::PRIMARY);
    assert_eq!(t.to, client());
    let m = Message::decode(&resp).unwrap();
    assert_eq!(
        m.header().message_type,
        MessageType::new(Method::BINDING, Class::Success)
    );
    assert_eq!(m.header().transaction_id, TID);
    assert_eq!(m.get::<XorMappedAddress>().unwrap().unwrap().0, client());
    // No SOFTWARE by default, no MAPPED-ADDRESS, no FINGERPRINT: 20 + 12 bytes.
    assert_eq!(resp.len(), 32);
    assert_eq!(m.attributes().count(), 1);
}

// RFC 8489 §14.7: a FINGERPRINT-ed request gets a FINGERPRINT-ed response.
#[test]
fn fingerprint_is_echoed() {
    let (_, resp) = udp(&plain_server(), &request(&[], true));
    assert!(Message::decode(&resp).unwrap().has_fingerprint());
}

// RFC 8489 §14.14: SOFTWARE only when configured.
#[test]
fn software_only_when_configured() {
    let server = BindingServer::new(BindingConfig {
        sockets: ServerSockets::single("192.0.2.1:3478".parse().unwrap()),
        software: Some("turnpike".into()),
    });
    let (_, resp) = udp(&server, &request(&[], false));
    let m = Message::decode(&resp).unwrap();
    assert_eq!(m.get::<Software<'_>>().unwrap().unwrap().0, "turnpike");
}

// RFC 3489 §8.2 / RFC 8489 §12: a request without the magic cookie is answered the classic
// way, echoing the full 128-bit transaction id.
#[test]
fn classic_rfc3489_request_gets_mapped_source_and_changed_address() {
    let mut req = request(&[], false);
    req[4..8].copy_from_slice(&[1, 2, 3, 4]);
    let (_, resp) = udp(&discovery_server(), &req);
    assert_eq!(&resp[4..20], &req[4..20], "the whole 16-byte id is echoed");
    let m = Message::decode(&resp).unwrap();
    assert!(m.header().is_rfc3489());
    assert_eq!(m.get::<MappedAddress>().unwrap().unwrap().0, client());
    assert_eq!(
        m.get::<SourceAddress>().unwrap().unwrap().0,
        "192.0.2.1:3478".parse().unwrap()
    );
    assert_eq!(
        m.get::<ChangedAddress>().unwrap().unwrap().0,
        "192.0.2.2:3479".parse().unwrap()
    );
    assert!(!m.contains::<XorMappedAddress>());
}

// RFC 8489 §6.3.1: unknown comprehension-required attributes → 420 listing them.
#[test]
fn unknown_comprehension_required_attribute_gets_420() {
    let unknown = [
        AnyAttribute::Unknown {
            attribute: AttributeType(0x0031),
            value: b"abcd",
        },
        AnyAttribute::Unknown {
            attribute: AttributeType(0x7001),
            value: b"",
        },
    ];
    let (_, resp) = udp(&plain_server(), &request(&unknown, true));
    assert_eq!(error_code(&resp), 420);
    let m = Message::decode(&resp).unwrap();
    let listed: Vec<_> = m
        .get::<UnknownAttributes<'_>>()
        .unwrap()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(listed, [AttributeType(0x0031), AttributeType(0x7001)]);
    assert!(m.has_fingerprint());
}

// RFC 8489 §6.3: unknown comprehension-optional attributes MUST be ignored.
#[test]
fn unknown_comprehension_optional_attribute_is_ignored() {
    let optional = [AnyAttribute::Unknown {
        attribute: AttributeType(0x8123),
        value: b"x",
    }];
    let (_, resp) = udp(&plain_server(), &request(&optional, false));
    assert!(Message::decode(&resp)
        .unwrap()
        .contains::<XorMappedAddress>());
}

// RFC 8489 §6.3: indications, responses, unsupported methods, bad FINGERPRINT, truncated
// and inconsistent packets are discarded silently.
#[test]
fn what_is_not_a_binding_request_is_dropped() {
    let server = plain_server();
    let req = request(&[], true);
    let mut drops: Vec<Vec<u8>> = vec![
        vec![],
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        req[..19].to_vec(),
        req[..req.len() - 4].to_vec(),
    ];
    for class_bits in [0x0011u16, 0x0101, 0x0111, 0x0003] {
        let mut other = req.clone();
        other[0..2].copy_from_slice(&class_bits.to_be_bytes());
        drops.push(other); // indication, success, error, Allocate (FINGERPRINT now wrong too)
        let mut other = request(&[], false);
        other[0..2].copy_from_slice(&class_bits.to_be_bytes());
        drops.push(other); // the same without FINGERPRINT
    }
    let mut bad_fp = req.clone();
    *bad_fp.last_mut().unwrap() ^= 1;
    drops.push(bad_fp);
    let mut bad_len = req.clone();
    bad_len[3] += 4;
    drops.push(bad_len);
    let mut odd_len = request(&[], false);
    odd_len[3] = 2;
    odd_len.extend_from_slice(&[0, 0]);
    drops.push(odd_len);
    for (i, d) in drops.iter().enumerate() {
        assert!(
            handle(&server, Transport::Udp, SocketId::PRIMARY, d).is_none(),
            "case {i} answered"
        );
    }
}

// RFC 8489 §6.3.1 (400): a CHANGE-REQUEST whose value is malformed.
#[test]
fn malformed_change_request_gets_400() {
    let bad = [AnyAttribute::Unknown {
        attribute: AttributeType::CHANGE_REQUEST,
        value: &[0, 0],
    }];
    assert_eq!(
        error_code(&udp(&discovery_server(), &request(&bad, false)).1),
        400
    );
}

// RFC 5780 §6.1 and table 1: the response leaves from the socket the flags name, carries
// RESPONSE-ORIGIN = that socket, OTHER-ADDRESS = Ca:Cp, and both mapped addresses.
#[test]
fn change_request_flags_pick_the_source_socket() {
    let server = discovery_server();
    let cases = [
        // (received on, change ip, change port, sent from, OTHER-ADDRESS)
        (
            SocketId::PRIMARY,
            false,
            false,
            "192.0.2.1:3478",
            "192.0.2.2:3479",
        ),
        (
            SocketId::PRIMARY,
            true,
            false,
            "192.0.2.2:3478",
            "192.0.2.2:3479",
        ),
        (
            SocketId::PRIMARY,
            false,
            true,
            "192.0.2.1:3479",
            "192.0.2.2:3479",
        ),
        (
            SocketId::PRIMARY,
            true,
            true,
            "192.0.2.2:3479",
            "192.0.2.2:3479",
        ),
        (
            SocketId {
                alternate_ip: true,
                alternate_port: false,
            },
            false,
            true,
            "192.0.2.2:3479",
            "192.0.2.1:3479",
        ),
        (
            SocketId {
                alternate_ip: true,
                alternate_port: true,
            },
            true,
            true,
            "192.0.2.1:3478",
            "192.0.2.1:3478",
        ),
    ];
    for (local, change_ip, change_port, from, other) in cases {
        let req = request(
            &[AnyAttribute::ChangeRequest(ChangeRequest {
                change_ip,
                change_port,
            })],
            false,
        );
        let (t, resp) = handle(&server, Transport::Udp, local, &req).unwrap();
        let from: SocketAddr = from.parse().unwrap();
        assert_eq!(server.config().sockets.address(t.from), Some(from));
        let m = Message::decode(&resp).unwrap();
        assert_eq!(m.get::<ResponseOrigin>().unwrap().unwrap().0, from);
        assert_eq!(
            m.get::<OtherAddress>().unwrap().unwrap().0,
            other.parse().unwrap()
        );
        assert_eq!(m.get::<MappedAddress>().unwrap().unwrap().0, client());
        assert_eq!(m.get::<XorMappedAddress>().unwrap().unwrap().0, client());
    }
}

// RFC 5780 §6: with no alternate address, CHANGE-REQUEST with a flag → 420; with no flag it
// is harmless (classic clients send it in their first test) and answered.
#[test]
fn change_request_without_alternate_address() {
    let server = plain_server();
    let zero = request(
        &[AnyAttribute::ChangeRequest(ChangeRequest::default())],
        false,
    );
    let (_, resp) = udp(&server, &zero);
    let m = Message::decode(&resp).unwrap();
    assert!(m.contains::<XorMappedAddress>());
    assert!(
        !m.contains::<OtherAddress>(),
        "RFC 5780 §7.4: no OTHER-ADDRESS without a second IP"
    );
    let flagged = request(
        &[AnyAttribute::ChangeRequest(ChangeRequest {
            change_ip: true,
            change_port: false,
        })],
        false,
    );
    let (_, resp) = udp(&server, &flagged);
    assert_eq!(error_code(&resp), 420);
    let listed: Vec<_> = Message::decode(&resp)
        .unwrap()
        .get::<UnknownAttributes<'_>>()
        .unwrap()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(listed, [AttributeType::CHANGE_REQUEST]);
}

// A second port only: change-port is honoured, change-ip cannot be (420), and OTHER-ADDRESS
// is absent (RFC 5780 §7.4: only with a second IP).
#[test]
fn second_port_only() {
    let server = BindingServer::new(BindingConfig {
        sockets: ServerSockets {
            primary: "192.0.2.1:3478".parse().unwrap(),
            alternate_ip: None,
            alternate_port: Some(3479),
        },
        software: None,
    });
    let port = request(
        &[AnyAttribute::ChangeRequest(ChangeRequest {
            change_ip: false,
            change_port: true,
        })],
        false,
    );
    let (t, resp) = udp(&server, &port);
    assert_eq!(
        server.config().sockets.address(t.from),
        Some("192.0.2.1:3479".parse().unwrap())
    );
    assert!(!Message::decode(&resp).unwrap().contains::<OtherAddress>());
    let ip = request(
        &[AnyAttribute::ChangeRequest(ChangeRequest {
            change_ip: true,
            change_port: false,
        })],
        false,
    );
    assert_eq!(error_code(&udp(&server, &ip).1), 420);
}

// On TCP/TLS the answer must use the request's connection: changes cannot be honoured.
#[test]
fn change_request_over_a_stream_gets_420() {
    let req = request(
        &[AnyAttribute::ChangeRequest(ChangeRequest {
            change_ip: true,
            change_port: true,
        })],
        false,
    );
    let (_, resp) = handle(
        &discovery_server(),
        Transport::Stream,
        SocketId::PRIMARY,
        &req,
    )
    .unwrap();
    assert_eq!(error_code(&resp), 420);
}

// RFC 5780 §7.5: RESPONSE-PORT redirects the answer to the source IP at that port; the
// mapped address is still the request's source.
#[test]
fn response_port_redirects_the_answer() {
    let req = request(&[AnyAttribute::ResponsePort(ResponsePort(5555))], false);
    let (t, resp) = udp(&discovery_server(), &req);
    assert_eq!(t.to, "198.51.100.7:5555".parse().unwrap());
    assert_eq!(
        Message::decode(&resp)
            .unwrap()
            .get::<XorMappedAddress>()
            .unwrap()
            .unwrap()
            .0,
        client()
    );
    // Without behaviour discovery, RESPONSE-PORT is not supported: 420.
    assert_eq!(error_code(&udp(&plain_server(), &req).1), 420);
    // Port 0 cannot be a destination: 400.
    let zero = request(&[AnyAttribute::ResponsePort(ResponsePort(0))], false);
    assert_eq!(error_code(&udp(&discovery_server(), &zero).1), 400);
}

// RFC 5780 §6.1: RESPONSE-PORT with PADDING → 400.
#[test]
fn response_port_with_padding_gets_400() {
    let req = request(
        &[
            AnyAttribute::ResponsePort(ResponsePort(5555)),
            AnyAttribute::Padding(Padding(&[0; 100])),
        ],
        false,
    );
    assert_eq!(error_code(&udp(&discovery_server(), &req).1), 400);
}

// RFC 5780 §6.1, §7.6: PADDING in the request → PADDING in the response, which grows toward
// the MTU but never beyond the request's size (no amplification).
#[test]
fn padding_is_honoured_without_amplification() {
    let server = discovery_server();
    for pad in [0usize, 4, 100, 1200, 3000] {
        let req = request(&[AnyAttribute::Padding(Padding(&vec![0xEE; pad]))], true);
        let (_, resp) = udp(&server, &req);
        let m = Message::decode(&resp).unwrap();
        assert!(m.contains::<Padding<'_>>(), "pad {pad}");
        assert!(m.has_fingerprint());
        // 80 bytes: the RFC 5780 response itself (68), an empty PADDING (4) and FINGERPRINT (8).
        assert!(
            resp.len() <= req.len().max(80),
            "pad {pad}: {} > {}",
            resp.len(),
            req.len()
        );
        assert!(resp.len() <= 1472);
        if pad >= 1200 {
            assert!(
                resp.len() + 4 > req.len().min(1472),
                "pad {pad}: padded up to the limit"
            );
        }
    }
    let req = request(&[AnyAttribute::Padding(Padding(&[0; 8]))], false);
    assert_eq!(
        error_code(&udp(&plain_server(), &req).1),
        420,
        "PADDING needs behaviour discovery"
    );
}

// No amplification: an error response keeps its reason phrase only when it stays within the
// request's size.
#[test]
fn error_reason_phrase_only_when_it_does_not_amplify() {
    let small = request(
        &[AnyAttribute::Unknown {
            attribute: AttributeType(0x0031),
            value: b"",
        }],
        false,
    );
    let (_, resp) = udp(&plain_server(), &small);
    let m = Message::decode(&resp).unwrap();
    assert_eq!(m.get::<ErrorCode<'_>>().unwrap().unwrap().reason, "");
    let big = request(
        &[
            AnyAttribute::Unknown {
                attribute: AttributeType(0x0031),
                value: b"",
            },
            AnyAttribute::Software(Software("a client that says a lot about itself")),
        ],
        false,
    );
    let (_, resp) = udp(&plain_server(), &big);
    assert!(resp.len() <= big.len());
    let m = Message::decode(&resp).unwrap();
    assert_eq!(
        m.get::<ErrorCode<'_>>().unwrap().unwrap().reason,
        "Unknown Attribute"
    );
}

// Known-but-unexpected attributes are ignored (RFC 8489 §6.3), even malformed ones.
#[test]
fn unexpected_attributes_are_ignored() {
    let req = request(
        &[AnyAttribute::Unknown {
            attribute: AttributeType::LIFETIME,
            value: b"x",
        }],
        false,
    );
    let (_, resp) = udp(&plain_server(), &req);
    assert!(Message::decode(&resp)
        .unwrap()
        .contains::<XorMappedAddress>());
}

// IPv6 clients get an IPv6 XOR-MAPPED-ADDRESS (RFC 8489 §14.2).
#[test]
fn ipv6_client() {
    let server = BindingServer::new(BindingConfig {
        sockets: ServerSockets::single("[2001:db8::1]:3478".parse().unwrap()),
        software: None,
    });
    let source: SocketAddr = "[2001:db8::7]:40000".parse().unwrap();
    let mut out = [0u8; 1500];
    let t = server
        .handle(
            Transport::Udp,
            SocketId::PRIMARY,
            source,
            &request(&[], false),
            &mut out,
        )
        .unwrap();
    let m = Message::decode(&out[..t.len]).unwrap();
    assert_eq!(m.get::<XorMappedAddress>().unwrap().unwrap().0, source);
    assert_eq!(t.len, 44);
}
