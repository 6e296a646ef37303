//! Malformed frames and frames in the wrong state: typed errors, connection kept.
#![allow(clippy::unwrap_used)]

use serde_json::json;

use crate::harness::World;

#[test]
fn malformed_frames_are_bad_message() {
    // docs/signaling.md `bad-message`: not JSON, unknown `type`, missing or ill-typed
    // member, bad room name. `ref` is the frame's `type` when it had one.
    let mut w = World::new();
    let a = w.join("lobby");
    let b = w.join("lobby");
    let to = &b.id;
    let cases: Vec<(String, Option<&str>)> = vec![
        ("".into(), None),
        ("not json".into(), None),
        ("{\"type\":\"ping\"".into(), None),
        ("[]".into(), None),
        ("\"join\"".into(), None),
        ("{}".into(), None),
        (r#"{"room":"lobby"}"#.into(), None),
        (r#"{"type":null}"#.into(), None),
        (r#"{"type":["offer"]}"#.into(), None),
        (r#"{"type":"dance"}"#.into(), Some("dance")),
        (
            r#"{"type":"OFFER","to":"x","data":1}"#.into(),
            Some("OFFER"),
        ),
        (format!(r#"{{"type":"offer","to":"{to}"}}"#), Some("offer")),
        (r#"{"type":"answer","data":1}"#.into(), Some("answer")),
        (
            r#"{"type":"candidate","to":7,"data":1}"#.into(),
            Some("candidate"),
        ),
        (r#"{"type":"broadcast"}"#.into(), Some("broadcast")),
        (r#"{"type":"join"}"#.into(), Some("join")),
        (r#"{"type":"join","room":""}"#.into(), Some("join")),
        (r#"{"type":"join","room":"a b"}"#.into(), Some("join")),
        (r#"{"type":"join","room":"salle-é"}"#.into(), Some("join")),
        (
            format!(r#"{{"type":"join","room":"{}"}}"#, "x".repeat(65)),
            Some("join"),
        ),
        (r#"{"type":"join","room":["lobby"]}"#.into(), Some("join")),
        (
            r#"{"type":"join","room":"lobby","token":5}"#.into(),
            Some("join"),
        ),
        (r#"{"type":"ping"} trailing"#.into(), None),
    ];
    let before = w.hub.counters();
    let count = cases.len() as u64;
    for (text, kind) in cases {
        let (code, got) = w.error_for(a.conn, &text);
        assert_eq!(code, "bad-message", "{text}");
        assert_eq!(got.as_deref(), kind, "{text}");
    }
    // Each refused frame counts as a message and as one `bad-message` error, for metrics.
    let after = w.hub.counters();
    assert_eq!(after.messages - before.messages, count);
    let bad = signal::ErrorCode::BadMessage;
    assert_eq!(after.errors_with(bad) - before.errors_with(bad), count);
    assert_eq!(after.errors.iter().sum::<u64>(), after.errors_with(bad));
    // The connection is kept.
    w.send_json(
        a.conn,
        json!({"type": "message", "to": b.id, "data": "still here"}),
    );
    assert_eq!(w.frames().len(), 1);
}

#[test]
fn a_ref_from_the_client_is_escaped() {
    let mut w = World::new();
    let conn = w.connect();
    w.send(conn, r#"{"type":"x\"}\u0000"}"#);
    let texts = w.texts();
    let frame = crate::harness::json(&texts[0].1);
    assert_eq!(frame["ref"], "x\"}\u{0}");
}

#[test]
fn frames_before_join_are_not_joined() {
    // docs/signaling.md `not-joined`: a frame other than `join`/`ping`/`pong` before `join`.
    let mut w = World::new();
    let conn = w.connect();
    for (text, kind) in [
        (r#"{"type":"offer","to":"00000001","data":{}}"#, "offer"),
        (r#"{"type":"message","to":"00000001","data":1}"#, "message"),
        (r#"{"type":"broadcast","data":1}"#, "broadcast"),
        (r#"{"type":"leave"}"#, "leave"),
    ] {
        let (code, got) = w.error_for(conn, text);
        assert_eq!((code.as_str(), got.as_deref()), ("not-joined", Some(kind)));
    }
    w.send(conn, r#"{"type":"join","room":"lobby"}"#);
    w.joined(conn);
}

#[test]
fn second_join_is_already_joined() {
    // docs/signaling.md `already-joined`: a second `join` on one connection.
    let mut w = World::new();
    let a = w.join("lobby");
    for room in ["lobby", "hall"] {
        let text = json!({"type": "join", "room": room}).to_string();
        let (code, kind) = w.error_for(a.conn, &text);
        assert_eq!(
            (code.as_str(), kind.as_deref()),
            ("already-joined", Some("join"))
        );
    }
    let text = json!({"type": "join", "room": "lobby", "resume": a.resume}).to_string();
    assert_eq!(w.error_for(a.conn, &text).0, "already-joined");
    assert_eq!(w.hub.stats().peers, 1);
}
