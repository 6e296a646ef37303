//! Configuration of `turnpike serve`: one flat TOML file whose every key is also a flag and an env
//! var.
//!
//! Precedence, lowest first: built-in defaults < file < `TURNPIKE_*` env var < `--flag`. Each
//! source is a [`ConfigLayer`] (all keys optional); layers are stacked with
//! [`ConfigLayer::overlay`] and [`Config::from_layer`] applies the defaults and checks every rule.
//! [`load`] does all of it and reports every problem with its origin (`FILE:LINE: key `KEY`:
//! REASON`, `--KEY: REASON`).

mod address_rules;
mod cluster_rules;
mod control_rules;
pub mod coturn;
mod error;
mod example;
mod file;
mod http_rules;
mod https_rules;
mod layer;
mod locate;
mod metrics_rules;
mod suggest;
mod turn_rules;
mod validate;
pub use validate::log_filter;
mod values;

#[cfg(test)]
pub(crate) mod tests;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use turn::auth::StaticUser;

pub use address_rules::external_for;
pub use error::{ConfigError, KeyProblem, Origin, Problem, Reason};
pub use example::EXAMPLE;
pub use http_rules::SIGNALING_SECRET_MIN_BYTES;
pub use layer::{env_var_of_key, ConfigLayer, LogArgs};
pub use turn_rules::{realm_problem, user_name_problem};
pub use values::{ExternalIp, NonceSecret, Secret};

/// The default `max-tcp-connections-per-ip` is `max-tcp-connections` divided by this: one
/// source cannot take the whole server, while an office or campus behind one NAT keeps room
/// for hundreds of TCP/TLS clients (1000 with the default cap).
pub const PER_IP_SHARE: usize = 10;

