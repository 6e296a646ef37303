//! `turnpike serve`: binds every listener the configuration asks for, runs their event loops
//! and the TURN timers, the HTTP server (signaling, API, pages: [`crate::http`]) and the admin
//! API ([`crate::admin`]). SIGHUP reloads the configuration, SIGTERM drains (a second SIGTERM
//! or a SIGINT stops at once): see [`crate::control`].
//!
//! Sockets are bound before anything runs, so that a port already in use is reported at
//! once, with the address, and the process exits non-zero.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{info, warn};
use turn::auth::SharedLimits;
use turn::budget::ResponseBudget;
use turn::relay::stats::Direction;
use turn::relay::{SharedState, TurnStats};
use turn::{BindingConfig, BindingServer, ServerSockets, SocketId};

use crate::cluster::Cluster;
use crate::config::Config;
use crate::control::{ConfigSource, Control, ControlParts, DrainWatch, Health};
use crate::http;
use crate::metrics::{self, Metrics};
use crate::server::dtls_listener::{self, DtlsSettings};
use crate::server::stream_listener::{self, StreamSettings};
use crate::server::turn_setup::{turn_settings, TurnSettings};
use crate::server::udp_listener::grid_index;
use crate::server::worker::{self, CoreSettings, StdGrid, Worker, WorkerHandle};
use crate::tls;

/// Listeners bound but not yet running.
struct Bound {
    /// Workers: each gets its own UDP socket of every grid.
    workers: usize,
    /// UDP grids with their Binding core, one per `listen` address, and the sockets of each
    /// worker.
    udp: Vec<(Arc<BindingServer>, ServerSockets, Vec<StdGrid>)>,
    /// TCP and TLS listeners with their Binding core and grid position.
    streams: Vec<(TcpListener, Arc<BindingServer>, SocketId, bool)>,
    /// DTLS sockets (`dtls-listen`) with their Binding core.
    dtls: Vec<(std::net::UdpSocket, Arc<BindingServer>)>,
    /// The amplification budget every Binding core and TURN core charges.
    budget: Arc<ResponseBudget>,
}

impl Bound {
    /// Every bound port, UDP and TCP.
    fn ports(&self) -> Vec<u16> {
        let udp = self
            .udp
            .iter()
            .flat_map(|(_, _, grids)| grids.iter().take(1).flatten())
            .flatten()
            .filter_map(|s| s.local_addr().ok());
        let tcp = self
            .streams
            .iter()
            .filter_map(|(listener, ..)| listener.local_addr().ok());
        let dtls = self.dtls.iter().filter_map(|(s, _)| s.local_addr().ok());
        udp.chain(tcp).chain(dtls).map(|a| a.port()).collect()
    }

    /// The bound ports of the first `listen` address and of the first TLS listener, for the
    /// ICE server URLs of the HTTP API.
    fn turn_ports(&self) -> http::TurnPorts {
        let udp = self
            .udp
            .first()
            .map(|(_, sockets, _)| sockets.primary.port());
        let stream = |tls: bool| {
            self.streams
                .iter()
                .find(|(_, _, id, is_tls)| *is_tls == tls && *id == SocketId::PRIMARY)
                .and_then(|(listener, ..)| listener.local_addr().ok())
                .map(|a| a.port())
        };
        http::TurnPorts {
            listen: udp.or_else(|| stream(false)),
            tls: stream(true),
        }
    }

    /// The bound address of each `listen` address (UDP, else TCP): the STUN/TURN service as
    /// this host sees it, for the cluster's ALTERNATE-SERVER addresses.
    fn listen_addresses(&self) -> Vec<SocketAddr> {
        let udp: Vec<SocketAddr> = (self.udp.iter())
            .filter_map(|(_, sockets, _)| sockets.address(SocketId::PRIMARY))
            .collect();
        if !udp.is_empty() {
            return udp;
        }
        (self.streams.iter())
            .filter(|(_, _, id, tls)| !*tls && *id == SocketId::PRIMARY)
            .filter_map(|(listener, ..)| listener.local_addr().ok())
            .collect()
    }
}

