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
use relay::Relay;
use transport::Transport;

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
        Transport::host(super::bind_host_sockets(args, &servers).await?)
    };
    transport.start_readers(&packets)?;
    let mut candidates = Vec::new();
    for address in transport.host_addresses()? {
        candidates.push(
            str0m::Candidate::host(address, "udp")
                .map_err(|e| anyhow!("cannot use {address} as a host candidate: {e}"))?,
        );
    }
    if transport.relay_base().is_some() {
        // RFC 8445 §5.1.1.2: the relayed candidate, gathered before answering so that it is in
        // the answer's SDP like the host candidates.
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
    let (mut peer, answer) = WebRtcPeer::answer(Instant::now(), &offer.sdp, candidates)?;
    let mut tags = SessionTags {
        sid: random_sid(),
        rsid: offer.sid.clone(),
    };
    // Our candidates are in the answer's SDP (RFC 8839 §5.1); no trickle needed for them.
    signaling.send("answer", peer_id, tags.answer(&answer))?;
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let interrupt = super::interrupted();
    tokio::pin!(interrupt);
    let chat = peer.chat_channel();
    let files = peer.file_channel();
    let mut open = false;
    let mut files_open = false;
    let result = 'session: loop {
        let wake = loop {
            match peer.poll()? {
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
                        if let Some((verdict, outcome)) = receiving.message(binary, &data).await? {
                            peer.write(files, false, verdict.as_bytes())?;
                            outcome?;
                            *linger = Some(tokio::time::Instant::now() + VERDICT_LINGER);
                        }
                    }
                    App::Chat => tracing::debug!("file message in chat mode: ignored"),
                },
                PeerOutput::ChannelData { .. } => {}
                // The sender writes more below, after the outputs are drained.
                PeerOutput::BufferedAmountLow(id) => tracing::trace!(?id, "buffered amount low"),
                PeerOutput::ChannelClose(id) if id == chat => {
                    break 'session match app {
                        App::Chat => {
                            println!("the peer closed the chat");
                            Ok(())
                        }
                        _ => Err(anyhow!(
                            "the peer closed the connection before the file was verified"
                        )),
                    };
                }
                PeerOutput::ChannelClose(_) => {}
                PeerOutput::IceState(state) => tracing::debug!(?state, "ICE state"),
            }
        };
        if !peer.is_alive() {
            bail!("the WebRTC connection to peer {peer_id} closed");
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
        transport.relay_work(Instant::now()).await?;
        let wake = transport.relay_timeout().map_or(wake, |at| at.min(wake));
        let wake = tokio::time::Instant::from_std(wake);
        let wake = linger_until.map_or(wake, |until| until.min(wake));
        let chatting = open && matches!(app, App::Chat);
        tokio::select! {
            Some(datagram) = incoming.recv() => {
                if let Some(arrived) = transport.arrived(Instant::now(), datagram) {
                    peer.receive(Instant::now(), arrived.source, arrived.destination, &arrived.contents)?;
                }
            }
            () = tokio::time::sleep_until(wake) => peer.timeout(Instant::now())?,
            event = signaling.recv() => match event? {
                PeerEvent::Candidate(from, Some(text)) if from == peer_id => {
                    // A candidate we cannot use (TCP, a typo) is skipped, as browsers do.
                    match peer.add_remote_candidate(&text) {
                        Ok(address) => transport.permit(Instant::now(), address),
                        Err(error) => tracing::debug!(%error, "remote candidate skipped"),
                    }
                }
                PeerEvent::BrowserOffer(from, offer) if from == peer_id => {
                    // The page restarts ICE on failure (a new offer, same connection) or
                    // replaced its connection: either way, answer the new offer.
                    tags.rsid = offer.sid.clone();
                    let answer = peer.renegotiate(&offer.sdp)?;
                    signaling.send("answer", peer_id, tags.answer(&answer))?;
                }
                PeerEvent::Left(id) | PeerEvent::Bye(id) if id == peer_id => {
                    break 'session match app {
                        App::Chat if open => {
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
            () = tokio::time::sleep_until(deadline), if !open => {
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
    let Some((server, credentials)) = servers.turn.first().cloned() else {
        bail!("--relay-only: the signaling server offered no TURN server over UDP");
    };
    let ip = crate::client::client_args::route_to(server).await?;
    let socket = tokio::net::UdpSocket::bind(SocketAddr::new(ip, 0))
        .await
        .with_context(|| format!("cannot bind a UDP socket on {ip}"))?;
    let relay = Relay::allocate(Instant::now(), server, credentials, rand::random());
    Ok(Transport::relayed(relay, Arc::new(socket)))
}

/// A session id like the page's: 12 hex digits.
fn random_sid() -> String {
    format!("{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}