/// The validated configuration of `turnpike serve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// STUN/TURN listen addresses, for UDP and TCP.
    pub listen: Vec<SocketAddr>,
    /// Serve UDP on `listen`.
    pub udp: bool,
    /// Serve TCP on `listen`.
    pub tcp: bool,
    /// TLS listen addresses; used only when `tls` is set.
    pub tls_listen: Vec<SocketAddr>,
    /// Certificate and key; `None` disables TLS.
    pub tls: Option<TlsFiles>,
    /// Serve DTLS (RFC 7350) on `dtls_listen` when `tls` is set.
    pub dtls: bool,
    /// DTLS listen addresses (UDP); by default the TLS addresses, as coturn does.
    pub dtls_listen: Vec<SocketAddr>,
    /// RFC 5780 alternate IP; `Some` enables NAT behaviour discovery. `listen` then has exactly one
    /// address, with a specific IP of the same family.
    pub alternate_ip: Option<IpAddr>,
    /// RFC 5780 alternate port, different from the port of the single `listen` address.
    pub alternate_port: Option<u16>,
    /// SOFTWARE attribute text (fewer than 128 characters); `None` sends no SOFTWARE attribute.
    pub software: Option<String>,
    /// TCP and TLS connections idle this long are closed.
    pub tcp_idle_timeout: Duration,
    /// Bound on concurrent TCP plus TLS connections.
    pub max_tcp_connections: usize,
    /// Bound on concurrent TCP plus TLS connections from one IPv4 address or IPv6 /64, at
    /// most `max_tcp_connections`.
    pub max_tcp_connections_per_ip: usize,
    /// A TCP/TLS message must arrive whole this long after its first byte, and a TLS
    /// handshake complete this long after the connection is accepted.
    pub tcp_frame_timeout: Duration,
    /// A write to a TCP/TLS client blocked this long closes the connection.
    pub tcp_write_timeout: Duration,
    /// Worker threads serving UDP and TURN, each with its own sockets and allocations; 0: one
    /// per core (see [`crate::server::serve`]).
    pub workers: usize,
    /// Interfaces the kernel fast path (XDP) attaches to; empty: off (see
    /// [`crate::server::kernel_path`]).
    pub xdp_interfaces: Vec<String>,
    /// Answer TURN requests (Allocate, Refresh, …); `false` serves STUN only.
    pub turn: bool,
    /// Accept RFC 5766's channel numbers 0x5000–0x7FFF too (RFC 8656 §12 narrowed the range
    /// to 0x4000–0x4FFF; RFC 5766 clients still use the old one).
    pub rfc5766_channel_numbers: bool,
    /// Grant TCP allocations (RFC 6062).
    pub tcp_relay: bool,
    /// Peer TCP connections per TCP allocation, 1..=4096 (RFC 6062).
    pub max_peer_connections: usize,
    /// Long-term credential realm (RFC 8489 §9.2): non-empty, fewer than 128 characters.
    pub realm: String,
    /// The static `users`, as keys for `realm` (their passwords are not kept).
    pub users: Vec<StaticUser>,
    /// SQLite user database (`turnpike user`); it existed when the configuration was checked.
    pub user_db: Option<PathBuf>,
    /// TURN REST shared secrets, each at least 8 bytes; empty: REST credentials off.
    pub rest_secrets: Vec<Secret>,
    /// Key of the nonce MAC; `None`: a random one at every start.
    pub nonce_secret: Option<NonceSecret>,
    /// How long a nonce stays valid (30 s ..= 1 day).
    pub nonce_lifetime: Duration,
    /// IPs relay sockets bind to, at most one per family, specific; empty: detected at start
    /// (see `turn_setup`).
    pub relay_ip: Vec<IpAddr>,
    /// 1:1 NAT mappings, at most one per family, each of one family.
    pub external_ip: Vec<ExternalIp>,
    /// Relay ports, within 1024..=65535.
    pub relay_ports: RangeInclusive<u16>,
    /// Longest allocation lifetime granted (600 s ..= 1 day).
    pub max_allocation_lifetime: Duration,
    /// How long a permission lasts (1 s ..= 1 h; RFC 8656 §9's 300 s by default).
    pub permission_lifetime: Duration,
    /// How long a channel binding lasts (1 s ..= 1 h; RFC 8656 §12's 600 s by default).
    pub channel_lifetime: Duration,
    /// Allocations per username; 0: no limit.
    pub user_quota: usize,
    /// Allocations per server, at least 1.
    pub total_quota: usize,
    /// Bytes per second per allocation; `None`: no cap.
    pub max_bps: Option<u64>,
    /// Live permissions per allocation, 1..=4096.
    pub max_permissions: usize,
    /// Channel bindings per allocation, 1..=4096.
    pub max_channels: usize,
    /// Peer networks explicitly allowed (host bits cleared).
    pub allowed_peers: Vec<IpNet>,
    /// Peer networks explicitly denied (host bits cleared).
    pub denied_peers: Vec<IpNet>,
    /// Failed authentications per source per minute before the source is ignored, at least 1.
    pub auth_failures: u32,
    /// Bytes per second per source of unauthenticated UDP answers beyond the requests' size
    /// (burst: 4 s of it); 0: off.
    pub amplification_budget: u32,
    /// Serve HTTP: the signaling WebSocket, the ICE server API and the web pages.
    pub http: bool,
    /// HTTP listen addresses; used only when `http` is on.
    pub http_listen: Vec<SocketAddr>,
    /// HTTPS listen addresses (the same app over TLS); used only when `http` is on. Empty:
    /// no HTTPS.
    pub https_listen: Vec<SocketAddr>,
    /// Certificate and key of the HTTPS listeners: `https-cert`/`https-key`, else
    /// `tls-cert`/`tls-key`; `Some` whenever `https_listen` is used.
    pub https: Option<TlsFiles>,
    /// Key of the signaling join tokens, at least 16 bytes; `None`: `join` needs no token.
    pub signaling_secret: Option<Secret>,
    /// Without `signaling_secret`: hand TURN credentials over HTTP to any caller, not only to
    /// local ones (loopback, no proxy header).
    pub open_credentials: bool,
    /// TURN credentials handed out over HTTP per source per minute (bursts of as many).
    pub credential_rate: u32,
    /// Concurrent HTTP connections from one source IP; `None`: a tenth of
    /// `max_tcp_connections` (see [`Config::http_connections_per_ip`]).
    pub http_connections_per_ip: Option<usize>,
    /// `Origin`s allowed to open the signaling WebSocket, serialized as browsers send them
    /// (`scheme://host[:port]`, lowercase, no default port); empty: any origin.
    pub allowed_origins: Vec<String>,
    /// Host name or IP (IPv6 without brackets) in the ICE server URLs; `None`: the host of the
    /// HTTP request.
    pub ice_host: Option<String>,
    /// How long the TURN credentials handed out over HTTP stay valid (1 min ..= 7 days).
    pub ice_ttl: Duration,
    /// Peers one signaling room holds, 2..=1000.
    pub room_capacity: usize,
    /// Largest signaling frame, bytes, 1 KiB ..= 1 MiB.
    pub max_message_bytes: usize,
    /// Signaling frames per second per connection, 1..=10000; bursts of twice as many.
    pub message_rate: u32,
    /// Where `GET /metrics` is served on its own; `None`: no metrics listener.
    pub metrics_listen: Option<SocketAddr>,
    /// Serve `GET /metrics` on the HTTP listeners too.
    pub metrics_on_http: bool,
    /// Where a draining server sends new clients: at most one address per family.
    pub alternate_server: Vec<SocketAddr>,
    /// The same for clients over TLS and DTLS (the alternates' TLS/DTLS addresses).
    pub tls_alternate_server: Vec<SocketAddr>,
    /// The name in the TLS alternates' certificate (ALTERNATE-DOMAIN); `None`: none sent.
    pub tls_alternate_domain: Option<turn::relay::DomainName>,
    /// How long a drain waits for the last allocation to end (0 ..= 1 day).
    pub drain_timeout: Duration,
    /// Bearer token of the admin API, at least 16 bytes; `None`: no admin API.
    pub admin_token: Option<Secret>,
    /// Admin API listen address.
    pub admin_listen: SocketAddr,
    /// Redis of the cluster; `None`: one node on its own, no Redis.
    pub redis_url: Option<Secret>,
    /// This node's name in the cluster; `None`: drawn at random at start.
    pub node_id: Option<String>,
    /// Prefix of the cluster's Redis keys and channels.
    pub cluster_prefix: String,
    /// How long a signaling peer whose connection dropped may resume (0 ..= 10 min).
    pub resume_grace: Duration,
    /// A valid `tracing_subscriber::EnvFilter` directive.
    pub log_level: String,
    /// How log lines are written.
    pub log_format: LogFormat,
}

