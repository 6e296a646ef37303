//! The rules of the operations keys: where a draining server sends new clients, how long a
//! drain lasts, and the admin API's token and listener. Messages about the token never quote
//! it.

use std::net::SocketAddr;
use std::time::Duration;

use super::error::Reason;
use super::layer::ConfigLayer;
use super::validate::{in_range, push, Problems};
use super::Config;

/// Allowed `drain-timeout`, seconds: 0 (stop at once) to a day.
const DRAIN_TIMEOUT_RANGE: (u64, u64) = (0, 86_400);
/// Shortest accepted `admin-token`, bytes: whoever holds it can end every allocation.
pub const ADMIN_TOKEN_MIN_BYTES: usize = 16;

/// Checks the operations keys of `layer` and writes their values into `config`, which holds
/// the defaults and the checked listeners on entry.
pub(super) fn check(p: &mut Problems, layer: &ConfigLayer, config: &mut Config) {
    if let Some(servers) = &layer.tls_alternate_server {
        check_alternate_servers(p, "tls-alternate-server", servers);
        config.tls_alternate_server = servers.clone();
    }
    if let Some(name) = &layer.tls_alternate_domain {
        config.tls_alternate_domain = match name.as_str() {
            "" => None,
            name => match name.parse() {
                Ok(name) => Some(name),
                Err(why) => {
                    let why = format!("is not a DNS name for a certificate check: {why}");
                    push(p, "tls-alternate-domain", Reason::Rule(why));
                    None
                }
            },
        };
    }
    if let Some(servers) = &layer.alternate_server {
        check_alternate_servers(p, "alternate-server", servers);
        config.alternate_server = servers.clone();
    }
    let timeout = in_range(p, "drain-timeout", layer.drain_timeout, DRAIN_TIMEOUT_RANGE);
    config.drain_timeout = timeout.map_or(config.drain_timeout, Duration::from_secs);
    if let Some(token) = &layer.admin_token {
        let text = token.expose();
        if text.is_empty() {
            config.admin_token = None;
        } else if !text.bytes().all(|b| b.is_ascii_graphic()) {
            // It travels in an `Authorization` header, where spaces and controls do not
            // survive (this also refuses the example's placeholder).
            let why = "must be printable ASCII without spaces, such as the output of \
                       `openssl rand -base64 24`";
            push(p, "admin-token", Reason::Rule(why.to_owned()));
        } else if text.len() < ADMIN_TOKEN_MIN_BYTES {
            let why = format!(
                "is shorter than {ADMIN_TOKEN_MIN_BYTES} bytes; use 16 or more random bytes, \
                 such as the output of `openssl rand -base64 24`"
            );
            push(p, "admin-token", Reason::Rule(why));
        } else {
            config.admin_token = Some(token.clone());
        }
    }
    if let Some(listen) = layer.admin_listen {
        config.admin_listen = listen;
    }
    if config.admin_token.is_some() {
        check_admin_clash(p, config);
    }
}

/// ALTERNATE-SERVER carries one address a client can reach: a specific IP and a port, and
/// one per family (RFC 8489 §10: the first of the client's family, then one of the other).
fn check_alternate_servers(p: &mut Problems, key: &'static str, servers: &[SocketAddr]) {
    for (i, server) in servers.iter().enumerate() {
        if server.ip().is_unspecified() || server.port() == 0 {
            let why =
                format!("`{server}` is not an address a client can reach: give its IP and port");
            push(p, key, Reason::Rule(why));
        } else if servers[..i].contains(server) {
            push(p, key, Reason::Duplicate(server.to_string()));
        } else if servers[..i].iter().any(|s| s.is_ipv4() == server.is_ipv4()) {
            let why = format!(
                "`{server}`: at most one address per family (a 300 answer carries one of each)"
            );
            push(p, key, Reason::Rule(why));
        }
    }
}

/// The admin listener cannot share an address with a TCP, TLS or HTTP listener.
fn check_admin_clash(p: &mut Problems, config: &Config) {
    let admin = config.admin_listen;
    let mut taken = Vec::new();
    if config.tcp {
        taken.extend(&config.listen);
    }
    if config.tls.is_some() {
        taken.extend(&config.tls_listen);
    }
    if config.http {
        taken.extend(&config.http_listen);
    }
    if admin.port() != 0 && taken.contains(&&admin) {
        let why = format!("`{admin}` is also a STUN/TURN or HTTP listener address");
        push(p, "admin-listen", Reason::Rule(why));
    }
}
