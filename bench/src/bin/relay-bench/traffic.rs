//! The packet engine: many client sockets over one `mio` poll, each a *flow* that sends
//! stamped datagrams and matches the answers — STUN Binding requests to the server, or
//! ChannelData through the relay to the echo peer and back.
//!
//! Every datagram carries a 12-byte stamp (flow, epoch, send time in ns) — in the transaction
//! id of a Binding request, in the first payload bytes of ChannelData — so an answer tells its
//! round-trip time, and loss is counted exactly: a datagram *sent* inside the measuring window
//! counts as delivered if its answer arrives before the end of the drain that follows.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hdrhistogram::Histogram;
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};

use crate::turn_client::CHANNEL;

/// Length of the stamp.
const STAMP: usize = 12;
/// A closed-loop flow that hears nothing for this long starts its window again (the missing
/// datagrams stay counted as lost unless they still arrive).
const LOSS_TIMEOUT: Duration = Duration::from_millis(200);
/// After the window, answers are awaited this long.
const DRAIN: Duration = Duration::from_millis(300);
/// The most datagrams the pacer sends in one go (after a stall it does not try to catch up
/// beyond this).
const MAX_BURST: u64 = 2_000;

/// What a flow sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet {
    /// A 20-byte STUN Binding request.
    Binding,
    /// ChannelData on [`CHANNEL`] with a payload of this many bytes (≥ 12).
    ChannelData(usize),
}

/// How fast.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// Closed loop: each flow keeps this many datagrams in flight, sending one when one
    /// comes back.
    Window(u32),
    /// Open loop: this many datagrams per second in all, round-robin over the flows.
    Rate(f64),
}

/// One client socket and where it sends.
#[derive(Debug)]
pub struct Flow {
    /// The socket.
    pub socket: UdpSocket,
    /// The server (or forwarder) address.
    pub dest: SocketAddr,
}

/// What one run measured, over the window.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Datagrams sent in the window.
    pub sent: u64,
    /// Of those, answered (before the end of the drain).
    pub delivered: u64,
    /// Round-trip times of those, in µs.
    pub rtt_us: Histogram<u64>,
    /// The window.
    pub window: Duration,
    /// Server CPU in the window.
    pub server_cpu: Duration,
    /// This process's CPU (generator + echo peer) in the window.
    pub generator_cpu: Duration,
    /// Busy CPU of the whole machine in the window (all cores).
    pub machine_cpu: Duration,
    /// Sends refused by our own socket (buffer full): not sent, not counted.
    pub send_errors: u64,
}

impl Measured {
    /// Lost, in % of sent.
    pub fn loss_percent(&self) -> f64 {
        if self.sent == 0 {
            return 0.0;
        }
        100.0 * self.sent.saturating_sub(self.delivered) as f64 / self.sent as f64
    }

    /// RTT quantile in ms.
    pub fn rtt_ms(&self, quantile: f64) -> f64 {
        self.rtt_us.value_at_quantile(quantile) as f64 / 1000.0
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct FlowState {
    in_flight: u32,
    epoch: u16,
    last_progress: Option<Instant>,
    last_refill: Option<Instant>,
}

/// The timing of a run.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Traffic before the window (not counted).
    pub warmup: Duration,
    /// The measuring window.
    pub measure: Duration,
}

struct Engine<'a> {
    flows: &'a mut [Flow],
    state: Vec<FlowState>,
    packet: Packet,
    buf: Vec<u8>,
    base: Instant,
    window_ns: (u64, u64),
    sent: u64,
    delivered: u64,
    send_errors: u64,
    rtt_us: Histogram<u64>,
}