impl Config {
    /// Concurrent HTTP connections one source IP may hold: `http-connections-per-ip`, else a
    /// tenth of `max-tcp-connections` (at least 1), so that one source can never take all.
    pub fn http_per_ip_cap(&self) -> usize {
        self.http_connections_per_ip
            .unwrap_or((self.max_tcp_connections / 10).max(1))
    }

    /// The addresses the STUN/TURN TCP and TLS listeners bind: no other TCP listener can use
    /// them.
    pub fn stream_addresses(&self) -> Vec<SocketAddr> {
        let tcp = if self.tcp { &self.listen[..] } else { &[] };
        let tls = if self.tls.is_some() {
            &self.tls_listen[..]
        } else {
            &[]
        };
        tcp.iter().chain(tls).copied().collect()
    }

    /// The addresses the DTLS listeners bind: none without a certificate or with `dtls`
    /// off.
    pub fn dtls_addresses(&self) -> &[SocketAddr] {
        if self.tls.is_some() && self.dtls {
            &self.dtls_listen
        } else {
            &[]
        }
    }
}

impl Default for Config {
    /// The built-in defaults: STUN/TURN on 0.0.0.0:3478 over UDP and TCP, no TLS, no RFC 5780;
    /// TURN on with no credentials (every Allocate is refused until users or secrets are
    /// configured) and the built-in peer deny list; HTTP (signaling, ICE server API, pages) on
    /// 0.0.0.0:8080, open to any origin, without join tokens.
    fn default() -> Self {
        Config {
            listen: vec![SocketAddr::from(([0, 0, 0, 0], 3478))],
            udp: true,
            tcp: true,
            tls_listen: vec![SocketAddr::from(([0, 0, 0, 0], 5349))],
            tls: None,
            dtls: true,
            dtls_listen: vec![SocketAddr::from(([0, 0, 0, 0], 5349))],
            alternate_ip: None,
            alternate_port: None,
            software: None,
            tcp_idle_timeout: Duration::from_secs(300),
            max_tcp_connections: 10_000,
            max_tcp_connections_per_ip: 10_000 / PER_IP_SHARE,
            tcp_frame_timeout: Duration::from_secs(10),
            tcp_write_timeout: Duration::from_secs(10),
            workers: 0,
            xdp_interfaces: Vec::new(),
            turn: true,
            rfc5766_channel_numbers: true,
            tcp_relay: true,
            max_peer_connections: 32,
            realm: "turnpike".to_owned(),
            users: Vec::new(),
            user_db: None,
            rest_secrets: Vec::new(),
            nonce_secret: None,
            nonce_lifetime: Duration::from_secs(600),
            relay_ip: Vec::new(),
            external_ip: Vec::new(),
            relay_ports: 49152..=65535,
            max_allocation_lifetime: Duration::from_secs(3600),
            permission_lifetime: turn::relay::PERMISSION_LIFETIME,
            channel_lifetime: turn::relay::CHANNEL_LIFETIME,
            user_quota: 0,
            total_quota: 10_000,
            max_bps: None,
            max_permissions: 128,
            max_channels: 128,
            allowed_peers: Vec::new(),
            denied_peers: Vec::new(),
            auth_failures: 10,
            amplification_budget: turn::budget::DEFAULT_BUDGET_RATE,
            http: true,
            http_listen: vec![SocketAddr::from(([0, 0, 0, 0], 8080))],
            https_listen: Vec::new(),
            https: None,
            signaling_secret: None,
            open_credentials: false,
            credential_rate: 20,
            http_connections_per_ip: None,
            allowed_origins: Vec::new(),
            ice_host: None,
            ice_ttl: Duration::from_secs(86_400),
            room_capacity: 16,
            max_message_bytes: 65_536,
            message_rate: 50,
            metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9641))),
            metrics_on_http: false,
            alternate_server: Vec::new(),
            tls_alternate_server: Vec::new(),
            tls_alternate_domain: None,
            drain_timeout: Duration::from_secs(3600),
            admin_token: None,
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 9642)),
            redis_url: None,
            node_id: None,
            cluster_prefix: "turnpike".to_owned(),
            resume_grace: Duration::from_secs(30),
            log_level: "info".to_owned(),
            log_format: LogFormat::Pretty,
        }
    }
}

