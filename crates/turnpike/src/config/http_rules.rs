//! The rules of the HTTP and signaling keys: listeners, the join-token secret, the origin
//! allow-list, the host of the ICE server URLs and the room limits. Messages about the secret
//! never quote it.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::error::Reason;
use super::layer::ConfigLayer;
use super::validate::{check_addresses, in_range, push, Problems};
use super::Config;
use crate::http::origin;

/// Shortest accepted `signaling-secret`, bytes: it is an HMAC-SHA256 key.
pub const SIGNALING_SECRET_MIN_BYTES: usize = 16;
/// Allowed `ice-ttl`, seconds: a minute to a week.
const ICE_TTL_RANGE: (u64, u64) = (60, 7 * 86_400);
/// Allowed `room-capacity`: a room of one is useless, and presence is sent to every peer.
const ROOM_CAPACITY_RANGE: (u64, u64) = (2, 1000);
/// Allowed `max-message-bytes`: room for an SDP offer, at most 1 MiB per frame.
const MAX_MESSAGE_BYTES_RANGE: (u64, u64) = (1024, 1 << 20);
/// Allowed `message-rate`, frames per second.
const MESSAGE_RATE_RANGE: (u64, u64) = (1, 10_000);
/// Allowed `credential-rate`, credentials per source per minute.
const CREDENTIAL_RATE_RANGE: (u64, u64) = (1, 10_000);
/// Allowed `http-connections-per-ip`.
const HTTP_CONNECTIONS_PER_IP_RANGE: (u64, u64) = (1, 1_000_000);
/// RFC 1035 §2.3.4: a name is at most 253 characters in text, a label at most 63.
const HOST_NAME_MAX_BYTES: usize = 253;
/// RFC 1035 §2.3.4.
const LABEL_MAX_BYTES: usize = 63;

/// Checks the HTTP and signaling keys of `layer` and writes their values into `config`, which
/// holds the defaults on entry and the checked STUN/TURN listeners.
pub(super) fn check(p: &mut Problems, layer: &ConfigLayer, config: &mut Config) {
    config.http = layer.http.unwrap_or(config.http);
    if let Some(listen) = &layer.http_listen {
        config.http_listen = listen.clone();
    }
    if config.http {
        check_addresses(p, "http-listen", &config.http_listen);
        check_port_clash(p, config);
    }
    if let Some(secret) = layer.signaling_secret.as_ref() {
        let text = secret.expose();
        if text.is_empty() {
            config.signaling_secret = None;
        } else if text.len() < SIGNALING_SECRET_MIN_BYTES {
            let why = format!(
                "is shorter than {SIGNALING_SECRET_MIN_BYTES} bytes; use 16 or more random bytes, \
                 such as the output of `openssl rand -base64 24`"
            );
            push(p, "signaling-secret", Reason::Rule(why));
        } else {
            config.signaling_secret = Some(secret.clone());
        }
    }
    config.open_credentials = layer.open_credentials.unwrap_or(config.open_credentials);
    let rate = in_range(
        p,
        "credential-rate",
        layer.credential_rate,
        CREDENTIAL_RATE_RANGE,
    );
    config.credential_rate = rate.map_or(config.credential_rate, |n| {
        u32::try_from(n).unwrap_or(u32::MAX)
    });
    let per_ip = in_range(
        p,
        "http-connections-per-ip",
        layer.http_connections_per_ip,
        HTTP_CONNECTIONS_PER_IP_RANGE,
    );
    if let Some(n) = per_ip {
        config.http_connections_per_ip = Some(usize::try_from(n).unwrap_or(usize::MAX));
    }
    if let Some(entries) = &layer.allowed_origins {
        config.allowed_origins = allowed_origins(p, entries);
    }
    if let Some(host) = &layer.ice_host {
        config.ice_host = ice_host(p, host);
    }
    let ttl = in_range(p, "ice-ttl", layer.ice_ttl, ICE_TTL_RANGE);
    config.ice_ttl = ttl.map_or(config.ice_ttl, Duration::from_secs);
    let as_usize = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    let capacity = in_range(p, "room-capacity", layer.room_capacity, ROOM_CAPACITY_RANGE);
    config.room_capacity = capacity.map_or(config.room_capacity, as_usize);
    let bytes = in_range(
        p,
        "max-message-bytes",
        layer.max_message_bytes,
        MAX_MESSAGE_BYTES_RANGE,
    );
    config.max_message_bytes = bytes.map_or(config.max_message_bytes, as_usize);
    let rate = in_range(p, "message-rate", layer.message_rate, MESSAGE_RATE_RANGE);
    config.message_rate = rate.map_or(config.message_rate, |n| {
        u32::try_from(n).unwrap_or(u32::MAX)
    });
}

/// An HTTP address equal to a TCP or TLS listener of STUN/TURN could never be bound.
fn check_port_clash(p: &mut Problems, config: &Config) {
    let streams = config.stream_addresses();
    let taken = |address: &SocketAddr| streams.contains(address);
    for address in config
        .http_listen
        .iter()
        .filter(|a| a.port() != 0 && taken(a))
    {
        let why = format!("`{address}` is also a STUN/TURN TCP or TLS address; HTTP needs its own");
        push(p, "http-listen", Reason::Rule(why));
    }
}

/// The origins in their serialized form, none twice.
fn allowed_origins(p: &mut Problems, entries: &[String]) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for entry in entries {
        match origin::normalize(entry) {
            Ok(origin) if found.contains(&origin) => {
                push(p, "allowed-origins", Reason::Duplicate(origin));
            }
            Ok(origin) => found.push(origin),
            Err(why) => push(p, "allowed-origins", Reason::Rule(why)),
        }
    }
    found
}

/// A host name or an IP address (an IPv6 one with or without brackets), stored without
/// brackets; empty means unset.
fn ice_host(p: &mut Problems, text: &str) -> Option<String> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let bare = text
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(text);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Some(ip.to_string());
    }
    if let Some(why) = host_name_problem(text) {
        push(p, "ice-host", Reason::Rule(why));
        return None;
    }
    Some(text.to_ascii_lowercase())
}

/// Why `name` is not a DNS host name (RFC 1123 §2.1), if it is not.
fn host_name_problem(name: &str) -> Option<String> {
    let hint =
        "write a host name such as turn.example.org or an IP address, without scheme or port";
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= LABEL_MAX_BYTES
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    let name_ok = name.len() <= HOST_NAME_MAX_BYTES
        && name
            .strip_suffix('.')
            .unwrap_or(name)
            .split('.')
            .all(label_ok);
    (!name_ok).then(|| format!("`{name}` is not a host name or IP address: {hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_follow_rfc_1123() {
        for good in ["localhost", "turn.example.org", "a-1.b", "example.org."] {
            assert_eq!(host_name_problem(good), None, "{good}");
        }
        let long = format!("{}.org", "a".repeat(64));
        for bad in [
            "",
            "-a.org",
            "a..org",
            "a_b.org",
            "a.org:3478",
            "turn://a",
            &long,
        ] {
            assert!(host_name_problem(bad).is_some(), "{bad}");
        }
    }
}
