//! WebRTC mode of `turnpike p2p`: when the other peer of the room is a browser (it sends an
//! SDP offer, where another `turnpike p2p` sends our `turnpike-p2p/1` description), we answer
//! it in real WebRTC — SDP offer/answer and trickle ICE through the same signaling frames the
//! room page uses ([`frames`]), then ICE, DTLS and SCTP data channels on str0m's sans-IO
//! [`peer::WebRtcPeer`] — and chat over the page's `chat` channel ([`chat`]), or send or
//! receive a file over its `file` channel ([`file_transfer`], [`file_io`]).
//!
//! This file is the I/O loop: our UDP sockets, the signaling connection and stdin feed the
//! peer; what it returns is sent, printed or written. We are always the answerer: the page
//! offers as soon as it sees us (it does not understand our own offer format and ignores it).

pub(crate) mod chat;
mod file_io;
pub(crate) mod file_transfer;
pub(crate) mod frames;
mod peer;
mod reflexive;
mod relay;
mod transport;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, Context};
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;

use super::signaling::{PeerEvent, Signaling};
use super::transfer::Mode;
use super::{ice_servers, P2pArgs, DNS_TIMEOUT};
use file_io::{Receiving, Sending};
use frames::{BrowserDescription, SessionTags};
use peer::{PeerOutput, WebRtcPeer};
use reflexive::Reflexive;
use relay::Relay;
use transport::{Gathered, Transport};

/// Answers `peer`'s `offer` and chats with it (or, later, sends or receives a file).
/// `deadline` bounds everything up to the open data channel.
pub(super) async fn run(
    args: &P2pArgs,
    mut signaling: Signaling,
    peer_id: String,
    offer: BrowserDescription,
    mode: Mode,
    deadline: tokio::time::Instant,
) -> anyhow::Result<()> {
    println!("peer {peer_id} is a browser: answering its WebRTC offer (SDP, DTLS, SCTP)");
    let result = session(args, &mut signaling, &peer_id, offer, mode, deadline).await;
    if result.is_err() {
        // The page closes its side at once instead of waiting for ICE to time out.
        let _ = signaling.send("bye", &peer_id, serde_json::json!({}));
    }
    signaling.leave().await;
    result
}

/// The connection and the chat, until stdin ends, the page leaves or the connection fails.
async fn session(
    args: &P2pArgs,
    signaling: &mut Signaling,
    peer_id: &str,
    offer: BrowserDescription,
    mode: Mode,
    deadline: tokio::time::Instant,
) -> anyhow::Result<()> {
    let dns = crate::client::discovery::Dns::new(args.dns.dns_server, DNS_TIMEOUT);
    let usable = ice_servers::usable(&signaling.joined.ice_servers);
    let servers = ice_servers::resolve(&usable, &dns).await?;
    let (packets, mut incoming) = mpsc::channel(256);
    let mut transport = if args.relay_only {
        relay_transport(args, &servers).await?
    } else {
        default_transport(args, &servers).await?
    };
    transport.start_readers(&packets)?;
    let mut candidates = Vec::new();
    for address in transport.host_addresses() {
        candidates.push(
            str0m::Candidate::host(address, "udp")
                .map_err(|e| anyhow!("cannot use {address} as a host candidate: {e}"))?,
        );
    }
    if args.relay_only {
        // RFC 8445 §5.1.1.2: the relayed candidate, gathered before answering so that it is in
        // the answer's SDP: it is the only one, and ICE has nothing to check without it.
        let relayed = transport.allocated(&mut incoming, deadline).await?;
        let base = transport
            .relay_base()
            .ok_or_else(|| anyhow!("the relay socket closed"))?;
        println!("gathered relay {relayed}");
        candidates.push(
            str0m::Candidate::relayed(relayed, base, "udp")
                .map_err(|e| anyhow!("cannot use {relayed} as a relayed candidate: {e}"))?,
        );
    }
    // Otherwise the answer goes out at once with the host candidates, and the server-reflexive
    // and relayed ones are trickled as they come (RFC 8838 §4): the page starts checking the
    // host pairs without waiting for STUN and TURN round trips.
    let result = connected(
        signaling,
        peer_id,
        offer,
        mode,
        deadline,
        candidates,
        &mut transport,
        &mut incoming,
    )
    .await;
    transport.close(&mut incoming).await;
    result
}

