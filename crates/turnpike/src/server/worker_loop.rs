//! The worker loop: one task per worker serves every UDP socket it owns (its listener sockets
//! and all its relay sockets), its TURN timers and its event log tick.
//!
//! Every one of those sockets is registered, edge-triggered, with the worker's one epoll set
//! ([`net::PollSet`]): relay sockets under their slab key in the
//! [`crate::server::relay_registry::RelayRegistry`], listener sockets from [`LISTENER_TOKENS`]
//! on. One `epoll_wait` thus returns ready listeners and ready relay sockets together, and one
//! pass drains them all: a listener through [`crate::server::udp_listener`] (client →
//! core → reply or peer), a relay socket through [`crate::server::relay_loop`] (peer → core →
//! framed for the client, several sockets' datagrams in one batch, sent at the end of the
//! pass or whenever the batch is full).
//!
//! The loop waits (`tokio::select!`) for the first of: the epoll set's readiness, a job sent
//! through the worker's handle ([`crate::server::worker_handle`]: TCP/TLS connections,
//! metrics, control), the core's next timer deadline ([`TurnServer::poll_timeout`](turn::relay::TurnServer::poll_timeout),
//! at most [`TIMER_GRANULARITY`] away), the event log's tick
//! ([`crate::server::server_events::POLL_INTERVAL`]), and the worker's stop signal. The timers
//! and the tick are checked after every pass as well, so that a flood of carried sockets (the
//! loop then does not wait) cannot hold them off.
//!
//! Fairness is explicit: a socket, listener or relay, gets at most [`BUDGET`] batches per
//! pass; one with datagrams still waiting is carried to the next pass (its edge-triggered
//! event will not come again), which then polls the set without waiting, after yielding once
//! to the worker's other tasks (its TCP/TLS connections).
//!
//! The loop owns the worker's state ([`WorkerState`]: the TURN core, the relay registry, the
//! TCP/TLS connections' queues) by value: no lock, no `Weak`. Everything else reaches it as a
//! job through the worker's mailbox ([`crate::server::worker_handle`]), run between two
//! passes. Nothing in a pass awaits (a send that finds a buffer full is dropped and counted,
//! never waited out, see [`crate::server::outbox`]).

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use anyhow::Context;
use mio::unix::SourceFd;
use mio::{Events, Interest, Token};
use net::{Batching, PollSet};
use tokio::sync::watch;

use crate::server::relay_loop::RelayReader;
use crate::server::relay_registry::Egress;
use crate::server::server_events::{EventTicks, POLL_INTERVAL};
use crate::server::udp_listener::{ListenerBuffers, UdpListener};
use crate::server::worker_handle::{Job, JobReceiver};
use crate::server::worker_state::WorkerState;

/// Batches (of up to [`net::MAX_BATCH`] datagrams) read from one socket per pass, so that
/// one busy client or allocation cannot keep the others waiting.
pub const BUDGET: usize = 4;

/// Jobs run per pass (see [`crate::server::worker_handle`]); the rest wait for the next.
const JOB_BUDGET: usize = 64;

/// Readiness events taken from the epoll set per pass. More ready sockets than this stay
/// ready in the set and are read on the next pass.
const EVENTS: usize = 1_024;

/// Epoll tokens from here on are listener sockets (`LISTENER_TOKENS + i` is listener `i`);
/// those below are relay sockets' slab keys, which stay dense and never come near it.
const LISTENER_TOKENS: usize = usize::MAX / 2;

/// The longest the loop goes without asking the core for its timers: lifetimes are whole
/// seconds, so a deadline that moved earlier is never missed by more than this.
pub const TIMER_GRANULARITY: Duration = Duration::from_secs(1);

/// Whether a socket was read until nothing was waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// Nothing waiting: its next edge-triggered event brings it back.
    Yes,
    /// Its budget ran out with datagrams waiting: carry it to the next pass.
    No,
}

/// One worker's loop and everything it owns: its state (the TURN core, by value) and its
/// sockets.
pub struct WorkerLoop {
    set: PollSet,
    state: WorkerState,
    sockets: Sockets,
}

/// The loop's UDP sockets and their buffers.
struct Sockets {
    listeners: Vec<UdpListener>,
    listener_buffers: ListenerBuffers,
    relays: RelayReader,
    batching: Batching,
}

impl WorkerLoop {
    /// A loop over `set` (which the worker's relay registry registers its sockets with) and
    /// `listeners`, which this registers with it; framed peer data leaves through `egress`.
    pub fn new(
        set: PollSet,
        state: WorkerState,
        listeners: Vec<UdpListener>,
        egress: Egress,
    ) -> anyhow::Result<Self> {
        let registry = set.registry().context("the worker's epoll set")?;
        for (i, listener) in listeners.iter().enumerate() {
            // Edge-triggered: each pass reads a listener until it is drained, or carries it.
            registry
                .register(
                    &mut SourceFd(&listener.socket().as_raw_fd()),
                    Token(LISTENER_TOKENS + i),
                    Interest::READABLE,
                )
                .with_context(|| format!("registering UDP {}", listener.local()))?;
        }
        let batching = Batching::detect();
        Ok(WorkerLoop {
            set,
            state,
            sockets: Sockets {
                listeners,
                listener_buffers: ListenerBuffers::new(),
                relays: RelayReader::new(egress, batching),
                batching,
            },
        })
    }

