//! The Linux system calls behind [`crate::batch`] and [`crate::dont_fragment`]:
//! `recvmmsg`/`sendmmsg`, UDP GSO (`UDP_SEGMENT`), one-datagram `recvfrom`/`sendto` with
//! `MSG_DONTWAIT`, and `IP_MTU_DISCOVER`/`IPV6_DONTFRAG`. The only `unsafe` of the workspace
//! lives here: each block passes the kernel pointers to buffers, addresses and I/O vectors that
//! outlive the call, with their lengths. Other systems get `fallback.rs`, with the same
//! functions.

use std::io::{self, IoSlice};
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use crate::batch::{Batching, RecvMeta, Transmit, MAX_BATCH, MAX_GSO_SEGMENTS, UNSPECIFIED};

/// What this kernel supports: `recvmmsg`/`sendmmsg` always (Linux 3.0+), GSO when it knows
/// the `UDP_SEGMENT` socket option (Linux 4.18+).
pub(crate) fn detect() -> Batching {
    Batching {
        mmsg: true,
        gso: gso_probe(),
    }
}

fn gso_probe() -> bool {
    std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).is_ok_and(|socket| {
        getsockopt_int(socket.as_fd(), libc::SOL_UDP, libc::UDP_SEGMENT).is_ok()
    })
}

/// Reads an `int` socket option.
fn getsockopt_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `fd` is a valid open socket for the duration of the call (borrowed), and
    // `value`/`len` are live and sized for the option.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            std::ptr::from_mut(&mut value).cast::<libc::c_void>(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(value)
}

/// True when a `recvmmsg` error says the call itself is unusable: ENOSYS, or EINVAL (our
/// arguments are valid).
pub(crate) fn recv_mmsg_unusable(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EINVAL))
}

/// True when a `sendmmsg` error says the call itself is unusable: ENOSYS only (a bad
/// destination in the batch gives EINVAL too).
pub(crate) fn send_mmsg_unusable(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOSYS)
}

/// True when a GSO send failed because the path cannot do GSO. EIO: the device cannot
/// checksum segments; EINVAL/ENOPROTOOPT/EOPNOTSUPP: the kernel refuses the option.
pub(crate) fn gso_unusable(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EIO | libc::EINVAL | libc::ENOPROTOOPT | libc::EOPNOTSUPP)
    )
}

/// Message headers, addresses and I/O vectors for one `recvmmsg`/`sendmmsg`, on the stack.
/// The headers point into the other two arrays: it must stay where it is between
/// [`Mmsg::point`] and the call.
struct Mmsg {
    iovs: [libc::iovec; MAX_BATCH],
    names: [libc::sockaddr_storage; MAX_BATCH],
    headers: [libc::mmsghdr; MAX_BATCH],
}

impl Mmsg {
    fn new() -> Self {
        // SAFETY: all-zero is a valid value of these plain C structs.
        #[allow(unsafe_code)]
        let (iovs, names, headers) = unsafe { (zeroed(), zeroed(), zeroed()) };
        Mmsg {
            iovs,
            names,
            headers,
        }
    }

    /// Points message `i` at `len` bytes from `data` and at its address (`name_len` bytes
    /// meaningful, or available for the kernel to fill).
    fn point(&mut self, i: usize, data: *mut u8, len: usize, name_len: libc::socklen_t) {
        self.iovs[i] = libc::iovec {
            iov_base: data.cast(),
            iov_len: len,
        };
        point_header(
            &mut self.headers[i].msg_hdr,
            &mut self.names[i],
            name_len,
            &mut self.iovs[i],
            1,
        );
    }
}