/// What the session does once the channels are open.
enum App {
    /// stdin lines to the page's chat, its messages to stdout.
    Chat,
    /// `--send FILE`.
    Send(Sending),
    /// `--receive DIR`; `Some(until)` once the verdict is written: linger until it is sent.
    Receive(Receiving, Option<tokio::time::Instant>),
}

/// How long a chat waits for the page's new offer after the page closed its connection: the
/// page replaces a connection (its relay-only switch) by closing the old one and offering a
/// new one a moment later; a page that leaves says `bye` and ends the chat at once.
const REPLACEMENT_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// How long a receiver waits for its verdict to reach the sender before it exits.
const VERDICT_LINGER: std::time::Duration = std::time::Duration::from_secs(2);

/// Answers, connects, then chats or sends or receives the file over `transport`.
#[allow(clippy::too_many_arguments)] // one call site; the parts of one session
async fn connected(
    signaling: &mut Signaling,
    peer_id: &str,
    offer: BrowserDescription,
    mode: Mode,
    deadline: tokio::time::Instant,
    candidates: Vec<str0m::Candidate>,
    transport: &mut Transport,
    incoming: &mut mpsc::Receiver<transport::Datagram>,
) -> anyhow::Result<()> {
    let mut app = match &mode {
        Mode::Chat => App::Chat,
        Mode::Send(path) => App::Send(Sending::open(path).await?),
        Mode::Receive(dir) => App::Receive(Receiving::new(dir), None),
    };
    let (mut peer, answer) = WebRtcPeer::answer(Instant::now(), &offer.sdp, candidates.clone())?;
    let mut tags = SessionTags {
        sid: random_sid(),
        rsid: offer.sid.clone(),
        mid: frames::first_mid(&offer.sdp),
    };
    // The candidates gathered so far are in the answer's SDP (RFC 8839 §5.1); later ones are
    // trickled, and all of them kept for a connection that replaces this one.
    signaling.send("answer", peer_id, tags.answer(&answer))?;
    let mut local_candidates = candidates;
    // A replacing connection gets as long to come up as the first one had.
    let budget = deadline.saturating_duration_since(tokio::time::Instant::now());
    let mut deadline = deadline;
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let interrupt = super::interrupted();
    tokio::pin!(interrupt);
    let mut chat = peer.chat_channel();
    let mut files = peer.file_channel();
    let mut open = false;
    let mut files_open = false;
    // Chat mode: when the page closes the connection without leaving (it is replacing it: its
    // relay-only switch), until when we wait for the new offer.
    let mut orphaned: Option<tokio::time::Instant> = None;
    let mut sources = Sources::default();
    let result = 'session: loop {
        let wake = if !peer.is_alive() {
            // str0m gave up on this connection: nothing to poll until a replacement.
            Instant::now() + REPLACEMENT_GRACE
        } else {
            loop {
                let output = match peer.poll() {
                    Ok(output) => output,
                    // str0m reports the page's DTLS close_notify as an error: in a chat that is
                    // the page closing this connection (to leave, or to replace it), handled
                    // below like a closed channel; mid-transfer it is fatal.
                    Err(error) if matches!(app, App::Chat) => {
                        tracing::debug!(%error, "the WebRTC connection ended");
                        peer.disconnect();
                        break Instant::now() + REPLACEMENT_GRACE;
                    }
                    Err(error) => return Err(error.into()),
                };
                match output {
                    PeerOutput::Wait(at) => break at,
                    PeerOutput::Transmit {
                        source,
                        destination,
                        contents,
                    } => {
                        transport
                            .send(Instant::now(), source, destination, &contents)
                            .await
                    }
                    PeerOutput::ChannelOpen(id, label) if id == chat && !open => {
                        open = true;
                        println!(
                        "connected to peer {peer_id} over WebRTC: data channel \"{label}\" open"
                    );
                    }
                    PeerOutput::ChannelOpen(id, _) if id == files => {
                        files_open = true;
                        peer.set_buffered_amount_low_threshold(files, file_transfer::LOW_WATER);
                    }
                    PeerOutput::ChannelOpen(_, label) => {
                        tracing::debug!(%label, "data channel opened by the page, unused");
                    }
                    PeerOutput::ChannelData { channel, data, .. } if channel == chat => {
                        println!("peer> {}", chat::decode(&data));
                    }
                    PeerOutput::ChannelData {
                        channel,
                        binary,
                        data,
                    } if channel == files => match &mut app {
                        App::Send(sending) => {
                            if sending.message(binary, &data)? {
                                return Ok(());
                            }
                        }
                        App::Receive(receiving, linger) => {
                            if let Some((verdict, outcome)) =
                                receiving.message(binary, &data).await?
                            {
                                peer.write(files, false, verdict.as_bytes())?;
                                outcome?;
                                *linger = Some(tokio::time::Instant::now() + VERDICT_LINGER);
                            }
                        }
                        App::Chat => tracing::debug!("file message in chat mode: ignored"),
                    },
                    PeerOutput::ChannelData { .. } => {}
                    // The sender writes more below, after the outputs are drained.
                    PeerOutput::BufferedAmountLow(id) => {
                        tracing::trace!(?id, "buffered amount low")
                    }
                    PeerOutput::ChannelClose(id) if id == chat => match app {
                        App::Chat => {
                            open = false;
                            orphaned.get_or_insert(tokio::time::Instant::now() + REPLACEMENT_GRACE);
                        }
                        _ => bail!("the peer closed the connection before the file was verified"),
                    },
                    PeerOutput::ChannelClose(_) => {}
                    PeerOutput::IceState(state) => tracing::debug!(?state, "ICE state"),
                }
            }
        };
        if !peer.is_alive() {
            if !matches!(app, App::Chat) {
                bail!("the WebRTC connection to peer {peer_id} closed");
            }
            open = false;
            orphaned.get_or_insert(tokio::time::Instant::now() + REPLACEMENT_GRACE);
        }
        if files_open {
            if let App::Send(sending) = &mut app {
                sending.pump(&mut peer, files).await?;
            }
        }
        let mut linger_until = None;
        if let App::Receive(_, Some(until)) = &app {
            // The verdict is out once SCTP has it acknowledged, or after the linger.
            if peer.buffered_amount(files) == 0 || tokio::time::Instant::now() >= *until {
                return Ok(());
            }
            linger_until = Some(*until);
        }
        transport.work(Instant::now()).await?;
        while let Some(gathered) = transport.poll_gathered() {
            let candidate = local_candidate(gathered)?;
            // str0m drops a candidate that is redundant with one it has (RFC 8445 §5.1.3: a
            // server-reflexive address equal to its base, as on loopback): nothing to trickle.
            if let Some(text) = peer.add_local_candidate(candidate.clone()) {
                signaling.send("candidate", peer_id, tags.candidate(&text))?;
            }
            local_candidates.push(candidate);
        }
        let wake = transport.timeout().map_or(wake, |at| at.min(wake));
        let wake = tokio::time::Instant::from_std(wake);
        let wake = linger_until.map_or(wake, |until| until.min(wake));
        let chatting = open && matches!(app, App::Chat);
        tokio::select! {
            Some(datagram) = incoming.recv() => {
                if let Some(arrived) = transport.arrived(Instant::now(), datagram) {
                    if sources.stale(arrived.source) && !peer.accepts(Instant::now(), &arrived) {
                        // The replaced connection's last words (its DTLS close_notify, SCTP
                        // ABORT) can come after the new offer was answered: not for this one.
                        tracing::debug!(source = %arrived.source, "datagram of the replaced connection dropped");
                        continue;
                    }
                    sources.saw(arrived.source);
                    let received = peer.receive(Instant::now(), arrived.source, arrived.destination, &arrived.contents);
                    if let Err(error) = received {
                        // As for `poll` above.
                        if !matches!(app, App::Chat) {
                            return Err(error.into());
                        }
                        tracing::debug!(%error, "the WebRTC connection ended");
                        peer.disconnect();
                    }
                }
            }
            () = tokio::time::sleep_until(wake), if peer.is_alive() => peer.timeout(Instant::now())?,
            event = signaling.recv() => match event? {
                PeerEvent::Candidate(from, Some(text)) if from == peer_id => {
                    // A candidate we cannot use (TCP, a typo) is skipped, as browsers do.
                    match peer.add_remote_candidate(&text) {
                        Ok(address) => transport.permit(Instant::now(), address),
                        Err(error) => tracing::debug!(%error, "remote candidate skipped"),
                    }
                }
                PeerEvent::BrowserOffer(from, offer) if from == peer_id => {
                    let replaced = offer.sid.is_some() && offer.sid != tags.rsid;
                    tags.rsid = offer.sid.clone();
                    let answer = if replaced {
                        // A new session id: the page replaced its connection (its relay-only
                        // switch), with new ICE credentials and a new DTLS certificate; a new
                        // connection of ours answers it, with every candidate we have.
                        if files_open && !matches!(app, App::Chat) {
                            bail!("peer {peer_id} replaced its connection during the file transfer");
                        }
                        println!("peer {peer_id} replaced its connection: answering its new offer");
                        let (replacement, answer) =
                            WebRtcPeer::answer(Instant::now(), &offer.sdp, local_candidates.clone())?;
                        peer = replacement;
                        sources.replaced();
                        (chat, files) = (peer.chat_channel(), peer.file_channel());
                        (open, files_open, orphaned) = (false, false, None);
                        tags.mid = frames::first_mid(&offer.sdp);
                        deadline = tokio::time::Instant::now() + budget;
                        answer
                    } else {
                        // The same connection restarting ICE after a failure (RFC 8445 §9).
                        peer.renegotiate(&offer.sdp)?
                    };
                    signaling.send("answer", peer_id, tags.answer(&answer))?;
                }
                PeerEvent::Left(id) | PeerEvent::Bye(id) if id == peer_id => {
                    break 'session match app {
                        App::Chat if open || orphaned.is_some() => {
                            println!("peer {peer_id} left the chat");
                            Ok(())
                        }
                        _ if !open => Err(anyhow!("peer {peer_id} left before the connection was up")),
                        _ => Err(anyhow!("peer {peer_id} left before the file was verified")),
                    };
                }
                _ => {}
            },
            line = stdin.next_line(), if chatting => match line.context("cannot read stdin")? {
                Some(line) => {
                    if !peer.write(chat, false, chat::encode(&line).as_bytes())? {
                        bail!("the chat channel closed");
                    }
                }
                None => {
                    // End of input: close like the page does when it leaves.
                    let _ = signaling.send("bye", peer_id, tags.bye());
                    peer.disconnect();
                    return Ok(());
                }
            },
            () = tokio::time::sleep_until(orphaned.unwrap_or(deadline)), if orphaned.is_some() => {
                println!("the peer closed the chat");
                break 'session Ok(());
            }
            () = tokio::time::sleep_until(deadline), if !open && orphaned.is_none() => {
                bail!("no WebRTC connection to peer {peer_id} within the timeout (ICE, DTLS or SCTP did not complete)");
            }
            () = &mut interrupt => {
                let _ = signaling.send("bye", peer_id, tags.bye());
                break 'session Err(anyhow!("interrupted"));
            }
        }
    };
    result
}

