//! `turnpike p2p --signal ws://HOST:8080/ws --room NAME [--send FILE | --receive DIR]`: two
//! peers meet through the signaling server, connect with ICE (direct when hole punching works,
//! through the TURN relay when it does not), and talk QUIC over the selected path.
//!
//! The steps, in order:
//! 1. join the room ([`signaling`]); the signaling server hands out STUN/TURN servers with
//!    short-lived TURN credentials, as it does for browsers ([`ice_servers`]);
//! 2. the peer that joined second sends an offer (ICE ufrag/pwd and its certificate
//!    fingerprint), the first answers; both gather candidates on their host sockets and
//!    trickle them as RFC 8839 strings;
//! 3. the sans-IO [`ice::IceAgent`] checks the pairs; the controlling agent (the offerer)
//!    nominates one; [`path::IcePath`] then carries QUIC datagrams on it;
//! 4. quinn runs the QUIC handshake over the path, each side accepting only the certificate
//!    whose fingerprint the other announced ([`identity`]); the offerer is the QUIC client;
//! 5. a file transfer with an end-to-end SHA-256 check, or a chat ([`transfer`]).

pub(crate) mod ice_servers;
mod identity;
mod path;
mod signaling;
mod signaling_tls;
mod transfer;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use ice::{AgentConfig, Candidate, CandidateKind, IceAgent, IceConnectionState, IceEvent};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::client_args::{parse_seconds, route_to, seconds_duration};
use identity::Identity;
use path::IcePath;
use signaling::{Description, PeerEvent, Signaling, PROTOCOL};
use transfer::Mode;

/// Longest `--timeout`.
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// Arguments of `turnpike p2p`.
#[derive(Debug, clap::Args)]
pub struct P2pArgs {
    /// The signaling server's WebSocket URL, e.g. ws://turn.example.org:8080/ws, or
    /// wss://turn.example.org/ws over TLS.
    #[arg(long, value_name = "URL")]
    pub signal: String,
    /// With a wss:// URL: trust only the certificates of this PEM file (a private CA, or the
    /// server's self-signed certificate) instead of the public CAs.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// The room to meet the other peer in (both peers give the same name).
    #[arg(long, value_name = "NAME")]
    pub room: String,
    /// A join token, when the server requires one (`turnpike token`).
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
    /// Send this file, then exit once the receiver has verified its SHA-256.
    #[arg(long, value_name = "FILE", conflicts_with = "receive")]
    pub send: Option<PathBuf>,
    /// Receive one file into this directory, verify its SHA-256, then exit.
    #[arg(long, value_name = "DIR")]
    pub receive: Option<PathBuf>,
    /// Gather host candidates only on these local addresses (default: every IPv4 address
    /// of the machine, loopback only when the signaling server is on loopback).
    #[arg(long = "host-ip", value_name = "IP")]
    pub host_ips: Vec<IpAddr>,
    /// Do not use the TURN relay: direct paths only.
    #[arg(long, conflicts_with = "relay_only")]
    pub no_relay: bool,
    /// Offer the peer only our relayed candidates, so every path goes through a TURN relay
    /// (hides our addresses from the peer, as WebRTC's `iceTransportPolicy: "relay"`).
    #[arg(long)]
    pub relay_only: bool,
    /// Seconds to wait for the other peer to join and for a path to be found.
    #[arg(long, default_value = "60", value_name = "SECS",
          value_parser = |s: &str| parse_seconds(s, MAX_TIMEOUT))]
    pub timeout: f64,
}

