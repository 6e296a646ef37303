//! Liveness: pings every 10 s, silent connections closed after 30 s.
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
