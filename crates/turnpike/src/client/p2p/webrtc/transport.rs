//! The UDP sockets under the peer connection: host sockets (one per local address, each a host
//! candidate), or with `--relay-only` one socket to the TURN server whose allocation is the only
//! candidate ([`Relay`]). str0m names a datagram by its local address (`Transmit::source`,
//! `Receive::destination`); this maps that address to a socket, through the relay when it is
//! the relayed address.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

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

/// Our sockets, and the relay when the only candidate is relayed.
pub struct Transport {
    sockets: Vec<Arc<UdpSocket>>,
    relay: Option<(Relay, Arc<UdpSocket>)>,
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl Transport {
    /// Host sockets.
    pub fn host(sockets: Vec<Arc<UdpSocket>>) -> Self {
        Transport {
            sockets,
            relay: None,
            readers: Vec::new(),
        }
    }

    /// A relay: `socket` talks to the TURN server of `relay`, which is allocating.
    pub fn relayed(relay: Relay, socket: Arc<UdpSocket>) -> Self {
        Transport {
            sockets: vec![socket.clone()],
            relay: Some((relay, socket)),
            readers: Vec::new(),
        }
    }

    /// Starts one reader task per socket, sending what they read to `to`; they end with
    /// the transport.
    pub fn start_readers(&mut self, to: &mpsc::Sender<Datagram>) -> anyhow::Result<()> {
        for socket in &self.sockets {
            let socket = socket.clone();
            let local = socket.local_addr()?;
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
        self.relay.as_ref().and_then(|(relay, _)| relay.relayed())
    }

    /// Our host sockets' addresses (none with a relay).
    pub fn host_addresses(&self) -> anyhow::Result<Vec<SocketAddr>> {
        if self.relay.is_some() {
            return Ok(Vec::new());
        }
        self.sockets
            .iter()
            .map(|socket| socket.local_addr().map_err(anyhow::Error::from))
            .collect()
    }

    /// The local address of the relay's socket (the base of the relayed candidate).
    pub fn relay_base(&self) -> Option<SocketAddr> {
        self.relay
            .as_ref()
            .and_then(|(_, socket)| socket.local_addr().ok())
    }

    /// A datagram read from a socket: for the peer connection, or the relay's own.
    pub fn arrived(&mut self, now: Instant, datagram: Datagram) -> Option<Arrived> {
        let Some((relay, _)) = &mut self.relay else {
            return Some(Arrived {
                source: datagram.source,
                destination: datagram.local,
                contents: datagram.contents,
            });
        };
        // The TURN client reads every datagram first: its own responses (the Allocate's
        // among them) as much as relayed data.
        match relay.receive(now, datagram.source, &datagram.contents) {
            Relayed::Data { peer, payload } => Some(Arrived {
                source: peer,
                destination: relay.relayed()?,
                contents: payload.to_vec(),
            }),
            Relayed::Consumed => None,
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
        if let Some((relay, socket)) = &mut self.relay {
            if relay.relayed() == Some(source) {
                let transmit = relay.send(now, destination, contents);
                send_to(socket, &transmit.payload, transmit.destination).await;
            }
            return;
        }
        match self
            .sockets
            .iter()
            .find(|socket| socket.local_addr().ok() == Some(source))
        {
            Some(socket) => send_to(socket, contents, destination).await,
            None => tracing::debug!(%source, "no socket for this source address"),
        }
    }

    /// Asks the relay for a permission for a remote candidate's address (RFC 8656 §9): the
    /// peer's checks to our relayed address are dropped by the server until then.
    pub fn permit(&mut self, now: Instant, peer: SocketAddr) {
        if let Some((relay, _)) = &mut self.relay {
            relay.permit(now, peer);
        }
    }

    /// The relay's due work (retransmissions, refreshes, permission and channel renewals) and
    /// what it has to send; an error when the allocation failed or ended.
    pub async fn relay_work(&mut self, now: Instant) -> anyhow::Result<()> {
        if let Some((relay, socket)) = &mut self.relay {
            if relay.poll_timeout().is_some_and(|at| at <= now) {
                relay.timeout(now);
            }
            while let Some(transmit) = relay.poll_transmit() {
                send_to(socket, &transmit.payload, transmit.destination).await;
            }
            relay.poll_events()?;
        }
        Ok(())
    }

    /// When the relay next needs [`Transport::relay_work`].
    pub fn relay_timeout(&self) -> Option<Instant> {
        self.relay
            .as_ref()
            .and_then(|(relay, _)| relay.poll_timeout())
    }

    /// Waits for the allocation (its relayed address) until `deadline`.
    pub async fn allocated(
        &mut self,
        incoming: &mut mpsc::Receiver<Datagram>,
        deadline: tokio::time::Instant,
    ) -> anyhow::Result<SocketAddr> {
        let server = match &self.relay {
            Some((relay, _)) => relay.server(),
            None => bail!("no relay to wait for"),
        };
        loop {
            self.relay_work(Instant::now()).await?;
            if let Some(relayed) = self.relayed_address() {
                return Ok(relayed);
            }
            let wake = self
                .relay_timeout()
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
        let Some((relay, _)) = &mut self.relay else {
            return;
        };
        relay.deallocate(Instant::now());
        let until = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
        loop {
            if self.relay_work(Instant::now()).await.is_err() {
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
