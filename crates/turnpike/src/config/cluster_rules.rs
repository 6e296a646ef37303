//! The rules of the cluster keys: `redis-url` (a secret: it may carry the Redis password, so a
//! message about it never quotes it), `node-id`, `cluster-prefix`, and the signaling resume
//! window that a node's failure is measured against.

use std::time::Duration;

use super::error::Reason;
use super::layer::ConfigLayer;
use super::validate::{in_range, push, Problems};
use super::Config;

/// Allowed `resume-grace`, seconds: none up to ten minutes.
const RESUME_GRACE_RANGE: (u64, u64) = (0, 600);
/// Longest `node-id` and `cluster-prefix`: they are parts of Redis keys and log lines.
const NAME_MAX_BYTES: usize = 64;

/// Checks the cluster keys of `layer` and writes them into `config` (defaults on entry).
pub(super) fn check(p: &mut Problems, layer: &ConfigLayer, config: &mut Config) {
    if let Some(url) = &layer.redis_url {
        let text = url.expose().trim();
        if text.is_empty() {
            config.redis_url = None;
        } else if !text.starts_with("redis://") && !text.starts_with("unix://") {
            let why = "is not a redis:// URL (redis://[:PASSWORD@]HOST:PORT[/DB], or unix:///PATH \
                       for a local socket)";
            push(p, "redis-url", Reason::Rule(why.to_owned()));
        } else if redis::Client::open(text).is_err() {
            // The crate's message quotes the URL, password included: never shown.
            let why = "is not a valid Redis URL (redis://[:PASSWORD@]HOST:PORT[/DB])";
            push(p, "redis-url", Reason::Rule(why.to_owned()));
        } else {
            config.redis_url = Some(url.clone());
        }
    }
    if let Some(id) = &layer.node_id {
        if id.is_empty() {
            config.node_id = None;
        } else if let Err(why) = check_name(id) {
            push(p, "node-id", Reason::BadValue(why));
        } else {
            config.node_id = Some(id.clone());
        }
    }
    if let Some(prefix) = &layer.cluster_prefix {
        match check_name(prefix) {
            Ok(()) => config.cluster_prefix = prefix.clone(),
            Err(why) => push(p, "cluster-prefix", Reason::BadValue(why)),
        }
    }
    let grace = in_range(p, "resume-grace", layer.resume_grace, RESUME_GRACE_RANGE);
    config.resume_grace = grace.map_or(config.resume_grace, Duration::from_secs);
}

/// A node id or key prefix: 1..=64 of `[A-Za-z0-9._-]`, so that it can be part of a Redis key
/// and of a message between nodes (whose fields are separated by newlines) as it is.
fn check_name(name: &str) -> Result<(), String> {
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || name.len() > NAME_MAX_BYTES || !name.chars().all(valid) {
        return Err(format!(
            "`{name}` is not 1 to {NAME_MAX_BYTES} of the characters A-Z a-z 0-9 . _ -"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::values::Secret;

    fn checked(layer: ConfigLayer) -> Result<Config, Vec<String>> {
        let mut problems = Problems::new();
        let mut config = Config::default();
        check(&mut problems, &layer, &mut config);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems
                .iter()
                .map(|p| format!("{}: {}", p.key, p.reason))
                .collect())
        }
    }

    #[test]
    fn no_cluster_keys_means_one_node_without_redis() {
        let config = checked(ConfigLayer::default()).unwrap();
        assert_eq!(config.redis_url, None);
        assert_eq!(config.node_id, None);
        assert_eq!(config.cluster_prefix, "turnpike");
        assert_eq!(config.resume_grace, Duration::from_secs(30));
    }

    #[test]
    fn a_bad_redis_url_is_named_without_its_password() {
        for url in ["http://:hunter2@db:6379", "redis://:hunter2@db:notaport"] {
            let layer = ConfigLayer {
                redis_url: Some(Secret(url.to_owned())),
                ..ConfigLayer::default()
            };
            let problems = checked(layer).unwrap_err();
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert!(problems[0].contains("redis-url"), "{problems:?}");
            assert!(!problems[0].contains("hunter2"), "{problems:?}");
        }
    }

    #[test]
    fn a_good_redis_url_and_node_id_are_kept() {
        let layer = ConfigLayer {
            redis_url: Some(Secret("redis://:pw@127.0.0.1:6379/2".to_owned())),
            node_id: Some("eu-1.a".to_owned()),
            resume_grace: Some(5),
            ..ConfigLayer::default()
        };
        let config = checked(layer).unwrap();
        assert!(config.redis_url.is_some());
        assert_eq!(config.node_id.as_deref(), Some("eu-1.a"));
        assert_eq!(config.resume_grace, Duration::from_secs(5));
    }

    #[test]
    fn a_node_id_that_cannot_be_part_of_a_key_is_refused() {
        for id in ["a b", "x\ny", &"n".repeat(65), "ü"] {
            let layer = ConfigLayer {
                node_id: Some(id.to_owned()),
                ..ConfigLayer::default()
            };
            let problems = checked(layer).unwrap_err();
            assert!(problems[0].contains("node-id"), "{problems:?}");
        }
    }
}
