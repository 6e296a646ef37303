//! TCP and TLS: accept connections and serve STUN and TURN on each (RFC 8489 §6.2.2,
//! RFC 8656 §12.5).
//!
//! A connection carries any number of messages back to back, possibly split across reads;
//! [`stun::framing`] cuts them out. Each connection's memory is bounded (one message of at
//! most 64 KiB plus one read, and a bounded queue of peer data), idle connections close after
//! the configured timeout unless they hold an allocation, and the number of connections is
//! capped by a semaphore shared by all stream listeners. Over a stream, an allocation lives
//! as long as its connection.
//!
//! Each connection is handed to one worker (by a hash of the client's address) and served on
//! that worker's runtime with its TURN core, so that its allocation's relay socket is read by
//! the same worker.

use std::hash::BuildHasher;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use stun::framing::{next_frame, Frame};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, trace, warn};
use turn::relay::{is_binding_request, ClientOutcome, ClientTransport, FiveTuple};
use turn::{BindingServer, SocketId, Transport};

use crate::relay_registry::send_to_peer;
use crate::shared::{handle_client, lock, SharedCore};
use crate::worker::WorkerHandle;

/// Time a TLS client gets to finish its handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes asked of each read; a connection's buffer starts this small and grows only to hold
/// one whole message.
const READ_CHUNK: usize = 2_048;
/// Peer datagrams waiting to be written to one connection.
const PEER_QUEUE: usize = 256;

/// What every stream listener shares.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// Close a connection after this long without traffic, unless it holds an allocation.
    pub idle_timeout: Duration,
    /// Permits for concurrent connections, shared by all TCP and TLS listeners.
    pub connections: Arc<Semaphore>,
}

/// One accepted connection's context.
struct Connection {
    binding: Arc<BindingServer>,
    shared: SharedCore,
    id: SocketId,
    five_tuple: FiveTuple,
    idle: Duration,
}

/// Accepts connections on `listener` until a fatal error; `tls` wraps each in TLS.
pub async fn run(
    listener: TcpListener,
    binding: Arc<BindingServer>,
    id: SocketId,
    tls: Option<TlsAcceptor>,
    settings: StreamSettings,
    workers: Arc<[WorkerHandle]>,
) -> io::Result<()> {
    let local = listener.local_addr()?;
    // Randomly keyed: which worker a client lands on is not predictable from outside.
    let hasher = std::collections::hash_map::RandomState::new();
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: pause rather than spin or die.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = settings.connections.clone().try_acquire_owned() else {
            debug!(%peer, "connection limit reached; closing");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let server = tcp.local_addr().unwrap_or(local);
        let Some(worker) = pick(&workers, hasher.hash_one(peer)) else {
            continue;
        };
        debug!(%peer, worker = worker.index, "connection accepted");
        // Re-registered on the worker's runtime, where all its I/O then happens.
        let Ok(tcp) = tcp.into_std() else {
            continue;
        };
        let connection = Connection {
            binding: binding.clone(),
            shared: worker.shared.clone(),
            id,
            five_tuple: FiveTuple {
                client: peer,
                server,
                transport: ClientTransport::Tcp,
            },
            idle: settings.idle_timeout,
        };
        let tls = tls.clone();
        worker.runtime.spawn(async move {
            let result = match TcpStream::from_std(tcp) {
                Err(e) => Err(e),
                Ok(tcp) => connection.serve_maybe_tls(tcp, tls).await,
            };
            if let Err(e) = result {
                debug!(%peer, error = %e, "connection closed");
            }
            drop(permit);
        });
    }
}

/// The worker for a connection whose address hashes to `hash`.
fn pick(workers: &[WorkerHandle], hash: u64) -> Option<&WorkerHandle> {
    let n = u64::try_from(workers.len()).ok().filter(|n| *n > 0)?;
    workers.get(usize::try_from(hash % n).ok()?)
}

impl Connection {
    /// Serves `tcp`, after a TLS handshake when `tls` is given.
    async fn serve_maybe_tls(self, tcp: TcpStream, tls: Option<TlsAcceptor>) -> io::Result<()> {
        match tls {
            None => self.serve(tcp).await,
            Some(acceptor) => {
                match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => self.serve(stream).await,
                    Ok(Err(e)) => Err(e),
                    Err(_) => Err(io::ErrorKind::TimedOut.into()),
                }
            }
        }
    }

    /// Registers the connection for peer data, serves it, and then deletes its allocation.
    async fn serve<S: AsyncRead + AsyncWrite + Unpin>(self, stream: S) -> io::Result<()> {
        let key = (self.five_tuple.client, self.five_tuple.server);
        let (sender, receiver) = mpsc::channel(PEER_QUEUE);
        lock(&self.shared).streams.insert(key, sender);
        let result = self.run(stream, receiver).await;
        let mut state = lock(&self.shared);
        let state = &mut *state;
        state.streams.remove(&key);
        state
            .core
            .client_closed(&self.five_tuple, &mut state.relays);
        result
    }

    /// Reads and answers messages, and writes queued peer data, until the client closes the
    /// connection, goes idle, or sends bytes that are neither STUN nor ChannelData (a stream
    /// cannot be resynchronised after that).
    async fn run<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: S,
        mut peer_data: mpsc::Receiver<Vec<u8>>,
    ) -> io::Result<()> {
        let (mut reader, mut writer) = tokio::io::split(stream);
        let mut buffer: Vec<u8> = Vec::with_capacity(READ_CHUNK);
        let mut outgoing = vec![0u8; 1_500];
        loop {
            // Answer every complete message already buffered before reading more, so that
            // the buffer never holds more than one partial message plus one read.
            loop {
                let len = match next_frame(&buffer) {
                    Frame::Stun(len) | Frame::ChannelData(len) => len,
                    Frame::Invalid => {
                        trace!(client = %self.five_tuple.client, "not STUN; closing");
                        return Ok(());
                    }
                    Frame::Incomplete => break,
                };
                if let Some(reply) = self.handle(&buffer[..len], &mut outgoing).await {
                    writer.write_all(&outgoing[..reply]).await?;
                }
                buffer.drain(..len);
            }
            buffer.reserve(READ_CHUNK);
            tokio::select! {
                read = tokio::time::timeout(self.idle, reader.read_buf(&mut buffer)) => match read {
                    Ok(Ok(0)) => return Ok(()),
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(e),
                    // An allocation keeps its connection: its own lifetime governs.
                    Err(_) if lock(&self.shared).core.has_allocation(&self.five_tuple) => {}
                    Err(_) => {
                        trace!(client = %self.five_tuple.client, "idle; closing");
                        return Ok(());
                    }
                },
                Some(data) = peer_data.recv() => writer.write_all(&data).await?,
            }
        }
    }

    /// Handles one message; returns the length of a reply written into `out`, if any.
    async fn handle(&self, frame: &[u8], out: &mut [u8]) -> Option<usize> {
        if is_binding_request(frame) {
            return self
                .binding
                .handle(
                    Transport::Stream,
                    self.id,
                    self.five_tuple.client,
                    frame,
                    out,
                )
                .map(|t| t.len);
        }
        let (outcome, relay_socket) =
            handle_client(&self.shared, self.five_tuple, self.id, frame, out);
        match outcome {
            ClientOutcome::Reply(t) => Some(t.len),
            ClientOutcome::Relay {
                peer,
                payload,
                dont_fragment,
                ..
            } => {
                if let Some(relay) = relay_socket {
                    send_to_peer(&relay, &frame[payload], peer, dont_fragment).await;
                }
                None
            }
            ClientOutcome::Nothing => None,
        }
    }
}
