//! The rules of the TURN keys: credentials, relay addresses, ports, lifetimes, limits and the
//! peer policy. Messages about secrets never quote them.

use std::ops::RangeInclusive;
use std::path::Path;
use std::time::Duration;

use ipnet::IpNet;
use turn::auth::StaticUser;

use super::address_rules::{check_external_ips, check_relay_ips};
use super::error::Reason;
use super::layer::ConfigLayer;
use super::validate::{in_range, push, Problems};
use super::values::{NonceSecret, PeerNet, Secret};
use super::Config;

/// RFC 8489 §14.9: REALM is fewer than 128 characters and at most 763 bytes.
const REALM_MAX_CHARS: usize = 127;
/// RFC 8489 §14.9, in bytes.
const REALM_MAX_BYTES: usize = 763;
/// RFC 8489 §14.3: USERNAME is less than 509 bytes.
pub const USERNAME_MAX_BYTES: usize = 508;
/// Shortest accepted REST secret, bytes; 16 or more random bytes are recommended.
const REST_SECRET_MIN_BYTES: usize = 8;
/// Lowest relay port: ports below 1024 are privileged and host other services.
const MIN_RELAY_PORT: u16 = 1024;
/// Allowed `nonce-lifetime`, seconds.
const NONCE_LIFETIME_RANGE: (u64, u64) = (30, 86_400);
/// Allowed `max-allocation-lifetime`, seconds: at least the 600 s default lifetime (RFC 8656
/// §7.2), at most a day.
const MAX_ALLOCATION_LIFETIME_RANGE: (u64, u64) = (600, 86_400);
/// Allowed `permission-lifetime` and `channel-lifetime`, seconds. RFC 8656 fixes 300 and
/// 600; coturn lets them be set (for tests that watch an expiry), and so do we.
const BINDING_LIFETIME_RANGE: (u64, u64) = (1, 3600);
/// Allowed `user-quota`; 0 is no limit.
const USER_QUOTA_RANGE: (u64, u64) = (0, 10_000_000);
/// Allowed `total-quota`.
const TOTAL_QUOTA_RANGE: (u64, u64) = (1, 10_000_000);
/// Allowed `max-permissions`, `max-channels` (there are 4096 channel numbers, RFC 8656
/// §12) and `max-peer-connections`.
const PER_ALLOCATION_RANGE: (u64, u64) = (1, 4096);
/// Allowed `auth-failures`.
const AUTH_FAILURES_RANGE: (u64, u64) = (1, 1_000_000);
/// Allowed `amplification-budget` (bytes per second; 0 turns it off).
const AMPLIFICATION_BUDGET_RANGE: (u64, u64) = (0, 100_000_000);