/// Runs `turnpike p2p`.
pub async fn run(args: P2pArgs) -> anyhow::Result<()> {
    let timeout = seconds_duration(args.timeout, MAX_TIMEOUT)?;
    let mode = match (&args.send, &args.receive) {
        (Some(file), _) => {
            // Fail before meeting anyone if the file cannot be read.
            std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
            Mode::Send(file.clone())
        }
        (None, Some(dir)) => {
            if !dir.is_dir() {
                bail!("{} is not a directory", dir.display());
            }
            Mode::Receive(dir.clone())
        }
        (None, None) => Mode::Chat,
    };
    if args.ca_file.is_some() && !args.signal.starts_with("wss://") {
        bail!(
            "--ca-file is for a wss:// signaling URL; {} is not one",
            args.signal
        );
    }
    let mut signaling = Signaling::join(
        &args.signal,
        args.ca_file.as_deref(),
        &args.room,
        args.token.as_deref(),
    )
    .await?;
    println!(
        "joined room {} as {} ({} other peer(s) present)",
        args.room,
        signaling.joined.id,
        signaling.joined.peers.len()
    );
    let mut servers =
        ice_servers::resolve(&ice_servers::usable(&signaling.joined.ice_servers)).await?;
    if args.no_relay {
        servers.turn.clear();
    }
    if args.relay_only && servers.turn.is_empty() {
        bail!("--relay-only: the signaling server offered no TURN server over UDP");
    }
    let identity = Identity::generate()?;
    let deadline = tokio::time::Instant::now() + timeout;
    let connected =
        tokio::time::timeout_at(deadline, connect(&args, &mut signaling, servers, &identity))
            .await
            .map_err(|_| anyhow!("no connection within {} s", timeout.as_secs_f64()))??;
    let Connected {
        endpoint,
        connection,
        path,
        peer,
        selected,
    } = connected;
    println!(
        "{}, RTT {} ms",
        describe(&selected.0, &selected.1),
        connection.rtt().as_millis()
    );
    // Keep trickling and watching the room while the application runs.
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let watcher = tokio::spawn(watch(signaling, path.clone(), peer, selected, stopped));
    let result = match mode {
        Mode::Send(file) => transfer::send_file(&connection, &file).await,
        Mode::Receive(dir) => transfer::receive(&connection, Some(&dir)).await,
        Mode::Chat => transfer::chat(&connection).await,
    };
    // Let the close frame reach the peer before the path goes away.
    let _ = tokio::time::timeout(Duration::from_secs(3), endpoint.wait_idle()).await;
    // Free the relay at once rather than leave the allocation to expire on the server.
    path.close();
    let _ = stop.send(());
    let _ = watcher.await;
    result
}

/// A QUIC connection over the ICE path.
struct Connected {
    endpoint: quinn::Endpoint,
    connection: quinn::Connection,
    path: Arc<IcePath>,
    peer: PeerLink,
    /// The ICE pair the connection started on: (local, remote).
    selected: (Candidate, Candidate),
}

/// The other peer: its id, the agent events still to forward to it, and which of our
/// candidates it may learn.
struct PeerLink {
    id: String,
    events: mpsc::UnboundedReceiver<IceEvent>,
    relay_only: bool,
}

async fn connect(
    args: &P2pArgs,
    signaling: &mut Signaling,
    servers: ice_servers::Resolved,
    identity: &Identity,
) -> anyhow::Result<Connected> {
    let sockets = bind_host_sockets(args, &servers).await?;
    let controlling = !signaling.joined.peers.is_empty();
    let mut config = AgentConfig::new(controlling);
    config.stun_servers = servers.stun;
    config.turn_servers = servers.turn;
    let now = Instant::now();
    let mut agent = IceAgent::new(now, config, rand::random());
    for socket in &sockets {
        agent.add_host_candidate(now, socket.local_addr()?);
    }
    let (ufrag, pwd) = agent.local_credentials();
    let ours = Description {
        protocol: PROTOCOL.to_owned(),
        ufrag: ufrag.to_owned(),
        pwd: pwd.to_owned(),
        fingerprint: identity.fingerprint(),
    };
    // The later peer offers; the earlier one answers whoever offers first.
    let (peer, theirs) = if controlling {
        let peer = signaling
            .joined
            .peers
            .last()
            .cloned()
            .ok_or_else(|| anyhow!("no peer to call"))?;
        println!("calling peer {peer}");
        signaling.send_description("offer", &peer, &ours)?;
        loop {
            match signaling.recv().await? {
                PeerEvent::Answer(from, theirs) if from == peer => break (peer, theirs),
                PeerEvent::Left(id) | PeerEvent::Bye(id) if id == peer => {
                    bail!("peer {peer} left before answering")
                }
                _ => {}
            }
        }
    } else {
        println!("waiting for a peer to join room {}", args.room);
        loop {
            if let PeerEvent::Offer(from, theirs) = signaling.recv().await? {
                println!("peer {from} is calling");
                signaling.send_description("answer", &from, &ours)?;
                break (from, theirs);
            }
        }
    };
    agent.set_remote_credentials(&theirs.ufrag, &theirs.pwd);
    let (path, events) = IcePath::start(agent, sockets)?;
    let mut link = PeerLink {
        id: peer,
        events,
        relay_only: args.relay_only,
    };
    let selected = establish_ice(signaling, &path, &mut link).await?;
    let connection_result = quic(&path, controlling, identity, &theirs.fingerprint).await?;
    Ok(Connected {
        endpoint: connection_result.0,
        connection: connection_result.1,
        path,
        peer: link,
        selected,
    })
}

