//! The HTTP server of `turnpike serve` (docs/http.md): the signaling WebSocket, the ICE server
//! API, a health check and the embedded web pages, on the `http-listen` addresses, and over TLS
//! on the `https-listen` addresses.
//!
//! | route | what |
//! |---|---|
//! | `GET /ws` | signaling WebSocket ([`ws`]); `Origin` checked against `allowed-origins` ([`origin`]) |
//! | `GET /api/ice-servers` | `{"iceServers": [...], "iceTtl": N}`, with a TURN REST credential for an authorised caller ([`credentials`], [`mod@ice_servers`]) |
//! | `GET /healthz` | `ok`; 503 `draining` once a drain has begun ([`crate::control`]); with a cluster whose Redis is away, `degraded: …` |
//! | `GET /`, `/room/{name}`, `/diagnostics`, `/static/{file}` | the pages of `web/` ([`pages`]) |
//!
//! Listeners are bound by [`bind`] before the server says "ready" (a port in use fails the
//! start), and run by [`spawn`] as tasks of the server's `JoinSet`.

pub mod credentials;
pub mod ice_servers;
mod issue_rate;
mod limited_listener;
pub mod origin;
mod pages;
pub mod plain;
mod ws;
mod ws_cluster;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use anyhow::Context;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::Query;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use signal::HubConfig;

use self::ws_cluster::{ClusterSide, RemoteIce};
use crate::cluster::fleet::FleetView;
use crate::cluster::Cluster;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tracing::{info, warn};

use crate::config::Config;
use crate::metrics::Metrics;
use crate::tls::Certificates;
use credentials::{Caller, Credentials, Decision, Issuing};
pub use ice_servers::MintingSecret;
use ice_servers::{host_of_header, IceSettings};
use issue_rate::IssueRate;
use limited_listener::{ConnectionCaps, LimitedListener};
use origin::AllowedOrigins;
pub use ws::Signaling;

/// Bytes a WebSocket message may exceed `max-message-bytes` by and still reach the hub, which
/// answers `too-large` and keeps the connection; beyond it the WebSocket layer closes the
/// connection (1009, message too big).
const MESSAGE_SLACK_BYTES: usize = 16 * 1024;

/// How long a client may take to send a request's head (request line and headers).
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Initial read buffer of a WebSocket connection.
const WS_READ_BUFFER: usize = 4 * 1024;

/// What the handlers share.
#[derive(Debug, Clone)]
struct App {
    /// The signaling hub.
    signaling: Arc<Signaling>,
    /// How ICE server lists are made, and who gets TURN credentials.
    credentials: Arc<Credentials>,
    /// Who may open the WebSocket.
    origins: Arc<AllowedOrigins>,
    /// Largest WebSocket message accepted by the WebSocket layer.
    max_ws_message: usize,
    /// Draining or not, for `/healthz`.
    health: crate::control::Health,
    /// Connected to the cluster's Redis or not, for `/healthz`.
    cluster: Option<Arc<Cluster>>,
}

/// The two ends of an HTTP connection.
#[derive(Debug, Clone, Copy)]
struct Endpoints {
    /// This server's address (the fallback host of the ICE URLs).
    local: SocketAddr,
    /// The client's address (logged at debug only; decides who gets TURN credentials).
    remote: SocketAddr,
}

/// The ports of the STUN/TURN listeners as bound, for the ICE server URLs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TurnPorts {
    /// The port of the first `listen` address, when UDP or TCP is served.
    pub listen: Option<u16>,
    /// The port of the first TLS listener, when TLS is on.
    pub tls: Option<u16>,
}

/// The bound HTTP and HTTPS listeners, not yet serving.
#[derive(Debug, Default)]
pub struct Listeners {
    /// The `http-listen` addresses.
    plain: Vec<TcpListener>,
    /// The `https-listen` addresses.
    tls: Vec<TcpListener>,
}

impl Listeners {
    /// The local addresses of every listener, HTTP and HTTPS.
    /// The addresses bound, plain and TLS.
    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.plain
            .iter()
            .chain(&self.tls)
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }
}

