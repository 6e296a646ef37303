//! # turnpike-net: socket set-up
//!
//! The one crate that touches socket options and batched syscalls (`recvmmsg`/`sendmmsg`,
//! UDP GSO: [`RecvBatch`], [`send_batch`], [`send_segments`]). Sockets are returned as plain
//! `std` sockets, set non-blocking, for the I/O layer to hand to its runtime; the batch calls
//! work on any borrowed descriptor and never block.
//!
//! [`PollSet`] lets one tokio task wait on an epoll set of many sockets (a worker's relay
//! sockets): registering its descriptor with tokio is the one `unsafe` outside the syscalls.
//!
//! The `unsafe` here is in `linux.rs`: `setsockopt`/`getsockopt` and the send/receive
//! syscalls on borrowed descriptors, with buffers that outlive each call. Other systems get
//! `fallback.rs` (one `recv_from`/`send_to` per datagram through socket2, no GSO), with the
//! same functions, chosen by `cfg` as quinn-udp chooses `unix.rs`/`fallback.rs`.

use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};

use socket2::{Domain, Protocol, Socket, Type};

mod batch;
mod dont_fragment;
#[cfg(unix)]
mod poll_set;

// The system calls: Linux's batched ones, or the portable path (one datagram per call)
// elsewhere and when built with `--cfg turnpike_force_fallback` (how CI tests it on Linux).
#[cfg(all(target_os = "linux", not(turnpike_force_fallback)))]
#[path = "linux.rs"]
mod sys;
#[cfg(not(all(target_os = "linux", not(turnpike_force_fallback))))]
#[path = "fallback.rs"]
mod sys;

pub use batch::{
    send_batch, send_segments, Batching, RecvBatch, RecvMeta, Transmit, MAX_BATCH, MAX_GSO_BYTES,
    MAX_GSO_SEGMENTS,
};
pub use dont_fragment::{dont_fragment, set_dont_fragment};
#[cfg(unix)]
pub use poll_set::PollSet;

/// Receive and send buffer size asked of the kernel for UDP sockets. A busy STUN/TURN port
/// gets bursts; the kernel's default (~200 KiB) overflows under load. The kernel may grant
/// less (net.core.rmem_max), which is not an error.
pub const UDP_BUFFER_BYTES: usize = 4 << 20;

/// Connections waiting to be accepted.
pub const TCP_BACKLOG: i32 = 1024;

fn new_socket(addr: SocketAddr, kind: Type, protocol: Protocol) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), kind, Some(protocol))?;
    if addr.is_ipv6() {
        // One socket per family: `[::]` should not silently take IPv4 as well, so that an
        // operator who lists `0.0.0.0:3478` and `[::]:3478` gets both.
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// Binds a non-blocking UDP socket with large buffers.
pub fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    bind_udp_with(addr, false)
}

/// Binds a non-blocking UDP socket with large buffers and `SO_REUSEPORT`, so that several
/// sockets (one per worker thread) share `addr` and the kernel spreads incoming datagrams
/// over them by a hash of the 4-tuple: one client always reaches the same socket. Only sockets
/// of the same user with `SO_REUSEPORT` set can join; a plain socket on the port makes this
/// fail with "address in use". Fails on kernels without `SO_REUSEPORT` (before Linux 3.9).
pub fn bind_udp_reuse_port(addr: SocketAddr) -> io::Result<UdpSocket> {
    bind_udp_with(addr, true)
}

fn bind_udp_with(addr: SocketAddr, reuse_port: bool) -> io::Result<UdpSocket> {
    let socket = new_socket(addr, Type::DGRAM, Protocol::UDP)?;
    // Best effort: a smaller buffer is still a working socket.
    let _ = socket.set_recv_buffer_size(UDP_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(UDP_BUFFER_BYTES);
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// True when this kernel lets UDP sockets share a port with `SO_REUSEPORT` (tried once on a
/// loopback socket).
pub fn reuse_port_supported() -> bool {
    let probe = SocketAddr::from(([127, 0, 0, 1], 0));
    new_socket(probe, Type::DGRAM, Protocol::UDP)
        .and_then(|s| s.set_reuse_port(true))
        .is_ok()
}

/// Binds a non-blocking TCP listener. SO_REUSEADDR lets a restarted server bind while old
/// connections sit in TIME_WAIT; it does not let two servers share the port on Linux.
pub fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = new_socket(addr, Type::STREAM, Protocol::TCP)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(TCP_BACKLOG)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_udp_and_tcp_on_loopback() {
        // The TCP twin of a free UDP port may be taken by another process (ci32 hit that while
        // other tests ran): try a few UDP ports until one's TCP twin is free too.
        let (udp, tcp, port) = (0..50)
            .find_map(|_| {
                let udp = bind_udp("127.0.0.1:0".parse().unwrap()).unwrap();
                let port = udp.local_addr().unwrap().port();
                let tcp = bind_tcp(SocketAddr::from(([127, 0, 0, 1], port))).ok()?;
                Some((udp, tcp, port))
            })
            .expect("a port free for both UDP and TCP");
        assert_ne!(port, 0);
        assert_eq!(tcp.local_addr().unwrap().port(), port);
        // A second UDP bind of the same port fails: no silent sharing.
        assert!(bind_udp(SocketAddr::from(([127, 0, 0, 1], port))).is_err());
        drop(udp);
    }

    #[test]
    fn reuse_port_sockets_share_a_port_and_plain_ones_do_not() {
        assert!(reuse_port_supported());
        let first = bind_udp_reuse_port("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = first.local_addr().unwrap();
        let second = bind_udp_reuse_port(addr).unwrap();
        assert_eq!(second.local_addr().unwrap(), addr);
        assert!(bind_udp(addr).is_err(), "a plain socket cannot join");
        let plain = bind_udp("127.0.0.1:0".parse().unwrap()).unwrap();
        assert!(bind_udp_reuse_port(plain.local_addr().unwrap()).is_err());
    }
}