impl Engine<'_> {
    fn now_ns(&self, now: Instant) -> u64 {
        now.duration_since(self.base).as_nanos() as u64
    }

    fn in_window(&self, ns: u64) -> bool {
        ns >= self.window_ns.0 && ns < self.window_ns.1
    }

    /// Sends one stamped datagram on flow `index`.
    fn send(&mut self, index: usize, now: Instant) -> bool {
        let ns = self.now_ns(now);
        let epoch = self.state[index].epoch;
        let mut stamp = [0u8; STAMP];
        stamp[..2].copy_from_slice(&(index as u16).to_be_bytes());
        stamp[2..4].copy_from_slice(&epoch.to_be_bytes());
        stamp[4..].copy_from_slice(&ns.to_be_bytes());
        let len = match self.packet {
            Packet::Binding => {
                self.buf[8..20].copy_from_slice(&stamp);
                20
            }
            Packet::ChannelData(payload) => {
                self.buf[4..4 + STAMP].copy_from_slice(&stamp);
                4 + payload
            }
        };
        let flow = &self.flows[index];
        match flow.socket.send_to(&self.buf[..len], flow.dest) {
            Ok(_) => {
                if self.in_window(ns) {
                    self.sent += 1;
                }
                true
            }
            Err(_) => {
                self.send_errors += 1;
                false
            }
        }
    }

    /// An answer: the flow and epoch it was sent with, if it is one of ours.
    fn receive(&mut self, datagram: &[u8], now: Instant) -> Option<(usize, u16)> {
        let stamp = match self.packet {
            Packet::Binding if datagram.len() >= 20 && datagram[..2] == [0x01, 0x01] => {
                &datagram[8..20]
            }
            Packet::ChannelData(_)
                if datagram.len() >= 4 + STAMP && datagram[..2] == CHANNEL.to_be_bytes() =>
            {
                &datagram[4..4 + STAMP]
            }
            _ => return None,
        };
        let index = usize::from(u16::from_be_bytes([stamp[0], stamp[1]]));
        let epoch = u16::from_be_bytes([stamp[2], stamp[3]]);
        let mut ns = [0u8; 8];
        ns.copy_from_slice(&stamp[4..]);
        let sent_ns = u64::from_be_bytes(ns);
        if self.in_window(sent_ns) {
            self.delivered += 1;
            let rtt_us = self.now_ns(now).saturating_sub(sent_ns) / 1000;
            let _ = self.rtt_us.record(rtt_us.max(1));
        }
        (index < self.flows.len()).then_some((index, epoch))
    }
}

/// Runs traffic on `flows` with `pace` for `timing.warmup + timing.measure`, then drains.
/// `server_cpu` reads the server's CPU time (zero if there is no server process to read).
/// With `threads` > 1 the flows are shared out among that many threads, each with its own
/// poll and its share of a paced rate, on one common clock: on a machine whose cores the
/// generator shares with the relay, one thread can be what limits a saturation run.
pub fn run(
    flows: &mut [Flow],
    packet: Packet,
    pace: Pace,
    timing: Timing,
    threads: usize,
    server_cpu: &(dyn Fn() -> Duration + Sync),
) -> anyhow::Result<Measured> {
    let base = Instant::now();
    let total = flows.len();
    let threads = threads.clamp(1, total.max(1));
    if threads == 1 {
        return run_part(flows, packet, pace, timing, base, Some(server_cpu));
    }
    let share = |n: usize| match pace {
        Pace::Rate(rate) => Pace::Rate(rate * n as f64 / total as f64),
        window => window,
    };
    let parts: Vec<anyhow::Result<Measured>> = std::thread::scope(|scope| {
        let handles: Vec<_> = flows
            .chunks_mut(total.div_ceil(threads))
            .enumerate()
            .map(|(i, part)| {
                let pace = share(part.len());
                // The first thread takes the CPU readings for all.
                let probe = (i == 0).then_some(server_cpu);
                scope.spawn(move || run_part(part, packet, pace, timing, base, probe))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a generator thread panicked")))
            })
            .collect()
    });
    let mut parts = parts.into_iter();
    let mut all = parts.next().context("no generator thread")??;
    for part in parts {
        let part = part?;
        all.sent += part.sent;
        all.delivered += part.delivered;
        all.send_errors += part.send_errors;
        all.rtt_us.add(&part.rtt_us)?;
    }
    Ok(all)
}

