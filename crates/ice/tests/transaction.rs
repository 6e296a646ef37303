//! The Binding client transaction with a hand-moved clock: retransmission schedule, matching
//! of responses, error and unusable responses (RFC 8489 §6.2.1, §6.3.3, §6.3.4).

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ice::{
    BindingTransaction, MalformedResponse, RequestOptions, RetransmitTiming, TransactionError,
};
use stun::attributes::{
    ChangedAddress, ErrorCode, MappedAddress, OtherAddress, ResponseOrigin, Software,
    SourceAddress, UnknownAttributes, XorMappedAddress,
};
use stun::{AnyAttribute, AttributeType, Class, MessageType, MessageWriter, Method, TransactionId};

const TID: TransactionId = TransactionId([0x5a; 12]);

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

fn server() -> SocketAddr {
    "192.0.2.1:3478".parse().unwrap()
}

fn client() -> SocketAddr {
    "198.51.100.7:40212".parse().unwrap()
}

fn transaction(start: Instant, timing: RetransmitTiming) -> BindingTransaction {
    BindingTransaction::new(start, server(), TID, &RequestOptions::default(), timing).unwrap()
}

/// A Binding response of `class` with id `tid`, its attributes written by `add`.
fn response(tid: TransactionId, class: Class, add: impl FnOnce(&mut MessageWriter<'_>)) -> Vec<u8> {
    let mut buf = vec![0u8; 512];
    let mut w =
        MessageWriter::new(&mut buf, MessageType::new(Method::BINDING, class), tid).unwrap();
    add(&mut w);
    w.add_fingerprint().unwrap();
    let len = w.finish();
    buf.truncate(len);
    buf
}

fn success(tid: TransactionId) -> Vec<u8> {
    response(tid, Class::Success, |w| {
        w.add(&XorMappedAddress(client())).unwrap()
    })
}

/// Runs the transaction with nobody answering, moving the clock to each timeout; returns the
/// send times and the time it failed, as offsets from `start`.
fn run_unanswered(start: Instant, tx: &mut BindingTransaction) -> (Vec<Duration>, Duration) {
    let mut sends = Vec::new();
    let mut now = start;
    loop {
        tx.handle_timeout(now);
        while let Some(transmit) = tx.poll_transmit(now) {
            assert_eq!(transmit.destination, server());
            sends.push(now - start);
        }
        if let Some(result) = tx.poll_result() {
            assert_eq!(
                result,
                Err(TransactionError::Timeout {
                    sends: sends.len() as u32
                })
            );
            return (sends, now - start);
        }
        now = tx
            .poll_timeout()
            .expect("an unfinished transaction has a timeout");
    }
}

// RFC 8489 §6.2.1: "with an RTO of 500 ms, requests would be sent at times 0 ms, 500 ms,
// 1500 ms, 3500 ms, 7500 ms, 15500 ms, and 31500 ms. If the client has not received a
// response after 39500 ms, the client will consider the transaction to have timed out."
#[test]
fn retransmission_schedule_matches_rfc_8489_example() {
    let start = Instant::now();
    let mut tx = transaction(start, RetransmitTiming::default());
    let (sends, failed_at) = run_unanswered(start, &mut tx);
    assert_eq!(sends, [0, 500, 1500, 3500, 7500, 15500, 31500].map(ms));
    assert_eq!(failed_at, ms(39500));
    assert!(tx.is_finished());
    assert_eq!(tx.poll_timeout(), None);
    assert_eq!(tx.poll_result(), None, "the outcome is handed out once");
}

#[test]
fn every_send_is_the_same_request() {
    let start = Instant::now();
    let mut tx = transaction(start, RetransmitTiming::default());
    let first = tx.poll_transmit(start).unwrap().payload.to_vec();
    assert!(tx.poll_transmit(start).is_none(), "one send per due time");
    tx.handle_timeout(start + ms(500));
    assert_eq!(tx.poll_transmit(start + ms(500)).unwrap().payload, first);
    // RFC 8489 §6: a retransmission keeps the transaction id.
    assert_eq!(&first[8..20], &TID.0);
}

#[test]
fn early_timeouts_change_nothing() {
    let start = Instant::now();
    let mut tx = transaction(start, RetransmitTiming::default());
    assert_eq!(
        tx.poll_timeout(),
        Some(start),
        "the first request is due at once"
    );
    tx.poll_transmit(start).unwrap();
    tx.handle_timeout(start + ms(499));
    assert!(tx.poll_transmit(start + ms(499)).is_none());
    assert_eq!(tx.poll_timeout(), Some(start + ms(500)));
}

#[test]
fn late_polling_shifts_the_next_interval() {
    // Intervals run from the actual send: a send made late pushes the next one back.
    let start = Instant::now();
    let mut tx = transaction(start, RetransmitTiming::default());
    tx.poll_transmit(start).unwrap();
    tx.handle_timeout(start + ms(600));
    tx.poll_transmit(start + ms(600)).unwrap();
    assert_eq!(tx.poll_timeout(), Some(start + ms(1600)));
}

#[test]
fn configurable_timing() {
    let start = Instant::now();
    let timing = RetransmitTiming {
        initial_rto: ms(100),
        max_sends: 3,
        last_wait_factor: 4,
        ..Default::default()
    };
    let mut tx = transaction(start, timing);
    let (sends, failed_at) = run_unanswered(start, &mut tx);
    assert_eq!(sends, [0, 100, 300].map(ms));
    assert_eq!(failed_at, ms(700));
}

#[test]
fn give_up_after_bounds_the_whole_transaction() {
    let start = Instant::now();
    let timing = RetransmitTiming {
        give_up_after: Some(ms(2000)),
        ..Default::default()
    };
    let mut tx = transaction(start, timing);
    let (sends, failed_at) = run_unanswered(start, &mut tx);
    assert_eq!(sends, [0, 500, 1500].map(ms));
    assert_eq!(failed_at, ms(2000));
    assert_eq!(timing.total(), ms(2000));
}

#[test]
fn response_in_the_middle_stops_retransmissions() {
    let start = Instant::now();
    let mut tx = transaction(start, RetransmitTiming::default());
    tx.poll_transmit(start).unwrap();
    for at in [500, 1500] {
        tx.handle_timeout(start + ms(at));
        tx.poll_transmit(start + ms(at)).unwrap();
    }
    assert!(tx.handle_input(start + ms(1620), server(), &success(TID)));
    let answer = tx.poll_result().unwrap().unwrap();
    assert_eq!(answer.mapped, client());
    assert_eq!(answer.from, server());
    assert_eq!(answer.sends, 3);
    // Measured from the most recent send (1500 ms), not the first.
    assert_eq!(answer.rtt, ms(120));
    assert_eq!(tx.poll_timeout(), None);
    tx.handle_timeout(start + ms(3500));
    assert!(tx.poll_transmit(start + ms(3500)).is_none());
    assert!(tx.poll_result().is_none());
    // A late duplicate is recognised as ours but changes nothing.
    assert!(tx.handle_input(start + ms(1700), server(), &success(TID)));
    assert!(tx.poll_result().is_none());
}

#[test]
fn first_answer_gives_the_exact_rtt() {
    let start = Instant::now();
    let mut tx = transaction(start, RetransmitTiming::default());
    tx.poll_transmit(start).unwrap();
    assert!(tx.handle_input(start + ms(42), server(), &success(TID)));
    let answer = tx.poll_result().unwrap().unwrap();
    assert_eq!((answer.rtt, answer.sends), (ms(42), 1));
}

#[test]
fn other_transaction_ids_and_non_responses_are_ignored() {
    let start = Instant::now();
    let mut tx = transaction(start, RetransmitTiming::default());
    tx.poll_transmit(start).unwrap();
    let now = start + ms(10);
    assert!(!tx.handle_input(now, server(), &success(TransactionId([1; 12]))));
    // Our own request reflected back, and an indication with our id, are not responses.
    let request = tx.request().to_vec();
    assert!(!tx.handle_input(now, server(), &request));
    assert!(!tx.handle_input(now, server(), &response(TID, Class::Indication, |_| {})));
    // Not STUN at all, truncated, or with a bad FINGERPRINT (RFC 8489 §7.3: discarded).
    assert!(!tx.handle_input(now, server(), b"hello"));
    let good = success(TID);
    assert!(!tx.handle_input(now, server(), &good[..good.len() - 4]));
    let mut bad_fingerprint = good.clone();
    *bad_fingerprint.last_mut().unwrap() ^= 1;
    assert!(!tx.handle_input(now, server(), &bad_fingerprint));
    // Another method with our id.
    let mut allocate = vec![0u8; 64];
    let w = MessageWriter::new(
        &mut allocate,
        MessageType::new(Method::ALLOCATE, Class::Success),
        TID,
    )
    .unwrap();
    let len = w.finish();
    assert!(!tx.handle_input(now, server(), &allocate[..len]));

    assert!(!tx.is_finished());
    assert!(tx.poll_result().is_none());
    tx.handle_timeout(start + ms(500));
    assert!(
        tx.poll_transmit(start + ms(500)).is_some(),
        "retransmissions go on"
    );
    assert!(tx.handle_input(start + ms(520), server(), &good));
    assert!(tx.poll_result().unwrap().is_ok());
}

#[test]
fn nothing_is_accepted_before_the_first_send() {
    let start = Instant::now();
    let mut tx = transaction(start, RetransmitTiming::default());
    assert!(!tx.handle_input(start, server(), &success(TID)));
    assert!(tx.poll_transmit(start).is_some());
}

// RFC 8489 §6.3.4: an error response ends the transaction with its code.
#[test]
fn error_response_yields_its_code_and_reason() {
    let start = Instant::now();
    let mut tx = transaction(start, RetransmitTiming::default());
    tx.poll_transmit(start).unwrap();
    let answer = response(TID, Class::Error, |w| {
        w.add(&ErrorCode {
            code: 420,
            reason: "Unknown Attribute",
        })
        .unwrap();
        w.add(&UnknownAttributes::new(&[AttributeType::CHANGE_REQUEST]))
            .unwrap();
    });
    assert!(tx.handle_input(start + ms(5), server(), &answer));
    let error = tx.poll_result().unwrap().unwrap_err();
    assert_eq!(
        error,
        TransactionError::ErrorResponse {
            code: 420,
            reason: "Unknown Attribute".into(),
            unknown_attributes: vec![AttributeType::CHANGE_REQUEST],
            from: server(),
        }
    );
    assert_eq!(error.to_string(), "server answered 420 Unknown Attribute");
    assert_eq!(tx.poll_timeout(), None);
}

fn outcome(answer: &[u8]) -> Result<ice::BindingResponse, TransactionError> {
    let start = Instant::now();
    let mut tx = transaction(start, RetransmitTiming::default());
    tx.poll_transmit(start).unwrap();
    assert!(tx.handle_input(start + ms(1), server(), answer));
    tx.poll_result().unwrap()
}

fn malformed(problem: MalformedResponse) -> Result<ice::BindingResponse, TransactionError> {
    Err(TransactionError::Malformed {
        from: server(),
        problem,
    })
}

#[test]
fn unusable_responses_fail_the_transaction() {
    assert_eq!(
        outcome(&response(TID, Class::Success, |_| {})),
        malformed(MalformedResponse::NoMappedAddress)
    );
    assert_eq!(
        outcome(&response(TID, Class::Error, |_| {})),
        malformed(MalformedResponse::NoErrorCode)
    );
    // RFC 8489 §6.3.3: unknown comprehension-required attributes fail the transaction.
    let unknown = AttributeType(0x0031);
    let strange = response(TID, Class::Success, |w| {
        w.add(&XorMappedAddress(client())).unwrap();
        w.add_any(&AnyAttribute::Unknown {
            attribute: unknown,
            value: &[1, 2, 3, 4],
        })
        .unwrap();
    });
    assert_eq!(
        outcome(&strange),
        malformed(MalformedResponse::UnknownAttribute(unknown))
    );
    // A mapped address with an unknown family.
    let bad_family = response(TID, Class::Success, |w| {
        w.add_any(&AnyAttribute::Unknown {
            attribute: AttributeType::XOR_MAPPED_ADDRESS,
            value: &[0, 9, 0, 1, 1, 2, 3, 4],
        })
        .unwrap();
    });
    assert!(matches!(
        outcome(&bad_family),
        Err(TransactionError::Malformed {
            problem: MalformedResponse::Attribute(_),
            ..
        })
    ));
}

#[test]
fn unknown_optional_attributes_are_fine() {
    let answer = response(TID, Class::Success, |w| {
        w.add(&XorMappedAddress(client())).unwrap();
        w.add_any(&AnyAttribute::Unknown {
            attribute: AttributeType(0x8031),
            value: &[1],
        })
        .unwrap();
    });
    assert_eq!(outcome(&answer).unwrap().mapped, client());
}

// RFC 8489 §14.2 first, §14.1 as the fallback; RFC 5780 §7.3, §7.4 for origin and other.
#[test]
fn rfc_5780_attributes_and_xor_preference() {
    let nat_rewritten: SocketAddr = "10.0.0.1:1".parse().unwrap();
    let answer = response(TID, Class::Success, |w| {
        w.add(&XorMappedAddress(client())).unwrap();
        w.add(&MappedAddress(nat_rewritten)).unwrap();
        w.add(&ResponseOrigin(server())).unwrap();
        w.add(&OtherAddress("192.0.2.2:3479".parse().unwrap()))
            .unwrap();
        w.add(&Software("example server 1.0")).unwrap();
    });
    let answer = outcome(&answer).unwrap();
    assert_eq!(answer.mapped, client());
    assert_eq!(answer.response_origin, Some(server()));
    assert_eq!(
        answer.other_address,
        Some("192.0.2.2:3479".parse().unwrap())
    );
    assert_eq!(answer.software.as_deref(), Some("example server 1.0"));
}

// RFC 3489 §11.2: classic servers answer with MAPPED-ADDRESS, SOURCE-ADDRESS, CHANGED-ADDRESS.
#[test]
fn rfc_3489_style_answer() {
    let answer = response(TID, Class::Success, |w| {
        w.add(&MappedAddress(client())).unwrap();
        w.add(&SourceAddress(server())).unwrap();
        w.add(&ChangedAddress("192.0.2.2:3479".parse().unwrap()))
            .unwrap();
    });
    let answer = outcome(&answer).unwrap();
    assert_eq!(answer.mapped, client());
    assert_eq!(answer.response_origin, Some(server()));
    assert_eq!(
        answer.other_address,
        Some("192.0.2.2:3479".parse().unwrap())
    );
    assert_eq!(answer.software, None);
}

#[test]
fn ipv6_server_and_client() {
    let v6_server: SocketAddr = "[2001:db8::1]:3478".parse().unwrap();
    let v6_client: SocketAddr = "[2001:db8::7]:40212".parse().unwrap();
    let start = Instant::now();
    let mut tx = BindingTransaction::new(
        start,
        v6_server,
        TID,
        &RequestOptions::default(),
        RetransmitTiming::default(),
    )
    .unwrap();
    assert_eq!(tx.poll_transmit(start).unwrap().destination, v6_server);
    let answer = response(TID, Class::Success, |w| {
        w.add(&XorMappedAddress(v6_client)).unwrap()
    });
    assert!(tx.handle_input(start + ms(3), v6_server, &answer));
    assert_eq!(tx.poll_result().unwrap().unwrap().mapped, v6_client);
}
