//! TCP and TLS connection counts of the STUN/TURN stream listeners: accepted, refused (per
//! source cap, global cap) and open. Counted per connection, never per packet, so plain
//! shared atomics are fine here.

use std::sync::atomic::{AtomicU64, Ordering};

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its source holds `max-tcp-connections-per-ip` already.
    PerIp,
    /// The server holds `max-tcp-connections` already.
    Limit,
}

/// Counts of one transport (TCP or TLS).
#[derive(Debug, Default)]
pub struct TransportCounts {
    accepted: AtomicU64,
    refused_per_ip: AtomicU64,
    refused_limit: AtomicU64,
    closed: AtomicU64,
}

/// A snapshot of [`TransportCounts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransportSnapshot {
    /// Connections accepted.
    pub accepted: u64,
    /// Refused for the per-source cap.
    pub refused_per_ip: u64,
    /// Refused for the global cap.
    pub refused_limit: u64,
    /// Open now.
    pub open: u64,
}

/// The counts of both stream transports.
#[derive(Debug, Default)]
pub struct ConnectionCounters {
    tcp: TransportCounts,
    tls: TransportCounts,
}

impl ConnectionCounters {
    fn of(&self, tls: bool) -> &TransportCounts {
        if tls {
            &self.tls
        } else {
            &self.tcp
        }
    }

    /// A connection was accepted (and will be served until [`ConnectionCounters::closed`]).
    pub fn accepted(&self, tls: bool) {
        self.of(tls).accepted.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection was refused.
    pub fn refused(&self, tls: bool, why: Refusal) {
        let counts = self.of(tls);
        let counter = match why {
            Refusal::PerIp => &counts.refused_per_ip,
            Refusal::Limit => &counts.refused_limit,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// An accepted connection ended.
    pub fn closed(&self, tls: bool) {
        self.of(tls).closed.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts of TCP (`false`) or TLS (`true`).
    pub fn snapshot(&self, tls: bool) -> TransportSnapshot {
        let counts = self.of(tls);
        let accepted = counts.accepted.load(Ordering::Relaxed);
        TransportSnapshot {
            accepted,
            refused_per_ip: counts.refused_per_ip.load(Ordering::Relaxed),
            refused_limit: counts.refused_limit.load(Ordering::Relaxed),
            open: accepted.saturating_sub(counts.closed.load(Ordering::Relaxed)),
        }
    }
}
