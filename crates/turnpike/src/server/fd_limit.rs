//! The open-file limit (`RLIMIT_NOFILE`) against what the configuration may open.
//!
//! Every relay socket, TCP/TLS connection and HTTP connection is a file descriptor. With the
//! usual soft limit of 1024 a server with the default `total-quota` (10000) says "ready" and
//! then fails Allocates with 508 (EMFILE on the relay socket) once about a thousand are open.
//! So at start the soft limit is raised to the hard one (the soft limit exists for programs
//! that do not expect many descriptors; a server does), and once everything is bound the
//! worst case is compared with it and a shortfall is logged with both numbers.

use turn::relay::TurnConfig;

use crate::config::Config;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; logs the change, or why it failed.
pub fn raise_to_hard_limit() {
    let before = rlimit::Resource::NOFILE.get();
    // `increase_nofile_limit` caps its argument at the hard limit (and at the kernel's
    // `nr_open` when the hard limit is infinite).
    match (before, rlimit::increase_nofile_limit(u64::MAX)) {
        (Ok((soft, hard)), Ok(now)) if now != soft => {
            tracing::debug!(from = soft, to = now, hard, "raised the open-file limit");
        }
        (_, Err(error)) => {
            tracing::warn!(%error, "cannot raise the open-file limit (RLIMIT_NOFILE)");
        }
        _ => {}
    }
}

/// The descriptors the server may need at once, by what holds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Relay sockets: `total-quota` allocations, two sockets each when both families are
    /// relayed (RFC 8656 §7.2 dual allocations).
    pub relay: u64,
    /// STUN/TURN TCP and TLS connections (`max-tcp-connections`, when TCP or TLS is served).
    pub streams: u64,
    /// HTTP connections (the same cap, separately, when HTTP is served).
    pub http: u64,
    /// Descriptors open now: listeners, runtime, standard streams.
    pub open: u64,
}

impl Budget {
    /// The budget of `config`, with `turn`'s relay families and `open` descriptors already
    /// open.
    pub fn of(config: &Config, turn: &TurnConfig, open: u64) -> Budget {
        let families = u64::from(turn.relay_v4.is_some()) + u64::from(turn.relay_v6.is_some());
        let as_u64 = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        let caps = as_u64(config.max_tcp_connections);
        Budget {
            relay: if config.turn {
                as_u64(config.total_quota).saturating_mul(families)
            } else {
                0
            },
            streams: if config.tcp || config.tls.is_some() {
                caps
            } else {
                0
            },
            http: if config.http { caps } else { 0 },
            open,
        }
    }

    /// Everything together.
    pub fn total(&self) -> u64 {
        self.relay
            .saturating_add(self.streams)
            .saturating_add(self.http)
            .saturating_add(self.open)
    }
}

/// Logs a warning when the soft `RLIMIT_NOFILE` cannot hold the [`Budget`] of `config`; call
/// it once everything is bound, so that the listeners are counted as they are.
pub fn warn_if_short(config: &Config, turn: &TurnConfig) {
    let Ok((limit, hard)) = rlimit::Resource::NOFILE.get() else {
        return;
    };
    let budget = Budget::of(config, turn, open_descriptors());
    if budget.total() <= limit {
        return;
    }
    tracing::warn!(
        limit,
        hard,
        needed = budget.total(),
        total_quota = config.total_quota,
        relay_sockets = budget.relay,
        stream_connections = budget.streams,
        http_connections = budget.http,
        open_now = budget.open,
        "the open-file limit (RLIMIT_NOFILE) is {limit}, below the {} descriptors the \
         configuration may need: `total-quota` {} ({} relay sockets) + `max-tcp-connections` \
         {} (STUN/TURN) + {} (HTTP) + {} open now; Allocates and connections past the limit \
         fail (EMFILE). Raise the hard limit (systemd `LimitNOFILE=`, `ulimit -Hn`) or lower \
         `total-quota` / `max-tcp-connections`",
        budget.total(),
        config.total_quota,
        budget.relay,
        budget.streams,
        budget.http,
        budget.open,
    );
}

/// The descriptors this process holds now (Linux: `/proc/self/fd`); 0 when unknown.
fn open_descriptors() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count() as u64)
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use super::*;

    fn turn(v4: bool, v6: bool) -> TurnConfig {
        TurnConfig {
            relay_v4: v4.then_some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))),
            relay_v6: v6.then_some(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            ..TurnConfig::default()
        }
    }

    #[test]
    fn dual_stack_relaying_counts_two_sockets_per_allocation() {
        let config = Config {
            total_quota: 1000,
            max_tcp_connections: 50,
            ..Config::default()
        };
        let budget = Budget::of(&config, &turn(true, true), 7);
        assert_eq!(
            budget,
            Budget {
                relay: 2000,
                streams: 50,
                http: 50,
                open: 7
            }
        );
        assert_eq!(budget.total(), 2107);
        assert_eq!(Budget::of(&config, &turn(true, false), 7).relay, 1000);
    }

    #[test]
    fn what_is_not_served_needs_nothing() {
        let config = Config {
            turn: false,
            tcp: false,
            http: false,
            ..Config::default()
        };
        assert_eq!(Budget::of(&config, &turn(true, true), 3).total(), 3);
    }
}
