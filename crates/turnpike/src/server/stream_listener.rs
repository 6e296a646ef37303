//! TCP and TLS: accept connections and serve STUN and TURN on each (RFC 8489 §6.2.2,
//! RFC 8656 §12.5).
//!
//! A connection carries any number of messages back to back, possibly split across reads;
//! [`stun::framing`] cuts them out. Over a stream, an allocation lives as long as its
//! connection.
//!
//! A stream client holds server resources for as long as it likes unless each is bounded in
//! time as well as in size (issue #10: trickling and non-reading clients):
//! - **Memory**: one message of at most 64 KiB plus one read; a queue of peer data bounded in
//!   bytes ([`crate::server::stream_queue`], overflow dropped and counted); a kernel send buffer
//!   capped at [`SEND_BUFFER`] instead of autotuned up to megabytes.
//! - **Time**: a message must arrive whole within `tcp-frame-timeout` of its first byte (the
//!   idle timer alone restarts on every byte, so one byte every few seconds held a connection
//!   forever), a TLS handshake must finish within the same time, a write blocked for
//!   `tcp-write-timeout` (a client that does not read) closes the connection, and a silent
//!   connection closes after `tcp-idle-timeout` unless it holds an allocation.
//! - **Count**: `max-tcp-connections` in all (a semaphore shared by every stream listener),
//!   and `max-tcp-connections-per-ip` per source ([`crate::server::per_ip`]), so that one host cannot
//!   take every slot.
//!
//! Each connection is handed to one worker (by a hash of the client's address) and served on
//! that worker's runtime, so that its allocation's relay socket is read by the same worker.
//! The connection's task reads and frames the stream; each message that needs the TURN core
//! goes to the worker's loop as a job ([`crate::server::worker_handle`]) and the task waits for
//! its answer before taking the next, so a connection's messages reach the core in order.

use std::hash::BuildHasher;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use socket2::SockRef;
use stun::framing::{next_frame, Frame};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::{timeout, timeout_at, Instant};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, trace, warn};
use turn::relay::{is_binding_request, ClientAddr, ClientOutcome, ClientTransport, FiveTuple};
use turn::{BindingServer, SocketId, Transport};

use crate::config::Config;
use crate::metrics::connections::{ConnectionCounters, Refusal};
use crate::metrics::io::IoCounters;
use crate::server::per_ip::PerIpLimit;
use crate::server::relay_registry::send_to_peer;
use crate::server::stream_queue::{stream_queue, StreamReceiver};
use crate::server::tcp_relay::{owner_of, Splice};
use crate::server::worker::WorkerHandle;
use crate::server::worker_handle::Mailbox;
use crate::server::worker_state::now;

/// Bytes asked of each read; a connection's buffer starts this small and grows only to hold
/// one whole message.
const READ_CHUNK: usize = 2_048;
/// SO_SNDBUF of each connection (Linux doubles it for bookkeeping). Autotuning lets a client
/// that does not read pin ~4 MB of kernel memory per connection; this holds ~25 ms of
/// 80 Mbit/s, ample for relayed media, and bounds 10 000 connections to a few GB at worst.
pub const SEND_BUFFER: usize = 128 * 1024;

/// What every stream listener shares.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// The per-connection deadlines.
    pub deadlines: Deadlines,
    /// Permits for concurrent connections, shared by all TCP and TLS listeners.
    pub connections: Arc<Semaphore>,
    /// Permits per source, shared by all TCP and TLS listeners.
    pub per_ip: Arc<PerIpLimit>,
    /// Connection counts, for metrics.
    pub counters: Arc<ConnectionCounters>,
}

impl StreamSettings {
    /// The settings of `config`, with fresh connection counts.
    pub fn new(config: &Config) -> Self {
        StreamSettings {
            deadlines: Deadlines {
                idle: config.tcp_idle_timeout,
                frame: config.tcp_frame_timeout,
                write: config.tcp_write_timeout,
            },
            connections: Arc::new(Semaphore::new(config.max_tcp_connections)),
            per_ip: PerIpLimit::new(config.max_tcp_connections_per_ip),
            counters: Arc::default(),
        }
    }
}

/// How long a connection may take for each thing it does.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    /// Close after this long without traffic, unless the connection holds an allocation.
    pub idle: Duration,
    /// A message must arrive whole, and a TLS handshake finish, within this.
    pub frame: Duration,
    /// A write blocked this long closes the connection.
    pub write: Duration,
}

