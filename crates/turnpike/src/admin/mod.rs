//! The admin API of `turnpike serve` and the `turnpike admin` command that calls it.
//!
//! Off unless `admin-token` is set; then served on its own listener, `admin-listen`
//! (loopback by default), so that it is never public by accident. Every request needs
//! `Authorization: Bearer TOKEN` ([`bearer`]). JSON in and out:
//!
//! | route | what |
//! |---|---|
//! | `GET /v1/info` | version, uptime, workers, allocations, draining |
//! | `GET /v1/sessions` | every allocation: user, 5-tuple, relay addresses, age, traffic |
//! | `POST /v1/kick` | `{"user": U}` or `{"client": "IP:PORT"}`: ends those allocations |
//! | `POST /v1/drain` | begins a drain (as SIGTERM does) |
//! | `POST /v1/reload` | reloads the configuration (as SIGHUP does); 422 with the problems |

mod api;
mod bearer;
pub mod command;
mod wire;

use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tracing::info;

use crate::config::Config;
use crate::control::Control;

/// Binds the admin listener when `admin-token` is set (before "ready": a port in use fails
/// the start).
pub fn bind(config: &Config) -> anyhow::Result<Option<TcpListener>> {
    if config.admin_token.is_none() {
        return Ok(None);
    }
    let addr = config.admin_listen;
    let listener = net::bind_tcp(addr).with_context(|| format!("binding admin {addr}"))?;
    let listener =
        TcpListener::from_std(listener).with_context(|| format!("registering admin {addr}"))?;
    Ok(Some(listener))
}

/// Serves the admin API on `listener` as a task of `tasks`.
pub fn spawn(
    config: &Config,
    listener: Option<TcpListener>,
    control: Arc<Control>,
    tasks: &mut JoinSet<anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let (Some(listener), Some(token)) = (listener, &config.admin_token) else {
        return Ok(());
    };
    let addr = listener.local_addr()?;
    info!(address = %addr, transport = "admin", "listening");
    let router = api::router(control, bearer::Token::new(token.expose()));
    // The request-head deadline of the other listeners: a local client trickling its headers
    // cannot hold admin connections either.
    tasks.spawn(crate::http::plain::serve(listener, router, "admin"));
    Ok(())
}
