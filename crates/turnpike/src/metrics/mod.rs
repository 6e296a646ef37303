//! Prometheus metrics (docs/operations.md, "Metrics"): `GET /metrics` in the OpenMetrics text
//! format of `prometheus-client`, on the `metrics-listen` address (loopback by default) and,
//! with `metrics-on-http`, on the HTTP listeners too.
//!
//! Nothing on the relay path touches this module. The TURN counters are plain integers in
//! each worker's core, and the I/O drop counters single-writer cells in each worker; a
//! scrape takes each worker's (otherwise uncontended) lock in turn, copies its counters and
//! sums them ([`turn`]). The other sources — TCP/TLS connections, the signaling hub, HTTP
//! requests, `/proc/self` — are read or counted off the data path.

mod cluster;
pub mod connections;
mod encode;
pub mod http_requests;
pub mod io;
mod process;
mod signaling;
mod turn;
mod xdp;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use crate::cluster::fleet::FleetView;

use anyhow::Context;
use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tracing::info;

use crate::http::Signaling;
use crate::server::worker::WorkerHandle;
use connections::ConnectionCounters;
use http_requests::HttpRequests;

/// The media type of the OpenMetrics text exposition.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The path served.
pub const PATH: &str = "/metrics";

/// The server's metrics: the registry, and the sources it reads, filled in as the parts of
/// the server start.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    turn: Arc<turn::TurnSources>,
    signaling: Arc<OnceLock<Arc<Signaling>>>,
    /// The cluster's nodes as last read (empty without a cluster).
    fleet: FleetView,
    /// TCP/TLS connection counts of the stream listeners.
    pub connections: Arc<ConnectionCounters>,
    /// HTTP requests, counted by the HTTP router's middleware.
    pub http_requests: HttpRequests,
    /// DTLS handshakes and sessions of the DTLS listeners.
    pub dtls: Arc<crate::server::dtls::DtlsCounters>,
    /// The kernel fast path, once attached.
    kernel: Arc<OnceLock<Arc<crate::server::kernel_path::KernelPath>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every collector; sources not yet set write nothing.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let turn = Arc::new(turn::TurnSources::default());
        let signaling = Arc::new(OnceLock::new());
        let connections = Arc::new(ConnectionCounters::default());
        let http_requests = HttpRequests::default();
        registry.register_collector(Box::new(turn::TurnCollector(turn.clone())));
        registry.register_collector(Box::new(StreamCollector(connections.clone())));
        let dtls = Arc::new(crate::server::dtls::DtlsCounters::default());
        registry.register_collector(Box::new(DtlsCollector(dtls.clone())));
        registry.register_collector(Box::new(signaling::SignalingCollector(signaling.clone())));
        let fleet = FleetView::default();
        registry.register_collector(Box::new(cluster::ClusterCollector(fleet.clone())));
        registry.register(
            "turnpike_http_requests",
            // The registry adds the final period.
            "HTTP requests, by route pattern and status",
            http_requests.clone(),
        );
        registry.register_collector(Box::new(process::ProcessCollector));
        let kernel = Arc::new(OnceLock::new());
        registry.register_collector(Box::new(xdp::XdpCollector {
            path: kernel.clone(),
            turn: turn.clone(),
        }));
        Metrics {
            kernel,
            registry,
            turn,
            signaling,
            fleet,
            connections,
            http_requests,
            dtls,
        }
    }

    /// The workers are running: their counters are scraped from now on.
    pub fn set_workers(
        &self,
        workers: Arc<[WorkerHandle]>,
        shared: Arc<::turn::relay::SharedState>,
    ) {
        let _ = self.turn.workers.set(workers);
        let _ = self.turn.shared.set(shared);
    }

    /// The fleet view the cluster's heartbeat updates (and the ICE server list reads).
    pub fn fleet(&self) -> FleetView {
        self.fleet.clone()
    }

    /// The kernel fast path is attached: its counters are scraped from now on.
    pub fn set_kernel_path(&self, path: Option<Arc<crate::server::kernel_path::KernelPath>>) {
        if let Some(path) = path {
            let _ = self.kernel.set(path);
        }
    }

    /// The signaling hub is running.
    pub fn set_signaling(&self, signaling: Arc<Signaling>) {
        let _ = self.signaling.set(signaling);
    }

    /// The text exposition, now.
    pub fn render(&self) -> String {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            // Writing into a String cannot fail; an encoder error would be a bug in a collector.
            text.clear();
        }
        text
    }

    /// `GET /metrics` as a router, to serve alone or merge into the HTTP router.
    pub fn router(self: &Arc<Self>) -> Router {
        let metrics = self.clone();
        Router::new().route(
            PATH,
            get(move || {
                let metrics = metrics.clone();
                async move {
                    let content_type = HeaderValue::from_static(CONTENT_TYPE);
                    ([(header::CONTENT_TYPE, content_type)], metrics.render()).into_response()
                }
            }),
        )
    }
}

