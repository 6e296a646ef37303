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
pub(crate) mod webrtc;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use ice::{
    AgentConfig, Candidate, CandidateKind, CheckCounts, IceAgent, IceConnectionState, IceEvent,
};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::client::client_args::{parse_seconds, route_to, seconds_duration};
use identity::Identity;
use path::IcePath;
use signaling::{role_conflict, Description, PeerEvent, Role, Signaling, PROTOCOL};
use transfer::{Mode, Verdict};

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
    /// One deadline, in seconds, for everything before the connection: the signaling connect
    /// (TCP, TLS, WebSocket upgrade, join), the other peer, ICE and the QUIC handshake.
    #[arg(long, default_value = "60", value_name = "SECS",
          value_parser = |s: &str| parse_seconds(s, MAX_TIMEOUT))]
    pub timeout: f64,
    /// DNS for the STUN and TURN servers' SRV and address records.
    #[command(flatten)]
    pub dns: crate::client::discovery::DnsArgs,
}

/// How long one DNS query for a STUN or TURN server may take (the --timeout deadline bounds
/// them all).
pub(super) const DNS_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a transfer may still finish after the signaling server said the peer left: the
/// peer's verdict (a QUIC close) normally arrives before its `leave`, but may be lost once.
const LEFT_GRACE: Duration = Duration::from_secs(2);

/// Runs `turnpike p2p`.
pub async fn run(args: P2pArgs) -> anyhow::Result<()> {
    let timeout = seconds_duration(args.timeout, MAX_TIMEOUT)?;
    // One deadline for everything before the connection: the signaling connect (TCP, TLS,
    // WebSocket upgrade, `join`), the wait for the peer, ICE and the QUIC handshake.
    let deadline = tokio::time::Instant::now() + timeout;
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
        deadline,
    )
    .await?;
    println!(
        "joined room {} as {} ({} other peer(s) present)",
        args.room,
        signaling.joined.id,
        signaling.joined.peers.len()
    );
    let mut stage = Stage::Waiting;
    let attempt = tokio::select! {
        attempt = tokio::time::timeout_at(
            deadline,
            connect(&args, role_of(&mode), &mut signaling, &mut stage),
        ) => attempt,
        () = interrupted() => Ok(Err(anyhow!("interrupted"))),
    };
    let connected = match attempt {
        Ok(Ok(Link::Quic(connected))) => *connected,
        Ok(Ok(Link::Browser(peer, offer))) => {
            return webrtc::run(&args, signaling, peer, offer, mode, deadline).await;
        }
        failed => {
            // Leave properly, so that what we last sent (an answer that tells the peer why
            // we give up) reaches it before the connection closes.
            signaling.leave().await;
            return match failed {
                Ok(Err(error)) => Err(error),
                _ => Err(anyhow!(
                    "no connection within {} s: {}",
                    timeout.as_secs_f64(),
                    stage.why_not(&args.room)
                )),
            };
        }
    };
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
    let (ended_tx, ended) = tokio::sync::oneshot::channel();
    let watcher = tokio::spawn(watch(
        signaling,
        path.clone(),
        peer,
        selected,
        stopped,
        ended_tx,
    ));
    let application = async {
        match mode {
            Mode::Send(file) => transfer::send_file(&connection, &file).await,
            Mode::Receive(dir) => transfer::receive(&connection, Some(&dir)).await,
            Mode::Chat => transfer::chat(&connection).await,
        }
    };
    let result = until_peer_leaves(application, ended, &connection).await;
    // Let the close frame reach the peer before the path goes away.
    let _ = tokio::time::timeout(Duration::from_secs(3), endpoint.wait_idle()).await;
    // Free the relay at once rather than leave the allocation to expire on the server.
    path.close();
    let _ = stop.send(());
    let _ = watcher.await;
    result
}

