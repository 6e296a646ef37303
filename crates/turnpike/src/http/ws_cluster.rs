//! Signaling rooms across nodes: which node is a room's home, forwarding a connection's
//! frames there, and what happens when a node or Redis goes away.
//!
//! A room has one *home*, the node that claimed it in Redis when its first peer joined
//! ([`Cluster::home_of`]). Its hub there holds every peer of the room, wherever their sockets
//! are, so capacity, rate limits, join tokens, ordering and resume hold fleet-wide exactly as
//! on one node. A connection's first `join` decides: home here → the local hub, as without a
//! cluster; home elsewhere → the socket's node (the *edge*) forgets it in its own hub and
//! forwards every frame to the home ([`Wire::Open`], [`Wire::Text`], [`Wire::Gone`]), which
//! answers with [`Wire::Send`] and [`Wire::Close`].
//!
//! Failures (bounds in `docs/cluster.md`):
//! - an edge dies: its presence key expires within [`NODE_TTL`]; the home notices at its next
//!   heartbeat and disconnects those peers, who get the resume window (`resume-grace`) to come
//!   back through another node, then leave;
//! - a home dies: the edges notice the same way and close those sockets with 1012 (service
//!   restart); the clients reconnect, the room gets a new home, and (the room's state being
//!   lost with the node) they join afresh after `resume-failed`;
//! - Redis goes away: every cross-node connection is lost as above, `/healthz` says
//!   `degraded`, and new rooms are local to each node until Redis is back.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use signal::{ConnId, IceSource};
use tracing::{debug, warn};

use super::credentials::Caller;
use super::ws::{HubState, Signaling, SLOW_CONSUMER_CODE};
use crate::cluster::keys::{HEARTBEAT, NODE_TTL};
use crate::cluster::wire::{decode, Wire};
use crate::cluster::{Cluster, Inbox, NodeId};
use crate::server::worker_state::now;

/// RFC 6455 §7.4.1 / IANA: 1012 "Service Restart": the node holding the room went away; the
/// client should reconnect.
const NODE_LOST_CODE: u16 = 1012;
/// Close reasons a home may send, as the `&'static str` a close command carries.
const CLOSE_REASONS: [&str; 8] = [
    "left",
    "bad-token",
    "silent",
    "replaced",
    "going-away",
    "slow-consumer",
    "message-too-big",
    "node-lost",
];

/// Makes the ICE servers of a connection whose socket is on another node, from the caller and
/// URL host that node saw.
pub type RemoteIce = Arc<dyn Fn(Caller, String) -> IceSource + Send + Sync>;

/// The cluster as the signaling service uses it.
#[derive(Clone)]
pub struct ClusterSide {
    /// The link to Redis.
    pub cluster: Arc<Cluster>,
    /// ICE servers for connections of other nodes.
    pub ice: RemoteIce,
}

/// Where one connection's frames go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// To the local hub (no cluster, or the room's home is here).
    Local,
    /// Not joined yet: the first `join` decides.
    Undecided,
    /// To the hub of the room's home, another node.
    Remote(NodeId),
}

/// Which connections live across nodes.
#[derive(Debug, Default)]
pub struct Routes {
    /// Edge side: sockets here whose room's home is another node.
    proxied: HashMap<ConnId, NodeId>,
    /// Home side: hub connections whose socket is on another node, as (edge, its number).
    pub(super) remote: HashMap<ConnId, (NodeId, u64)>,
    /// The reverse of `remote`.
    by_remote: HashMap<(NodeId, u64), ConnId>,
    /// Rooms this node claimed at the last heartbeat.
    claimed: BTreeSet<String>,
}

impl Routes {
    /// Forgets the hub connection `conn` of another node's socket; returns that socket.
    pub(super) fn forget_remote(&mut self, conn: ConnId) -> Option<(NodeId, u64)> {
        let (edge, their) = self.remote.remove(&conn)?;
        let key = (edge, their);
        // Only if it still names `conn`: after the edge restarted under the same node id, its
        // numbers start again and the same (edge, number) may name a newer connection.
        if self.by_remote.get(&key) == Some(&conn) {
            self.by_remote.remove(&key);
        }
        let (edge, their) = key;
        Some((edge, their))
    }

