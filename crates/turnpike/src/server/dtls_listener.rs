//! DTLS: STUN and TURN over DTLS over UDP (RFC 7350), next to the TLS listener and in its
//! shape: one UDP socket per `dtls-listen` address, one session per client address, each
//! session served on one worker's runtime with that worker's TURN core.
//!
//! Inside a session the application data are STUN messages and ChannelData exactly as over
//! UDP (RFC 7350 §4), handed to the same code the TCP/TLS connections use
//! ([`Connection::handle`]); relayed data from peers comes back through the session's queue
//! (as for TCP/TLS) and leaves encrypted.
//!
//! What a source can make the server hold, and for how long:
//! - **No cookie, no state**: a ClientHello from a source without a session that does not
//!   return the cookie of its address gets a HelloVerifyRequest built without any DTLS state
//!   ([`crate::server::dtls`]); a spoofed source is sent one datagram of 60 bytes, smaller than the
//!   one it sent, nothing is kept, and the cost is two HMACs.
//! - **Count**: at most `max-tcp-connections` sessions per listener; a valid ClientHello
//!   over the cap is dropped and counted.
//! - **Time**: a handshake must finish within `tcp-frame-timeout` of the ClientHello that
//!   returned the cookie, and a session closes after `tcp-idle-timeout` without a datagram
//!   from its client unless it holds an allocation (whose own lifetime then governs).
//! - **Memory**: per session a queue of at most [`INBOX`] datagrams from the client and the
//!   peer-data queue of [`crate::server::stream_queue`], both dropping when full.

use std::collections::hash_map::{Entry, HashMap};
use std::hash::BuildHasher;
use std::io;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;
use stun::framing::{next_frame, Frame};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};
use tracing::{debug, trace};
use turn::relay::{ClientAddr, ClientTransport, FiveTuple};
use turn::{BindingServer, SocketId};

use crate::server::dtls::{
    is_hello_verify_request, ClientHello, DtlsCounters, DtlsDrop, DtlsIdentity,
    PROTOCOL_VERSION_ALERT,
};
use crate::server::stream_listener::{pick, Connection, Deadlines};
use crate::server::stream_queue::StreamReceiver;
use crate::server::worker::WorkerHandle;

/// Datagrams from the client queued for its session; more are dropped, as the kernel would.
const INBOX: usize = 64;
/// The largest datagram read.
const MAX_DATAGRAM: usize = 65_535;

/// What every DTLS listener shares.
#[derive(Debug, Clone)]
pub struct DtlsSettings {
    /// Certificate, key and cookie key.
    pub identity: Arc<DtlsIdentity>,
    /// Idle and handshake deadlines (`tcp-idle-timeout`, `tcp-frame-timeout`).
    pub deadlines: Deadlines,
    /// Sessions per listener at most.
    pub max_sessions: usize,
    /// Counts, for metrics.
    pub counters: Arc<DtlsCounters>,
}

