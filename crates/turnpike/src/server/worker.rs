//! Workers: the UDP and TURN data path, sharded one worker per core.
//!
//! Each worker is an OS thread running a single-threaded tokio runtime with
//! - its own UDP listener socket on every listen address (bound with `SO_REUSEPORT`, so the
//!   kernel spreads client 5-tuples over the workers and one client always reaches the same
//!   worker),
//! - its own TURN core ([`turn::relay::TurnServer`]) holding the allocations of its clients,
//! - the relay sockets of those allocations,
//! - one event loop ([`crate::server::worker_loop`]) that serves the listener sockets and the
//!   relay sockets (all in one epoll set), the core's timers and the event log's tick,
//! - and the tasks of the TCP/TLS/DTLS connections and RFC 6062 TCP relays given to it.
//!
//! What must hold for the whole server is in [`turn::relay::SharedState`] (relay port claims,
//! quotas, the relay↔relay rule), touched on Allocate and on expiry, and by one relaxed
//! atomic load for a peer that may be one of our relays — never a lock per packet.
//!
//! The loop owns the core by value ([`crate::server::worker_state::WorkerState`]): no `Mutex`, no
//! `Weak`. Everything else reaches a worker by message, through its [`WorkerHandle`]
//! ([`crate::server::worker_handle`]): its TCP/TLS/DTLS connections send each message that
//! needs the core as a job and wait for the answer (so a connection's messages stay in
//! order), its RFC 6062 tasks post what happened to their connections, a ConnectionBind
//! goes to the mailbox of the worker holding the peer connection, and metrics and control
//! (drain, sessions, reload, the cluster's heartbeat) call from their own threads.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::sync::{oneshot, watch};
use tracing::info;
use turn::auth::{AuthConfig, AuthStats, Authenticator, SharedLimits};
use turn::policy::PeerPolicy;
use turn::relay::stats::Direction;
use turn::relay::{SharedState, TurnConfig, TurnServer, TurnStats};
use turn::{BindingServer, ServerSockets};

use crate::metrics::io::IoCounters;
use crate::server::relay_registry::{Egress, RelayRegistry};
use crate::server::tcp_relay::TcpOwners;
use crate::server::udp_listener::{UdpGrid, UdpListener};
use crate::server::worker_loop::WorkerLoop;
use crate::server::worker_state::WorkerState;

/// One worker's UDP sockets of an RFC 5780 grid, not yet registered with a runtime, indexed
/// like [`UdpGrid`].
pub type StdGrid = [Option<std::net::UdpSocket>; 4];

/// A UDP listen group as one worker serves it: the Binding core (shared, it is stateless),
/// the grid's addresses, and this worker's sockets.
pub type UdpGroup = (Arc<BindingServer>, ServerSockets, StdGrid);

/// What every worker's TURN core is built from.
#[derive(Debug, Clone)]
pub struct CoreSettings {
    /// Relay addresses, ports, lifetimes, quotas and limits.
    pub turn: TurnConfig,
    /// Credentials (the nonce secret is in here: any worker checks any worker's nonces).
    pub auth: AuthConfig,
    /// The per-source failure counts and amplification budget, shared by every worker.
    pub limits: SharedLimits,
    /// The peer-address policy.
    pub policy: PeerPolicy,
    /// What the workers' cores share.
    pub shared: Arc<SharedState>,
    /// Which worker holds each TCP peer connection (RFC 6062).
    pub tcp_owners: TcpOwners,
    /// Where a full or draining core sends new clients (`alternate-server`).
    pub alternates: Vec<SocketAddr>,
    /// The same for clients over TLS and DTLS (`tls-alternate-server`).
    pub tls_alternates: Vec<SocketAddr>,
    /// The name in their certificate (`tls-alternate-domain`, ALTERNATE-DOMAIN).
    pub tls_alternate_domain: Option<turn::relay::DomainName>,
    /// The kernel fast path, when attached (`xdp-interfaces`; `turn.fast_path` is set then).
    pub kernel: Option<Arc<crate::server::kernel_path::KernelPath>>,
}

use crate::server::worker_handle::Mailbox;
pub use crate::server::worker_handle::WorkerHandle;

/// A started worker.
#[derive(Debug)]
pub struct Worker {
    /// How to reach it.
    pub handle: WorkerHandle,
    /// Its thread, to join at shutdown.
    pub thread: std::thread::JoinHandle<()>,
    /// Its result: `Ok` when stopped, `Err` when a listener failed.
    pub done: oneshot::Receiver<anyhow::Result<()>>,
}

/// Starts worker `index` on its own thread, serving `groups`, until `stop` turns true.
pub async fn start(
    index: usize,
    groups: Vec<UdpGroup>,
    settings: CoreSettings,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<Worker> {
    let (ready_tx, ready_rx) = oneshot::channel();
    let (done_tx, done) = oneshot::channel();
    let thread = std::thread::Builder::new()
        .name(format!("turnpike-worker-{index}"))
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = ready_tx.send(Err(anyhow::Error::from(e)));
                    return;
                }
            };
            runtime.block_on(run(index, groups, settings, stop, ready_tx, done_tx));
        })
        .context("starting a worker thread")?;
    let handle = ready_rx
        .await
        .context("a worker stopped while starting")??;
    Ok(Worker {
        handle,
        thread,
        done,
    })
}

