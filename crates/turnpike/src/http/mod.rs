//! The HTTP server of `turnpike serve` (docs/http.md): the signaling WebSocket, the ICE server
//! API, a health check and the embedded web pages, on the `http-listen` addresses.
//!
//! | route | what |
//! |---|---|
//! | `GET /ws` | signaling WebSocket ([`ws`]); `Origin` checked against `allowed-origins` ([`origin`]) |
//! | `GET /api/ice-servers` | `{"iceServers": [...], "iceTtl": N}` with TURN REST credentials ([`mod@ice_servers`]) |
//! | `GET /healthz` | `ok` |
//! | `GET /`, `/room/{name}`, `/diagnostics`, `/static/{file}` | the pages of `web/` ([`pages`]) |
//!
//! Listeners are bound by [`bind`] before the server says "ready" (a port in use fails the
//! start), and run by [`spawn`] as tasks of the server's `JoinSet`.

pub mod ice_servers;
mod limited_listener;
pub mod origin;
mod pages;
mod ws;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use axum::extract::connect_info::Connected;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::IncomingStream;
use axum::{Json, Router};
use signal::HubConfig;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tracing::info;

use crate::config::Config;
use ice_servers::{host_of_header, IceSettings};
use limited_listener::LimitedListener;
use origin::AllowedOrigins;
use ws::Signaling;

/// Bytes a WebSocket message may exceed `max-message-bytes` by and still reach the hub, which
/// answers `too-large` and keeps the connection; beyond it the WebSocket layer closes the
/// connection (1009, message too big).
const MESSAGE_SLACK_BYTES: usize = 16 * 1024;

/// Initial read buffer of a WebSocket connection.
const WS_READ_BUFFER: usize = 4 * 1024;

/// What the handlers share.
#[derive(Debug, Clone)]
struct App {
    /// The signaling hub.
    signaling: Arc<Signaling>,
    /// How ICE server lists are made.
    ice: Arc<IceSettings>,
    /// Who may open the WebSocket.
    origins: Arc<AllowedOrigins>,
    /// Largest WebSocket message accepted by the WebSocket layer.
    max_ws_message: usize,
}

/// The two ends of an HTTP connection.
#[derive(Debug, Clone, Copy)]
struct Endpoints {
    /// This server's address (the fallback host of the ICE URLs).
    local: SocketAddr,
    /// The client's address (logged at debug only).
    remote: SocketAddr,
}

impl Connected<IncomingStream<'_, LimitedListener>> for Endpoints {
    fn connect_info(stream: IncomingStream<'_, LimitedListener>) -> Self {
        let remote = *stream.remote_addr();
        Endpoints {
            local: stream.io().local_addr().unwrap_or(remote),
            remote,
        }
    }
}

/// The ports of the STUN/TURN listeners as bound, for the ICE server URLs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TurnPorts {
    /// The port of the first `listen` address, when UDP or TCP is served.
    pub listen: Option<u16>,
    /// The port of the first TLS listener, when TLS is on.
    pub tls: Option<u16>,
}

/// Binds the `http-listen` addresses; none when `http` is off.
pub fn bind(config: &Config) -> anyhow::Result<Vec<TcpListener>> {
    if !config.http {
        return Ok(Vec::new());
    }
    config
        .http_listen
        .iter()
        .map(|&addr| {
            let listener = net::bind_tcp(addr).with_context(|| format!("binding HTTP {addr}"))?;
            TcpListener::from_std(listener).with_context(|| format!("registering HTTP {addr}"))
        })
        .collect()
}

/// The bound ports of `listeners`: service ports the relay must never reach.
pub fn ports(listeners: &[TcpListener]) -> Vec<u16> {
    listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .map(|a| a.port())
        .collect()
}

/// The addresses the HTTP listeners answer on, which peers may not reach through the relay:
/// their specific IPs, and every interface address of a family with a wildcard listener.
pub fn own_ips(listeners: &[TcpListener]) -> Vec<IpAddr> {
    let addresses: Vec<SocketAddr> = listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .collect();
    let mut ips: Vec<IpAddr> = addresses
        .iter()
        .map(SocketAddr::ip)
        .filter(|ip| !ip.is_unspecified())
        .collect();
    let wildcard = |v4: bool| {
        addresses
            .iter()
            .any(|a| a.ip().is_unspecified() && a.ip().is_ipv4() == v4)
    };
    if wildcard(true) || wildcard(false) {
        let interfaces = if_addrs::get_if_addrs().unwrap_or_default();
        ips.extend(
            interfaces
                .iter()
                .map(if_addrs::Interface::ip)
                .filter(|ip| wildcard(ip.is_ipv4())),
        );
    }
    ips
}

