//! The log lines of the TURN core's events ([`turn::relay::TurnEvent`]): one per allocation at
//! creation and at end, one per authentication failure (rate-limited), one per server-side
//! cause of a 508/486 per interval. docs/operations.md "Logs" lists every line and field.
//!
//! Each worker's loop ([`crate::server::worker_loop`]) drains its own core every
//! [`POLL_INTERVAL`] and hands the events to one process-wide
//! [`EventLog`], whose limits hold for the whole server: a flood spread over every worker
//! still writes at most [`AUTH_LINES_BURST`] + [`AUTH_LINES_PER_SECOND`] lines per second of
//! authentication failures.
//!
//! Unlike the per-packet paths, these lines carry client addresses and usernames: an operator
//! needs them to account for and trace the use of the relay (issue #11). They go to their own
//! targets (`turnpike::session`, `turnpike::auth`, `turnpike::server_error`) so that the log
//! filter can route or silence them.

use std::collections::HashMap;
use std::fmt;
use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tracing::{info, warn};
use turn::relay::{
    AuthFailure, EndReason, RelayAddress, ServerError, ServerErrorCause, SessionInfo, TurnEvent,
};

use crate::server::worker_state::WorkerState;

/// How often a worker drains its core's events: a line appears at most this late, and the
/// core's queue ([`turn::relay::EVENT_QUEUE_CAPACITY`]) covers what arrives meanwhile.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Every this many drains (2 s), the kernel fast path's per-channel counters are read back
/// into the session records: two map lookups per channel, so not every 100 ms with tens of
/// thousands of channels. A channel's last counters are read exactly when it leaves the maps.
const KERNEL_READ_BACK_EVERY: u32 = 20;
/// Authentication-failure lines written at once before the rate applies.
pub const AUTH_LINES_BURST: u32 = 20;
/// Authentication-failure lines per second in a sustained flood (≈ 170,000 a day, tens of
/// MB, however fast the flood).
pub const AUTH_LINES_PER_SECOND: u32 = 2;
/// At most one "suppressed" summary per this interval while failures are being dropped.
pub const AUTH_SUMMARY_INTERVAL: Duration = Duration::from_secs(10);
/// A server-side cause (an empty port pool, EMFILE, a quota) is logged once per this
/// interval, then its repeats are counted in one summary line.
pub const SERVER_ERROR_INTERVAL: Duration = Duration::from_secs(60);

/// The log of every worker's events, with the process-wide rate limits.
static LOG: LazyLock<Mutex<EventLog>> = LazyLock::new(|| Mutex::new(EventLog::new(Instant::now())));

/// Takes the process-wide log; a panic while logging leaves counters that are still usable.
fn global() -> MutexGuard<'static, EventLog> {
    LOG.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A worker's share of the event log: on each tick of its loop ([`POLL_INTERVAL`]) the loop
/// takes the events queued in its core ([`EventTicks::take`], while it holds the core) and
/// then logs them ([`EventTicks::log`], after releasing it, so that writing a line never
/// holds up the data path).
#[derive(Debug, Default)]
pub struct EventTicks {
    batch: Vec<TurnEvent>,
    ticks: u32,
}

impl EventTicks {
    /// Takes the events queued in the core; every [`KERNEL_READ_BACK_EVERY`] ticks, reads the
    /// kernel fast path's counters back first.
    pub fn take(&mut self, state: &mut WorkerState) {
        self.ticks = self.ticks.wrapping_add(1);
        take(
            state,
            &mut self.batch,
            self.ticks % KERNEL_READ_BACK_EVERY == 0,
        );
    }

    /// Logs what [`EventTicks::take`] took.
    pub fn log(&mut self) {
        log(&mut self.batch);
    }
}

/// Takes the events queued in the core into `batch`.
fn take(state: &mut WorkerState, batch: &mut Vec<TurnEvent>, read_kernel: bool) {
    // The kernel fast path's traffic since the last tick goes into the session records
    // before their events are taken (an ended allocation's last counters are read when its
    // channels leave the kernel, in the call that ended it).
    if let Some(channels) = state.kernel.as_mut().filter(|_| read_kernel) {
        crate::server::kernel_path::read_back(&mut state.core, channels);
    }
    batch.extend(std::iter::from_fn(|| state.core.poll_event()));
}

/// Logs the events of `batch`, under the process-wide limits.
fn log(batch: &mut Vec<TurnEvent>) {
    let now = Instant::now();
    let mut log = global();
    for event in batch.drain(..) {
        log.record(now, event);
    }
    log.tick(now);
}

