//! The ICE-selected path as a QUIC socket.
//!
//! The sans-IO [`ice::IceAgent`] sits behind a mutex shared by three kinds of task: one
//! receiver per host socket (every datagram goes to the agent first: STUN is its, TURN-wrapped
//! data is unwrapped, application data comes back out), one driver (timers, and sending what
//! the agent queued), and quinn's endpoint, which sees [`IcePath`] as its UDP socket. Quinn
//! talks to one fixed, made-up peer address ([`PEER`]); the agent decides, datagram by
//! datagram, which real path carries it — direct or through the TURN relay — so a change of
//! the selected pair never looks like a migration to QUIC.

use std::collections::HashMap;
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use ice::{AgentInput, AgentTransmit, IceAgent, IceEvent};
use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, Notify};

use crate::client::client_args::is_transient;

/// The address quinn believes the peer has (TEST-NET-1, never routed): every datagram to it
/// is handed to the agent, and every datagram from the agent's peer is reported from it.
pub const PEER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 1);
/// The address quinn believes it has.
const LOCAL: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)), 1);
/// Application datagrams waiting for quinn; beyond this they are dropped (QUIC recovers) so a
/// stalled endpoint cannot grow memory.
const DATA_QUEUE: usize = 1024;
/// The largest datagram read from a host socket.
const RECEIVE_BUFFER: usize = 65_536;

/// The agent and the sockets it sends from.
#[derive(Debug)]
pub struct IcePath {
    agent: Mutex<IceAgent>,
    sockets: HashMap<SocketAddr, Arc<UdpSocket>>,
    /// Wakes the driver when the agent may have something new to send or a new deadline.
    wake: Arc<Notify>,
    data: Mutex<mpsc::Receiver<Vec<u8>>>,
    data_in: mpsc::Sender<Vec<u8>>,
}

impl IcePath {
    /// Wraps `agent`, which must already know the host candidates of `sockets`, and starts
    /// the receivers and the driver. The agent's events arrive on the returned channel.
    pub fn start(
        agent: IceAgent,
        sockets: Vec<Arc<UdpSocket>>,
    ) -> io::Result<(Arc<Self>, mpsc::UnboundedReceiver<IceEvent>)> {
        let mut by_address = HashMap::new();
        for socket in sockets {
            by_address.insert(socket.local_addr()?, socket);
        }
        let (data_in, data) = mpsc::channel(DATA_QUEUE);
        let path = Arc::new(IcePath {
            agent: Mutex::new(agent),
            sockets: by_address,
            wake: Arc::new(Notify::new()),
            data: Mutex::new(data),
            data_in,
        });
        let (events_in, events) = mpsc::unbounded_channel();
        for (&local, socket) in &path.sockets {
            tokio::spawn(receive(Arc::downgrade(&path), local, socket.clone()));
        }
        tokio::spawn(drive(Arc::downgrade(&path), path.wake.clone(), events_in));
        Ok((path, events))
    }

    /// Runs `change` on the agent, then lets the driver send what it queued.
    pub fn with_agent<T>(&self, change: impl FnOnce(&mut IceAgent, Instant) -> T) -> T {
        let result = change(&mut self.lock(), Instant::now());
        self.wake.notify_one();
        result
    }

    /// Releases the agent's TURN allocations now (see [`IceAgent::close`]), sending the
    /// requests before returning: the process may exit right after.
    pub fn close(&self) {
        let transmits: Vec<AgentTransmit> = {
            let mut agent = self.lock();
            agent.close(Instant::now());
            std::iter::from_fn(|| agent.poll_transmit()).collect()
        };
        for transmit in &transmits {
            self.send_now(transmit);
        }
    }

    fn lock(&self) -> MutexGuard<'_, IceAgent> {
        // The agent is plain data: a panic elsewhere cannot leave it worse than unusable.
        self.agent.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn send_now(&self, transmit: &AgentTransmit) {
        if let Some(socket) = self.sockets.get(&transmit.source) {
            // Loss is the network's business: ICE retransmits, QUIC recovers.
            let _ = socket.try_send_to(&transmit.payload, transmit.destination);
        }
    }
}