/// `--relay-only`: a socket towards the first TURN server offered, and an allocation on it.
async fn relay_transport(
    args: &P2pArgs,
    servers: &ice_servers::Resolved,
) -> anyhow::Result<Transport> {
    if args.no_relay {
        bail!("--relay-only and --no-relay exclude each other");
    }
    let Some((relay, socket)) = relay(servers).await? else {
        bail!("--relay-only: the signaling server offered no TURN server over UDP");
    };
    Ok(Transport::relayed(relay, socket)?)
}

/// The default: host sockets, a Binding request from each to the STUN servers (a TURN server
/// answers Binding too, RFC 8656 §7.1, and is asked when no STUN server is offered), and an
/// allocation on the first TURN server unless `--no-relay`.
async fn default_transport(
    args: &P2pArgs,
    servers: &ice_servers::Resolved,
) -> anyhow::Result<Transport> {
    let host = super::bind_host_sockets(args, servers).await?;
    let transport = Transport::host(host)?;
    let mut stun = servers.stun.clone();
    if stun.is_empty() {
        stun.extend(servers.turn.iter().map(|(server, _)| *server));
    }
    stun.sort_unstable();
    stun.dedup();
    let reflexive = Reflexive::new(Instant::now(), &transport.host_addresses(), &stun, || {
        stun::TransactionId(rand::random())
    });
    let transport = transport.with_reflexive(reflexive);
    if args.no_relay {
        return Ok(transport);
    }
    Ok(match relay(servers).await? {
        Some((relay, socket)) => transport.with_relay(relay, socket, false)?,
        None => transport,
    })
}

