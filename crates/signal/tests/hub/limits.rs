//! Limits and their typed errors: room capacity, frame size, rate, away peers' queues.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::json;
use signal::HubConfig;

use crate::harness::{secs, World};

#[test]
fn seventeenth_peer_gets_room_full() {
    // docs/signaling.md `room-full`: the room has `room-capacity` peers (default 16).
    let mut w = World::new();
    let first: Vec<_> = (0..16).map(|_| w.join("lobby")).collect();
    let conn = w.connect();
    let (code, kind) = w.error_for(conn, r#"{"type":"join","room":"lobby"}"#);
    assert_eq!(
        (code.as_str(), kind.as_deref()),
        ("room-full", Some("join"))
    );
    // The connection is kept: it may join another room, or this one once there is room.
    w.send(conn, r#"{"type":"join","room":"other"}"#);
    assert!(w.joined(conn).peers.is_empty());
    w.send(first[3].conn, r#"{"type":"leave"}"#);
    w.outputs();
    assert_eq!(w.join("lobby").peers.len(), 15);
}

#[test]
fn away_peers_count_toward_capacity() {
    let mut w = World::with(HubConfig {
        room_capacity: 2,
        ..HubConfig::default()
    });
    let a = w.join("lobby");
    w.join("lobby");
    w.disconnect(a.conn);
    let conn = w.connect();
    let (code, _) = w.error_for(conn, r#"{"type":"join","room":"lobby"}"#);
    assert_eq!(code, "room-full");
}

#[test]
fn frame_over_max_message_bytes_is_too_large_and_not_parsed() {
    // docs/signaling.md `too-large`: frame over `max-message-bytes` (default 64 KiB),
    // checked before parsing (so not even a bad-message for garbage).
    let mut w = World::new();
    let a = w.join("lobby");
    let b = w.join("lobby");
    let prefix = format!(r#"{{"type":"message","to":"{}","data":""#, b.id);
    let fill = 64 * 1024 - prefix.len() - 2;
    let exact = format!("{prefix}{}\"}}", "x".repeat(fill));
    assert_eq!(exact.len(), 64 * 1024);
    w.send(a.conn, &exact);
    assert_eq!(w.frames_for(b.conn).len(), 1, "exactly the limit passes");
    let over = format!("{prefix}{}\"}}", "x".repeat(fill + 1));
    let (code, kind) = w.error_for(a.conn, &over);
    assert_eq!((code.as_str(), kind), ("too-large", None));
    let (code, _) = w.error_for(a.conn, &"{".repeat(70_000));
    assert_eq!(code, "too-large");
}

#[test]
fn burst_then_rate_limited_then_refill() {
    // docs/signaling.md `rate-limited`: more than 50 frames/s (burst 100); the frame is
    // dropped, and a flood gets at most one error per second.
    let mut w = World::new();
    let a = w.join("lobby");
    let b = w.join("lobby");
    let frame = json!({"type": "message", "to": b.id, "data": 1}).to_string();
    for _ in 0..1000 {
        w.send(a.conn, &frame);
    }
    let frames = w.frames();
    // The `join` took one frame's worth of the burst.
    assert_eq!(frames.iter().filter(|(c, _)| *c == b.conn).count(), 99);
    let errors: Vec<_> = frames.iter().filter(|(c, _)| *c == a.conn).collect();
    assert_eq!(errors.len(), 1, "one error for the whole flood");
    assert_eq!(errors[0].1["code"], "rate-limited");
    // Half a second later: 25 frames' worth has refilled; still no second error.
    w.advance(Duration::from_millis(500));
    for _ in 0..100 {
        w.send(a.conn, &frame);
    }
    let frames = w.frames();
    assert_eq!(frames.iter().filter(|(c, _)| *c == b.conn).count(), 25);
    assert!(frames.iter().all(|(c, _)| *c == b.conn));
    // A second after the first error, a new error may go out.
    w.advance(Duration::from_millis(500));
    for _ in 0..100 {
        w.send(a.conn, &frame);
    }
    let frames = w.frames();
    assert_eq!(frames.iter().filter(|(c, _)| *c == b.conn).count(), 25);
    assert_eq!(frames.iter().filter(|(c, _)| *c == a.conn).count(), 1);
    // A steady 50 frames/s is never limited.
    for _ in 0..200 {
        w.advance(Duration::from_millis(20));
        w.send(a.conn, &frame);
    }
    assert!(w
        .frames_for(a.conn)
        .into_iter()
        .all(|f| f["type"] == "ping"));
}

#[test]
fn every_frame_counts_toward_the_rate() {
    // "more than message-rate frames per second": pings, garbage and joins count too.
    let mut w = World::with(HubConfig {
        message_rate: 1,
        message_burst: 2,
        ..HubConfig::default()
    });
    let conn = w.connect();
    w.send(conn, "garbage");
    w.send(conn, r#"{"type":"ping"}"#);
    w.send(conn, r#"{"type":"ping"}"#);
    let codes: Vec<_> = w.frames().into_iter().map(|(_, f)| f).collect();
    assert_eq!(codes[0]["code"], "bad-message");
    assert_eq!(codes[1]["type"], "pong");
    assert_eq!(codes[2]["code"], "rate-limited");
    w.advance(secs(1));
    w.send(conn, r#"{"type":"ping"}"#);
    assert_eq!(w.frames_for(conn), [json!({"type": "pong"})]);
}

#[test]
fn queue_full_while_the_recipient_is_away() {
    // docs/signaling.md `queue-full`: the recipient is away and already has
    // `queue-length` frames waiting; the frame is dropped, the connection kept.
    let mut w = World::with(HubConfig {
        queue_length: 3,
        message_rate: 0,
        ..HubConfig::default()
    });
    let a = w.join("lobby");
    let b = w.join("lobby");
    let c = w.join("lobby");
    w.disconnect(b.conn);
    for i in 0..3 {
        w.send_json(a.conn, json!({"type": "message", "to": b.id, "data": i}));
    }
    assert!(w.outputs().is_empty(), "queued, not sent");
    let text = json!({"type": "message", "to": b.id, "data": 3}).to_string();
    let (code, kind) = w.error_for(a.conn, &text);
    assert_eq!(
        (code.as_str(), kind.as_deref()),
        ("queue-full", Some("message"))
    );
    // A broadcast still reaches the online peers; the sender hears of the one it missed.
    w.send(a.conn, r#"{"type":"broadcast","data":"hi"}"#);
    let frames = w.frames();
    assert_eq!(frames.len(), 2);
    assert_eq!(
        (frames[0].0, &frames[0].1["type"]),
        (c.conn, &json!("broadcast"))
    );
    assert_eq!(
        (frames[1].0, &frames[1].1["code"]),
        (a.conn, &json!("queue-full"))
    );
    // The queue is delivered, in order, on resume.
    let conn = w.connect();
    w.send_json(
        conn,
        json!({"type": "join", "room": "lobby", "resume": b.resume}),
    );
    let frames = w.frames_for(conn);
    let data: Vec<_> = frames[1..].iter().map(|f| f["data"].clone()).collect();
    assert_eq!(data, [json!(0), json!(1), json!(2)]);
}

#[test]
fn presence_overflowing_an_away_queue_ends_its_grace_window() {
    // An away peer that would miss a `peer-joined`/`peer-left` could not resume into a
    // consistent view: its window ends at once and the others see it leave.
    let mut w = World::with(HubConfig {
        queue_length: 1,
        ..HubConfig::default()
    });
    let a = w.join("lobby");
    let b = w.join("lobby");
    w.disconnect(b.conn);
    let c = w.join("lobby"); // peer-joined c: b's queue is now full
    let d = w.join("lobby"); // peer-joined d does not fit: b's window ends
    w.advance(Duration::ZERO);
    let left = json!({"type": "peer-left", "id": b.id});
    let frames = w.frames();
    assert_eq!(
        frames,
        [
            (a.conn, left.clone()),
            (c.conn, left.clone()),
            (d.conn, left)
        ]
    );
    let conn = w.connect();
    let text = json!({"type": "join", "room": "lobby", "resume": b.resume}).to_string();
    assert_eq!(w.error_for(conn, &text).0, "resume-failed");
}