/// Receives up to `bufs.len()` datagrams with one `recvmmsg`, each into its buffer; fills
/// `meta` for each received.
pub(crate) fn recv_mmsg(
    fd: BorrowedFd<'_>,
    bufs: &mut [&mut [u8]],
    meta: &mut [RecvMeta],
) -> io::Result<usize> {
    let count = bufs.len().min(MAX_BATCH).min(meta.len());
    let mut m = Mmsg::new();
    let capacity = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    for (i, buf) in bufs[..count].iter_mut().enumerate() {
        m.point(i, buf.as_mut_ptr(), buf.len(), capacity);
    }
    // SAFETY: `headers[..count]` point at live buffers, addresses and I/O vectors that
    // outlive the call; the kernel writes at most the lengths given.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::recvmmsg(
            fd.as_raw_fd(),
            m.headers.as_mut_ptr(),
            count as libc::c_uint,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let received = usize::try_from(rc).unwrap_or(0);
    for i in 0..received {
        meta[i] = RecvMeta {
            len: (m.headers[i].msg_len as usize).min(bufs[i].len()),
            source: from_storage(&m.names[i]).unwrap_or(UNSPECIFIED),
        };
    }
    Ok(received)
}

/// Receives one datagram into `buf` (`WouldBlock` when none waits).
pub(crate) fn recv_one(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<RecvMeta> {
    // SAFETY: zero is a valid `sockaddr_storage`.
    #[allow(unsafe_code)]
    let mut name: libc::sockaddr_storage = unsafe { zeroed() };
    let mut name_len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `buf`, `name` and `name_len` are live and sized as passed.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::recvfrom(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
            std::ptr::from_mut(&mut name).cast(),
            &mut name_len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(RecvMeta {
        len: usize::try_from(rc).unwrap_or(0),
        source: from_storage(&name).unwrap_or(UNSPECIFIED),
    })
}

/// Sends up to [`MAX_BATCH`] of `messages` with one `sendmmsg`; returns how many went.
pub(crate) fn send_mmsg(fd: BorrowedFd<'_>, messages: &[Transmit<'_>]) -> io::Result<usize> {
    let count = messages.len().min(MAX_BATCH);
    let mut m = Mmsg::new();
    for (i, message) in messages[..count].iter().enumerate() {
        let name_len = to_storage(message.to, &mut m.names[i]);
        // The kernel only reads through this pointer (sendmmsg).
        let data = message.data.as_ptr().cast_mut();
        m.point(i, data, message.data.len(), name_len);
    }
    // SAFETY: `headers[..count]` point at live data, addresses and I/O vectors that outlive
    // the call; the kernel only reads the data.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::sendmmsg(
            fd.as_raw_fd(),
            m.headers.as_mut_ptr(),
            count as libc::c_uint,
            libc::MSG_DONTWAIT as _,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(usize::try_from(rc).unwrap_or(0))
}

/// Sends one datagram.
pub(crate) fn send_one(fd: BorrowedFd<'_>, data: &[u8], to: SocketAddr) -> io::Result<()> {
    // SAFETY: zero is a valid `sockaddr_storage`.
    #[allow(unsafe_code)]
    let mut name: libc::sockaddr_storage = unsafe { zeroed() };
    let name_len = to_storage(to, &mut name);
    // SAFETY: `data` and `name` are live and sized as passed.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
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

/// One GSO send of `segments` (at most [`MAX_GSO_SEGMENTS`], each `segment` bytes but the
/// last, which may be shorter) to `to`: the kernel reads them where they are, through one
/// I/O vector each, and cuts the whole into datagrams of `segment` bytes.
pub(crate) fn send_gso(
    fd: BorrowedFd<'_>,
    segments: &[IoSlice<'_>],
    segment: usize,
    to: SocketAddr,
) -> io::Result<()> {
    let size = u16::try_from(segment).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    if segments.len() > MAX_GSO_SEGMENTS {
        return Err(io::ErrorKind::InvalidInput.into());
    }
    // SAFETY: zero is a valid `sockaddr_storage`, `msghdr` and `iovec`.
    #[allow(unsafe_code)]
    let (mut name, mut header, mut iovs): (
        libc::sockaddr_storage,
        libc::msghdr,
        [libc::iovec; MAX_GSO_SEGMENTS],
    ) = unsafe { (zeroed(), zeroed(), zeroed()) };
    for (iov, data) in iovs.iter_mut().zip(segments) {
        *iov = libc::iovec {
            iov_base: data.as_ptr().cast_mut().cast(),
            iov_len: data.len(),
        };
    }
    let name_len = to_storage(to, &mut name);
    let mut control = SegmentCmsg([0; 24]);
    point_header(
        &mut header,
        &mut name,
        name_len,
        &mut iovs[0],
        segments.len(),
    );
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
    // SAFETY: every pointer in `header` (address, `segments.len()` I/O vectors over live
    // slices, control) is live for the call; the kernel only reads them.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::sendmsg(fd.as_raw_fd(), &header, libc::MSG_DONTWAIT) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Points a message header at one address (`name_len` bytes of `name` are meaningful, or
/// available for the kernel to fill) and `iov_count` I/O vectors starting at `iov`; the
/// header must not outlive them.
fn point_header(
    header: &mut libc::msghdr,
    name: &mut libc::sockaddr_storage,
    name_len: libc::socklen_t,
    iov: &mut libc::iovec,
    iov_count: usize,
) {
    header.msg_name = std::ptr::from_mut(name).cast();
    header.msg_namelen = name_len;
    header.msg_iov = std::ptr::from_mut(iov);
    header.msg_iovlen = iov_count as _;
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

/// Sets (or clears) "don't fragment" on a UDP socket's outgoing datagrams. IPv4:
/// `IP_MTU_DISCOVER` = `IP_PMTUDISC_DO` sets the DF bit, `IP_PMTUDISC_DONT` clears it (the
/// Linux default, `IP_PMTUDISC_WANT`, would set DF on relayed data). IPv6: `IPV6_DONTFRAG`.
pub(crate) fn set_dont_fragment(fd: BorrowedFd<'_>, ipv6: bool, on: bool) -> io::Result<()> {
    let (level, name, value) = if ipv6 {
        (
            libc::IPPROTO_IPV6,
            libc::IPV6_DONTFRAG,
            libc::c_int::from(on),
        )
    } else {
        let value = if on {
            libc::IP_PMTUDISC_DO
        } else {
            libc::IP_PMTUDISC_DONT
        };
        (libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, value)
    };
    // SAFETY: `fd` is a valid open socket for the duration of the call (borrowed), and the
    // option value points to a live `c_int` whose size is passed.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            std::ptr::from_ref(&value).cast::<libc::c_void>(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reads whether "don't fragment" is set.
pub(crate) fn dont_fragment(fd: BorrowedFd<'_>, ipv6: bool) -> io::Result<bool> {
    let (level, name) = if ipv6 {
        (libc::IPPROTO_IPV6, libc::IPV6_DONTFRAG)
    } else {
        (libc::IPPROTO_IP, libc::IP_MTU_DISCOVER)
    };
    let value = getsockopt_int(fd, level, name)?;
    Ok(if ipv6 {
        value != 0
    } else {
        value == libc::IP_PMTUDISC_DO
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gso_send_is_one_syscall_of_several_datagrams_read_in_place() {
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        b.set_read_timeout(Some(std::time::Duration::from_secs(1)))
            .unwrap();
        // Four segments in four places (no gathering into one buffer first), the last
        // shorter.
        let (one, two, three, four) = ([1u8; 250], [2u8; 250], [3u8; 250], [4u8; 100]);
        let segments = [&one[..], &two, &three, &four].map(IoSlice::new);
        // The GSO path itself, not its fallback: it must succeed on loopback here.
        send_gso(a.as_fd(), &segments, 250, b.local_addr().unwrap()).unwrap();
        let mut buf = [0u8; 2048];
        for (want, len) in [(1u8, 250), (2, 250), (3, 250), (4, 100)] {
            let n = b.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], &vec![want; len][..]);
        }
    }

    #[test]
    fn gso_is_detected_on_this_kernel() {
        // Linux 4.18+ (every kernel these tests run on); a kernel without it would take the
        // fallback, which the other tests cover.
        assert!(detect().gso, "UDP_SEGMENT not supported here");
        assert!(detect().mmsg);
    }
}