/// A socket towards the first TURN server offered, and an Allocate started on it; `None`
/// when no TURN server over UDP was offered.
async fn relay(
    servers: &ice_servers::Resolved,
) -> anyhow::Result<Option<(Relay, Arc<tokio::net::UdpSocket>)>> {
    let Some((server, credentials)) = servers.turn.first().cloned() else {
        return Ok(None);
    };
    let ip = crate::client::client_args::route_to(server).await?;
    let socket = tokio::net::UdpSocket::bind(SocketAddr::new(ip, 0))
        .await
        .with_context(|| format!("cannot bind a UDP socket on {ip}"))?;
    let relay = Relay::allocate(Instant::now(), server, credentials, rand::random());
    Ok(Some((relay, Arc::new(socket))))
}

/// The addresses the page's connections sent from: those of a replaced connection are stale.
#[derive(Default)]
struct Sources {
    current: std::collections::HashSet<SocketAddr>,
    stale: std::collections::HashSet<SocketAddr>,
}

impl Sources {
    /// A page sends from a handful of addresses (host, reflexive, relayed): a bound keeps a
    /// hostile one from growing the set.
    const MAX: usize = 64;

    fn saw(&mut self, source: SocketAddr) {
        if self.current.len() < Self::MAX {
            self.current.insert(source);
        }
    }

    fn stale(&self, source: SocketAddr) -> bool {
        self.stale.contains(&source)
    }

    /// The connection was replaced: what it heard from is stale now.
    fn replaced(&mut self) {
        self.stale.extend(self.current.drain());
    }
}

/// The str0m candidate of a candidate gathered after the answer.
fn local_candidate(gathered: Gathered) -> anyhow::Result<str0m::Candidate> {
    match gathered {
        Gathered::Reflexive(found) => {
            println!("gathered srflx {} (base {})", found.mapped, found.base);
            str0m::Candidate::server_reflexive(found.mapped, found.base, "udp").map_err(|e| {
                anyhow!(
                    "cannot use {} as a server-reflexive candidate: {e}",
                    found.mapped
                )
            })
        }
        Gathered::Relayed { relayed, base } => {
            println!("gathered relay {relayed}");
            str0m::Candidate::relayed(relayed, base, "udp")
                .map_err(|e| anyhow!("cannot use {relayed} as a relayed candidate: {e}"))
        }
    }
}

/// A session id like the page's: 12 hex digits.
fn random_sid() -> String {
    format!("{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}