/// Starts the signaling timer and one server task per listener; logs `listening` for each.
/// `rest_secret` mints the TURN credentials (`None`: TURN is off).
pub fn spawn(
    config: &Config,
    listeners: Vec<TcpListener>,
    ports: TurnPorts,
    rest_secret: Option<String>,
    tasks: &mut JoinSet<anyhow::Result<()>>,
) -> anyhow::Result<()> {
    if listeners.is_empty() {
        return Ok(());
    }
    let hub = HubConfig {
        room_capacity: config.room_capacity,
        max_message_bytes: config.max_message_bytes,
        message_rate: config.message_rate,
        message_burst: config.message_rate.saturating_mul(2),
        token_secret: config
            .signaling_secret
            .as_ref()
            .map(|secret| secret.expose().as_bytes().to_vec()),
        ..HubConfig::default()
    };
    let signaling = Arc::new(Signaling::new(hub));
    let ice = IceSettings {
        host: config.ice_host.clone(),
        port: ports.listen,
        udp: config.udp,
        tcp: config.tcp,
        tls_port: ports.tls,
        secret: rest_secret,
        ttl: config.ice_ttl,
    };
    let app = App {
        signaling: signaling.clone(),
        ice: Arc::new(ice),
        origins: Arc::new(AllowedOrigins::new(config.allowed_origins.clone())),
        max_ws_message: config.max_message_bytes + MESSAGE_SLACK_BYTES,
    };
    tasks.spawn(async move {
        signaling.run_timers().await;
        Ok(())
    });
    let router = router(app);
    // One cap for all HTTP listeners: page loads, API calls and WebSockets together.
    let permits = Arc::new(tokio::sync::Semaphore::new(config.max_tcp_connections));
    for listener in listeners {
        let addr = listener.local_addr()?;
        info!(address = %addr, transport = "http", "listening");
        let permits = permits.clone();
        let idle = config.tcp_idle_timeout;
        let service = router
            .clone()
            .into_make_service_with_connect_info::<Endpoints>();
        tasks.spawn(async move {
            axum::serve(LimitedListener::new(listener, permits, idle), service)
                .await
                .with_context(|| format!("HTTP listener {addr}"))
        });
    }
    Ok(())
}

/// The routes; anything else is 404.
fn router(app: App) -> Router {
    Router::new()
        .route("/ws", get(websocket))
        .route("/api/ice-servers", get(ice_servers))
        .route("/healthz", get(healthz))
        .route("/", get(pages::index))
        .route("/room/{name}", get(pages::room))
        .route("/diagnostics", get(pages::diagnostics))
        .route("/static/{file}", get(pages::static_file))
        .fallback(not_found)
        .with_state(app)
}

/// `GET /ws`: 403 for an `Origin` not on the allow-list, else the upgrade to the hub.
async fn websocket(
    State(app): State<App>,
    ConnectInfo(endpoints): ConnectInfo<Endpoints>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let origin = headers.get(header::ORIGIN).map(HeaderValue::as_bytes);
    if !app.origins.allows(origin) {
        tracing::debug!(remote = %endpoints.remote, "WebSocket origin not allowed");
        return (StatusCode::FORBIDDEN, "origin not allowed\n").into_response();
    }
    let host = app.ice.url_host(&request_host(&headers, endpoints.local));
    let servers = app.ice.servers(&host, unix_now());
    let ttl = app.ice.ttl_secs();
    let signaling = app.signaling.clone();
    upgrade
        // Signaling frames are small; the WebSocket library's default 128 KiB read buffer
        // stayed resident per connection (138 KiB per idle peer, measured in
        // docs/benchmarks.md). It grows on demand for a larger frame.
        .read_buffer_size(WS_READ_BUFFER)
        .max_message_size(app.max_ws_message)
        .max_frame_size(app.max_ws_message)
        .on_upgrade(move |socket| signaling.serve(socket, endpoints.remote, servers, ttl))
}

/// `GET /api/ice-servers`: never cached, since the credentials expire.
async fn ice_servers(
    State(app): State<App>,
    ConnectInfo(endpoints): ConnectInfo<Endpoints>,
    headers: HeaderMap,
) -> Response {
    let host = app.ice.url_host(&request_host(&headers, endpoints.local));
    let body = app.ice.document(&host, unix_now());
    let headers = [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ];
    (headers, Json(body)).into_response()
}

/// `GET /healthz`.
async fn healthz() -> &'static str {
    "ok"
}

/// Unknown paths.
async fn not_found() -> Response {
    pages::not_found()
}

/// The host the client used to reach us: from `Host`, else this end's IP.
fn request_host(headers: &HeaderMap, local: SocketAddr) -> String {
    headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .and_then(host_of_header)
        .unwrap_or_else(|| local.ip().to_string())
}

/// Seconds since the Unix epoch.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
