//! Several nodes as one service, on Redis: the connection to Redis, the messages between
//! nodes, and the presence keys. What the cluster does with them lives with the services that
//! use it: signaling rooms across nodes in `http/ws_cluster.rs`.
//!
//! Redis is reached through one command connection (claims, presence, the fleet), one
//! connection that publishes the messages to other nodes in order, and one subscription to this
//! node's channel. When Redis goes away the node says so once, keeps serving what is local,
//! reports itself degraded on `/healthz`, and reconnects every second; see `docs/cluster.md`.

pub mod fleet;
pub mod heartbeat;
pub mod keys;
pub mod wire;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt as _;
use redis::aio::MultiplexedConnection;
use redis::AsyncConnectionConfig;
use tokio::sync::mpsc;
use tracing::{info, warn};

use self::keys::{Keys, CLAIM_ROOM, NODE_TTL, RELEASE_ROOM, ROOM_TTL};
use self::wire::Wire;
use crate::config::Secret;

/// How long a Redis command may take before the node counts Redis as unreachable for it.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// How long connecting to Redis may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause between two connection attempts while Redis is away.
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);
/// Messages waiting to be published; beyond it a message is dropped (and counted): Redis is
/// far behind, and growing without bound would take the node's memory.
const OUTBOX_LENGTH: usize = 65_536;
/// Messages published in one pipeline.
const PUBLISH_BATCH: usize = 256;

/// A message waiting to be published: to which node, what.
type Outgoing = (NodeId, Vec<u8>);

/// The connections to Redis besides the subscription. Messages have one of their own: a
/// heartbeat's pipeline of room claims (one script call per room) on the same connection held
/// every message behind it (p99 16–87 ms every 2 s in `signal-load --nodes 2`).
#[derive(Clone)]
struct Links {
    /// Claims, presence, the fleet.
    commands: MultiplexedConnection,
    /// The ordered stream of messages to other nodes.
    publisher: MultiplexedConnection,
}

/// A node's id in the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(Arc<str>);

impl NodeId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for NodeId {
    fn from(id: &str) -> NodeId {
        NodeId(id.into())
    }
}

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Called with every message that arrives on this node's channel, and told when the link to
/// Redis goes down (every cross-node connection is then lost).
pub trait Inbox: Send + Sync {
    /// One message from another node, as published.
    fn deliver(&self, payload: &[u8]);
    /// The link to Redis went down.
    fn link_down(&self);
}

/// This node's membership of a cluster.
pub struct Cluster {
    /// This node.
    me: NodeId,
    keys: Keys,
    client: redis::Client,
    /// The command connection while Redis is reachable.
    links: Mutex<Option<Links>>,
    /// Connected to Redis and subscribed.
    up: AtomicBool,
    /// Messages to publish: (node, payload).
    outbox: mpsc::Sender<Outgoing>,
    /// Taken by [`Cluster::run`].
    outbox_rx: Mutex<Option<mpsc::Receiver<Outgoing>>>,
    /// Messages dropped: outbox full, or Redis away.
    dropped: AtomicU64,
    /// Told each time the link comes up, so that the heartbeat describes the node at once.
    came_up: tokio::sync::Notify,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL: it may carry the password.
        f.debug_struct("Cluster")
            .field("me", &self.me)
            .field("up", &self.is_up())
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// A node `id` (random when `None`) of the cluster on `url` under `prefix`. Nothing is
    /// connected until [`Cluster::run`].
    pub fn new(url: &Secret, id: Option<&str>, prefix: &str) -> anyhow::Result<Arc<Cluster>> {
        let client = redis::Client::open(url.expose())
            .map_err(|_| anyhow::anyhow!("redis-url: not a valid Redis URL"))?;
        let me = match id {
            Some(id) => NodeId::from(id),
            None => NodeId::from(format!("node-{:012x}", rand::random::<u64>() >> 16).as_str()),
        };
        let (outbox, outbox_rx) = mpsc::channel(OUTBOX_LENGTH);
        Ok(Arc::new(Cluster {
            me,
            keys: Keys::new(prefix),
            client,
            links: Mutex::new(None),
            up: AtomicBool::new(false),
            outbox,
            outbox_rx: Mutex::new(Some(outbox_rx)),
            dropped: AtomicU64::new(0),
            came_up: tokio::sync::Notify::new(),
        }))
    }

    /// This node.
    pub fn me(&self) -> &NodeId {
        &self.me
    }

    /// Connected to Redis (else the node serves what is local only).
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Resolves when the link to Redis (re)connects.
    pub async fn came_up(&self) {
        self.came_up.notified().await;
    }

