//! TCP relaying (RFC 6062) in the driver: what the core asks for through
//! [`turn::relay::RelayCommand`]s — a listening socket on a TCP allocation's relayed address, a
//! connection from that address to a peer, closing a peer connection — and the splice of a
//! peer connection with its client data connection. Every decision (permissions, policy,
//! deadlines, CONNECTION-IDs) is the core's ([`turn::relay`]'s `tcp` module); this file only
//! moves sockets and bytes.
//!
//! A peer connection is held by the worker whose core owns its allocation, first while the
//! connect runs, then (as a `std` socket, not read: the kernel buffers what the peer sends
//! and shrinks the TCP window, RFC 6062 §5.2, §5.3) until the client's ConnectionBind comes.
//! That request arrives on a new client connection, which may have been given to another
//! worker: [`TcpOwners`] (one for the server) says which worker's loop to ask (its
//! [`Mailbox`]). The tasks here reach their worker's core only through that mailbox, as jobs
//! the loop runs between passes. The client connection's task then runs the splice
//! (`copy_bidirectional`, 8 KiB per direction) until either side closes, or until the core
//! closes the pair (its allocation ended).

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::Notify;
use tokio::task::AbortHandle;
use tracing::{debug, trace};
use turn::relay::{ConnectionId, PeerAddr, RelayAddr};

use crate::server::worker_handle::Mailbox;
use crate::server::worker_state::{now, WorkerState};

/// Backlog of a relayed address's listening socket.
const BACKLOG: u32 = 128;

/// Which worker's loop owns each live peer connection, for the whole server.
pub type TcpOwners = Arc<Mutex<HashMap<ConnectionId, Mailbox>>>;

fn owners_of(owners: &TcpOwners) -> std::sync::MutexGuard<'_, HashMap<ConnectionId, Mailbox>> {
    owners
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One peer connection, as the driver holds it.
#[derive(Debug)]
enum PeerSlot {
    /// The connect task.
    Connecting(AbortHandle),
    /// Connected or accepted, waiting for the ConnectionBind.
    Pending(std::net::TcpStream),
    /// Spliced: notified to stop.
    Spliced(Arc<Notify>),
}

/// One worker's TCP relaying: listening sockets and peer connections.
#[derive(Debug, Default)]
pub struct TcpRelays {
    listeners: HashMap<RelayAddr, AbortHandle>,
    peers: HashMap<ConnectionId, PeerSlot>,
    owners: TcpOwners,
}

/// A peer connection handed to a client data connection (RFC 6062 §5.4).
#[derive(Debug)]
pub struct Splice {
    id: ConnectionId,
    peer: std::net::TcpStream,
    stop: Arc<Notify>,
    owner: Mailbox,
}

impl TcpRelays {
    /// No sockets; `owners` is the server's table.
    pub fn new(owners: TcpOwners) -> Self {
        TcpRelays {
            listeners: HashMap::new(),
            peers: HashMap::new(),
            owners,
        }
    }

    /// The server's table of owners.
    pub fn owners(&self) -> &TcpOwners {
        &self.owners
    }

    /// Binds and listens on `addr`; accepted peers go to the loop of `mailbox`.
    pub fn listen(&mut self, addr: RelayAddr, mailbox: Mailbox) -> Result<(), io::Error> {
        let listener = relay_socket(addr)?.listen(BACKLOG)?;
        let task = tokio::spawn(accept_loop(addr, listener, mailbox));
        self.listeners.insert(addr, task.abort_handle());
        Ok(())
    }

    /// Stops listening on `addr`; false when not listening there.
    pub fn close_listener(&mut self, addr: RelayAddr) -> bool {
        match self.listeners.remove(&addr) {
            Some(task) => {
                task.abort();
                true
            }
            None => false,
        }
    }

    /// Connects from `relay` to `peer` as connection `id`, reporting to the loop of
    /// `mailbox`.
    pub fn connect(
        &mut self,
        id: ConnectionId,
        relay: RelayAddr,
        peer: PeerAddr,
        mailbox: Mailbox,
    ) {
        let task = tokio::spawn(async move {
            let connected = async { relay_socket(relay)?.connect(peer.get()).await }.await;
            if let Err(e) = &connected {
                debug!(%relay, %peer, error = %e, "TCP connection to a peer failed");
            }
            let owner = mailbox.clone();
            // A worker that stopped meanwhile has closed everything: nothing to report.
            mailbox.post(move |state| connect_result(state, id, connected, owner));
        });
        self.peers
            .insert(id, PeerSlot::Connecting(task.abort_handle()));
    }

    /// Closes connection `id`, in whatever state.
    pub fn close(&mut self, id: ConnectionId) {
        owners_of(&self.owners).remove(&id);
        match self.peers.remove(&id) {
            Some(PeerSlot::Connecting(task)) => task.abort(),
            Some(PeerSlot::Spliced(stop)) => stop.notify_one(),
            Some(PeerSlot::Pending(_)) | None => {}
        }
    }

    /// Keeps a connected or accepted peer connection until its ConnectionBind.
    fn hold(&mut self, id: ConnectionId, stream: TcpStream, owner: Mailbox) {
        match stream.into_std() {
            Ok(stream) => {
                owners_of(&self.owners).insert(id, owner);
                self.peers.insert(id, PeerSlot::Pending(stream));
            }
            Err(e) => debug!(error = %e, "cannot hold a peer connection"),
        }
    }

