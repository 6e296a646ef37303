//! `turnpike config example` documents every key and passes `config check`.

use super::{check, TempConfig};
use crate::config::layer::{keys, ConfigLayer};
use crate::config::{check_file, Config, EXAMPLE};

/// The example with every `# key = value` line uncommented.
fn uncommented() -> String {
    let keys: Vec<String> = keys().collect();
    EXAMPLE
        .lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(rest) if keys.iter().any(|k| rest.starts_with(&format!("{k} = "))) => rest,
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn example_passes_check() {
    let file = TempConfig::new(EXAMPLE);
    assert_eq!(check_file(&file.path).unwrap(), Config::default());
}

#[test]
fn example_shows_every_key_once() {
    for key in keys() {
        let lines = EXAMPLE
            .lines()
            .filter(|l| l.starts_with(&format!("# {key} = ")))
            .count();
        assert_eq!(lines, 1, "`{key}` in the example");
        assert!(uncommented().contains(&format!("\n{key} = ")));
    }
}

#[test]
fn example_values_are_well_typed_and_defaults_are_the_real_ones() {
    let text = uncommented();
    let file = crate::config::file::parse("example.toml".as_ref(), &text);
    assert_eq!(file.problems, []);
    // Keys without a default show an illustration, not a default: drop them, and what is left must
    // be exactly the built-in defaults.
    let defaults_only = ConfigLayer {
        tls_cert: None,
        tls_key: None,
        alternate_ip: None,
        alternate_port: None,
        software: None,
        user_db: None,
        nonce_secret: None,
        relay_ip: None,
        external_ip: None,
        allowed_peers: None,
        denied_peers: None,
        http_connections_per_ip: None,
        alternate_server: None,
        tls_alternate_server: None,
        tls_alternate_domain: None,
        admin_token: None,
        https_cert: None,
        https_key: None,
        redis_url: None,
        node_id: None,
        ..file.layer
    };
    assert_eq!(
        Config::from_layer(&defaults_only).unwrap(),
        Config::default()
    );
    // The documented defaults pass the full check as a file, too.
    let illustrations = [
        "tls-cert",
        "tls-key",
        "alternate-ip",
        "alternate-port",
        "software",
        "user-db",
        "nonce-secret",
        "relay-ip",
        "external-ip",
        "allowed-peers",
        "denied-peers",
        "http-connections-per-ip",
        "alternate-server",
        "tls-alternate-server",
        "tls-alternate-domain",
        "admin-token",
        "https-cert",
        "https-key",
        "redis-url",
        "node-id",
    ];
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| {
            !illustrations
                .iter()
                .any(|k| l.starts_with(&format!("{k} = ")))
        })
        .collect();
    assert_eq!(check(&kept.join("\n")).unwrap(), Config::default());
}

#[test]
fn no_example_value_is_a_usable_credential() {
    // Uncommenting the example must never enable a secret that everybody can read here: the
    // credential keys show empty defaults, and the nonce-secret placeholder is rejected.
    let text = uncommented();
    for key in ["users", "rest-secrets"] {
        assert!(text.contains(&format!("\n{key} = []\n")), "{key}");
    }
    // The placeholders of the secrets without a default are refused.
    for key in ["nonce-secret", "admin-token"] {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap();
        let found = super::problems(line);
        assert_eq!(found[0].key.as_deref(), Some(key));
    }
}
