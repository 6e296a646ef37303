//! The allocations of every worker, for the admin API: listing and ending them by hand.

use std::net::SocketAddr;

use turn::relay::sessions::SessionInfo;
use turn::relay::{ClientAddr, TurnServer};

use super::Control;
use crate::server::shared::now;

impl Control {
    /// Every allocation of every worker, oldest first.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        let mut all: Vec<SessionInfo> = self
            .workers
            .iter()
            .flat_map(|worker| {
                worker
                    .call_blocking(|state| state.core.sessions(now().0))
                    .unwrap_or_default()
            })
            .collect();
        all.sort_by_key(|s| std::cmp::Reverse(s.age));
        all
    }

    /// Ends every allocation of `user`; returns how many.
    pub fn kick_user(&self, user: &str) -> usize {
        let user = user.to_owned();
        self.each_core(move |state| {
            let state = &mut *state;
            let now = now().0;
            state
                .run(now, &mut [], |core, _| core.kick_user(now, &user))
                .0
        })
    }

    /// Ends every allocation of the client at `client` (one per transport at most); returns
    /// how many.
    pub fn kick_client(&self, client: SocketAddr) -> usize {
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
    }

    /// Runs `f` on each worker's state, one at a time (a worker that does not answer counts
    /// 0); sums the results. The kicked allocations' channels leave the kernel fast path
    /// within the same job.
    fn each_core(
        &self,
        f: impl Fn(&mut crate::server::shared::Shared) -> usize + Clone + Send + 'static,
    ) -> usize {
        self.workers
            .iter()
            .map(|worker| {
                let f = f.clone();
                worker
                    .call_blocking(move |state| {
                        let n = f(state);
                        state.sync_kernel(now().0);
                        n
                    })
                    .unwrap_or(0)
            })
            .sum()
    }
}