    /// Messages to other nodes dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Queues `wire` for node `to`; dropped (and counted) when Redis is away or far behind.
    pub fn publish(&self, to: &NodeId, wire: &Wire<'_>) {
        if !self.is_up() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let payload = wire.encode(self.me.as_str());
        if self.outbox.try_send((to.clone(), payload)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The command connection, when Redis is reachable.
    pub fn connection(&self) -> Option<MultiplexedConnection> {
        self.links().map(|links| links.commands)
    }

    /// The connections to Redis, while it is reachable.
    fn links(&self) -> Option<Links> {
        self.links
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Replaces the connections to Redis.
    fn set_links(&self, links: Option<Links>) {
        *self
            .links
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = links;
    }

    /// The home of room `name`: this node when it claims it now, another node when a live one
    /// holds it. `None` when Redis cannot say (away, or too slow): the room is then served
    /// here, locally.
    pub async fn home_of(&self, name: &str) -> Option<NodeId> {
        let mut conn = self.connection()?;
        let script = redis::Script::new(CLAIM_ROOM);
        let mut invocation = script.key(self.keys.room(name));
        invocation
            .arg(self.me.as_str())
            .arg(ROOM_TTL.as_secs())
            .arg(self.keys.node_prefix());
        let claim = invocation.invoke_async::<String>(&mut conn);
        match tokio::time::timeout(COMMAND_TIMEOUT, claim).await {
            Ok(Ok(home)) => Some(NodeId::from(home.as_str())),
            _ => None,
        }
    }

    /// Renews this node's claim of each of `rooms` (all in one pipeline); returns those that
    /// another live node holds instead (a split, after Redis was away), with their home.
    pub async fn renew(&self, rooms: &[String]) -> Vec<(String, NodeId)> {
        let (Some(mut conn), false) = (self.connection(), rooms.is_empty()) else {
            return Vec::new();
        };
        let script = redis::Script::new(CLAIM_ROOM);
        let mut pipe = redis::pipe();
        pipe.load_script(&script).ignore();
        let ttl = ROOM_TTL.as_secs();
        let prefix = self.keys.node_prefix();
        for room in rooms {
            let mut invocation = script.key(self.keys.room(room));
            invocation.arg(self.me.as_str()).arg(ttl).arg(&prefix);
            pipe.invoke_script(&invocation);
        }
        let query = pipe.query_async::<Vec<String>>(&mut conn);
        match tokio::time::timeout(COMMAND_TIMEOUT, query).await {
            Ok(Ok(homes)) => rooms
                .iter()
                .zip(homes)
                .filter(|(_, home)| home.as_str() != self.me.as_str())
                .map(|(room, home)| (room.clone(), NodeId::from(home.as_str())))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Drops this node's claim of room `name` (it has no peers left here).
    pub async fn release(&self, name: &str) {
        let Some(mut conn) = self.connection() else {
            return;
        };
        let script = redis::Script::new(RELEASE_ROOM);
        let mut invocation = script.key(self.keys.room(name));
        invocation.arg(self.me.as_str());
        let release = invocation.invoke_async::<i64>(&mut conn);
        let _ = tokio::time::timeout(COMMAND_TIMEOUT, release).await;
    }

    /// Renews this node's presence key with `load` (JSON) as its value.
    pub async fn announce(&self, load: &str) -> bool {
        let Some(mut conn) = self.connection() else {
            return false;
        };
        let mut command = redis::cmd("SET");
        command
            .arg(self.keys.node(self.me.as_str()))
            .arg(load)
            .arg("EX")
            .arg(NODE_TTL.as_secs());
        let set = command.query_async::<()>(&mut conn);
        matches!(tokio::time::timeout(COMMAND_TIMEOUT, set).await, Ok(Ok(())))
    }

    /// Every node with a presence key, as it describes itself (records that do not read are
    /// left out). Empty when Redis cannot say.
    pub async fn nodes(&self) -> Vec<fleet::NodeRecord> {
        let Some(mut conn) = self.connection() else {
            return Vec::new();
        };
        let list = async {
            let pattern = format!("{}*", self.keys.node_prefix());
            let mut keys: Vec<String> = Vec::new();
            let mut cursor = 0u64;
            loop {
                let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut conn)
                    .await?;
                keys.extend(batch);
                if next == 0 {
                    break;
                }
                cursor = next;
            }
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            redis::cmd("MGET")
                .arg(&keys)
                .query_async::<Vec<Option<String>>>(&mut conn)
                .await
        };
        match tokio::time::timeout(COMMAND_TIMEOUT, list).await {
            Ok(Ok(values)) => values
                .into_iter()
                .flatten()
                .filter_map(|json| serde_json::from_str(&json).ok())
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Of `nodes`, those without a presence key: dead (or cut off from Redis). Empty when
    /// Redis cannot say.
    pub async fn dead_among(&self, nodes: &[NodeId]) -> Vec<NodeId> {
        let (Some(mut conn), false) = (self.connection(), nodes.is_empty()) else {
            return Vec::new();
        };
        let mut pipe = redis::pipe();
        for node in nodes {
            pipe.exists(self.keys.node(node.as_str()));
        }
        let query = pipe.query_async::<Vec<bool>>(&mut conn);
        match tokio::time::timeout(COMMAND_TIMEOUT, query).await {
            Ok(Ok(alive)) if alive.len() == nodes.len() => nodes
                .iter()
                .zip(alive)
                .filter(|(_, alive)| !alive)
                .map(|(node, _)| node.clone())
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Keeps the link to Redis up for ever: connects, subscribes to this node's channel,
    /// hands every message to `inbox`, and publishes the outbox; reconnects after a failure.
    pub async fn run(self: Arc<Self>, inbox: Arc<dyn Inbox>) {
        let outbox = self
            .outbox_rx
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(outbox) = outbox {
            tokio::spawn(self.clone().publish_loop(outbox));
        }
        let mut was_up = None;
        loop {
            match self.connect().await {
                Ok((pubsub, links)) => {
                    self.set_links(Some(links));
                    // Present before anything else: a room is taken over from a node without
                    // a presence key, so a node must never claim one before it has its key.
                    let record = fleet::NodeRecord {
                        id: self.me.to_string(),
                        ..fleet::NodeRecord::default()
                    };
                    let record = serde_json::to_string(&record).unwrap_or_default();
                    if !self.announce(&record).await {
                        tokio::time::sleep(RECONNECT_PAUSE).await;
                        continue;
                    }
                    self.up.store(true, Ordering::Relaxed);
                    self.came_up.notify_one();
                    info!(node = %self.me, "cluster: connected to Redis");
                    was_up = Some(true);
                    let mut messages = pubsub.into_on_message();
                    while let Some(message) = messages.next().await {
                        inbox.deliver(message.get_payload_bytes());
                    }
                    self.up.store(false, Ordering::Relaxed);
                    self.set_links(None);
                    warn!(
                        node = %self.me,
                        "cluster: lost Redis; rooms are served by this node alone until it is back"
                    );
                    inbox.link_down();
                }
                Err(kind) => {
                    if was_up != Some(false) {
                        // Once per outage; the kind, never the URL (it may carry a password).
                        warn!(
                            node = %self.me,
                            error = kind,
                            "cluster: cannot reach Redis; rooms are served by this node alone, \
                             retrying every second"
                        );
                        was_up = Some(false);
                    }
                }
            }
            tokio::time::sleep(RECONNECT_PAUSE).await;
        }
    }

    /// One subscription, one command connection and one publishing connection.
    async fn connect(&self) -> Result<(redis::aio::PubSub, Links), &'static str> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT));
        let commands = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(describe)?;
        let publisher = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(describe)?;
        let mut pubsub = tokio::time::timeout(CONNECT_TIMEOUT, self.client.get_async_pubsub())
            .await
            .map_err(|_| "timed out")?
            .map_err(describe)?;
        pubsub
            .subscribe(self.keys.channel(self.me.as_str()))
            .await
            .map_err(describe)?;
        Ok((
            pubsub,
            Links {
                commands,
                publisher,
            },
        ))
    }

    /// Publishes the outbox in order, in pipelines of up to [`PUBLISH_BATCH`].
    async fn publish_loop(self: Arc<Self>, mut outbox: mpsc::Receiver<Outgoing>) {
        let mut batch = Vec::with_capacity(PUBLISH_BATCH);
        while outbox.recv_many(&mut batch, PUBLISH_BATCH).await > 0 {
            let Some(mut conn) = self.links().map(|links| links.publisher) else {
                self.dropped
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                batch.clear();
                continue;
            };
            let mut pipe = redis::pipe();
            let messages = batch.len() as u64;
            for (to, payload) in batch.drain(..) {
                pipe.publish(self.keys.channel(to.as_str()), payload)
                    .ignore();
            }
            if !matches!(
                tokio::time::timeout(COMMAND_TIMEOUT, pipe.query_async::<()>(&mut conn)).await,
                Ok(Ok(()))
            ) {
                // The whole pipeline failed or timed out: each of its messages is lost (a
                // timed-out one may still have gone out; counted as lost all the same).
                self.dropped.fetch_add(messages, Ordering::Relaxed);
            }
        }
    }
}

/// What went wrong with Redis, in words that never include the URL.
fn describe(error: redis::RedisError) -> &'static str {
    if error.is_connection_refusal() {
        "connection refused"
    } else if error.is_timeout() {
        "timed out"
    } else if error.is_connection_dropped() {
        "connection dropped"
    } else if error.is_io_error() {
        "I/O error"
    } else {
        "Redis refused the connection (password or protocol?)"
    }
}