    /// Takes the pending peer connection `id` for a splice run by `owner`'s client.
    pub fn take_for_splice(&mut self, id: ConnectionId, owner: Mailbox) -> Option<Splice> {
        let Some(PeerSlot::Pending(peer)) = self.peers.remove(&id) else {
            return None;
        };
        let stop = Arc::new(Notify::new());
        self.peers.insert(id, PeerSlot::Spliced(stop.clone()));
        Some(Splice {
            id,
            peer,
            stop,
            owner,
        })
    }
}

impl Drop for TcpRelays {
    fn drop(&mut self) {
        for task in self.listeners.values() {
            task.abort();
        }
        for id in self.peers.keys().copied().collect::<Vec<_>>() {
            self.close(id);
        }
    }
}

/// A TCP socket bound to a relayed address. `SO_REUSEADDR` and `SO_REUSEPORT` let the
/// outgoing connections bind the address of the listening socket (RFC 6062 §5.2: "The local
/// endpoint is the relayed transport address"); the relay port claims keep other allocations
/// off it.
fn relay_socket(addr: RelayAddr) -> io::Result<TcpSocket> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr.get())?;
    Ok(socket)
}

/// The result of a connect to a peer, in the loop of the worker that asked for it.
fn connect_result(
    state: &mut WorkerState,
    id: ConnectionId,
    connected: io::Result<TcpStream>,
    owner: Mailbox,
) {
    // Still ours only while connecting: the core may have given up (and closed it).
    if !matches!(
        state.relays.tcp.peers.get(&id),
        Some(PeerSlot::Connecting(_))
    ) {
        return;
    }
    state.relays.tcp.peers.remove(&id);
    let (now, _) = now();
    // Through `run`, as every call into the core: what it queues is executed.
    let (accepted, _) = state.run(now, &mut [], |core, _| {
        core.tcp_connect_result(now, id, connected.is_ok())
    });
    if accepted {
        if let Ok(stream) = connected {
            state.relays.tcp.hold(id, stream, owner);
        }
    }
    flush_control(state);
}

/// Accepts peers on a relayed address and asks the core about each (RFC 6062 §5.3),
/// through the loop of `mailbox`.
async fn accept_loop(relay: RelayAddr, listener: TcpListener, mailbox: Mailbox) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok((stream, peer)) => (stream, PeerAddr::from(peer)),
            Err(e) => {
                // Out of file descriptors and the like: pause rather than spin.
                debug!(%relay, error = %e, "accept on a relayed address failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let owner = mailbox.clone();
        let posted = mailbox.post(move |state| {
            let (now, _) = now();
            let (accepted, _) = state.run(now, &mut [], |core, _| {
                core.tcp_peer_accepted(now, relay, peer)
            });
            match accepted {
                Some(id) => {
                    state.relays.tcp.hold(id, stream, owner);
                    flush_control(state);
                }
                // No permission: closed at once (dropping it).
                None => trace!(%relay, %peer, "peer connection refused"),
            }
        });
        if !posted {
            return; // the worker stopped
        }
    }
}

/// Sends the core's messages for control connections (Connect answers, ConnectionAttempt
/// indications) to their connections' queues; one that finds its queue full or its
/// connection gone is counted as a drop (`queue_full`, `send_failed`).
pub fn flush_control(state: &mut WorkerState) {
    while let Some(message) = state.core.poll_control_message() {
        let key = (message.to.client, message.to.server);
        match state.streams.get(&key) {
            Some(stream) => {
                if !stream.try_send(message.bytes) {
                    state.io.queue_full();
                }
            }
            None => {
                state.io.lost(1);
                trace!(client = %message.to.client, "control connection gone");
            }
        }
    }
}

/// The loop of the worker that holds peer connection `id`.
pub fn owner_of(owners: &TcpOwners, id: ConnectionId) -> Option<Mailbox> {
    owners_of(owners).get(&id).cloned()
}

impl Splice {
    /// Relays bytes as they are between the client data connection `client` and the peer
    /// (RFC 6062 §5.4), starting with `early` (bytes the client sent right after its
    /// ConnectionBind), until either side closes or the core closes the pair; then tells the
    /// core.
    pub async fn run<S: AsyncRead + AsyncWrite + Unpin>(self, mut client: S, early: &[u8]) {
        let id = self.id;
        let result = async {
            let mut peer = TcpStream::from_std(self.peer)?;
            if !early.is_empty() {
                peer.write_all(early).await?;
            }
            tokio::select! {
                copied = tokio::io::copy_bidirectional(&mut client, &mut peer) => copied.map(Some),
                // The core closed the pair: its allocation is gone, and its traffic with it.
                () = self.stop.notified() => Ok(None),
            }
        }
        .await;
        let relayed = match result {
            Ok(Some((to_peer, to_client))) => Some((to_peer + early.len() as u64, to_client)),
            Ok(None) => None,
            Err(e) => {
                debug!(connection = %id, error = %e, "TCP relay connection ended");
                None
            }
        };
        // A worker that stopped meanwhile has closed everything: nothing to report.
        self.owner.post(move |state| {
            if let Some((to_peer, to_client)) = relayed {
                state.core.tcp_relayed(id, to_peer, to_client);
            }
            state.relays.tcp.close(id);
            state.core.tcp_connection_closed(id);
        });
    }
}
