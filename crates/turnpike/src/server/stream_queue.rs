//! Peer datagrams waiting to be written to one TCP/TLS client, bounded in bytes as well as in
//! datagrams: a client that does not read costs the server at most [`MAX_QUEUED_BYTES`] here
//! (plus the capped kernel send buffer), and what does not fit is dropped and counted, as a
//! full UDP socket buffer would drop it, instead of blocking the worker loop.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

/// Datagrams one connection's queue holds at most.
const MAX_QUEUED: usize = 256;
/// Bytes one connection's queue holds at most: about 100 ms of a 10 Mbit/s stream, on top of
/// the kernel send buffer (see `stream_listener`).
pub const MAX_QUEUED_BYTES: usize = 128 * 1024;

/// What the two ends share.
#[derive(Debug, Default)]
struct Budget {
    queued: AtomicUsize,
    dropped: AtomicU64,
}

/// The worker loop's end: queues without waiting.
#[derive(Debug, Clone)]
pub struct StreamSender {
    tx: mpsc::Sender<Vec<u8>>,
    budget: Arc<Budget>,
}

/// The connection's end.
#[derive(Debug)]
pub struct StreamReceiver {
    rx: mpsc::Receiver<Vec<u8>>,
    budget: Arc<Budget>,
}

/// A new queue.
pub fn stream_queue() -> (StreamSender, StreamReceiver) {
    let (tx, rx) = mpsc::channel(MAX_QUEUED);
    let budget = Arc::new(Budget::default());
    (
        StreamSender {
            tx,
            budget: budget.clone(),
        },
        StreamReceiver { rx, budget },
    )
}

impl StreamSender {
    /// Queues `data`, or drops and counts it when the queue is full (in bytes or datagrams)
    /// or the connection is gone; true when queued.
    pub fn try_send(&self, data: Vec<u8>) -> bool {
        let len = data.len();
        let before = self.budget.queued.fetch_add(len, Ordering::Relaxed);
        if before + len > MAX_QUEUED_BYTES || self.tx.try_send(data).is_err() {
            self.budget.queued.fetch_sub(len, Ordering::Relaxed);
            self.budget.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        true
    }
}

impl StreamReceiver {
    /// The next datagram; `None` once every sender is gone.
    pub async fn recv(&mut self) -> Option<Vec<u8>> {
        let data = self.rx.recv().await?;
        self.budget.queued.fetch_sub(data.len(), Ordering::Relaxed);
        Some(data)
    }

    /// Datagrams dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.budget.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounded_in_bytes_and_counts_drops() {
        let (tx, mut rx) = stream_queue();
        let datagram = vec![0u8; 1200];
        let fits = MAX_QUEUED_BYTES / 1200;
        let queued = (0..fits + 10)
            .filter(|_| tx.try_send(datagram.clone()))
            .count();
        assert_eq!(queued, fits);
        assert_eq!(rx.dropped(), 10);
        assert_eq!(rx.recv().await.map(|d| d.len()), Some(1200));
        assert!(tx.try_send(datagram), "room again after one was taken");
    }

    #[tokio::test]
    async fn bounded_in_datagrams() {
        let (tx, rx) = stream_queue();
        let queued = (0..MAX_QUEUED + 5).filter(|_| tx.try_send(vec![1])).count();
        assert_eq!(queued, MAX_QUEUED);
        assert_eq!(rx.dropped(), 5);
    }
}