/// Reads one host socket for as long as the path lives.
async fn receive(path: std::sync::Weak<IcePath>, local: SocketAddr, socket: Arc<UdpSocket>) {
    let mut buffer = vec![0u8; RECEIVE_BUFFER];
    loop {
        let (len, from) = match socket.recv_from(&mut buffer).await {
            Ok(received) => received,
            Err(e) if is_transient(&e) => continue,
            Err(e) => {
                tracing::warn!(%local, error = %e, "host socket failed");
                return;
            }
        };
        let Some(path) = path.upgrade() else { return };
        let data = match path
            .lock()
            .handle_input(Instant::now(), local, from, &buffer[..len])
        {
            AgentInput::Data(payload) => Some(payload.to_vec()),
            AgentInput::Consumed | AgentInput::Ignored => None,
        };
        if let Some(data) = data {
            let _ = path.data_in.try_send(data);
        }
        path.wake.notify_one();
    }
}

/// Sends what the agent queues, forwards its events, and fires its timers.
async fn drive(
    path: std::sync::Weak<IcePath>,
    wake: Arc<Notify>,
    events: mpsc::UnboundedSender<IceEvent>,
) {
    loop {
        let Some(strong) = path.upgrade() else { return };
        let (transmits, happened, deadline) = {
            let mut agent = strong.lock();
            let now = Instant::now();
            if agent.poll_timeout().is_some_and(|at| at <= now) {
                agent.handle_timeout(now);
            }
            let transmits: Vec<AgentTransmit> =
                std::iter::from_fn(|| agent.poll_transmit()).collect();
            let happened: Vec<IceEvent> = std::iter::from_fn(|| agent.poll_event()).collect();
            (transmits, happened, agent.poll_timeout())
        };
        for transmit in &transmits {
            strong.send_now(transmit);
        }
        for event in happened {
            let _ = events.send(event);
        }
        let deadline = deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
        drop(strong);
        tokio::select! {
            () = tokio::time::sleep_until(deadline.into()) => {}
            () = wake.notified() => {}
        }
    }
}

impl AsyncUdpSocket for IcePath {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Box::pin(AlwaysWritable)
    }

    fn try_send(&self, transmit: &Transmit<'_>) -> io::Result<()> {
        // One datagram per transmit (max_transmit_segments is 1). Without a selected pair
        // the datagram is lost, as on a network that is not up yet; QUIC retransmits.
        let sent = self.lock().send_data(Instant::now(), transmit.contents);
        if let Some(sent) = sent {
            self.send_now(&sent);
        }
        Ok(())
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let mut data = self.data.lock().unwrap_or_else(|p| p.into_inner());
        let mut count = 0;
        while count < bufs.len().min(meta.len()) {
            let datagram = if count == 0 {
                match data.poll_recv(cx) {
                    Poll::Ready(Some(d)) => d,
                    Poll::Ready(None) => {
                        return Poll::Ready(Err(io::Error::other("the ICE path closed")))
                    }
                    Poll::Pending => return Poll::Pending,
                }
            } else {
                match data.try_recv() {
                    Ok(d) => d,
                    Err(_) => break,
                }
            };
            let len = datagram.len().min(bufs[count].len());
            bufs[count][..len].copy_from_slice(&datagram[..len]);
            meta[count] = RecvMeta {
                addr: PEER,
                len,
                stride: len,
                ecn: None,
                dst_ip: None,
            };
            count += 1;
        }
        Poll::Ready(Ok(count))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(LOCAL)
    }
}

/// Sends never wait: a datagram that the kernel will not take is dropped (see `try_send`).
#[derive(Debug)]
struct AlwaysWritable;

impl UdpPoller for AlwaysWritable {
    fn poll_writable(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
