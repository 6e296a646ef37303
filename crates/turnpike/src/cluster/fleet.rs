//! The TURN fleet: what each node tells the others about itself in its presence key, and the
//! choices made from it: which nodes' URLs to hand out (least-loaded first), and where a full
//! or draining node sends a new client (ALTERNATE-SERVER, RFC 8489 §14.15, RFC 8656 §7.2).

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use turn::relay::DomainName;

/// TURN URLs handed out, in nodes: the least-loaded, and one more to fall back to. Each URL
/// costs the browser an allocation per peer, so not the whole fleet.
pub const HANDED_OUT: usize = 2;

/// One node, as its presence key says (JSON). Fields a node of another version does not
/// write read as their defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeRecord {
    /// The node's id.
    pub id: String,
    /// Its TURN service, when it serves TURN and knows its public address.
    pub turn: Option<TurnRecord>,
    /// Allocations held now.
    pub allocations: u64,
    /// At its allocation quota: takes no new allocation.
    pub full: bool,
    /// Draining: takes no new allocation.
    pub draining: bool,
    /// Signaling rooms whose home it is.
    pub rooms: u64,
    /// Signaling peers in those rooms.
    pub peers: u64,
}

/// Where a node's TURN service is reached from the internet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TurnRecord {
    /// The host in its URLs (`ice-host`, else its public IP); IPv6 in brackets.
    pub host: Option<String>,
    /// The port of STUN/TURN over UDP and TCP.
    pub port: Option<u16>,
    /// The port of TURN over TLS.
    pub tls_port: Option<u16>,
    /// UDP is served.
    pub udp: bool,
    /// TCP is served.
    pub tcp: bool,
    /// Its public STUN/TURN addresses, for ALTERNATE-SERVER.
    pub addresses: Vec<SocketAddr>,
    /// Its public TURN-over-TLS (and DTLS, same port) addresses, for ALTERNATE-SERVER to
    /// clients over TLS or DTLS; empty without TLS (a record of an older node has none).
    pub tls_addresses: Vec<SocketAddr>,
}

impl NodeRecord {
    /// Takes new allocations and can be reached.
    fn open(&self) -> bool {
        self.turn.is_some() && !self.full && !self.draining
    }
}

/// The nodes that take new allocations, least-loaded first (ties by id, so that every node
/// ranks alike).
pub fn ranked(nodes: &[NodeRecord]) -> Vec<&NodeRecord> {
    let mut open: Vec<&NodeRecord> = nodes.iter().filter(|n| n.open()).collect();
    open.sort_by(|a, b| (a.allocations, &a.id).cmp(&(b.allocations, &b.id)));
    open
}

/// Where node `me` sends new clients when it is full or draining: the least-loaded other node
/// with an address of each family (IPv4 first); empty when no other node has room.
pub fn alternates(me: &str, nodes: &[NodeRecord]) -> Vec<SocketAddr> {
    first_of_each(me, nodes, |t| &t.addresses)
        .into_iter()
        .map(|(_, a)| a)
        .collect()
}

/// The same for clients over TLS and DTLS: the nodes' TLS addresses (RFC 8489 §10: the client
/// reconnects with the transport it used).
pub fn tls_alternates(me: &str, nodes: &[NodeRecord]) -> Vec<SocketAddr> {
    first_of_each(me, nodes, |t| &t.tls_addresses)
        .into_iter()
        .map(|(_, a)| a)
        .collect()
}

/// The name a TLS or DTLS client checks the certificate of [`tls_alternates`] with
/// (ALTERNATE-DOMAIN, RFC 8489 §10): the host of the node(s) they belong to, when it is a DNS
/// name — the name its `turns:` URLs carry, so its certificate holds it. `None` when that host
/// is an IP address, or when the two families' alternates are on nodes of different names
/// (one ALTERNATE-DOMAIN names the certificate of both).
pub fn tls_alternate_domain(me: &str, nodes: &[NodeRecord]) -> Option<DomainName> {
    let mut hosts = first_of_each(me, nodes, |t| &t.tls_addresses)
        .into_iter()
        .map(|(record, _)| record.host.as_deref());
    let first = hosts.next()??;
    if hosts.any(|other| other != Some(first)) {
        return None;
    }
    first.parse().ok()
}

/// The first address of each family (IPv4 first) among the other open nodes, least-loaded
/// first, with the record it belongs to.
fn first_of_each<'a>(
    me: &str,
    nodes: &'a [NodeRecord],
    addresses: impl Fn(&TurnRecord) -> &[SocketAddr],
) -> Vec<(&'a TurnRecord, SocketAddr)> {
    let others: Vec<&NodeRecord> = ranked(nodes).into_iter().filter(|n| n.id != me).collect();
    let first = |v4: bool| {
        others
            .iter()
            .filter_map(|n| n.turn.as_ref())
            .flat_map(|t| addresses(t).iter().map(move |a| (t, *a)))
            .find(|(_, a)| a.is_ipv4() == v4)
    };
    [first(true), first(false)].into_iter().flatten().collect()
}

/// The fleet as last read from Redis: the nodes whose TURN URLs may be handed out, least-loaded
/// first. Written once per heartbeat, read per request without a lock.
#[derive(Debug, Clone, Default)]
pub struct FleetView {
    /// The nodes to hand out.
    handed_out: Arc<ArcSwap<Vec<TurnRecord>>>,
    /// Every node, as read.
    nodes: Arc<ArcSwap<Vec<NodeRecord>>>,
}

