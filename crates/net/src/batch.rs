//! Batched UDP I/O: `recvmmsg`/`sendmmsg` (many datagrams per syscall) and UDP GSO
//! (`UDP_SEGMENT`: one syscall, one trip down the stack, for equal-size datagrams to one
//! destination), each with a portable fallback (one `recvfrom`/`sendto` per datagram).
//!
//! Which path runs is decided by [`Batching`]: [`Batching::detect`] asks the kernel once; a
//! syscall that later answers `ENOSYS` (mmsg; `EINVAL` too for `recvmmsg`, whose arguments
//! are ours) or `EIO`/`EINVAL` (GSO, e.g. a device
//! without checksum offload) switches that path off for the whole process and the datagrams
//! go out by the fallback. Tests force the fallbacks with [`Batching::FALLBACK`].
//!
//! Nothing here allocates per call: message headers, I/O vectors and addresses live in
//! arrays on the stack, sized [`MAX_BATCH`]; receive buffers are owned by a [`RecvBatch`]
//! made once per task.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

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

    /// What this kernel supports, probed once per process.
    pub fn detect() -> Batching {
        static DETECTED: OnceLock<Batching> = OnceLock::new();
        *DETECTED.get_or_init(|| Batching {
            mmsg: cfg!(target_os = "linux"),
            gso: gso_probe(),
        })
    }

    fn mmsg_on(self) -> bool {
        self.mmsg && !MMSG_OFF.load(Ordering::Relaxed)
    }

    fn gso_on(self) -> bool {
        self.gso && !GSO_OFF.load(Ordering::Relaxed)
    }
}

/// True when the kernel knows the `UDP_SEGMENT` socket option (Linux 4.18+).
fn gso_probe() -> bool {
    let Ok(socket) = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)) else {
        return false;
    };
    let mut value: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: a valid socket, and `value`/`len` are live and sized for the option.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_UDP,
            libc::UDP_SEGMENT,
            std::ptr::from_mut(&mut value).cast(),
            &mut len,
        )
    };
    rc == 0
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

