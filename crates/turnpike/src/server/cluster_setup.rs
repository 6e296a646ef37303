//! Puts a node's services in its cluster: what its heartbeat says about it (its TURN service's
//! public address, load, draining or full, its signaling rooms) and what it does with the fleet
//! it reads back (alternates for its TURN cores, the ICE server list).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::task::JoinSet;

use crate::cluster::fleet::{self, FleetView, NodeRecord, TurnRecord};
use crate::cluster::heartbeat::{self, Beat, NoInbox};
use crate::cluster::{Cluster, Inbox};
use crate::config::Config;
use crate::control::Health;
use crate::http::{Signaling, TurnPorts};
use crate::server::worker::WorkerHandle;

/// The services of one node, as the cluster sees them.
pub struct Node<'a> {
    /// The configuration in force at start.
    pub config: &'a Config,
    /// The STUN/TURN ports as bound.
    pub ports: TurnPorts,
    /// The bound address of each `listen` address.
    pub listen: &'a [SocketAddr],
    /// The TURN cores.
    pub workers: Arc<[WorkerHandle]>,
    /// Draining or not.
    pub health: Health,
    /// The signaling service, when HTTP is on.
    pub signaling: Option<Arc<Signaling>>,
    /// Where the ICE server list reads the fleet.
    pub fleet: FleetView,
}

/// Starts the node's heartbeat (and, with signaling, its rooms' upkeep) as server tasks.
pub fn spawn(cluster: Arc<Cluster>, node: Node<'_>, tasks: &mut JoinSet<anyhow::Result<()>>) {
    let turn = node.config.turn.then(|| turn_record(&node));
    let total_quota = node.config.total_quota as u64;
    let configured = node.config.alternate_server.clone();
    let configured_tls = node.config.tls_alternate_server.clone();
    let configured_domain = node.config.tls_alternate_domain.clone();
    let me = cluster.me().to_string();
    let (workers, health, signaling) = (node.workers.clone(), node.health, node.signaling);
    let stats = signaling.clone();
    let record = move || {
        let allocations: u64 = workers
            .iter()
            .filter_map(|w| w.call_blocking(|state| state.core.stats().allocation_count()))
            .sum();
        let (rooms, peers) = stats.as_ref().map_or((0, 0), |s| {
            let (now, _) = s.stats();
            (now.rooms as u64, now.peers as u64)
        });
        NodeRecord {
            id: String::new(),
            turn: turn.clone(),
            allocations,
            full: allocations >= total_quota,
            draining: health.draining(),
            rooms,
            peers,
        }
    };
    let (workers, view) = (node.workers, node.fleet);
    let fleet = move |nodes: &[NodeRecord]| {
        // Another node with room, else the configured alternates (none: 508).
        let mut alternates = fleet::alternates(&me, nodes);
        if alternates.is_empty() {
            alternates.clone_from(&configured);
        }
        let mut tls_alternates = fleet::tls_alternates(&me, nodes);
        // The certificate name of the node's TLS alternate: its host name, else the
        // configured one (a fleet sharing one certificate name, or the configured alternates).
        let mut domain = fleet::tls_alternate_domain(&me, nodes);
        if tls_alternates.is_empty() {
            tls_alternates.clone_from(&configured_tls);
        }
        if domain.is_none() {
            domain.clone_from(&configured_domain);
        }
        for worker in workers.iter() {
            let (alternates, tls_alternates) = (alternates.clone(), tls_alternates.clone());
            let domain = domain.clone();
            worker.post(move |state| {
                state.core.set_alternates(&alternates);
                state.core.set_tls_alternates(&tls_alternates);
                state.core.set_tls_alternate_domain(domain.as_ref());
            });
        }
        view.update(nodes);
    };
    let beat = Beat {
        record: Box::new(record),
        fleet: Box::new(fleet),
    };
    let inbox: Arc<dyn Inbox> = match &signaling {
        Some(signaling) => signaling.clone(),
        None => Arc::new(NoInbox),
    };
    tasks.spawn(async move {
        heartbeat::run(cluster, inbox, beat).await;
        Ok(())
    });
    if let Some(signaling) = signaling {
        tasks.spawn(async move {
            signaling.run_cluster().await;
            Ok(())
        });
    }
}

/// This node's TURN service as the internet reaches it: the URL host is `ice-host`, else its
/// first public address; the public addresses are the `listen` addresses, each behind its
/// `external-ip` of the same family when one is set (a wildcard listen address without one
/// has no public address to give).
fn turn_record(node: &Node<'_>) -> TurnRecord {
    let config = node.config;
    let public = |ip: IpAddr| {
        config
            .external_ip
            .iter()
            .find(|e| e.public.is_ipv4() == ip.is_ipv4())
            .map(|e| e.public)
            .or_else(|| (!ip.is_unspecified()).then_some(ip))
    };
    let addresses: Vec<SocketAddr> = (node.listen.iter())
        .filter_map(|a| public(a.ip()).map(|ip| SocketAddr::new(ip, a.port())))
        .collect();
    let in_url = |ip: IpAddr| match ip {
        IpAddr::V6(ip) => format!("[{ip}]"),
        IpAddr::V4(ip) => ip.to_string(),
    };
    let host = match &config.ice_host {
        Some(host) => Some(host.parse().map_or_else(|_| host.clone(), in_url)),
        None => addresses.first().map(|a| in_url(a.ip())),
    };
    // TLS and DTLS clients are redirected to the same public IPs on the TLS port.
    let tls_addresses = match node.ports.tls {
        Some(port) => addresses
            .iter()
            .map(|a| SocketAddr::new(a.ip(), port))
            .collect(),
        None => Vec::new(),
    };
    TurnRecord {
        host,
        port: node.ports.listen,
        tls_port: node.ports.tls,
        udp: config.udp,
        tcp: config.tcp,
        addresses,
        tls_addresses,
    }
}
