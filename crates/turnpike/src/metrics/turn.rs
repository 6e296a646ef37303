//! The TURN metrics: every worker's core counters ([`turn::relay::TurnStats`],
//! [`turn::auth::AuthStats`]) and I/O drop counters, summed at scrape time under each
//! worker's own lock, held just long enough to copy them; and the relay port pool of
//! [`SharedState`].

use std::fmt;
use std::sync::{Arc, OnceLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use turn::auth::AuthStats;
use turn::relay::stats::{
    Direction, FAMILIES, LIFETIME_BUCKETS, METHODS, RESPONSE_CODES, TRANSPORTS,
};
use turn::relay::{DropCause, SharedState, TurnStats};

use super::encode::{counters, gauge, gauges};
use crate::server::worker::WorkerHandle;

/// What the TURN collector reads: set once the workers run.
#[derive(Debug, Default)]
pub struct TurnSources {
    /// The workers.
    pub workers: OnceLock<Arc<[WorkerHandle]>>,
    /// Relay ports and quotas shared by the workers' cores.
    pub shared: OnceLock<Arc<SharedState>>,
}

/// Everything summed over the workers.
#[derive(Debug, Default)]
struct Totals {
    turn: TurnStats,
    binding: [u64; RESPONSE_CODES.len()],
    auth: AuthStats,
    tracked_sources: usize,
    /// Each worker's own share, to see how `SO_REUSEPORT` spread the clients.
    per_worker: Vec<WorkerShare>,
}

/// One worker's allocations and relayed packets (by [`Direction`]).
#[derive(Debug, Default)]
struct WorkerShare {
    worker: String,
    allocations: u64,
    packets: [u64; 2],
}

impl TurnSources {
    fn totals(&self) -> Totals {
        let mut totals = Totals::default();
        for worker in self.workers.get().into_iter().flat_map(|w| w.iter()) {
            // A scrape runs on the HTTP server's runtime, never on a worker's thread, so it
            // can wait for each worker's loop to answer (within a pass; bounded, see
            // `call_blocking`): the figures are those of the moment, as before the loop
            // owned its core, where a snapshot published on a tick would lag behind what a
            // client just did. A worker that does not answer is left out of this scrape.
            let Some((turn, auth, tracked)) = worker.call_blocking(|state| {
                let core = &state.core;
                (core.stats(), core.auth_stats(), core.tracked_sources())
            }) else {
                continue;
            };
            totals.per_worker.push(WorkerShare {
                worker: worker.index.to_string(),
                allocations: turn.allocation_count(),
                packets: Direction::ALL.map(|d| turn.packets_in(d)),
            });
            totals.turn.add(&turn);
            add_auth(&mut totals.auth, &auth);
            // One table shared by every worker: the same count from each.
            totals.tracked_sources = tracked;
            for (cause, count) in worker.io.drops() {
                totals.turn.drops[cause as usize] += count;
            }
            for (total, count) in totals.binding.iter_mut().zip(worker.io.binding()) {
                *total += count;
            }
        }
        totals
    }
}

fn add_auth(total: &mut AuthStats, more: &AuthStats) {
    total.accepted += more.accepted;
    total.unauthenticated += more.unauthenticated;
    total.bad_request += more.bad_request;
    total.stale_nonce += more.stale_nonce;
    total.wrong_credentials += more.wrong_credentials;
    total.rate_limited += more.rate_limited;
    total.over_budget += more.over_budget;
}

/// The collector.
#[derive(Debug)]
pub struct TurnCollector(pub Arc<TurnSources>);

impl Collector for TurnCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let Totals {
            turn,
            binding,
            auth,
            tracked_sources,
            per_worker,
        } = self.0.totals();
        let e = &mut encoder;
        gauges(
            e,
            "turnpike_build_info",
            "The running build: 1, with the version as a label.",
            [([("version", env!("CARGO_PKG_VERSION"))], 1u64)],
        )?;
        gauge(
            e,
            "turnpike_workers",
            "Worker threads (each with its own TURN core).",
            self.0.workers.get().map_or(0, |w| w.len() as u64),
        )?;
        gauges(
            e,
            "turnpike_allocations",
            "Allocations now, by client transport and relay address family.",
            TRANSPORTS.iter().enumerate().flat_map(|(t, transport)| {
                FAMILIES.iter().enumerate().map(move |(f, family)| {
                    (
                        [("transport", transport.name()), ("family", *family)],
                        turn.allocations[t][f],
                    )
                })
            }),
        )?;
        gauge(
            e,
            "turnpike_permissions",
            "Live permissions, all allocations.",
            turn.permissions,
        )?;
        gauge(
            e,
            "turnpike_channels",
            "Channel bindings, all allocations (including those in their 5-minute cool-down).",
            turn.channels,
        )?;
        gauge(
            e,
            "turnpike_tcp_peer_connections",
            "Peer TCP connections of TCP allocations (RFC 6062): connecting, waiting for their \
             ConnectionBind, or relaying.",
            turn.peer_connections,
        )?;
        lifetimes(e, &turn)?;
        let relayed = |values: [[u64; TRANSPORTS.len()]; 2]| {
            Direction::ALL.into_iter().flat_map(move |direction| {
                TRANSPORTS.iter().enumerate().map(move |(t, transport)| {
                    (
                        [
                            ("direction", direction.as_str()),
                            ("transport", transport.name()),
                        ],
                        values[direction as usize][t],
                    )
                })
            })
        };
        counters(
            e,
            "turnpike_relayed_packets",
            "Packets relayed, by direction and client transport.",
            relayed(turn.packets),
        )?;
        counters(
            e,
            "turnpike_relayed_bytes",
            "Payload bytes relayed (application data, without TURN framing), by direction and \
             client transport.",
            relayed(turn.bytes),
        )?;
        counters(
            e,
            "turnpike_dropped_packets",
            "Datagrams dropped, by cause.",
            DropCause::ALL
                .iter()
                .map(|cause| ([("cause", cause.as_str())], turn.dropped_for(*cause))),
        )?;
        counters(
            e,
            "turnpike_requests",
            "STUN and TURN requests, by method and answer (success, the error code, none: \
             dropped).",
            std::iter::once(("binding", binding))
                .chain(
                    METHODS
                        .iter()
                        .zip(turn.requests)
                        .map(|((_, method), counts)| (*method, counts)),
                )
                .flat_map(|(method, counts)| {
                    RESPONSE_CODES
                        .iter()
                        .zip(counts)
                        .map(move |(code, n)| ([("method", method), ("code", *code)], n))
                }),
        )?;
        counters(
            e,
            "turnpike_auth",
            "Authentication decisions on TURN requests, by outcome.",
            [
                ("accepted", auth.accepted),
                ("unauthenticated", auth.unauthenticated),
                ("bad_request", auth.bad_request),
                ("stale_nonce", auth.stale_nonce),
                ("wrong_credentials", auth.wrong_credentials),
                ("rate_limited", auth.rate_limited),
                ("over_budget", auth.over_budget),
            ]
            .map(|(outcome, n)| ([("outcome", outcome)], n)),
        )?;
        gauge(
            e,
            "turnpike_auth_failing_sources",
            "Sources in the failed-authentication table (recent failures; over auth-failures \
             per minute they are ignored).",
            tracked_sources as u64,
        )?;
        worker_shares(e, &per_worker)?;
        self.ports(e)
    }
}