/// Runs the server until SIGINT, until a drain ends, or until a listener fails.
pub async fn run(config: Config, source: ConfigSource) -> anyhow::Result<()> {
    // Handlers first: a SIGTERM that arrives once we have said "ready" must stop us cleanly,
    // not kill us with the default disposition.
    let mut shutdown = ShutdownSignals::install()?;
    let settings = turn_settings(&config)?;
    let rest_secret = settings.api_secret();
    // A secret made up for this run (no credentials configured) survives reloads.
    let made_up_secret = rest_secret
        .clone()
        .filter(|secret| !config.rest_secrets.iter().any(|s| s.expose() == secret));
    // What the HTTP API mints TURN credentials with; a reload replaces it.
    let minting = http::MintingSecret::new(rest_secret);
    let TurnSettings {
        mut turn,
        auth,
        policy,
    } = settings;
    let workers = worker::count(config.workers);
    // One failure table and one budget for the whole server: limits hold per source, not
    // per worker. The key placing sources in them is random, so nobody can aim collisions.
    let limits = SharedLimits::new(&auth, rand::random());
    // Certificates before sockets: bad files fail the start before any port is taken. Kept
    // here so that a reload swaps the certificates the listeners hand to new handshakes.
    let certificates = tls::Certificates::load(&config)?;
    let mut bound = bind_all(&config, workers, limits.budget.clone())?;
    let http_listeners = http::bind(&config)?;
    let metrics_listener = metrics::bind(config.metrics_listen)?;
    let admin_listener = crate::admin::bind(&config)?;
    // Ports the kernel picked (port 0 in `listen`) are service ports too: no relaying to them.
    turn.service_ports.extend(bound.ports());
    let metrics_listeners = Vec::from_iter(metrics_listener);
    // The HTTP(S), metrics and admin listeners are TCP services of ours too.
    let mut tcp_services = http_listeners.addresses();
    tcp_services.extend(
        metrics_listeners
            .iter()
            .chain(&admin_listener)
            .filter_map(|l| l.local_addr().ok()),
    );
    turn.service_ports.extend(http::ports(&tcp_services));
    turn.own_ips.extend(http::own_ips(&tcp_services));
    let metrics = Arc::new(Metrics::new());
    let turn_ports = bound.turn_ports();
    let listen_addresses = bound.listen_addresses();
    for (_, sockets, _) in &bound.udp {
        for id in sockets.ids() {
            if let Some(addr) = sockets.address(id) {
                info!(address = %addr, transport = "udp", "listening");
            }
        }
    }
    let kernel = if config.turn {
        crate::server::kernel_path::KernelPath::attach(&config.xdp_interfaces)
    } else {
        None
    };
    if kernel.is_some() {
        turn.fast_path = true;
        if let Some(any) = config.listen.iter().find(|a| a.ip().is_unspecified()) {
            warn!(
                listen = %any,
                "XDP fast path: clients of a listener on an unspecified address relay in \
                 userspace (the kernel must know the address to answer from); list concrete \
                 addresses in `listen`"
            );
        }
        metrics.set_kernel_path(kernel.clone());
    }
    let core = CoreSettings {
        kernel,
        shared: Arc::new(SharedState::new(&turn.relay_ips(), turn.port_range.clone())),
        turn,
        auth,
        limits,
        policy,
        tcp_owners: Default::default(),
        alternates: config.alternate_server.clone(),
        tls_alternates: config.tls_alternate_server.clone(),
        tls_alternate_domain: config.tls_alternate_domain.clone(),
    };
    let (stop, stopping) = watch::channel(false);
    let mut tasks: JoinSet<anyhow::Result<()>> = JoinSet::new();
    let mut threads = Vec::new();
    let mut handles = Vec::new();
    for index in 0..workers {
        let groups = bound
            .udp
            .iter_mut()
            .map(|(binding, sockets, grids)| {
                (binding.clone(), *sockets, std::mem::take(&mut grids[index]))
            })
            .collect();
        let started = worker::start(index, groups, core.clone(), stopping.clone()).await;
        let Worker {
            handle,
            thread,
            done,
        } = match started {
            Ok(worker) => worker,
            Err(e) => {
                let _ = stop.send(true);
                join_workers(threads).await;
                return Err(e);
            }
        };
        threads.push(thread);
        handles.push(handle);
        tasks.spawn(async move {
            done.await
                .unwrap_or_else(|_| Err(anyhow::anyhow!("worker {index} stopped")))
        });
    }
    info!(workers, "workers started");
    let handles: Arc<[WorkerHandle]> = handles.into();
    metrics.set_workers(handles.clone(), core.shared.clone());
    spawn_streams(
        &config,
        &certificates,
        bound,
        handles.clone(),
        &metrics,
        &mut tasks,
    )?;
    let health = Health::default();
    let fleet = metrics.fleet();
    let cluster = match &config.redis_url {
        Some(url) => {
            let cluster = Cluster::new(url, config.node_id.as_deref(), &config.cluster_prefix)?;
            info!(node = %cluster.me(), prefix = %config.cluster_prefix, "cluster: on Redis");
            Some(cluster)
        }
        None => None,
    };
    let shared = http::Shared {
        certificates: &certificates,
        ports: turn_ports,
        rest_secret: minting.clone(),
        health: health.clone(),
        metrics: &metrics,
        cluster: cluster.clone(),
        fleet: fleet.clone(),
    };
    let http = http::spawn(&config, http_listeners, shared, &mut tasks)?;
    if let Some(cluster) = cluster {
        let node = crate::server::cluster_setup::Node {
            config: &config,
            ports: turn_ports,
            listen: &listen_addresses,
            workers: handles.clone(),
            health: health.clone(),
            signaling: http.as_ref().map(http::HttpServer::signaling),
            fleet,
        };
        crate::server::cluster_setup::spawn(cluster, node, &mut tasks);
    }
    for listener in metrics_listeners {
        metrics::spawn(listener, &metrics, &mut tasks)?;
    }
    crate::server::fd_limit::warn_if_short(&config, &core.turn);
    let control = Arc::new(Control::new(ControlParts {
        workers: handles.clone(),
        source,
        config: config.clone(),
        made_up_secret,
        minting,
        health,
        certificates,
        fleet: metrics.fleet(),
    }));
    crate::admin::spawn(&config, admin_listener, control.clone(), &mut tasks)?;
    info!("ready");

    let result = serve_until_stopped(&control, &mut shutdown, &mut tasks, http.as_ref()).await;
    // WebSocket clients hear 1001 "going away" rather than a dropped connection (a drain
    // closed those of its start; this reaches any opened since).
    if let Some(http) = &http {
        http.going_away().await;
    }
    // Each worker closes its relay sockets as it stops.
    let _ = stop.send(true);
    tasks.shutdown().await;
    join_workers(threads).await;
    crate::server::server_events::flush();
    log_totals(&handles);
    result
}

