//! docs/signaling.md's examples agree with the hub: every example is JSON, every error code
//! and standard message is the hub's, every client example is well-formed, and the server
//! examples list their members in the order the hub writes them.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::value::RawValue;
use serde_json::Value;
use signal::{ErrorCode, Hub, HubConfig, IceConfig, Output};

const DOC: &str = include_str!("../../../docs/signaling.md");

/// The lines of the ```json blocks, as (section heading, line).
fn json_examples() -> Vec<(String, String)> {
    let (mut section, mut inside, mut out) = (String::new(), false, Vec::new());
    for line in DOC.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            section = heading.to_owned();
        } else if line == "```json" {
            inside = true;
        } else if line.starts_with("```") {
            inside = false;
        } else if inside && !line.is_empty() {
            out.push((section.clone(), line.to_owned()));
        }
    }
    out
}

fn section(name: &str) -> Vec<String> {
    let lines: Vec<String> = json_examples()
        .into_iter()
        .filter(|(s, _)| s == name)
        .map(|(_, l)| l)
        .collect();
    assert!(!lines.is_empty(), "no examples in {name}");
    lines
}

#[test]
fn every_example_is_one_json_object() {
    for (section, line) in json_examples() {
        let value: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{section}: {e}: {line}"));
        assert!(value["type"].is_string(), "{line}");
    }
}

#[test]
fn every_error_code_has_an_example_with_the_hubs_message() {
    let examples: Vec<Value> = section("Errors")
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for code in ErrorCode::ALL {
        let found: Vec<&Value> = examples
            .iter()
            .filter(|e| e["code"] == code.to_string())
            .collect();
        assert!(!found.is_empty(), "no example for {code}");
        let free_text = [ErrorCode::BadMessage, ErrorCode::BadToken].contains(&code);
        if !free_text {
            assert!(
                found.iter().all(|e| e["message"] == code.message()),
                "{code}"
            );
        }
        assert!(
            DOC.contains(&format!("| `{code}` |")),
            "{code} is in the table"
        );
    }
}

#[test]
fn client_examples_are_well_formed() {
    let mut hub = Hub::new(HubConfig::default(), Box::new(StdRng::seed_from_u64(3)));
    let now = Instant::now();
    let ice = IceConfig {
        servers: RawValue::from_string("[]".into()).unwrap(),
        ttl: 0,
    };
    hub.connect(now, 1, ice);
    for line in section("Client → server") {
        hub.handle_text(now, 0, 1, &line);
        while let Some(out) = hub.poll_output() {
            if let Output::Send { text, .. } = out {
                assert!(!text.contains("bad-message"), "{line} → {text}");
            }
        }
    }
}

#[test]
fn server_examples_have_the_hubs_member_order() {
    let order = |line: &str| -> Vec<String> {
        let value: serde_json::Map<String, Value> = serde_json::from_str(line).unwrap();
        let mut keys: Vec<(usize, String)> = value
            .keys()
            .map(|k| (line.find(&format!("\"{k}\":")).unwrap(), k.clone()))
            .collect();
        keys.sort();
        keys.into_iter().map(|(_, k)| k).collect()
    };
    let expected: &[(&str, &[&str])] = &[
        (
            "joined",
            &[
                "type",
                "id",
                "room",
                "peers",
                "resume",
                "resumed",
                "iceServers",
                "iceTtl",
            ],
        ),
        ("peer-joined", &["type", "id"]),
        ("offer", &["type", "from", "data"]),
        ("broadcast", &["type", "from", "data"]),
    ];
    let lines = section("Server → client");
    for (kind, keys) in expected {
        let line = lines
            .iter()
            .find(|l| l.starts_with(&format!("{{\"type\":\"{kind}\"")))
            .unwrap();
        assert_eq!(order(line), *keys, "{line}");
    }
}
