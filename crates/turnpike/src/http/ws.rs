//! The signaling WebSocket (`GET /ws`): moves text frames between sockets and the sans-IO
//! [`Hub`], and runs the hub's timer.
//!
//! One hub behind a `std::sync::Mutex`, held only to feed it one input and route its outputs,
//! never across an `await`. Each connection has a task and a bounded queue of `queue-length`
//! frames: the hub's `Send`s go into the queue with `try_send`, and a connection whose queue is
//! full does not read its frames: it is closed as a slow consumer (close code 1013, "try again
//! later"; it may resume within the grace window). The hub's `Close` is passed to the task,
//! which first sends the frames queued before it.
//!
//! Frame contents are never logged; connects and disconnects are, at debug.
//!
//! With a cluster (`redis-url`), a connection whose room lives on another node is forwarded
//! there ([`super::ws_cluster`]): its socket stays here, its hub connection is the other node's.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::Sink;
use rand::rngs::StdRng;
use rand::SeedableRng;
use signal::{ConnId, Hub, HubConfig, IceSource, Output};
use tokio::sync::{mpsc, watch};
use tracing::debug;

use super::credentials::Caller;
use super::ws_cluster::{ClusterSide, Route, Routes};
use crate::cluster::wire::Wire;
use crate::server::worker_state::now;

/// The longest the timer task sleeps between two `handle_timeout`s.
const TIMER_GRANULARITY: Duration = Duration::from_secs(1);
/// A send that takes longer than this means the client stopped reading: the connection is
/// dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a close frame may take to leave (after the frame being written, for a slow
/// consumer) before the socket is dropped anyway.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the reply to a client's close frame may take to leave.
const CLOSE_REPLY_TIMEOUT: Duration = Duration::from_secs(1);
/// RFC 6455 §7.4.1 / IANA: 1013 "Try Again Later", sent to a slow consumer.
pub(super) const SLOW_CONSUMER_CODE: u16 = 1013;
/// RFC 6455 §7.4.1: 1009, "a message that is too big for it to process".
const TOO_BIG_CODE: u16 = 1009;
/// RFC 6455 §7.4.1: 1001, "an endpoint is going away, such as a server going down".
const GOING_AWAY_CODE: u16 = 1001;
/// How long shutdown waits for the 1001 close frames to leave.
const GOING_AWAY_TIMEOUT: Duration = Duration::from_secs(2);
/// What the hub gets for a binary frame: not JSON, so it answers `bad-message`.
const BINARY_FRAME: &str = "binary frame";

/// The hub and the connections it talks to.
pub struct Signaling {
    /// The hub and the senders of the open connections.
    state: Mutex<HubState>,
    /// The next connection id.
    next_conn: AtomicU64,
    /// Frames queued per connection before it counts as a slow consumer.
    queue_length: usize,
    /// Connection tasks running (shutdown waits for them to send their close frames).
    running: AtomicUsize,
    /// The cluster this node's rooms are shared with; `None`: rooms are this node's alone.
    pub(super) cluster: Option<ClusterSide>,
}

impl std::fmt::Debug for Signaling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signaling")
            .field("queue_length", &self.queue_length)
            .finish_non_exhaustive()
    }
}

/// What the lock guards.
pub(super) struct HubState {
    /// The sans-IO hub.
    pub(super) hub: Hub,
    /// Open sockets of this node. A connection leaves this map when the hub closes it, when
    /// it is dropped as a slow consumer, or when its socket ends.
    pub(super) conns: HashMap<ConnId, Conn>,
    /// Which connections live across nodes (empty without a cluster).
    pub(super) routes: Routes,
}

/// The I/O side of one connection, as the hub's outputs reach it.
pub(super) struct Conn {
    /// Frames to send, bounded.
    pub(super) frames: mpsc::Sender<String>,
    /// Set once, to end the connection.
    close: watch::Sender<Option<CloseCommand>>,
}

/// How to end a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CloseCommand {
    /// WebSocket close code.
    code: u16,
    /// Close reason text.
    reason: &'static str,
    /// Send the frames queued before the close first (not for a slow consumer: its queue is
    /// what it does not read).
    flush: bool,
}

impl Signaling {
    /// A hub with `config`, sharing its rooms with `cluster` when given; its RNG is seeded
    /// from the OS.
    pub fn new(config: HubConfig, cluster: Option<ClusterSide>) -> Signaling {
        let queue_length = config.queue_length.max(1);
        let hub = Hub::new(config, Box::new(StdRng::from_entropy()));
        Signaling {
            state: Mutex::new(HubState {
                hub,
                conns: HashMap::new(),
                routes: Routes::default(),
            }),
            next_conn: AtomicU64::new(first_conn_id()),
            queue_length,
            running: AtomicUsize::new(0),
            cluster,
        }
    }