/// The PEM files of the TLS (or HTTPS) listeners; both exist and were readable when the configuration was
/// checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// Private key of the leaf certificate.
    pub key: PathBuf,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The configuration given on the command line: the flag/env layer and, for each key it sets,
/// whether a flag or an env var set it (so that problems name the right one).
#[derive(Debug, Clone, Default)]
pub struct CliLayer {
    /// Keys set by flags or `TURNPIKE_*` env vars.
    pub layer: ConfigLayer,
    /// Origin of keys set in `layer`; a key missing here is reported as a flag.
    pub origins: BTreeMap<String, Origin>,
    /// The value of `RUST_LOG`: the log filter when no file, env var or flag sets `log-level`, so
    /// that RUST_LOG never overrides an explicit `log-level`.
    pub rust_log: Option<String>,
}

/// Loads the configuration: defaults < `RUST_LOG` < `file` (if any) < `cli`, validated. On failure
/// returns every problem found in the file and on the command line.
pub fn load(file: Option<&Path>, cli: &CliLayer) -> Result<Config, ConfigError> {
    load_with(file, cli, |_| Vec::new())
}

/// [`load`], then `host` checks the valid configuration against the machine it is to run on
/// (`turnpike serve`: see `crate::server::host_checks`); its problems are located and reported like
/// the others.
pub fn load_with(
    file: Option<&Path>,
    cli: &CliLayer,
    host: impl FnOnce(&Config) -> Vec<KeyProblem>,
) -> Result<Config, ConfigError> {
    load_parsed(file.map(|path| (path, file::read(path))), cli, host)
}