/// One generator thread's share of [`run`]; it reads the CPU figures when given `probe`.
fn run_part(
    flows: &mut [Flow],
    packet: Packet,
    pace: Pace,
    timing: Timing,
    base: Instant,
    probe: Option<&(dyn Fn() -> Duration + Sync)>,
) -> anyhow::Result<Measured> {
    let mut poll = Poll::new()?;
    for (index, flow) in flows.iter_mut().enumerate() {
        poll.registry()
            .register(&mut flow.socket, Token(index), Interest::READABLE)?;
    }
    let mut buf = vec![0u8; 1500];
    if packet == Packet::Binding {
        buf[..20].copy_from_slice(&[
            0, 1, 0, 0, 0x21, 0x12, 0xA4, 0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ]);
    } else if let Packet::ChannelData(payload) = packet {
        buf[..2].copy_from_slice(&CHANNEL.to_be_bytes());
        buf[2..4].copy_from_slice(&(payload as u16).to_be_bytes());
    }
    let window_start = base + timing.warmup;
    let window_end = window_start + timing.measure;
    let count = flows.len();
    let mut engine = Engine {
        flows,
        state: vec![FlowState::default(); count],
        packet,
        buf,
        base,
        window_ns: (
            timing.warmup.as_nanos() as u64,
            (timing.warmup + timing.measure).as_nanos() as u64,
        ),
        sent: 0,
        delivered: 0,
        send_errors: 0,
        rtt_us: Histogram::new_with_bounds(1, 60_000_000, 3)?,
    };
    let mut events = Events::with_capacity(1024);
    let mut recv = vec![0u8; 2048];
    let mut readings: Option<(Duration, Duration, Duration)> = None;
    let mut finished: Option<(Duration, Duration, Duration)> = None;
    let mut paced_sent = 0u64;
    let mut next_flow = 0usize;
    let mut next_check = base + LOSS_TIMEOUT / 4;
    // Closed loop: fill every window.
    if let Pace::Window(window) = pace {
        for index in 0..count {
            for _ in 0..window {
                if engine.send(index, base) {
                    engine.state[index].in_flight += 1;
                }
            }
            engine.state[index].last_progress = Some(base);
            engine.state[index].last_refill = Some(base);
        }
    }
    loop {
        let now = Instant::now();
        let read = || match probe {
            Some(server_cpu) => (server_cpu(), self_cpu(), crate::servers::machine_busy()),
            None => Default::default(),
        };
        if readings.is_none() && now >= window_start {
            readings = Some(read());
        }
        if finished.is_none() && now >= window_end {
            finished = Some(read());
        }
        if now >= window_end + DRAIN {
            break;
        }
        let sending = now < window_end;
        if let (Pace::Rate(rate), true) = (pace, sending) {
            let due = (rate * now.duration_since(base).as_secs_f64()) as u64;
            let mut burst = due.saturating_sub(paced_sent).min(MAX_BURST);
            paced_sent = paced_sent.max(due.saturating_sub(MAX_BURST));
            while burst > 0 {
                engine.send(next_flow, now);
                next_flow = (next_flow + 1) % count;
                paced_sent += 1;
                burst -= 1;
            }
        }
        let timeout = match pace {
            Pace::Rate(_) => Duration::from_micros(500),
            Pace::Window(_) => Duration::from_millis(5),
        };
        poll.poll(&mut events, Some(timeout))?;
        let now = Instant::now();
        let sending = now < window_end;
        for event in events.iter() {
            let index = event.token().0;
            while let Some(flow) = engine.flows.get(index) {
                let n = match flow.socket.recv_from(&mut recv) {
                    Ok((n, _)) => n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => continue, // an ICMP error reported on this socket
                };
                let Some((flow_index, epoch)) = engine.receive(&recv[..n], now) else {
                    continue;
                };
                if let Pace::Window(_) = pace {
                    let state = &mut engine.state[flow_index];
                    if epoch != state.epoch {
                        continue; // late: its flow already started again
                    }
                    state.in_flight = state.in_flight.saturating_sub(1);
                    state.last_progress = Some(now);
                    if sending && engine.send(flow_index, now) {
                        engine.state[flow_index].in_flight += 1;
                    }
                }
            }
        }
        if let (Pace::Window(window), true) = (pace, sending && now >= next_check) {
            next_check = now + LOSS_TIMEOUT / 4;
            for index in 0..count {
                let state = engine.state[index];
                let older =
                    |t: Option<Instant>| t.is_some_and(|t| now.duration_since(t) >= LOSS_TIMEOUT);
                // Silent for the loss timeout, or short of its window (something was lost)
                // and not refilled for as long: start again with a new epoch, so that late
                // answers to the old one are counted but do not widen the window.
                let restart = older(state.last_refill)
                    && (older(state.last_progress) || state.in_flight < window);
                if restart {
                    let state = &mut engine.state[index];
                    state.epoch = state.epoch.wrapping_add(1);
                    state.in_flight = 0;
                    state.last_progress = Some(now);
                    state.last_refill = Some(now);
                    for _ in 0..window {
                        if engine.send(index, now) {
                            engine.state[index].in_flight += 1;
                        }
                    }
                }
            }
        }
    }
    for flow in engine.flows.iter_mut() {
        poll.registry().deregister(&mut flow.socket)?;
    }
    let (start, end) = match (readings, finished) {
        (Some(s), Some(e)) => (s, e),
        _ => anyhow::bail!("the run ended before its window"),
    };
    Ok(Measured {
        sent: engine.sent,
        delivered: engine.delivered,
        rtt_us: engine.rtt_us,
        window: timing.measure,
        server_cpu: end.0.saturating_sub(start.0),
        generator_cpu: end.1.saturating_sub(start.1),
        machine_cpu: end.2.saturating_sub(start.2),
        send_errors: engine.send_errors,
    })
}

