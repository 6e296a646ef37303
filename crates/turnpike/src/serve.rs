//! `turnpike serve`: binds every listener the configuration asks for, runs their event loops
//! and the TURN timers, and the HTTP server (signaling, API, pages: [`crate::http`]), and stops
//! on SIGINT/SIGTERM.
//!
//! Sockets are bound before anything runs, so that a port already in use is reported at
//! once, with the address, and the process exits non-zero.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::net::{TcpListener, UdpSocket};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::info;
use turn::auth::Authenticator;
use turn::relay::TurnServer;
use turn::{BindingConfig, BindingServer, ServerSockets, SocketId};

use crate::config::Config;
use crate::http;
use crate::relay_registry::{Egress, RelayRegistry};
use crate::shared::{lock, now, Shared, SharedCore};
use crate::stream_listener::{self, StreamSettings};
use crate::tls;
use crate::turn_setup::{turn_settings, TurnSettings};
use crate::udp_listener::{self, grid_index, UdpGrid};

/// The longest the TURN timer task sleeps: lifetimes are whole seconds, so a deadline that
/// moved earlier is never missed by more than this.
const TIMER_GRANULARITY: Duration = Duration::from_secs(1);

/// Listeners bound but not yet running.
struct Bound {
    /// UDP grids with their Binding core, one per `listen` address.
    udp: Vec<(Arc<BindingServer>, ServerSockets, Arc<UdpGrid>)>,
    /// TCP and TLS listeners with their Binding core and grid position.
    streams: Vec<(TcpListener, Arc<BindingServer>, SocketId, bool)>,
}

