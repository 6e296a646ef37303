//! The run-loop contract of Turnpike's protocol cores.
//!
//! Every protocol core (the TURN server, the Binding server, the signaling hub, the ICE agent,
//! the TURN client, a STUN transaction, NAT discovery) is a state machine without sockets,
//! clocks or randomness of its own. Its driver — one per socket owner: a server worker, the
//! WebSocket tasks, a client command — runs the same loop around each of them, and [`Core`]
//! is that loop's contract, so that the cores read alike and a driver written for one shape
//! works for all:
//!
//! ```text
//! loop {
//!     wait for: an input (a datagram, a frame) or the core's poll_timeout()
//!     now = clock
//!     handled = core.handle_input(now, input)   or   core.handle_timeout(now)
//!     act on `handled` (the core's answer to this input, when it gives one at once)
//!     while let Some(t) = core.poll_transmit(now) { send t }
//!     while let Some(e) = core.poll_event() { act on e }
//! }
//! ```
//!
//! - `now` comes from the driver, always: a core never reads a clock, so tests run on a
//!   fake one and a core's behaviour is a function of its inputs.
//! - [`Core::handle_input`] may answer at once ([`Core::Handled`]): the TURN server writes its
//!   answer into a buffer the driver passed in and says where it goes, so that the hot path
//!   copies nothing; a core with nothing to say at once returns `()`, `bool` ("it was mine"),
//!   or what the input turned out to be (application data, for the clients).
//! - Everything else comes out through the two queues, drained after every call: datagrams or
//!   frames to send ([`Core::poll_transmit`]) and what the driver must know or do
//!   ([`Core::poll_event`]: a report, a relay socket to open, a permission that failed).
//!   A core never calls into I/O; when it needs something from the outside (a socket bound),
//!   it asks through an event and is told the result through its input.
//! - [`Core::poll_timeout`] is when to call [`Core::handle_timeout`] next; `None`: only an
//!   input can make the core do anything. A time in the past means now.
//!
//! [`drain`] is the inner part of the loop, shared by the drivers.

use std::net::SocketAddr;
use std::time::Instant;

/// The usual input of a core: a datagram (or a whole message cut from a stream) from `from`,
/// received on `local` — `()` for a core that has one socket, the socket's address or name for
/// one that has several.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram<'a, L = ()> {
    /// The socket it arrived on.
    pub local: L,
    /// Its source.
    pub from: SocketAddr,
    /// Its bytes.
    pub bytes: &'a [u8],
}

impl<'a> Datagram<'a> {
    /// A datagram from `from` to a core with one socket.
    pub fn new(from: SocketAddr, bytes: &'a [u8]) -> Self {
        Datagram {
            local: (),
            from,
            bytes,
        }
    }
}

/// One protocol core, as its driver runs it (see the crate docs for the loop).
pub trait Core {
    /// One input: a datagram or frame with where it came from (and, for a core that answers
    /// in place, the buffer to answer into).
    type Input<'a>
    where
        Self: 'a;
    /// What the core says about one input at once.
    type Handled<'a>
    where
        Self: 'a;
    /// A datagram or frame to send, possibly borrowed from the core until the next call.
    type Transmit<'a>
    where
        Self: 'a;
    /// Something the driver must know or do.
    type Event;

    /// Feeds one input received at `now`. (`Self: 'a` only makes `'a` a named lifetime in
    /// every implementation alike, whether or not its input borrows.)
    fn handle_input<'a>(&mut self, now: Instant, input: Self::Input<'a>) -> Self::Handled<'a>
    where
        Self: 'a;

    /// Advances the core's clock to `now`: retransmissions, expiries, keepalives.
    fn handle_timeout(&mut self, now: Instant);

    /// When to call [`Core::handle_timeout`] next; `None` when no timer is running.
    fn poll_timeout(&self) -> Option<Instant>;

    /// The next datagram or frame to send at `now`. Call until `None` after every input and
    /// timeout.
    fn poll_transmit(&mut self, now: Instant) -> Option<Self::Transmit<'_>>;

    /// The next event. Call until `None` after every input and timeout.
    fn poll_event(&mut self) -> Option<Self::Event>;
}

/// Drains `core` after an input or a timeout at `now`: every transmit to `transmit`, then every
/// event to `event`, in the order the core queued them.
pub fn drain<C: Core>(
    core: &mut C,
    now: Instant,
    mut transmit: impl FnMut(C::Transmit<'_>),
    mut event: impl FnMut(C::Event),
) {
    while let Some(t) = core.poll_transmit(now) {
        transmit(t);
    }
    while let Some(e) = core.poll_event() {
        event(e);
    }
}

/// The earlier of the core's timer and `limit`: how long a driver may wait for input.
pub fn wake_at<C: Core>(core: &C, limit: Instant) -> Instant {
    core.poll_timeout().map_or(limit, |at| at.min(limit))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A core that echoes each input once and reports it; a timer 1 s after the last input.
    #[derive(Debug, Default)]
    struct Echo {
        out: Vec<u8>,
        events: Vec<u8>,
        timer: Option<Instant>,
        timeouts: u32,
    }

    impl Core for Echo {
        type Input<'a> = u8;
        type Handled<'a> = bool;
        type Transmit<'a> = u8;
        type Event = u8;

        fn handle_input<'a>(&mut self, now: Instant, input: u8) -> bool
        where
            Self: 'a,
        {
            self.out.push(input);
            self.events.push(input);
            self.timer = Some(now + Duration::from_secs(1));
            true
        }

        fn handle_timeout(&mut self, now: Instant) {
            if self.timer.is_some_and(|t| t <= now) {
                self.timer = None;
                self.timeouts += 1;
            }
        }

        fn poll_timeout(&self) -> Option<Instant> {
            self.timer
        }

        fn poll_transmit(&mut self, _: Instant) -> Option<u8> {
            (!self.out.is_empty()).then(|| self.out.remove(0))
        }

        fn poll_event(&mut self) -> Option<u8> {
            (!self.events.is_empty()).then(|| self.events.remove(0))
        }
    }

    #[test]
    fn drain_empties_both_queues_in_order() {
        let now = Instant::now();
        let mut core = Echo::default();
        assert!(core.handle_input(now, 1));
        assert!(core.handle_input(now, 2));
        let (mut sent, mut seen) = (Vec::new(), Vec::new());
        drain(&mut core, now, |t| sent.push(t), |e| seen.push(e));
        assert_eq!((sent, seen), (vec![1, 2], vec![1, 2]));
        assert_eq!(core.poll_transmit(now), None);
        assert_eq!(core.poll_event(), None);
    }

    #[test]
    fn wake_at_is_the_earlier_of_the_timer_and_the_limit() {
        let now = Instant::now();
        let mut core = Echo::default();
        let limit = now + Duration::from_secs(5);
        assert_eq!(wake_at(&core, limit), limit, "no timer");
        core.handle_input(now, 0);
        assert_eq!(wake_at(&core, limit), now + Duration::from_secs(1));
        core.handle_timeout(now + Duration::from_secs(1));
        assert_eq!((core.timeouts, core.poll_timeout()), (1, None));
    }
}
