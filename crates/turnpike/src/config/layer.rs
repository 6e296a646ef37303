//! One partial configuration: the single list of keys, read from the file (serde) and from the
//! command line and environment (clap).
//!
//! Adding a key is one entry in the `config_layer!` invocation below (its flag, env var and doc),
//! plus its default and validation in `validate.rs` (TURN keys: `turn_rules.rs`, HTTP and
//! signaling keys: `http_rules.rs`) and its text in `example.rs`. The tests check that the flag,
//! the env var and the file spelling of every key agree.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use super::values::{ExternalIp, PeerNet, Secret};
use super::LogFormat;

/// Declares [`ConfigLayer`] from one list of keys and derives the per-key helpers from the same
/// list, so that the list is written exactly once.
macro_rules! config_layer {
    ($( $(#[$attr:meta])* $field:ident : $ty:ty, )*) => {
        /// A partial configuration: every key is optional, `None` meaning "not set at this layer".
        ///
        /// It is both a TOML table (kebab-case keys, unknown keys rejected) and the `serve` flags
        /// (each `--KEY` flag also reads `TURNPIKE_KEY`). Layers are stacked with
        /// [`ConfigLayer::overlay`] and turned into a [`super::Config`] by
        /// [`super::Config::from_layer`].
        #[derive(Debug, Clone, Default, PartialEq, clap::Args, serde::Deserialize)]
        #[serde(rename_all = "kebab-case", deny_unknown_fields)]
        pub struct ConfigLayer {
            $( $(#[$attr])* pub $field: Option<$ty>, )*
        }

        impl ConfigLayer {
            /// The Rust field names of all keys, in declaration order; `_` becomes `-` in the file
            /// and in flags (see [`key_of_field`]).
            pub const FIELDS: &'static [&'static str] = &[$( stringify!($field) ),*];

            /// Returns this layer with every key that `upper` sets taken from `upper`.
            #[must_use]
            pub fn overlay(self, upper: ConfigLayer) -> ConfigLayer {
                ConfigLayer { $( $field: upper.$field.or(self.$field), )* }
            }

            /// The keys (file spelling) that this layer sets.
            pub fn set_keys(&self) -> Vec<String> {
                let mut keys = Vec::new();
                $( if self.$field.is_some() { keys.push(key_of_field(stringify!($field))); } )*
                keys
            }
        }
    };
}

config_layer! {
    /// STUN/TURN listen addresses, IP:PORT, for UDP and TCP [default: 0.0.0.0:3478].
    #[arg(long, env = "TURNPIKE_LISTEN", value_name = "IP:PORT", value_delimiter = ',')]
    listen: Vec<SocketAddr>,
    /// Serve UDP on the listen addresses [default: true].
    #[arg(long, env = "TURNPIKE_UDP", value_name = "BOOL")]
    #[arg(num_args = 0..=1, default_missing_value = "true")]
    udp: bool,
    /// Serve TCP on the listen addresses [default: true].
    #[arg(long, env = "TURNPIKE_TCP", value_name = "BOOL")]
    #[arg(num_args = 0..=1, default_missing_value = "true")]
    tcp: bool,
    /// TLS listen addresses, used only with tls-cert and tls-key [default: 0.0.0.0:5349].
    #[arg(long, env = "TURNPIKE_TLS_LISTEN", value_name = "IP:PORT", value_delimiter = ',')]
    tls_listen: Vec<SocketAddr>,
    /// PEM certificate chain for TLS; needs tls-key.
    #[arg(long, env = "TURNPIKE_TLS_CERT", value_name = "FILE")]
    tls_cert: PathBuf,
    /// PEM private key for TLS; needs tls-cert.
    #[arg(long, env = "TURNPIKE_TLS_KEY", value_name = "FILE")]
    tls_key: PathBuf,
    /// Serve STUN and TURN over DTLS (RFC 7350) on dtls-listen, with tls-cert and tls-key
    /// [default: true].
    #[arg(long, env = "TURNPIKE_DTLS", value_name = "BOOL")]
    #[arg(num_args = 0..=1, default_missing_value = "true")]
    dtls: bool,
    /// DTLS listen addresses (UDP), used only with tls-cert and tls-key [default: the
    /// tls-listen addresses].
    #[arg(long, env = "TURNPIKE_DTLS_LISTEN", value_name = "IP:PORT", value_delimiter = ',')]
    dtls_listen: Vec<SocketAddr>,
    /// RFC 5780: a second IP address of this host; enables NAT behaviour discovery.
    #[arg(long, env = "TURNPIKE_ALTERNATE_IP", value_name = "IP")]
    alternate_ip: IpAddr,
    /// RFC 5780: a second port, different from the listen port.
    #[arg(long, env = "TURNPIKE_ALTERNATE_PORT", value_name = "PORT")]
    alternate_port: u16,
    /// Text of the SOFTWARE attribute (fewer than 128 characters); empty or unset sends none.
    #[arg(long, env = "TURNPIKE_SOFTWARE", value_name = "TEXT")]
    software: String,
    /// Close TCP and TLS connections idle for this many seconds [default: 300].
    #[arg(long, env = "TURNPIKE_TCP_IDLE_TIMEOUT", value_name = "SECONDS")]
    tcp_idle_timeout: u64,
    /// Most concurrent TCP plus TLS connections [default: 10000].
    #[arg(long, env = "TURNPIKE_MAX_TCP_CONNECTIONS", value_name = "N")]
    max_tcp_connections: u64,
    /// Most concurrent TCP plus TLS connections from one IPv4 address or IPv6 /64
    /// [default: a tenth of max-tcp-connections].
    #[arg(long, env = "TURNPIKE_MAX_TCP_CONNECTIONS_PER_IP", value_name = "N")]
    max_tcp_connections_per_ip: u64,
    /// Seconds a TCP/TLS message may take to arrive from its first byte, and a TLS handshake
    /// to complete, 1..=300 [default: 10].
    #[arg(long, env = "TURNPIKE_TCP_FRAME_TIMEOUT", value_name = "SECONDS")]
    tcp_frame_timeout: u64,
    /// Seconds a write to a TCP/TLS client may stay blocked (a client that does not read)
    /// before the connection is closed, 1..=300 [default: 10].
    #[arg(long, env = "TURNPIKE_TCP_WRITE_TIMEOUT", value_name = "SECONDS")]
    tcp_write_timeout: u64,
    /// Worker threads, each with its own UDP sockets (SO_REUSEPORT) and allocations; 0: one
    /// per core [default: 0].
    #[arg(long, env = "TURNPIKE_WORKERS", value_name = "N")]
    workers: u64,
    /// Network interfaces to attach the kernel fast path (XDP) to: ChannelData of bound
    /// channels relays in the kernel; needs root; empty: off [default: none].
    #[arg(long, env = "TURNPIKE_XDP_INTERFACES", value_name = "IFACE", value_delimiter = ',')]
    xdp_interfaces: Vec<String>,
    /// Answer TURN requests (Allocate, Refresh, …); false serves STUN only [default: true].
    #[arg(long, env = "TURNPIKE_TURN", value_name = "BOOL")]
    #[arg(num_args = 0..=1, default_missing_value = "true")]
    turn: bool,
    /// Long-term credential realm, fewer than 128 characters [default: turnpike].
    #[arg(long, env = "TURNPIKE_REALM", value_name = "REALM")]
    realm: String,
    /// Static TURN users, NAME:PASSWORD (prefer the file or user-db: flags show in `ps`).
    #[arg(long, env = "TURNPIKE_USERS", value_name = "NAME:PASSWORD", value_delimiter = ',')]
    #[arg(hide_env_values = true)]
    users: Vec<Secret>,
    /// SQLite user database managed by `turnpike user`; must exist.
    #[arg(long, env = "TURNPIKE_USER_DB", value_name = "FILE")]
    user_db: PathBuf,
    /// TURN REST API shared secrets (at least 8 bytes); several during a rotation.
    #[arg(long, env = "TURNPIKE_REST_SECRETS", value_name = "SECRET", value_delimiter = ',')]
    #[arg(hide_env_values = true)]
    rest_secrets: Vec<Secret>,
    /// Nonce MAC key, 64 hex digits; share it between cluster nodes [default: random at start].
    #[arg(long, env = "TURNPIKE_NONCE_SECRET", value_name = "HEX", hide_env_values = true)]
    nonce_secret: Secret,
    /// Seconds a nonce stays valid, 30..=86400 [default: 600].
    #[arg(long, env = "TURNPIKE_NONCE_LIFETIME", value_name = "SECONDS")]
    nonce_lifetime: u64,
    /// IPs relay sockets bind to; several of a family are used in turn [default: detected].
    #[arg(long, env = "TURNPIKE_RELAY_IP", value_name = "IP", value_delimiter = ',')]
    relay_ip: Vec<IpAddr>,
    /// 1:1 NAT: PUBLIC or PUBLIC/PRIVATE, advertised instead of the relay IP [default: none].
    #[arg(long, env = "TURNPIKE_EXTERNAL_IP", value_name = "PUBLIC[/PRIVATE]")]
    #[arg(value_delimiter = ',')]
    external_ip: Vec<ExternalIp>,
    /// Lowest relay port, at least 1024 [default: 49152].
    #[arg(long, env = "TURNPIKE_MIN_PORT", value_name = "PORT")]
    min_port: u16,
    /// Highest relay port [default: 65535].
    #[arg(long, env = "TURNPIKE_MAX_PORT", value_name = "PORT")]
    max_port: u16,
    /// Longest allocation lifetime granted, seconds, 600..=86400 [default: 3600].
    #[arg(long, env = "TURNPIKE_MAX_ALLOCATION_LIFETIME", value_name = "SECONDS")]
    max_allocation_lifetime: u64,
    /// Seconds a permission lasts, 1..=3600; RFC 8656 §9 fixes 300 [default: 300].
    #[arg(long, env = "TURNPIKE_PERMISSION_LIFETIME", value_name = "SECONDS")]
    permission_lifetime: u64,
    /// Seconds a channel binding lasts, 1..=3600; RFC 8656 §12 fixes 600 [default: 600].
    #[arg(long, env = "TURNPIKE_CHANNEL_LIFETIME", value_name = "SECONDS")]
    channel_lifetime: u64,
    /// Allocations one username may hold at once; 0 for no limit [default: 0].
    #[arg(long, env = "TURNPIKE_USER_QUOTA", value_name = "N")]
    user_quota: u64,
    /// Allocations the server holds at once [default: 10000].
    #[arg(long, env = "TURNPIKE_TOTAL_QUOTA", value_name = "N")]
    total_quota: u64,
    /// Bytes per second per allocation, both directions; 0 for no cap [default: 0].
    #[arg(long, env = "TURNPIKE_MAX_BPS", value_name = "BYTES")]
    max_bps: u64,
    /// Live permissions per allocation, 1..=4096 [default: 128].
    #[arg(long, env = "TURNPIKE_MAX_PERMISSIONS", value_name = "N")]
    max_permissions: u64,
    /// Channel bindings per allocation, 1..=4096 [default: 128].
    #[arg(long, env = "TURNPIKE_MAX_CHANNELS", value_name = "N")]
    max_channels: u64,
    /// Accept RFC 5766 channel numbers 0x5000-0x7FFF besides RFC 8656's 0x4000-0x4FFF
    /// [default: true].
    #[arg(long, env = "TURNPIKE_RFC5766_CHANNEL_NUMBERS", value_name = "BOOL")]
    #[arg(num_args = 0..=1, default_missing_value = "true")]
    rfc5766_channel_numbers: bool,
    /// Grant TCP allocations (RFC 6062: REQUESTED-TRANSPORT TCP over TCP/TLS) [default: true].
    #[arg(long, env = "TURNPIKE_TCP_RELAY", value_name = "BOOL")]
    #[arg(num_args = 0..=1, default_missing_value = "true")]
    tcp_relay: bool,
    /// Peer TCP connections per TCP allocation (RFC 6062), 1..=4096 [default: 32].
    #[arg(long, env = "TURNPIKE_MAX_PEER_CONNECTIONS", value_name = "N")]
    max_peer_connections: u64,
    /// Peer networks (CIDR or IP) allowed even if the built-in deny list covers them.
    #[arg(long, env = "TURNPIKE_ALLOWED_PEERS", value_name = "CIDR", value_delimiter = ',')]
    allowed_peers: Vec<PeerNet>,
    /// Peer networks (CIDR or IP) denied; on equal prefixes deny beats allow.
    #[arg(long, env = "TURNPIKE_DENIED_PEERS", value_name = "CIDR", value_delimiter = ',')]
    denied_peers: Vec<PeerNet>,
    /// Failed authentications per source IP per minute before it is ignored [default: 10].
    #[arg(long, env = "TURNPIKE_AUTH_FAILURES", value_name = "N")]
    auth_failures: u64,
    /// Bytes per second a source may get in unauthenticated UDP answers beyond what it sent;
    /// 0 turns the budget off [default: 4096].
    #[arg(long, env = "TURNPIKE_AMPLIFICATION_BUDGET", value_name = "BYTES")]
    amplification_budget: u64,
    /// Serve HTTP: the signaling WebSocket, the ICE server API and the web pages [default: true].
    #[arg(long, env = "TURNPIKE_HTTP", value_name = "BOOL")]
    #[arg(num_args = 0..=1, default_missing_value = "true")]
    http: bool,
    /// HTTP listen addresses, IP:PORT [default: 0.0.0.0:8080].
    #[arg(long, env = "TURNPIKE_HTTP_LISTEN", value_name = "IP:PORT", value_delimiter = ',')]
    http_listen: Vec<SocketAddr>,
    /// HTTPS listen addresses, IP:PORT: the HTTP app over TLS [default: none].
    #[arg(long, env = "TURNPIKE_HTTPS_LISTEN", value_name = "IP:PORT", value_delimiter = ',')]
    https_listen: Vec<SocketAddr>,
    /// PEM certificate chain for HTTPS; needs https-key [default: tls-cert].
    #[arg(long, env = "TURNPIKE_HTTPS_CERT", value_name = "FILE")]
    https_cert: PathBuf,
    /// PEM private key for HTTPS; needs https-cert [default: tls-key].
    #[arg(long, env = "TURNPIKE_HTTPS_KEY", value_name = "FILE")]
    https_key: PathBuf,
    /// Secret of the signaling join tokens (at least 16 bytes); set: `join` needs a token.
    #[arg(long, env = "TURNPIKE_SIGNALING_SECRET", value_name = "SECRET")]
    #[arg(hide_env_values = true)]
    signaling_secret: Secret,
    /// Hand TURN credentials over HTTP to any caller when no signaling-secret is set; false:
    /// only to local callers (loopback, no proxy header) [default: false].
    #[arg(long, env = "TURNPIKE_OPEN_CREDENTIALS", value_name = "BOOL")]
    #[arg(num_args = 0..=1, default_missing_value = "true")]
    open_credentials: bool,
    /// TURN credentials handed out over HTTP per source (IPv4 address, IPv6 /64) per minute,
    /// in bursts of as many, 1..=10000 [default: 20].
    #[arg(long, env = "TURNPIKE_CREDENTIAL_RATE", value_name = "N")]
    credential_rate: u64,
    /// Concurrent HTTP connections from one source IP, 1..=1000000 [default: a tenth of
    /// max-tcp-connections].
    #[arg(long, env = "TURNPIKE_HTTP_CONNECTIONS_PER_IP", value_name = "N")]
    http_connections_per_ip: u64,
    /// Origins allowed to open the signaling WebSocket, such as `https://app.example.org`
    /// [default: any].
    #[arg(long, env = "TURNPIKE_ALLOWED_ORIGINS", value_name = "ORIGIN", value_delimiter = ',')]
    allowed_origins: Vec<String>,
    /// Host name or IP put in the ICE server URLs [default: the host of the HTTP request].
    #[arg(long, env = "TURNPIKE_ICE_HOST", value_name = "HOST")]
    ice_host: String,
    /// Seconds the TURN credentials handed out over HTTP stay valid, 60..=604800 [default: 86400].
    #[arg(long, env = "TURNPIKE_ICE_TTL", value_name = "SECONDS")]
    ice_ttl: u64,
    /// Peers one signaling room holds, 2..=1000 [default: 16].
    #[arg(long, env = "TURNPIKE_ROOM_CAPACITY", value_name = "N")]
    room_capacity: u64,
    /// Largest signaling frame, bytes, 1024..=1048576 [default: 65536].
    #[arg(long, env = "TURNPIKE_MAX_MESSAGE_BYTES", value_name = "BYTES")]
    max_message_bytes: u64,
    /// Signaling frames per second per connection (bursts of twice as many), 1..=10000
    /// [default: 50].
    #[arg(long, env = "TURNPIKE_MESSAGE_RATE", value_name = "N")]
    message_rate: u64,
    /// Prometheus metrics listen address, IP:PORT, serving `GET /metrics`; "off" (or "")
    /// turns the listener off [default: 127.0.0.1:9641].
    #[arg(long, env = "TURNPIKE_METRICS_LISTEN", value_name = "IP:PORT|off")]
    metrics_listen: String,
    /// Serve `GET /metrics` on the HTTP listeners too [default: false].
    #[arg(long, env = "TURNPIKE_METRICS_ON_HTTP", value_name = "BOOL")]
    #[arg(num_args = 0..=1, default_missing_value = "true")]
    metrics_on_http: bool,
    /// Where a draining server sends new clients (300 Try Alternate): IP:PORT, at most one
    /// per family [default: none, 508].
    #[arg(long, env = "TURNPIKE_ALTERNATE_SERVER", value_name = "IP:PORT")]
    #[arg(value_delimiter = ',')]
    alternate_server: Vec<SocketAddr>,
    /// The same for clients over TLS and DTLS, who must reconnect to a TLS/DTLS port: IP:PORT,
    /// at most one per family [default: none, 508].
    #[arg(long, env = "TURNPIKE_TLS_ALTERNATE_SERVER", value_name = "IP:PORT")]
    #[arg(value_delimiter = ',')]
    tls_alternate_server: Vec<SocketAddr>,
    /// The DNS name in the certificate of the TLS alternates, sent with a 300 to TLS and DTLS
    /// clients that sign with MESSAGE-INTEGRITY-SHA256 (ALTERNATE-DOMAIN, RFC 8489 §10); empty:
    /// none [default: none, the alternate's certificate carries the name clients use here].
    #[arg(long, env = "TURNPIKE_TLS_ALTERNATE_DOMAIN", value_name = "NAME")]
    tls_alternate_domain: String,
    /// Seconds a drain (SIGTERM, `turnpike admin drain`) waits for the last allocation before
    /// exiting, 0..=86400 [default: 3600].
    #[arg(long, env = "TURNPIKE_DRAIN_TIMEOUT", value_name = "SECONDS")]
    drain_timeout: u64,
    /// Bearer token of the admin API, at least 16 bytes; unset or empty: no admin API.
    #[arg(long, env = "TURNPIKE_ADMIN_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    admin_token: Secret,
    /// Admin API listen address [default: 127.0.0.1:9642].
    #[arg(long, env = "TURNPIKE_ADMIN_LISTEN", value_name = "IP:PORT")]
    admin_listen: SocketAddr,
    /// Redis URL of the cluster (redis://[:PASSWORD@]HOST:PORT[/DB]); set: signaling rooms
    /// span every node on this Redis [default: none, one node on its own].
    #[arg(long, env = "TURNPIKE_REDIS_URL", value_name = "URL", hide_env_values = true)]
    redis_url: Secret,
    /// This node's name in the cluster, 1..=64 of [A-Za-z0-9._-], unique per node
    /// [default: random at each start].
    #[arg(long, env = "TURNPIKE_NODE_ID", value_name = "NAME")]
    node_id: String,
    /// Prefix of every Redis key and channel of the cluster, so that several clusters may share
    /// one Redis [default: turnpike].
    #[arg(long, env = "TURNPIKE_CLUSTER_PREFIX", value_name = "PREFIX")]
    cluster_prefix: String,
    /// Seconds a signaling peer whose connection dropped stays in its room, waiting to resume,
    /// 0..=600 [default: 30].
    #[arg(long, env = "TURNPIKE_RESUME_GRACE", value_name = "SECONDS")]
    resume_grace: u64,
    // The two logging keys are global flags (they also apply to `turnpike stun`), so clap reads
    // them through `LogArgs` instead of here: a flag cannot be both global and part of `serve`
    // alone.
    /// Tracing filter: error, warn, info, debug, trace, or a directive like `info,turnpike=debug`.
    #[arg(skip)]
    log_level: String,
    /// Log line format: pretty or json.
    #[arg(skip)]
    log_format: LogFormat,
}

/// The logging keys as global flags, shared by every subcommand; `serve` folds them into its layer
/// with [`LogArgs::into_layer`].
#[derive(Debug, Clone, Default, PartialEq, clap::Args)]
pub struct LogArgs {
    /// Tracing filter: error, warn, info, debug, trace, or a directive like `info,turnpike=debug`
    /// [default: info; RUST_LOG is used only when no log-level is given anywhere].
    #[arg(long, global = true, env = "TURNPIKE_LOG_LEVEL", value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Log line format [default: pretty].
    #[arg(
        long,
        global = true,
        env = "TURNPIKE_LOG_FORMAT",
        value_name = "FORMAT"
    )]
    pub log_format: Option<LogFormat>,
}

impl LogArgs {
    /// A layer that sets only the logging keys given as flags or env vars.
    pub fn into_layer(self) -> ConfigLayer {
        ConfigLayer {
            log_level: self.log_level,
            log_format: self.log_format,
            ..ConfigLayer::default()
        }
    }
}

/// The file and flag spelling of a field name: `tls_cert` → `tls-cert`.
pub fn key_of_field(field: &str) -> String {
    field.replace('_', "-")
}

/// The environment variable of a key: `tls-cert` → `TURNPIKE_TLS_CERT`.
pub fn env_var_of_key(key: &str) -> String {
    format!("TURNPIKE_{}", key.replace('-', "_").to_ascii_uppercase())
}

/// All keys, in file spelling and declaration order.
pub fn keys() -> impl Iterator<Item = String> {
    ConfigLayer::FIELDS.iter().map(|field| key_of_field(field))
}
