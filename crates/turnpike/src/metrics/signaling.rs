//! The signaling hub's metrics: rooms, peers and connections now, frames received and
//! `error` frames sent by code.

use std::fmt;
use std::sync::{Arc, OnceLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use signal::ErrorCode;

use super::encode::{counter, counters, gauge};
use crate::http::Signaling;

/// The collector; writes nothing until the HTTP server (and its hub) runs.
#[derive(Debug, Default)]
pub struct SignalingCollector(pub Arc<OnceLock<Arc<Signaling>>>);

impl Collector for SignalingCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let Some(signaling) = self.0.get() else {
            return Ok(());
        };
        let (stats, totals) = signaling.stats();
        let e = &mut encoder;
        gauge(
            e,
            "turnpike_signaling_rooms",
            "Signaling rooms now.",
            stats.rooms as u64,
        )?;
        gauge(
            e,
            "turnpike_signaling_peers",
            "Signaling peers now, including those in their grace window.",
            stats.peers as u64,
        )?;
        gauge(
            e,
            "turnpike_signaling_connections",
            "Signaling WebSocket connections now, joined or not.",
            stats.connections as u64,
        )?;
        counter(
            e,
            "turnpike_signaling_messages",
            "Signaling frames received.",
            totals.messages,
        )?;
        if let Some((up, dropped)) = signaling.cluster_link() {
            gauge(
                e,
                "turnpike_cluster_up",
                "1 while this node is connected to the cluster's Redis.",
                u64::from(up),
            )?;
            counter(
                e,
                "turnpike_cluster_messages_dropped",
                "Messages to other nodes dropped: Redis away or far behind.",
                dropped,
            )?;
        }
        counters(
            e,
            "turnpike_signaling_errors",
            "Signaling error frames sent, by code.",
            ErrorCode::ALL
                .iter()
                .map(|code| ([("code", code.as_str())], totals.errors_with(*code))),
        )
    }
}
