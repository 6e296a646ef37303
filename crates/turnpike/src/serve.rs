//! `turnpike serve`: binds the listeners and drives the server core. (Being written.)
use crate::config::Config;

/// Runs the server until SIGINT/SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let _ = config;
    anyhow::bail!("serve: not wired yet")
}