/// Runs `application` to its end, or until a short grace after the signaling server says
/// the peer left (its `peer-left` comes at once when its process ends, where QUIC and
/// consent freshness would take 30 s to notice).
///
/// On an error the peer is told at once (QUIC close with [`Verdict::Aborted`] and the reason),
/// *before* `application` is dropped: dropping its streams first would send STOP_SENDING
/// (code 0), and a sender could report that ("stopped by peer: error 0") instead of the reason.
async fn until_peer_leaves(
    application: impl std::future::Future<Output = anyhow::Result<()>>,
    ended: tokio::sync::oneshot::Receiver<Ended>,
    connection: &quinn::Connection,
) -> anyhow::Result<()> {
    tokio::pin!(application);
    let result = tokio::select! {
        result = &mut application => result,
        Ok(ended) = ended => match ended {
            Ended::PeerLeft(peer) => match tokio::time::timeout(LEFT_GRACE, &mut application).await {
                Ok(result) => result,
                Err(_) => Err(anyhow!("peer {peer} left the room")),
            },
            Ended::Interrupted => Err(anyhow!("interrupted")),
        }
    };
    if let Err(error) = &result {
        // A dropped connection would close with code 0, "verified".
        Verdict::Aborted.close(connection, &format!("{error:#}"));
    }
    result
}

/// Why the session ends before the application is done.
#[derive(Debug)]
enum Ended {
    /// The signaling server said the peer left (`peer-left`, or the peer's `bye`).
    PeerLeft(String),
    /// SIGINT or SIGTERM here; the peer has been sent `bye`.
    Interrupted,
}

/// SIGINT (Ctrl-C) or SIGTERM.
pub(super) async fn interrupted() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

/// What this peer will do once connected, as its description announces it.
fn role_of(mode: &Mode) -> Role {
    match mode {
        Mode::Send(_) => Role::Send,
        Mode::Receive(_) => Role::Receive,
        Mode::Chat => Role::Chat,
    }
}

/// How far [`connect`] got: what "no connection within N s" means.
enum Stage {
    /// Nobody to call yet.
    Waiting,
    /// We offered to this peer and wait for its answer.
    Calling(String),
    /// Offer and answer exchanged; ICE checks under way.
    Checking(String, Arc<IcePath>),
    /// ICE connected; the QUIC handshake did not finish.
    Handshake(String),
}

impl Stage {
    fn why_not(&self, room: &str) -> String {
        match self {
            Stage::Waiting => format!("no peer joined room {room}"),
            Stage::Calling(peer) => format!("peer {peer} did not answer our offer"),
            Stage::Checking(peer, path) => format!(
                "peer {peer} joined, but no path to it was found ({})",
                path.with_agent(|agent, _| summary(agent))
            ),
            Stage::Handshake(peer) => {
                format!("ICE connected to peer {peer}, but the QUIC handshake did not finish")
            }
        }
    }
}

/// "our candidates: 1 host, 1 srflx; theirs: 2 host; checks: 2 failed, 1 in progress".
fn summary(agent: &IceAgent) -> String {
    let ours = kinds(agent.local_candidates());
    let theirs = kinds(agent.remote_candidates().iter());
    format!(
        "our candidates: {ours}; theirs: {theirs}; checks: {}",
        checks_text(agent.check_counts())
    )
}

