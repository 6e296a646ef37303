//! The client transaction against Turnpike's own sans-IO Binding server, no sockets: the
//! request bytes go to `turn::BindingServer::handle`, its answer comes back to the client.

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ice::{
    BindingResponse, BindingTransaction, RequestOptions, RetransmitTiming, TransactionError,
};
use stun::attributes::ChangeRequest;
use stun::{AttributeType, TransactionId};
use turn::{BindingConfig, BindingServer, ServerSockets, SocketId, Transport};

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

const CLIENT: &str = "198.51.100.7:40212";
const PRIMARY: &str = "192.0.2.1:3478";

fn single() -> BindingServer {
    BindingServer::new(BindingConfig {
        sockets: ServerSockets::single(addr(PRIMARY)),
        software: None,
    })
}

/// An RFC 5780 server on 192.0.2.1/192.0.2.2 × 3478/3479.
fn discovery() -> BindingServer {
    BindingServer::new(BindingConfig {
        sockets: ServerSockets {
            primary: addr(PRIMARY),
            alternate_ip: Some("192.0.2.2".parse().unwrap()),
            alternate_port: Some(3479),
        },
        software: Some("turnpike test".into()),
    })
}

/// Which of the server's sockets has address `to`.
fn socket_of(server: &BindingServer, to: SocketAddr) -> SocketId {
    let sockets = &server.config().sockets;
    sockets
        .ids()
        .find(|id| sockets.address(*id) == Some(to))
        .expect("the request goes to one of the server's sockets")
}

/// One exchange: the transaction's first request reaches the server's socket at its
/// destination from `CLIENT`, the answer comes back after 7 ms.
fn exchange(
    server: &BindingServer,
    destination: SocketAddr,
    options: &RequestOptions,
) -> Result<BindingResponse, TransactionError> {
    let start = Instant::now();
    let mut tx = BindingTransaction::new(
        start,
        destination,
        TransactionId([3; 12]),
        options,
        RetransmitTiming::default(),
    )
    .unwrap();
    let transmit = tx.poll_transmit(start).unwrap();
    let local = socket_of(server, transmit.destination);
    let mut out = [0u8; 1500];
    let answer = server
        .handle(
            Transport::Udp,
            local,
            addr(CLIENT),
            transmit.payload,
            &mut out,
        )
        .expect("the server answers");
    assert_eq!(answer.to, addr(CLIENT));
    let from = server.config().sockets.address(answer.from).unwrap();
    assert!(tx.handle_input(start + Duration::from_millis(7), from, &out[..answer.len]));
    tx.poll_result().expect("the answer ends the transaction")
}

#[test]
fn plain_server_reports_the_mapped_address_only() {
    let answer = exchange(&single(), addr(PRIMARY), &RequestOptions::default()).unwrap();
    assert_eq!(answer.mapped, addr(CLIENT));
    assert_eq!(answer.from, addr(PRIMARY));
    assert_eq!(answer.response_origin, None);
    assert_eq!(answer.other_address, None);
    assert_eq!(answer.software, None);
    assert_eq!(answer.rtt, Duration::from_millis(7));
}

// RFC 5780 §6.1: RESPONSE-ORIGIN is where the answer left from, OTHER-ADDRESS is Ca:Cp.
#[test]
fn discovery_server_reports_origin_and_other_address() {
    let answer = exchange(&discovery(), addr(PRIMARY), &RequestOptions::default()).unwrap();
    assert_eq!(answer.mapped, addr(CLIENT));
    assert_eq!(answer.response_origin, Some(addr(PRIMARY)));
    assert_eq!(answer.other_address, Some(addr("192.0.2.2:3479")));
    assert_eq!(answer.software.as_deref(), Some("turnpike test"));
}