/// Serves until a SIGINT, a second SIGTERM, the end of a drain, or a failed listener; answers
/// SIGHUP with a reload. A drain begins with the first SIGTERM or an admin call.
async fn serve_until_stopped(
    control: &Arc<Control>,
    shutdown: &mut ShutdownSignals,
    tasks: &mut JoinSet<anyhow::Result<()>>,
    http: Option<&http::HttpServer>,
) -> anyhow::Result<()> {
    /// How often a drain counts the allocations left.
    const DRAIN_POLL: Duration = Duration::from_millis(200);
    let mut drain: Option<DrainWatch> = None;
    loop {
        let poll = async {
            match drain {
                Some(_) => tokio::time::sleep(DRAIN_POLL).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            signal = shutdown.recv() => match signal {
                Received::Hangup => {
                    let control = control.clone();
                    let _ = tokio::task::spawn_blocking(move || control.reload("SIGHUP")).await;
                }
                Received::Terminate if drain.is_none() => {
                    control.begin_drain("SIGTERM");
                }
                other => {
                    info!(signal = other.name(), draining = drain.is_some(), "shutting down");
                    return Ok(());
                }
            },
            () = control.drain_begun(), if drain.is_none() => {
                drain = Some(control.drain_watch());
                // Signaling clients move now; relayed media keeps flowing.
                if let Some(http) = http {
                    http.going_away().await;
                }
            }
            () = poll => {}
            Some(finished) = tasks.join_next() => {
                // Listeners and workers run forever; one that returns has failed.
                return match finished {
                    Ok(Err(e)) => Err(e),
                    Ok(Ok(())) => Err(anyhow::anyhow!("a listener stopped unexpectedly")),
                    Err(e) => Err(anyhow::Error::from(e).context("a listener panicked")),
                };
            }
        }
        if let Some(watch) = &mut drain {
            if watch.check(Instant::now(), control.allocations()).is_some() {
                return Ok(());
            }
        }
    }
}

/// The counters summed over the workers, once at shutdown (each worker logs its own too).
fn log_totals(workers: &[WorkerHandle]) {
    let mut total = TurnStats::default();
    for stats in workers.iter().filter_map(WorkerHandle::stopped) {
        total.add(stats);
    }
    info!(
        workers = workers.len(),
        allocations = total.allocation_count(),
        to_peer = total.packets_in(Direction::ToPeer),
        to_client = total.packets_in(Direction::ToClient),
        dropped = total.dropped(),
        "all workers stopped"
    );
}

/// Waits for the worker threads to finish.
async fn join_workers(threads: Vec<std::thread::JoinHandle<()>>) {
    let _ = tokio::task::spawn_blocking(move || {
        for thread in threads {
            let _ = thread.join();
        }
    })
    .await;
}

/// Binds every UDP, TCP and TLS socket.
fn bind_all(config: &Config, workers: usize, budget: Arc<ResponseBudget>) -> anyhow::Result<Bound> {
    let mut bound = Bound {
        workers,
        udp: Vec::new(),
        streams: Vec::new(),
        dtls: Vec::new(),
        budget,
    };
    for &listen in &config.listen {
        bind_listen(config, listen, &mut bound)?;
    }
    if config.tls.is_some() {
        for &addr in &config.tls_listen {
            let listener = bind_tcp(addr)?;
            let bound_addr = listener.local_addr()?;
            let sockets = ServerSockets::single(bound_addr);
            let binding = Arc::new(binding_server(config, sockets, &bound.budget));
            bound
                .streams
                .push((listener, binding, SocketId::PRIMARY, true));
        }
    }
    for &addr in config.dtls_addresses() {
        let socket = dtls_listener::bind(addr)?;
        let sockets = ServerSockets::single(socket.local_addr()?);
        let binding = Arc::new(binding_server(config, sockets, &bound.budget));
        bound.dtls.push((socket, binding));
    }
    anyhow::ensure!(
        !bound.udp.is_empty() || !bound.streams.is_empty(),
        "nothing to serve: UDP and TCP are off and TLS is not configured"
    );
    Ok(bound)
}

/// Binds the UDP and TCP sockets of one `listen` address: one socket, or the RFC 5780 grid
/// of up to four when an alternate IP and/or port is configured.
/// Which transports a group binds.
#[derive(Debug, Clone, Copy)]
struct Transports {
    udp: bool,
    tcp: bool,
}

/// Binds one `listen` address. A wildcard address gets one UDP socket per local address of
/// its family, as coturn does: a UDP socket bound to `0.0.0.0` answers from whichever source
/// address the kernel picks for the route back, which on a multi-homed host is not the one the
/// client sent to, and clients (browsers among them) ignore such answers. TCP keeps the
/// wildcard socket: a connection answers from its own local address.
fn bind_listen(config: &Config, listen: SocketAddr, bound: &mut Bound) -> anyhow::Result<()> {
    let all = Transports {
        udp: config.udp,
        tcp: config.tcp,
    };
    if !(config.udp && listen.ip().is_unspecified() && listen.port() != 0) {
        return bind_group(config, listen, all, bound);
    }
    let addresses = local_addresses(listen);
    if addresses.is_empty() {
        return bind_group(config, listen, all, bound);
    }
    if config.tcp {
        bind_group(
            config,
            listen,
            Transports {
                udp: false,
                tcp: true,
            },
            bound,
        )?;
    }
    for addr in addresses {
        bind_group(
            config,
            addr,
            Transports {
                udp: true,
                tcp: false,
            },
            bound,
        )?;
    }
    Ok(())
}

/// This host's addresses of `listen`'s family, with its port. IPv6 link-local addresses are
/// left out: binding them needs a scope, and they are no use to a relay's clients.
fn local_addresses(listen: SocketAddr) -> Vec<SocketAddr> {
    let mut ips: Vec<IpAddr> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .iter()
        .map(if_addrs::Interface::ip)
        .filter(|ip| ip.is_ipv4() == listen.is_ipv4())
        .filter(|ip| !matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80))
        .collect();
    ips.sort();
    ips.dedup();
    ips.into_iter()
        .map(|ip| SocketAddr::new(ip, listen.port()))
        .collect()
}