const UNSPECIFIED: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));

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
        let fd = socket.as_fd().as_raw_fd();
        if batching.mmsg_on() {
            match self.recv_mmsg(fd) {
                // Our arguments are valid: EINVAL means the call itself is not usable.
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EINVAL)) => {
                    MMSG_OFF.store(true, Ordering::Relaxed)
                }
                result => return result,
            }
        }
        self.recv_each(fd)
    }

    fn recv_mmsg(&mut self, fd: libc::c_int) -> io::Result<usize> {
        let slots = self.capacity();
        // SAFETY: all-zero is a valid value of these plain C structs.
        #[allow(unsafe_code)]
        let (mut iovs, mut names, mut headers): (
            [libc::iovec; MAX_BATCH],
            [libc::sockaddr_storage; MAX_BATCH],
            [libc::mmsghdr; MAX_BATCH],
        ) = unsafe { (zeroed(), zeroed(), zeroed()) };
        let base = self.storage.as_mut_ptr();
        for i in 0..slots {
            // SAFETY: slot `i` lies inside `storage` (i < capacity), with `max_datagram`
            // bytes after the headroom.
            #[allow(unsafe_code)]
            let start = unsafe { base.add(i * self.slot + self.headroom) };
            iovs[i] = libc::iovec {
                iov_base: start.cast(),
                iov_len: self.max_datagram,
            };
            let capacity = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            point_header(
                &mut headers[i].msg_hdr,
                &mut names[i],
                capacity,
                &mut iovs[i],
            );
        }
        // SAFETY: `headers[..slots]` point at live buffers, addresses and I/O vectors that
        // outlive the call; the kernel writes at most the lengths given.
        #[allow(unsafe_code)]
        let rc = unsafe {
            libc::recvmmsg(
                fd,
                headers.as_mut_ptr(),
                slots as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        let received = usize::try_from(rc).unwrap_or(0);
        for i in 0..received {
            self.meta[i] = RecvMeta {
                len: (headers[i].msg_len as usize).min(self.max_datagram),
                source: from_storage(&names[i]).unwrap_or(UNSPECIFIED),
            };
        }
        self.count = received;
        Ok(received)
    }

    fn recv_each(&mut self, fd: libc::c_int) -> io::Result<usize> {
        for i in 0..self.capacity() {
            let start = i * self.slot + self.headroom;
            let buf = &mut self.storage[start..start + self.max_datagram];
            // SAFETY: zero is a valid `sockaddr_storage`.
            #[allow(unsafe_code)]
            let mut name: libc::sockaddr_storage = unsafe { zeroed() };
            let mut name_len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            // SAFETY: `buf`, `name` and `name_len` are live and sized as passed.
            #[allow(unsafe_code)]
            let rc = unsafe {
                libc::recvfrom(
                    fd,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                    std::ptr::from_mut(&mut name).cast(),
                    &mut name_len,
                )
            };
            if rc < 0 {
                let e = io::Error::last_os_error();
                if i > 0 && e.kind() == io::ErrorKind::WouldBlock {
                    break;
                }
                if i > 0 {
                    // The error concerns the next datagram; deliver what we have first.
                    break;
                }
                return Err(e);
            }
            self.meta[i] = RecvMeta {
                len: usize::try_from(rc).unwrap_or(0),
                source: from_storage(&name).unwrap_or(UNSPECIFIED),
            };
            self.count = i + 1;
        }
        Ok(self.count)
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
    let fd = socket.as_fd().as_raw_fd();
    let mut sent = 0;
    while sent < messages.len() {
        let rest = &messages[sent..];
        let result = if batching.mmsg_on() {
            match send_mmsg(fd, rest) {
                // Not EINVAL here: a bad destination in the batch gives that too.
                Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
                    MMSG_OFF.store(true, Ordering::Relaxed);
                    continue;
                }
                result => result,
            }
        } else {
            send_one(fd, rest[0].data, rest[0].to).map(|()| 1)
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

/// Sends `data`, cut into datagrams of `segment` bytes (the last may be shorter), to `to`:
/// with one GSO send when the kernel can, else as a batch. Returns the number of datagrams
/// sent.
pub fn send_segments(
    socket: &impl AsFd,
    data: &[u8],
    segment: usize,
    to: SocketAddr,
    batching: Batching,
) -> io::Result<usize> {
    let segments = data.len().div_ceil(segment.max(1));
    let fits = segments <= MAX_GSO_SEGMENTS && data.len() <= MAX_GSO_BYTES;
    if batching.gso_on() && fits && segments > 1 {
        let fd = socket.as_fd().as_raw_fd();
        match send_gso(fd, data, segment, to) {
            Ok(()) => return Ok(segments),
            Err(e) if gso_unsupported(&e) => GSO_OFF.store(true, Ordering::Relaxed),
            Err(e) => return Err(e),
        }
    }
    let mut messages = [Transmit {
        data: &[],
        to: UNSPECIFIED,
    }; MAX_BATCH];
    let mut queued = 0;
    let mut sent = 0;
    for chunk in data.chunks(segment.max(1)) {
        messages[queued] = Transmit { data: chunk, to };
        queued += 1;
        if queued == MAX_BATCH {
            sent += send_batch(socket, &messages, batching)?;
            queued = 0;
        }
    }
    if queued > 0 {
        sent += send_batch(socket, &messages[..queued], batching)?;
    }
    Ok(sent)
}

fn send_mmsg(fd: libc::c_int, messages: &[Transmit<'_>]) -> io::Result<usize> {
    let count = messages.len().min(MAX_BATCH);
    // SAFETY: all-zero is a valid value of these plain C structs.
    #[allow(unsafe_code)]
    let (mut iovs, mut names, mut headers): (
        [libc::iovec; MAX_BATCH],
        [libc::sockaddr_storage; MAX_BATCH],
        [libc::mmsghdr; MAX_BATCH],
    ) = unsafe { (zeroed(), zeroed(), zeroed()) };
    for (i, message) in messages[..count].iter().enumerate() {
        iovs[i] = libc::iovec {
            iov_base: message.data.as_ptr().cast_mut().cast(),
            iov_len: message.data.len(),
        };
        let name_len = to_storage(message.to, &mut names[i]);
        point_header(
            &mut headers[i].msg_hdr,
            &mut names[i],
            name_len,
            &mut iovs[i],
        );
    }
    // SAFETY: `headers[..count]` point at live data, addresses and I/O vectors that outlive
    // the call; the kernel only reads the data.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::sendmmsg(
            fd,
            headers.as_mut_ptr(),
            count as libc::c_uint,
            libc::MSG_DONTWAIT as _,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(usize::try_from(rc).unwrap_or(0))
}

fn send_one(fd: libc::c_int, data: &[u8], to: SocketAddr) -> io::Result<()> {
    // SAFETY: zero is a valid `sockaddr_storage`.
    #[allow(unsafe_code)]
    let mut name: libc::sockaddr_storage = unsafe { zeroed() };
    let name_len = to_storage(to, &mut name);
    // SAFETY: `data` and `name` are live and sized as passed.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::sendto(
            fd,
            data.as_ptr().cast(),
            data.len(),
            libc::MSG_DONTWAIT,
            std::ptr::from_ref(&name).cast(),
            name_len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Control-message space for one `u16` (`CMSG_SPACE(2)`), aligned for `cmsghdr`.
#[repr(C, align(8))]
struct SegmentCmsg([u8; 24]);

fn send_gso(fd: libc::c_int, data: &[u8], segment: usize, to: SocketAddr) -> io::Result<()> {
    let size = u16::try_from(segment).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: zero is a valid `sockaddr_storage` and `msghdr`.
    #[allow(unsafe_code)]
    let (mut name, mut header): (libc::sockaddr_storage, libc::msghdr) =
        unsafe { (zeroed(), zeroed()) };
    let name_len = to_storage(to, &mut name);
    let mut iov = libc::iovec {
        iov_base: data.as_ptr().cast_mut().cast(),
        iov_len: data.len(),
    };
    let mut control = SegmentCmsg([0; 24]);
    point_header(&mut header, &mut name, name_len, &mut iov);
    header.msg_control = control.0.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE is a pure computation.
    #[allow(unsafe_code)]
    let space = unsafe { libc::CMSG_SPACE(size_of::<u16>() as u32) } as usize;
    debug_assert!(space <= control.0.len());
    header.msg_controllen = space as _;
    // SAFETY: `header` points at `control`, which has room for one cmsghdr and a u16
    // (checked above); CMSG_FIRSTHDR/CMSG_DATA stay inside it.
    #[allow(unsafe_code)]
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&header);
        (*cmsg).cmsg_level = libc::SOL_UDP;
        (*cmsg).cmsg_type = libc::UDP_SEGMENT;
        (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), size);
    }
    // SAFETY: every pointer in `header` is live for the call; the kernel only reads them.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::sendmsg(fd, &header, libc::MSG_DONTWAIT) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// EIO: the device cannot checksum segments; EINVAL/ENOPROTOOPT: the kernel refuses the option.
/// Points a message header at one address (`name_len` bytes of `name` are meaningful, or
/// available for the kernel to fill) and one I/O vector; the header must not outlive them.
fn point_header(
    header: &mut libc::msghdr,
    name: &mut libc::sockaddr_storage,
    name_len: libc::socklen_t,
    iov: &mut libc::iovec,
) {
    header.msg_name = std::ptr::from_mut(name).cast();
    header.msg_namelen = name_len;
    header.msg_iov = std::ptr::from_mut(iov);
    header.msg_iovlen = 1;
}

fn gso_unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EIO | libc::EINVAL | libc::ENOPROTOOPT | libc::EOPNOTSUPP)
    )
}

/// Writes `addr` as a C socket address; returns its length.
fn to_storage(addr: SocketAddr, storage: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(v4.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: `sockaddr_storage` is larger than and aligned for `sockaddr_in`.
            #[allow(unsafe_code)]
            unsafe {
                std::ptr::write(std::ptr::from_mut(storage).cast::<libc::sockaddr_in>(), sin)
            };
            size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: v6.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: v6.scope_id(),
            };
            // SAFETY: `sockaddr_storage` is larger than and aligned for `sockaddr_in6`.
            #[allow(unsafe_code)]
            unsafe {
                std::ptr::write(
                    std::ptr::from_mut(storage).cast::<libc::sockaddr_in6>(),
                    sin6,
                )
            };
            size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

/// Reads a C socket address the kernel wrote.
fn from_storage(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match libc::c_int::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a `sockaddr_in`.
            #[allow(unsafe_code)]
            let sin = unsafe { &*std::ptr::from_ref(storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a `sockaddr_in6`.
            #[allow(unsafe_code)]
            let sin6 = unsafe { &*std::ptr::from_ref(storage).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
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
        for mode in MODES {
            assert_eq!(send_segments(&a, &data, 100, to, mode).unwrap(), 4);
            let mut batch = RecvBatch::new(MAX_BATCH, 0, 2048, 0);
            let got = recv_all(&mut batch, &b, mode, 4);
            let lens: Vec<usize> = got.iter().map(|g| g.0.len()).collect();
            assert_eq!(lens, [100, 100, 100, 40], "{mode:?}");
            let joined: Vec<u8> = got.iter().flat_map(|g| g.0.clone()).collect();
            assert_eq!(joined, data);
        }
    }

    #[test]
    fn a_gso_send_is_one_syscall_of_several_datagrams() {
        let (a, b) = pair(false).unwrap();
        let data = [7u8; 1000];
        // The GSO path itself, not its fallback: it must succeed on loopback here.
        send_gso(a.as_raw_fd(), &data, 250, b.local_addr().unwrap()).unwrap();
        let mut batch = RecvBatch::new(MAX_BATCH, 0, 2048, 0);
        let got = recv_all(&mut batch, &b, Batching::FALLBACK, 4);
        assert_eq!(got.iter().map(|g| g.0.len()).collect::<Vec<_>>(), [250; 4]);
    }

    #[test]
    fn gso_is_detected_on_this_kernel() {
        // Linux 4.18+ (every kernel these tests run on); a kernel without it would take the
        // fallback, which the other tests cover.
        assert!(Batching::detect().gso, "UDP_SEGMENT not supported here");
        assert!(Batching::detect().mmsg);
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
