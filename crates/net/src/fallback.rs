//! The portable path behind [`crate::batch`] and [`crate::dont_fragment`], for systems other
//! than Linux (and for Linux built with `--cfg turnpike_force_fallback`, which is how it is
//! tested): one `recv_from`/`send_to` per datagram through `socket2`, no `recvmmsg`/
//! `sendmmsg`, no GSO, no "don't fragment" control. The functions are those of `linux.rs`;
//! the batched ones answer `Unsupported`, which [`crate::batch`] takes as "use the portable
//! path" (and [`Batching::detect`](crate::Batching::detect) never asks for them here).
//!
//! The sockets must be non-blocking (every socket this crate binds is, and so are tokio's):
//! without `MSG_DONTWAIT`, which is not portable, that is what makes a receive with nothing
//! waiting answer `WouldBlock`.

use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::os::fd::BorrowedFd;

use socket2::{SockAddr, SockRef};

use crate::batch::{Batching, RecvMeta, Transmit, UNSPECIFIED};

/// Nothing batched here.
pub(crate) fn detect() -> Batching {
    Batching::FALLBACK
}

fn unsupported<T>() -> io::Result<T> {
    Err(io::ErrorKind::Unsupported.into())
}

/// `recvmmsg` is never usable here.
pub(crate) fn recv_mmsg_unusable(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Unsupported
}

/// `sendmmsg` is never usable here.
pub(crate) fn send_mmsg_unusable(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Unsupported
}

/// GSO is never usable here.
pub(crate) fn gso_unusable(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Unsupported
}

/// No `recvmmsg`.
pub(crate) fn recv_mmsg(
    _fd: BorrowedFd<'_>,
    _bufs: &mut [&mut [u8]],
    _meta: &mut [RecvMeta],
) -> io::Result<usize> {
    unsupported()
}

/// Receives one datagram into `buf` (`WouldBlock` when none waits).
pub(crate) fn recv_one(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<RecvMeta> {
    // SAFETY: `[u8]` and `[MaybeUninit<u8>]` have the same layout, and `recv_from` only
    // writes initialised bytes into the buffer (socket2's documented contract), so `buf`
    // stays initialised. This view is the one `unsafe` of the portable path: socket2 has no
    // receive-with-sender into initialised memory, and the safe alternatives (peeking the
    // sender, then reading) could pair a datagram with another's sender.
    #[allow(unsafe_code)]
    let uninit = unsafe { &mut *(std::ptr::from_mut(buf) as *mut [MaybeUninit<u8>]) };
    let (len, from) = SockRef::from(&fd).recv_from(uninit)?;
    Ok(RecvMeta {
        len: len.min(buf.len()),
        source: from.as_socket().unwrap_or(UNSPECIFIED),
    })
}

/// No `sendmmsg`.
pub(crate) fn send_mmsg(_fd: BorrowedFd<'_>, _messages: &[Transmit<'_>]) -> io::Result<usize> {
    unsupported()
}

/// Sends one datagram.
pub(crate) fn send_one(fd: BorrowedFd<'_>, data: &[u8], to: SocketAddr) -> io::Result<()> {
    SockRef::from(&fd)
        .send_to(data, &SockAddr::from(to))
        .map(drop)
}

/// No GSO.
pub(crate) fn send_gso(
    _fd: BorrowedFd<'_>,
    _segments: &[IoSlice<'_>],
    _segment: usize,
    _to: SocketAddr,
) -> io::Result<()> {
    unsupported()
}

/// Clearing "don't fragment" succeeds: UDP datagrams go without DF by default on the
/// systems this path serves. Setting it is not offered here (`Unsupported`): a relay that
/// cannot honour DONT-FRAGMENT sends nothing rather than a datagram that may be fragmented.
pub(crate) fn set_dont_fragment(_fd: BorrowedFd<'_>, _ipv6: bool, on: bool) -> io::Result<()> {
    if on {
        unsupported()
    } else {
        Ok(())
    }
}

/// Never set by this path.
pub(crate) fn dont_fragment(_fd: BorrowedFd<'_>, _ipv6: bool) -> io::Result<bool> {
    Ok(false)
}
