//! A TCP listener for the HTTP server that holds at most N connections at once, and at most
//! M of them from one source.
//!
//! Each accepted connection carries a semaphore permit, released when the connection is
//! dropped. At the cap, `accept` waits for a permit: new clients queue in the kernel's
//! backlog instead of growing the server's memory (WebSocket connections included).
//!
//! So that one source cannot take every permit (200 connections trickling partial headers
//! took `/healthz` down, issue #10), a connection from a source ([`crate::server::source::Source`]: IPv4 address,
//! IPv6 /64) that already holds `http-connections-per-ip` connections is closed at once,
//! before a byte is read; its permit goes to the next connection. The per-source counts live
//! only while connections do, so the table is bounded by the global cap.
//!
//! A connection from which nothing arrives for the idle timeout (`tcp-idle-timeout`) is
//! closed, so that idle clients cannot hold the permits for ever. WebSocket clients are never
//! idle that long: they answer the hub's ping every 10 s.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tracing::{debug, warn};

use crate::server::per_ip::{PerIpLimit, PerIpPermit};

/// The connection caps shared by all HTTP listeners.
#[derive(Debug)]
pub struct ConnectionCaps {
    /// One permit per connection, all sources together.
    permits: Arc<Semaphore>,
    /// Connections held per source (the same counter the STUN/TURN stream listeners use).
    per_source: Arc<PerIpLimit>,
}

impl ConnectionCaps {
    /// At most `total` connections, and `per_source` of one source.
    pub fn new(total: usize, per_source: usize) -> Arc<ConnectionCaps> {
        Arc::new(ConnectionCaps {
            permits: Arc::new(Semaphore::new(total)),
            per_source: PerIpLimit::new(per_source.max(1)),
        })
    }
}

/// A listener whose connections hold places of shared [`ConnectionCaps`].
#[derive(Debug)]
pub struct LimitedListener {
    inner: TcpListener,
    caps: Arc<ConnectionCaps>,
    idle_timeout: Duration,
}

impl LimitedListener {
    /// Wraps `inner`; connections beyond the total cap wait to be accepted, those beyond their
    /// source's share are closed at once, and a connection silent for `idle_timeout` is
    /// closed.
    pub fn new(inner: TcpListener, caps: Arc<ConnectionCaps>, idle_timeout: Duration) -> Self {
        LimitedListener {
            inner,
            caps,
            idle_timeout,
        }
    }

    /// The next connection within the caps, and its client's address.
    pub async fn accept(&mut self) -> (LimitedStream, SocketAddr) {
        let permit = match self.caps.permits.clone().acquire_owned().await {
            Ok(permit) => permit,
            // The semaphore is never closed, so `acquire_owned` only fails if it were.
            Err(_) => std::future::pending::<OwnedSemaphorePermit>().await,
        };
        let (stream, addr, slot) = self.accept_within_share().await;
        // Signaling frames are latency-sensitive and small: no Nagle delay.
        let _ = stream.set_nodelay(true);
        let idle = Box::pin(tokio::time::sleep(self.idle_timeout));
        let stream = LimitedStream {
            stream,
            _permit: permit,
            _slot: slot,
            idle,
            idle_timeout: self.idle_timeout,
        };
        (stream, addr)
    }

    /// Accepts until a connection from a source within its share arrives; the others are
    /// closed at once (dropped).
    async fn accept_within_share(&mut self) -> (TcpStream, SocketAddr, PerIpPermit) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => match self.caps.per_source.try_acquire(addr.ip()) {
                    Some(slot) => return (stream, addr, slot),
                    // Debug only: the source decides how often this happens.
                    None => {
                        debug!(remote = %addr, "HTTP connection over the per-source cap closed")
                    }
                },
                Err(e) => {
                    // Out of descriptors and the like: pause rather than spin.
                    warn!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// An accepted connection and its permit.
#[derive(Debug)]
pub struct LimitedStream {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
    _slot: PerIpPermit,
    /// Fires when the client has been silent for `idle_timeout`.
    idle: Pin<Box<Sleep>>,
    idle_timeout: Duration,
}

impl LimitedStream {
    /// The local address of the connection.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.stream.local_addr()
    }
}

impl AsyncRead for LimitedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(result) => {
                let deadline = Instant::now() + this.idle_timeout;
                this.idle.as_mut().reset(deadline);
                Poll::Ready(result)
            }
            Poll::Pending => match this.idle.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(io::ErrorKind::TimedOut.into())),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl AsyncWrite for LimitedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