    /// Records hub connection `conn` for socket `their` of `edge`; returns the hub connection
    /// that socket number named before, if any: a connection of the edge's previous run
    /// (restarted within the presence TTL under the same node id, so never found dead), which
    /// the caller disconnects.
    fn insert_remote(&mut self, conn: ConnId, edge: NodeId, their: u64) -> Option<ConnId> {
        self.remote.insert(conn, (edge.clone(), their));
        let stale = self.by_remote.insert((edge, their), conn)?;
        self.remote.remove(&stale);
        Some(stale)
    }

    /// The nodes this one depends on: homes of proxied sockets and edges of remote
    /// connections.
    fn peers(&self) -> Vec<NodeId> {
        let nodes: BTreeSet<&NodeId> = self
            .proxied
            .values()
            .chain(self.remote.values().map(|(edge, _)| edge))
            .collect();
        nodes.into_iter().cloned().collect()
    }
}

impl HubState {
    /// If `conn` is a socket whose room lives elsewhere, tells the home it is gone and
    /// returns true.
    pub(super) fn left_remote_room(&mut self, conn: ConnId, side: Option<&ClusterSide>) -> bool {
        let Some(home) = self.routes.proxied.remove(&conn) else {
            return false;
        };
        if let Some(side) = side {
            side.cluster.publish(&home, &Wire::Gone { conn });
        }
        true
    }

    /// Closes the sockets of other nodes that this node's hub serves (shutdown): their edges
    /// are told, the hub forgets them.
    pub(super) fn close_remote_sockets(
        &mut self,
        code: u16,
        reason: &str,
        side: Option<&ClusterSide>,
    ) {
        let remote: Vec<ConnId> = self.routes.remote.keys().copied().collect();
        for conn in remote {
            let Some((edge, their)) = self.routes.forget_remote(conn) else {
                continue;
            };
            if let Some(side) = side {
                let wire = Wire::Close {
                    conn: their,
                    code,
                    reason,
                };
                side.cluster.publish(&edge, &wire);
            }
        }
    }

    /// Node `node` is gone (or unreachable): its sockets in this hub are disconnected (their
    /// peers may resume elsewhere within the grace window), and sockets here whose room lived
    /// there are closed with 1012, so that their clients reconnect.
    fn node_lost(&mut self, now: Instant, node: Option<&NodeId>, side: Option<&ClusterSide>) {
        let matches = |n: &NodeId| node.is_none_or(|node| node == n);
        let remote: Vec<ConnId> = (self.routes.remote.iter())
            .filter(|(_, (edge, _))| matches(edge))
            .map(|(conn, _)| *conn)
            .collect();
        for conn in remote {
            self.routes.forget_remote(conn);
            self.hub.disconnect(now, conn);
        }
        let proxied: Vec<ConnId> = (self.routes.proxied.iter())
            .filter(|(_, home)| matches(home))
            .map(|(conn, _)| *conn)
            .collect();
        for conn in proxied {
            self.routes.proxied.remove(&conn);
            self.end(conn, NODE_LOST_CODE, "node-lost", false);
        }
        self.route(now, side);
    }
}

impl Signaling {
    /// Connected to Redis, and messages to other nodes dropped so far; `None` without a
    /// cluster.
    pub fn cluster_link(&self) -> Option<(bool, u64)> {
        let side = self.cluster.as_ref()?;
        Some((side.cluster.is_up(), side.cluster.dropped()))
    }