    /// A fresh connection number.
    pub(super) fn next_id(&self) -> ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// Locks the state. A panic while holding the lock leaves at worst one frame unrouted, so
    /// a poisoned lock is taken over.
    pub(super) fn lock(&self) -> MutexGuard<'_, HubState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The hub's gauges and totals, for metrics.
    pub fn stats(&self) -> (signal::HubStats, signal::HubCounters) {
        let state = self.lock();
        (state.hub.stats(), state.hub.counters())
    }

    /// Runs the hub's timers (pings, silence, grace windows) forever.
    pub async fn run_timers(self: Arc<Self>) {
        loop {
            let next = self.lock().hub.poll_timeout();
            let (now, _) = now();
            let wake = next.map_or(now + TIMER_GRANULARITY, |t| t.min(now + TIMER_GRANULARITY));
            tokio::time::sleep_until(wake.into()).await;
            let mut state = self.lock();
            let (now, _) = crate::server::worker_state::now();
            state.hub.handle_timeout(now);
            state.route(now, self.cluster.as_ref());
        }
    }

    /// Closes every open WebSocket with 1001 "going away" (the server is shutting down), and
    /// waits up to [`GOING_AWAY_TIMEOUT`] for the close frames to leave.
    pub async fn going_away(&self) {
        {
            let mut state = self.lock();
            let conns: Vec<ConnId> = state.conns.keys().copied().collect();
            for conn in conns {
                state.end(conn, GOING_AWAY_CODE, "going-away", false);
                state.left_remote_room(conn, self.cluster.as_ref());
            }
            state.close_remote_sockets(GOING_AWAY_CODE, "going-away", self.cluster.as_ref());
        }
        let deadline = tokio::time::Instant::now() + GOING_AWAY_TIMEOUT;
        while self.running.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Serves one upgraded WebSocket until it closes. `ice` is where its `joined` gets its
    /// `RTCIceServer[]`; `caller` and `host` are what `ice` was made from, for the node that
    /// makes it when the room lives elsewhere.
    pub async fn serve(
        self: Arc<Self>,
        mut socket: WebSocket,
        remote: SocketAddr,
        ice: IceSource,
        (caller, host): (Caller, String),
    ) {
        let id = self.next_id();
        let mut route = if self.cluster.is_some() {
            Route::Undecided
        } else {
            Route::Local
        };
        let _running = Running::start(&self.running);
        let (frames, mut queue) = mpsc::channel(self.queue_length);
        let (close, mut closing) = watch::channel(None);
        {
            let mut state = self.lock();
            state.conns.insert(id, Conn { frames, close });
            let (now, _) = now();
            state.hub.connect(now, id, ice);
            state.route(now, self.cluster.as_ref());
        }
        debug!(conn = id, %remote, "signaling connection opened");
        let end = loop {
            tokio::select! {
                biased;
                command = wait_close(&mut closing) => break End::Server(command),
                frame = queue.recv() => match frame {
                    Some(text) => {
                        if let Err(end) = send(&mut socket, &mut closing, text).await {
                            break end;
                        }
                    }
                    // The sender is dropped only after a close command, which `biased` sees
                    // first; this is for safety.
                    None => break End::Broken,
                },
                message = socket.recv() => match message {
                    Some(Ok(Message::Text(text))) => {
                        route = self.route_text(route, id, text.as_str(), (caller, &host)).await;
                    }
                    Some(Ok(Message::Binary(_))) => {
                        route = self.route_text(route, id, BINARY_FRAME, (caller, &host)).await;
                    }
                    // Pings are answered by the WebSocket layer; they are not signaling frames.
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_))) => {
                        // The WebSocket layer queued the close reply; the next read sends it.
                        let _ = tokio::time::timeout(CLOSE_REPLY_TIMEOUT, socket.recv()).await;
                        break End::Client;
                    }
                    None => break End::Client,
                    Some(Err(error)) if is_too_big(&error) => break End::TooBig,
                    Some(Err(_)) => break End::Broken,
                },
            }
        };
        match end {
            End::Server(command) => {
                if command.flush {
                    while let Ok(text) = queue.try_recv() {
                        if send(&mut socket, &mut closing, text).await.is_err() {
                            break;
                        }
                    }
                }
                let frame = CloseFrame {
                    code: command.code,
                    reason: command.reason.into(),
                };
                let _ =
                    tokio::time::timeout(CLOSE_TIMEOUT, socket.send(Message::Close(Some(frame))))
                        .await;
                debug!(
                    conn = id,
                    reason = command.reason,
                    "signaling connection closed by the server"
                );
            }
            End::TooBig => {
                // Over the hard limit (max-message-bytes plus slack): the WebSocket layer
                // stopped reading; tell the client why before dropping it.
                let frame = CloseFrame {
                    code: TOO_BIG_CODE,
                    reason: "message-too-big".into(),
                };
                let _ = tokio::time::timeout(
                    CLOSE_REPLY_TIMEOUT,
                    socket.send(Message::Close(Some(frame))),
                )
                .await;
                self.socket_ended(id);
                debug!(conn = id, "signaling connection closed: message too big");
            }
            End::Client | End::Broken => {
                self.socket_ended(id);
                debug!(conn = id, "signaling connection closed");
            }
        }
    }

    /// Feeds one text frame of `conn` to the hub.
    pub(super) fn handle_text(&self, conn: ConnId, text: &str) {
        let mut state = self.lock();
        let (now, unix_now) = now();
        state.hub.handle_text(now, unix_now, conn, text);
        state.route(now, self.cluster.as_ref());
    }

    /// The socket of `conn` ended: the hub (here or at the room's home) hears of it unless it
    /// closed the connection itself or it was dropped as a slow consumer (the hub heard of
    /// that then).
    fn socket_ended(&self, conn: ConnId) {
        let mut state = self.lock();
        if state.conns.remove(&conn).is_some() {
            if state.left_remote_room(conn, self.cluster.as_ref()) {
                return;
            }
            let (now, _) = now();
            state.hub.disconnect(now, conn);
            state.route(now, self.cluster.as_ref());
        }
    }
}

