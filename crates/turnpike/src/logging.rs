//! Logging: `tracing` events to stderr, human-readable or JSON, filtered by the `log-level` key.
//!
//! Logs go to stderr so that stdout stays free for command output (`turnpike stun --json`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};

/// Installs the global subscriber described by `config` (its `log_level` was validated already, and
/// `RUST_LOG` was folded in by `config::load`, so this reads no environment variable).
pub fn init(config: &Config) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&config.log_level)?;
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