impl Bound {
    /// Every bound port, UDP and TCP.
    fn ports(&self) -> Vec<u16> {
        let udp = self
            .udp
            .iter()
            .flat_map(|(_, _, grid)| grid.iter().flatten().filter_map(|s| s.local_addr().ok()));
        let tcp = self
            .streams
            .iter()
            .filter_map(|(listener, ..)| listener.local_addr().ok());
        udp.chain(tcp).map(|a| a.port()).collect()
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
}

/// Runs the server until SIGINT/SIGTERM, or until a listener fails.
pub async fn run(config: Config) -> anyhow::Result<()> {
    // Handlers first: a SIGTERM that arrives once we have said "ready" must stop us cleanly,
    // not kill us with the default disposition.
    let mut shutdown = ShutdownSignals::install()?;
    let settings = turn_settings(&config)?;
    let rest_secret = settings.api_secret();
    let TurnSettings {
        mut turn,
        auth,
        policy,
    } = settings;
    let bound = bind_all(&config)?;
    let http_listeners = http::bind(&config)?;
    // Ports the kernel picked (port 0 in `listen`) are service ports too: no relaying to them.
    turn.service_ports.extend(bound.ports());
    turn.service_ports.extend(http::ports(&http_listeners));
    turn.own_ips.extend(http::own_ips(&http_listeners));
    let turn_ports = bound.turn_ports();
    let mut egress = Egress::default();
    for (_, _, grid) in &bound.udp {
        for socket in grid.iter().flatten() {
            egress.udp.insert(socket.local_addr()?, socket.clone());
        }
    }
    let egress = Arc::new(egress);
    let core = TurnServer::new(
        turn,
        Authenticator::new(auth),
        policy,
        Box::new(StdRng::from_entropy()),
    );
    let shared: SharedCore = Arc::new_cyclic(|weak| {
        Mutex::new(Shared {
            core,
            relays: RelayRegistry::new(weak.clone(), egress),
            streams: HashMap::new(),
        })
    });

    let mut tasks: JoinSet<anyhow::Result<()>> = JoinSet::new();
    spawn_all(&config, bound, &shared, &mut tasks)?;
    http::spawn(&config, http_listeners, turn_ports, rest_secret, &mut tasks)?;
    let timers = shared.clone();
    tasks.spawn(async move {
        run_timers(timers).await;
        Ok(())
    });
    info!("ready");

    let result = tokio::select! {
        signal = shutdown.recv() => {
            info!(signal, "shutting down");
            Ok(())
        }
        Some(finished) = tasks.join_next() => {
            // Listeners run forever; one that returns has failed.
            match finished {
                Ok(Err(e)) => Err(e),
                Ok(Ok(())) => Err(anyhow::anyhow!("a listener stopped unexpectedly")),
                Err(e) => Err(anyhow::Error::from(e).context("a listener panicked")),
            }
        }
    };
    tasks.shutdown().await;
    // Close every relay socket before returning.
    let relays = std::mem::replace(
        &mut lock(&shared).relays,
        RelayRegistry::new(Default::default(), Default::default()),
    );
    drop(relays);
    result
}

/// Binds every UDP, TCP and TLS socket.
fn bind_all(config: &Config) -> anyhow::Result<Bound> {
    let mut bound = Bound {
        udp: Vec::new(),
        streams: Vec::new(),
    };
    for &listen in &config.listen {
        bind_listen(config, listen, &mut bound)?;
    }
    if let Some(files) = &config.tls {
        let _ = tls::acceptor(files)?; // fail early on bad files
        for &addr in &config.tls_listen {
            let listener = bind_tcp(addr)?;
            let bound_addr = listener.local_addr()?;
            let binding = Arc::new(binding_server(config, ServerSockets::single(bound_addr)));
            bound
                .streams
                .push((listener, binding, SocketId::PRIMARY, true));
        }
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
            udp: Vec::new(),
            streams: Vec::new(),
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
    let mut udp: UdpGrid = Default::default();
    let mut primary = listen;
    if transports.udp {
        let socket = bind_udp(listen)?;
        primary = socket.local_addr()?;
        udp[grid_index(SocketId::PRIMARY)] = Some(Arc::new(socket));
    }
    let sockets = ServerSockets {
        primary,
        alternate_ip: config.alternate_ip,
        alternate_port: config.alternate_port,
    };
    let binding = Arc::new(binding_server(config, sockets));
    for id in sockets.ids() {
        let addr = sockets
            .address(id)
            .context("socket outside the configured grid")?;
        if transports.udp && id != SocketId::PRIMARY {
            udp[grid_index(id)] = Some(Arc::new(bind_udp(addr)?));
        }
        if transports.tcp {
            bound
                .streams
                .push((bind_tcp(addr)?, binding.clone(), id, false));
        }
    }
    if transports.udp {
        bound.udp.push((binding, sockets, Arc::new(udp)));
    }
    if sockets.behaviour_discovery() {
        info!(primary = %primary, alternate_ip = ?sockets.alternate_ip, alternate_port = ?sockets.alternate_port,
              "RFC 5780 behaviour discovery on");
    }
    Ok(())
}

/// Starts one task per socket.
fn spawn_all(
    config: &Config,
    bound: Bound,
    shared: &SharedCore,
    tasks: &mut JoinSet<anyhow::Result<()>>,
) -> anyhow::Result<()> {
    for (binding, sockets, grid) in bound.udp {
        for id in sockets.ids() {
            let addr = sockets
                .address(id)
                .context("socket outside the configured grid")?;
            info!(address = %addr, transport = "udp", "listening");
            let (binding, grid, shared) = (binding.clone(), grid.clone(), shared.clone());
            tasks.spawn(async move {
                udp_listener::run(binding, id, grid, shared)
                    .await
                    .with_context(|| format!("UDP socket {addr}"))
            });
        }
    }
    let settings = StreamSettings {
        idle_timeout: config.tcp_idle_timeout,
        connections: Arc::new(Semaphore::new(config.max_tcp_connections)),
    };
    let acceptor = config.tls.as_ref().map(tls::acceptor).transpose()?;
    for (listener, binding, id, is_tls) in bound.streams {
        let addr = listener.local_addr()?;
        let transport = if is_tls { "tls" } else { "tcp" };
        info!(address = %addr, transport, "listening");
        let tls = if is_tls { acceptor.clone() } else { None };
        let (settings, shared) = (settings.clone(), shared.clone());
        tasks.spawn(async move {
            stream_listener::run(listener, binding, id, tls, settings, shared)
                .await
                .with_context(|| format!("{transport} listener {addr}"))
        });
    }
    Ok(())
}

/// Expires allocations, permissions and channels on time.
async fn run_timers(shared: SharedCore) {
    loop {
        let next = lock(&shared).core.poll_timeout();
        let (now, _) = now();
        let wake = next.map_or(now + TIMER_GRANULARITY, |t| t.min(now + TIMER_GRANULARITY));
        tokio::time::sleep_until(wake.into()).await;
        let mut state = lock(&shared);
        let state = &mut *state;
        let (now, _) = crate::shared::now();
        state.core.handle_timeout(now, &mut state.relays);
    }
}

fn binding_server(config: &Config, sockets: ServerSockets) -> BindingServer {
    BindingServer::new(BindingConfig {
        sockets,
        software: config.software.clone(),
    })
}

fn bind_udp(addr: SocketAddr) -> anyhow::Result<UdpSocket> {
    let socket = net::bind_udp(addr).with_context(|| format!("binding UDP {addr}"))?;
    UdpSocket::from_std(socket).with_context(|| format!("registering UDP {addr}"))
}

fn bind_tcp(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    let listener = net::bind_tcp(addr).with_context(|| format!("binding TCP {addr}"))?;
    TcpListener::from_std(listener).with_context(|| format!("registering TCP {addr}"))
}

/// SIGINT and SIGTERM, registered with the runtime.
struct ShutdownSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl ShutdownSignals {
    fn install() -> anyhow::Result<Self> {
        Ok(ShutdownSignals {
            interrupt: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            terminate: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
        })
    }

    /// Resolves on the first of SIGINT or SIGTERM, with its name.
    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
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
