//! `turnpike serve`: binds every listener the configuration asks for, runs their event loops,
//! and stops on SIGINT/SIGTERM.
//!
//! Sockets are bound before anything runs, so that a port already in use is reported at
//! once, with the address, and the process exits non-zero.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::{TcpListener, UdpSocket};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::info;
use turn::{BindingConfig, BindingServer, ServerSockets, SocketId};

use crate::config::Config;
use crate::stream_listener::{self, StreamSettings};
use crate::tls;
use crate::udp_listener::{self, grid_index, UdpGrid};

/// Runs the server until SIGINT/SIGTERM, or until a listener fails.
pub async fn run(config: Config) -> anyhow::Result<()> {
    // Handlers first: a SIGTERM that arrives once we have said "ready" must stop us cleanly,
    // not kill us with the default disposition.
    let mut shutdown = ShutdownSignals::install()?;
    let settings = StreamSettings {
        idle_timeout: config.tcp_idle_timeout,
        connections: Arc::new(Semaphore::new(config.max_tcp_connections)),
    };
    let mut tasks: JoinSet<anyhow::Result<()>> = JoinSet::new();
    for &listen in &config.listen {
        bind_group(&config, listen, &settings, &mut tasks)?;
    }
    if let Some(files) = &config.tls {
        let acceptor = tls::acceptor(files)?;
        for &addr in &config.tls_listen {
            let listener = bind_tcp(addr)?;
            let bound = listener.local_addr()?;
            info!(address = %bound, transport = "tls", "listening");
            let server = Arc::new(binding_server(&config, ServerSockets::single(bound)));
            let settings = settings.clone();
            let acceptor = Some(acceptor.clone());
            tasks.spawn(async move {
                stream_listener::run(listener, server, SocketId::PRIMARY, acceptor, settings)
                    .await
                    .with_context(|| format!("TLS listener {bound}"))
            });
        }
    }
    anyhow::ensure!(
        !tasks.is_empty(),
        "nothing to serve: UDP and TCP are off and TLS is not configured"
    );
    info!("ready");

    tokio::select! {
        signal = shutdown.recv() => {
            info!(signal, "shutting down");
            tasks.shutdown().await;
            Ok(())
        }
        Some(finished) = tasks.join_next() => {
            // Listeners run forever; one that returns has failed.
            match finished {
                Ok(Err(e)) => Err(e),
                Ok(Ok(())) => anyhow::bail!("a listener stopped unexpectedly"),
                Err(e) => Err(anyhow::Error::from(e).context("a listener panicked")),
            }
        }
    }
}

/// Binds the UDP and TCP sockets of one `listen` address: one socket, or the RFC 5780 grid
/// of up to four when an alternate IP and/or port is configured.
fn bind_group(
    config: &Config,
    listen: SocketAddr,
    settings: &StreamSettings,
    tasks: &mut JoinSet<anyhow::Result<()>>,
) -> anyhow::Result<()> {
    // Bind the primary UDP socket first: with port 0 (tests) the kernel picks the port, and
    // every other socket of the group uses the same one.
    let mut udp: UdpGrid = Default::default();
    let mut primary = listen;
    if config.udp {
        let socket = bind_udp(listen)?;
        primary = socket.local_addr()?;
        udp[grid_index(SocketId::PRIMARY)] = Some(Arc::new(socket));
    }
    let sockets = ServerSockets {
        primary,
        alternate_ip: config.alternate_ip,
        alternate_port: config.alternate_port,
    };
    if config.udp {
        for id in sockets.ids().skip(1) {
            let addr = address(&sockets, id)?;
            udp[grid_index(id)] = Some(Arc::new(bind_udp(addr)?));
        }
    }
    let server = Arc::new(binding_server(config, sockets));
    let udp = Arc::new(udp);
    for id in sockets.ids() {
        let addr = address(&sockets, id)?;
        if config.udp {
            info!(address = %addr, transport = "udp", "listening");
            let (server, udp) = (server.clone(), udp.clone());
            tasks.spawn(async move {
                udp_listener::run(server, id, udp)
                    .await
                    .with_context(|| format!("UDP socket {addr}"))
            });
        }
        if config.tcp {
            let listener = bind_tcp(addr)?;
            let bound = listener.local_addr()?;
            info!(address = %bound, transport = "tcp", "listening");
            let (server, settings) = (server.clone(), settings.clone());
            tasks.spawn(async move {
                stream_listener::run(listener, server, id, None, settings)
                    .await
                    .with_context(|| format!("TCP listener {bound}"))
            });
        }
    }
    if sockets.behaviour_discovery() {
        info!(primary = %primary, alternate_ip = ?sockets.alternate_ip, alternate_port = ?sockets.alternate_port,
              "RFC 5780 behaviour discovery on");
    }
    Ok(())
}

fn binding_server(config: &Config, sockets: ServerSockets) -> BindingServer {
    BindingServer::new(BindingConfig {
        sockets,
        software: config.software.clone(),
    })
}

fn address(sockets: &ServerSockets, id: SocketId) -> anyhow::Result<SocketAddr> {
    sockets
        .address(id)
        .context("socket outside the configured grid")
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