impl HubState {
    /// Carries out every output of the hub: frames into the connections' queues, closes to
    /// their tasks (or to the nodes their sockets are on). A connection whose queue is full is
    /// dropped as a slow consumer, which the hub hears of at once (and may answer with more
    /// outputs).
    pub(super) fn route(&mut self, now: Instant, cluster: Option<&ClusterSide>) {
        while let Some(output) = self.hub.poll_output() {
            match output {
                Output::Send { conn, text } => {
                    let Some(target) = self.conns.get(&conn) else {
                        if let (Some((edge, their)), Some(cluster)) =
                            (self.routes.remote.get(&conn), cluster)
                        {
                            let wire = Wire::Send {
                                conn: *their,
                                text: &text,
                            };
                            cluster.cluster.publish(edge, &wire);
                        }
                        continue;
                    };
                    match target.frames.try_send(text) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            debug!(conn, "signaling connection is a slow consumer: closing it");
                            self.end(conn, SLOW_CONSUMER_CODE, "slow-consumer", false);
                            self.hub.disconnect(now, conn);
                        }
                        // The task is gone; it tells the hub itself.
                        Err(mpsc::error::TrySendError::Closed(_)) => {}
                    }
                }
                Output::Close { conn, reason } => {
                    if let Some((edge, their)) = self.routes.forget_remote(conn) {
                        if let Some(cluster) = cluster {
                            let wire = Wire::Close {
                                conn: their,
                                code: reason.code(),
                                reason: reason.as_str(),
                            };
                            cluster.cluster.publish(&edge, &wire);
                        }
                        continue;
                    }
                    self.end(conn, reason.code(), reason.as_str(), true);
                }
                // Outputs this I/O layer does not know yet: nothing to carry out.
                _ => {}
            }
        }
    }

    /// Forgets `conn` and tells its task to close the socket.
    pub(super) fn end(&mut self, conn: ConnId, code: u16, reason: &'static str, flush: bool) {
        if let Some(target) = self.conns.remove(&conn) {
            let _ = target.close.send(Some(CloseCommand {
                code,
                reason,
                flush,
            }));
        }
    }
}

/// Where this run's connection numbers start: at a random multiple of 2^20 (below 2^52, so
/// they stay exact as JSON numbers). With a cluster, other nodes know a socket by (node id,
/// number); a node restarted under the same node id before the others noticed must not reuse
/// its previous run's numbers, or frames for an old socket could reach a new one.
fn first_conn_id() -> ConnId {
    (u64::from(rand::random::<u32>()) << 20) + 1
}

