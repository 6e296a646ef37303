//! Configuration reload: read the file again, validate it as `turnpike config check` and
//! `serve` do, and apply what can change without a restart to every worker's core, under
//! that worker's lock. An invalid file changes nothing.

use tracing::{info, warn};
use turn::relay::Reloadable;

use super::restart_keys::needing_restart;
use super::Control;
use crate::config::{self, Config};
use crate::server::turn_setup;

/// What a reload applied.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Reloaded {
    /// Static users now known (file and database).
    pub users: usize,
    /// REST secrets now accepted.
    pub rest_secrets: usize,
    /// Changed keys that keep their old values until a restart.
    pub restart_needed: Vec<String>,
}

/// Why a reload changed nothing: every problem, one per entry, as `config check` prints
/// them (key and reason, never a secret value).
#[derive(Debug, Clone, thiserror::Error, serde::Serialize)]
#[error("the configuration was not reloaded: {}", problems.join("; "))]
pub struct ReloadError {
    /// The problems.
    pub problems: Vec<String>,
}

impl ReloadError {
    fn one(problem: String) -> ReloadError {
        ReloadError {
            problems: vec![problem],
        }
    }
}

impl Control {
    /// Reloads the configuration; logs the outcome (every problem when the file is invalid,
    /// the keys needing a restart when some changed). `cause` names what asked ("SIGHUP",
    /// "admin").
    pub fn reload(&self, cause: &'static str) -> Result<Reloaded, ReloadError> {
        let result = self.try_reload();
        match &result {
            Ok(done) => {
                info!(
                    cause,
                    users = done.users,
                    rest_secrets = done.rest_secrets,
                    "configuration reloaded"
                );
                if !done.restart_needed.is_empty() {
                    warn!(
                        keys = %done.restart_needed.join(", "),
                        "configuration keys changed that need a restart; they keep their old values"
                    );
                }
            }
            Err(error) => {
                for problem in &error.problems {
                    warn!(cause, %problem, "configuration not reloaded");
                }
            }
        }
        result
    }

    fn try_reload(&self) -> Result<Reloaded, ReloadError> {
        // Held throughout: two reloads never interleave their updates of the cores.
        let mut current = self.config();
        let new = config::load_with(
            self.source.file.as_deref(),
            &self.source.cli,
            crate::server::host_checks::problems,
        )
        .map_err(|error| ReloadError {
            problems: error.problems.iter().map(ToString::to_string).collect(),
        })?;
        if new.realm != current.realm {
            // Every user's key is derived from the realm, and so are the nonces clients hold.
            return Err(ReloadError::one(
                "key `realm`: changing the realm needs a restart; nothing was reloaded".to_owned(),
            ));
        }
        let settings = turn_setup::configured_settings(&new)
            .map_err(|error| ReloadError::one(format!("{error:#}")))?;
        let mut rest_secrets = settings.auth.rest_secrets;
        if current.turn && settings.auth.users.is_empty() && rest_secrets.is_empty() {
            // Still no credentials configured: keep the one made up at start (if any), which
            // the HTTP API hands out.
            rest_secrets.extend(self.made_up_secret.clone());
        }
        // The certificate files are re-read whether or not their paths changed (a renewal
        // replaces the files in place); a pair that does not load keeps the old one, and
        // fails the reload before anything else changed.
        self.certificates
            .reload()
            .map_err(|error| ReloadError::one(format!("{error:#}")))?;
        if new.log_level != current.log_level {
            crate::logging::set_level(&new.log_level)
                .map_err(|error| ReloadError::one(format!("key `log-level`: {error:#}")))?;
        }
        let users = settings.auth.users.len();
        let update = Reloadable::new(
            &settings.turn,
            &current.realm,
            settings.auth.users,
            rest_secrets,
            settings.policy,
        );
        let update_secrets = update.rest_secrets.clone();
        let reloaded = Reloaded {
            users,
            rest_secrets: update.rest_secrets.len(),
            restart_needed: needing_restart(&current, &new),
        };
        for worker in self.workers.iter() {
            // Cloned here; the worker's loop only swaps values, and what they replaced is
            // sent back to be freed on this thread, not the loop's.
            let update = update.clone();
            let (alternates, tls_alternates, domain) = (
                new.alternate_server.clone(),
                new.tls_alternate_server.clone(),
                new.tls_alternate_domain.clone(),
            );
            let replaced = worker.call_blocking(move |state| {
                // Full and draining cores alike send new clients there.
                state.core.set_alternates(&alternates);
                state.core.set_tls_alternates(&tls_alternates);
                state.core.set_tls_alternate_domain(domain.as_ref());
                let replaced = state.core.reconfigure(update);
                // Channels to peers the new policy forbids leave the kernel now.
                state.sync_kernel(crate::server::worker_state::now().0);
                replaced
            });
            drop(replaced);
        }
        // The HTTP API mints with the first secret, as at start (TURN on only; `turn` is a
        // restart key, so the value in force decides).
        self.minting.set(
            current
                .turn
                .then(|| update_secrets.first().cloned())
                .flatten(),
        );
        *current = keep_restart_keys(&current, new);
        Ok(reloaded)
    }
}

/// `new` with the keys needing a restart put back to their values in `old`: the
/// configuration in force, against which the next reload compares.
fn keep_restart_keys(old: &Config, new: Config) -> Config {
    Config {
        realm: new.realm,
        users: new.users,
        user_db: new.user_db,
        rest_secrets: new.rest_secrets,
        max_allocation_lifetime: new.max_allocation_lifetime,
        user_quota: new.user_quota,
        total_quota: new.total_quota,
        max_bps: new.max_bps,
        max_permissions: new.max_permissions,
        max_channels: new.max_channels,
        allowed_peers: new.allowed_peers,
        denied_peers: new.denied_peers,
        alternate_server: new.alternate_server,
        tls_alternate_server: new.tls_alternate_server,
        tls_alternate_domain: new.tls_alternate_domain,
        drain_timeout: new.drain_timeout,
        log_level: new.log_level,
        ..old.clone()
    }
}