/// Trickles candidates both ways until ICE is connected on a selected pair.
async fn establish_ice(
    signaling: &mut Signaling,
    path: &IcePath,
    link: &mut PeerLink,
) -> anyhow::Result<(Candidate, Candidate)> {
    loop {
        tokio::select! {
            event = link.events.recv() => {
                let event = event.ok_or_else(|| anyhow!("the ICE agent stopped"))?;
                if let IceEvent::StateChanged(IceConnectionState::Failed) =
                    forward_event(signaling, link, event)?
                {
                    bail!("ICE failed: no candidate pair works (is the relay reachable?)")
                }
            }
            event = signaling.recv() => apply_peer_event(path, &link.id, event?)?,
        }
        let selected = path.with_agent(|agent, _| {
            (agent.state() == IceConnectionState::Connected)
                .then(|| agent.selected_pair().map(|(l, r)| (l.clone(), r.clone())))
                .flatten()
        });
        if let Some(pair) = selected {
            return Ok(pair);
        }
    }
}

/// Sends our candidates to the peer; returns the event for the caller to look at.
fn forward_event(
    signaling: &Signaling,
    link: &PeerLink,
    event: IceEvent,
) -> anyhow::Result<IceEvent> {
    match &event {
        IceEvent::LocalCandidate(candidate) => {
            tracing::debug!(%candidate, "local candidate");
            if !link.relay_only || candidate.kind == CandidateKind::Relayed {
                signaling.send_candidate(&link.id, Some(&candidate.to_string()))?;
            }
        }
        IceEvent::GatheringComplete => signaling.send_candidate(&link.id, None)?,
        IceEvent::StateChanged(state) => tracing::debug!(?state, "ICE state"),
        _ => {}
    }
    Ok(event)
}

/// Applies what the peer said through signaling.
fn apply_peer_event(path: &IcePath, peer: &str, event: PeerEvent) -> anyhow::Result<()> {
    match event {
        PeerEvent::Candidate(from, Some(text)) if from == peer => {
            match text.parse::<Candidate>() {
                Ok(candidate) => {
                    path.with_agent(|agent, now| agent.add_remote_candidate(now, candidate))
                }
                // A candidate we cannot use (TCP, IPv6 we did not gather, a typo) is skipped,
                // as browsers do; the others may still connect.
                Err(error) => tracing::debug!(%text, %error, "remote candidate skipped"),
            }
        }
        PeerEvent::Candidate(from, None) if from == peer => {
            path.with_agent(|agent, _| agent.end_of_remote_candidates());
        }
        PeerEvent::Left(id) | PeerEvent::Bye(id) if id == peer => bail!("peer {peer} left"),
        _ => {}
    }
    Ok(())
}

/// After the connection: keep forwarding candidates (trickle goes on) and report ICE failure.
async fn watch(
    mut signaling: Signaling,
    path: Arc<IcePath>,
    mut link: PeerLink,
    mut current: (Candidate, Candidate),
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            _ = &mut stop => {
                signaling.leave().await;
                return;
            }
            event = link.events.recv() => match event {
                Some(event) => match forward_event(&signaling, &link, event) {
                    Ok(IceEvent::StateChanged(IceConnectionState::Failed)) => {
                        eprintln!("the path to the peer failed (consent lost)");
                    }
                    Ok(IceEvent::SelectedPair { local, remote }) => {
                        // The event that announced the first pair may still be queued.
                        if local.address != current.0.address || remote.address != current.1.address {
                            println!("path changed: {}", describe(&local, &remote));
                            current = (local, remote);
                        }
                    }
                    Ok(_) => {}
                    Err(_) => return,
                },
                None => return,
            },
            event = signaling.recv() => match event {
                Ok(event) => if apply_peer_event(&path, &link.id, event).is_err() { return },
                Err(_) => return,
            },
        }
    }
}

