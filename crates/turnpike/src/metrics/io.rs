//! The I/O layer's own drop counters, one set per worker: what the TURN core cannot see
//! (a send that found the socket buffer full, a TCP/TLS client's queue that was full).
//!
//! Each counter has a single writer, its worker's thread (every task that sends for a worker
//! runs on that worker's one-thread runtime), so an increment is a relaxed load and store —
//! no read-modify-write, no lock, nothing shared with another worker. The scrape reads them
//! from another thread with a relaxed load: a count a moment old is fine for a metric.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use turn::relay::stats::{answer_index, RESPONSE_CODES};
use turn::relay::DropCause;

/// A counter written by one thread only.
#[derive(Debug, Default)]
struct OwnCounter(AtomicU64);

impl OwnCounter {
    fn add(&self, n: u64) {
        let value = self.0.load(Ordering::Relaxed);
        self.0.store(value.wrapping_add(n), Ordering::Relaxed);
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// One worker's I/O counters: drops, and the Binding requests it answered (the Binding
/// service is stateless and shared by the workers, so its driver counts for it).
#[derive(Debug, Default)]
pub struct IoCounters {
    socket_buffer_full: OwnCounter,
    send_failed: OwnCounter,
    queue_full: OwnCounter,
    binding: [OwnCounter; RESPONSE_CODES.len()],
}

impl IoCounters {
    /// Counts a Binding request and its answer (`None`: dropped).
    pub fn binding_answered(&self, response: Option<&[u8]>) {
        self.binding[answer_index(response)].add(1);
    }

    /// Binding requests by answer (index in [`RESPONSE_CODES`]).
    pub fn binding(&self) -> [u64; RESPONSE_CODES.len()] {
        std::array::from_fn(|i| self.binding[i].get())
    }

    /// `count` datagrams to UDP clients were not sent because of `error`: a full socket buffer
    /// (EAGAIN, ENOBUFS), or another send error.
    pub fn send_failed(&self, error: &io::Error, count: usize) {
        let full = error.kind() == io::ErrorKind::WouldBlock
            || error.raw_os_error() == Some(libc_enobufs());
        let counter = if full {
            &self.socket_buffer_full
        } else {
            &self.send_failed
        };
        counter.add(count as u64);
    }

    /// `count` datagrams were lost on the way out for want of a socket (the allocation or the
    /// connection went meanwhile) or to a hard send error.
    pub fn lost(&self, count: usize) {
        self.send_failed.add(count as u64);
    }

    /// `count` datagrams to UDP clients did not fit in the socket buffer (a short send).
    pub fn buffer_full(&self, count: usize) {
        self.socket_buffer_full.add(count as u64);
    }

    /// A datagram for a TCP/TLS client did not fit in its queue.
    pub fn queue_full(&self) {
        self.queue_full.add(1);
    }

    /// The counts, by the cause they stand for.
    pub fn drops(&self) -> [(DropCause, u64); 3] {
        [
            (DropCause::SocketBufferFull, self.socket_buffer_full.get()),
            (DropCause::SendFailed, self.send_failed.get()),
            (DropCause::QueueFull, self.queue_full.get()),
        ]
    }
}

/// ENOBUFS on Linux (the send queue of the interface is full), spelled out to keep `libc`
/// out of this crate for one constant.
const fn libc_enobufs() -> i32 {
    105
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_errors_are_sorted_by_cause() {
        let io = IoCounters::default();
        io.send_failed(&io::ErrorKind::WouldBlock.into(), 3);
        io.send_failed(&io::Error::from_raw_os_error(105), 2);
        io.send_failed(&io::Error::from_raw_os_error(111), 1); // ECONNREFUSED
        io.buffer_full(4);
        io.queue_full();
        assert_eq!(
            io.drops(),
            [
                (DropCause::SocketBufferFull, 9),
                (DropCause::SendFailed, 1),
                (DropCause::QueueFull, 1)
            ]
        );
    }
}