/// Binds the `http-listen` and `https-listen` addresses; none when `http` is off.
pub fn bind(config: &Config) -> anyhow::Result<Listeners> {
    if !config.http {
        return Ok(Listeners::default());
    }
    let bind_all = |addresses: &[SocketAddr], what: &str| {
        addresses
            .iter()
            .map(|&addr| {
                let listener =
                    net::bind_tcp(addr).with_context(|| format!("binding {what} {addr}"))?;
                TcpListener::from_std(listener)
                    .with_context(|| format!("registering {what} {addr}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()
    };
    let https: &[SocketAddr] = match config.https {
        Some(_) => &config.https_listen,
        None => &[],
    };
    Ok(Listeners {
        plain: bind_all(&config.http_listen, "HTTP")?,
        tls: bind_all(https, "HTTPS")?,
    })
}

/// The ports of `addresses` (bound listeners): service ports the relay must never reach.
pub fn ports(addresses: &[SocketAddr]) -> Vec<u16> {
    addresses.iter().map(|a| a.port()).collect()
}

/// The addresses the HTTP listeners answer on, which peers may not reach through the relay:
/// their specific IPs, and every interface address of a family with a wildcard listener.
pub fn own_ips(addresses: &[SocketAddr]) -> Vec<IpAddr> {
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

/// The running HTTP server, as shutdown needs it.
#[derive(Debug, Clone)]
pub struct HttpServer {
    signaling: Arc<Signaling>,
}

impl HttpServer {
    /// The signaling service (the cluster delivers other nodes' messages to it).
    pub fn signaling(&self) -> Arc<Signaling> {
        self.signaling.clone()
    }

    /// Closes every signaling WebSocket with 1001 "going away" and waits (briefly) for the
    /// close frames to leave: call before stopping the tasks.
    pub async fn going_away(&self) {
        self.signaling.going_away().await;
    }
}

/// What the HTTP app shares with the rest of the server.
pub struct Shared<'a> {
    /// `https` is what HTTPS handshakes present.
    pub certificates: &'a Certificates,
    /// The STUN/TURN ports as bound, for the ICE server URLs.
    pub ports: TurnPorts,
    /// Mints the TURN credentials (none: TURN is off, or no REST credentials); a reload
    /// replaces it.
    pub rest_secret: MintingSecret,
    /// Whether the server drains (`/healthz` 503).
    pub health: crate::control::Health,
    /// The registry `/metrics` serves and the HTTP request counters.
    pub metrics: &'a Arc<Metrics>,
    /// The cluster whose rooms span nodes; `None`: this node alone.
    pub cluster: Option<Arc<Cluster>>,
    /// The fleet's nodes whose TURN URLs are handed out (empty: this node's own).
    pub fleet: FleetView,
}

/// Starts the signaling timer and one server task per listener; logs `listening` for each.
/// `None` when there is no listener.
pub fn spawn(
    config: &Config,
    listeners: Listeners,
    shared: Shared<'_>,
    tasks: &mut JoinSet<anyhow::Result<()>>,
) -> anyhow::Result<Option<HttpServer>> {
    let Shared {
        certificates,
        ports,
        rest_secret,
        health,
        metrics,
        cluster,
        fleet,
    } = shared;
    if listeners.plain.is_empty() && listeners.tls.is_empty() {
        return Ok(None);
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
        resume_grace: config.resume_grace,
        ..HubConfig::default()
    };
    let ice = IceSettings {
        host: config.ice_host.clone(),
        port: ports.listen,
        udp: config.udp,
        tcp: config.tcp,
        tls_port: ports.tls,
        secret: rest_secret,
        ttl: config.ice_ttl,
        fleet,
    };
    let credentials = Arc::new(Credentials {
        issuing: issuing(config, ice.turn()),
        settings: ice,
        rate: IssueRate::new(config.credential_rate, issue_rate::MAX_SOURCES),
    });
    let side = cluster.clone().map(|cluster| {
        let credentials = credentials.clone();
        let ice: RemoteIce = Arc::new(move |caller, host| credentials.ice_source(caller, host));
        ClusterSide { cluster, ice }
    });
    let signaling = Arc::new(Signaling::new(hub, side));
    let app = App {
        signaling: signaling.clone(),
        cluster,
        credentials,
        origins: Arc::new(AllowedOrigins::new(config.allowed_origins.clone())),
        max_ws_message: config.max_message_bytes + MESSAGE_SLACK_BYTES,
        health,
    };
    let signaling_handle = signaling.clone();
    metrics.set_signaling(signaling.clone());
    tasks.spawn(async move {
        signaling.run_timers().await;
        Ok(())
    });
    let router = with_metrics(router(app), metrics, config.metrics_on_http);
    // One cap for all HTTP and HTTPS listeners: page loads, API calls and WebSockets together.
    let caps = ConnectionCaps::new(config.max_tcp_connections, config.http_per_ip_cap());
    let acceptor = match (&certificates.https, listeners.tls.is_empty()) {
        (Some(store), false) => Some(store.acceptor(&[b"http/1.1"])?),
        (None, false) => anyhow::bail!("https-listen without a certificate"),
        (_, true) => None,
    };
    let plain = listeners.plain.into_iter().map(|l| (l, None));
    let tls = listeners.tls.into_iter().map(|l| (l, acceptor.clone()));
    for (listener, tls) in plain.chain(tls) {
        let addr = listener.local_addr()?;
        let transport = if tls.is_some() { "https" } else { "http" };
        info!(address = %addr, transport, "listening");
        let listener = LimitedListener::new(listener, caps.clone(), config.tcp_idle_timeout);
        tasks.spawn(serve(listener, tls, router.clone()));
    }
    Ok(Some(HttpServer {
        signaling: signaling_handle,
    }))
}

/// Serves HTTP/1.1 on `listener` for ever, over TLS when `tls` is given: one task per
/// connection, each request given the connection's [`Endpoints`]. A client must send a
/// request's whole head within [`HEADER_READ_TIMEOUT`] (measured from when the server starts
/// waiting for it, so an idle keep-alive connection is closed after it too): trickling headers
/// cannot hold a connection. Over TLS the handshake must finish within the same time first, so
/// a client that stalls in the handshake is dropped as surely as one that stalls in its
/// headers. (`axum::serve` sets no header deadline, hence this loop.)
async fn serve(
    mut listener: LimitedListener,
    tls: Option<TlsAcceptor>,
    router: Router,
) -> anyhow::Result<()> {
    loop {
        let (stream, remote) = listener.accept().await;
        let endpoints = Endpoints {
            local: stream.local_addr().unwrap_or(remote),
            remote,
        };
        let router = router.clone();
        let Some(acceptor) = tls.clone() else {
            tokio::spawn(serve_connection(stream, endpoints, router));
            continue;
        };
        // The handshake runs in the connection's task: a slow client must not hold up accept.
        tokio::spawn(async move {
            match tokio::time::timeout(HEADER_READ_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => serve_connection(stream, endpoints, router).await,
                // Debug only: the client decides how often these happen.
                Ok(Err(error)) => tracing::debug!(%remote, %error, "TLS handshake failed"),
                Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
            }
        });
    }
}

/// Serves the requests of one connection (plain or TLS) until it ends.
async fn serve_connection<S>(stream: S, endpoints: Endpoints, router: Router)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    use tower::ServiceExt as _;
    let service = hyper::service::service_fn(
        move |mut request: axum::http::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ConnectInfo(endpoints));
            router.clone().oneshot(request)
        },
    );
    let served = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
        .with_upgrades()
        .await;
    if let Err(error) = served {
        tracing::debug!(remote = %endpoints.remote, %error, "HTTP connection ended");
    }
}

/// Who gets TURN credentials over HTTP; logs the choice when credentials can be minted.
fn issuing(config: &Config, turn: bool) -> Issuing {
    if let Some(secret) = &config.signaling_secret {
        if turn {
            info!("TURN credentials over HTTP go to callers with a valid join token");
        }
        return Issuing::Tokens(secret.expose().as_bytes().to_vec());
    }
    if config.open_credentials {
        if turn {
            warn!(
                "open-credentials = true and no signaling-secret: anyone who can reach HTTP can \
                 use the relay (TURN credentials are handed to every caller)"
            );
        }
        return Issuing::Anyone;
    }
    if turn {
        info!(
            "no signaling-secret: TURN credentials over HTTP go to local callers only (loopback, \
             no proxy header); set signaling-secret to serve others"
        );
    }
    Issuing::LocalCallers
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

/// The routes with `GET /metrics` added when `on_http`, every request counted.
fn with_metrics(router: Router, metrics: &Arc<Metrics>, on_http: bool) -> Router {
    let router = if on_http {
        router.merge(metrics.router())
    } else {
        router
    };
    router.layer(axum::middleware::from_fn_with_state(
        metrics.http_requests.clone(),
        crate::metrics::http_requests::count,
    ))
}

/// `GET /ws`: 403 for an `Origin` not on the allow-list, else the upgrade to the hub.
async fn websocket(
    State(app): State<App>,
    ConnectInfo(endpoints): ConnectInfo<Endpoints>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if app.health.draining() {
        // The drain closed every WebSocket with 1001 at its start: a client reconnecting is
        // sent to another server (a load balancer retries on 503, as `/healthz` told it).
        return (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response();
    }
    let origin = headers.get(header::ORIGIN).map(HeaderValue::as_bytes);
    if !app.origins.allows(origin) {
        tracing::debug!(remote = %endpoints.remote, "WebSocket origin not allowed");
        return (StatusCode::FORBIDDEN, "origin not allowed\n").into_response();
    }
    let host = app
        .credentials
        .settings
        .url_host(&request_host(&headers, endpoints.local));
    let caller = Caller::of(endpoints.remote, &headers);
    let ice = app.credentials.ice_source(caller, host.clone());
    let signaling = app.signaling.clone();
    upgrade
        // Signaling frames are small; the WebSocket library's default 128 KiB read buffer
        // stayed resident per connection (138 KiB per idle peer, measured in
        // docs/benchmarks.md). It grows on demand for a larger frame.
        .read_buffer_size(WS_READ_BUFFER)
        .max_message_size(app.max_ws_message)
        .max_frame_size(app.max_ws_message)
        .on_upgrade(move |socket| signaling.serve(socket, endpoints.remote, ice, (caller, host)))
}

/// The `?token=` of `GET /api/ice-servers`.
#[derive(serde::Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// `GET /api/ice-servers`: never cached, since the credentials expire. 401 for a missing or
/// bad token when tokens are required, 429 when the caller had its share of credentials.
async fn ice_servers(
    State(app): State<App>,
    ConnectInfo(endpoints): ConnectInfo<Endpoints>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let credentials = &app.credentials;
    let host = credentials
        .settings
        .url_host(&request_host(&headers, endpoints.local));
    let token = bearer_token(&headers).or_else(|| {
        Query::<TokenQuery>::try_from_uri(&uri)
            .ok()
            .and_then(|q| q.0.token)
    });
    let caller = Caller::of(endpoints.remote, &headers);
    let (now, unix_now) = crate::server::worker_state::now();
    let lease = match credentials.for_request(caller, token.as_deref(), unix_now, now) {
        Decision::Credential(lease) => Some(lease),
        Decision::StunOnly => None,
        Decision::Unauthorized(why) => {
            tracing::debug!(remote = %endpoints.remote, %why, "ICE servers refused: bad token");
            let message = match token {
                None => "a join token is needed: `Authorization: Bearer TOKEN` or `?token=TOKEN`"
                    .to_owned(),
                Some(_) => format!("a valid join token is needed ({why})"),
            };
            let body = serde_json::json!({ "error": "unauthorized", "message": message });
            let challenge = (header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return (StatusCode::UNAUTHORIZED, [challenge], Json(body)).into_response();
        }
        Decision::Limited(wait) => {
            tracing::debug!(source = %caller.source, "ICE servers refused: rate limited");
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let body = serde_json::json!({
                "error": "rate-limited",
                "message": format!("too many credentials for this source; retry in {secs} s"),
            });
            let retry = (header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
            return (StatusCode::TOO_MANY_REQUESTS, [retry], Json(body)).into_response();
        }
    };
    let body = credentials
        .settings
        .document(&host, lease.as_ref(), unix_now);
    let headers = [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ];
    (headers, Json(body)).into_response()
}

/// The token of an `Authorization: Bearer TOKEN` header (RFC 6750 §2.1).
fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

/// `GET /healthz`: `ok`, or 503 `draining` once a drain has begun, so that a load balancer
/// stops sending new clients at once.
async fn healthz(State(app): State<App>) -> Response {
    if app.health.draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining").into_response()
    } else if app.cluster.as_ref().is_some_and(|cluster| !cluster.is_up()) {
        // Still serving (rooms are local until Redis is back), so not a 503: a load
        // balancer that took every such node out would take the whole fleet out with Redis.
        "degraded: cluster Redis unreachable".into_response()
    } else {
        "ok".into_response()
    }
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
