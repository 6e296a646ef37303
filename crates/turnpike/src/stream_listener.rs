//! TCP and TLS: accept connections and serve STUN on each (RFC 8489 §6.2.2).
//!
//! A connection carries any number of messages back to back, possibly split across reads;
//! [`stun::framing`] cuts them out. Each connection's memory is bounded (one message of at
//! most 64 KiB plus one read), idle connections close after the configured timeout, and the
//! number of connections is capped by a semaphore shared by all stream listeners.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use stun::framing::{next_frame, Frame};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, trace, warn};
use turn::{BindingServer, SocketId, Transport};

/// Time a TLS client gets to finish its handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes asked of each read; a connection's buffer starts this small and grows only to hold
/// one whole message.
const READ_CHUNK: usize = 2_048;

/// What every stream listener shares.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// Close a connection after this long without a byte from the client.
    pub idle_timeout: Duration,
    /// Permits for concurrent connections, shared by all TCP and TLS listeners.
    pub connections: Arc<Semaphore>,
}

/// Accepts connections on `listener` until a fatal error; `tls` wraps each in TLS.
pub async fn run(
    listener: TcpListener,
    server: Arc<BindingServer>,
    id: SocketId,
    tls: Option<TlsAcceptor>,
    settings: StreamSettings,
) -> io::Result<()> {
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
        let server = server.clone();
        let tls = tls.clone();
        let idle = settings.idle_timeout;
        tokio::spawn(async move {
            let result = match tls {
                None => serve_connection(tcp, peer, &server, id, idle).await,
                Some(acceptor) => {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => serve_connection(stream, peer, &server, id, idle).await,
                        Ok(Err(e)) => Err(e),
                        Err(_) => Err(io::ErrorKind::TimedOut.into()),
                    }
                }
            };
            if let Err(e) = result {
                debug!(%peer, error = %e, "connection closed");
            }
            drop(permit);
        });
    }
}

/// Serves one connection until the client closes it, goes idle, or sends bytes that are
/// neither STUN nor ChannelData (a stream cannot be resynchronised after that).
async fn serve_connection<S>(
    mut stream: S,
    peer: SocketAddr,
    server: &BindingServer,
    id: SocketId,
    idle: Duration,
) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buffer: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut outgoing = vec![0u8; 1_500];
    loop {
        // Answer every complete message already buffered before reading more, so that the
        // buffer never holds more than one partial message plus one read.
        loop {
            match next_frame(&buffer) {
                Frame::Stun(len) => {
                    if let Some(t) =
                        server.handle(Transport::Stream, id, peer, &buffer[..len], &mut outgoing)
                    {
                        stream.write_all(&outgoing[..t.len]).await?;
                    }
                    buffer.drain(..len);
                }
                // ChannelData has no meaning before TURN allocations exist: skip it.
                Frame::ChannelData(len) => {
                    buffer.drain(..len);
                }
                Frame::Invalid => {
                    trace!(%peer, "not STUN; closing");
                    return Ok(());
                }
                Frame::Incomplete => break,
            }
        }
        buffer.reserve(READ_CHUNK);
        let read = tokio::time::timeout(idle, stream.read_buf(&mut buffer)).await;
        match read {
            Ok(Ok(0)) => return Ok(()),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                trace!(%peer, "idle; closing");
                return Ok(());
            }
        }
    }
}