/// Serves DTLS on `socket` until a fatal error.
pub async fn run(
    socket: UdpSocket,
    binding: Arc<BindingServer>,
    settings: DtlsSettings,
    workers: Arc<[WorkerHandle]>,
) -> io::Result<()> {
    let socket = Arc::new(socket);
    let server = socket.local_addr()?;
    // Randomly keyed: which worker a client lands on is not predictable from outside.
    let hasher = std::collections::hash_map::RandomState::new();
    let mut sessions: HashMap<SocketAddr, mpsc::Sender<Vec<u8>>> = HashMap::new();
    let mut buffer = vec![0u8; MAX_DATAGRAM];
    loop {
        let (len, client) = match socket.recv_from(&mut buffer).await {
            Ok(received) => received,
            Err(e) => {
                // ICMP errors of earlier sends surface here on Linux: not fatal.
                trace!(error = %e, "DTLS receive failed");
                continue;
            }
        };
        let datagram = &buffer[..len];
        if let Entry::Occupied(session) = sessions.entry(client) {
            match session.get().try_send(datagram.to_vec()) {
                Ok(()) => continue,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    settings.counters.dropped(DtlsDrop::InboxFull);
                    continue;
                }
                // The session ended: this may be its client starting again.
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    session.remove();
                }
            }
        }
        let Some(hello) = ClientHello::parse(datagram) else {
            settings.counters.dropped(DtlsDrop::NoSession);
            continue;
        };
        if hello.only_dtls_1_0() {
            send_one(&socket, client, &PROTOCOL_VERSION_ALERT, &settings.counters);
            continue;
        }
        if !settings.identity.cookie_is_valid(client, &hello) {
            // RFC 6347 §4.2.1: no valid cookie yet; answer and keep nothing.
            let verify = settings.identity.hello_verify_request(client, &hello);
            send_one(&socket, client, &verify, &settings.counters);
            settings.counters.hello_verify();
            continue;
        }
        if usize::try_from(settings.counters.open()).unwrap_or(usize::MAX) >= settings.max_sessions
        {
            settings.counters.refused();
            debug!(%client, "DTLS session limit reached; ClientHello dropped");
            continue;
        }
        if sessions.len() >= settings.max_sessions {
            sessions.retain(|_, inbox| !inbox.is_closed());
        }
        let now = Instant::now();
        let dtls = settings.identity.server(client, &hello, now.into_std());
        // `dimpl` must not take the listener down with it, whatever a client sends.
        let admitted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            admit(dtls, client, datagram, now)
        }));
        let Ok(Some((dtls, flight))) = admitted else {
            settings.counters.dropped(DtlsDrop::HandshakeRefused);
            continue;
        };
        let Some(worker) = pick(&workers, hasher.hash_one(client)) else {
            continue;
        };
        let (inbox_tx, inbox) = mpsc::channel(INBOX);
        sessions.insert(client, inbox_tx);
        send_flight(&socket, client, &flight, &settings.counters);
        settings.counters.accepted();
        debug!(%client, worker = worker.index, "DTLS session opened");
        let session = Session {
            dtls,
            socket: socket.clone(),
            inbox,
            connection: Connection {
                binding: binding.clone(),
                worker: worker.clone(),
                io: worker.io.clone(),
                id: SocketId::PRIMARY,
                five_tuple: FiveTuple {
                    client: ClientAddr::from(client),
                    server,
                    transport: ClientTransport::Dtls,
                },
                deadlines: settings.deadlines,
            },
            handshake_until: now + settings.deadlines.frame,
            scratch: vec![0; OUTPUT_BUFFER],
            counters: settings.counters.clone(),
        };
        let counters = settings.counters.clone();
        worker.runtime.spawn(async move {
            if let Err(e) = session.serve().await {
                debug!(%client, error = %e, "DTLS session closed");
            }
            counters.closed();
        });
    }
}

/// Gives a ClientHello with a valid cookie to `dtls`, a fresh server for `client`; returns it
/// with the flight it answered with. `None` when `dimpl` refused the ClientHello or answered
/// with anything but its flight (a HelloVerifyRequest would mean that our cookie check and
/// its own disagree: no session then either).
fn admit(
    mut dtls: dimpl::Dtls,
    client: SocketAddr,
    datagram: &[u8],
    now: Instant,
) -> Option<(dimpl::Dtls, Vec<Vec<u8>>)> {
    // The first timer call draws the server's random (`dimpl` needs it before a ClientHello).
    dtls.handle_timeout(now.into_std()).ok()?;
    if let Err(e) = dtls.handle_packet(datagram) {
        trace!(%client, error = %e, "DTLS ClientHello refused");
        return None;
    }
    let mut flight = Vec::new();
    drain(&mut dtls, &mut vec![0; OUTPUT_BUFFER], |output| {
        if let Drained::Packet(packet) = output {
            flight.push(packet.to_vec());
        }
    });
    if flight.first().is_none_or(|p| is_hello_verify_request(p)) {
        debug!(%client, "DTLS ClientHello with our cookie not taken by dimpl");
        return None;
    }
    Some((dtls, flight))
}

