//! Batched UDP I/O: `recvmmsg`/`sendmmsg` (many datagrams per syscall) and UDP GSO
//! (`UDP_SEGMENT`: one syscall, one trip down the stack, for equal-size datagrams to one
//! destination), each with a portable fallback (one `recvfrom`/`sendto` per datagram).
//!
//! This file is the portable logic; the system calls are `linux.rs`'s on Linux and
//! `fallback.rs`'s elsewhere (chosen at build time, as quinn-udp does). Which path runs is
//! decided by [`Batching`]: [`Batching::detect`] asks the kernel once; a batched call that
//! later says it is unusable (`ENOSYS`; `EINVAL` too for `recvmmsg`, whose arguments are
//! ours; `EIO`/`EINVAL` for GSO, e.g. a device without checksum offload; `Unsupported` from
//! the fallback) switches that path off for the whole process and the datagrams go out one
//! by one. Tests force the one-by-one path with [`Batching::FALLBACK`].
//!
//! Nothing here allocates per call: message headers, I/O vectors and addresses live in
//! arrays on the stack, sized [`MAX_BATCH`]; receive buffers are owned by a [`RecvBatch`]
//! made once per task; GSO reads the segments where they are.

use std::io::{self, IoSlice};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use crate::sys;

/// Most datagrams moved by one `recvmmsg`/`sendmmsg` call.
pub const MAX_BATCH: usize = 32;

/// Most segments in one GSO send (the kernel's `UDP_MAX_SEGMENTS` is 64; fewer keeps one
/// send's burst moderate).
pub const MAX_GSO_SEGMENTS: usize = 32;

/// Most bytes in one GSO send: the whole must fit one (64 KiB) UDP/IP super-datagram.
pub const MAX_GSO_BYTES: usize = 65_000;

/// Set when `recvmmsg`/`sendmmsg` turned out unusable at run time.
static MMSG_OFF: AtomicBool = AtomicBool::new(false);
/// Set when a GSO send failed in a way that says the path cannot do it.
static GSO_OFF: AtomicBool = AtomicBool::new(false);

/// Which batched syscalls to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    /// `recvmmsg`/`sendmmsg`; otherwise one `recvfrom`/`sendto` per datagram.
    pub mmsg: bool,
    /// UDP GSO for runs of equal-size datagrams to one destination; otherwise `sendmmsg`.
    pub gso: bool,
}

impl Batching {
    /// The portable path only: one syscall per datagram.
    pub const FALLBACK: Batching = Batching {
        mmsg: false,
        gso: false,
    };

    /// What this system supports, probed once per process ([`Batching::FALLBACK`] off
    /// Linux).
    pub fn detect() -> Batching {
        static DETECTED: OnceLock<Batching> = OnceLock::new();
        *DETECTED.get_or_init(sys::detect)
    }

    fn mmsg_on(self) -> bool {
        self.mmsg && !MMSG_OFF.load(Ordering::Relaxed)
    }

    fn gso_on(self) -> bool {
        self.gso && !GSO_OFF.load(Ordering::Relaxed)
    }
}

/// One datagram to send.
#[derive(Debug, Clone, Copy)]
pub struct Transmit<'a> {
    /// Its bytes.
    pub data: &'a [u8],
    /// Where to.
    pub to: SocketAddr,
}

/// Where and how long a received datagram is.
#[derive(Debug, Clone, Copy)]
pub struct RecvMeta {
    /// Bytes received.
    pub len: usize,
    /// The sender.
    pub source: SocketAddr,
}

/// The sender of a datagram whose address could not be read.
pub(crate) const UNSPECIFIED: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));

/// Receive buffers for up to [`MAX_BATCH`] datagrams, allocated once. Each slot keeps
/// `headroom` bytes before its datagram and `tail` bytes after the largest one, so that a
/// caller can frame a datagram in place (a TURN header before it, padding after it).
///
/// The storage is one zeroed allocation: pages never written are never made resident, so
/// slots sized for the largest datagram cost memory only as far as datagrams fill them.
#[derive(Debug)]
pub struct RecvBatch {
    storage: Box<[u8]>,
    slot: usize,
    headroom: usize,
    max_datagram: usize,
    meta: [RecvMeta; MAX_BATCH],
    count: usize,
}

