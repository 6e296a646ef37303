//! Liveness: pings every 10 s (unless traffic both ways made one unnecessary), silent
//! connections closed after 30 s.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::json;
use signal::{CloseReason, HubConfig, Output};

use crate::harness::{close_of, secs, World};

#[test]
fn ping_every_ten_seconds() {
    // docs/signaling.md `ping`: every 10 s.
    let mut w = World::new();
    let a = w.join("lobby");
    let start = w.now;
    assert_eq!(w.hub.poll_timeout(), Some(start + secs(10)));
    w.advance(Duration::from_millis(9_999));
    assert!(w.outputs().is_empty());
    w.advance(Duration::from_millis(1));
    assert_eq!(w.frames(), [(a.conn, json!({"type": "ping"}))]);
    w.send(a.conn, r#"{"type":"pong"}"#);
    w.advance(secs(10));
    assert_eq!(w.frames(), [(a.conn, json!({"type": "ping"}))]);
    assert_eq!(w.hub.poll_timeout(), Some(start + secs(30)));
}

/// Each of `a` and `b` sends the other a `message`, then time moves on by `step`.
fn exchange(w: &mut World, a: &crate::harness::Joined, b: &crate::harness::Joined, step: Duration) {
    w.send_json(a.conn, json!({"type": "message", "to": b.id, "data": "x"}));
    w.send_json(b.conn, json!({"type": "message", "to": a.id, "data": "y"}));
    w.advance(step);
}

fn pings(frames: &[(signal::ConnId, serde_json::Value)]) -> Vec<signal::ConnId> {
    frames
        .iter()
        .filter(|(_, f)| f["type"] == "ping")
        .map(|(conn, _)| *conn)
        .collect()
}

#[test]
fn traffic_both_ways_replaces_pings() {
    // docs/signaling.md: a slot's ping is skipped when, since the last slot, a frame came from
    // the client and one went to it.
    let mut w = World::new();
    let a = w.join("lobby");
    let b = w.join("lobby");
    w.frames();
    let mut frames = Vec::new();
    for _ in 0..30 {
        exchange(&mut w, &a, &b, secs(2));
        frames.extend(w.frames());
    }
    // 60 s: without traffic that would have been six pings each.
    assert_eq!(pings(&frames), [] as [signal::ConnId; 0]);
    assert_eq!(frames.len(), 60, "the messages, nothing else: {frames:?}");
    assert_eq!(w.hub.stats().connections, 2, "nobody counted silent");
    // Traffic stops: pings resume on the next slots.
    w.advance(secs(10));
    let mut quiet = pings(&w.frames());
    quiet.sort_unstable();
    assert_eq!(quiet, [a.conn, b.conn]);
}

#[test]
fn traffic_one_way_still_gets_pings() {
    // a only sends, b only receives: each still carries a frame each way at least every
    // other slot.
    let mut w = World::new();
    let a = w.join("lobby");
    let b = w.join("lobby");
    // The first slot (10 s) pings both; they answer; then 1 s later the traffic starts, off
    // the slots' instants.
    w.advance(secs(10));
    assert_eq!(pings(&w.frames()).len(), 2);
    w.send_json(a.conn, json!({"type": "pong"}));
    w.send_json(b.conn, json!({"type": "pong"}));
    w.advance(secs(1));
    let (mut to_a, mut to_b) = (0, 0);
    for _ in 0..30 {
        w.send_json(a.conn, json!({"type": "message", "to": b.id, "data": "x"}));
        w.advance(secs(2));
        for conn in pings(&w.frames()) {
            if conn == a.conn {
                to_a += 1;
            } else {
                to_b += 1;
                w.send_json(b.conn, json!({"type": "pong"}));
            }
        }
    }
    // Slots at 20, 30, …, 70 s. a hears nothing but pings: one every slot.
    assert_eq!(to_a, 6);
    // b is sent a frame every 2 s but speaks only when pinged: at 20, 40 and 60 s (its pong
    // makes the next slot's ping unnecessary).
    assert_eq!(to_b, 3);
    assert_eq!(w.hub.stats().connections, 2, "nobody counted silent");
}

#[test]
fn each_connection_pings_on_its_own_cadence() {
    let mut w = World::new();
    let first = w.connect();
    w.advance(secs(4));
    let second = w.connect();
    w.advance(secs(6));
    assert_eq!(w.frames(), [(first, json!({"type": "ping"}))]);
    w.advance(secs(4));
    assert_eq!(w.frames(), [(second, json!({"type": "ping"}))]);
}

#[test]
fn silence_closes_the_connection_and_the_peer_leaves_after_grace() {
    // docs/signaling.md: a connection from which nothing arrives for 30 s is treated as
    // closed: Close{Silent}, the peer waits out its grace window (30 s), then `peer-left`.
    let mut w = World::new();
    let a = w.join("lobby");
    let b = w.join("lobby");
    // b answers pings; a is silent.
    for _ in 0..2 {
        w.advance(secs(10));
        w.send(b.conn, r#"{"type":"pong"}"#);
        assert_eq!(w.frames().len(), 2, "a ping each");
    }
    w.advance(secs(10));
    let outputs = w.outputs();
    assert_eq!(close_of(&outputs, a.conn), Some(CloseReason::Silent));
    assert_eq!(
        outputs,
        [
            Output::Close {
                conn: a.conn,
                reason: CloseReason::Silent
            },
            Output::Send {
                conn: b.conn,
                text: r#"{"type":"ping"}"#.to_owned()
            },
        ]
    );
    assert_eq!(w.hub.stats().away, 1);
    w.send(b.conn, r#"{"type":"pong"}"#);
    w.advance(secs(15));
    w.send(b.conn, r#"{"type":"pong"}"#);
    w.advance(Duration::from_millis(14_999));
    assert!(
        w.frames().iter().all(|(_, f)| f["type"] == "ping"),
        "others see nothing yet"
    );
    w.advance(Duration::from_millis(1));
    let frames = w.frames();
    assert!(frames.contains(&(b.conn, json!({"type": "peer-left", "id": a.id}))));
    assert_eq!(w.hub.stats().peers, 1);
}

#[test]
fn any_frame_is_a_sign_of_life() {
    // docs/signaling.md `pong`: any frame counts, even one that is refused.
    let mut w = World::new();
    let conn = w.connect();
    for _ in 0..10 {
        w.advance(secs(25));
        w.send(conn, "not json");
    }
    let outputs = w.outputs();
    assert!(close_of(&outputs, conn).is_none());
    assert_eq!(w.hub.stats().connections, 1);
    w.advance(secs(30));
    assert_eq!(close_of(&w.outputs(), conn), Some(CloseReason::Silent));
    assert_eq!(w.hub.stats().connections, 0);
}

#[test]
fn silent_connection_before_join_is_just_closed() {
    let mut w = World::new();
    let conn = w.connect();
    w.advance(secs(30));
    assert_eq!(close_of(&w.outputs(), conn), Some(CloseReason::Silent));
    assert_eq!(w.hub.poll_timeout(), None);
}

#[test]
fn zero_durations_disable_pings_and_silence() {
    let mut w = World::with(HubConfig {
        ping_interval: Duration::ZERO,
        silence_timeout: Duration::ZERO,
        ..HubConfig::default()
    });
    w.join("lobby");
    assert_eq!(w.hub.poll_timeout(), None);
    w.advance(secs(3600));
    assert!(w.outputs().is_empty());
}

#[test]
fn late_timer_calls_do_not_burst_pings() {
    // An I/O loop that wakes up late sends one ping, not one per missed interval.
    let mut w = World::with(HubConfig {
        silence_timeout: Duration::ZERO,
        ..HubConfig::default()
    });
    let conn = w.connect();
    w.now += secs(95);
    w.hub.handle_timeout(w.now);
    assert_eq!(w.frames(), [(conn, json!({"type": "ping"}))]);
    assert_eq!(w.hub.poll_timeout(), Some(w.now + secs(10)));
}
