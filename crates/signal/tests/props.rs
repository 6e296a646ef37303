//! Property tests: no input panics the hub, its invariants hold after every step, every
//! frame it sends is JSON, and `data` always comes out byte for byte.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use signal::{ConnId, Hub, HubConfig, IceConfig, Output};

fn ice() -> IceConfig {
    IceConfig {
        servers: RawValue::from_string("[]".to_owned()).unwrap(),
        ttl: 1,
    }
}

fn small_config() -> HubConfig {
    HubConfig {
        room_capacity: 3,
        max_message_bytes: 512,
        queue_length: 2,
        message_rate: 20,
        message_burst: 5,
        ping_interval: Duration::from_secs(3),
        silence_timeout: Duration::from_secs(7),
        resume_grace: Duration::from_secs(5),
        token_secret: None,
    }
}

/// A JSON value with unicode strings, exotic numbers and nesting.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("\\PC{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A well-formed frame; `to` and `resume` are placeholders the runner personalizes.
fn good_frame() -> impl Strategy<Value = String> {
    let kind = prop::sample::select(vec!["offer", "answer", "candidate", "bye", "message"]);
    prop_oneof![
        3 => (prop::sample::select(vec!["a", "b"]), any::<bool>()).prop_map(|(room, resume)| {
            match resume {
                true => json!({"type": "join", "room": room, "resume": "t"}),
                false => json!({"type": "join", "room": room}),
            }
            .to_string()
        }),
        4 => (kind, json_value()).prop_map(|(kind, data)| {
            json!({"type": kind, "to": "x", "data": data}).to_string()
        }),
        2 => json_value().prop_map(|data| json!({"type": "broadcast", "data": data}).to_string()),
        1 => Just(r#"{"type":"leave"}"#.to_owned()),
        1 => Just(r#"{"type":"ping"}"#.to_owned()),
        1 => Just(r#"{"type":"pong"}"#.to_owned()),
    ]
}

/// A frame a client might send: well-formed or not.
fn frame() -> impl Strategy<Value = String> {
    let room = prop_oneof![Just("a"), Just("b"), Just("bad room"), Just("")];
    let to = prop_oneof![Just("x".to_owned()), "[0-9a-f]{8}"];
    let resume = prop::option::of(prop_oneof![Just("t".to_owned()), "\\PC{0,40}"]);
    let kind = prop::sample::select(vec![
        "offer",
        "answer",
        "candidate",
        "bye",
        "message",
        "broadcast",
        "ping",
        "pong",
        "leave",
        "join",
        "nope",
    ]);
    prop_oneof![
        8 => good_frame(),
        3 => (kind, room, to, resume, json_value()).prop_map(|(kind, room, to, resume, data)| {
            let mut f = json!({"type": kind, "room": room, "to": to, "data": data, "from": "x"});
            if let Some(resume) = resume {
                f["resume"] = json!(resume);
            }
            f.to_string()
        }),
        1 => "\\PC{0,80}",
        1 => "[{}\\[\\]\",:a-z0-9 ]{0,40}",
    ]
}

#[derive(Debug, Clone)]
enum Step {
    Connect,
    Disconnect(usize),
    Send(usize, String),
    Advance(u64),
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    // Ids and tokens are not known in advance: the strategy uses plausible ones, and the
    // runner below swaps in real ones taken from `joined` frames.
    let step = prop_oneof![
        2 => Just(Step::Connect),
        1 => (0usize..8).prop_map(Step::Disconnect),
        8 => (0usize..8, frame()).prop_map(|(c, f)| Step::Send(c, f)),
        2 => (0u64..4_000).prop_map(Step::Advance),
    ];
    prop::collection::vec(step, 1..80)
}

/// Replaces the placeholder id/token with real ones seen so far.
fn personalize(text: &str, ids: &[String], tokens: &[String], pick: usize) -> String {
    let mut text = text.to_owned();
    if let Some(id) = ids.get(pick % ids.len().max(1)) {
        text = text.replace("\"to\":\"x\"", &format!("\"to\":\"{id}\""));
    }
    if let Some(token) = tokens.get(pick % tokens.len().max(1)) {
        text = text.replace("\"resume\":\"t\"", &format!("\"resume\":\"{token}\""));
    }
    text
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_text_never_panics(texts in prop::collection::vec("\\PC{0,200}", 1..20)) {
        let mut hub = Hub::new(small_config(), Box::new(StdRng::seed_from_u64(1)));
        let now = Instant::now();
        hub.connect(now, 1, ice());
        hub.handle_text(now, 0, 1, r#"{"type":"join","room":"a"}"#);
        hub.connect(now, 2, ice());
        for text in &texts {
            hub.handle_text(now, 0, 1, text);
            hub.handle_text(now, 0, 2, text);
            hub.check_invariants().unwrap();
        }
        while let Some(out) = hub.poll_output() {
            if let Output::Send { text, .. } = out {
                prop_assert!(serde_json::from_str::<Value>(&text).is_ok(), "{}", text);
            }
        }
    }

    #[test]
    fn data_is_relayed_byte_for_byte(data in json_value(), pretty in any::<bool>()) {
        let mut hub = Hub::new(HubConfig::default(), Box::new(StdRng::seed_from_u64(2)));
        let now = Instant::now();
        let mut ids = Vec::new();
        for conn in [1, 2] {
            hub.connect(now, conn, ice());
            hub.handle_text(now, 0, conn, r#"{"type":"join","room":"r"}"#);
            while let Some(out) = hub.poll_output() {
                if let Output::Send { conn: c, text } = out {
                    let f: Value = serde_json::from_str(&text).unwrap();
                    if c == conn && f["type"] == "joined" {
                        ids.push(f["id"].as_str().unwrap().to_owned());
                    }
                }
            }
        }
        let raw = if pretty { serde_json::to_string_pretty(&data) } else { serde_json::to_string(&data) }.unwrap();
        let text = format!(r#"{{"type":"message","to":"{}","data":{raw}}}"#, ids[1]);
        hub.handle_text(now, 0, 1, &text);
        let expected = format!(r#"{{"type":"message","from":"{}","data":{raw}}}"#, ids[0]);
        prop_assert_eq!(hub.poll_output(), Some(Output::Send { conn: 2, text: expected }));
    }

    #[test]
    fn invariants_hold_under_random_sessions(steps in steps(), seed in any::<u64>()) {
        let mut hub = Hub::new(small_config(), Box::new(StdRng::seed_from_u64(seed)));
        let mut now = Instant::now();
        let mut next_conn: ConnId = 0;
        let mut open: Vec<ConnId> = Vec::new();
        let mut closed: BTreeSet<ConnId> = BTreeSet::new();
        let (mut ids, mut tokens) = (Vec::new(), Vec::new());
        for (i, step) in steps.into_iter().enumerate() {
            match step {
                Step::Connect => {
                    next_conn += 1;
                    hub.connect(now, next_conn, ice());
                    open.push(next_conn);
                }
                Step::Disconnect(k) if !open.is_empty() => {
                    let conn = open.remove(k % open.len());
                    hub.disconnect(now, conn);
                    closed.insert(conn);
                }
                Step::Send(k, text) if !open.is_empty() => {
                    let text = personalize(&text, &ids, &tokens, i);
                    hub.handle_text(now, 0, open[k % open.len()], &text);
                }
                Step::Advance(ms) => {
                    now += Duration::from_millis(ms);
                    while let Some(at) = hub.poll_timeout().filter(|&at| at <= now) {
                        prop_assert!(at <= now);
                        hub.handle_timeout(now);
                    }
                }
                _ => {}
            }
            hub.check_invariants().map_err(TestCaseError::fail)?;
            while let Some(out) = hub.poll_output() {
                match out {
                    Output::Send { conn, text } => {
                        prop_assert!(!closed.contains(&conn), "frame after close to {}", conn);
                        prop_assert!(conn <= next_conn);
                        let f: Value = serde_json::from_str(&text).unwrap();
                        if f["type"] == "joined" {
                            ids.push(f["id"].as_str().unwrap().to_owned());
                            tokens.push(f["resume"].as_str().unwrap().to_owned());
                        }
                    }
                    Output::Close { conn, .. } => {
                        prop_assert!(closed.insert(conn), "closed twice: {}", conn);
                        open.retain(|&c| c != conn);
                    }
                    _ => {}
                }
            }
            let stats = hub.stats();
            prop_assert_eq!(stats.connections, open.len());
            prop_assert!(stats.peers <= stats.rooms * 3);
        }
    }
}
