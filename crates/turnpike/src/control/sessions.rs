//! The allocations of every worker, for the admin API: listing and ending them by hand.
//!
//! Asked of each worker's loop by an async call: the HTTP handler's task waits for the
//! answers, no runtime thread does (a loop answers within one pass; a stuck or stopping
//! worker counts as having nothing after [`ANSWER_TIMEOUT`]).

use std::net::SocketAddr;
use std::time::Duration;

use turn::relay::sessions::SessionInfo;
use turn::relay::{ClientAddr, TurnServer};

use super::Control;
use crate::server::worker::WorkerHandle;
use crate::server::worker_state::{now, WorkerState};

/// How long the admin API waits for one worker's answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

/// `f` run on `worker`'s state; `None` when it stopped or did not answer in time.
async fn ask<T: Send + 'static>(
    worker: &WorkerHandle,
    f: impl FnOnce(&mut WorkerState) -> T + Send + 'static,
) -> Option<T> {
    tokio::time::timeout(ANSWER_TIMEOUT, worker.call(f))
        .await
        .ok()
        .flatten()
}

impl Control {
    /// Every allocation of every worker, oldest first.
    pub async fn sessions(&self) -> Vec<SessionInfo> {
        let mut all: Vec<SessionInfo> = Vec::new();
        for worker in self.workers.iter() {
            let theirs = ask(worker, |state| state.core.sessions(now().0)).await;
            all.extend(theirs.unwrap_or_default());
        }
        all.sort_by_key(|s| std::cmp::Reverse(s.age));
        all
    }

    /// Ends every allocation of `user`; returns how many.
    pub async fn kick_user(&self, user: &str) -> usize {
        let user = user.to_owned();
        self.each_core(move |state| {
            let state = &mut *state;
            let now = now().0;
            state
                .run(now, &mut [], |core, _| core.kick_user(now, &user))
                .0
        })
        .await
    }

    /// Ends every allocation of the client at `client` (one per transport at most); returns
    /// how many.
    pub async fn kick_client(&self, client: SocketAddr) -> usize {
        self.each_core(move |state| {
            let state = &mut *state;
            let now = now().0;
            let ours: Vec<_> = state
                .core
                .sessions(now)
                .into_iter()
                .map(|s| s.five_tuple)
                .filter(|t| t.client == ClientAddr::from(client))
                .collect();
            let kicked = |core: &mut TurnServer, _: &mut [u8]| {
                ours.iter().filter(|t| core.kick(now, t)).count()
            };
            state.run(now, &mut [], kicked).0
        })
        .await
    }

    /// Runs `f` on each worker's state, one at a time (a worker that does not answer counts
    /// 0); sums the results. The kicked allocations' channels leave the kernel fast path
    /// within the same job.
    async fn each_core(
        &self,
        f: impl Fn(&mut WorkerState) -> usize + Clone + Send + 'static,
    ) -> usize {
        let mut sum = 0;
        for worker in self.workers.iter() {
            let f = f.clone();
            let n = ask(worker, move |state| {
                let n = f(state);
                state.sync_kernel(now().0);
                n
            })
            .await;
            sum += n.unwrap_or(0);
        }
        sum
    }
}
