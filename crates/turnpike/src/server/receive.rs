//! Receiving a batch of datagrams on a tokio UDP socket with [`net::RecvBatch`].
//!
//! A batch that comes back short of the slots means the kernel found the queue empty before
//! the batch was full: the socket is drained, so its readiness is cleared at once, rather than
//! after one more `recvmmsg` that could only answer `EAGAIN`. (tokio clears readiness only for
//! the event it was given, so a datagram that arrives meanwhile raises a new event and is not
//! missed.) At one datagram per wake-up — many quiet relay sockets — this halves the receive
//! syscalls.

use std::io;

use net::{Batching, RecvBatch};
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// What one receive got.
#[derive(Debug, Clone, Copy)]
pub struct Received {
    /// Datagrams now in the batch (possibly 0).
    pub count: usize,
    /// The socket is drained: wait for readiness before the next receive.
    pub drained: bool,
}

/// Receives into `batch`; errors other than "nothing waiting" are the socket's.
pub fn receive(
    socket: &UdpSocket,
    batch: &mut RecvBatch,
    batching: Batching,
) -> io::Result<Received> {
    let mut count = 0;
    let result = socket.try_io(Interest::READABLE, || {
        count = batch.recv(socket, batching)?;
        if count < batch.capacity() {
            // Short: drained. Reported as WouldBlock so that tokio clears the readiness.
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(())
    });
    match result {
        Ok(()) => Ok(Received {
            count,
            drained: false,
        }),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Received {
            count,
            drained: true,
        }),
        Err(e) => Err(e),
    }
}
