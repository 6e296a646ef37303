//! Logging: `tracing` events to stderr, human-readable or JSON, filtered by the `log-level` key.
//!
//! Logs go to stderr so that stdout stays free for command output (`turnpike stun --json`).
//!
//! Third-party libraries are capped at [`LIBRARY_CAP`] whatever `log-level` says: at debug and
//! trace they log what passes through them (tungstenite every WebSocket frame: join and resume
//! tokens, the TURN credential in `joined`, application payloads; hyper request heads; rustls
//! handshake details), and no log level may leak a secret (issue #10). A user's directives for
//! these crates are dropped; directives for turnpike's own modules are kept as written.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};

/// The libraries whose events are capped: the WebSocket, HTTP, TLS and QUIC stacks.
const CAPPED_LIBRARIES: &[&str] = &[
    "tungstenite",
    "tokio_tungstenite",
    "axum",
    "axum_core",
    "hyper",
    "hyper_util",
    "h2",
    "tower",
    "tower_http",
    "rustls",
    "tokio_rustls",
    "quinn",
    "quinn_proto",
    "quinn_udp",
    "mio",
    "tokio",
];
/// The most a capped library logs: warnings and errors never carry frame or packet contents.
const LIBRARY_CAP: &str = "warn";

/// Installs the global subscriber described by `config` (its `log_level` was validated already, and
/// `RUST_LOG` was folded in by `config::load`, so this reads no environment variable).
pub fn init(config: &Config) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(capped(&config.log_level))?;
    // Colours only for a person at a terminal, never into a file or a journal.
    let ansi = std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let installed = match config.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
    installed.map_err(|error| anyhow::anyhow!("cannot install the logger: {error}"))
}

/// `filter` without its directives for capped libraries, followed by the caps. A directive's
/// target is what precedes `[`, `=` (or the whole directive, which then is a bare level or a
/// target at every level).
fn capped(filter: &str) -> String {
    let is_capped = |directive: &str| {
        let target = directive
            .split(['[', '='])
            .next()
            .unwrap_or_default()
            .trim();
        CAPPED_LIBRARIES
            .iter()
            .any(|lib| target == *lib || target.starts_with(&format!("{lib}::")))
    };
    let kept = filter
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty() && !is_capped(d));
    let caps = CAPPED_LIBRARIES
        .iter()
        .map(|lib| format!("{lib}={LIBRARY_CAP}"));
    kept.map(str::to_owned)
        .chain(caps)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libraries_are_capped_whatever_the_user_asks() {
        let filter = capped("trace,tungstenite=trace,turnpike::http=debug, hyper::proto[x]=trace");
        assert!(
            filter.starts_with("trace,turnpike::http=debug,"),
            "{filter}"
        );
        assert!(filter.contains("tungstenite=warn"));
        assert!(filter.contains("hyper=warn"));
        assert!(!filter.contains("=trace"), "{filter}");
        assert!(EnvFilter::try_new(&filter).is_ok());
        // A bare target directive (every level) is dropped too.
        assert!(!capped("info,rustls").starts_with("info,rustls,"));
        // Prefixes of other names are not capped.
        assert!(capped("towerdefense=trace").starts_with("towerdefense=trace,"));
    }
}