/// How a connection's loop ended.
enum End {
    /// The server closes it.
    Server(CloseCommand),
    /// The client closed it.
    Client,
    /// The socket failed or stalled.
    Broken,
    /// The client sent a message over the WebSocket layer's hard limit.
    TooBig,
}

/// Counts a running connection task while it lives.
struct Running<'a>(&'a AtomicUsize);

impl<'a> Running<'a> {
    fn start(counter: &'a AtomicUsize) -> Running<'a> {
        counter.fetch_add(1, Ordering::AcqRel);
        Running(counter)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The WebSocket layer refused a message or frame over its size limit.
fn is_too_big(error: &axum::Error) -> bool {
    use tokio_tungstenite::tungstenite::Error;
    let inner = std::error::Error::source(error);
    matches!(
        inner.and_then(|e| e.downcast_ref::<Error>()),
        Some(Error::Capacity(_))
    )
}

/// Resolves once a close command is set (at once if it already is); never if the sender is
/// dropped without one.
async fn wait_close(closing: &mut watch::Receiver<Option<CloseCommand>>) -> CloseCommand {
    loop {
        if let Some(command) = *closing.borrow_and_update() {
            return command;
        }
        if closing.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Sends one text frame, giving up when the client does not take it within the write timeout
/// or when the connection is to be closed meanwhile.
///
/// Usually the socket takes the frame at once: that is tried first, without arming the write
/// timer or watching for a close (per frame, those cost more than the hub's routing did in a
/// profile of `signal-load`). Only a frame the socket cannot take now waits, bounded.
async fn send(
    socket: &mut WebSocket,
    closing: &mut watch::Receiver<Option<CloseCommand>>,
    text: String,
) -> Result<(), End> {
    let message = Message::Text(text.into());
    match try_send_now(socket, message).await {
        Ok(Sent::Done) => return Ok(()),
        Ok(Sent::Buffered) => {}
        Ok(Sent::NotReady(message)) => {
            return wait_for(closing, socket.send(message)).await;
        }
        Err(_) => return Err(End::Broken),
    }
    // The frame is in the WebSocket layer's buffer; the socket takes it when the client reads.
    wait_for(
        closing,
        std::future::poll_fn(|cx| Pin::new(&mut *socket).poll_flush(cx)),
    )
    .await
}

/// How far [`try_send_now`] got.
enum Sent {
    /// Written to the socket.
    Done,
    /// Accepted, but not all of it fits in the socket yet: flush it.
    Buffered,
    /// The WebSocket layer cannot take it yet: here it is back.
    NotReady(Message),
}

/// Hands `message` to the socket if that needs no waiting: one poll of each step.
async fn try_send_now(socket: &mut WebSocket, message: Message) -> Result<Sent, axum::Error> {
    match poll_once(socket, Step::Ready).await {
        Poll::Ready(Ok(())) => {}
        Poll::Ready(Err(error)) => return Err(error),
        Poll::Pending => return Ok(Sent::NotReady(message)),
    }
    Pin::new(&mut *socket).start_send(message)?;
    match poll_once(socket, Step::Flush).await {
        Poll::Ready(Ok(())) => Ok(Sent::Done),
        Poll::Ready(Err(error)) => Err(error),
        Poll::Pending => Ok(Sent::Buffered),
    }
}

/// A step of handing a frame to the socket.
#[derive(Clone, Copy)]
enum Step {
    /// Room for a frame in the WebSocket layer.
    Ready,
    /// Buffered frames written to the socket.
    Flush,
}

/// Polls `step` once and resolves to the outcome, pending or not.
fn poll_once(
    socket: &mut WebSocket,
    step: Step,
) -> impl std::future::Future<Output = Poll<Result<(), axum::Error>>> + '_ {
    std::future::poll_fn(move |cx| {
        let socket = Pin::new(&mut *socket);
        Poll::Ready(match step {
            Step::Ready => socket.poll_ready(cx),
            Step::Flush => socket.poll_flush(cx),
        })
    })
}

/// Waits for `sending` up to the write timeout, unless the connection is to be closed first.
async fn wait_for(
    closing: &mut watch::Receiver<Option<CloseCommand>>,
    sending: impl std::future::Future<Output = Result<(), axum::Error>>,
) -> Result<(), End> {
    tokio::select! {
        sent = tokio::time::timeout(WRITE_TIMEOUT, sending) => {
            match sent {
                Ok(Ok(())) => Ok(()),
                _ => Err(End::Broken),
            }
        }
        command = wait_close(closing), if closing.borrow().is_none() => Err(End::Server(command)),
    }
}