    /// Routes one text frame of connection `id` by `route`; returns the route for the next.
    /// An undecided connection's `join` asks Redis for the room's home.
    pub(super) async fn route_text(
        &self,
        route: Route,
        id: ConnId,
        text: &str,
        (caller, host): (Caller, &str),
    ) -> Route {
        let side = match (&route, self.cluster.as_ref()) {
            (Route::Remote(home), Some(side)) => {
                side.cluster.publish(home, &Wire::Text { conn: id, text });
                return route;
            }
            (Route::Undecided, Some(side)) => side,
            _ => {
                self.handle_text(id, text);
                return route;
            }
        };
        let Some(room) = joined_room(text) else {
            self.handle_text(id, text);
            return Route::Undecided;
        };
        match side.cluster.home_of(&room).await {
            Some(home) if home != *side.cluster.me() => {
                let mut state = self.lock();
                if !state.conns.contains_key(&id) {
                    // Closed while Redis answered.
                    return Route::Local;
                }
                let (now, _) = now();
                // The local hub never saw a join from it: forgetting it sends nothing.
                state.hub.disconnect(now, id);
                state.route(now, Some(side));
                state.routes.proxied.insert(id, home.clone());
                let open = Wire::Open {
                    conn: id,
                    local: caller.local,
                    source: caller.source,
                    host,
                };
                side.cluster.publish(&home, &open);
                side.cluster.publish(&home, &Wire::Text { conn: id, text });
                debug!(conn = id, %home, "signaling connection joins a room of another node");
                Route::Remote(home)
            }
            // Here, or Redis cannot say: the room is served here.
            _ => {
                self.handle_text(id, text);
                if self.lock().hub.is_joined(id) {
                    Route::Local
                } else {
                    Route::Undecided
                }
            }
        }
    }

    /// Keeps this node's rooms in the cluster: every [`HEARTBEAT`] (the node's presence key
    /// is renewed by `cluster::heartbeat`), the claims of the rooms whose home it is, and the
    /// search for dead nodes among those its connections depend on.
    pub async fn run_cluster(self: Arc<Self>) {
        let Some(side) = self.cluster.clone() else {
            return;
        };
        let mut ticks = tokio::time::interval(HEARTBEAT);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if !side.cluster.is_up() {
                continue;
            }
            let (rooms, released, nodes) = {
                let mut state = self.lock();
                let rooms: BTreeSet<String> = state.hub.rooms().map(str::to_owned).collect();
                let released: Vec<String> =
                    state.routes.claimed.difference(&rooms).cloned().collect();
                state.routes.claimed.clone_from(&rooms);
                (rooms, released, state.routes.peers())
            };
            let rooms: Vec<String> = rooms.into_iter().collect();
            for (room, home) in side.cluster.renew(&rooms).await {
                // Two homes for one room: possible after Redis was away. The peers here stay;
                // new joins go to the other home. Said at debug: a split lasts until the rooms
                // empty.
                debug!(%room, %home, "signaling room also has a home on another node");
            }
            for room in released {
                side.cluster.release(&room).await;
            }
            for node in side.cluster.dead_among(&nodes).await {
                warn!(%node, "cluster: node gone (no heartbeat for {} s)", NODE_TTL.as_secs());
                let (now, _) = now();
                self.lock().node_lost(now, Some(&node), Some(&side));
            }
        }
    }

    /// Delivers a message of another node.
    fn deliver_wire(&self, side: &ClusterSide, payload: &[u8]) {
        let envelope = match decode(payload) {
            Ok(envelope) => envelope,
            Err(error) => {
                debug!(%error, "cluster: message ignored");
                return;
            }
        };
        let from = NodeId::from(envelope.from);
        let mut state = self.lock();
        let (now, unix_now) = now();
        match envelope.wire {
            Wire::Open {
                conn,
                local,
                source,
                host,
            } => {
                let id = self.next_id();
                if let Some(stale) = state.routes.insert_remote(id, from, conn) {
                    state.hub.disconnect(now, stale);
                }
                let ice = (side.ice)(Caller { local, source }, host.to_owned());
                state.hub.connect(now, id, ice);
            }
            Wire::Text { conn, text } => {
                let Some(&id) = state.routes.by_remote.get(&(from, conn)) else {
                    return;
                };
                state.hub.handle_text(now, unix_now, id, text);
            }
            Wire::Gone { conn } => {
                let Some(id) = state.routes.by_remote.remove(&(from, conn)) else {
                    return;
                };
                state.routes.remote.remove(&id);
                state.hub.disconnect(now, id);
            }
            Wire::Send { conn, text } => {
                if state.routes.proxied.get(&conn) != Some(&from) {
                    return;
                }
                let full = state
                    .conns
                    .get(&conn)
                    .is_some_and(|target| target.frames.try_send(text.to_owned()).is_err());
                if full {
                    debug!(conn, "signaling connection is a slow consumer: closing it");
                    state.end(conn, SLOW_CONSUMER_CODE, "slow-consumer", false);
                    state.left_remote_room(conn, Some(side));
                }
            }
            Wire::Close { conn, code, reason } => {
                if state.routes.proxied.get(&conn) != Some(&from) {
                    return;
                }
                state.routes.proxied.remove(&conn);
                let reason = CLOSE_REASONS
                    .iter()
                    .find(|known| **known == reason)
                    .copied()
                    .unwrap_or("closed");
                state.end(conn, code, reason, true);
            }
        }
        state.route(now, Some(side));
    }
}