impl RecvBatch {
    /// `slots` slots (at most [`MAX_BATCH`]) for datagrams of up to `max_datagram` bytes.
    pub fn new(slots: usize, headroom: usize, max_datagram: usize, tail: usize) -> Self {
        let slots = slots.clamp(1, MAX_BATCH);
        let slot = headroom + max_datagram + tail;
        RecvBatch {
            storage: vec![0u8; slots * slot].into_boxed_slice(),
            slot,
            headroom,
            max_datagram,
            meta: [RecvMeta {
                len: 0,
                source: UNSPECIFIED,
            }; MAX_BATCH],
            count: 0,
        }
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.storage.len() / self.slot
    }

    /// Datagrams held since the last [`RecvBatch::recv`].
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when the last receive got nothing.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Datagram `i`: its bytes and its sender.
    pub fn datagram(&self, i: usize) -> (&[u8], SocketAddr) {
        let meta = self.meta[i];
        let start = i * self.slot + self.headroom;
        (&self.storage[start..start + meta.len], meta.source)
    }

    /// Slot `i` whole (headroom, datagram, tail), with the datagram's length and sender: the
    /// datagram starts at the headroom offset.
    pub fn slot_mut(&mut self, i: usize) -> (&mut [u8], RecvMeta) {
        let start = i * self.slot;
        (&mut self.storage[start..start + self.slot], self.meta[i])
    }

    /// Slot `i` whole, read-only.
    pub fn slot(&self, i: usize) -> &[u8] {
        let start = i * self.slot;
        &self.storage[start..start + self.slot]
    }

    /// Receives as many datagrams as are waiting, up to the number of slots. `WouldBlock`
    /// when none is. A datagram longer than `max_datagram` is cut to it.
    pub fn recv(&mut self, socket: &impl AsFd, batching: Batching) -> io::Result<usize> {
        self.count = 0;
        self.recv_at(0, socket, batching)
    }

    /// Receives into the slots from `start` on, keeping the datagrams of the slots before it,
    /// so that one batch can gather datagrams from several sockets (the relay sockets of a
    /// worker, one or two datagrams each) and be framed and sent as one. Returns how many
    /// were received; [`RecvBatch::len`] is then `start` plus that. `WouldBlock` when none
    /// is waiting (the batch then holds `start` datagrams).
    pub fn recv_at(
        &mut self,
        start: usize,
        socket: &impl AsFd,
        batching: Batching,
    ) -> io::Result<usize> {
        let start = start.min(self.capacity());
        self.count = start;
        if batching.mmsg_on() {
            match self.recv_mmsg(start, socket) {
                Err(e) if sys::recv_mmsg_unusable(&e) => MMSG_OFF.store(true, Ordering::Relaxed),
                result => return result,
            }
        }
        self.recv_each(start, socket)
    }

    /// The datagram part of each slot, for the kernel to fill.
    fn datagram_buffers(&mut self) -> [&mut [u8]; MAX_BATCH] {
        let mut bufs: [&mut [u8]; MAX_BATCH] = Default::default();
        let (headroom, max) = (self.headroom, self.max_datagram);
        for (buf, slot) in bufs
            .iter_mut()
            .zip(self.storage.chunks_exact_mut(self.slot))
        {
            *buf = &mut slot[headroom..headroom + max];
        }
        bufs
    }

    fn recv_mmsg(&mut self, start: usize, socket: &impl AsFd) -> io::Result<usize> {
        let slots = self.capacity();
        let mut meta = self.meta;
        let mut bufs = self.datagram_buffers();
        let received = sys::recv_mmsg(
            socket.as_fd(),
            &mut bufs[start..slots],
            &mut meta[start..slots],
        )?;
        self.meta = meta;
        self.count = start + received;
        Ok(received)
    }

