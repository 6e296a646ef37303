//! Turning a merged [`ConfigLayer`] into a [`Config`]: defaults for unset keys, then every rule
//! checked, every violation collected.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::{KeyProblem, Reason};
use super::layer::ConfigLayer;
use super::{
    cluster_rules, control_rules, http_rules, https_rules, metrics_rules, turn_rules, Config,
    TlsFiles, PER_IP_SHARE,
};

/// Allowed `tcp-idle-timeout`, seconds: at least one second, at most a day.
const TCP_IDLE_TIMEOUT_RANGE: (u64, u64) = (1, 86_400);
/// Allowed `max-tcp-connections`.
const MAX_TCP_CONNECTIONS_RANGE: (u64, u64) = (1, 1_000_000);
/// Allowed `tcp-frame-timeout` and `tcp-write-timeout`, seconds.
const TCP_DEADLINE_RANGE: (u64, u64) = (1, 300);
/// Allowed `workers` (0: one per core).
const WORKERS_RANGE: (u64, u64) = (0, 1_024);
/// RFC 8489 §14.14: SOFTWARE is fewer than 128 characters and at most 763 bytes.
const SOFTWARE_MAX_CHARS: usize = 127;
/// RFC 8489 §14.14, in bytes.
const SOFTWARE_MAX_BYTES: usize = 763;

/// Problems found so far, in the order found.
pub(super) type Problems = Vec<KeyProblem>;

/// Records a problem for `key`.
pub(super) fn push(problems: &mut Problems, key: &'static str, reason: Reason) {
    problems.push(KeyProblem { key, reason });
}

impl Config {
    /// Applies the defaults to the unset keys of `layer` and checks every rule, returning all
    /// problems.
    pub fn from_layer(layer: &ConfigLayer) -> Result<Config, Vec<KeyProblem>> {
        let default = Config::default();
        let mut problems = Problems::new();
        let p = &mut problems;

        let listen = layer.listen.clone().unwrap_or(default.listen);
        let udp = layer.udp.unwrap_or(default.udp);
        let tcp = layer.tcp.unwrap_or(default.tcp);
        if udp || tcp {
            check_addresses(p, "listen", &listen);
        }
        let tls = tls_files(p, layer);
        let tls_listen = layer.tls_listen.clone().unwrap_or(default.tls_listen);
        if tls.is_some() {
            check_addresses(p, "tls-listen", &tls_listen);
            check_tls_port_clash(p, &listen, tcp, &tls_listen);
        }
        let dtls = layer.dtls.unwrap_or(default.dtls);
        let dtls_listen = layer.dtls_listen.clone().unwrap_or(tls_listen.clone());
        if tls.is_some() && dtls {
            check_addresses(p, "dtls-listen", &dtls_listen);
            check_dtls_port_clash(p, &listen, udp, &dtls_listen);
        }
        if !udp && !tcp && tls.is_none() {
            let why = "`udp` and `tcp` are both false and TLS is not configured: nothing to serve";
            push(p, "udp", Reason::Rule(why.to_owned()));
        }
        check_alternate(p, &listen, layer.alternate_ip, layer.alternate_port);
        let software = layer.software.clone().filter(|text| !text.is_empty());
        if let Some(text) = &software {
            check_software(p, text);
        }
        let idle = in_range(
            p,
            "tcp-idle-timeout",
            layer.tcp_idle_timeout,
            TCP_IDLE_TIMEOUT_RANGE,
        );
        let max_conns = in_range(
            p,
            "max-tcp-connections",
            layer.max_tcp_connections,
            MAX_TCP_CONNECTIONS_RANGE,
        );
        let per_ip = in_range(
            p,
            "max-tcp-connections-per-ip",
            layer.max_tcp_connections_per_ip,
            MAX_TCP_CONNECTIONS_RANGE,
        );
        let frame_timeout = in_range(
            p,
            "tcp-frame-timeout",
            layer.tcp_frame_timeout,
            TCP_DEADLINE_RANGE,
        );
        let write_timeout = in_range(
            p,
            "tcp-write-timeout",
            layer.tcp_write_timeout,
            TCP_DEADLINE_RANGE,
        );
        let workers = in_range(p, "workers", layer.workers, WORKERS_RANGE);
        let xdp_interfaces = layer.xdp_interfaces.clone().unwrap_or_default();
        for name in &xdp_interfaces {
            if let Err(reason) = check_interface_name(name) {
                push(p, "xdp-interfaces", Reason::BadValue(reason));
            }
        }
        let log_level = layer.log_level.clone().unwrap_or(default.log_level);
        if let Err(reason) = check_log_filter(&log_level) {
            push(p, "log-level", reason);
        }

        let max_tcp_connections = max_conns.map_or(default.max_tcp_connections, |n| {
            usize::try_from(n).unwrap_or(usize::MAX)
        });
        let mut config = Config {
            listen,
            udp,
            tcp,
            tls_listen,
            tls,
            dtls,
            dtls_listen,
            alternate_ip: layer.alternate_ip,
            alternate_port: layer.alternate_port,
            software,
            tcp_idle_timeout: idle.map_or(default.tcp_idle_timeout, Duration::from_secs),
            max_tcp_connections,
            // Never more than the total: a larger value would simply mean "no per-IP cap".
            max_tcp_connections_per_ip: per_ip.map_or(
                (max_tcp_connections / PER_IP_SHARE).max(1),
                |n| {
                    usize::try_from(n)
                        .unwrap_or(usize::MAX)
                        .min(max_tcp_connections)
                },
            ),
            tcp_frame_timeout: frame_timeout.map_or(default.tcp_frame_timeout, Duration::from_secs),
            tcp_write_timeout: write_timeout.map_or(default.tcp_write_timeout, Duration::from_secs),
            workers: workers.map_or(default.workers, |n| usize::try_from(n).unwrap_or(0)),
            xdp_interfaces,
            log_level,
            log_format: layer.log_format.unwrap_or(default.log_format),
            ..default
        };
        turn_rules::check(p, layer, &mut config);
        http_rules::check(p, layer, &mut config);
        https_rules::check(p, layer, &mut config);
        metrics_rules::check(p, layer, &mut config);
        control_rules::check(p, layer, &mut config);
        cluster_rules::check(p, layer, &mut config);
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(config)
    }
}

