//! An epoll set (mio's [`Poll`]) that a tokio task can wait on: many sockets, registered with
//! the set edge-triggered, and one readiness source for the runtime. One wake-up of the
//! task then returns every ready socket at once (one `epoll_wait`), where a task or a tokio
//! registration per socket would mean one wake-up per socket. A TURN worker's loop uses it for
//! all its UDP sockets: its listeners and its relay sockets.

use std::io;
use std::time::Duration;

use mio::{Events, Poll, Registry};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// A mio [`Poll`] registered with the current tokio runtime.
#[derive(Debug)]
pub struct PollSet {
    inner: AsyncFd<Poll>,
}

impl PollSet {
    /// A new, empty set. Must be called on a tokio runtime (with I/O enabled).
    pub fn new() -> io::Result<Self> {
        let poll = Poll::new()?;
        // SAFETY: `register_with_interest` asks that the descriptor stay open and the same
        // for the life of the `AsyncFd`. It is the epoll descriptor owned by `poll`, which
        // the `AsyncFd` owns and never hands out by value (no `into_inner`, and `get_mut`
        // gives `&mut Poll`, which cannot replace or close its descriptor), and
        // `Poll::as_raw_fd` always returns that one descriptor.
        #[allow(unsafe_code)]
        let inner = unsafe { AsyncFd::register_with_interest(poll, Interest::READABLE) }?;
        Ok(PollSet { inner })
    }

    /// A handle that registers sources with this set (it may be moved elsewhere, as long as
    /// it is used on this set's thread of control or synchronised with it).
    pub fn registry(&self) -> io::Result<Registry> {
        self.inner.get_ref().registry().try_clone()
    }

    /// Waits until a registered source is ready, then fills `events` with the ready ones.
    /// Readiness is edge-triggered: a source reported here is not reported again until it
    /// becomes ready anew, so the caller must read it until `WouldBlock` (or remember it).
    pub async fn wait(&mut self, events: &mut Events) -> io::Result<()> {
        loop {
            let mut guard = self.inner.readable_mut().await?;
            poll_now(guard.get_inner_mut(), events)?;
            // Fewer events than room for them: the set has nothing else ready now. A source
            // made ready after the poll raises the set's readiness again, which tokio keeps
            // (clearing removes only the readiness this guard saw).
            if events.iter().count() < events.capacity() {
                guard.clear_ready();
            }
            if !events.is_empty() {
                return Ok(());
            }
        }
    }

    /// Fills `events` with the sources ready now, without waiting.
    pub fn poll_now(&mut self, events: &mut Events) -> io::Result<()> {
        poll_now(self.inner.get_mut(), events)
    }
}

fn poll_now(poll: &mut Poll, events: &mut Events) -> io::Result<()> {
    loop {
        match poll.poll(events, Some(Duration::ZERO)) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::unix::SourceFd;
    use mio::Token;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    #[tokio::test]
    async fn one_wait_reports_every_ready_socket_once() {
        let mut set = PollSet::new().unwrap();
        let registry = set.registry().unwrap();
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let sockets: Vec<UdpSocket> = (0..5)
            .map(|_| {
                let s = UdpSocket::bind("127.0.0.1:0").unwrap();
                s.set_nonblocking(true).unwrap();
                s
            })
            .collect();
        for (i, s) in sockets.iter().enumerate() {
            registry
                .register(
                    &mut SourceFd(&s.as_raw_fd()),
                    Token(i),
                    mio::Interest::READABLE,
                )
                .unwrap();
        }
        // Sockets 1 and 3 get a datagram each.
        for i in [1, 3] {
            sender
                .send_to(b"x", sockets[i].local_addr().unwrap())
                .unwrap();
        }
        let mut events = Events::with_capacity(16);
        tokio::time::timeout(Duration::from_secs(10), set.wait(&mut events))
            .await
            .expect("the set became ready")
            .unwrap();
        let mut tokens: Vec<usize> = events.iter().map(|e| e.token().0).collect();
        tokens.sort_unstable();
        assert_eq!(tokens, [1, 3]);
        // Not read, but edge-triggered: not reported again until new data comes.
        set.poll_now(&mut events).unwrap();
        assert!(events.is_empty());
        sender
            .send_to(b"y", sockets[3].local_addr().unwrap())
            .unwrap();
        tokio::time::timeout(Duration::from_secs(10), set.wait(&mut events))
            .await
            .expect("the set became ready again")
            .unwrap();
        let tokens: Vec<usize> = events.iter().map(|e| e.token().0).collect();
        assert_eq!(tokens, [3]);
    }
}
