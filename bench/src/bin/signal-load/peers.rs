//! The simulated peers: one WebSocket and one task each. A peer joins its pair's room, learns
//! its partner's id (from `joined.peers` or `peer-joined`), answers the server's pings, sends
//! a directed `message` to its partner whenever the pacer tells it to, and records the relay
//! latency of every `message` it receives.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Deserialize;
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// Connection attempts per peer before it gives up.
const CONNECT_ATTEMPTS: u32 = 5;
/// How long one connect + join may take.
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Highest latency the histograms hold, in microseconds (60 s).
const HISTOGRAM_MAX_US: u64 = 60_000_000;

/// Nanoseconds on the monotonic clock since this program started.
pub fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// A new microsecond histogram, 1 µs to 60 s, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    match Histogram::new_with_bounds(1, HISTOGRAM_MAX_US, 3) {
        Ok(h) => h,
        // The bounds are constants that `new_with_bounds` accepts.
        Err(_) => Histogram::new(3).unwrap_or_else(|_| unreachable!("3 digits is valid")),
    }
}

/// Locks `m`, taking a poisoned lock over (a panicking peer task leaves counters intact).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Counters and histograms all peers share.
#[derive(Debug)]
pub struct Stats {
    pub connected: AtomicUsize,
    pub joined: AtomicUsize,
    pub paired: AtomicUsize,
    pub connect_retries: AtomicUsize,
    pub failed: AtomicUsize,
    pub closed: AtomicUsize,
    /// `message` frames written to a socket.
    pub sent: AtomicU64,
    /// Distinct `message` frames received by the right peer.
    pub received: AtomicU64,
    pub duplicates: AtomicU64,
    /// A `message` whose `from` is not the receiver's partner, or whose payload is not ours.
    pub misrouted: AtomicU64,
    pub pings: AtomicU64,
    pub peer_left: AtomicU64,
    pub unexpected: AtomicU64,
    /// One bit per sequence number: received yet?
    seen: Vec<AtomicU64>,
    /// Relay latency (receive − send timestamp), µs.
    pub latency: Mutex<Histogram<u64>>,
    /// How late a message left against its schedule (the load generator's own lag), µs.
    pub send_lag: Mutex<Histogram<u64>>,
    /// Start of the traffic on [`now_ns`]'s clock (`u64::MAX` before it).
    pub traffic_start_ns: AtomicU64,
    /// Relay latency per second of traffic (by send time), µs.
    pub per_second: Mutex<Vec<Histogram<u64>>>,
    /// `error` frames by code.
    pub errors: Mutex<BTreeMap<String, u64>>,
    /// Connections that ended, by close code (or how they failed).
    pub closes: Mutex<BTreeMap<String, u64>>,
    /// Connection failures by cause.
    pub failures: Mutex<BTreeMap<String, u64>>,
}

impl Stats {
    /// Counters for up to `messages` sequence numbers.
    pub fn new(messages: u64) -> Stats {
        let words = usize::try_from(messages / 64 + 1).unwrap_or(usize::MAX);
        Stats {
            connected: AtomicUsize::new(0),
            joined: AtomicUsize::new(0),
            paired: AtomicUsize::new(0),
            connect_retries: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            closed: AtomicUsize::new(0),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            misrouted: AtomicU64::new(0),
            pings: AtomicU64::new(0),
            peer_left: AtomicU64::new(0),
            unexpected: AtomicU64::new(0),
            seen: (0..words).map(|_| AtomicU64::new(0)).collect(),
            latency: Mutex::new(histogram()),
            traffic_start_ns: AtomicU64::new(u64::MAX),
            per_second: Mutex::new(Vec::new()),
            send_lag: Mutex::new(histogram()),
            errors: Mutex::new(BTreeMap::new()),
            closes: Mutex::new(BTreeMap::new()),
            failures: Mutex::new(BTreeMap::new()),
        }
    }

    /// Marks `seq` received; false if it was already (or is out of range).
    fn mark(&self, seq: u64) -> bool {
        let Some(word) = usize::try_from(seq / 64)
            .ok()
            .and_then(|i| self.seen.get(i))
        else {
            return false;
        };
        let bit = 1u64 << (seq % 64);
        word.fetch_or(bit, Ordering::Relaxed) & bit == 0
    }

