//! Every option of coturn's `turnserver.conf` (coturn 4.6), what takes its place in Turnpike,
//! and why when nothing does. One table serves `config import-coturn` (which keys it knows, the
//! comment written for a key it drops) and `config check` (the hint for a coturn name found in a
//! Turnpike file).

/// How a coturn option takes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    /// A flag: bare, or with a boolean (`fingerprint`, `no-udp=false`).
    Flag,
    /// An option that needs a value (`listening-port=3478`).
    Value,
    /// A value that may be left out (`stale-nonce` alone means 600 s).
    Optional,
}

/// One coturn option.
#[derive(Debug, Clone, Copy)]
pub struct CoturnKey {
    /// Its name in `turnserver.conf` (the long option without `--`).
    pub name: &'static str,
    /// How it takes a value.
    pub arg: Arg,
    /// The Turnpike key that takes its place, when there is one.
    pub turnpike: Option<&'static str>,
    /// How it translates, or why it is dropped: one line, written as the import's comment and
    /// as `config check`'s hint.
    pub note: &'static str,
    /// Its value is a secret (a password, a connection string with one): never printed.
    pub secret: bool,
}

/// Shorthand constructors, so that the table below reads as a table.
const fn key(
    name: &'static str,
    arg: Arg,
    turnpike: Option<&'static str>,
    note: &'static str,
) -> CoturnKey {
    CoturnKey {
        name,
        arg,
        turnpike,
        note,
        secret: false,
    }
}

/// [`key`] for an option whose value is a secret.
const fn secret(
    name: &'static str,
    arg: Arg,
    turnpike: Option<&'static str>,
    note: &'static str,
) -> CoturnKey {
    CoturnKey {
        secret: true,
        ..key(name, arg, turnpike, note)
    }
}

use Arg::{Flag, Optional, Value};

/// Notes shared by several keys.
const TLS_BY_RUSTLS: &str =
    "TLS is rustls with its own safe defaults (TLS 1.2 and 1.3 only); nothing to set";
const NO_DB: &str = "Turnpike's user store is SQLite (`user-db`, managed by `turnpike user`) or \
                     `users`; re-create the users there (coturn's keys cannot be converted)";
const NO_CLI: &str =
    "Turnpike has no telnet CLI or web admin; its admin API is `admin-token`/`admin-listen`";
const SYSTEMD: &str = "run Turnpike under systemd (deploy/turnpike.service), which does this";
const LOGS: &str = "Turnpike logs to stderr (the journal under systemd), one line per event; \
                    `log-format = \"json\"` for collectors";

