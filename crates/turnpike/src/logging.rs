//! Logging: `tracing` events to stderr, human-readable or JSON, filtered by the `log-level` key.
//!
//! Logs go to stderr so that stdout stays free for command output (`turnpike stun --json`).
//!
//! Only Turnpike's own crates log at the level `log-level` asks for; every other library is
//! capped at [`LIBRARY_CAP`]. At debug and trace, libraries log what passes through them
//! (tungstenite every WebSocket frame: join and resume tokens, the TURN credential in `joined`,
//! application payloads; hyper request heads; rustls handshake details), and no log level may
//! leak a secret (issue #10). An allow-list rather than a list of known offenders, so that a
//! dependency added later cannot start leaking: a bare level applies to Turnpike's crates, and a
//! user's directive for any other target is dropped.

use std::io::IsTerminal;
use std::sync::OnceLock;

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _, Registry};

use crate::config::{Config, LogFormat};

/// Turnpike's own crates, by library name (the `turnpike-turn` package is the `turn` library,
/// and so on): the only targets that log below [`LIBRARY_CAP`]. (`EnvFilter` matches targets by
/// prefix, so `net` also covers a `netlink` crate, say, at the same level: none of ours logs
/// packet or frame contents.)
const OWN_CRATES: &[&str] = &["turnpike", "stun", "turn", "ice", "signal", "net"];
/// The most any other library logs: warnings and errors never carry frame or packet contents.
const LIBRARY_CAP: &str = "warn";

/// The handle that swaps the filter of the installed subscriber (a configuration reload).
type FilterHandle = tracing_subscriber::reload::Handle<EnvFilter, Registry>;

/// Set once by [`init`].
static FILTER: OnceLock<FilterHandle> = OnceLock::new();

/// Installs the global subscriber described by `config` (its `log_level` was validated already, and
/// `RUST_LOG` was folded in by `config::load`, so this reads no environment variable). The filter
/// sits behind a reload layer so that [`set_level`] can change it while the server runs.
pub fn init(config: &Config) -> anyhow::Result<()> {
    let filter = crate::config::log_filter(&capped(&config.log_level))?;
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    // Colours only for a person at a terminal, never into a file or a journal.
    let ansi = std::io::stderr().is_terminal();
    let format = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let format = match config.log_format {
        LogFormat::Json => format.json().boxed(),
        LogFormat::Pretty => format.boxed(),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(format)
        .try_init()
        .map_err(|error| anyhow::anyhow!("cannot install the logger: {error}"))?;
    let _ = FILTER.set(handle);
    Ok(())
}

/// Replaces the filter of the running subscriber with `log_level` (validated), capped as at
/// start. Callsites re-evaluate their interest at once.
pub fn set_level(log_level: &str) -> anyhow::Result<()> {
    let filter = crate::config::log_filter(&capped(log_level))?;
    let handle = FILTER
        .get()
        .ok_or_else(|| anyhow::anyhow!("the logger is not installed"))?;
    handle
        .reload(filter)
        .map_err(|error| anyhow::anyhow!("cannot change the log level: {error}"))
}

/// `filter` rewritten so that only Turnpike's crates go below [`LIBRARY_CAP`]: a bare level
/// becomes one directive per own crate, a directive for one of them is kept as written, and a
/// directive for any other target is dropped. A directive's target is what precedes `[` or `=`
/// (or the whole directive, which then is a bare level or a target at every level).
fn capped(filter: &str) -> String {
    let is_own = |target: &str| {
        OWN_CRATES
            .iter()
            .any(|own| target == *own || target.starts_with(&format!("{own}::")))
    };
    let mut directives = vec![LIBRARY_CAP.to_owned()];
    for directive in filter.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let target = directive
            .split(['[', '='])
            .next()
            .unwrap_or_default()
            .trim();
        if directive
            .parse::<tracing_subscriber::filter::LevelFilter>()
            .is_ok()
        {
            directives.extend(OWN_CRATES.iter().map(|own| format!("{own}={directive}")));
        } else if is_own(target) {
            directives.push(directive.to_owned());
        }
    }
    directives.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_turnpike_crates_follow_the_level() {
        let filter = capped("trace,tungstenite=trace,turnpike::http=debug, hyper::proto[x]=trace");
        assert_eq!(
            filter,
            "warn,turnpike=trace,stun=trace,turn=trace,ice=trace,signal=trace,net=trace,\
             turnpike::http=debug"
        );
        assert!(crate::config::log_filter(&filter).is_ok());
        // A bare target directive (every level) of a library is dropped too.
        assert_eq!(capped("info,rustls"), capped("info"));
        // A later dependency nobody listed is capped as well.
        assert!(!capped("some_new_crate=trace").contains("some_new_crate"));
        // Prefixes of own names are not own crates.
        assert!(!capped("turnpikefake=trace").contains("turnpikefake"));
    }
}
