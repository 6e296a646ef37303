//! Outgoing datagrams of one batch, gathered per socket and sent with one `sendmmsg` per run
//! of datagrams that leave from the same socket (see [`net::send_batch`]).
//!
//! An `Outbox` lives on the stack for one received batch and borrows the datagrams from the
//! task's buffers: nothing is copied or allocated per datagram.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use net::{Batching, Transmit, MAX_BATCH};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tracing::trace;

/// Datagrams waiting to leave from one socket.
#[derive(Debug)]
pub struct Outbox<'a> {
    socket: Option<Arc<UdpSocket>>,
    items: [Transmit<'a>; MAX_BATCH],
    len: usize,
    batching: Batching,
    /// Datagrams lost to send errors so far.
    unsent: usize,
}

impl<'a> Outbox<'a> {
    /// An empty outbox.
    pub fn new(batching: Batching) -> Self {
        Outbox {
            socket: None,
            items: [Transmit {
                data: &[],
                to: SocketAddr::from(([0, 0, 0, 0], 0)),
            }; MAX_BATCH],
            len: 0,
            batching,
            unsent: 0,
        }
    }

    /// Queues `data` for `to` from `socket`; sends what is queued first when it is for
    /// another socket, or when the outbox is full.
    pub async fn push(&mut self, socket: &Arc<UdpSocket>, data: &'a [u8], to: SocketAddr) {
        let same = self.socket.as_ref().is_some_and(|s| Arc::ptr_eq(s, socket));
        if !same || self.len == MAX_BATCH {
            self.flush().await;
        }
        if !same {
            self.socket = Some(socket.clone());
        }
        self.items[self.len] = Transmit { data, to };
        self.len += 1;
    }

    /// Sends everything queued.
    pub async fn flush(&mut self) {
        if self.len > 0 {
            if let Some(socket) = &self.socket {
                self.unsent += send_all(socket, &self.items[..self.len], self.batching).await;
            }
        }
        self.len = 0;
    }

    /// Datagrams lost to send errors so far (for the drop counters).
    pub fn unsent(&self) -> usize {
        self.unsent
    }
}

/// Sends `items` from `socket`, waiting for room in the send buffer when it is full (as
/// `send_to().await` would). Another error ends the send: returns how many were not sent.
pub async fn send_all(socket: &UdpSocket, items: &[Transmit<'_>], batching: Batching) -> usize {
    let mut sent = 0;
    while sent < items.len() {
        let rest = &items[sent..];
        match socket.try_io(Interest::WRITABLE, || {
            net::send_batch(socket, rest, batching)
        }) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if socket.writable().await.is_err() {
                    return items.len() - sent;
                }
            }
            Err(e) => {
                trace!(error = %e, "send failed");
                return items.len() - sent;
            }
        }
    }
    0
}
