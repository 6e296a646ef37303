//! Many TURN sessions at once over one `mio` poll: setting up allocations (with a channel, or
//! idle) for the other workloads, and the Allocate/s workload (allocate, then free, on a fresh
//! socket each time).

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};

use crate::turn_client::{Credentials, Goal, Session, Step};

/// How often unanswered requests are checked for retransmission.
const TICK: Duration = Duration::from_millis(20);

/// How many sessions to run.
#[derive(Debug, Clone, Copy)]
pub enum Plan {
    /// Exactly this many, keeping each socket once its session is done.
    Count(usize),
    /// As many as fit in `warmup + measure`; sockets are closed when done, and completions
    /// are counted in the measuring window only.
    Churn {
        /// Not counted.
        warmup: Duration,
        /// Counted.
        measure: Duration,
    },
}

/// What [`run`] did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The sockets of finished sessions, with their relayed address (`Plan::Count` only).
    pub kept: Vec<(UdpSocket, SocketAddr)>,
    /// Sessions finished successfully (in the window, for `Plan::Churn`).
    pub completed: u64,
    /// Sessions finished successfully over the whole run.
    pub total_completed: u64,
    /// Sessions that failed, by error code (0: no answer).
    pub failed: BTreeMap<u16, u64>,
    /// Length of the measuring window (`Plan::Churn`) or of the whole run.
    pub elapsed: Duration,
}

impl Outcome {
    /// Failed sessions in all.
    pub fn failures(&self) -> u64 {
        self.failed.values().sum()
    }
}

struct Slot {
    socket: UdpSocket,
    session: Session,
}

/// Runs `plan` against `server`, at most `concurrency` sessions in flight, each with `goal`.
/// Gives up (with what it has) at `deadline` after the start. Client sockets bind `local`
/// (`Plan::Churn` cycles through 127.0.0.1–4 instead).
pub fn run(
    local: Ipv4Addr,
    server: SocketAddr,
    credentials: &Credentials,
    goal: Goal,
    plan: Plan,
    concurrency: usize,
    deadline: Duration,
) -> anyhow::Result<Outcome> {
    let mut events = Events::with_capacity(1024);
    let mut out = vec![0u8; 1500];
    let mut buf = vec![0u8; 1500];
    let started = Instant::now();
    let mut table = Table {
        poll: Poll::new()?,
        slots: Vec::new(),
        free: Vec::new(),
        active: 0,
        keep: matches!(plan, Plan::Count(_)),
        window: match plan {
            Plan::Count(_) => (started, started + deadline),
            Plan::Churn { warmup, measure } => (started + warmup, started + warmup + measure),
        },
        outcome: Outcome::default(),
    };
    let total = match plan {
        Plan::Count(n) => n,
        Plan::Churn { .. } => usize::MAX,
    };
    // Churn: a new session must not come from the 5-tuple of one just freed (coturn keeps a
    // freed allocation about a second and answers 437 to a new Allocate from it).
    let mut addresses = matches!(plan, Plan::Churn { .. }).then(AddressCycle::default);
    let mut launched = 0usize;
    let mut next_tick = started + TICK;
    let mut transaction = 0u64;
    loop {
        let now = Instant::now();
        let stop_launching = now >= table.window.1 || now >= started + deadline;
        // Top up.
        while table.active < concurrency && launched < total && !stop_launching {
            let std_socket = match &mut addresses {
                Some(cycle) => cycle.bind()?,
                None => std::net::UdpSocket::bind((local, 0))
                    .context("binding a client socket (raise the open-files limit?)")?,
            };
            std_socket.set_nonblocking(true)?;
            let socket = UdpSocket::from_std(std_socket);
            transaction += 1;
            let (session, len) = Session::start(goal, transaction, now, &mut out);
            let _ = socket.send_to(&out[..len], server);
            table.insert(Slot { socket, session })?;
            launched += 1;
        }
        if table.active == 0 && (launched >= total || stop_launching) {
            break;
        }
        let wait = next_tick.saturating_duration_since(now);
        table.poll.poll(&mut events, Some(wait))?;
        let now = Instant::now();
        for event in events.iter() {
            let index = event.token().0;
            let Some(Some(slot)) = table.slots.get_mut(index) else {
                continue;
            };
            loop {
                match slot.socket.recv_from(&mut buf) {
                    Ok((n, from)) if from == server => {
                        if let Some(len) =
                            slot.session.handle(credentials, &buf[..n], now, &mut out)
                        {
                            let _ = slot.socket.send_to(&out[..len], server);
                        }
                    }
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => break, // ICMP errors surface here; the retransmission handles them
                }
            }
            table.finish_if_done(index, now)?;
        }
        if now >= next_tick {
            next_tick = now + TICK;
            for index in 0..table.slots.len() {
                if let Some(slot) = table.slots[index].as_mut() {
                    if let Some(len) = slot.session.poll_retransmit(credentials, now, &mut out) {
                        let _ = slot.socket.send_to(&out[..len], server);
                    }
                }
                table.finish_if_done(index, now)?;
            }
            if now >= started + deadline + Duration::from_secs(5) {
                bail!("sessions still unfinished {deadline:?} after the start");
            }
        }
    }
    let mut outcome = table.outcome;
    outcome.elapsed = match plan {
        Plan::Count(_) => started.elapsed(),
        Plan::Churn { measure, .. } => measure,
    };
    Ok(outcome)
}

