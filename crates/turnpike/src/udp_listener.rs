//! The UDP event loop: receive a datagram, hand it to the core, send what it returns.
//!
//! One task per socket. With RFC 5780 behaviour discovery a response may leave from another
//! socket of the grid, so every task holds all of them. Buffers are allocated once per task;
//! the per-packet path allocates nothing, logs only at `trace`, and takes no lock.

use std::io;
use std::sync::Arc;

use tokio::net::UdpSocket;
use tracing::trace;
use turn::{BindingServer, SocketId, Transport};

/// The sockets of one RFC 5780 grid, indexed by [`grid_index`].
pub type UdpGrid = [Option<Arc<UdpSocket>>; 4];

/// Position of a socket in a [`UdpGrid`].
pub fn grid_index(id: SocketId) -> usize {
    usize::from(id.alternate_ip) * 2 + usize::from(id.alternate_port)
}

/// Largest datagram we read; anything longer is truncated by the kernel and then fails to
/// decode (its length field no longer matches), which drops it.
const RECEIVE_BUFFER: usize = 65_536;
/// Room for any answer the Binding core writes (it caps PADDING to one MTU).
const SEND_BUFFER: usize = 1_500;

/// Serves socket `id` of `grid` until a fatal socket error.
pub async fn run(server: Arc<BindingServer>, id: SocketId, grid: Arc<UdpGrid>) -> io::Result<()> {
    let Some(socket) = grid[grid_index(id)].clone() else {
        return Ok(());
    };
    let mut incoming = vec![0u8; RECEIVE_BUFFER];
    let mut outgoing = vec![0u8; SEND_BUFFER];
    loop {
        let (len, source) = match socket.recv_from(&mut incoming).await {
            Ok(received) => received,
            // An ICMP error for an earlier send surfaces here on Linux; it concerns that
            // destination, not this socket.
            Err(e) if is_transient(&e) => continue,
            Err(e) => return Err(e),
        };
        let Some(transmit) =
            server.handle(Transport::Udp, id, source, &incoming[..len], &mut outgoing)
        else {
            trace!(%source, len, "dropped");
            continue;
        };
        let Some(from) = &grid[grid_index(transmit.from)] else {
            continue;
        };
        if let Err(e) = from.send_to(&outgoing[..transmit.len], transmit.to).await {
            trace!(to = %transmit.to, error = %e, "send failed");
        }
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}
