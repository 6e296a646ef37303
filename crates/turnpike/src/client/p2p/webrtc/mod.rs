//! WebRTC mode of `turnpike p2p`: when the other peer of the room is a browser (it sends an
//! SDP offer, where another `turnpike p2p` sends our `turnpike-p2p/1` description), we answer
//! it in real WebRTC — SDP offer/answer and trickle ICE through the same signaling frames the
//! room page uses ([`frames`]), then ICE, DTLS and SCTP data channels on str0m's sans-IO
//! [`peer::WebRtcPeer`] — and chat over the page's `chat` channel ([`chat`]).
//!
//! This file is the I/O loop: our UDP sockets, the signaling connection and stdin feed the
//! peer; what it returns is sent, printed or written. We are always the answerer: the page
//! offers as soon as it sees us (it does not understand our own offer format and ignores it).

pub(crate) mod chat;
pub(crate) mod frames;
mod peer;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, Context};
use tokio::io::AsyncBufReadExt;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::signaling::{PeerEvent, Signaling};
use super::transfer::Mode;
use super::{ice_servers, P2pArgs, DNS_TIMEOUT};
use frames::{BrowserDescription, SessionTags};
use peer::{PeerOutput, WebRtcPeer};

/// A datagram read from one of our sockets.
struct Datagram {
    local: SocketAddr,
    source: SocketAddr,
    contents: Vec<u8>,
}

/// Largest datagram read: str0m sends at most its MTU (1150 bytes of DTLS/SCTP); browsers
/// stay under 1500.
const MAX_DATAGRAM: usize = 2048;

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
    if !matches!(mode, Mode::Chat) {
        signaling.leave().await;
        bail!("--send and --receive with a browser are not supported yet: chat only");
    }
    let result = session(args, &mut signaling, &peer_id, offer, deadline).await;
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
    deadline: tokio::time::Instant,
) -> anyhow::Result<()> {
    let dns = crate::client::discovery::Dns::new(args.dns.dns_server, DNS_TIMEOUT);
    let usable = ice_servers::usable(&signaling.joined.ice_servers);
    let servers = ice_servers::resolve(&usable, &dns).await?;
    let sockets = super::bind_host_sockets(args, &servers).await?;
    let mut candidates = Vec::new();
    for socket in &sockets {
        let address = socket.local_addr()?;
        candidates.push(
            str0m::Candidate::host(address, "udp")
                .map_err(|e| anyhow!("cannot use {address} as a host candidate: {e}"))?,
        );
    }
    let (mut peer, answer) = WebRtcPeer::answer(Instant::now(), &offer.sdp, candidates)?;
    let mut tags = SessionTags {
        sid: random_sid(),
        rsid: offer.sid.clone(),
    };
    // The host candidates are in the answer's SDP (RFC 8839 §5.1); no trickle needed for them.
    signaling.send("answer", peer_id, tags.answer(&answer))?;
    let (packets, mut incoming) = mpsc::channel(256);
    let _readers = Readers::start(&sockets, packets)?;
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let interrupt = super::interrupted();
    tokio::pin!(interrupt);
    let chat = peer.chat_channel();
    let mut open = false;
    loop {
        let wake = loop {
            match peer.poll()? {
                PeerOutput::Wait(at) => break at,
                PeerOutput::Transmit {
                    source,
                    destination,
                    contents,
                } => send(&sockets, source, destination, &contents).await,
                PeerOutput::ChannelOpen(id, label) if id == chat => {
                    if !open {
                        open = true;
                        println!("connected to peer {peer_id} over WebRTC: data channel \"{label}\" open");
                    }
                }
                PeerOutput::ChannelOpen(_, label) => {
                    tracing::debug!(%label, "data channel opened by the page, unused");
                }
                PeerOutput::ChannelData { channel, data, .. } if channel == chat => {
                    println!("peer> {}", chat::decode(&data));
                }
                PeerOutput::ChannelData { .. } => {}
                PeerOutput::ChannelClose(id) if id == chat => {
                    println!("the peer closed the chat");
                    return Ok(());
                }
                PeerOutput::ChannelClose(_) => {}
                PeerOutput::IceState(state) => tracing::debug!(?state, "ICE state"),
            }
        };
        if !peer.is_alive() {
            bail!("the WebRTC connection to peer {peer_id} closed");
        }
        let wake = tokio::time::Instant::from_std(wake);
        tokio::select! {
            Some(datagram) = incoming.recv() => {
                peer.receive(Instant::now(), datagram.source, datagram.local, &datagram.contents)?;
            }
            () = tokio::time::sleep_until(wake) => peer.timeout(Instant::now())?,
            event = signaling.recv() => match event? {
                PeerEvent::Candidate(from, Some(text)) if from == peer_id => {
                    // A candidate we cannot use (TCP, a typo) is skipped, as browsers do.
                    if let Err(error) = peer.add_remote_candidate(&text) {
                        tracing::debug!(%error, "remote candidate skipped");
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
                    if open {
                        println!("peer {peer_id} left the chat");
                        return Ok(());
                    }
                    bail!("peer {peer_id} left before the connection was up");
                }
                _ => {}
            },
            line = stdin.next_line(), if open => match line.context("cannot read stdin")? {
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
                bail!("interrupted");
            }
        }
    }
}

/// Sends one datagram from the socket bound to `source`.
async fn send(
    sockets: &[Arc<UdpSocket>],
    source: SocketAddr,
    destination: SocketAddr,
    contents: &[u8],
) {
    let Some(socket) = sockets
        .iter()
        .find(|socket| socket.local_addr().ok() == Some(source))
    else {
        tracing::debug!(%source, "no socket for this source address");
        return;
    };
    // A lost datagram is for ICE, DTLS and SCTP to retransmit; an unreachable peer is
    // ICE's to find out.
    if let Err(error) = socket.send_to(contents, destination).await {
        tracing::debug!(%destination, %error, "send failed");
    }
}

/// One task per socket, reading datagrams into the loop's channel; aborted when dropped.
struct Readers(Vec<tokio::task::JoinHandle<()>>);

impl Readers {
    fn start(sockets: &[Arc<UdpSocket>], to: mpsc::Sender<Datagram>) -> anyhow::Result<Self> {
        let mut tasks = Vec::new();
        for socket in sockets {
            let socket = socket.clone();
            let local = socket.local_addr()?;
            let to = to.clone();
            tasks.push(tokio::spawn(async move {
                let mut buffer = vec![0u8; MAX_DATAGRAM];
                loop {
                    match socket.recv_from(&mut buffer).await {
                        Ok((n, source)) => {
                            let datagram = Datagram {
                                local,
                                source,
                                contents: buffer[..n].to_vec(),
                            };
                            if to.send(datagram).await.is_err() {
                                return;
                            }
                        }
                        // ICMP errors surface here on Linux (ECONNREFUSED): not fatal.
                        Err(error) => tracing::trace!(%error, "recv failed"),
                    }
                }
            }));
        }
        Ok(Readers(tasks))
    }
}

impl Drop for Readers {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// A session id like the page's: 12 hex digits.
fn random_sid() -> String {
    format!("{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}