/// The sessions in flight, indexed by their poll token, and what finished ones added up to.
struct Table {
    poll: Poll,
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    active: usize,
    /// Keep the sockets of finished sessions (`Plan::Count`).
    keep: bool,
    /// Completions are counted in this window only (unless kept).
    window: (Instant, Instant),
    outcome: Outcome,
}

impl Table {
    fn insert(&mut self, mut slot: Slot) -> anyhow::Result<()> {
        let index = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        self.poll
            .registry()
            .register(&mut slot.socket, Token(index), Interest::READABLE)?;
        self.slots[index] = Some(slot);
        self.active += 1;
        Ok(())
    }

    /// Takes the session at `index` out if it finished, and counts it.
    fn finish_if_done(&mut self, index: usize, now: Instant) -> anyhow::Result<()> {
        if !self.slots[index]
            .as_ref()
            .is_some_and(|slot| slot.session.finished())
        {
            return Ok(());
        }
        let Some(mut slot) = self.slots[index].take() else {
            return Ok(());
        };
        self.free.push(index);
        self.active -= 1;
        self.poll.registry().deregister(&mut slot.socket)?;
        let counted = self.keep || (now >= self.window.0 && now < self.window.1);
        let outcome = &mut self.outcome;
        match slot.session.step() {
            Step::Done => {
                outcome.total_completed += 1;
                if counted {
                    outcome.completed += 1;
                }
                if let (true, Some(relayed)) = (self.keep, slot.session.relayed) {
                    outcome.kept.push((slot.socket, relayed));
                }
            }
            _ if counted => {
                *outcome
                    .failed
                    .entry(slot.session.error.unwrap_or(0))
                    .or_default() += 1;
            }
            _ => {}
        }
        Ok(())
    }
}

/// Client addresses taken in turn: ports 33000–60999 on 127.0.0.1–127.0.0.4, so that one
/// comes back only after 112,000 others (over 5 s at 20,000 sessions/s).
#[derive(Debug, Default)]
struct AddressCycle {
    next: u32,
}

impl AddressCycle {
    const FIRST_PORT: u32 = 33_000;
    const PORTS: u32 = 28_000;
    const HOSTS: u32 = 4;

    /// Binds the next free address of the cycle.
    fn bind(&mut self) -> anyhow::Result<std::net::UdpSocket> {
        for _ in 0..1000 {
            let n = self.next;
            self.next = (self.next + 1) % (Self::PORTS * Self::HOSTS);
            let host = Ipv4Addr::new(127, 0, 0, (1 + n % Self::HOSTS) as u8);
            let port = (Self::FIRST_PORT + n / Self::HOSTS) as u16;
            if let Ok(socket) = std::net::UdpSocket::bind((host, port)) {
                return Ok(socket);
            }
        }
        bail!("no client address free in 1000 tries")
    }
}
