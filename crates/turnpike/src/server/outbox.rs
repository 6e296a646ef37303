//! Outgoing datagrams of one batch, gathered per socket and sent with one `sendmmsg` per run
//! of datagrams that leave from the same socket (see [`net::send_batch`]).
//!
//! An `Outbox` lives on the stack for one received batch and borrows the datagrams from the
//! worker loop's buffers: nothing is copied or allocated per datagram.
//!
//! Datagrams leave from a listener socket (answers to clients) or from a relay socket (client
//! data to peers). Both belong to the worker's loop ([`crate::server::worker_loop`]), which
//! serves every other socket of the worker too, so a full send buffer is never waited out
//! (that would stall all of them): what does not fit is dropped and counted
//! ([`Outbox::full`]), as the kernel drops datagrams arriving at a full receive queue. The
//! 4 MiB buffers make this rare.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;

use net::{Batching, Transmit, MAX_BATCH};
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
    /// Datagrams that found a socket's send buffer full so far.
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
    pub fn push(&mut self, socket: &Arc<UdpSocket>, data: &'a [u8], to: SocketAddr) {
        let same = self.socket.as_ref().is_some_and(|s| Arc::ptr_eq(s, socket));
        if !same || self.len == MAX_BATCH {
            self.flush();
        }
        if !same {
            self.socket = Some(socket.clone());
        }
        self.items[self.len] = Transmit { data, to };
        self.len += 1;
    }

    /// Sends everything queued, without waiting.
    pub fn flush(&mut self) {
        let items = &self.items[..self.len];
        if let Some(socket) = self.socket.as_ref().filter(|_| !items.is_empty()) {
            match net::send_batch(&**socket, items, self.batching) {
                Ok(n) => self.full += items.len() - n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.full += items.len(),
                Err(e) => {
                    trace!(error = %e, "send failed");
                    self.unsent += items.len();
                }
            }
        }
        self.len = 0;
    }

    /// Datagrams lost to send errors so far (for the drop counters).
    pub fn unsent(&self) -> usize {
        self.unsent
    }

    /// Datagrams dropped so far because a socket's send buffer was full (for the drop
    /// counters).
    pub fn full(&self) -> usize {
        self.full
    }
}
