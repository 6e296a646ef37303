//! Join tokens, when the hub has a `token_secret`.
#![allow(clippy::unwrap_used)]

use serde_json::json;
use signal::{token, CloseReason, HubConfig, HubStats, Output};

use crate::harness::{close_of, World, UNIX_START};

const SECRET: &[u8] = b"signaling-secret";

fn world() -> World {
    World::with(HubConfig {
        token_secret: Some(SECRET.to_vec()),
        ..HubConfig::default()
    })
}

/// Sends `join` with `token` on a new connection and expects bad-token, then the close.
fn refused(w: &mut World, token: Option<&str>) {
    let conn = w.connect();
    let mut frame = json!({"type": "join", "room": "lobby"});
    if let Some(token) = token {
        frame["token"] = json!(token);
    }
    w.send_json(conn, frame);
    let outputs = w.outputs();
    assert_eq!(outputs.len(), 2, "{outputs:?}");
    let Output::Send { conn: to, text } = &outputs[0] else {
        panic!("an error frame first: {outputs:?}");
    };
    assert_eq!(*to, conn);
    let error = crate::harness::json(text);
    assert_eq!(
        (&error["code"], &error["ref"]),
        (&json!("bad-token"), &json!("join"))
    );
    assert_eq!(close_of(&outputs, conn), Some(CloseReason::BadToken));
    assert_eq!(
        w.hub.stats(),
        HubStats::default(),
        "nobody joined, connection forgotten"
    );
}

#[test]
fn a_valid_token_admits() {
    // docs/signaling.md "Tokens": `join` needs a `token` for its room.
    let mut w = world();
    let conn = w.connect();
    let token = token::mint(SECRET, "lobby", UNIX_START + 60);
    w.send_json(
        conn,
        json!({"type": "join", "room": "lobby", "token": token}),
    );
    assert_eq!(w.joined(conn).frame["room"], "lobby");
}

#[test]
fn missing_expired_other_room_forged_or_garbage_tokens_are_refused_and_closed() {
    // docs/signaling.md `bad-token`: missing, malformed, forged, expired, or for another
    // room; the connection is closed.
    let mut w = world();
    refused(&mut w, None);
    refused(&mut w, Some(&token::mint(SECRET, "lobby", UNIX_START)));
    refused(&mut w, Some(&token::mint(SECRET, "lobby", UNIX_START - 1)));
    refused(&mut w, Some(&token::mint(SECRET, "hall", UNIX_START + 60)));
    refused(
        &mut w,
        Some(&token::mint(b"another secret", "lobby", UNIX_START + 60)),
    );
    refused(&mut w, Some("garbage"));
    refused(&mut w, Some(""));
}

#[test]
fn resume_needs_no_join_token() {
    // docs/signaling.md "Tokens": the resume token alone admits a resume (the join token
    // may have expired meanwhile).
    let mut w = world();
    let conn = w.connect();
    let token = token::mint(SECRET, "lobby", UNIX_START + 10);
    w.send_json(
        conn,
        json!({"type": "join", "room": "lobby", "token": token}),
    );
    let a = w.joined(conn);
    w.disconnect(a.conn);
    w.advance(crate::harness::secs(20));
    let conn = w.connect();
    w.send_json(
        conn,
        json!({"type": "join", "room": "lobby", "resume": a.resume}),
    );
    assert_eq!(w.joined(conn).id, a.id);
}

#[test]
fn tokens_are_ignored_without_a_secret() {
    let mut w = World::new();
    let conn = w.connect();
    w.send(conn, r#"{"type":"join","room":"lobby","token":"anything"}"#);
    w.joined(conn);
}

/// A connection whose `joined` servers are minted from the grant: `{"room":R,"exp":E,"at":T}`
/// (or `null` for no grant), so the test sees exactly what the minter was given.
fn connect_minted(w: &mut World) -> signal::ConnId {
    let conn = w.connect();
    let minter: signal::IceMinter = Box::new(|grant, unix_now| {
        let seen = match grant {
            Some(g) => json!([{ "room": g.room, "exp": g.expiry_unix, "at": unix_now }]),
            None => json!([null]),
        };
        signal::IceConfig {
            servers: serde_json::value::RawValue::from_string(seen.to_string()).unwrap(),
            ttl: 1,
        }
    });
    w.hub
        .connect(w.now, conn, signal::IceSource::Minted(minter));
    conn
}

#[test]
fn joined_credentials_are_minted_from_the_token_grant_also_on_resume() {
    // Issue #10: the TURN credentials in `joined` carry the join token's identity and never
    // outlive it, also when the peer resumes after the token expired.
    let mut w = world();
    let conn = connect_minted(&mut w);
    let token = token::mint(SECRET, "lobby", UNIX_START + 10);
    w.send_json(
        conn,
        json!({"type": "join", "room": "lobby", "token": token}),
    );
    let a = w.joined(conn);
    assert_eq!(
        a.frame["iceServers"],
        json!([{ "room": "lobby", "exp": UNIX_START + 10, "at": UNIX_START }])
    );
    w.disconnect(a.conn);
    w.advance(crate::harness::secs(20));
    let conn = connect_minted(&mut w);
    w.send_json(
        conn,
        json!({"type": "join", "room": "lobby", "resume": a.resume}),
    );
    assert_eq!(
        w.joined(conn).frame["iceServers"],
        json!([{ "room": "lobby", "exp": UNIX_START + 10, "at": UNIX_START + 20 }])
    );
}

#[test]
fn without_a_secret_the_minter_gets_no_grant() {
    let mut w = World::new();
    let conn = connect_minted(&mut w);
    w.send(conn, r#"{"type":"join","room":"lobby"}"#);
    assert_eq!(w.joined(conn).frame["iceServers"], json!([null]));
}
