//! The UDP event loop: receive a datagram, hand it to the right core, send what it returns.
//!
//! Binding requests go to the stateless Binding core, without a lock. Everything else (TURN
//! requests, Send indications, ChannelData) goes to the shared TURN core; a relayed payload
//! is sent from the allocation's relay socket after the lock is released. Buffers are
//! allocated once per task; the per-packet path allocates nothing and logs only at `trace`.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::UdpSocket;
use tracing::trace;
use turn::relay::{is_binding_request, ClientOutcome, ClientTransport, FiveTuple};
use turn::{BindingServer, SocketId, Transport};

use crate::relay_registry::{is_transient, send_to_peer};
use crate::shared::{handle_client, SharedCore};

/// The sockets of one RFC 5780 grid, indexed by [`grid_index`].
pub type UdpGrid = [Option<Arc<UdpSocket>>; 4];

/// Position of a socket in a [`UdpGrid`].
pub fn grid_index(id: SocketId) -> usize {
    usize::from(id.alternate_ip) * 2 + usize::from(id.alternate_port)
}

/// Largest datagram we read; anything longer is truncated by the kernel and then fails to
/// decode (its length field no longer matches), which drops it.
const RECEIVE_BUFFER: usize = 65_536;
/// Room for any answer the cores write (Binding caps PADDING to one MTU; TURN responses are
/// small).
const SEND_BUFFER: usize = 1_500;

/// Serves socket `id` of `grid` until a fatal socket error.
pub async fn run(
    binding: Arc<BindingServer>,
    id: SocketId,
    grid: Arc<UdpGrid>,
    shared: SharedCore,
) -> io::Result<()> {
    let Some(socket) = grid[grid_index(id)].clone() else {
        return Ok(());
    };
    let local = socket.local_addr()?;
    let mut incoming = vec![0u8; RECEIVE_BUFFER];
    let mut outgoing = vec![0u8; SEND_BUFFER];
    loop {
        let (len, source) = match socket.recv_from(&mut incoming).await {
            Ok(received) => received,
            Err(e) if is_transient(&e) => continue,
            Err(e) => return Err(e),
        };
        let packet = &incoming[..len];
        if is_binding_request(packet) {
            if let Some(t) = binding.handle(Transport::Udp, id, source, packet, &mut outgoing) {
                send(&grid, t.from, &outgoing[..t.len], t.to).await;
            }
            continue;
        }
        let five_tuple = FiveTuple {
            client: source,
            server: local,
            transport: ClientTransport::Udp,
        };
        let (outcome, relay_socket) = handle_client(&shared, five_tuple, id, packet, &mut outgoing);
        match outcome {
            ClientOutcome::Reply(t) => send(&grid, t.from, &outgoing[..t.len], t.to).await,
            ClientOutcome::Relay {
                peer,
                payload,
                dont_fragment,
                ..
            } => {
                if let Some(relay) = relay_socket {
                    send_to_peer(&relay, &incoming[payload], peer, dont_fragment).await;
                }
            }
            ClientOutcome::Nothing => trace!(%source, len, "dropped"),
        }
    }
}

/// Sends from socket `from` of the grid; send errors concern one datagram and are not fatal.
async fn send(grid: &UdpGrid, from: SocketId, bytes: &[u8], to: SocketAddr) {
    if let Some(socket) = &grid[grid_index(from)] {
        if let Err(e) = socket.send_to(bytes, to).await {
            trace!(%to, error = %e, "send failed");
        }
    }
}