    fn recv_each(&mut self, start: usize, socket: &impl AsFd) -> io::Result<usize> {
        let slots = self.capacity();
        let mut meta = self.meta;
        let mut received = 0;
        for (i, buf) in self.datagram_buffers()[start..slots].iter_mut().enumerate() {
            match sys::recv_one(socket.as_fd(), buf) {
                Ok(m) => {
                    meta[start + i] = m;
                    received = i + 1;
                }
                // Nothing at all: the caller's to hear.
                Err(e) if i == 0 => return Err(e),
                // `WouldBlock`, or an error that concerns the next datagram: deliver what
                // we have first.
                Err(_) => break,
            }
        }
        self.meta = meta;
        self.count = start + received;
        Ok(received)
    }
}

/// Sends `messages` from `socket`, [`MAX_BATCH`] per `sendmmsg` call (or one `sendto` each),
/// and returns how many went out. It stops early only on `WouldBlock` (the send buffer is
/// full: the rest are the caller's to drop or retry); any other error concerns one datagram
/// (an ICMP error surfacing, an unreachable destination), which is skipped and counted as
/// sent. `Err` only when nothing could be sent at all for `WouldBlock`.
pub fn send_batch(
    socket: &impl AsFd,
    messages: &[Transmit<'_>],
    batching: Batching,
) -> io::Result<usize> {
    let fd = socket.as_fd();
    let mut sent = 0;
    while sent < messages.len() {
        let rest = &messages[sent..];
        let result = if batching.mmsg_on() {
            match sys::send_mmsg(fd, rest) {
                Err(e) if sys::send_mmsg_unusable(&e) => {
                    MMSG_OFF.store(true, Ordering::Relaxed);
                    continue;
                }
                result => result,
            }
        } else {
            sys::send_one(fd, rest[0].data, rest[0].to).map(|()| 1)
        };
        match result {
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return if sent == 0 { Err(e) } else { Ok(sent) };
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // This datagram failed; the next may not.
            Err(_) => sent += 1,
        }
    }
    Ok(sent)
}

/// Sends `segments` to `to` as one datagram each: with one GSO send when the kernel can
/// (it reads the segments where they lie, with no copy into one buffer), else as a batch.
/// Every segment but the last must have the first one's length, and the last no more
/// (`InvalidInput` otherwise: GSO cuts at that length). Returns the number of datagrams
/// sent.
pub fn send_segments(
    socket: &impl AsFd,
    segments: &[&[u8]],
    to: SocketAddr,
    batching: Batching,
) -> io::Result<usize> {
    let Some((last, most)) = segments.split_last() else {
        return Ok(0);
    };
    let segment = most.first().unwrap_or(last).len();
    if most.iter().any(|s| s.len() != segment) || last.len() > segment {
        return Err(io::ErrorKind::InvalidInput.into());
    }
    let total = segment * most.len() + last.len();
    let fits = segments.len() <= MAX_GSO_SEGMENTS && total <= MAX_GSO_BYTES;
    if batching.gso_on() && fits && segments.len() > 1 && segment > 0 {
        let mut slices = [IoSlice::new(&[]); MAX_GSO_SEGMENTS];
        for (slice, data) in slices.iter_mut().zip(segments) {
            *slice = IoSlice::new(data);
        }
        match sys::send_gso(socket.as_fd(), &slices[..segments.len()], segment, to) {
            Ok(()) => return Ok(segments.len()),
            Err(e) if sys::gso_unusable(&e) => GSO_OFF.store(true, Ordering::Relaxed),
            Err(e) => return Err(e),
        }
    }
    let mut messages = [Transmit {
        data: &[],
        to: UNSPECIFIED,
    }; MAX_BATCH];
    let mut sent = 0;
    for chunk in segments.chunks(MAX_BATCH) {
        for (message, data) in messages.iter_mut().zip(chunk) {
            *message = Transmit { data, to };
        }
        sent += send_batch(socket, &messages[..chunk.len()], batching)?;
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::time::{Duration, Instant};

    const MODES: [Batching; 3] = [
        Batching {
            mmsg: true,
            gso: true,
        },
        Batching {
            mmsg: true,
            gso: false,
        },
        Batching::FALLBACK,
    ];

    fn pair(ipv6: bool) -> Option<(UdpSocket, UdpSocket)> {
        let any = if ipv6 { "[::1]:0" } else { "127.0.0.1:0" };
        let a = UdpSocket::bind(any).ok()?;
        let b = UdpSocket::bind(any).ok()?;
        b.set_nonblocking(true).unwrap();
        Some((a, b))
    }

    /// Receives until `want` datagrams arrived (or a second passed).
    fn recv_all(
        batch: &mut RecvBatch,
        socket: &UdpSocket,
        mode: Batching,
        want: usize,
    ) -> Vec<(Vec<u8>, SocketAddr, usize)> {
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(1);
        while got.len() < want && Instant::now() < deadline {
            match batch.recv(socket, mode) {
                Ok(n) => {
                    for i in 0..n {
                        let (data, from) = batch.datagram(i);
                        got.push((data.to_vec(), from, n));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => panic!("{e}"),
            }
        }
        got
    }

    #[test]
    fn send_and_receive_batches_in_every_mode() {
        for ipv6 in [false, true] {
            let Some((a, b)) = pair(ipv6) else { continue };
            let to = b.local_addr().unwrap();
            for mode in MODES {
                let payloads: Vec<Vec<u8>> =
                    (0..40u8).map(|i| vec![i; 10 + usize::from(i)]).collect();
                let messages: Vec<Transmit<'_>> =
                    payloads.iter().map(|p| Transmit { data: p, to }).collect();
                // 40 > MAX_BATCH: two sendmmsg calls.
                assert_eq!(send_batch(&a, &messages, mode).unwrap(), 40, "{mode:?}");
                let mut batch = RecvBatch::new(MAX_BATCH, 8, 2048, 4);
                let got = recv_all(&mut batch, &b, mode, 40);
                assert_eq!(got.len(), 40, "{mode:?}");
                for (i, (data, from, _)) in got.iter().enumerate() {
                    assert_eq!(data, &payloads[i]);
                    assert_eq!(*from, a.local_addr().unwrap());
                }
                // More than one datagram per call when batching, exactly... as many as
                // waited, up to the slots: the first call finds all 40 queued.
                assert_eq!(got[0].2, MAX_BATCH, "{mode:?}: a full batch per call");
                assert!(
                    matches!(batch.recv(&b, mode), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
                );
            }
        }
    }

    /// Waits until `socket` has a datagram queued (loopback delivery is synchronous, but a
    /// loaded machine may still be slow to run the test), without taking it.
    fn wait_readable(socket: &UdpSocket) {
        socket.set_nonblocking(false).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut peek = [0u8; 1];
        socket.peek_from(&mut peek).unwrap();
        socket.set_nonblocking(true).unwrap();
    }

    #[test]
    fn recv_at_gathers_datagrams_of_several_sockets_in_one_batch() {
        for mode in MODES {
            let (a, b) = pair(false).unwrap();
            let (c, d) = pair(false).unwrap();
            for i in 0..3u8 {
                a.send_to(&[i; 5], b.local_addr().unwrap()).unwrap();
            }
            for i in 0..2u8 {
                c.send_to(&[10 + i; 7], d.local_addr().unwrap()).unwrap();
            }
            let mut batch = RecvBatch::new(4, 8, 64, 0);
            wait_readable(&b);
            assert_eq!(batch.recv_at(0, &b, mode).unwrap(), 3, "{mode:?}");
            assert_eq!(batch.len(), 3);
            wait_readable(&d);
            // One slot left: only one of d's two datagrams fits; the other stays queued.
            assert_eq!(batch.recv_at(3, &d, mode).unwrap(), 1, "{mode:?}");
            assert_eq!(batch.len(), 4);
            let got: Vec<(Vec<u8>, SocketAddr)> = (0..4)
                .map(|i| {
                    let (data, from) = batch.datagram(i);
                    (data.to_vec(), from)
                })
                .collect();
            assert_eq!(got[0], (vec![0; 5], a.local_addr().unwrap()));
            assert_eq!(got[2], (vec![2; 5], a.local_addr().unwrap()));
            assert_eq!(got[3], (vec![10; 7], c.local_addr().unwrap()));
            // Nothing waiting on b: WouldBlock, and the batch keeps what it holds.
            assert!(
                matches!(batch.recv_at(2, &b, mode), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            );
            assert_eq!(batch.len(), 2);
            assert_eq!(batch.recv_at(0, &d, mode).unwrap(), 1, "{mode:?}");
            assert_eq!(batch.datagram(0).0, &[11; 7]);
        }
    }

    #[test]
    fn datagrams_land_after_the_headroom() {
        let (a, b) = pair(false).unwrap();
        a.send_to(b"abc", b.local_addr().unwrap()).unwrap();
        let mut batch = RecvBatch::new(4, 48, 100, 3);
        let got = recv_all(&mut batch, &b, Batching::detect(), 1);
        assert_eq!(got.len(), 1);
        let (slot, meta) = batch.slot_mut(0);
        assert_eq!(slot.len(), 48 + 100 + 3);
        assert_eq!(meta.len, 3);
        assert_eq!(&slot[48..51], b"abc");
    }

    #[test]
    fn segments_arrive_as_separate_datagrams_with_and_without_gso() {
        let (a, b) = pair(false).unwrap();
        let to = b.local_addr().unwrap();
        // Three segments of 100 bytes and a last one of 40.
        let data: Vec<u8> = (0..340u16).map(|i| (i % 251) as u8).collect();
        let segments: Vec<&[u8]> = data.chunks(100).collect();
        for mode in MODES {
            assert_eq!(send_segments(&a, &segments, to, mode).unwrap(), 4);
            let mut batch = RecvBatch::new(MAX_BATCH, 0, 2048, 0);
            let got = recv_all(&mut batch, &b, mode, 4);
            let lens: Vec<usize> = got.iter().map(|g| g.0.len()).collect();
            assert_eq!(lens, [100, 100, 100, 40], "{mode:?}");
            let joined: Vec<u8> = got.iter().flat_map(|g| g.0.clone()).collect();
            assert_eq!(joined, data);
        }
    }

    #[test]
    fn uneven_segments_are_refused() {
        let (a, b) = pair(false).unwrap();
        let to = b.local_addr().unwrap();
        let (short, long) = ([1u8; 10], [2u8; 20]);
        for segments in [[&short[..], &long], [&long, &short]] {
            let result = send_segments(&a, &segments[..], to, Batching::detect());
            if segments[1].len() <= segments[0].len() {
                assert_eq!(result.unwrap(), 2);
            } else {
                assert_eq!(result.unwrap_err().kind(), io::ErrorKind::InvalidInput);
            }
        }
        assert_eq!(send_segments(&a, &[], to, Batching::detect()).unwrap(), 0);
    }

    #[test]
    fn a_failing_datagram_does_not_stop_the_batch() {
        let (a, b) = pair(false).unwrap();
        let to = b.local_addr().unwrap();
        // An IPv6 destination on an IPv4 socket fails (EAFNOSUPPORT / EINVAL) for that
        // datagram alone.
        let bad: SocketAddr = "[::1]:9".parse().unwrap();
        let messages = [
            Transmit { data: b"one", to },
            Transmit {
                data: b"bad",
                to: bad,
            },
            Transmit { data: b"two", to },
        ];
        for mode in [
            Batching {
                mmsg: true,
                gso: false,
            },
            Batching::FALLBACK,
        ] {
            assert_eq!(send_batch(&a, &messages, mode).unwrap(), 3);
            let mut batch = RecvBatch::new(8, 0, 64, 0);
            let got = recv_all(&mut batch, &b, mode, 2);
            let data: Vec<&[u8]> = got.iter().map(|g| g.0.as_slice()).collect();
            assert_eq!(data, [b"one".as_slice(), b"two"]);
        }
    }
}
