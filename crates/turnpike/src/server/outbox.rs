//! Outgoing datagrams of one batch, gathered per socket and sent with one `sendmmsg` per run
//! of datagrams that leave from the same socket (see [`net::send_batch`]).
//!
//! An `Outbox` lives on the stack for one received batch and borrows the datagrams from the
//! task's buffers: nothing is copied or allocated per datagram.
//!
//! Datagrams leave from a listener socket (answers to clients; a full send buffer is waited
//! out, as `send_to().await` would) or from a relay socket (client data to peers). Relay
//! sockets belong to the worker's relay loop, not to tokio, so a full send buffer cannot be
//! waited for there: those datagrams are counted ([`Outbox::full`]) and dropped, as the
//! kernel drops datagrams arriving at a full receive queue.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use net::{Batching, Transmit, MAX_BATCH};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tracing::trace;

use crate::server::relay_registry::RelaySocket;

/// A socket datagrams leave from, borrowed for one [`Outbox::push`].
#[derive(Debug, Clone, Copy)]
pub enum Via<'s> {
    /// A listener socket (to a client).
    Listener(&'s Arc<UdpSocket>),
    /// A relay socket (to a peer).
    Relay(&'s RelaySocket),
}

/// The socket of the datagrams queued.
#[derive(Debug)]
enum Held {
    Listener(Arc<UdpSocket>),
    Relay(RelaySocket),
}

impl Held {
    fn is(&self, via: Via<'_>) -> bool {
        match (self, via) {
            (Held::Listener(held), Via::Listener(s)) => Arc::ptr_eq(held, s),
            (Held::Relay(held), Via::Relay(s)) => Arc::ptr_eq(held, s),
            _ => false,
        }
    }
}

impl From<Via<'_>> for Held {
    fn from(via: Via<'_>) -> Self {
        match via {
            Via::Listener(s) => Held::Listener(s.clone()),
            Via::Relay(s) => Held::Relay(s.clone()),
        }
    }
}

/// Datagrams waiting to leave from one socket.
#[derive(Debug)]
pub struct Outbox<'a> {
    socket: Option<Held>,
    items: [Transmit<'a>; MAX_BATCH],
    len: usize,
    batching: Batching,
    /// Datagrams lost to send errors so far.
    unsent: usize,
    /// Datagrams that found a relay socket's send buffer full so far.
    full: usize,
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
            full: 0,
        }
    }

    /// Queues `data` for `to` from `socket`; sends what is queued first when it is for
    /// another socket, or when the outbox is full.
    pub async fn push(&mut self, socket: Via<'_>, data: &'a [u8], to: SocketAddr) {
        let same = self.socket.as_ref().is_some_and(|s| s.is(socket));
        if !same || self.len == MAX_BATCH {
            self.flush().await;
        }
        if !same {
            self.socket = Some(socket.into());
        }
        self.items[self.len] = Transmit { data, to };
        self.len += 1;
    }

    /// Sends everything queued.
    pub async fn flush(&mut self) {
        let items = &self.items[..self.len];
        match &self.socket {
            _ if items.is_empty() => {}
            Some(Held::Listener(socket)) => {
                self.unsent += send_all(socket, items, self.batching).await;
            }
            Some(Held::Relay(socket)) => match net::send_batch(&**socket, items, self.batching) {
                Ok(n) => self.full += items.len() - n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.full += items.len(),
                Err(e) => {
                    trace!(error = %e, "relay send failed");
                    self.unsent += items.len();
                }
            },
            None => {}
        }
        self.len = 0;
    }

    /// Datagrams lost to send errors so far (for the drop counters).
    pub fn unsent(&self) -> usize {
        self.unsent
    }

    /// Datagrams dropped so far because a relay socket's send buffer was full (for the drop
    /// counters).
    pub fn full(&self) -> usize {
        self.full
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
