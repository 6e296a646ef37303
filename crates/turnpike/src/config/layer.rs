//! One partial configuration: the single list of keys, read from the file (serde) and from the
//! command line and environment (clap).
//!
//! Adding a key is one entry in the `config_layer!` invocation below (its flag, env var and doc),
//! plus its default and validation in `validate.rs` and its text in `example.rs`. The tests check
//! that the flag, the env var and the file spelling of every key agree.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

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