/// `value` if it lies in `min..=max`, else a problem.
pub(super) fn in_range(
    p: &mut Problems,
    key: &'static str,
    value: Option<u64>,
    range: (u64, u64),
) -> Option<u64> {
    let (min, max) = range;
    let value = value?;
    if (min..=max).contains(&value) {
        Some(value)
    } else {
        push(p, key, Reason::OutOfRange { value, min, max });
        None
    }
}

/// A listener list must not be empty nor name an address twice (the second bind would fail at
/// startup).
pub(super) fn check_addresses(p: &mut Problems, key: &'static str, addresses: &[SocketAddr]) {
    if addresses.is_empty() {
        push(p, key, Reason::Empty);
    }
    for (i, address) in addresses.iter().enumerate() {
        if addresses[..i].contains(address) {
            push(p, key, Reason::Duplicate(address.to_string()));
        }
    }
}

/// TLS runs over TCP, so a TLS address equal to a plain TCP address could never be bound.
fn check_tls_port_clash(p: &mut Problems, listen: &[SocketAddr], tcp: bool, tls: &[SocketAddr]) {
    check_port_clash(p, ("tls-listen", "TLS", "TCP"), listen, tcp, tls);
}

/// DTLS runs over UDP, so a DTLS address equal to a plain UDP address could never be bound.
fn check_dtls_port_clash(p: &mut Problems, listen: &[SocketAddr], udp: bool, dtls: &[SocketAddr]) {
    check_port_clash(p, ("dtls-listen", "DTLS", "UDP"), listen, udp, dtls);
}