/// The table, in the order of coturn's `turnserver.conf`.
#[rustfmt::skip]
pub const KEYS: &[CoturnKey] = &[
    key("listening-device", Value, None, "binding to a device is not supported; use `listen` with the device's address"),
    key("listening-port", Value, Some("listen"), "`listen` holds IP:PORT pairs: `listen = [\"0.0.0.0:3478\"]`"),
    key("tls-listening-port", Value, Some("tls-listen"), "`tls-listen` holds IP:PORT pairs: `tls-listen = [\"0.0.0.0:5349\"]`"),
    key("alt-listening-port", Value, Some("alternate-port"), "RFC 5780 in Turnpike needs one `listen` address plus `alternate-ip` and/or `alternate-port`; set them by hand"),
    key("alt-tls-listening-port", Value, None, "Turnpike answers RFC 5780 over UDP only; no second TLS port"),
    key("tcp-proxy-port", Value, None, "the PROXY protocol is not supported; let the load balancer pass UDP/TCP through"),
    key("listening-ip", Value, Some("listen"), "`listen` holds IP:PORT pairs: `listen = [\"192.0.2.1:3478\"]`"),
    key("aux-server", Value, Some("listen"), "an auxiliary server is one more `listen` address"),
    key("udp-self-balance", Flag, None, "Turnpike spreads UDP over `workers` with SO_REUSEPORT"),
    key("relay-device", Value, None, "binding to a device is not supported; use `relay-ip` with the device's address"),
    key("relay-ip", Value, Some("relay-ip"), "the same key: a list of IPs"),
    key("external-ip", Value, Some("external-ip"), "the same key: a list of \"PUBLIC\" or \"PUBLIC/PRIVATE\", one per family"),
    key("relay-threads", Value, Some("workers"), "`workers` threads each serve listeners and relays (0: one per core)"),
    key("min-port", Value, Some("min-port"), "the same key"),
    key("max-port", Value, Some("max-port"), "the same key"),
    key("verbose", Flag, Some("log-level"), "`log-level = \"debug\"`"),
    key("Verbose", Flag, Some("log-level"), "`log-level = \"trace\"`"),
    key("fingerprint", Flag, None, "Turnpike adds FINGERPRINT to every answer to a request that carries one (RFC 8489 §14.7), which is what clients need"),
    key("lt-cred-mech", Flag, None, "Turnpike always uses long-term credentials (RFC 8489 §9.2) for TURN: nothing to set"),
    key("no-auth", Flag, None, "Turnpike never relays for anonymous clients: configure `users`, `user-db` or `rest-secrets`"),
    key("prometheus", Flag, Some("metrics-listen"), "Turnpike always serves metrics, on `metrics-listen` (127.0.0.1:9641 by default)"),
    key("prometheus-port", Value, Some("metrics-listen"), "`metrics-listen = \"127.0.0.1:PORT\"`"),
    key("prometheus-address", Value, Some("metrics-listen"), "`metrics-listen = \"IP:PORT\"`"),
    key("prometheus-username-labels", Flag, None, "metrics carry no user names (unbounded label sets); session log lines name the user"),
    key("use-auth-secret", Flag, Some("rest-secrets"), "TURN REST credentials are on whenever `rest-secrets` lists a secret"),
    secret("static-auth-secret", Value, Some("rest-secrets"), "a list of secrets: `rest-secrets = [\"SECRET\"]`"),
    key("server-name", Value, None, "oAuth (RFC 7635) is not supported"),
    key("oauth", Flag, None, "oAuth (RFC 7635) is not supported"),
    secret("user", Value, Some("users"), "a list: `users = [\"NAME:PASSWORD\"]`"),
    key("userdb", Value, Some("user-db"), NO_DB),
    key("db", Value, Some("user-db"), NO_DB),
    secret("psql-userdb", Value, None, NO_DB),
    secret("mysql-userdb", Value, None, NO_DB),
    key("secret-key-file", Value, None, NO_DB),
    secret("mongo-userdb", Value, None, NO_DB),
    secret("redis-userdb", Value, None, NO_DB),
    secret("redis-statsdb", Value, None, "Turnpike publishes its statistics as Prometheus metrics (`metrics-listen`)"),
    key("realm", Value, Some("realm"), "the same key"),
    key("check-origin-consistency", Flag, None, "the ORIGIN attribute is not used"),
    key("user-quota", Value, Some("user-quota"), "the same key (0: no limit)"),
    key("total-quota", Value, Some("total-quota"), "the same key, but 0 is not \"no limit\""),
    key("max-bps", Value, Some("max-bps"), "the same key, but Turnpike counts both directions together"),
    key("bps-capacity", Value, None, "there is no server-wide bandwidth cap; `max-bps` caps each allocation"),
    key("no-udp", Flag, Some("udp"), "`udp = false`"),
    key("no-tcp", Flag, Some("tcp"), "`tcp = false`"),
    key("no-tls", Flag, Some("tls-cert"), "TLS is off unless `tls-cert` and `tls-key` are set"),
    key("no-dtls", Flag, Some("dtls"), "`dtls = false`"),
    key("no-udp-relay", Flag, None, "UDP relaying is what TURN is for (RFC 8656); it cannot be turned off"),
    key("no-tcp-relay", Flag, Some("tcp-relay"), "`tcp-relay = false`"),
    key("stale-nonce", Optional, Some("nonce-lifetime"), "`nonce-lifetime` in seconds, 30..=86400"),
    key("max-allocate-lifetime", Value, Some("max-allocation-lifetime"), "`max-allocation-lifetime` in seconds, 600..=86400"),
    key("channel-lifetime", Value, Some("channel-lifetime"), "`channel-lifetime` in seconds, 1..=3600 (RFC 8656 §12 fixes 600)"),
    key("permission-lifetime", Value, Some("permission-lifetime"), "`permission-lifetime` in seconds, 1..=3600 (RFC 8656 §9 fixes 300)"),
    key("cert", Value, Some("tls-cert"), "`tls-cert`, a PEM certificate chain"),
    key("pkey", Value, Some("tls-key"), "`tls-key`, a PEM private key"),
    secret("pkey-pwd", Value, None, "encrypted private keys are not supported: decrypt it (`openssl pkey -in KEY -out KEY.plain`)"),
    key("cipher-list", Value, None, TLS_BY_RUSTLS),
    key("CA-file", Value, None, "client certificates are not checked"),
    key("ec-curve-name", Value, None, TLS_BY_RUSTLS),
    key("dh566", Flag, None, TLS_BY_RUSTLS),
    key("dh1066", Flag, None, TLS_BY_RUSTLS),
    key("dh-file", Value, None, TLS_BY_RUSTLS),
    key("no-sslv2", Flag, None, TLS_BY_RUSTLS),
    key("no-sslv3", Flag, None, TLS_BY_RUSTLS),
    key("no-tlsv1", Flag, None, TLS_BY_RUSTLS),
    key("no-tlsv1_1", Flag, None, TLS_BY_RUSTLS),
    key("no-tlsv1_2", Flag, None, TLS_BY_RUSTLS),
    key("no-stdout-log", Flag, None, LOGS),
    key("log-file", Value, None, LOGS),
    key("syslog", Flag, None, LOGS),
    key("syslog-facility", Value, None, LOGS),
    key("simple-log", Flag, None, LOGS),
    key("new-log-timestamp", Flag, None, LOGS),
    key("new-log-timestamp-format", Value, None, LOGS),
    key("log-binding", Flag, None, "Binding requests are logged at `trace` only (`log-level`)"),
    key("alternate-server", Value, Some("alternate-server"), "the same key, but used only when full or draining"),
    key("tls-alternate-server", Value, Some("tls-alternate-server"), "the same key, but used only when full or draining"),
    key("stun-only", Flag, Some("turn"), "`turn = false`"),
    key("no-software-attribute", Flag, Some("software"), "no SOFTWARE attribute is sent unless `software` is set"),
    key("no-stun", Flag, None, "Turnpike always answers Binding requests"),
    key("rest-api-separator", Value, None, "TURN REST user names are `EXPIRY:USERID` (or `USERID:EXPIRY`), with `:`"),
    key("secret-ts-exp-time", Value, None, "the expiry is the time stamp in the REST user name"),
    key("allow-loopback-peers", Flag, Some("allowed-peers"), "`allowed-peers = [\"127.0.0.0/8\", \"::1\"]` (for tests only)"),
    key("no-loopback-peers", Flag, None, "loopback peers are denied by Turnpike's default peer policy: already so"),
    key("no-multicast-peers", Flag, None, "multicast peers are denied by Turnpike's default peer policy: already so"),
    key("max-allocate-timeout", Value, None, "an allocation is made in one Allocate transaction"),
    key("allowed-peer-ip", Value, Some("allowed-peers"), "a list of CIDR networks or IPs"),
    key("denied-peer-ip", Value, Some("denied-peers"), "a list of CIDR networks or IPs"),
    key("pidfile", Value, None, SYSTEMD),
    key("secure-stun", Flag, None, "Binding requests are answered without authentication (RFC 8489 §9.2 allows it)"),
    key("mobility", Flag, None, "MICE (RFC 8016 mobility) is not supported"),
    key("keep-address-family", Flag, None, "allocations default to IPv4 as RFC 8656 §7.2 requires; clients ask for IPv6 with REQUESTED-ADDRESS-FAMILY"),
    key("allocation-default-address-family", Value, None, "allocations default to IPv4 as RFC 8656 §7.2 requires; clients ask for IPv6 with REQUESTED-ADDRESS-FAMILY"),
    key("proc-user", Value, None, SYSTEMD),
    key("proc-group", Value, None, SYSTEMD),
    key("daemon", Flag, None, SYSTEMD),
    key("no-cli", Flag, None, NO_CLI),
    key("cli-ip", Value, None, NO_CLI),
    key("cli-port", Value, None, NO_CLI),
    secret("cli-password", Value, None, NO_CLI),
    key("cli-max-output-sessions", Value, None, NO_CLI),
    key("web-admin", Flag, None, NO_CLI),
    key("web-admin-ip", Value, None, NO_CLI),
    key("web-admin-port", Value, None, NO_CLI),
    key("web-admin-listen-on-workers", Flag, None, NO_CLI),
    key("acme-redirect", Value, None, "HTTP on `http-listen` does not redirect ACME challenges"),
    key("server-relay", Flag, None, "permissions are always checked (RFC 8656 §9)"),
    key("ne", Value, None, "Turnpike has one network engine (a worker per core)"),
    key("no-rfc5780", Flag, None, "RFC 5780 answers are on only with `alternate-ip`: off here"),
    key("no-stun-backward-compatibility", Flag, None, "Turnpike answers RFC 3489 clients and sends MAPPED-ADDRESS only to them (docs/stun.md)"),
    key("response-origin-only-with-rfc5780", Flag, None, "RESPONSE-ORIGIN is sent only with RFC 5780 on: already so"),
    key("respond-http-unsupported", Flag, None, "HTTP is served on `http-listen`, not on the STUN ports"),
    key("no-auth-pings", Flag, None, NO_DB),
    key("no-dynamic-ip-list", Flag, None, "peer lists are read from the configuration (reloaded on SIGHUP)"),
    key("no-dynamic-realms", Flag, None, "Turnpike has one `realm`"),
    key("prod", Flag, None, "no SOFTWARE attribute is sent unless `software` is set; the CLI does not exist"),
];

/// The coturn option called `name` (exactly, as coturn matches it).
pub fn find(name: &str) -> Option<&'static CoturnKey> {
    KEYS.iter().find(|key| key.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_notes_are_one_line() {
        for (i, key) in KEYS.iter().enumerate() {
            assert!(
                KEYS[..i].iter().all(|other| other.name != key.name),
                "{} twice",
                key.name
            );
            assert!(!key.note.contains('\n'), "{}", key.name);
        }
    }

    #[test]
    fn the_documentation_lists_every_option() {
        let docs = include_str!("../../../../../docs/configuration.md");
        for key in KEYS {
            let turnpike = key.turnpike.map_or("—".to_owned(), |k| format!("`{k}`"));
            let row = format!("| `{}` | {turnpike} | ", key.name);
            assert!(docs.contains(&row), "{row} in docs/configuration.md");
        }
    }

    #[test]
    fn turnpike_keys_named_in_the_table_exist() {
        let known: Vec<String> = crate::config::layer::keys().collect();
        for key in KEYS {
            if let Some(turnpike) = key.turnpike {
                assert!(known.iter().any(|k| k == turnpike), "{turnpike}");
            }
        }
    }
}