/// At a worker's stop: logs the end of its allocations (reason shutdown) and what is left in
/// its queue. The pending summaries wait for [`flush`], once every worker has stopped: a
/// worker that flushed on its own would close the windows while another still had events of
/// the same cause queued, and those would get full lines again (a CI run saw two "relay port
/// pool empty" lines for one interval this way).
pub fn shut_down(state: &mut WorkerState) {
    let mut batch = Vec::new();
    let (now, _) = crate::server::worker_state::now();
    state.core.shutdown(now);
    // The ended allocations' channels leave the kernel, and their last counters reach the
    // end events logged below.
    state.sync_kernel(now);
    take(state, &mut batch, true);
    log(&mut batch);
}

/// Writes the pending summaries (auth failures, repeated server errors), once every worker
/// has stopped.
pub fn flush() {
    global().flush();
}

/// The rate limits and the repeat counts between lines.
#[derive(Debug)]
struct EventLog {
    auth: AuthLines,
    /// Per server-side cause: when its last full line was written, and repeats since.
    server_errors: HashMap<ServerErrorCause, ErrorWindow>,
}

#[derive(Debug, Clone, Copy)]
struct ErrorWindow {
    code: u16,
    since: Instant,
    repeats: u64,
}

/// A token bucket of authentication-failure lines.
#[derive(Debug)]
struct AuthLines {
    tokens: f64,
    refilled: Instant,
    suppressed: u64,
    last_summary: Instant,
}

impl AuthLines {
    fn new(now: Instant) -> Self {
        AuthLines {
            tokens: f64::from(AUTH_LINES_BURST),
            refilled: now,
            suppressed: 0,
            last_summary: now,
        }
    }

    /// Takes a line from the bucket; false when the line must be suppressed (and counted).
    fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * f64::from(AUTH_LINES_PER_SECOND))
            .min(f64::from(AUTH_LINES_BURST));
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return true;
        }
        self.suppressed += 1;
        false
    }

    /// Writes the "suppressed" summary when one is due (or `force`d at the end).
    fn summarise(&mut self, now: Instant, force: bool) {
        let due = now.saturating_duration_since(self.last_summary) >= AUTH_SUMMARY_INTERVAL;
        if self.suppressed == 0 || !(due || force) {
            return;
        }
        warn!(
            target: "turnpike::auth",
            suppressed = self.suppressed,
            interval_s = now.saturating_duration_since(self.last_summary).as_secs(),
            "authentication-failure lines suppressed (rate limit of the log)"
        );
        self.suppressed = 0;
        self.last_summary = now;
    }
}

impl EventLog {
    fn new(now: Instant) -> Self {
        EventLog {
            auth: AuthLines::new(now),
            server_errors: HashMap::new(),
        }
    }

    fn record(&mut self, now: Instant, event: TurnEvent) {
        match event {
            TurnEvent::AllocationCreated(session) => session_line(&session, None),
            TurnEvent::AllocationEnded { session, reason } => session_line(&session, Some(reason)),
            TurnEvent::AuthFailed(failure) if self.auth.take(now) => auth_failed(&failure),
            // Over the rate: counted by `take` for the summary.
            TurnEvent::AuthFailed(_) => {}
            TurnEvent::ServerError(error) => self.server_error(now, &error),
            TurnEvent::Lost {
                auth_failures,
                events,
            } => {
                self.auth.suppressed += auth_failures;
                if events > 0 {
                    warn!(
                        target: "turnpike::session",
                        lost = events,
                        "events lost: a worker's event queue was full (allocation lines missing)"
                    );
                }
            }
            _ => {}
        }
    }

    /// A cause's first occurrence in its interval gets a full line; the others are counted.
    fn server_error(&mut self, now: Instant, error: &ServerError) {
        if let Some(window) = self.server_errors.get_mut(&error.cause) {
            if now.saturating_duration_since(window.since) < SERVER_ERROR_INTERVAL {
                window.repeats += 1;
                return;
            }
            repeated(&error.cause, window, now);
        }
        warn!(
            target: "turnpike::server_error",
            code = error.code,
            cause = %error.cause,
            user = %error.username,
            client = %error.five_tuple.client,
            interval_s = SERVER_ERROR_INTERVAL.as_secs(),
            "request refused for a server-side reason"
        );
        self.server_errors.insert(
            error.cause,
            ErrorWindow {
                code: error.code,
                since: now,
                repeats: 0,
            },
        );
    }

    /// Writes the summaries that are due.
    fn tick(&mut self, now: Instant) {
        self.auth.summarise(now, false);
        self.server_errors.retain(|cause, window| {
            if now.saturating_duration_since(window.since) < SERVER_ERROR_INTERVAL {
                return true;
            }
            repeated(cause, window, now);
            false
        });
    }

    /// Writes every pending summary (at stop).
    fn flush(&mut self) {
        let now = Instant::now();
        self.auth.summarise(now, true);
        for (cause, window) in self.server_errors.drain() {
            repeated(&cause, &window, now);
        }
    }
}