/// Checks the TURN keys of `layer` and writes their values into `config`, which holds the
/// defaults on entry.
pub(super) fn check(p: &mut Problems, layer: &ConfigLayer, config: &mut Config) {
    let as_usize = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    let seconds = Duration::from_secs;
    config.turn = layer.turn.unwrap_or(config.turn);
    config.rfc5766_channel_numbers = layer
        .rfc5766_channel_numbers
        .unwrap_or(config.rfc5766_channel_numbers);
    config.tcp_relay = layer.tcp_relay.unwrap_or(config.tcp_relay);
    if let Some(realm) = &layer.realm {
        check_realm(p, realm);
        config.realm = realm.clone();
    }
    if let Some(entries) = &layer.users {
        config.users = static_users(p, entries, &config.realm);
    }
    if let Some(path) = &layer.user_db {
        check_user_db(p, path);
        config.user_db = Some(path.clone());
    }
    if let Some(secrets) = &layer.rest_secrets {
        check_rest_secrets(p, secrets);
        config.rest_secrets = secrets.clone();
    }
    if let Some(secret) = &layer.nonce_secret {
        config.nonce_secret = NonceSecret::from_hex(secret.expose());
        if config.nonce_secret.is_none() {
            let why = "must be 64 hex digits (32 bytes), such as the output of \
                       `openssl rand -hex 32`";
            push(p, "nonce-secret", Reason::Rule(why.to_owned()));
        }
    }
    let nonce = in_range(
        p,
        "nonce-lifetime",
        layer.nonce_lifetime,
        NONCE_LIFETIME_RANGE,
    );
    config.nonce_lifetime = nonce.map_or(config.nonce_lifetime, seconds);
    if let Some(ips) = &layer.relay_ip {
        check_relay_ips(p, ips);
        config.relay_ip = ips.clone();
    }
    if let Some(entries) = &layer.external_ip {
        check_external_ips(p, entries, &config.relay_ip);
        config.external_ip = entries.clone();
    }
    config.relay_ports = relay_ports(p, layer, config.relay_ports.clone());
    let key = "max-allocation-lifetime";
    let max_lifetime = in_range(
        p,
        key,
        layer.max_allocation_lifetime,
        MAX_ALLOCATION_LIFETIME_RANGE,
    );
    config.max_allocation_lifetime = max_lifetime.map_or(config.max_allocation_lifetime, seconds);
    let permission = layer.permission_lifetime;
    let permission = in_range(p, "permission-lifetime", permission, BINDING_LIFETIME_RANGE);
    config.permission_lifetime = permission.map_or(config.permission_lifetime, seconds);
    let channel = layer.channel_lifetime;
    let channel = in_range(p, "channel-lifetime", channel, BINDING_LIFETIME_RANGE);
    config.channel_lifetime = channel.map_or(config.channel_lifetime, seconds);
    let user_quota = in_range(p, "user-quota", layer.user_quota, USER_QUOTA_RANGE);
    config.user_quota = user_quota.map_or(config.user_quota, as_usize);
    let total_quota = in_range(p, "total-quota", layer.total_quota, TOTAL_QUOTA_RANGE);
    config.total_quota = total_quota.map_or(config.total_quota, as_usize);
    if let Some(bps) = layer.max_bps {
        config.max_bps = (bps > 0).then_some(bps);
    }
    let permissions = in_range(
        p,
        "max-permissions",
        layer.max_permissions,
        PER_ALLOCATION_RANGE,
    );
    config.max_permissions = permissions.map_or(config.max_permissions, as_usize);
    let channels = in_range(p, "max-channels", layer.max_channels, PER_ALLOCATION_RANGE);
    config.max_channels = channels.map_or(config.max_channels, as_usize);
    let peer_connections = in_range(
        p,
        "max-peer-connections",
        layer.max_peer_connections,
        PER_ALLOCATION_RANGE,
    );
    config.max_peer_connections = peer_connections.map_or(config.max_peer_connections, as_usize);
    if let Some(nets) = &layer.allowed_peers {
        config.allowed_peers = peer_nets(p, "allowed-peers", nets);
    }
    if let Some(nets) = &layer.denied_peers {
        config.denied_peers = peer_nets(p, "denied-peers", nets);
    }
    let failures = in_range(p, "auth-failures", layer.auth_failures, AUTH_FAILURES_RANGE);
    config.auth_failures = failures.map_or(config.auth_failures, |n| {
        u32::try_from(n).unwrap_or(u32::MAX)
    });
    let budget = layer.amplification_budget;
    let budget = in_range(
        p,
        "amplification-budget",
        budget,
        AMPLIFICATION_BUDGET_RANGE,
    );
    config.amplification_budget = budget.map_or(config.amplification_budget, |n| {
        u32::try_from(n).unwrap_or(u32::MAX)
    });
}

/// RFC 8489 §14.9: non-empty (every key depends on it), fewer than 128 characters.
fn check_realm(p: &mut Problems, realm: &str) {
    if let Some(why) = realm_problem(realm) {
        push(p, "realm", Reason::Rule(why));
    }
}

/// Why `realm` cannot be the realm, if it cannot: empty, or too long for REALM (RFC 8489 §14.9).
pub fn realm_problem(realm: &str) -> Option<String> {
    let chars = realm.chars().count();
    if realm.is_empty() {
        Some("must not be empty".to_owned())
    } else if chars > REALM_MAX_CHARS || realm.len() > REALM_MAX_BYTES {
        Some(format!(
            "is {chars} characters; RFC 8489 §14.9 allows fewer than 128 characters"
        ))
    } else {
        None
    }
}

