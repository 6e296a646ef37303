//! The UDP sockets under the peer connection: host sockets (one per local address, each a host
//! candidate, and the base of its server-reflexive candidate, [`Reflexive`]), and a socket to
//! the TURN server whose allocation is the relayed candidate ([`Relay`]). With `--relay-only`
//! the relay is all there is, and its failure ends the session; otherwise it is one candidate
//! among others, and its failure only loses that candidate. str0m names a datagram by its
//! local address (`Transmit::source`, `Receive::destination`); this maps that address to a
//! socket, through the relay when it is the relayed address.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::reflexive::{Found, Reflexive};
use super::relay::{Relay, Relayed};

/// A datagram read from one of our sockets.
pub struct Datagram {
    /// The socket's address.
    pub local: SocketAddr,
    /// Who sent it.
    pub source: SocketAddr,
    /// The bytes.
    pub contents: Vec<u8>,
}

/// Largest datagram read: str0m sends at most its MTU (about 1150 bytes); browsers stay under
/// 1500, and a TURN Data indication adds 36 bytes.
const MAX_DATAGRAM: usize = 2048;

/// What arrived for the peer connection, after the relay unwrapped it.
pub struct Arrived {
    /// The peer's address.
    pub source: SocketAddr,
    /// Our address it arrived on (a host socket, or the relayed address).
    pub destination: SocketAddr,
    /// The datagram.
    pub contents: Vec<u8>,
}

/// A candidate gathered after the answer went out, to add and trickle (RFC 8838).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gathered {
    /// A server-reflexive address of a host socket (RFC 8445 §5.1.1.1).
    Reflexive(Found),
    /// The relayed address (RFC 8445 §5.1.1.2) and the local socket it is reached through.
    Relayed {
        /// The allocation's address on the TURN server.
        relayed: SocketAddr,
        /// Our socket towards the server.
        base: SocketAddr,
    },
}

/// A socket and its local address, read once: str0m names every datagram by that address,
/// and asking the kernel (`getsockname`) per datagram would cost a system call each.
struct Bound {
    local: SocketAddr,
    socket: Arc<UdpSocket>,
}

impl Bound {
    fn new(socket: Arc<UdpSocket>) -> std::io::Result<Self> {
        Ok(Bound {
            local: socket.local_addr()?,
            socket,
        })
    }
}

/// The host socket whose address is `local`.
fn host_socket(host: &[Bound], local: SocketAddr) -> Option<&UdpSocket> {
    host.iter()
        .find(|bound| bound.local == local)
        .map(|bound| &*bound.socket)
}

/// The relay's socket and what to do when the relay fails.
struct RelayLeg {
    relay: Relay,
    socket: Bound,
    /// `--relay-only`: without the relay there is no connection.
    required: bool,
    /// The relayed candidate was handed out (by [`Transport::allocated`] or
    /// [`Transport::poll_gathered`]).
    announced: bool,
}

