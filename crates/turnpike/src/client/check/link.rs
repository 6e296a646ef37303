//! One client ↔ server leg of `turnpike check`: a UDP socket, a TCP connection, a TLS
//! session or a DTLS session, sending and receiving whole STUN / ChannelData messages.
//! Streams are cut into messages with `stun::framing` (RFC 8489 §6.2.2, RFC 8656 §12.5); a
//! DTLS record holds one message, as a UDP datagram does (RFC 7350).

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use stun::framing::{next_frame, Frame};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use super::tls::TlsSettings;
use crate::client::client_args::is_transient;
use crate::client::dtls_session::{DtlsError, DtlsSession};

/// What a TLS or DTLS link needs to open one to another server (a 300's ALTERNATE-SERVER):
/// the trust of the run and the name the first server's certificate was checked against,
/// which the alternate's is checked against too unless the 300 names another (RFC 8489 §10).
#[derive(Debug, Clone)]
pub struct Trust {
    /// The run's CAs and `--insecure`.
    pub settings: TlsSettings,
    /// The host of the URI.
    pub host: String,
}

/// A byte stream to the server: TCP, or TLS over TCP.
pub trait StreamIo: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> StreamIo for T {}

/// One leg to the server.
pub enum Link {
    /// A UDP socket connected to the server.
    Udp {
        /// The socket.
        socket: UdpSocket,
        /// The server.
        server: SocketAddr,
        /// ICMP errors seen (port unreachable: nothing listens there).
        refused: u32,
    },
    /// A TCP or TLS stream.
    Stream {
        /// The stream.
        io: Box<dyn StreamIo>,
        /// The server.
        server: SocketAddr,
        /// Bytes read and not yet cut into a message.
        buf: Vec<u8>,
        /// TLS rather than plain TCP.
        tls: bool,
    },
    /// A DTLS session over UDP (RFC 7350).
    Dtls(Box<DtlsSession>),
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Link::Udp { server, .. } => write!(f, "Link::Udp({server})"),
            Link::Stream { server, .. } => write!(f, "Link::Stream({server})"),
            Link::Dtls(session) => write!(f, "Link::Dtls({})", session.server()),
        }
    }
}