fn bind_group(
    config: &Config,
    listen: SocketAddr,
    transports: Transports,
    bound: &mut Bound,
) -> anyhow::Result<()> {
    if listen.port() != 0 {
        return bind_group_once(config, listen, transports, bound);
    }
    // Port 0 (tests): the kernel picks the UDP port, and the TCP socket (or the RFC 5780 grid)
    // must get the same number, which another program may hold. Try again with a fresh port
    // then, as long as the error is "address in use".
    const ATTEMPTS: usize = 20;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut group = Bound {
            workers: bound.workers,
            udp: Vec::new(),
            streams: Vec::new(),
            dtls: Vec::new(),
            budget: bound.budget.clone(),
        };
        match bind_group_once(config, listen, transports, &mut group) {
            Ok(()) => {
                bound.udp.append(&mut group.udp);
                bound.streams.append(&mut group.streams);
                return Ok(());
            }
            Err(e) if attempt < ATTEMPTS && address_in_use(&e) => {}
            Err(e) => return Err(e),
        }
    }
}

/// True when `error` comes from a bind that found the address taken.
fn address_in_use(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .any(|e| e.kind() == std::io::ErrorKind::AddrInUse)
}

/// [`bind_group`] for one port choice.
fn bind_group_once(
    config: &Config,
    listen: SocketAddr,
    transports: Transports,
    bound: &mut Bound,
) -> anyhow::Result<()> {
    // Bind the primary UDP socket first: with port 0 (tests) the kernel picks the port, and
    // every other socket of the group uses the same one.
    let mut udp: Vec<StdGrid> = (0..bound.workers).map(|_| Default::default()).collect();
    let mut primary = listen;
    if transports.udp {
        let sockets = bind_udp(listen, bound.workers)?;
        primary = sockets[0].local_addr()?;
        place(&mut udp, SocketId::PRIMARY, sockets);
    }
    let sockets = ServerSockets {
        primary,
        alternate_ip: config.alternate_ip,
        alternate_port: config.alternate_port,
    };
    let binding = Arc::new(binding_server(config, sockets, &bound.budget));
    for id in sockets.ids() {
        let addr = sockets
            .address(id)
            .context("socket outside the configured grid")?;
        if transports.udp && id != SocketId::PRIMARY {
            place(&mut udp, id, bind_udp(addr, bound.workers)?);
        }
        if transports.tcp {
            bound
                .streams
                .push((bind_tcp(addr)?, binding.clone(), id, false));
        }
    }
    if transports.udp {
        bound.udp.push((binding, sockets, udp));
    }
    if sockets.behaviour_discovery() {
        info!(primary = %primary, alternate_ip = ?sockets.alternate_ip, alternate_port = ?sockets.alternate_port,
              "RFC 5780 behaviour discovery on");
        if sockets.alternate_ip.is_some() && sockets.alternate_port.is_none() {
            // RFC 5780 §4.3, §4.4: test III needs a second port (CHANGE-REQUEST "change
            // port" gets 420 without one).
            tracing::warn!(
                "alternate-ip without alternate-port: clients can tell endpoint-independent \
                 mapping and filtering from the rest, but not address-dependent from \
                 address-and-port-dependent; set alternate-port too"
            );
        }
    }
    Ok(())
}