/// Why a connection was closed by the server, for the debug log.
fn closed(cause: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, cause.to_owned())
}

/// One accepted connection's context (also a DTLS session's: [`crate::server::dtls_listener`]).
pub struct Connection {
    pub binding: Arc<BindingServer>,
    /// Its worker, whose loop holds the TURN core.
    pub worker: WorkerHandle,
    /// The worker's I/O counters (Binding answers).
    pub io: Arc<IoCounters>,
    pub id: SocketId,
    pub five_tuple: FiveTuple,
    pub deadlines: Deadlines,
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
    let is_tls = tls.is_some();
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
        // The source's share first, so that a source at its cap takes no global permit.
        let Some(source_permit) = settings.per_ip.try_acquire(peer.ip()) else {
            settings.counters.refused(is_tls, Refusal::PerIp);
            debug!(%peer, "per-IP connection limit reached; closing");
            continue;
        };
        let Ok(permit) = settings.connections.clone().try_acquire_owned() else {
            settings.counters.refused(is_tls, Refusal::Limit);
            debug!(%peer, "connection limit reached; closing");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        if let Err(e) = SockRef::from(&tcp).set_send_buffer_size(SEND_BUFFER) {
            debug!(%peer, error = %e, "cannot cap the send buffer");
        }
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
            worker: worker.clone(),
            io: worker.io.clone(),
            id,
            five_tuple: FiveTuple {
                client: ClientAddr::from(peer),
                server,
                transport: if is_tls {
                    ClientTransport::Tls
                } else {
                    ClientTransport::Tcp
                },
            },
            deadlines: settings.deadlines,
        };
        let tls = tls.clone();
        let counters = settings.counters.clone();
        counters.accepted(is_tls);
        worker.runtime.spawn(async move {
            let result = match TcpStream::from_std(tcp) {
                Err(e) => Err(e),
                Ok(tcp) => connection.serve_maybe_tls(tcp, tls).await,
            };
            if let Err(e) = result {
                debug!(%peer, error = %e, "connection closed");
            }
            drop((permit, source_permit));
            counters.closed(is_tls);
        });
    }
}

/// The worker for a connection whose address hashes to `hash`.
pub fn pick(workers: &[WorkerHandle], hash: u64) -> Option<&WorkerHandle> {
    let n = u64::try_from(workers.len()).ok().filter(|n| *n > 0)?;
    workers.get(usize::try_from(hash % n).ok()?)
}

impl Connection {
    /// Serves `tcp`, after a TLS handshake when `tls` is given.
    async fn serve_maybe_tls(self, tcp: TcpStream, tls: Option<TlsAcceptor>) -> io::Result<()> {
        match tls {
            None => self.serve(tcp).await,
            Some(acceptor) => {
                // A handshake is a message too: a client that starts one and stalls would
                // otherwise hold its slot for as long as it trickles.
                match timeout(self.deadlines.frame, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => self.serve(stream).await,
                    Ok(Err(e)) => Err(e),
                    Err(_) => Err(closed("TLS handshake deadline (tcp-frame-timeout)")),
                }
            }
        }
    }

    /// Registers the connection for peer data: the worker loop queues the client's framed
    /// peer data on the returned receiver.
    pub async fn register(&self) -> StreamReceiver {
        let key = (self.five_tuple.client, self.five_tuple.server);
        let (sender, receiver) = stream_queue();
        self.worker
            .call(move |state| state.streams.insert(key, sender))
            .await;
        receiver
    }

    /// Undoes [`Connection::register`] and deletes the client's allocation: the connection
    /// or session is gone, and with it the only way to reach the client.
    pub async fn unregister(&self, receiver: &StreamReceiver) {
        if receiver.dropped() > 0 {
            debug!(
                client = %self.five_tuple.client,
                dropped = receiver.dropped(),
                "peer datagrams dropped: the client's queue was full (it does not read fast enough)"
            );
        }
        let key = (self.five_tuple.client, self.five_tuple.server);
        let five_tuple = self.five_tuple;
        self.worker
            .call(move |state| {
                state.streams.remove(&key);
                let (now, _) = now();
                state.run(now, &mut [], |core, _| core.client_closed(now, &five_tuple));
            })
            .await;
    }

    /// Whether the client holds an allocation (which keeps an idle connection open).
    pub async fn has_allocation(&self) -> bool {
        let five_tuple = self.five_tuple;
        self.worker
            .call(move |state| state.core.has_allocation(&five_tuple))
            .await
            .unwrap_or(false)
    }