/// Sends `flight` to `client`; a full socket buffer drops, as for any UDP answer.
fn send_flight(
    socket: &UdpSocket,
    client: SocketAddr,
    flight: &[Vec<u8>],
    counters: &DtlsCounters,
) {
    for packet in flight {
        send_one(socket, client, packet, counters);
    }
}

/// One output of `dimpl`, after its buffer handling.
enum Drained<'a> {
    /// A datagram to send.
    Packet(&'a [u8]),
    /// Decrypted application data.
    Data(&'a [u8]),
    /// The handshake finished.
    Connected,
    /// The peer closed the session.
    Closed,
    /// The next timer.
    Timeout(std::time::Instant),
}

/// What `drain` starts with; it grows to what `dimpl` asks for.
const OUTPUT_BUFFER: usize = 2_048;

/// Takes every pending output of `dtls`, up to and including its next timer, through
/// `buffer` (the session's own, so that a datagram costs no allocation here).
fn drain(dtls: &mut dimpl::Dtls, buffer: &mut Vec<u8>, mut each: impl FnMut(Drained<'_>)) {
    loop {
        match dtls.poll_output(buffer.as_mut_slice()) {
            dimpl::Output::Packet(packet) => each(Drained::Packet(packet)),
            dimpl::Output::BufferTooSmall { needed } => buffer.resize(needed, 0),
            dimpl::Output::ApplicationData(data) => each(Drained::Data(data)),
            dimpl::Output::Connected => each(Drained::Connected),
            dimpl::Output::CloseNotify => each(Drained::Closed),
            dimpl::Output::Timeout(at) => {
                each(Drained::Timeout(at));
                return;
            }
            _ => {}
        }
    }
}

/// Why a session ended, for the debug log.
fn closed(cause: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, cause.to_owned())
}

/// Turns a `dimpl` error (always fatal to the session) into an I/O error.
fn fatal(error: dimpl::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error.to_string())
}

/// One client's DTLS session.
struct Session {
    dtls: dimpl::Dtls,
    socket: Arc<UdpSocket>,
    /// Datagrams from the client, routed here by the listener.
    inbox: mpsc::Receiver<Vec<u8>>,
    connection: Connection,
    /// The handshake must be done by then.
    handshake_until: Instant,
    /// Where `dimpl` writes its output, reused for every datagram.
    scratch: Vec<u8>,
    /// The listener's counters (drops).
    counters: Arc<DtlsCounters>,
}

/// What a round of `dimpl` output asks of the session.
#[derive(Default)]
struct Round {
    /// Decrypted application data, in order.
    data: Vec<Vec<u8>>,
    connected: bool,
    closed: bool,
    timer: Option<std::time::Instant>,
}