/// The summary of a cause's repeats in its interval, when there were any.
fn repeated(cause: &ServerErrorCause, window: &ErrorWindow, now: Instant) {
    if window.repeats == 0 {
        return;
    }
    warn!(
        target: "turnpike::server_error",
        code = window.code,
        cause = %cause,
        repeats = window.repeats,
        interval_s = now.saturating_duration_since(window.since).as_secs(),
        "request refused for a server-side reason, repeated"
    );
}

/// Relay addresses as a field: advertised (what clients and peers use) or bound.
struct Relays<'a>(&'a [RelayAddress], bool);

impl fmt::Display for Relays<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, relay) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            let addr = if self.1 {
                relay.advertised
            } else {
                relay.bound
            };
            write!(f, "{addr}")?;
        }
        Ok(())
    }
}

/// The line of an allocation's creation (`end` is `None`) or end: the end adds the
/// duration, the traffic each way and the reason, and drops the lifetime.
fn session_line(s: &SessionInfo, end: Option<EndReason>) {
    let ended = end.is_some();
    let traffic = &s.traffic;
    info!(
        target: "turnpike::session",
        user = %s.username,
        realm = %s.realm,
        client = %s.five_tuple.client,
        server = %s.five_tuple.server,
        transport = s.five_tuple.transport.name(),
        relay = %Relays(&s.relays, true),
        relay_bound = %Relays(&s.relays, false),
        lifetime_s = (!ended).then_some(s.remaining.as_secs()),
        duration_ms = ended.then(|| u64::try_from(s.age.as_millis()).unwrap_or(u64::MAX)),
        to_peer_packets = ended.then_some(traffic.to_peer.packets),
        to_peer_bytes = ended.then_some(traffic.to_peer.bytes),
        to_client_packets = ended.then_some(traffic.to_client.packets),
        to_client_bytes = ended.then_some(traffic.to_client.bytes),
        reason = end.map(|r| r.as_str()),
        "{}",
        if ended { "allocation ended" } else { "allocation created" }
    );
}

fn auth_failed(failure: &AuthFailure) {
    info!(
        target: "turnpike::auth",
        reason = auth_reason(failure),
        source = %failure.source,
        transport = failure.transport.name(),
        user = failure.username.as_deref().unwrap_or(""),
        "authentication failed"
    );
}

fn auth_reason(failure: &AuthFailure) -> &'static str {
    use turn::auth::AuthRejection;
    match failure.reason {
        AuthRejection::BadRequest => "bad-request",
        AuthRejection::WrongCredentials => "wrong-credentials",
        AuthRejection::RateLimited => "rate-limited",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use turn::relay::ClientTransport;

    fn port_pool_empty(username: &str) -> ServerError {
        let five_tuple = turn::relay::FiveTuple {
            client: std::net::SocketAddr::from(([192, 0, 2, 1], 5000)).into(),
            server: ([192, 0, 2, 2], 3478).into(),
            transport: ClientTransport::Udp,
        };
        ServerError::new(
            508,
            ServerErrorCause::PortPoolEmpty {
                ip: [192, 0, 2, 3].into(),
            },
            five_tuple,
            username,
        )
    }

    // Once per cause per interval: repeats are counted, the window closes after the interval
    // (its summary written), and the next occurrence opens a new one.
    #[test]
    fn a_cause_is_logged_once_per_interval() {
        let start = Instant::now();
        let mut log = EventLog::new(start);
        let error = port_pool_empty("alice");
        let second = |s: u64| start + Duration::from_secs(s);
        for s in [0, 1, 30, 59] {
            log.server_error(second(s), &error);
        }
        let window = log.server_errors[&error.cause];
        assert_eq!((window.since, window.repeats), (start, 3));
        log.tick(second(59));
        assert_eq!(log.server_errors.len(), 1, "still in its interval");
        log.tick(second(60));
        assert!(log.server_errors.is_empty(), "closed with its summary");
        log.server_error(second(61), &error);
        let window = log.server_errors[&error.cause];
        assert_eq!((window.since, window.repeats), (second(61), 0));
        // A late occurrence with no tick in between opens the new window itself.
        log.server_error(second(200), &error);
        assert_eq!(log.server_errors[&error.cause].since, second(200));
    }

    #[test]
    fn the_auth_bucket_bounds_lines() {
        let start = Instant::now();
        let mut lines = AuthLines::new(start);
        // 10,000 failures in one second: the burst and one second's refill.
        let written = (0..10_000)
            .filter(|i| lines.take(start + Duration::from_micros(i * 100)))
            .count();
        let most = (AUTH_LINES_BURST + AUTH_LINES_PER_SECOND) as usize;
        assert!(
            written <= most && written >= AUTH_LINES_BURST as usize,
            "{written}"
        );
        assert_eq!(lines.suppressed, 10_000 - written as u64);
        // After a quiet while the burst is back, and no more.
        let later = start + Duration::from_secs(3600);
        let written = (0..100).filter(|_| lines.take(later)).count();
        assert_eq!(written, AUTH_LINES_BURST as usize);
    }
}
