//! `GET /metrics` of the real binary: where it is served (`metrics-listen` on loopback by
//! default, "off", `metrics-on-http`), what the stream listeners, the signaling hub and the
//! HTTP router count, and that every metric the Grafana dashboard (deploy/grafana/
//! turnpike.json) uses is in a scrape. The relay counters are checked against an independent
//! TURN client in tests/interop/test_metrics.py.

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message as Frame};

mod common;

use common::scrape::{get, samples, scrape, value, wait_for};
use common::{binding_request, Server};

fn start(args: &[&str]) -> Server {
    let mut all = vec!["--listen", "127.0.0.1:0", "--relay-ip", "127.0.0.1"];
    all.extend(args);
    Server::spawn(&all, |_| {})
}

#[test]
fn metrics_listen_defaults_to_loopback_9641() {
    // No --metrics-listen and none from the environment: the built-in default. (Removing the
    // variable also tells the test harness not to turn the listener off.)
    let server = Server::spawn(&["--listen", "127.0.0.1:0", "--http", "false"], |command| {
        command.env_remove("TURNPIKE_METRICS_LISTEN");
    });
    let metrics = server.address("metrics");
    assert_eq!(metrics, "127.0.0.1:9641".parse().unwrap());
    let scrape = scrape(metrics);
    assert_eq!(
        value(
            &scrape,
            r#"turnpike_allocations{transport="udp",family="ipv4"}"#
        ),
        0.0
    );
    assert!(value(&scrape, "process_open_fds") > 0.0);
    let version = concat!(
        r#"turnpike_build_info{version=""#,
        env!("CARGO_PKG_VERSION"),
        r#""}"#
    );
    assert_eq!(value(&scrape, version), 1.0);
    assert!(value(&scrape, "turnpike_workers") >= 1.0);
    // The metrics port is a service port: no relaying to it (and it is not /metrics on
    // other paths).
    assert_eq!(get(metrics, "/").0, 404);
}

#[test]
fn off_means_no_listener_and_http_serves_metrics_only_when_asked() {
    let server = start(&["--http-listen", "127.0.0.1:0", "--metrics-listen", "off"]);
    assert!(
        !server.listening.iter().any(|(t, _)| t == "metrics"),
        "{:?}",
        server.listening
    );
    assert_eq!(get(server.address("http"), "/metrics").0, 404);

    let server = start(&[
        "--http-listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "off",
        "--metrics-on-http",
    ]);
    let http = server.address("http");
    assert_eq!(get(http, "/healthz"), (200, "ok".to_owned()));
    assert_eq!(get(http, "/no/such/page").0, 404);
    let scrape = scrape(http);
    // HTTP requests by route pattern and status (the scrape itself counts after it is sent).
    assert_eq!(
        value(
            &scrape,
            r#"turnpike_http_requests_total{route="/healthz",status="200"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &scrape,
            r#"turnpike_http_requests_total{route="unmatched",status="404"}"#
        ),
        1.0
    );
    let again = samples(&get(http, "/metrics").1);
    assert_eq!(
        value(
            &again,
            r#"turnpike_http_requests_total{route="/metrics",status="200"}"#
        ),
        1.0
    );
}