    /// Adds a latency to the histogram of the second of traffic `sent_ns` falls in.
    fn record_second(&self, sent_ns: u64, us: u64) {
        let start = self.traffic_start_ns.load(Ordering::Relaxed);
        if sent_ns < start {
            return;
        }
        let Ok(second) = usize::try_from((sent_ns - start) / 1_000_000_000) else {
            return;
        };
        let mut series = lock(&self.per_second);
        while series.len() <= second {
            series.push(histogram());
        }
        let _ = series[second].record(us);
    }

    fn count(map: &Mutex<BTreeMap<String, u64>>, key: String) {
        *lock(map).entry(key).or_insert(0) += 1;
    }
}

/// What the pacer tells a peer: send message `seq`, due at `due_ns` (on [`now_ns`]'s clock).
#[derive(Debug, Clone, Copy)]
pub struct Send {
    pub seq: u64,
    pub due_ns: u64,
}

/// One peer's settings.
#[derive(Debug, Clone)]
pub struct PeerSpec {
    pub url: String,
    pub room: String,
    /// Padding added to each message's `data` (bytes), to model larger frames.
    pub pad: Arc<str>,
}

/// The frames a peer reads; members it does not need are skipped.
#[derive(Debug, Deserialize)]
struct Incoming {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    peers: Option<Vec<String>>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    data: Option<serde_json::Value>,
    #[serde(default)]
    code: Option<String>,
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Runs one peer until its socket ends or `sends` closes. `permit` (connect concurrency) is
/// released once the peer has joined.
pub async fn run(
    spec: PeerSpec,
    stats: Arc<Stats>,
    mut sends: mpsc::UnboundedReceiver<Send>,
    permit: OwnedSemaphorePermit,
) {
    let (mut socket, me, mut partner) = match connect_and_join(&spec, &stats).await {
        Ok(joined) => joined,
        Err(cause) => {
            stats.failed.fetch_add(1, Ordering::Relaxed);
            Stats::count(&stats.failures, cause);
            return;
        }
    };
    drop(permit);
    if partner.is_some() {
        stats.paired.fetch_add(1, Ordering::Relaxed);
    }
    let end = loop {
        tokio::select! {
            send = sends.recv() => {
                let Some(send) = send else { break None };
                let Some(to) = partner.as_deref() else {
                    Stats::count(&stats.failures, "send before the partner was known".into());
                    continue;
                };
                let sent_ns = now_ns();
                let frame = format!(
                    r#"{{"type":"message","to":"{to}","data":{{"s":{},"t":{sent_ns}{}}}}}"#,
                    send.seq, spec.pad
                );
                if let Err(e) = socket.send(Message::text(frame)).await {
                    break Some(format!("send failed: {e}"));
                }
                stats.sent.fetch_add(1, Ordering::Relaxed);
                let lag_us = sent_ns.saturating_sub(send.due_ns) / 1_000;
                let _ = lock(&stats.send_lag).record(lag_us.clamp(1, HISTOGRAM_MAX_US));
            }
            frame = socket.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    let received_ns = now_ns();
                    if let Some(reply) = handle(text.as_str(), received_ns, &me, &mut partner, &stats) {
                        if let Err(e) = socket.send(Message::text(reply)).await {
                            break Some(format!("send failed: {e}"));
                        }
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    break Some(match frame {
                        Some(f) => format!("closed by the server: {} {}", u16::from(f.code), f.reason),
                        None => "closed by the server (no code)".into(),
                    });
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => break Some(format!("socket error: {e}")),
                None => break Some("socket ended".into()),
            },
        }
    };
    if let Some(why) = end {
        stats.closed.fetch_add(1, Ordering::Relaxed);
        Stats::count(&stats.closes, why);
    }
}

/// Handles one text frame; returns a frame to send back (`pong`), if any.
fn handle(
    text: &str,
    received_ns: u64,
    me: &str,
    partner: &mut Option<String>,
    stats: &Stats,
) -> Option<String> {
    let Ok(frame) = serde_json::from_str::<Incoming>(text) else {
        stats.unexpected.fetch_add(1, Ordering::Relaxed);
        return None;
    };
    match frame.kind.as_str() {
        "message" => {
            let from_partner = frame.from.is_some() && frame.from == *partner;
            let payload = frame
                .data
                .as_ref()
                .and_then(|d| Some((d.get("s")?.as_u64()?, d.get("t")?.as_u64()?)));
            match payload {
                Some((seq, sent_ns)) if from_partner => {
                    if stats.mark(seq) {
                        stats.received.fetch_add(1, Ordering::Relaxed);
                        let us = received_ns.saturating_sub(sent_ns) / 1_000;
                        let us = us.clamp(1, HISTOGRAM_MAX_US);
                        let _ = lock(&stats.latency).record(us);
                        stats.record_second(sent_ns, us);
                    } else {
                        stats.duplicates.fetch_add(1, Ordering::Relaxed);
                    }
                }
                _ => {
                    stats.misrouted.fetch_add(1, Ordering::Relaxed);
                }
            }
            None
        }
        "ping" => {
            stats.pings.fetch_add(1, Ordering::Relaxed);
            Some(r#"{"type":"pong"}"#.into())
        }
        "peer-joined" => {
            match (frame.id, partner.is_none()) {
                (Some(id), true) if id != me => {
                    *partner = Some(id);
                    stats.paired.fetch_add(1, Ordering::Relaxed);
                }
                _ => {
                    stats.unexpected.fetch_add(1, Ordering::Relaxed);
                }
            }
            None
        }
        "peer-left" => {
            stats.peer_left.fetch_add(1, Ordering::Relaxed);
            None
        }
        "error" => {
            Stats::count(
                &stats.errors,
                frame.code.unwrap_or_else(|| "(no code)".into()),
            );
            None
        }
        "pong" => None,
        _ => {
            stats.unexpected.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

/// Connects (with a few retries), sends `join` and waits for `joined`: the socket, this peer's
/// id and the partner's id if it was already in the room.
async fn connect_and_join(
    spec: &PeerSpec,
    stats: &Stats,
) -> Result<(Socket, String, Option<String>), String> {
    let mut attempt = 0;
    let mut socket = loop {
        attempt += 1;
        // A small read buffer: tungstenite allocates (and zeroes) `read_buffer_size` per
        // connection, 128 KiB by default, which would dominate the client's memory.
        let config = WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(0);
        let connect = tokio_tungstenite::connect_async_with_config(&spec.url, Some(config), true);
        match tokio::time::timeout(JOIN_TIMEOUT, connect).await {
            Ok(Ok((socket, _))) => break socket,
            Ok(Err(e)) if attempt >= CONNECT_ATTEMPTS => return Err(format!("connect: {e}")),
            Err(_) if attempt >= CONNECT_ATTEMPTS => return Err("connect: timed out".into()),
            _ => {
                stats.connect_retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            }
        }
    };
    stats.connected.fetch_add(1, Ordering::Relaxed);
    let join = format!(r#"{{"type":"join","room":"{}"}}"#, spec.room);
    socket
        .send(Message::text(join))
        .await
        .map_err(|e| format!("join: {e}"))?;
    let deadline = tokio::time::Instant::now() + JOIN_TIMEOUT;
    loop {
        let frame = tokio::time::timeout_at(deadline, socket.next())
            .await
            .map_err(|_| "join: no `joined` within 30 s".to_string())?;
        let text = match frame {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(f))) => {
                return Err(format!(
                    "join: closed ({})",
                    f.map_or(0, |f| u16::from(f.code))
                ))
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("join: {e}")),
            None => return Err("join: socket ended".into()),
        };
        let frame: Incoming =
            serde_json::from_str(text.as_str()).map_err(|e| format!("join: bad frame: {e}"))?;
        match frame.kind.as_str() {
            "joined" => {
                let me = frame.id.ok_or("join: `joined` without `id`")?;
                let partner = frame.peers.and_then(|p| p.into_iter().next());
                stats.joined.fetch_add(1, Ordering::Relaxed);
                return Ok((socket, me, partner));
            }
            "error" => {
                return Err(format!(
                    "join: error {}",
                    frame.code.unwrap_or_else(|| "(no code)".into())
                ))
            }
            "ping" => {
                stats.pings.fetch_add(1, Ordering::Relaxed);
                let _ = socket.send(Message::text(r#"{"type":"pong"}"#)).await;
            }
            _ => {
                stats.unexpected.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