/// Our sockets, and the gatherers of the candidates that are not host candidates.
pub struct Transport {
    host: Vec<Bound>,
    relay: Option<RelayLeg>,
    reflexive: Option<Reflexive>,
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl Transport {
    /// Host sockets.
    pub fn host(sockets: Vec<Arc<UdpSocket>>) -> std::io::Result<Self> {
        Ok(Transport {
            host: sockets
                .into_iter()
                .map(Bound::new)
                .collect::<Result<_, _>>()?,
            relay: None,
            reflexive: None,
            readers: Vec::new(),
        })
    }

    /// Adds the server-reflexive gatherer, whose requests leave from the host sockets.
    pub fn with_reflexive(mut self, reflexive: Reflexive) -> Self {
        self.reflexive = Some(reflexive);
        self
    }

    /// A relay only (`--relay-only`): `socket` talks to the TURN server of `relay`, which is
    /// allocating; its failure is the session's.
    pub fn relayed(relay: Relay, socket: Arc<UdpSocket>) -> std::io::Result<Self> {
        Transport::host(Vec::new())?.with_relay(relay, socket, true)
    }

    /// Adds a relay, on a socket of its own.
    pub fn with_relay(
        mut self,
        relay: Relay,
        socket: Arc<UdpSocket>,
        required: bool,
    ) -> std::io::Result<Self> {
        self.relay = Some(RelayLeg {
            relay,
            socket: Bound::new(socket)?,
            required,
            announced: false,
        });
        Ok(self)
    }

    /// Starts one reader task per socket, sending what they read to `to`; they end with
    /// the transport.
    pub fn start_readers(&mut self, to: &mpsc::Sender<Datagram>) -> anyhow::Result<()> {
        let relay = self.relay.as_ref().map(|leg| &leg.socket);
        for bound in self.host.iter().chain(relay) {
            let (socket, local) = (bound.socket.clone(), bound.local);
            let to = to.clone();
            self.readers.push(tokio::spawn(async move {
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
        Ok(())
    }

    /// The relayed address, once allocated.
    pub fn relayed_address(&self) -> Option<SocketAddr> {
        self.relay.as_ref().and_then(|leg| leg.relay.relayed())
    }

    /// Our host sockets' addresses.
    pub fn host_addresses(&self) -> Vec<SocketAddr> {
        self.host.iter().map(|bound| bound.local).collect()
    }

    /// The local address of the relay's socket (the base of the relayed candidate).
    pub fn relay_base(&self) -> Option<SocketAddr> {
        self.relay.as_ref().map(|leg| leg.socket.local)
    }

    /// A datagram read from a socket: for the peer connection, or the relay's or the
    /// server-reflexive gatherer's own.
    pub fn arrived(&mut self, now: Instant, datagram: Datagram) -> Option<Arrived> {
        match &mut self.relay {
            Some(leg) if leg.socket.local == datagram.local => {
                // The TURN client reads every datagram of its socket first: its own responses
                // (the Allocate's among them) as much as relayed data.
                match leg.relay.receive(now, datagram.source, &datagram.contents) {
                    Relayed::Data { peer, payload } => Some(Arrived {
                        source: peer,
                        destination: leg.relay.relayed()?,
                        contents: payload.to_vec(),
                    }),
                    Relayed::Consumed => None,
                }
            }
            _ => {
                let stun_answer = self.reflexive.as_mut().is_some_and(|reflexive| {
                    reflexive.receive(now, datagram.local, datagram.source, &datagram.contents)
                });
                (!stun_answer).then_some(Arrived {
                    source: datagram.source,
                    destination: datagram.local,
                    contents: datagram.contents,
                })
            }
        }
    }

    /// Sends what str0m sends from `source` to `destination`.
    pub async fn send(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) {
        if let Some(leg) = &mut self.relay {
            if leg.relay.relayed() == Some(source) {
                let transmit = leg.relay.send(now, destination, contents);
                send_to(&leg.socket.socket, &transmit.payload, transmit.destination).await;
                return;
            }
        }
        match host_socket(&self.host, source) {
            Some(socket) => send_to(socket, contents, destination).await,
            None => tracing::debug!(%source, "no socket for this source address"),
        }
    }

    /// Asks the relay for a permission for a remote candidate's address (RFC 8656 §9): the
    /// peer's checks to our relayed address are dropped by the server until then.
    pub fn permit(&mut self, now: Instant, peer: SocketAddr) {
        if let Some(leg) = &mut self.relay {
            leg.relay.permit(now, peer);
        }
    }

    /// The gatherers' due work (the relay's retransmissions, refreshes, permission and channel
    /// renewals; Binding retransmissions) and what they have to send. An error when the
    /// allocation failed or ended and the relay was required; otherwise that failure only
    /// drops the relay.
    pub async fn work(&mut self, now: Instant) -> anyhow::Result<()> {
        if let Some(leg) = &mut self.relay {
            if leg.relay.poll_timeout().is_some_and(|at| at <= now) {
                leg.relay.timeout(now);
            }
            // Events first: the allocation's success queues the remembered permissions.
            let events = leg.relay.poll_events(now);
            while let Some(transmit) = leg.relay.poll_transmit() {
                send_to(&leg.socket.socket, &transmit.payload, transmit.destination).await;
            }
            if let Err(error) = events {
                if leg.required {
                    return Err(error.into());
                }
                println!("no relayed candidate: {error}");
                self.relay = None;
            }
        }
        if let Some(reflexive) = &mut self.reflexive {
            if reflexive.poll_timeout().is_some_and(|at| at <= now) {
                reflexive.timeout(now);
            }
            while let Some(transmit) = reflexive.poll_transmit(now) {
                match host_socket(&self.host, transmit.base) {
                    Some(socket) => send_to(socket, &transmit.payload, transmit.destination).await,
                    None => {
                        tracing::debug!(base = %transmit.base, "no host socket for a Binding request")
                    }
                }
            }
        }
        Ok(())
    }

    /// When [`Transport::work`] is next due.
    pub fn timeout(&self) -> Option<Instant> {
        let relay = self.relay.as_ref().and_then(|leg| leg.relay.poll_timeout());
        let reflexive = self.reflexive.as_ref().and_then(Reflexive::poll_timeout);
        relay.into_iter().chain(reflexive).min()
    }

    /// The next candidate gathered since the last call: server-reflexive addresses as they are
    /// learnt, the relayed address once allocated (once).
    pub fn poll_gathered(&mut self) -> Option<Gathered> {
        if let Some(found) = self.reflexive.as_mut().and_then(Reflexive::poll_found) {
            return Some(Gathered::Reflexive(found));
        }
        let base = self.relay_base()?;
        let leg = self.relay.as_mut()?;
        let relayed = leg.relay.relayed().filter(|_| !leg.announced)?;
        leg.announced = true;
        Some(Gathered::Relayed { relayed, base })
    }

    /// Waits for the allocation (its relayed address) until `deadline`.
    pub async fn allocated(
        &mut self,
        incoming: &mut mpsc::Receiver<Datagram>,
        deadline: tokio::time::Instant,
    ) -> anyhow::Result<SocketAddr> {
        let server = match &self.relay {
            Some(leg) => leg.relay.server(),
            None => bail!("no relay to wait for"),
        };
        loop {
            self.work(Instant::now()).await?;
            if let Some(leg) = self
                .relay
                .as_mut()
                .filter(|leg| leg.relay.relayed().is_some())
            {
                leg.announced = true;
                return self
                    .relayed_address()
                    .ok_or_else(|| anyhow!("no relayed address"));
            }
            let wake = self
                .timeout()
                .map_or(deadline, tokio::time::Instant::from_std)
                .min(deadline);
            tokio::select! {
                Some(datagram) = incoming.recv() => {
                    if self.arrived(Instant::now(), datagram).is_some() {
                        tracing::debug!("relayed data before the allocation: dropped");
                    }
                }
                () = tokio::time::sleep_until(wake) => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(anyhow!("the TURN server {server} gave no relay within the timeout"));
                    }
                }
            }
        }
    }

    /// Frees the allocation at once (Refresh with lifetime 0, RFC 8656 §7) rather than leave
    /// it to expire on the server; waits at most a short while for the answer.
    pub async fn close(&mut self, incoming: &mut mpsc::Receiver<Datagram>) {
        let Some(leg) = &mut self.relay else {
            return;
        };
        leg.relay.deallocate(Instant::now());
        // Its end is this session's end whether or not the relay was required.
        leg.required = true;
        let until = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
        loop {
            if self.work(Instant::now()).await.is_err() {
                return; // Deallocated (or failed): done.
            }
            tokio::select! {
                Some(datagram) = incoming.recv() => { self.arrived(Instant::now(), datagram); }
                () = tokio::time::sleep_until(until) => return,
            }
        }
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        for task in &self.readers {
            task.abort();
        }
    }
}

/// One datagram; a loss is for ICE, DTLS, SCTP or the TURN client to retransmit.
async fn send_to(socket: &UdpSocket, contents: &[u8], destination: SocketAddr) {
    if let Err(error) = socket.send_to(contents, destination).await {
        tracing::debug!(%destination, %error, "send failed");
    }
}