/// [`load_with`] for a file already read and parsed.
fn load_parsed(
    file: Option<(&Path, file::FileLayer)>,
    cli: &CliLayer,
    host: impl FnOnce(&Config) -> Vec<KeyProblem>,
) -> Result<Config, ConfigError> {
    let mut sources = locate::Sources::default();
    let mut problems = Vec::new();
    let mut merged = ConfigLayer::default();
    if let Some(filter) = &cli.rust_log {
        merged.log_level = Some(filter.clone());
        sources.set_fallback(
            "log-level".to_owned(),
            Origin::Env {
                var: "RUST_LOG".to_owned(),
            },
        );
    }
    if let Some((path, file)) = file {
        sources.set_file(path.to_owned(), file.lines);
        problems = file.problems;
        merged = merged.overlay(file.layer);
    }
    for key in cli.layer.set_keys() {
        let origin = cli.origins.get(&key).cloned().unwrap_or(Origin::Flag);
        sources.set_cli(key, origin);
    }
    let merged = merged.overlay(cli.layer.clone());

    let found = match Config::from_layer(&merged) {
        Ok(config) if problems.is_empty() => {
            let on_host = host(&config);
            if on_host.is_empty() {
                return Ok(config);
            }
            on_host
        }
        Ok(_) => Vec::new(),
        Err(found) => found,
    };
    // A key whose value was unusable is missing from `merged`; a rule that needs it ("tls-key
    // requires tls-cert") would only repeat that problem in other words.
    let unusable: Vec<String> = problems.iter().filter_map(|p| p.key.clone()).collect();
    let repeats = |p: &KeyProblem| match p.reason {
        Reason::Requires(needed) => unusable.iter().any(|u| u == needed),
        _ => false,
    };
    problems.extend(
        found
            .into_iter()
            .filter(|p| !repeats(p))
            .map(|p| sources.locate(p)),
    );
    locate::sort(&mut problems);
    Err(ConfigError { problems })
}

/// Checks a file on its own, as `turnpike config check` does: no flags, no env vars.
pub fn check_file(path: &Path) -> Result<Config, ConfigError> {
    load(Some(path), &CliLayer::default())
}

/// Checks `text` as `turnpike config check` would check a file of that contents at `path` (used
/// in messages and for relative paths), without writing it anywhere.
pub fn check_text(path: &Path, text: &str) -> Result<Config, ConfigError> {
    load_parsed(
        Some((path, file::parse(path, text))),
        &CliLayer::default(),
        |_| Vec::new(),
    )
}

/// Reads the file at `path` for the keys `wanted` only, as `turnpike user` does (it needs
/// `user-db` and `realm`): fails on a problem with the file as a whole or with one of those
/// keys, and checks nothing else.
pub fn read_keys(path: &Path, wanted: &[&str]) -> Result<ConfigLayer, ConfigError> {
    let file = file::read(path);
    let problems: Vec<Problem> = file
        .problems
        .into_iter()
        .filter(|p| match p.key.as_deref() {
            Some(key) => wanted.contains(&key),
            None => true,
        })
        .collect();
    if problems.is_empty() {
        Ok(file.layer)
    } else {
        Err(ConfigError { problems })
    }
}