impl Session {
    /// Registers the session for peer data, serves it, and then deletes its allocation.
    async fn serve(mut self) -> io::Result<()> {
        let mut peer_data = self.connection.register().await;
        // Whatever `dimpl` does with what a client sends, the session is unregistered (and
        // its allocation deleted) when it ends.
        let result = AssertUnwindSafe(self.run(&mut peer_data))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| Err(io::Error::other("DTLS session panicked")));
        self.connection.unregister(&peer_data).await;
        result
    }

    /// Runs the handshake and then answers the client's messages and forwards peer data,
    /// until the client closes the session, goes idle or misses the handshake deadline.
    async fn run(&mut self, peer_data: &mut StreamReceiver) -> io::Result<()> {
        let client = self.connection.five_tuple.client;
        let idle = self.connection.deadlines.idle;
        let mut connected = false;
        let mut heard = Instant::now();
        let mut timer: Option<Instant> = None;
        let mut outgoing = vec![0u8; 1_500];
        loop {
            let deadline = if connected {
                heard + idle
            } else {
                self.handshake_until
            };
            let wake = timer.map_or(deadline, |t| t.min(deadline));
            tokio::select! {
                datagram = self.inbox.recv() => {
                    let Some(datagram) = datagram else { return Ok(()) };
                    heard = Instant::now();
                    self.dtls.handle_packet(&datagram).map_err(fatal)?;
                }
                Some(data) = peer_data.recv(), if connected => {
                    self.dtls.send_application_data(&data).map_err(fatal)?;
                }
                () = sleep_until(wake) => {
                    let now = Instant::now();
                    if !connected && now >= self.handshake_until {
                        return Err(closed("DTLS handshake deadline (tcp-frame-timeout)"));
                    }
                    if connected && now >= heard + idle {
                        // An allocation keeps its session: its own lifetime governs.
                        if !self.connection.has_allocation().await {
                            trace!(%client, "DTLS session idle; closing");
                            return Ok(());
                        }
                        heard = now;
                    }
                    self.dtls.handle_timeout(now.into_std()).map_err(fatal)?;
                }
            }
            // Answering may produce more output (the answers' records): go round until the
            // session has nothing more to say.
            loop {
                let round = self.round();
                connected |= round.connected;
                timer = round.timer.map(Instant::from_std);
                if round.closed {
                    trace!(%client, "DTLS close_notify");
                    return Ok(());
                }
                if round.data.is_empty() {
                    break;
                }
                for data in &round.data {
                    self.answer(data, &mut outgoing).await?;
                }
            }
        }
    }

    /// Sends what `dimpl` has to send and collects the rest.
    fn round(&mut self) -> Round {
        let mut round = Round::default();
        let (socket, client) = (&self.socket, self.connection.five_tuple.client.get());
        let counters = &*self.counters;
        drain(&mut self.dtls, &mut self.scratch, |output| match output {
            Drained::Packet(packet) => send_one(socket, client, packet, counters),
            Drained::Data(data) => round.data.push(data.to_vec()),
            Drained::Connected => round.connected = true,
            Drained::Closed => round.closed = true,
            Drained::Timeout(at) => round.timer = Some(at),
        });
        round
    }

    /// Answers the STUN messages and ChannelData of one record of application data (RFC 7350
    /// §4: as over UDP; a record may carry several, cut as on a stream).
    async fn answer(&mut self, data: &[u8], outgoing: &mut [u8]) -> io::Result<()> {
        let mut rest = data;
        while !rest.is_empty() {
            let len = match next_frame(rest) {
                Frame::Stun(len) | Frame::ChannelData(len) => len,
                // Unpadded ChannelData at the end of a datagram (RFC 8656 §12.5: padding is
                // optional over UDP and DTLS) is whole.
                Frame::Incomplete if rest.len() >= 4 => rest.len(),
                Frame::Incomplete | Frame::Invalid => {
                    self.counters.dropped(DtlsDrop::NotStun);
                    trace!(client = %self.connection.five_tuple.client, "not STUN in DTLS record; dropped");
                    return Ok(());
                }
            };
            let len = len.min(rest.len());
            let (reply, _) = self.connection.handle(&rest[..len], outgoing).await;
            if let Some(reply) = reply {
                self.dtls
                    .send_application_data(&outgoing[..reply])
                    .map_err(fatal)?;
            }
            rest = &rest[len..];
        }
        Ok(())
    }
}

/// Sends one datagram; a full socket buffer drops it (counted).
fn send_one(socket: &UdpSocket, client: SocketAddr, packet: &[u8], counters: &DtlsCounters) {
    if let Err(e) = socket.try_send_to(packet, client) {
        counters.dropped(DtlsDrop::SendFailed);
        trace!(%client, error = %e, "DTLS send failed");
    }
}

/// Binds the UDP socket of one `dtls-listen` address.
pub fn bind(addr: SocketAddr) -> anyhow::Result<std::net::UdpSocket> {
    use anyhow::Context;
    net::bind_udp(addr).with_context(|| format!("binding DTLS (UDP) {addr}"))
}
