//! Directed frames and broadcasts: verbatim `data`, stamped `from`, same room only.
#![allow(clippy::unwrap_used)]

use serde_json::json;

use crate::harness::World;

/// `data` values a JSON re-encoder would change.
const EXOTIC: [&str; 9] = [
    r#"{"sdp":"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n","type":"offer"}"#,
    r#"{ "b" : 2 ,"a":1 }"#,
    r#"[1.0, -0, 1e400, 1.5E+10, 2e-7, 12345678901234567890123]"#,
    r#""caf\u00e9 ☕ \ud83d\ude00 😀 \/ \"q\"""#,
    r#"{"nested":{"deep":[[[{"x":null}]]],"dup":1,"dup":2}}"#,
    r#"null"#,
    r#"true"#,
    r#""""#,
    "{\n\t\"ws\" :\t[ ]\n}",
];

#[test]
fn directed_data_is_forwarded_byte_for_byte() {
    // docs/signaling.md: `data` is forwarded verbatim, byte for byte.
    let mut w = World::new();
    let a = w.join("lobby");
    let b = w.join("lobby");
    for kind in ["offer", "answer", "candidate", "bye", "message"] {
        for data in EXOTIC {
            let frame = format!(r#"{{"type":"{kind}","to":"{}","data":{data}}}"#, b.id);
            w.send(a.conn, &frame);
            let expected = format!(r#"{{"type":"{kind}","from":"{}","data":{data}}}"#, a.id);
            assert_eq!(w.texts(), [(b.conn, expected)]);
        }
    }
}

#[test]
fn broadcast_reaches_every_other_peer_in_join_order_verbatim() {
    // docs/signaling.md `broadcast`: to every other peer of the room.
    let mut w = World::new();
    let a = w.join("lobby");
    let b = w.join("lobby");
    let c = w.join("lobby");
    let d = w.join("lobby");
    for data in EXOTIC {
        w.send(c.conn, &format!(r#"{{"data":{data},"type":"broadcast"}}"#));
        let expected = format!(r#"{{"type":"broadcast","from":"{}","data":{data}}}"#, c.id);
        let to: Vec<_> = [a.conn, b.conn, d.conn]
            .into_iter()
            .map(|conn| (conn, expected.clone()))
            .collect();
        assert_eq!(w.texts(), to);
    }
}

#[test]
fn alone_in_a_room_a_broadcast_goes_nowhere() {
    let mut w = World::new();
    let a = w.join("lobby");
    w.send(a.conn, r#"{"type":"broadcast","data":1}"#);
    assert!(w.outputs().is_empty());
}

#[test]
fn spoofed_from_is_overwritten() {
    // docs/signaling.md: the server stamps `from`; a client cannot spoof it.
    let mut w = World::new();
    let a = w.join("lobby");
    let b = w.join("lobby");
    let c = w.join("lobby");
    let frame = json!({"type": "offer", "to": b.id, "from": c.id, "data": {"from": c.id}});
    w.send_json(a.conn, frame);
    let frames = w.frames();
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].1["from"], a.id.as_str());
    assert_eq!(
        frames[0].1["data"]["from"],
        c.id.as_str(),
        "data is untouched"
    );
    let text = format!(
        r#"{{"type":"broadcast","from":"{}","data":0,"from":"x"}}"#,
        c.id
    );
    w.send(a.conn, &text);
    let frames = w.frames();
    assert!(frames.iter().all(|(_, f)| f["from"] == a.id.as_str()));
    assert_eq!(frames.len(), 2);
}

#[test]
fn to_naming_no_peer_is_unknown_peer() {
    // docs/signaling.md `unknown-peer`: `to` names no peer of this room.
    let mut w = World::new();
    let a = w.join("lobby");
    for to in ["", "nobody", "00000000", "ZZZZZZZZ", &a.id.to_uppercase()] {
        let text = json!({"type": "candidate", "to": to, "data": {}}).to_string();
        let (code, kind) = w.error_for(a.conn, &text);
        assert_eq!(
            (code.as_str(), kind.as_deref()),
            ("unknown-peer", Some("candidate"))
        );
    }
}

#[test]
fn rooms_are_isolated() {
    // docs/signaling.md: delivered to peer `to` in the same room.
    let mut w = World::new();
    let a = w.join("lobby");
    let b = w.join("lobby");
    let x = w.join("hall");
    let (code, _) = w.error_for(
        a.conn,
        &json!({"type": "offer", "to": x.id, "data": 1}).to_string(),
    );
    assert_eq!(code, "unknown-peer");
    w.send(x.conn, r#"{"type":"broadcast","data":"hall only"}"#);
    assert!(w.outputs().is_empty(), "x is alone in its room");
    w.send(a.conn, r#"{"type":"broadcast","data":"lobby only"}"#);
    assert_eq!(
        w.frames().iter().map(|(c, _)| *c).collect::<Vec<_>>(),
        [b.conn]
    );
}

#[test]
fn a_peer_may_send_to_itself() {
    let mut w = World::new();
    let a = w.join("lobby");
    w.send_json(
        a.conn,
        json!({"type": "message", "to": a.id, "data": "note"}),
    );
    let frames = w.frames();
    assert_eq!(
        frames,
        [(
            a.conn,
            json!({"type": "message", "from": a.id, "data": "note"})
        )]
    );
}

#[test]
fn ping_is_answered_before_and_after_join() {
    // docs/signaling.md `ping`: the server answers `pong`; `pong` needs no answer.
    let mut w = World::new();
    let conn = w.connect();
    w.send(conn, r#"{"type":"ping"}"#);
    assert_eq!(w.texts(), [(conn, r#"{"type":"pong"}"#.to_owned())]);
    w.send(conn, r#"{"type":"pong"}"#);
    assert!(w.outputs().is_empty());
    let a = w.join("lobby");
    w.send(a.conn, r#"{"type":"ping","data":1}"#);
    assert_eq!(w.texts(), [(a.conn, r#"{"type":"pong"}"#.to_owned())]);
}