impl Inbox for Signaling {
    fn deliver(&self, payload: &[u8]) {
        if let Some(side) = self.cluster.clone() {
            self.deliver_wire(&side, payload);
        }
    }

    fn link_down(&self) {
        let (now, _) = now();
        self.lock().node_lost(now, None, self.cluster.as_ref());
    }
}

/// The room of a `join` frame; `None` for any other frame (or one that is not JSON: the hub
/// answers it).
fn joined_room(text: &str) -> Option<Cow<'_, str>> {
    #[derive(serde::Deserialize)]
    struct Join<'a> {
        #[serde(rename = "type", borrow)]
        kind: Cow<'a, str>,
        #[serde(borrow)]
        room: Option<Cow<'a, str>>,
    }
    let join: Join<'_> = serde_json::from_str(text).ok()?;
    if join.kind == "join" {
        join.room
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restarted_edge_reusing_socket_numbers_does_not_lose_the_new_connection() {
        let mut routes = Routes::default();
        let edge = NodeId::from("edge");
        assert_eq!(routes.insert_remote(10, edge.clone(), 1), None);
        // The edge restarts (same node id, numbers from 1 again) and opens socket 1 anew.
        assert_eq!(routes.insert_remote(11, edge.clone(), 1), Some(10));
        assert!(!routes.remote.contains_key(&10), "the stale one is gone");
        // The hub closing the stale connection later (its silence timeout) must not unmap the
        // new one.
        assert_eq!(routes.forget_remote(10), None);
        assert_eq!(routes.by_remote.get(&(edge.clone(), 1)), Some(&11));
        assert_eq!(routes.forget_remote(11), Some((edge.clone(), 1)));
        assert!(routes.by_remote.is_empty() && routes.remote.is_empty());
    }

    #[test]
    fn only_a_join_names_a_room() {
        let room = |text: &str| joined_room(text).map(Cow::into_owned);
        assert_eq!(
            room(r#"{"type":"join","room":"lobby"}"#).as_deref(),
            Some("lobby")
        );
        assert_eq!(
            room(r#"{"room":"x","type":"join","resume":"a.b","token":null}"#).as_deref(),
            Some("x")
        );
        assert_eq!(room(r#"{"type":"offer","room":"lobby"}"#), None);
        assert_eq!(room(r#"{"type":"join"}"#), None);
        assert_eq!(room("binary frame"), None);
        // The hub reads escapes; so does the choice of the room's home.
        assert_eq!(
            room(r#"{"type":"join","room":"a\u0062"}"#).as_deref(),
            Some("ab")
        );
    }
}