/// `(key, secure, plain)`: an address of `key` that is also a `listen` address served in
/// plain text over the same transport (when `plain_on`) could never be bound.
fn check_port_clash(
    p: &mut Problems,
    (key, secure, plain): (&'static str, &str, &str),
    listen: &[SocketAddr],
    plain_on: bool,
    addresses: &[SocketAddr],
) {
    if !plain_on {
        return;
    }
    for address in addresses
        .iter()
        .filter(|a| a.port() != 0 && listen.contains(a))
    {
        let why =
            format!("`{address}` is also a {plain} `listen` address; {secure} needs its own port");
        push(p, key, Reason::Rule(why));
    }
}

/// The certificate and key, which only make sense together and must be readable files.
fn tls_files(p: &mut Problems, layer: &ConfigLayer) -> Option<TlsFiles> {
    file_pair(
        p,
        ("tls-cert", layer.tls_cert.as_ref()),
        ("tls-key", layer.tls_key.as_ref()),
    )
}

/// A certificate file and its key file, given by the keys `cert` and `key`: both or neither,
/// each a readable file.
pub(super) fn file_pair(
    p: &mut Problems,
    cert: (&'static str, Option<&PathBuf>),
    key: (&'static str, Option<&PathBuf>),
) -> Option<TlsFiles> {
    match (cert.1, key.1) {
        (Some(cert_path), Some(key_path)) => {
            let cert_ok = check_readable(p, cert.0, cert_path);
            let key_ok = check_readable(p, key.0, key_path);
            (cert_ok && key_ok).then(|| TlsFiles {
                cert: cert_path.clone(),
                key: key_path.clone(),
            })
        }
        (Some(_), None) => {
            push(p, cert.0, Reason::Requires(key.0));
            None
        }
        (None, Some(_)) => {
            push(p, key.0, Reason::Requires(cert.0));
            None
        }
        (None, None) => None,
    }
}

/// Checks that `path` is a readable regular file now, so that a typo fails `config check` rather
/// than the first TLS handshake.
fn check_readable(p: &mut Problems, key: &'static str, path: &Path) -> bool {
    let result = std::fs::File::open(path).and_then(|file| file.metadata());
    let error = match result {
        Ok(metadata) if metadata.is_file() => return true,
        Ok(_) => "not a regular file".to_owned(),
        Err(error) => error.to_string(),
    };
    push(
        p,
        key,
        Reason::MissingFile {
            path: PathBuf::from(path),
            error,
        },
    );
    false
}

/// RFC 5780: the alternate address differs from the primary in IP, port or both; the server answers
/// CHANGE-REQUEST from it, so it must be a specific address of the same family as the single
/// primary.
fn check_alternate(p: &mut Problems, listen: &[SocketAddr], ip: Option<IpAddr>, port: Option<u16>) {
    let key = match (ip, port) {
        (None, None) => return,
        (Some(_), _) => "alternate-ip",
        (None, Some(_)) => "alternate-port",
    };
    let [primary] = listen else {
        let why = format!(
            "RFC 5780 behaviour discovery needs exactly one `listen` address (the primary), \
             found {}",
            listen.len()
        );
        return push(p, key, Reason::Rule(why));
    };
    if let Some(ip) = ip {
        let why = if ip.is_unspecified() {
            Some(format!(
                "must be a specific address of this host, not `{ip}`"
            ))
        } else if ip.is_ipv4() != primary.is_ipv4() {
            Some(format!(
                "`{ip}` is not of the same address family as the listen address `{primary}`"
            ))
        } else if ip == primary.ip() {
            Some(format!("must differ from the listen IP `{}`", primary.ip()))
        } else if primary.ip().is_unspecified() {
            // With a wildcard primary the kernel picks the source IP, so answers could leave from
            // the alternate IP and the client would draw wrong conclusions about its NAT.
            Some(format!(
                "needs a specific listen IP, not the wildcard `{primary}`"
            ))
        } else {
            None
        };
        if let Some(why) = why {
            push(p, "alternate-ip", Reason::Rule(why));
        }
    }
    if let Some(port) = port {
        if port == 0 {
            push(
                p,
                "alternate-port",
                Reason::Rule("must not be 0".to_owned()),
            );
        } else if port == primary.port() {
            let why = format!("must differ from the listen port {}", primary.port());
            push(p, "alternate-port", Reason::Rule(why));
        }
    }
}

/// RFC 8489 §14.14: fewer than 128 characters, at most 763 bytes.
fn check_software(p: &mut Problems, text: &str) {
    let chars = text.chars().count();
    if chars > SOFTWARE_MAX_CHARS || text.len() > SOFTWARE_MAX_BYTES {
        let why = format!(
            "is {chars} characters ({} bytes); RFC 8489 §14.14 allows fewer than 128 characters",
            text.len()
        );
        push(p, "software", Reason::Rule(why));
    }
}

/// Accepts what `EnvFilter` accepts, except a lone word that is not a level: `EnvFilter` would read
/// `verbose` as "everything from the target named verbose", which is never what was meant.
fn check_log_filter(filter: &str) -> Result<(), Reason> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let word = filter.trim();
    let is_lone_word =
        !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if is_lone_word && !LEVELS.iter().any(|level| level.eq_ignore_ascii_case(word)) {
        return Err(Reason::BadValue(format!(
            "`{word}` is not a level: use off, error, warn, info, debug or trace, \
             or a directive such as `info,turnpike=debug`"
        )));
    }
    log_filter(filter)
        .map(drop)
        .map_err(|error| Reason::BadValue(format!("invalid filter: {error}")))
}

/// Parses a filter with field-value regexes off: a directive such as `x[{f=[[[…}]` would
/// otherwise compile its value as a regular expression, and the config fuzzer found one short
/// `log-level` that made that take over 2 GiB. Values then match as plain text.
pub fn log_filter(
    filter: &str,
) -> Result<tracing_subscriber::EnvFilter, tracing_subscriber::filter::ParseError> {
    tracing_subscriber::EnvFilter::builder()
        .with_regex(false)
        .parse(filter)
}

/// A Linux interface name: 1 to 15 bytes (IFNAMSIZ less the NUL), no `/`, whitespace or `:`
/// (the kernel refuses those; `:` marks an alias, which XDP cannot attach to).
fn check_interface_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 15 {
        return Err(format!(
            "`{name}` is not an interface name: 1 to 15 characters"
        ));
    }
    if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        return Err(format!(
            "`{name}` is not an interface name: no `/`, `:` or spaces"
        ));
    }
    Ok(())
}
