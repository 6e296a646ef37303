//! The metrics keys: the loopback default, "off", addresses, clashes, each problem with its
//! key.

use super::{check, only_problem};
use crate::config::Config;

#[test]
fn metrics_listen_defaults_to_loopback() {
    let config = Config::default();
    assert_eq!(
        config.metrics_listen,
        Some("127.0.0.1:9641".parse().unwrap())
    );
    assert!(!config.metrics_on_http);
    let config = check("").unwrap();
    assert_eq!(
        config.metrics_listen,
        Some("127.0.0.1:9641".parse().unwrap())
    );
}

#[test]
fn metrics_listen_can_be_moved_or_turned_off() {
    let config = check("metrics-listen = \"[::1]:9100\"\nmetrics-on-http = true").unwrap();
    assert_eq!(config.metrics_listen, Some("[::1]:9100".parse().unwrap()));
    assert!(config.metrics_on_http);
    for off in ["off", "OFF", ""] {
        let config = check(&format!("metrics-listen = \"{off}\"")).unwrap();
        assert_eq!(config.metrics_listen, None, "{off:?}");
    }
}

#[test]
fn a_bad_metrics_listen_names_the_key_and_why() {
    let (line, key, reason) = only_problem("metrics-listen = \"localhost:9641\"");
    assert_eq!((line, key.as_deref()), (Some(1), Some("metrics-listen")));
    assert!(reason.contains("is not IP:PORT"), "{reason}");
    let (_, key, reason) = only_problem("metrics-listen = 9641");
    assert_eq!(key.as_deref(), Some("metrics-listen"));
    assert!(!reason.is_empty());
}

#[test]
fn metrics_listen_needs_its_own_address() {
    let text = "http-listen = [\"127.0.0.1:8080\"]\nmetrics-listen = \"127.0.0.1:8080\"";
    let (_, key, reason) = only_problem(text);
    assert_eq!(key.as_deref(), Some("metrics-listen"));
    assert!(reason.contains("metrics need their own"), "{reason}");
    // With HTTP off the address is free.
    check("http = false\nmetrics-listen = \"127.0.0.1:8080\"").unwrap();
}
