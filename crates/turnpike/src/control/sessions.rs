//! The allocations of every worker, for the admin API: listing and ending them by hand.
//!
//! Asked of each worker's loop by a bounded async call
//! ([`crate::server::worker::WorkerHandle::call_bounded`]): the HTTP handler's task waits for
//! the answers, no runtime thread does; a stuck or stopping worker counts as having nothing.

use std::net::SocketAddr;

use turn::relay::sessions::SessionInfo;
use turn::relay::{ClientAddr, TurnServer};

use super::Control;
use crate::server::worker_state::{now, WorkerState};

impl Control {
    /// Every allocation of every worker, oldest first.
    pub async fn sessions(&self) -> Vec<SessionInfo> {
        let mut all: Vec<SessionInfo> = Vec::new();
        for worker in self.workers.iter() {
            let theirs = worker
                .call_bounded(|state| state.core.sessions(now().0))
                .await;
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
            let n = worker
                .call_bounded(move |state| {
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