/// The per-worker series: few (one per worker thread), and what shows an uneven spread.
fn worker_shares(e: &mut DescriptorEncoder<'_>, shares: &[WorkerShare]) -> fmt::Result {
    gauges(
        e,
        "turnpike_worker_allocations",
        "Allocations now, per worker thread.",
        shares
            .iter()
            .map(|s| ([("worker", s.worker.as_str())], s.allocations)),
    )?;
    counters(
        e,
        "turnpike_worker_relayed_packets",
        "Packets relayed, per worker thread and direction.",
        shares.iter().flat_map(|s| {
            Direction::ALL.into_iter().map(move |d| {
                (
                    [("worker", s.worker.as_str()), ("direction", d.as_str())],
                    s.packets[d as usize],
                )
            })
        }),
    )
}

impl TurnCollector {
    /// The relay port pool, per relay IP.
    fn ports(&self, e: &mut DescriptorEncoder<'_>) -> fmt::Result {
        let usage: Vec<(String, u64, u64)> = self
            .0
            .shared
            .get()
            .into_iter()
            .flat_map(|s| s.port_usage())
            .map(|(ip, used, size)| (ip.to_string(), used, size))
            .collect();
        gauges(
            e,
            "turnpike_relay_ports_used",
            "Relay ports taken (allocations and reservations), per relay IP.",
            usage
                .iter()
                .map(|(ip, used, _)| ([("relay_ip", ip.as_str())], *used)),
        )?;
        gauges(
            e,
            "turnpike_relay_ports",
            "Relay ports in the range, per relay IP.",
            usage
                .iter()
                .map(|(ip, _, size)| ([("relay_ip", ip.as_str())], *size)),
        )
    }
}

/// The allocation lifetime histogram, observed as allocations end.
fn lifetimes(e: &mut DescriptorEncoder<'_>, turn: &TurnStats) -> fmt::Result {
    #[derive(Debug)]
    struct Lifetimes<'a>(&'a turn::relay::stats::LifetimeHistogram);
    impl EncodeMetric for Lifetimes<'_> {
        fn encode(
            &self,
            mut encoder: prometheus_client::encoding::MetricEncoder<'_>,
        ) -> fmt::Result {
            let bounds = LIFETIME_BUCKETS.iter().copied().chain([f64::MAX]);
            let buckets: Vec<(f64, u64)> = bounds.zip(self.0.buckets).collect();
            encoder.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                self.0.sum_seconds,
                self.0.count,
                &buckets,
                None,
            )
        }

        fn metric_type(&self) -> MetricType {
            MetricType::Histogram
        }
    }
    let metric = e.encode_descriptor(
        "turnpike_allocation_lifetime_seconds",
        "How long allocations lived, observed when they end.",
        None,
        MetricType::Histogram,
    )?;
    Lifetimes(&turn.lifetimes).encode(metric)
}
