//! How the rest of the server reaches a worker: by message. A [`Job`] is a closure that the
//! worker's loop ([`crate::server::worker_loop`]) runs on its state between two passes, on the
//! worker's own thread; [`WorkerHandle::call`] (async) and [`WorkerHandle::call_blocking`]
//! (for synchronous callers on other threads) bring back its answer through a one-shot
//! channel, [`WorkerHandle::post`] expects none.
//!
//! One channel per worker, first in first out: the jobs of one sender run in the order sent
//! (a TCP/TLS connection's frames stay in order). The channel is unbounded because every
//! caller but [`WorkerHandle::post`] waits for its answer before sending again, so at most
//! one job per caller is queued; the posts are a few per RFC 6062 connection.

use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, OnceLock};
use std::thread::ThreadId;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use turn::relay::TurnStats;

use crate::metrics::io::IoCounters;
use crate::server::tcp_relay::TcpOwners;
use crate::server::worker_state::WorkerState;

/// Work for a worker's loop, run on its state.
pub type Job = Box<dyn FnOnce(&mut WorkerState) + Send>;

/// The loop's end of a worker's channel.
pub type JobReceiver = mpsc::UnboundedReceiver<Job>;

/// The longest a bounded caller ([`WorkerHandle::call_blocking`], [`WorkerHandle::call_bounded`])
/// waits for a worker's answer. A loop answers within one pass (well under a millisecond);
/// this bound only matters for a worker that is stuck or stopping, whose answer is then
/// missing rather than awaited forever.
const BLOCKING_CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// The sending end of a worker's channel: what its handle and its own RFC 6062 tasks (which
/// report to the core that started them) use to reach its loop.
#[derive(Debug, Clone)]
pub struct Mailbox {
    jobs: mpsc::UnboundedSender<Job>,
    /// The worker's thread, on which a blocking call would wait for itself.
    thread: ThreadId,
}

impl Mailbox {
    /// The mailbox of the worker running on this thread, and its loop's end.
    pub fn new() -> (Mailbox, JobReceiver) {
        let (jobs, receiver) = mpsc::unbounded_channel();
        let thread = std::thread::current().id();
        (Mailbox { jobs, thread }, receiver)
    }

    /// Queues `job` for the loop; false when the worker has stopped.
    pub fn post(&self, job: impl FnOnce(&mut WorkerState) + Send + 'static) -> bool {
        self.jobs.send(Box::new(job)).is_ok()
    }

    /// Runs `f` on the worker's state and returns its value; `None` when the worker has
    /// stopped.
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut WorkerState) -> T + Send + 'static,
    ) -> Option<T> {
        let (reply, answer) = oneshot::channel();
        let sent = self.post(move |state| {
            let _ = reply.send(f(state));
        });
        if !sent {
            return None;
        }
        answer.await.ok()
    }

    /// [`Mailbox::call`] for a synchronous caller (a metrics collector, a reload): the
    /// thread waits, at most [`BLOCKING_CALL_TIMEOUT`]. `None` when the worker has stopped,
    /// did not answer in time, or this is the worker's own thread (its loop cannot run
    /// while the thread waits for it).
    pub fn call_blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut WorkerState) -> T + Send + 'static,
    ) -> Option<T> {
        if std::thread::current().id() == self.thread {
            // A caller's mistake, but one that must not hang the worker: no answer.
            tracing::warn!("a blocking call from the worker's own thread was refused");
            return None;
        }
        let (reply, answer) = std_mpsc::sync_channel(1);
        let sent = self.post(move |state| {
            let _ = reply.send(f(state));
        });
        if !sent {
            return None;
        }
        answer.recv_timeout(BLOCKING_CALL_TIMEOUT).ok()
    }
}

/// A running worker, as the rest of the server reaches it: TCP/TLS connections assigned to
/// it are spawned on its runtime and talk to its loop through its [`Mailbox`].
#[derive(Debug, Clone)]
pub struct WorkerHandle {
    /// Its position, for logs.
    pub index: usize,
    /// Its runtime.
    pub runtime: tokio::runtime::Handle,
    /// Its I/O drop counters, for metrics.
    pub io: Arc<IoCounters>,
    /// Its loop's jobs.
    pub mailbox: Mailbox,
    /// Which worker holds each TCP peer connection (RFC 6062), for the whole server.
    pub tcp_owners: TcpOwners,
    /// Its counters when it stopped, for the server's totals.
    stopped: Arc<OnceLock<TurnStats>>,
}

impl WorkerHandle {
    /// The handle of the worker running on this thread.
    pub fn new(
        index: usize,
        io: Arc<IoCounters>,
        mailbox: Mailbox,
        tcp_owners: TcpOwners,
    ) -> WorkerHandle {
        WorkerHandle {
            index,
            runtime: tokio::runtime::Handle::current(),
            io,
            mailbox,
            tcp_owners,
            stopped: Arc::default(),
        }
    }

    /// See [`Mailbox::post`].
    pub fn post(&self, job: impl FnOnce(&mut WorkerState) + Send + 'static) -> bool {
        self.mailbox.post(job)
    }

    /// See [`Mailbox::call`].
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut WorkerState) -> T + Send + 'static,
    ) -> Option<T> {
        self.mailbox.call(f).await
    }

    /// [`WorkerHandle::call`] that gives up after [`BLOCKING_CALL_TIMEOUT`], as
    /// [`WorkerHandle::call_blocking`] does, for async callers that answer someone (the admin
    /// API): `None` also when the worker did not answer in time.
    pub async fn call_bounded<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut WorkerState) -> T + Send + 'static,
    ) -> Option<T> {
        tokio::time::timeout(BLOCKING_CALL_TIMEOUT, self.call(f))
            .await
            .ok()
            .flatten()
    }

    /// See [`Mailbox::call_blocking`].
    pub fn call_blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut WorkerState) -> T + Send + 'static,
    ) -> Option<T> {
        self.mailbox.call_blocking(f)
    }

    /// Records the worker's counters at its stop.
    pub fn set_stopped(&self, stats: TurnStats) {
        let _ = self.stopped.set(stats);
    }

    /// The worker's counters at its stop, once it has stopped.
    pub fn stopped(&self) -> Option<&TurnStats> {
        self.stopped.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stopped_worker_answers_none_at_once() {
        let (mailbox, jobs) = Mailbox::new();
        drop(jobs);
        assert!(!mailbox.post(|_| {}));
        assert_eq!(mailbox.call(|_| 1).await, None);
        let other = mailbox.clone();
        let blocking = std::thread::spawn(move || other.call_blocking(|_| 1));
        assert_eq!(blocking.join().expect("no panic"), None);
    }

    #[test]
    fn a_blocking_call_from_the_worker_thread_is_refused_not_a_deadlock() {
        let (mailbox, _jobs) = Mailbox::new();
        // `_jobs` is alive but nobody runs it: waiting would hang this thread.
        assert_eq!(mailbox.call_blocking(|_| 1), None);
    }

    #[tokio::test]
    async fn a_job_left_queued_when_the_loop_ends_is_answered_none() {
        let (mailbox, jobs) = Mailbox::new();
        let waiting = tokio::spawn(async move { mailbox.call(|_| 1).await });
        tokio::task::yield_now().await;
        // The loop ends without running it: the caller does not wait for the timeout.
        drop(jobs);
        let answer = tokio::time::timeout(Duration::from_secs(1), waiting).await;
        assert_eq!(answer.expect("answered at once").expect("no panic"), None);
    }
}