impl Link {
    /// A UDP socket on the wildcard address of `server`'s family, connected to it: Linux
    /// reports ICMP errors (port unreachable) only on connected sockets, and the server is
    /// the only source a TURN client listens to anyway.
    pub async fn udp(server: SocketAddr) -> io::Result<Link> {
        let bind: SocketAddr = match server {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = UdpSocket::bind(bind).await?;
        socket.connect(server).await?;
        Ok(Link::Udp {
            socket,
            server,
            refused: 0,
        })
    }

    /// A connected TCP stream.
    pub fn stream(io: Box<dyn StreamIo>, server: SocketAddr) -> Link {
        Link::Stream {
            io,
            server,
            buf: Vec::new(),
            tls: false,
        }
    }

    /// A TLS session.
    pub fn tls(io: Box<dyn StreamIo>, server: SocketAddr) -> Link {
        Link::Stream {
            io,
            server,
            buf: Vec::new(),
            tls: true,
        }
    }

    /// A DTLS session.
    pub fn dtls(session: DtlsSession) -> Link {
        Link::Dtls(Box::new(session))
    }

    /// True for a TLS or DTLS link, which can only be moved to another server with a
    /// [`Trust`] to check that server's certificate.
    pub fn is_secure(&self) -> bool {
        matches!(self, Link::Stream { tls: true, .. } | Link::Dtls(_))
    }

    /// A new link of the same transport to `server` (a TURN server's ALTERNATE-SERVER: RFC
    /// 8489 §10, "using the same transport protocol"). Over TLS or DTLS the certificate of
    /// `server` is checked with `trust`, against `domain` (the 300's ALTERNATE-DOMAIN) or, with
    /// none, against the name the first server was checked against; a certificate that does
    /// not verify fails the move (unless `--insecure`).
    pub async fn reconnect(
        &self,
        server: SocketAddr,
        timeout: Duration,
        trust: Option<&Trust>,
        domain: Option<&str>,
    ) -> io::Result<Link> {
        let secure = match (self.is_secure(), trust) {
            (false, _) => None,
            (true, Some(trust)) => Some((trust, domain.unwrap_or(&trust.host))),
            (true, None) => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "a TLS or DTLS link is not moved to another server without its trust",
                ))
            }
        };
        if let (Link::Dtls(_), Some((trust, host))) = (self, secure) {
            let verifier = (trust.settings.dtls_verifier(host))
                .map_err(|e| io::Error::other(format!("{e:#}")))?;
            let deadline = std::time::Instant::now() + timeout;
            let insecure = trust.settings.insecure();
            let session = DtlsSession::connect(server, &verifier, insecure, deadline)
                .await
                .map_err(|e| io::Error::other(format!("DTLS with {server} as {host}: {e}")))?;
            return Ok(Link::dtls(session));
        }
        if !self.is_stream() {
            return Link::udp(server).await;
        }
        let tcp = tokio::time::timeout(timeout, TcpStream::connect(server))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no answer"))??;
        // Small STUN messages go out at once.
        let _ = tcp.set_nodelay(true);
        let Some((trust, host)) = secure else {
            return Ok(Link::stream(Box::new(tcp), server));
        };
        let unix_now = super::steps::unix_now() as i64;
        let handshake = trust.settings.handshake(tcp, host, unix_now);
        let handshake = tokio::time::timeout(timeout, handshake)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no TLS handshake"))?
            .map_err(|e| io::Error::other(format!("{e:#}")))?;
        match handshake.stream {
            Some(stream) => Ok(Link::tls(Box::new(stream), server)),
            None => {
                let why = handshake.error.unwrap_or_default();
                Err(io::Error::other(format!(
                    "TLS with {server} as {host}: {why}"
                )))
            }
        }
    }

    /// True for TCP and TLS (DTLS is datagrams: UDP's retransmissions, RFC 7350).
    pub fn is_stream(&self) -> bool {
        matches!(self, Link::Stream { .. })
    }

    /// ICMP "port unreachable" errors seen on a UDP socket.
    pub fn refused(&self) -> u32 {
        match self {
            Link::Udp { refused, .. } => *refused,
            Link::Stream { .. } => 0,
            Link::Dtls(session) => session.refused(),
        }
    }

    /// Sends one message to the server.
    pub async fn send(&mut self, payload: &[u8]) -> io::Result<()> {
        match self {
            Link::Udp {
                socket, refused, ..
            } => match socket.send(payload).await {
                Ok(_) => Ok(()),
                Err(error) if is_transient(&error) => {
                    *refused += 1;
                    Ok(())
                }
                Err(error) => Err(error),
            },
            Link::Stream { io, .. } => {
                io.write_all(payload).await?;
                io.flush().await
            }
            Link::Dtls(session) => session.send(payload).map_err(dtls_io),
        }
    }

    /// Receives the next message and where it came from. Cancel-safe: bytes of a stream
    /// are kept until a whole message is there.
    pub async fn recv(&mut self) -> io::Result<(SocketAddr, Vec<u8>)> {
        match self {
            Link::Udp {
                socket,
                server,
                refused,
            } => {
                let mut buf = vec![0u8; 65_536];
                loop {
                    match socket.recv(&mut buf).await {
                        Ok(len) => {
                            buf.truncate(len);
                            return Ok((*server, buf));
                        }
                        // Linux reports an ICMP port unreachable on the next receive.
                        Err(error) if is_transient(&error) => *refused += 1,
                        Err(error) => return Err(error),
                    }
                }
            }
            Link::Stream {
                io, server, buf, ..
            } => loop {
                match next_frame(buf) {
                    Frame::Stun(len) | Frame::ChannelData(len) => {
                        let rest = buf.split_off(len);
                        let frame = std::mem::replace(buf, rest);
                        return Ok((*server, frame));
                    }
                    Frame::Invalid => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "the server sent bytes that are neither STUN nor ChannelData",
                        ))
                    }
                    Frame::Incomplete => {}
                }
                let mut chunk = [0u8; 4096];
                // `read` is cancel-safe: nothing is consumed unless it returns.
                let read = io.read(&mut chunk).await?;
                if read == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed the connection",
                    ));
                }
                buf.extend_from_slice(&chunk[..read]);
            },
            // `DtlsSession::recv` is cancel-safe too.
            Link::Dtls(session) => {
                let data = session.recv().await.map_err(dtls_io)?;
                Ok((session.server(), data))
            }
        }
    }
}

/// A DTLS failure after the handshake, as the I/O error the steps report.
fn dtls_io(error: DtlsError) -> io::Error {
    match error {
        DtlsError::Io(error) => error,
        DtlsError::Closed => io::Error::new(io::ErrorKind::ConnectionAborted, error.to_string()),
        other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
    }
}