/// The QUIC handshake over the path: the offerer (ICE controlling) is the client.
async fn quic(
    path: &Arc<IcePath>,
    client: bool,
    identity: &Identity,
    peer_fingerprint: &str,
) -> anyhow::Result<(quinn::Endpoint, quinn::Connection)> {
    let mut transport = quinn::TransportConfig::default();
    // Keep NAT bindings and the TURN permission warm, and notice a dead peer in 30 s, the
    // consent timeout of RFC 7675 §5.1.
    transport.keep_alive_interval(Some(Duration::from_secs(5)));
    transport.max_idle_timeout(Some(Duration::from_secs(30).try_into()?));
    let transport = Arc::new(transport);
    let socket: Arc<dyn quinn::AsyncUdpSocket> = path.clone();
    let runtime = Arc::new(quinn::TokioRuntime);
    if client {
        let mut config = identity.client_config(peer_fingerprint)?;
        config.transport_config(transport);
        let endpoint = quinn::Endpoint::new_with_abstract_socket(
            quinn::EndpointConfig::default(),
            None,
            socket,
            runtime,
        )?;
        let connection = endpoint
            .connect_with(config, path::PEER, identity::SERVER_NAME)?
            .await
            .context("QUIC handshake failed")?;
        Ok((endpoint, connection))
    } else {
        let mut config = identity.server_config(peer_fingerprint)?;
        config.transport_config(transport);
        let endpoint = quinn::Endpoint::new_with_abstract_socket(
            quinn::EndpointConfig::default(),
            Some(config),
            socket,
            runtime,
        )?;
        let incoming = endpoint
            .accept()
            .await
            .ok_or_else(|| anyhow!("the QUIC endpoint closed"))?;
        let connection = incoming.await.context("QUIC handshake failed")?;
        Ok((endpoint, connection))
    }
}

/// One UDP socket per local address to gather host candidates on.
async fn bind_host_sockets(
    args: &P2pArgs,
    servers: &ice_servers::Resolved,
) -> anyhow::Result<Vec<Arc<UdpSocket>>> {
    let mut ips = args.host_ips.clone();
    if ips.is_empty() {
        ips = default_host_ips(&args.signal, servers).await;
    }
    if ips.is_empty() {
        bail!("no local IPv4 address to gather candidates on (give --host-ip)");
    }
    let mut sockets = Vec::new();
    for ip in ips {
        let socket = UdpSocket::bind(SocketAddr::new(ip, 0))
            .await
            .with_context(|| format!("cannot bind a UDP socket on {ip}"))?;
        sockets.push(Arc::new(socket));
    }
    Ok(sockets)
}

/// Every non-loopback IPv4 address, plus the address that routes to the servers (which is
/// loopback when they are on loopback, as in a one-machine trial).
async fn default_host_ips(signal_url: &str, servers: &ice_servers::Resolved) -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .map(|interface| interface.ip())
        .filter(|ip| ip.is_ipv4() && !ip.is_loopback())
        .collect();
    let mut targets: Vec<SocketAddr> = servers
        .stun
        .iter()
        .chain(servers.turn.iter().map(|(a, _)| a))
        .copied()
        .collect();
    if let Some(signal) = signal_address(signal_url).await {
        targets.push(signal);
    }
    for target in targets {
        if let Ok(ip) = route_to(target).await {
            if !ips.contains(&ip) {
                ips.push(ip);
            }
        }
    }
    ips
}

async fn signal_address(url: &str) -> Option<SocketAddr> {
    let uri: tokio_tungstenite::tungstenite::http::Uri = url.parse().ok()?;
    let default = if uri.scheme_str() == Some("wss") {
        443
    } else {
        80
    };
    let host = uri.host()?.trim_matches(['[', ']']).to_owned();
    tokio::net::lookup_host((host, uri.port_u16().unwrap_or(default)))
        .await
        .ok()?
        .find(SocketAddr::is_ipv4)
}

/// `connected: srflx 203.0.113.5:40212 ↔ host 10.0.0.7:51000` or `connected via relay: …`.
fn describe(local: &Candidate, remote: &Candidate) -> String {
    let relayed = local.kind == CandidateKind::Relayed || remote.kind == CandidateKind::Relayed;
    format!(
        "connected{}: {} {} ↔ {} {}",
        if relayed { " via relay" } else { "" },
        local.kind.token(),
        local.address,
        remote.kind.token(),
        remote.address
    )
}
