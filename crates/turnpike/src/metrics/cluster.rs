//! The fleet's metrics, as this node last read it from Redis (every heartbeat): each node's
//! allocations, signaling load, and whether it takes new allocations, so that any node's
//! `/metrics` shows the whole fleet. Nothing without a cluster.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use super::encode::{gauge, gauges};
use crate::cluster::fleet::FleetView;

/// The collector.
#[derive(Debug, Default)]
pub struct ClusterCollector(pub FleetView);

impl Collector for ClusterCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let nodes = self.0.nodes();
        if nodes.is_empty() {
            return Ok(());
        }
        let e = &mut encoder;
        gauge(
            e,
            "turnpike_cluster_nodes",
            "Nodes with a presence key in the cluster's Redis, this one included.",
            nodes.len() as u64,
        )?;
        let per_node = |value: fn(&crate::cluster::fleet::NodeRecord) -> u64| {
            nodes
                .iter()
                .map(move |n| ([("node", n.id.as_str())], value(n)))
                .collect::<Vec<_>>()
        };
        gauges(
            e,
            "turnpike_cluster_node_allocations",
            "Allocations each node of the cluster holds, as it last said.",
            per_node(|n| n.allocations),
        )?;
        gauges(
            e,
            "turnpike_cluster_node_signaling_peers",
            "Signaling peers in the rooms whose home each node is.",
            per_node(|n| n.peers),
        )?;
        gauges(
            e,
            "turnpike_cluster_node_open",
            "1 when the node takes new allocations (serves TURN, not full, not draining).",
            per_node(|n| u64::from(n.turn.is_some() && !n.full && !n.draining)),
        )
    }
}
