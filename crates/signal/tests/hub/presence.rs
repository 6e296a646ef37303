//! Joining and leaving rooms, and what the others see.
#![allow(clippy::unwrap_used)]

use serde_json::json;
use signal::{CloseReason, HubStats};

use crate::harness::{close_of, World, ICE};

fn is_peer_id(id: &str) -> bool {
    id.len() == 8
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[test]
fn joined_carries_id_room_peers_resume_and_ice_servers() {
    // docs/signaling.md `joined`: id, room, peers, resume, resumed, iceServers, iceTtl.
    let mut w = World::new();
    let conn = w.connect();
    w.send(conn, r#"{"type":"join","room":"lobby"}"#);
    let texts = w.texts();
    assert_eq!(texts.len(), 1);
    let (to, text) = &texts[0];
    assert_eq!(*to, conn);
    // iceServers is the I/O layer's JSON, inserted verbatim.
    assert!(
        text.contains(&format!(r#""iceServers":{ICE},"iceTtl":86400"#)),
        "{text}"
    );
    let frame = crate::harness::json(text);
    assert_eq!(frame["type"], "joined");
    assert_eq!(frame["room"], "lobby");
    assert_eq!(frame["peers"], json!([]));
    assert_eq!(frame["resumed"], false);
    assert!(is_peer_id(frame["id"].as_str().unwrap()), "{frame}");
    let resume = frame["resume"].as_str().unwrap();
    let secret = resume.split_once('.').unwrap().1;
    assert!(secret.len() >= 32, "at least 128 bits: {resume}");
}

#[test]
fn peer_ids_are_random_hex_and_unique() {
    // docs/signaling.md: the server assigns peer ids.
    let mut w = World::new();
    let mut ids: Vec<String> = (0..40).map(|i| w.join(&format!("r{}", i % 3)).id).collect();
    assert!(ids.iter().all(|id| is_peer_id(id)));
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 40);
}

#[test]
fn joiner_gets_members_in_join_order_others_get_peer_joined() {
    // docs/signaling.md: `peers` lists the others in join order; they see `peer-joined`.
    let mut w = World::new();
    let a = w.join("lobby");
    let b = w.join("lobby");
    assert_eq!(b.peers, vec![a.id.clone()]);
    let c_conn = w.connect();
    w.send_json(c_conn, json!({"type": "join", "room": "lobby"}));
    let frames = w.frames();
    let c_id = frames[0].1["id"].as_str().unwrap().to_owned();
    assert_eq!(frames[0].0, c_conn);
    assert_eq!(frames[0].1["peers"], json!([a.id, b.id]));
    let presence = json!({"type": "peer-joined", "id": c_id});
    assert_eq!(
        frames[1..],
        [(a.conn, presence.clone()), (b.conn, presence)]
    );
}

#[test]
fn leave_tells_the_others_at_once_and_closes() {
    // docs/signaling.md `leave`: the others see `peer-left` at once, no grace window; the
    // connection is closed (CloseReason::Left).
    let mut w = World::new();
    let a = w.join("lobby");
    let b = w.join("lobby");
    let c = w.join("lobby");
    w.send(b.conn, r#"{"type":"leave"}"#);
    let outputs = w.outputs();
    assert_eq!(close_of(&outputs, b.conn), Some(CloseReason::Left));
    assert_eq!(CloseReason::Left.code(), 1000);
    let left = json!({"type": "peer-left", "id": b.id});
    let frames: Vec<_> = outputs
        .iter()
        .filter_map(|o| match o {
            signal::Output::Send { conn, text } => Some((*conn, crate::harness::json(text))),
            _ => None,
        })
        .collect();
    assert_eq!(frames, [(a.conn, left.clone()), (c.conn, left)]);
    // The closed connection is forgotten: its frames are ignored.
    w.send(b.conn, r#"{"type":"ping"}"#);
    assert!(w.outputs().is_empty());
    let d = w.join("lobby");
    assert_eq!(d.peers, vec![a.id, c.id]);
}

#[test]
fn room_is_created_on_first_join_and_removed_when_empty() {
    // docs/signaling.md: rooms exist while they have peers.
    let mut w = World::new();
    let a = w.join("lobby");
    let b = w.join("lobby");
    let c = w.join("hall");
    let stats = w.hub.stats();
    assert_eq!((stats.rooms, stats.peers, stats.connections), (2, 3, 3));
    w.send(a.conn, r#"{"type":"leave"}"#);
    w.send(b.conn, r#"{"type":"leave"}"#);
    w.send(c.conn, r#"{"type":"leave"}"#);
    w.outputs();
    assert_eq!(w.hub.stats(), HubStats::default());
    // A new room of the same name starts empty.
    assert!(w.join("lobby").peers.is_empty());
}

#[test]
fn a_room_with_only_an_away_peer_still_exists() {
    // Rooms are removed when empty, counting peers in their grace window.
    let mut w = World::new();
    let a = w.join("lobby");
    w.disconnect(a.conn);
    let stats = w.hub.stats();
    assert_eq!(
        (stats.rooms, stats.peers, stats.away, stats.connections),
        (1, 1, 1, 0)
    );
    let b = w.join("lobby");
    assert_eq!(b.peers, vec![a.id]);
    w.send(b.conn, r#"{"type":"leave"}"#);
    w.outputs();
    w.advance(crate::harness::secs(30));
    assert_eq!(w.hub.stats(), HubStats::default());
}

#[test]
fn not_joined_connection_closing_leaves_no_trace() {
    let mut w = World::new();
    let conn = w.connect();
    w.disconnect(conn);
    w.disconnect(conn);
    assert_eq!(w.hub.stats(), HubStats::default());
    assert_eq!(w.hub.poll_timeout(), None);
}

#[test]
fn disconnect_after_leave_is_a_no_op() {
    // After `leave` the hub forgets the connection: a late `disconnect` is a no-op.
    let mut w = World::new();
    let a = w.join("lobby");
    w.send(a.conn, r#"{"type":"leave"}"#);
    w.disconnect(a.conn);
    w.outputs();
    assert_eq!(w.hub.stats(), HubStats::default());
}
