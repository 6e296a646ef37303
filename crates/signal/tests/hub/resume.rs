//! Resume: a peer whose connection dropped without `leave` may come back within the grace
//! window with its resume token.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::{json, Value};
use signal::{CloseReason, HubConfig, Output};

use crate::harness::{close_of, secs, Joined, World};

fn resume_frame(room: &str, token: &str) -> String {
    json!({"type": "join", "room": room, "resume": token}).to_string()
}

/// Two peers in "lobby", b away since now; no heartbeat, no rate limit.
fn b_away() -> (World, Joined, Joined) {
    let mut w = World::with(HubConfig {
        message_rate: 0,
        ping_interval: Duration::ZERO,
        silence_timeout: Duration::ZERO,
        ..HubConfig::default()
    });
    let a = w.join("lobby");
    let b = w.join("lobby");
    w.disconnect(b.conn);
    (w, a, b)
}

#[test]
fn resume_within_the_window_keeps_the_id_and_delivers_the_queue_in_order() {
    // docs/signaling.md "Liveness and resume": same id, `resumed: true`, the queued frames
    // in order right after `joined`, a fresh resume token; the others see nothing.
    let (mut w, a, b) = b_away();
    w.advance(secs(5));
    let c = w.join("lobby"); // b's queue: peer-joined c
    w.send_json(
        a.conn,
        json!({"type": "offer", "to": b.id, "data": {"sdp": "1"}}),
    );
    w.send_json(c.conn, json!({"type": "candidate", "to": b.id, "data": 2}));
    w.send(a.conn, r#"{"type":"broadcast","data":3}"#);
    let seen = w.frames();
    assert!(!seen.is_empty(), "c got a's broadcast");
    assert!(
        seen.iter().all(|(conn, _)| *conn == c.conn),
        "only c got a's broadcast"
    );
    w.advance(secs(20));
    w.outputs();
    let conn = w.connect();
    w.send(conn, &resume_frame("lobby", &b.resume));
    let frames = w.frames();
    assert!(
        frames.iter().all(|(to, _)| *to == conn),
        "others see nothing: {frames:?}"
    );
    let frames: Vec<Value> = frames.into_iter().map(|(_, f)| f).collect();
    assert_eq!(frames[0]["type"], "joined");
    assert_eq!(frames[0]["id"], b.id.as_str());
    assert_eq!(frames[0]["resumed"], true);
    assert_eq!(frames[0]["peers"], json!([a.id, c.id]));
    let new_token = frames[0]["resume"].as_str().unwrap();
    assert_ne!(new_token, b.resume);
    let rest = [
        json!({"type": "peer-joined", "id": c.id}),
        json!({"type": "offer", "from": a.id, "data": {"sdp": "1"}}),
        json!({"type": "candidate", "from": c.id, "data": 2}),
        json!({"type": "broadcast", "from": a.id, "data": 3}),
    ];
    assert_eq!(frames[1..], rest);
    // Back online: frames flow directly again, and the grace timer is gone.
    w.send_json(a.conn, json!({"type": "message", "to": b.id, "data": 4}));
    assert_eq!(w.frames()[0].0, conn);
    w.advance(secs(60));
    assert!(!w.frames().iter().any(|(_, f)| f["type"] == "peer-left"));
    assert_eq!(w.hub.stats().peers, 3);
}

#[test]
fn the_old_resume_token_is_invalid_after_a_resume() {
    let (mut w, _, b) = b_away();
    let conn = w.connect();
    w.send(conn, &resume_frame("lobby", &b.resume));
    let again = w.joined(conn);
    w.disconnect(conn);
    let conn = w.connect();
    assert_eq!(
        w.error_for(conn, &resume_frame("lobby", &b.resume)).0,
        "resume-failed"
    );
    w.send(conn, &resume_frame("lobby", &again.resume));
    assert_eq!(w.joined(conn).id, b.id);
}

#[test]
fn after_the_window_the_others_see_peer_left_and_resume_fails() {
    // docs/signaling.md: otherwise, when the window passes, the others get `peer-left`.
    let (mut w, a, b) = b_away();
    w.advance(Duration::from_millis(29_999));
    assert!(w.outputs().is_empty());
    w.advance(Duration::from_millis(1));
    assert_eq!(
        w.frames(),
        [(a.conn, json!({"type": "peer-left", "id": b.id}))]
    );
    let conn = w.connect();
    let (code, kind) = w.error_for(conn, &resume_frame("lobby", &b.resume));
    assert_eq!(
        (code.as_str(), kind.as_deref()),
        ("resume-failed", Some("join"))
    );
    // The connection is kept and may join afresh (with a new id).
    w.send(conn, r#"{"type":"join","room":"lobby"}"#);
    assert_ne!(w.joined(conn).id, b.id);
}

#[test]
fn resume_at_the_deadline_fails_even_before_the_timer_fires() {
    // The window is [close, close + grace): decided by the clock, not by call order.
    let (mut w, _, b) = b_away();
    w.now += secs(30);
    let conn = w.connect();
    assert_eq!(
        w.error_for(conn, &resume_frame("lobby", &b.resume)).0,
        "resume-failed"
    );
}

#[test]
fn resume_for_another_room_or_with_a_bad_token_fails() {
    // docs/signaling.md `resume-failed`: unknown or expired resume token; another room.
    let (mut w, a, b) = b_away();
    let conn = w.connect();
    let mut flipped = b.resume.clone();
    let last = if flipped.ends_with('0') { "1" } else { "0" };
    flipped.replace_range(flipped.len() - 1.., last);
    let other_peer = format!("{}.{}", a.id, b.resume.split_once('.').unwrap().1);
    for (room, token) in [
        ("hall", b.resume.as_str()),
        ("lobby", flipped.as_str()),
        ("lobby", other_peer.as_str()),
        ("lobby", "garbage"),
        ("lobby", ""),
    ] {
        let (code, _) = w.error_for(conn, &resume_frame(room, token));
        assert_eq!(code, "resume-failed", "{room} {token}");
    }
    w.send(conn, &resume_frame("lobby", &b.resume));
    assert_eq!(w.joined(conn).id, b.id);
}

#[test]
fn resume_replaces_a_connection_not_yet_noticed_dead() {
    // A client that reconnects before the server noticed its old socket die takes its
    // peer over; the old connection is closed (CloseReason::Replaced), the others see
    // nothing.
    let mut w = World::new();
    let a = w.join("lobby");
    let b = w.join("lobby");
    let conn = w.connect();
    w.send(conn, &resume_frame("lobby", &b.resume));
    let outputs = w.outputs();
    assert_eq!(close_of(&outputs, b.conn), Some(CloseReason::Replaced));
    assert!(matches!(&outputs[0], Output::Close { conn, .. } if *conn == b.conn));
    assert!(
        outputs.len() > 1,
        "the new connection is answered: {outputs:?}"
    );
    assert!(outputs[1..]
        .iter()
        .all(|o| matches!(o, Output::Send { conn: c, .. } if *c == conn)));
    w.send_json(a.conn, json!({"type": "bye", "to": b.id, "data": null}));
    assert_eq!(
        w.frames(),
        [(conn, json!({"type": "bye", "from": a.id, "data": null}))]
    );
    assert_eq!(w.hub.stats().connections, 2);
}

#[test]
fn zero_grace_means_peer_left_at_once() {
    let mut w = World::with(HubConfig {
        resume_grace: Duration::ZERO,
        ..HubConfig::default()
    });
    let a = w.join("lobby");
    let b = w.join("lobby");
    w.disconnect(b.conn);
    assert_eq!(
        w.frames(),
        [(a.conn, json!({"type": "peer-left", "id": b.id}))]
    );
}