#[test]
fn stream_connections_and_signaling_are_counted() {
    let server = start(&[
        "--http-listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
    ]);
    let metrics = server.address("metrics");
    let before = scrape(metrics);
    assert_eq!(
        value(&before, r#"turnpike_stream_connections{transport="tcp"}"#),
        0.0
    );

    // A STUN client over TCP: accepted and open while connected, closed after.
    let mut tcp = TcpStream::connect(server.address("tcp")).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    tcp.write_all(&binding_request(7)).unwrap();
    let mut answer = [0u8; 20];
    tcp.read_exact(&mut answer).unwrap();
    let open = scrape(metrics);
    assert_eq!(
        value(
            &open,
            r#"turnpike_stream_connections_accepted_total{transport="tcp"}"#
        ),
        1.0
    );
    assert_eq!(
        value(&open, r#"turnpike_stream_connections{transport="tcp"}"#),
        1.0
    );
    drop(tcp);
    wait_for(
        metrics,
        r#"turnpike_stream_connections{transport="tcp"}"#,
        0.0,
    );

    // Binding requests (the STUN service) by answer, over TCP above and UDP here; a Binding
    // request with an unknown comprehension-required attribute gets 420 (RFC 8489 §6.3.1).
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    udp.send_to(&binding_request(8), server.address("udp"))
        .unwrap();
    let mut reply = [0u8; 1500];
    udp.recv(&mut reply).unwrap();
    let mut unknown = binding_request(9);
    unknown.extend_from_slice(&[0x00, 0x31, 0x00, 0x00]);
    unknown[3] = 4; // message length: the one attribute
    udp.send_to(&unknown, server.address("udp")).unwrap();
    udp.recv(&mut reply).unwrap();
    assert_eq!(reply[0..2], [0x01, 0x11], "an error response");
    let binding = scrape(metrics);
    let requests = |code: &str| {
        value(
            &binding,
            &format!(r#"turnpike_requests_total{{method="binding",code="{code}"}}"#),
        )
    };
    assert_eq!((requests("success"), requests("420")), (2.0, 1.0));

    // A signaling peer: one room, one peer, two frames received, one of them refused.
    let http = server.address("http");
    let stream = TcpStream::connect(http).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let request = format!("ws://{http}/ws").into_client_request().unwrap();
    let Ok((mut ws, _)) = tungstenite::client(request, stream) else {
        panic!("WebSocket handshake failed");
    };
    ws.send(Frame::text(r#"{"type":"join","room":"metrics"}"#))
        .unwrap();
    let joined = ws.read().unwrap().into_text().unwrap();
    assert!(joined.contains(r#""type":"joined""#), "{joined}");
    ws.send(Frame::text("not json")).unwrap();
    let error = ws.read().unwrap().into_text().unwrap();
    assert!(error.contains("bad-message"), "{error}");
    let hub = scrape(metrics);
    for (series, want) in [
        ("turnpike_signaling_rooms", 1.0),
        ("turnpike_signaling_peers", 1.0),
        ("turnpike_signaling_connections", 1.0),
        ("turnpike_signaling_messages_total", 2.0),
        (
            r#"turnpike_signaling_errors_total{code="bad-message"}"#,
            1.0,
        ),
        (r#"turnpike_signaling_errors_total{code="room-full"}"#, 0.0),
        (
            r#"turnpike_http_requests_total{route="/ws",status="101"}"#,
            1.0,
        ),
    ] {
        assert_eq!(value(&hub, series), want, "{series}");
    }
}

/// The metric names a PromQL expression reads: identifiers that are not functions (followed
/// by `(`), keywords, label names (inside `{}` or `by (…)`), strings or durations (`[5m]`).
fn metric_names(expr: &str) -> Vec<String> {
    const KEYWORDS: [&str; 9] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "and",
        "or",
        "unless",
    ];
    let mut names = Vec::new();
    let mut chars = expr.char_indices().peekable();
    let mut depth_braces = 0;
    let mut after_grouping = false;
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                // Skip the string, escapes included.
                while let Some((_, c)) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            '{' => depth_braces += 1,
            '}' => depth_braces -= 1,
            '[' => {
                for (_, c) in chars.by_ref() {
                    if c == ']' {
                        break;
                    }
                }
            }
            '(' if after_grouping => {
                // `by (label, …)`: label names, not metrics.
                for (_, c) in chars.by_ref() {
                    if c == ')' {
                        break;
                    }
                }
                after_grouping = false;
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let mut end = i + c.len_utf8();
                while let Some(&(j, d)) = chars.peek() {
                    if d.is_ascii_alphanumeric() || d == '_' || d == ':' {
                        end = j + d.len_utf8();
                        chars.next();
                    } else {
                        break;
                    }
                }
                let word = &expr[i..end];
                let rest = expr[end..].trim_start();
                // An aggregation written `sum by (…) (…)` is followed by its grouping.
                let aggregation = rest.starts_with("by") || rest.starts_with("without");
                if KEYWORDS.contains(&word) {
                    after_grouping = rest.starts_with('(');
                } else if depth_braces == 0 && !rest.starts_with('(') && !aggregation {
                    names.push(word.to_owned());
                }
            }
            _ => {}
        }
    }
    names
}

#[test]
fn promql_names_are_found_and_nothing_else() {
    let expr = r#"histogram_quantile(0.9, sum by (le, instance) (rate(x_bucket{a="b{c}",d=~"e"}[5m]))) / on(instance) group_left y_total * 8 > 0"#;
    assert_eq!(metric_names(expr), ["x_bucket", "y_total"]);
}

#[test]
fn every_metric_of_the_dashboard_is_exported() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/grafana/turnpike.json"
    );
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.push(target["expr"].as_str().unwrap().to_owned());
        }
    }
    let used: BTreeSet<String> = exprs.iter().flat_map(|e| metric_names(e)).collect();
    assert!(used.len() > 20, "too few names found: {used:?}");

    // A server where every family has series: HTTP (signaling, requests) on, one request made.
    let server = start(&[
        "--http-listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(get(server.address("http"), "/healthz").0, 200);
    let exported: BTreeSet<String> = scrape(server.address("metrics"))
        .keys()
        .map(|series| series.split('{').next().unwrap().to_owned())
        .collect();
    let missing: Vec<&String> = used.difference(&exported).collect();
    assert!(
        missing.is_empty(),
        "the dashboard uses names no scrape has: {missing:?}"
    );
    // The query variable reads a metric too.
    let variable = dashboard["templating"]["list"][0]["query"]["query"]
        .as_str()
        .unwrap();
    assert!(variable.contains("turnpike_allocations"), "{variable}");
}