impl FleetView {
    /// Replaces the view with the open nodes of `nodes` that have a host, best first.
    pub fn update(&self, nodes: &[NodeRecord]) {
        let open = ranked(nodes)
            .into_iter()
            .filter_map(|n| n.turn.clone())
            .filter(|t| t.host.is_some())
            .take(HANDED_OUT)
            .collect();
        self.handed_out.store(Arc::new(open));
        self.nodes.store(Arc::new(nodes.to_vec()));
    }

    /// Every node as last read (for metrics); empty before the first heartbeat.
    pub fn nodes(&self) -> Arc<Vec<NodeRecord>> {
        self.nodes.load_full()
    }

    /// The nodes to hand out, best first; empty before the first heartbeat (or when no node
    /// knows its public host): the serving node then hands out itself.
    pub fn handed_out(&self) -> Arc<Vec<TurnRecord>> {
        self.handed_out.load_full()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, allocations: u64, address: &str) -> NodeRecord {
        let address: SocketAddr = address.parse().unwrap();
        NodeRecord {
            id: id.to_owned(),
            turn: Some(TurnRecord {
                host: Some(address.ip().to_string()),
                port: Some(address.port()),
                udp: true,
                addresses: vec![address],
                ..TurnRecord::default()
            }),
            allocations,
            ..NodeRecord::default()
        }
    }

    #[test]
    fn the_least_loaded_open_node_comes_first() {
        let mut full = node("d", 0, "192.0.2.4:3478");
        full.full = true;
        let mut draining = node("e", 0, "192.0.2.5:3478");
        draining.draining = true;
        let nodes = [
            node("a", 30, "192.0.2.1:3478"),
            node("b", 10, "192.0.2.2:3478"),
            node("c", 10, "192.0.2.3:3478"),
            full,
            draining,
            NodeRecord {
                id: "signaling-only".to_owned(),
                ..NodeRecord::default()
            },
        ];
        let order: Vec<&str> = ranked(&nodes).iter().map(|n| n.id.as_str()).collect();
        assert_eq!(order, ["b", "c", "a"]);
        let view = FleetView::default();
        view.update(&nodes);
        let hosts: Vec<_> = view.handed_out().iter().map(|t| t.host.clone()).collect();
        assert_eq!(
            hosts,
            [Some("192.0.2.2".to_owned()), Some("192.0.2.3".to_owned())]
        );
    }

    #[test]
    fn a_node_sends_clients_to_the_least_loaded_other_node_of_each_family() {
        let nodes = [
            node("a", 0, "192.0.2.1:3478"),
            node("b", 5, "192.0.2.2:3478"),
            node("c", 9, "[2001:db8::3]:3478"),
        ];
        assert_eq!(
            alternates("a", &nodes),
            [
                "192.0.2.2:3478".parse::<SocketAddr>().unwrap(),
                "[2001:db8::3]:3478".parse().unwrap()
            ]
        );
        assert_eq!(
            alternates("b", &nodes)[0],
            "192.0.2.1:3478".parse().unwrap()
        );
        assert!(
            alternates("a", &nodes[..1]).is_empty(),
            "alone: nowhere to send"
        );
        // TLS clients go to TLS addresses only: none known, none given.
        assert!(tls_alternates("a", &nodes).is_empty());
        let mut with_tls = nodes.clone();
        if let Some(t) = with_tls[1].turn.as_mut() {
            t.tls_addresses = vec!["192.0.2.2:5349".parse().unwrap()];
        }
        assert_eq!(
            tls_alternates("a", &with_tls),
            ["192.0.2.2:5349".parse::<SocketAddr>().unwrap()]
        );
    }

    // RFC 8489 §10: ALTERNATE-DOMAIN names the alternate's certificate: its node's host when
    // that is a DNS name; none for an IP host, or when the families' alternates are on two
    // nodes of different names.
    #[test]
    fn the_alternate_domain_is_the_tls_alternates_host_name() {
        let mut nodes = [
            node("a", 0, "192.0.2.1:3478"),
            node("b", 5, "192.0.2.2:3478"),
            node("c", 9, "[2001:db8::3]:3478"),
        ];
        let tls = |t: &mut TurnRecord, host: &str, addr: &str| {
            t.host = Some(host.to_owned());
            t.tls_addresses = vec![addr.parse().unwrap()];
        };
        if let Some(t) = nodes[1].turn.as_mut() {
            tls(t, "turn-b.example.org", "192.0.2.2:5349");
        }
        let name = tls_alternate_domain("a", &nodes).map(|d| d.to_string());
        assert_eq!(name.as_deref(), Some("turn-b.example.org"));
        if let Some(t) = nodes[1].turn.as_mut() {
            tls(t, "192.0.2.2", "192.0.2.2:5349");
        }
        assert_eq!(tls_alternate_domain("a", &nodes), None, "an IP host");
        if let Some(t) = nodes[1].turn.as_mut() {
            tls(t, "turn-b.example.org", "192.0.2.2:5349");
        }
        if let Some(t) = nodes[2].turn.as_mut() {
            tls(t, "turn-c.example.org", "[2001:db8::3]:5349");
        }
        assert_eq!(tls_alternates("a", &nodes).len(), 2);
        assert_eq!(tls_alternate_domain("a", &nodes), None, "two names");
        assert_eq!(tls_alternate_domain("a", &nodes[..1]), None, "alone");
    }

    #[test]
    fn a_record_of_another_version_still_reads() {
        let record: NodeRecord =
            serde_json::from_str(r#"{"id":"x","allocations":3,"future":true}"#).unwrap();
        assert_eq!((record.id.as_str(), record.allocations), ("x", 3));
        assert_eq!(record.turn, None);
    }
}