/// Puts each worker's socket for grid position `id` in its grid.
fn place(grids: &mut [StdGrid], id: SocketId, sockets: Vec<std::net::UdpSocket>) {
    for (grid, socket) in grids.iter_mut().zip(sockets) {
        grid[grid_index(id)] = Some(socket);
    }
}

/// Starts one task per TCP, TLS and DTLS listener; connections and sessions go to the
/// workers.
fn spawn_streams(
    config: &Config,
    certificates: &tls::Certificates,
    bound: Bound,
    workers: Arc<[WorkerHandle]>,
    metrics: &Metrics,
    tasks: &mut JoinSet<anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let settings = StreamSettings {
        counters: metrics.connections.clone(),
        ..StreamSettings::new(config)
    };
    // No ALPN list: most TURN clients send none, and one offering RFC 7443's "stun.turn" is
    // still served (rustls then negotiates no protocol rather than refusing).
    let acceptor = certificates
        .turn
        .as_ref()
        .map(|store| store.acceptor(&[]))
        .transpose()?;
    spawn_dtls(
        config,
        certificates,
        bound.dtls,
        workers.clone(),
        metrics,
        tasks,
    )?;
    for (listener, binding, id, is_tls) in bound.streams {
        let addr = listener.local_addr()?;
        let transport = if is_tls { "tls" } else { "tcp" };
        info!(address = %addr, transport, "listening");
        let tls = if is_tls { acceptor.clone() } else { None };
        let (settings, workers) = (settings.clone(), workers.clone());
        tasks.spawn(async move {
            stream_listener::run(listener, binding, id, tls, settings, workers)
                .await
                .with_context(|| format!("{transport} listener {addr}"))
        });
    }
    Ok(())
}

