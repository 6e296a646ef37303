//! Control of a running server: configuration reload (SIGHUP, admin API), drain (SIGTERM,
//! admin API), and the figures the admin API reports. [`crate::server::serve`] owns the signals and
//! the shutdown; this module owns what they do to the workers' cores.
//!
//! Every change to a core happens under that worker's lock, with one small setter of the
//! core ([`turn::relay::TurnServer::reconfigure`], [`turn::relay::TurnServer::start_draining`]):
//! nothing on the relay path changes shape, and allocations, permissions, channels and
//! connections are kept.

mod drain;
mod reload;
mod restart_keys;
mod sessions;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::Notify;

pub use drain::DrainWatch;

use crate::cluster::fleet::{FleetView, NodeRecord};
use crate::config::{CliLayer, Config};
use crate::http::MintingSecret;
use crate::server::worker::WorkerHandle;
use crate::tls::Certificates;

/// Where the configuration comes from, to read it again on reload: the file and the flags and
/// `TURNPIKE_*` variables the server was started with (they still override the file).
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    /// The configuration file, if any.
    pub file: Option<PathBuf>,
    /// The command-line layer of `serve`.
    pub cli: CliLayer,
}

/// Whether the server takes new clients: `/healthz` answers 503 once a drain has begun, so
/// that a load balancer stops sending new clients at once.
#[derive(Debug, Clone, Default)]
pub struct Health(Arc<AtomicBool>);

impl Health {
    /// True once a drain has begun.
    pub fn draining(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Marks the drain begun; true when it already was.
    fn set_draining(&self) -> bool {
        self.0.swap(true, Ordering::Relaxed)
    }
}

/// The control plane of one running server, shared by the signal loop and the admin API.
#[derive(Debug)]
pub struct Control {
    workers: Arc<[WorkerHandle]>,
    source: ConfigSource,
    /// The configuration in force: the last one that loaded and was applied. Its lock also
    /// serializes reloads.
    current: Mutex<Config>,
    /// The REST secret made up at start when no credentials were configured: a reload to a
    /// configuration still without credentials keeps it (see [`crate::server::turn_setup`]).
    made_up_secret: Option<String>,
    /// What the HTTP API mints TURN credentials with.
    minting: MintingSecret,
    health: Health,
    /// The TLS certificates of the `turns:` and HTTPS listeners, re-read on reload.
    certificates: Certificates,
    /// The cluster's nodes as last read (empty without a cluster).
    fleet: FleetView,
    /// Wakes the serve loop when a drain begins through the admin API.
    drain_requested: Notify,
    started: Instant,
}

/// What a [`Control`] is made of: each a distinct part of the running server, named so that
/// the one call site (serve.rs) cannot swap two of them.
pub struct ControlParts {
    /// The workers.
    pub workers: Arc<[WorkerHandle]>,
    /// Where the configuration was loaded from (reload reads it again).
    pub source: ConfigSource,
    /// The configuration in force at start.
    pub config: Config,
    /// The REST secret made up at start when no credentials were configured.
    pub made_up_secret: Option<String>,
    /// What the HTTP API mints TURN credentials with.
    pub minting: MintingSecret,
    /// Readiness and drain state.
    pub health: Health,
    /// The TLS certificates, re-read on reload.
    pub certificates: Certificates,
    /// The cluster's nodes as last read (empty without a cluster).
    pub fleet: FleetView,
}

impl Control {
    /// The control of the running server made of `parts`.
    pub fn new(parts: ControlParts) -> Control {
        let ControlParts {
            workers,
            source,
            config,
            made_up_secret,
            minting,
            health,
            certificates,
            fleet,
        } = parts;
        Control {
            workers,
            source,
            current: Mutex::new(config),
            made_up_secret,
            minting,
            health,
            certificates,
            fleet,
            drain_requested: Notify::new(),
            started: Instant::now(),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> MutexGuard<'_, Config> {
        self.current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The workers.
    pub fn workers(&self) -> &[WorkerHandle] {
        &self.workers
    }

    /// When the server started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// True once a drain has begun.
    pub fn draining(&self) -> bool {
        self.health.draining()
    }

    /// Every node of the cluster as this node last read it (at its last heartbeat); empty
    /// without a cluster.
    pub fn cluster_nodes(&self) -> Vec<NodeRecord> {
        self.fleet.nodes().to_vec()
    }

    /// Allocations held now, over every worker (each asked in turn).
    pub fn allocations(&self) -> usize {
        self.workers
            .iter()
            .filter_map(|worker| {
                worker.call_blocking(|state| state.core.stats().allocation_count() as usize)
            })
            .sum()
    }
}