    /// Serves, and runs the `jobs` sent through the worker's handle, until `stop` turns true
    /// (or its sender goes): `Ok`. An error is a listener socket's or the epoll set's, and
    /// stops the worker. Either way the state comes back, for the worker's shutdown.
    pub async fn run(
        mut self,
        jobs: JobReceiver,
        stop: watch::Receiver<bool>,
    ) -> (anyhow::Result<()>, WorkerState) {
        let result = self.serve(jobs, stop).await;
        (result, self.state)
    }

    async fn serve(
        &mut self,
        mut jobs: JobReceiver,
        mut stop: watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        let mut events = Events::with_capacity(EVENTS);
        // Sockets left with datagrams waiting by the last pass, and those of this pass.
        let mut carried: Vec<usize> = Vec::new();
        let mut ready: Vec<usize> = Vec::with_capacity(EVENTS);
        let mut ticks = EventTicks::default();
        let mut deadline = next_deadline(&self.state);
        let mut next_tick = Instant::now() + POLL_INTERVAL;
        // The job that woke the loop, run with the others queued behind it.
        let mut woken_by: Option<Job> = None;
        loop {
            ready.clear();
            ready.append(&mut carried);
            if ready.is_empty() {
                tokio::select! {
                    woke = self.set.wait(&mut events) => {
                        woke.context("the worker's epoll set")?;
                        ready.extend(events.iter().map(|e| e.token().0));
                    }
                    () = tokio::time::sleep_until(deadline.min(next_tick).into()) => {}
                    Some(job) = jobs.recv() => woken_by = Some(job),
                    _ = stop.wait_for(|stop| *stop) => return Ok(()),
                }
            } else {
                // Carried sockets first, without waiting; still pick up new events. The
                // worker's other tasks (its TCP/TLS connections) run first.
                tokio::task::yield_now().await;
                if *stop.borrow() {
                    return Ok(());
                }
                self.set
                    .poll_now(&mut events)
                    .context("the worker's epoll set")?;
                ready.extend(events.iter().map(|e| e.token().0));
            }
            let tick = Instant::now() >= next_tick;
            let state = &mut self.state;
            self.sockets.pass(state, &ready, &mut carried)?;
            run_jobs(state, woken_by.take(), &mut jobs);
            if Instant::now() >= deadline {
                on_timeout(state);
            }
            if tick {
                ticks.take(state);
            }
            deadline = next_deadline(state);
            if tick {
                ticks.log();
                next_tick = Instant::now() + POLL_INTERVAL;
            }
        }
    }
}

impl Sockets {
    /// One pass over the ready sockets: receive, hand to the core, send. Sockets that still
    /// have datagrams waiting when their budget is spent go to `carried`.
    fn pass(
        &mut self,
        state: &mut WorkerState,
        ready: &[usize],
        carried: &mut Vec<usize>,
    ) -> anyhow::Result<()> {
        // The peer path needs only the monotonic clock (no credentials are checked).
        let now = Instant::now();
        for &token in ready {
            let drained = match token.checked_sub(LISTENER_TOKENS) {
                Some(i) => {
                    let Some(listener) = self.listeners.get(i) else {
                        continue;
                    };
                    listener
                        .serve(state, &mut self.listener_buffers, self.batching)
                        .with_context(|| format!("UDP socket {}", listener.local()))?
                }
                None => self.relays.serve(state, token, now),
            };
            if drained == Drained::No {
                carried.push(token);
            }
        }
        self.relays.flush();
        Ok(())
    }
}

/// Runs `first` and the jobs queued behind it, at most [`JOB_BUDGET`] in all: a flood of
/// callers cannot keep the sockets waiting either.
fn run_jobs(state: &mut WorkerState, first: Option<Job>, jobs: &mut JobReceiver) {
    let queued = std::iter::from_fn(|| jobs.try_recv().ok());
    for job in first.into_iter().chain(queued).take(JOB_BUDGET) {
        job(state);
    }
}

/// When the loop must next run the core's timers.
fn next_deadline(state: &WorkerState) -> Instant {
    let cap = Instant::now() + TIMER_GRANULARITY;
    state.core.poll_timeout().map_or(cap, |t| t.min(cap))
}

/// Expires allocations, permissions and channels on time.
fn on_timeout(state: &mut WorkerState) {
    let (now, _) = crate::server::worker_state::now();
    state.run(now, &mut [], |core, _| core.handle_timeout(now));
    // Expired permissions and channels leave the kernel at once.
    state.sync_kernel(now);
    // Connect answers (447) of attempts that timed out.
    crate::server::tcp_relay::flush_control(state);
}