/// Binds `metrics-listen`, when set: before "ready", so that a port in use fails the start.
pub fn bind(address: Option<SocketAddr>) -> anyhow::Result<Option<TcpListener>> {
    let Some(address) = address else {
        return Ok(None);
    };
    let listener =
        net::bind_tcp(address).with_context(|| format!("binding metrics-listen {address}"))?;
    let listener = TcpListener::from_std(listener)
        .with_context(|| format!("registering metrics-listen {address}"))?;
    Ok(Some(listener))
}

/// Starts serving `GET /metrics` on `listener` as a task of `tasks`; logs `listening`.
pub fn spawn(
    listener: TcpListener,
    metrics: &Arc<Metrics>,
    tasks: &mut tokio::task::JoinSet<anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let address = listener.local_addr()?;
    info!(address = %address, transport = "metrics", "listening");
    tasks.spawn(crate::http::plain::serve(
        listener,
        metrics.router(),
        "metrics",
    ));
    Ok(())
}

/// TCP/TLS connections of the STUN/TURN stream listeners.
#[derive(Debug)]
struct StreamCollector(Arc<ConnectionCounters>);

impl prometheus_client::collector::Collector for StreamCollector {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder<'_>,
    ) -> std::fmt::Result {
        let snapshots = [
            ("tcp", self.0.snapshot(false)),
            ("tls", self.0.snapshot(true)),
        ];
        let e = &mut encoder;
        encode::gauges(
            e,
            "turnpike_stream_connections",
            "STUN/TURN TCP and TLS connections open now.",
            snapshots.map(|(t, s)| ([("transport", t)], s.open)),
        )?;
        encode::counters(
            e,
            "turnpike_stream_connections_accepted",
            "STUN/TURN TCP and TLS connections accepted.",
            snapshots.map(|(t, s)| ([("transport", t)], s.accepted)),
        )?;
        encode::counters(
            e,
            "turnpike_stream_connections_refused",
            "STUN/TURN TCP and TLS connections refused, by reason (per_ip: \
             max-tcp-connections-per-ip, limit: max-tcp-connections).",
            snapshots.iter().flat_map(|(t, s)| {
                [
                    ([("transport", *t), ("reason", "per_ip")], s.refused_per_ip),
                    ([("transport", *t), ("reason", "limit")], s.refused_limit),
                ]
            }),
        )
    }
}

/// DTLS handshakes and sessions of the DTLS listeners (RFC 7350).
#[derive(Debug)]
struct DtlsCollector(Arc<crate::server::dtls::DtlsCounters>);

impl prometheus_client::collector::Collector for DtlsCollector {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder<'_>,
    ) -> std::fmt::Result {
        let s = self.0.snapshot();
        let e = &mut encoder;
        let none: [(&str, &str); 0] = [];
        encode::gauges(
            e,
            "turnpike_dtls_sessions",
            "STUN/TURN DTLS sessions open now (handshaking or established).",
            [(none, s.open)],
        )?;
        encode::counters(
            e,
            "turnpike_dtls_sessions_accepted",
            "DTLS sessions opened: ClientHellos that returned a valid cookie.",
            [(none, s.accepted)],
        )?;
        encode::counters(
            e,
            "turnpike_dtls_sessions_refused",
            "Valid DTLS ClientHellos dropped at the session cap (max-tcp-connections).",
            [(none, s.refused)],
        )?;
        encode::counters(
            e,
            "turnpike_dtls_hello_verify_requests",
            "ClientHellos answered with a HelloVerifyRequest, keeping no state.",
            [(none, s.hello_verify)],
        )?;
        encode::counters(
            e,
            "turnpike_dtls_dropped_datagrams",
            "DTLS datagrams dropped by the listener or a session, by cause.",
            crate::server::dtls::DtlsDrop::ALL
                .iter()
                .zip(s.dropped)
                .map(|(cause, n)| ([("cause", cause.as_str())], n)),
        )
    }
}
