//! The node's heartbeat: every [`HEARTBEAT`], its presence key with what it serves and how
//! loaded it is, then the fleet as every node described itself, handed to the services that
//! act on it (the TURN cores' alternates, the ICE server list).

use std::sync::Arc;

use tokio::time::MissedTickBehavior;

use super::fleet::NodeRecord;
use super::keys::HEARTBEAT;
use super::{Cluster, Inbox};

/// Describes this node now, for its presence key.
pub type Describe = Box<dyn Fn() -> NodeRecord + Send + Sync>;
/// Acts on the fleet as just read (this node included).
pub type OnFleet = Box<dyn Fn(&[NodeRecord]) + Send + Sync>;

/// What the heartbeat asks of the node's services.
pub struct Beat {
    /// This node now, for its presence key.
    pub record: Describe,
    /// The fleet as just read (this node included).
    pub fleet: OnFleet,
}

/// Keeps the link to Redis up (messages to `inbox`) and beats for ever.
pub async fn run(cluster: Arc<Cluster>, inbox: Arc<dyn Inbox>, beat: Beat) {
    tokio::spawn(cluster.clone().run(inbox));
    let mut ticks = tokio::time::interval(HEARTBEAT);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        // Every heartbeat, and at once when the link (re)connects: until then the presence
        // key holds only the node's id.
        tokio::select! {
            _ = ticks.tick() => {}
            () = cluster.came_up() => {}
        }
        if !cluster.is_up() {
            continue;
        }
        let record = NodeRecord {
            id: cluster.me().to_string(),
            ..(beat.record)()
        };
        let Ok(json) = serde_json::to_string(&record) else {
            continue;
        };
        if !cluster.announce(&json).await {
            continue;
        }
        let nodes = cluster.nodes().await;
        if !nodes.is_empty() {
            (beat.fleet)(&nodes);
        }
    }
}

/// The inbox of a node without signaling: messages from other nodes have nobody to go to.
#[derive(Debug)]
pub struct NoInbox;

impl Inbox for NoInbox {
    fn deliver(&self, _payload: &[u8]) {}
    fn link_down(&self) {}
}