    /// Registers the connection for peer data, serves it, and then deletes its allocation.
    async fn serve<S: AsyncRead + AsyncWrite + Unpin>(self, stream: S) -> io::Result<()> {
        let mut receiver = self.register().await;
        let result = self.run(stream, &mut receiver).await;
        self.unregister(&receiver).await;
        // The connection may be a client data connection now (RFC 6062 §5.4).
        if let Some((splice, stream, early)) = result? {
            splice.run(stream, &early).await;
        }
        Ok(())
    }

    /// Reads and answers messages, and writes queued peer data, until the client closes the
    /// connection, goes idle, misses a deadline, or sends bytes that are neither STUN nor
    /// ChannelData (a stream cannot be resynchronised after that).
    ///
    /// After a successful ConnectionBind (RFC 6062 §5.4) the connection stops being read as
    /// STUN: it is returned, with the splice to run and the bytes read past the request.
    async fn run<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: S,
        peer_data: &mut StreamReceiver,
    ) -> io::Result<Option<(Splice, S, Vec<u8>)>> {
        let (mut reader, mut writer) = tokio::io::split(stream);
        let mut buffer: Vec<u8> = Vec::with_capacity(READ_CHUNK);
        let mut outgoing = vec![0u8; 1_500];
        // When the partial message at the start of `buffer` must be complete.
        let mut frame_deadline: Option<Instant> = None;
        loop {
            // Answer every complete message already buffered before reading more, so that
            // the buffer never holds more than one partial message plus one read.
            let mut answered = false;
            loop {
                let len = match next_frame(&buffer) {
                    Frame::Stun(len) | Frame::ChannelData(len) => len,
                    Frame::Invalid => {
                        trace!(client = %self.five_tuple.client, "not STUN; closing");
                        return Ok(None);
                    }
                    Frame::Incomplete => break,
                };
                let (reply, next) = self.handle(&buffer[..len], &mut outgoing).await;
                if let Some(reply) = reply {
                    self.write(&mut writer, &outgoing[..reply]).await?;
                }
                buffer.drain(..len);
                match next {
                    Next::Stun => {}
                    Next::Splice(splice) => {
                        return Ok(Some((splice, reader.unsplit(writer), buffer)))
                    }
                    Next::Close => return Ok(None),
                }
                answered = true;
            }
            // The clock of a message starts with its first byte (the bytes left after the
            // messages just answered came with the last read) and is not restarted by more.
            if buffer.is_empty() {
                frame_deadline = None;
            } else if answered || frame_deadline.is_none() {
                frame_deadline = Some(Instant::now() + self.deadlines.frame);
            }
            buffer.reserve(READ_CHUNK);
            let idle_at = Instant::now() + self.deadlines.idle;
            let read_until = frame_deadline.map_or(idle_at, |frame| frame.min(idle_at));
            tokio::select! {
                read = timeout_at(read_until, reader.read_buf(&mut buffer)) => match read {
                    Ok(Ok(0)) => return Ok(None),
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(e),
                    Err(_) if frame_deadline.is_some_and(|frame| frame <= Instant::now()) => {
                        return Err(closed("frame deadline: message incomplete (tcp-frame-timeout)"));
                    }
                    // An allocation keeps its connection: its own lifetime governs.
                    Err(_) if self.has_allocation().await => {}
                    Err(_) => {
                        trace!(client = %self.five_tuple.client, "idle; closing");
                        return Ok(None);
                    }
                },
                Some(data) = peer_data.recv() => self.write(&mut writer, &data).await?,
            }
        }
    }

    /// Writes `data`, or fails once the write has been blocked for the write deadline: a
    /// client that does not read must not hold its connection (and its buffers) forever.
    async fn write<W: AsyncWrite + Unpin>(&self, writer: &mut W, data: &[u8]) -> io::Result<()> {
        match timeout(self.deadlines.write, writer.write_all(data)).await {
            Ok(result) => result,
            Err(_) => Err(closed(
                "write deadline: the client does not read (tcp-write-timeout)",
            )),
        }
    }

    /// Handles one message; returns the length of a reply written into `out`, if any, and
    /// what the connection does next.
    pub async fn handle(&self, frame: &[u8], out: &mut [u8]) -> (Option<usize>, Next) {
        if is_binding_request(frame) {
            let client = self.five_tuple.client.get();
            let answer = self
                .binding
                .handle(Transport::Stream, self.id, client, frame, out)
                .map(|t| t.len);
            self.io.binding_answered(answer.map(|len| &out[..len]));
            return (answer, Next::Stun);
        }
        // A ConnectionBind goes to the core that owns its connection, which may be another
        // worker's (the data connection was hashed to a worker by its own address).
        let owner = connection_bind_id(frame)
            .and_then(|id| owner_of(&self.worker.tcp_owners, id))
            .unwrap_or_else(|| self.worker.mailbox.clone());
        // The job owns its input: the frame is copied once (the stream path, not the UDP
        // one, whose datagrams the loop reads itself).
        let (message, five_tuple, id) = (frame.to_vec(), self.five_tuple, self.id);
        let splice_owner = owner.clone();
        let answer = owner
            .call(move |state| answer_in_loop(state, five_tuple, id, &message, splice_owner))
            .await;
        let mut reply = |bytes: &[u8]| {
            out[..bytes.len()].copy_from_slice(bytes);
            Some(bytes.len())
        };
        match answer {
            // The worker stopped: the connection goes with it.
            None => (None, Next::Close),
            Some(InLoop::Reply(bytes)) => (reply(&bytes), Next::Stun),
            Some(InLoop::Nothing) => (None, Next::Stun),
            Some(InLoop::Splice(bytes, splice)) => (reply(&bytes), Next::Splice(splice)),
            Some(InLoop::Close) => (None, Next::Close),
        }
    }
}