/// The worker's life on its own runtime: set up, report ready, serve until stopped or
/// until a listener fails, then close every relay socket.
async fn run(
    index: usize,
    groups: Vec<UdpGroup>,
    settings: CoreSettings,
    stop: watch::Receiver<bool>,
    ready: oneshot::Sender<anyhow::Result<WorkerHandle>>,
    done: oneshot::Sender<anyhow::Result<()>>,
) {
    let (mailbox, jobs) = Mailbox::new();
    let tcp_owners = settings.tcp_owners.clone();
    let (io, worker_loop) = match set_up(groups, settings, mailbox.clone()) {
        Ok(set) => set,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let handle = WorkerHandle::new(index, io, mailbox, tcp_owners);
    if ready.send(Ok(handle.clone())).is_err() {
        return;
    }
    // A task of its own (not this future) so that a panic in it is an error of this worker,
    // reported like a failed socket, rather than the thread's end.
    let (result, mut state) = match tokio::spawn(worker_loop.run(jobs, stop)).await {
        Ok(stopped) => stopped,
        Err(e) => {
            // Its state went with it: nothing to log or close but what dropping did.
            let _ = done.send(Err(
                anyhow::Error::from(e).context("the worker loop panicked")
            ));
            return;
        }
    };
    let (stats, auth) = (state.core.stats(), state.core.auth_stats());
    log_stats(index, &stats, &auth);
    handle.set_stopped(stats);
    crate::server::server_events::shut_down(&mut state);
    // Close every relay socket before the runtime goes.
    state.relays.close_all();
    let _ = done.send(result);
}

/// The per-worker counters, once at shutdown, for the operator's record: relaying, and the
/// answers refused to failing or spoofed sources (live, they are metrics).
fn log_stats(index: usize, stats: &TurnStats, auth: &AuthStats) {
    info!(
        worker = index,
        allocations = stats.allocation_count(),
        to_peer = stats.packets_in(Direction::ToPeer),
        to_client = stats.packets_in(Direction::ToClient),
        dropped = stats.dropped(),
        auth_failures = auth.wrong_credentials + auth.rate_limited,
        auth_rate_limited = auth.rate_limited,
        over_budget = auth.over_budget,
        "worker stopped"
    );
}

/// Builds the worker's core and its loop over its sockets.
fn set_up(
    groups: Vec<UdpGroup>,
    settings: CoreSettings,
    mailbox: Mailbox,
) -> anyhow::Result<(Arc<IoCounters>, WorkerLoop)> {
    let mut egress = Egress::default();
    let mut listeners = Vec::new();
    for (binding, sockets, std_grid) in groups {
        let grid: Arc<UdpGrid> = Arc::new(std_grid.map(|socket| socket.map(Arc::new)));
        for socket in grid.iter().flatten() {
            egress.udp.insert(socket.local_addr()?, socket.clone());
        }
        for id in sockets.ids() {
            let addr: Option<SocketAddr> = sockets.address(id);
            let listener = UdpListener::new(binding.clone(), id, grid.clone())
                .with_context(|| format!("UDP socket {addr:?}"))?;
            listeners.extend(listener);
        }
    }
    let io = egress.io.clone();
    let tcp_owners = settings.tcp_owners;
    let mut core = TurnServer::with_shared_state(
        settings.turn,
        Authenticator::with_limits(settings.auth, settings.limits),
        settings.policy,
        Box::new(StdRng::from_entropy()),
        settings.shared,
    );
    core.set_alternates(&settings.alternates);
    core.set_tls_alternates(&settings.tls_alternates);
    core.set_tls_alternate_domain(settings.tls_alternate_domain.as_ref());
    let set = net::PollSet::new().context("creating the worker's epoll set")?;
    let registry = set.registry().context("creating the worker's epoll set")?;
    let state = WorkerState {
        core,
        relays: RelayRegistry::new(registry, mailbox, tcp_owners),
        streams: HashMap::new(),
        io: io.clone(),
        kernel: settings.kernel.as_ref().map(|k| k.for_worker()),
    };
    let worker_loop = WorkerLoop::new(set, state, listeners, egress)?;
    Ok((io, worker_loop))
}

/// The number of workers to run: `configured`, or one per core when 0; one when the kernel
/// has no `SO_REUSEPORT` (the sockets could not share their ports).
pub fn count(configured: usize) -> usize {
    let wanted = if configured == 0 {
        std::thread::available_parallelism().map_or(1, usize::from)
    } else {
        configured
    };
    if wanted > 1 && !net::reuse_port_supported() {
        tracing::warn!("SO_REUSEPORT is not available: running one worker");
        return 1;
    }
    wanted
}