/// Why `name` cannot be a user name, if it cannot: empty, with a `:` (the `users` syntax and the
/// key derivation both use it as a separator), or too long for USERNAME (RFC 8489 §14.3).
pub fn user_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("the user name is empty".to_owned())
    } else if name.contains(':') {
        Some(format!("the user name `{name}` contains `:`"))
    } else if name.len() > USERNAME_MAX_BYTES {
        Some(format!(
            "the user name is {} bytes; RFC 8489 §14.3 allows fewer than 509",
            name.len()
        ))
    } else if name.chars().any(char::is_control) {
        Some("the user name contains a control character".to_owned())
    } else {
        None
    }
}

/// Parses `NAME:PASSWORD` entries into users with keys for `realm`. Problems name the entry by
/// position and name, never by password.
fn static_users(p: &mut Problems, entries: &[Secret], realm: &str) -> Vec<StaticUser> {
    let mut users: Vec<StaticUser> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let n = i + 1;
        let Some((name, password)) = entry.expose().split_once(':') else {
            let why = format!("entry {n} is not NAME:PASSWORD");
            push(p, "users", Reason::Rule(why));
            continue;
        };
        if let Some(why) = user_name_problem(name) {
            push(p, "users", Reason::Rule(format!("entry {n}: {why}")));
        } else if password.is_empty() {
            let why = format!("entry {n} (`{name}`): the password is empty");
            push(p, "users", Reason::Rule(why));
        } else if users.iter().any(|user| user.username == name) {
            push(p, "users", Reason::Duplicate(name.to_owned()));
        } else {
            users.push(StaticUser::from_password(name, realm, password));
        }
    }
    users
}

/// The user database must exist: `serve` never creates it (a typo would silently mean "no
/// users").
fn check_user_db(p: &mut Problems, path: &Path) {
    let why = match std::fs::metadata(path) {
        Ok(metadata) if metadata.is_file() => return,
        Ok(_) => format!("`{}` is not a regular file", path.display()),
        Err(error) => format!(
            "cannot open `{}`: {error}; create it with `turnpike user add --db {} NAME`",
            path.display(),
            path.display()
        ),
    };
    push(p, "user-db", Reason::Rule(why));
}

/// Each secret at least 8 bytes, none twice. Secrets are named by position only.
fn check_rest_secrets(p: &mut Problems, secrets: &[Secret]) {
    for (i, secret) in secrets.iter().enumerate() {
        let n = i + 1;
        let why = if secret.expose().len() < REST_SECRET_MIN_BYTES {
            format!(
                "secret {n} is shorter than {REST_SECRET_MIN_BYTES} bytes; use 16 or more \
                 random bytes, such as the output of `openssl rand -base64 24`"
            )
        } else if secrets[..i].contains(secret) {
            format!("secret {n} is listed twice")
        } else {
            continue;
        };
        push(p, "rest-secrets", Reason::Rule(why));
    }
}

/// `min-port..=max-port`: no privileged port, not empty.
fn relay_ports(
    p: &mut Problems,
    layer: &ConfigLayer,
    default: RangeInclusive<u16>,
) -> RangeInclusive<u16> {
    let min = layer.min_port.unwrap_or(*default.start());
    let max = layer.max_port.unwrap_or(*default.end());
    if min < MIN_RELAY_PORT {
        let reason = Reason::OutOfRange {
            value: u64::from(min),
            min: u64::from(MIN_RELAY_PORT),
            max: u64::from(u16::MAX),
        };
        push(p, "min-port", reason);
    } else if min > max {
        if layer.min_port.is_some() {
            push(
                p,
                "min-port",
                Reason::Rule(format!("{min} is above `max-port` {max}")),
            );
        } else {
            push(
                p,
                "max-port",
                Reason::Rule(format!("{max} is below `min-port` {min}")),
            );
        }
    }
    min..=max
}

/// The networks of `allowed-peers` or `denied-peers`, host bits cleared, none twice.
fn peer_nets(p: &mut Problems, key: &'static str, nets: &[PeerNet]) -> Vec<IpNet> {
    let mut found: Vec<IpNet> = Vec::new();
    for net in nets.iter().map(|net| net.0.trunc()) {
        if found.contains(&net) {
            push(p, key, Reason::Duplicate(net.to_string()));
        } else {
            found.push(net);
        }
    }
    found
}