/// This process's CPU time so far (all threads: generator and echo peer).
pub fn self_cpu() -> Duration {
    crate::servers::cpu_time(std::process::id()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::echo::EchoPeer;

    fn flows(count: usize, dest: SocketAddr) -> Vec<Flow> {
        (0..count)
            .map(|_| {
                let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                socket.set_nonblocking(true).unwrap();
                Flow {
                    socket: UdpSocket::from_std(socket),
                    dest,
                }
            })
            .collect()
    }

    const SHORT: Timing = Timing {
        warmup: Duration::from_millis(50),
        measure: Duration::from_millis(200),
    };

    // Straight to an echo peer, ChannelData comes back as sent: every datagram sent in the
    // window is delivered (loopback, light load), each with a round-trip time.
    #[test]
    fn closed_loop_counts_every_echo_and_its_rtt() {
        let echo = EchoPeer::start().unwrap();
        let mut f = flows(4, echo.addr);
        let m = run(
            &mut f,
            Packet::ChannelData(100),
            Pace::Window(2),
            SHORT,
            1,
            &|| Duration::ZERO,
        )
        .unwrap();
        assert!(m.sent > 100, "{m:?}");
        assert_eq!(m.delivered, m.sent, "{m:?}");
        assert_eq!(m.loss_percent(), 0.0);
        assert_eq!(m.rtt_us.len(), m.delivered);
        assert!(m.rtt_ms(0.99) < 200.0);
    }

    // The echo peer sends a Binding *request* back, which is not an answer: everything sent in
    // the window counts as lost, and the paced sender keeps its rate without answers.
    #[test]
    fn datagrams_without_an_answer_are_lost() {
        let echo = EchoPeer::start().unwrap();
        let mut f = flows(2, echo.addr);
        let m = run(
            &mut f,
            Packet::Binding,
            Pace::Rate(1000.0),
            SHORT,
            1,
            &|| Duration::ZERO,
        )
        .unwrap();
        assert!((100..=300).contains(&m.sent), "{m:?}");
        assert_eq!(m.delivered, 0);
        assert_eq!(m.loss_percent(), 100.0);
    }

    // Two threads share the flows and the paced rate: the sums are those of one run, and every
    // echo is matched by the thread whose socket it came back to.
    #[test]
    fn threads_share_the_flows_and_the_rate() {
        let echo = EchoPeer::start().unwrap();
        let mut f = flows(5, echo.addr);
        let m = run(
            &mut f,
            Packet::ChannelData(100),
            Pace::Rate(2000.0),
            SHORT,
            2,
            &|| Duration::ZERO,
        )
        .unwrap();
        assert!((200..=600).contains(&m.sent), "{m:?}");
        assert_eq!(m.delivered, m.sent, "{m:?}");
        assert_eq!(m.rtt_us.len(), m.delivered);
    }
}