/// Room for an answer written in the loop (TURN responses are small; Binding, which can pad
/// to one MTU, is answered outside it).
const SEND_BUFFER_MAX: usize = 1_500;

/// What the loop made of a stream client's message. Only an answer is copied out of the
/// loop's stack buffer: relayed data (the bulk of a stream's messages) allocates nothing here.
enum InLoop {
    /// Send this answer.
    Reply(Vec<u8>),
    /// Nothing to send (relayed to the peer, or dropped).
    Nothing,
    /// Send this answer, then splice (RFC 6062 §5.4).
    Splice(Vec<u8>, Splice),
    /// Close the connection.
    Close,
}

/// Gives a stream client's message to the core, in the worker's loop; relays a payload to
/// its peer there and then.
fn answer_in_loop(
    state: &mut crate::server::worker_state::WorkerState,
    five_tuple: FiveTuple,
    id: SocketId,
    frame: &[u8],
    owner: Mailbox,
) -> InLoop {
    let mut out = [0u8; SEND_BUFFER_MAX];
    let (now, unix_now) = now();
    let outcome = state.handle_client(now, unix_now, five_tuple, id, frame, &mut out);
    state.sync_kernel(now);
    match outcome {
        ClientOutcome::ConnectionBound { reply, connection } => {
            match state.relays.tcp.take_for_splice(connection, owner) {
                Some(splice) => InLoop::Splice(out[..reply.len].to_vec(), splice),
                None => {
                    // The peer connection went meanwhile: close this one (RFC 6062 §5.5).
                    state.core.tcp_connection_closed(connection);
                    InLoop::Close
                }
            }
        }
        ClientOutcome::Reply(t) => InLoop::Reply(out[..t.len].to_vec()),
        ClientOutcome::Relay {
            relay,
            peer,
            payload,
            dont_fragment,
        } => {
            match state.relays.socket(relay) {
                Some(socket) => {
                    if let Err(e) = send_to_peer(&socket, &frame[payload], peer, dont_fragment) {
                        state.io.send_failed(&e, 1);
                    }
                }
                None => state.io.lost(1),
            }
            InLoop::Nothing
        }
        ClientOutcome::Nothing => InLoop::Nothing,
    }
}

/// What a connection does after a message.
pub enum Next {
    /// Reads the next message.
    Stun,
    /// Becomes a client data connection (RFC 6062 §5.4): its bytes go to the peer as they are.
    Splice(Splice),
    /// Closes.
    Close,
}

/// The CONNECTION-ID of a ConnectionBind request (RFC 6062 §5.4), read from the header and
/// the attribute alone; `None` for any other message.
fn connection_bind_id(frame: &[u8]) -> Option<turn::relay::ConnectionId> {
    let kind = stun::MessageType::new(stun::Method::CONNECTION_BIND, stun::Class::Request);
    let head = frame.get(..2)?;
    if stun::MessageType::from_u16(u16::from_be_bytes([head[0], head[1]])) != Some(kind) {
        return None;
    }
    let message = stun::Message::decode(frame).ok()?;
    let id = message.get::<stun::attributes::ConnectionId>()?.ok()?;
    Some(turn::relay::ConnectionId(id.0))
}