/// Candidates counted by kind, "2 host, 1 relay", or "none".
fn kinds<'a>(candidates: impl Iterator<Item = &'a Candidate>) -> String {
    let mut counts: Vec<(&'static str, usize)> = Vec::new();
    for candidate in candidates {
        let token = candidate.kind.token();
        match counts.iter_mut().find(|(kind, _)| *kind == token) {
            Some((_, n)) => *n += 1,
            None => counts.push((token, 1)),
        }
    }
    if counts.is_empty() {
        return "none".to_owned();
    }
    counts
        .iter()
        .map(|(kind, n)| format!("{n} {kind}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// "4 pairs: 1 in progress, 2 failed, 1 waiting", or "no pairs yet".
fn checks_text(counts: CheckCounts) -> String {
    if counts.total() == 0 {
        return "no pairs yet".to_owned();
    }
    let parts: Vec<String> = [
        (counts.succeeded, "succeeded"),
        (counts.in_progress, "in progress"),
        (counts.failed, "failed"),
        (counts.waiting + counts.frozen, "waiting"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, state)| format!("{n} {state}"))
    .collect();
    format!("{} pairs: {}", counts.total(), parts.join(", "))
}

/// What [`connect`] found: another `turnpike p2p` (QUIC over our ICE path), or a browser that
/// offered WebRTC.
enum Link {
    /// Connected to another `turnpike p2p`.
    Quic(Box<Connected>),
    /// A browser (the room page) sent this SDP offer: answered by [`webrtc::run`].
    Browser(String, webrtc::frames::BrowserDescription),
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

/// Whether and why the TURN relay is part of the candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relay {
    /// `--no-relay`.
    Refused,
    /// The signaling server offered no TURN server over UDP.
    NotOffered,
    /// A TURN server is used.
    Used,
}

async fn connect(
    args: &P2pArgs,
    role: Role,
    signaling: &mut Signaling,
    stage: &mut Stage,
) -> anyhow::Result<Link> {
    let dns = crate::client::discovery::Dns::new(args.dns.dns_server, DNS_TIMEOUT);
    let usable = ice_servers::usable(&signaling.joined.ice_servers);
    let mut servers = ice_servers::resolve(&usable, &dns).await?;
    let relay = if args.no_relay {
        servers.turn.clear();
        Relay::Refused
    } else if servers.turn.is_empty() {
        Relay::NotOffered
    } else {
        Relay::Used
    };
    if args.relay_only && relay != Relay::Used {
        bail!("--relay-only: the signaling server offered no TURN server over UDP");
    }
    let identity = Identity::generate()?;
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
        role: Some(role),
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
        *stage = Stage::Calling(peer.clone());
        signaling.send_description("offer", &peer, &ours)?;
        loop {
            match signaling.recv().await? {
                PeerEvent::Answer(from, theirs) if from == peer => break (peer, theirs),
                // A browser does not read our offer: it makes its own, in SDP.
                PeerEvent::BrowserOffer(from, offer) if from == peer => {
                    return Ok(Link::Browser(peer, offer))
                }
                PeerEvent::Left(id) | PeerEvent::Bye(id) if id == peer => {
                    bail!("peer {peer} left before answering")
                }
                _ => {}
            }
        }
    } else {
        println!("waiting for a peer to join room {}", args.room);
        loop {
            match signaling.recv().await? {
                PeerEvent::Offer(from, theirs) => {
                    println!("peer {from} is calling");
                    // Answer even when the roles conflict: the answer tells the caller so.
                    signaling.send_description("answer", &from, &ours)?;
                    break (from, theirs);
                }
                PeerEvent::BrowserOffer(from, offer) => return Ok(Link::Browser(from, offer)),
                _ => {}
            }
        }
    };
    if let Some(why) = role_conflict(role, theirs.role) {
        bail!("peer {peer}: {why}");
    }
    agent.set_remote_credentials(&theirs.ufrag, &theirs.pwd);
    let (path, events) = IcePath::start(agent, sockets)?;
    *stage = Stage::Checking(peer.clone(), path.clone());
    let mut link = PeerLink {
        id: peer.clone(),
        events,
        relay_only: args.relay_only,
    };
    let selected = establish_ice(signaling, &path, &mut link, relay).await?;
    *stage = Stage::Handshake(peer);
    let connection_result = quic(&path, controlling, &identity, &theirs.fingerprint).await?;
    Ok(Link::Quic(Box::new(Connected {
        endpoint: connection_result.0,
        connection: connection_result.1,
        path,
        peer: link,
        selected,
    })))
}

/// How often the state of the checks is printed while they run (when it changed).
const CHECKS_REPORT: Duration = Duration::from_secs(2);

/// Trickles candidates both ways until ICE is connected on a selected pair, printing what
/// is gathered and received and how the checks go.
async fn establish_ice(
    signaling: &mut Signaling,
    path: &IcePath,
    link: &mut PeerLink,
    relay: Relay,
) -> anyhow::Result<(Candidate, Candidate)> {
    let mut report = tokio::time::interval(CHECKS_REPORT);
    let mut reported = CheckCounts::default();
    loop {
        tokio::select! {
            // The agent's events first: our candidates are printed before "connected".
            biased;
            event = link.events.recv() => {
                let event = event.ok_or_else(|| anyhow!("the ICE agent stopped"))?;
                match forward_event(signaling, link, event)? {
                    IceEvent::LocalCandidate(candidate) => {
                        println!("gathered {} {}", candidate.kind.token(), candidate.address);
                    }
                    IceEvent::StateChanged(IceConnectionState::Failed) => {
                        bail!("{}", path.with_agent(|agent, _| ice_failed(agent, relay)))
                    }
                    _ => {}
                }
            }
            event = signaling.recv() => {
                let event = event?;
                if let PeerEvent::Candidate(from, Some(text)) = &event {
                    if *from == link.id {
                        println!("peer candidate {}", short_candidate(text));
                    }
                }
                apply_peer_event(path, &link.id, event)?;
            }
            _ = report.tick() => {
                let counts = path.with_agent(|agent, _| agent.check_counts());
                if counts != reported && counts.total() > 0 {
                    println!("checking {}", checks_text(counts));
                    reported = counts;
                }
            }
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

/// "host 10.0.0.7:51000" from an RFC 8839 candidate string (the string itself if unparsable).
fn short_candidate(text: &str) -> String {
    match text.parse::<Candidate>() {
        Ok(candidate) => format!("{} {}", candidate.kind.token(), candidate.address),
        Err(_) => text.to_owned(),
    }
}

/// Why ICE failed, in the terms of what was tried.
fn ice_failed(agent: &IceAgent, relay: Relay) -> String {
    let tried = summary(agent);
    let gathered_relay = agent
        .local_candidates()
        .any(|c| c.kind == CandidateKind::Relayed);
    let why = match relay {
        Relay::Refused => "no direct path works, and --no-relay ruled out the TURN relay",
        Relay::NotOffered => "no direct path works, and the signaling server offered no TURN relay",
        Relay::Used if !gathered_relay => {
            "no direct path works, and no relay candidate was gathered (the TURN server did \
             not answer or refused the allocation)"
        }
        Relay::Used => "no candidate pair works, not even through the TURN relay",
    };
    format!("ICE failed: {why} ({tried})")
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

/// After the connection: keep forwarding candidates (trickle goes on), report ICE failure,
/// and say on `ended` when the peer leaves the room or we are interrupted (then the peer is
/// sent `bye` first, so that it stops at once too).
async fn watch(
    mut signaling: Signaling,
    path: Arc<IcePath>,
    mut link: PeerLink,
    mut current: (Candidate, Candidate),
    mut stop: tokio::sync::oneshot::Receiver<()>,
    ended: tokio::sync::oneshot::Sender<Ended>,
) {
    let interrupt = interrupted();
    tokio::pin!(interrupt);
    let mut ended = Some(ended);
    loop {
        tokio::select! {
            () = &mut interrupt, if ended.is_some() => {
                let _ = signaling.send("bye", &link.id, serde_json::Value::Null);
                if let Some(ended) = ended.take() {
                    let _ = ended.send(Ended::Interrupted);
                }
            }
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
                Ok(PeerEvent::Left(id) | PeerEvent::Bye(id)) if id == link.id => {
                    if let Some(ended) = ended.take() {
                        let _ = ended.send(Ended::PeerLeft(id));
                    }
                    // Stay in the room until the application is done.
                    let _ = (&mut stop).await;
                    signaling.leave().await;
                    return;
                }
                Ok(event) => if apply_peer_event(&path, &link.id, event).is_err() { return },
                // Without signaling the direct path may still work: carry on.
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
pub(super) async fn bind_host_sockets(
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