/// Starts one task per DTLS socket, with the identity of `certificates` (none: a key DTLS
/// cannot use left DTLS off, with a warning, in [`tls::Certificates::load`]).
fn spawn_dtls(
    config: &Config,
    certificates: &tls::Certificates,
    sockets: Vec<(std::net::UdpSocket, Arc<BindingServer>)>,
    workers: Arc<[WorkerHandle]>,
    metrics: &Metrics,
    tasks: &mut JoinSet<anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let Some(identity) = certificates.dtls.clone().filter(|_| !sockets.is_empty()) else {
        return Ok(());
    };
    let settings = DtlsSettings {
        identity,
        deadlines: StreamSettings::new(config).deadlines,
        max_sessions: config.max_tcp_connections,
        counters: metrics.dtls.clone(),
    };
    for (socket, binding) in sockets {
        let addr = socket.local_addr()?;
        info!(address = %addr, transport = "dtls", "listening");
        let socket = tokio::net::UdpSocket::from_std(socket)
            .with_context(|| format!("registering DTLS (UDP) {addr}"))?;
        let (settings, workers) = (settings.clone(), workers.clone());
        tasks.spawn(async move {
            dtls_listener::run(socket, binding, settings, workers)
                .await
                .with_context(|| format!("dtls listener {addr}"))
        });
    }
    Ok(())
}

fn binding_server(
    config: &Config,
    sockets: ServerSockets,
    budget: &Arc<ResponseBudget>,
) -> BindingServer {
    let config = BindingConfig {
        sockets,
        software: config.software.clone(),
    };
    BindingServer::with_budget(config, budget.clone())
}

/// Binds one UDP socket on `addr` per worker: one plain socket for one worker, else
/// `SO_REUSEPORT` sockets sharing the port. The sockets are registered with a runtime by their
/// worker.
fn bind_udp(addr: SocketAddr, workers: usize) -> anyhow::Result<Vec<std::net::UdpSocket>> {
    let context = || format!("binding UDP {addr}");
    if workers <= 1 {
        return Ok(vec![net::bind_udp(addr).with_context(context)?]);
    }
    // Port 0: let the kernel pick a free port with a plain socket, then share that one. A
    // `SO_REUSEPORT` socket bound to port 0 could be given a port that another process of
    // ours already shares.
    let shared = if addr.port() == 0 {
        let probe = net::bind_udp(addr).with_context(context)?;
        probe.local_addr().with_context(context)?
    } else {
        addr
    };
    (0..workers)
        .map(|_| net::bind_udp_reuse_port(shared).with_context(|| format!("binding UDP {shared}")))
        .collect()
}

fn bind_tcp(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    let listener = net::bind_tcp(addr).with_context(|| format!("binding TCP {addr}"))?;
    TcpListener::from_std(listener).with_context(|| format!("registering TCP {addr}"))
}

/// SIGINT, SIGTERM and SIGHUP, registered with the runtime (SIGHUP's default disposition
/// would kill the server: `systemctl reload`, a closing terminal).
struct ShutdownSignals {
    interrupt: Signal,
    terminate: Signal,
    hangup: Signal,
}

/// A signal the server acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Received {
    /// SIGINT: stop at once.
    Interrupt,
    /// SIGTERM: drain, or stop at once when draining already.
    Terminate,
    /// SIGHUP: reload the configuration.
    Hangup,
}

impl Received {
    fn name(self) -> &'static str {
        match self {
            Received::Interrupt => "SIGINT",
            Received::Terminate => "SIGTERM",
            Received::Hangup => "SIGHUP",
        }
    }
}

impl ShutdownSignals {
    fn install() -> anyhow::Result<Self> {
        Ok(ShutdownSignals {
            interrupt: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            terminate: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            hangup: signal(SignalKind::hangup()).context("installing the SIGHUP handler")?,
        })
    }

    /// The next signal.
    async fn recv(&mut self) -> Received {
        tokio::select! {
            _ = self.interrupt.recv() => Received::Interrupt,
            _ = self.terminate.recv() => Received::Terminate,
            _ = self.hangup.recv() => Received::Hangup,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_in_use_is_recognised_through_context() {
        let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let error = net::bind_udp(taken.local_addr().unwrap())
            .context("binding UDP")
            .unwrap_err();
        assert!(address_in_use(&error));
        assert!(!address_in_use(&anyhow::anyhow!("something else")));
    }
}
