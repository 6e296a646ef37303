//! The keys a reload cannot apply to a running server: sockets are bound, workers started,
//! relay addresses handed out and keys derived at start. A reload names those that changed,
//! in one log line, and keeps their old values.

use crate::config::Config;

/// Names the fields of [`Config`] that differ between `$old` and `$new`, in file spelling.
macro_rules! changed {
    ($old:expr, $new:expr; $($field:ident),* $(,)?) => {{
        let mut changed: Vec<String> = Vec::new();
        $(
            if $old.$field != $new.$field {
                changed.push(stringify!($field).replace('_', "-"));
            }
        )*
        changed
    }};
}

/// The keys needing a restart whose values differ in `new`. `tls` stands for `tls-cert` and
/// `tls-key` (their paths; the files' contents are reloaded), `relay-ports` for `min-port`
/// and `max-port`.
pub fn needing_restart(old: &Config, new: &Config) -> Vec<String> {
    let mut keys = changed!(old, new;
        listen, udp, tcp, tls_listen, dtls, dtls_listen, alternate_ip, alternate_port, software,
        tcp_idle_timeout, max_tcp_connections, max_tcp_connections_per_ip, tcp_frame_timeout,
        tcp_write_timeout, workers, xdp_interfaces, turn, rfc5766_channel_numbers, tcp_relay,
        max_peer_connections, nonce_secret, nonce_lifetime, permission_lifetime, channel_lifetime,
        relay_ip, external_ip, auth_failures, amplification_budget, http, http_listen,
        signaling_secret, open_credentials, credential_rate, http_connections_per_ip,
        allowed_origins, ice_host, ice_ttl, room_capacity, max_message_bytes, message_rate,
        redis_url, node_id, cluster_prefix, resume_grace,
        admin_token, admin_listen, log_format, https_listen, metrics_listen, metrics_on_http,
    );
    if old.tls != new.tls {
        keys.push("tls-cert/tls-key".to_owned());
    }
    if old.https != new.https {
        keys.push("https-cert/https-key".to_owned());
    }
    if old.relay_ports != new.relay_ports {
        keys.push("min-port/max-port".to_owned());
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_applied_or_named() {
        // A new key must be sorted into one of the two lists: compare a default configuration
        // with one where every restart key differs.
        let old = Config::default();
        let new = Config {
            workers: 3,
            http: false,
            log_format: crate::config::LogFormat::Json,
            ..Config::default()
        };
        assert_eq!(
            needing_restart(&old, &new),
            ["workers", "http", "log-format"]
        );
        assert!(needing_restart(&old, &old).is_empty());
        let documented: Vec<String> = crate::config::ConfigLayer::FIELDS
            .iter()
            .map(|f| f.replace('_', "-"))
            .collect();
        let source = include_str!("restart_keys.rs");
        let reload = include_str!("reload.rs");
        for key in documented {
            let field = key.replace('-', "_");
            let known = reload.contains(&format!("{field}: new.{field},"))
                || source.contains(&format!(" {field},"))
                || [
                    "tls-cert",
                    "tls-key",
                    "https-cert",
                    "https-key",
                    "min-port",
                    "max-port",
                ]
                .contains(&key.as_str());
            assert!(
                known,
                "`{key}`: applied by reload or named as needing a restart?"
            );
        }
    }
}