// RFC 5780 §4.3 test II: change IP and port; the answer comes from A2:P2.
#[test]
fn change_request_answer_comes_from_the_other_address() {
    let options = RequestOptions {
        change_request: ChangeRequest {
            change_ip: true,
            change_port: true,
        },
        ..RequestOptions::default()
    };
    let answer = exchange(&discovery(), addr(PRIMARY), &options).unwrap();
    assert_eq!(answer.from, addr("192.0.2.2:3479"));
    assert_eq!(answer.response_origin, Some(addr("192.0.2.2:3479")));
    assert_eq!(answer.mapped, addr(CLIENT));
}

// RFC 5780 §4.3 test III: change port only.
#[test]
fn change_port_only() {
    let options = RequestOptions {
        change_request: ChangeRequest {
            change_ip: false,
            change_port: true,
        },
        ..RequestOptions::default()
    };
    let answer = exchange(&discovery(), addr(PRIMARY), &options).unwrap();
    assert_eq!(answer.from, addr("192.0.2.1:3479"));
}

// RFC 5780 §4.3 test II for mapping: a Binding to OTHER-ADDRESS, whose other is the primary.
#[test]
fn request_to_the_other_address() {
    let first = exchange(&discovery(), addr(PRIMARY), &RequestOptions::default()).unwrap();
    let other = first.other_address.unwrap();
    let second = exchange(&discovery(), other, &RequestOptions::default()).unwrap();
    assert_eq!(second.response_origin, Some(other));
    assert_eq!(second.other_address, Some(addr(PRIMARY)));
}

// RFC 5780 §6.1: CHANGE-REQUEST the server cannot honour → 420 listing it.
#[test]
fn change_request_to_a_plain_server_is_refused() {
    let options = RequestOptions {
        change_request: ChangeRequest {
            change_ip: true,
            change_port: false,
        },
        ..RequestOptions::default()
    };
    let error = exchange(&single(), addr(PRIMARY), &options).unwrap_err();
    match error {
        TransactionError::ErrorResponse {
            code,
            unknown_attributes,
            from,
            ..
        } => {
            assert_eq!(code, 420);
            assert_eq!(unknown_attributes, [AttributeType::CHANGE_REQUEST]);
            assert_eq!(from, addr(PRIMARY));
        }
        other => panic!("expected a 420, got {other:?}"),
    }
}

// RFC 5780 §7.6: PADDING grows the answer; the transaction still reads it.
#[test]
fn padded_request_and_answer() {
    let options = RequestOptions {
        padding: 500,
        ..RequestOptions::default()
    };
    let answer = exchange(&discovery(), addr(PRIMARY), &options).unwrap();
    assert_eq!(answer.mapped, addr(CLIENT));
}

#[test]
fn without_fingerprint_too() {
    let options = RequestOptions {
        fingerprint: false,
        ..RequestOptions::default()
    };
    let answer = exchange(&single(), addr(PRIMARY), &options).unwrap();
    assert_eq!(answer.mapped, addr(CLIENT));
}

#[test]
fn lost_first_request_is_answered_on_retransmission() {
    let server = single();
    let start = Instant::now();
    let mut tx = BindingTransaction::new(
        start,
        addr(PRIMARY),
        TransactionId([4; 12]),
        &RequestOptions::default(),
        RetransmitTiming::default(),
    )
    .unwrap();
    tx.poll_transmit(start).unwrap(); // lost
    let resend_at = tx.poll_timeout().unwrap();
    tx.handle_timeout(resend_at);
    let transmit = tx.poll_transmit(resend_at).unwrap();
    let mut out = [0u8; 1500];
    let answer = server
        .handle(
            Transport::Udp,
            SocketId::PRIMARY,
            addr(CLIENT),
            transmit.payload,
            &mut out,
        )
        .unwrap();
    assert!(tx.handle_input(
        resend_at + Duration::from_millis(30),
        addr(PRIMARY),
        &out[..answer.len]
    ));
    let answer = tx.poll_result().unwrap().unwrap();
    assert_eq!((answer.sends, answer.rtt), (2, Duration::from_millis(30)));
}
