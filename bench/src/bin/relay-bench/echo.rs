//! The echo peer: one UDP socket that sends every datagram back to where it came from. Its own
//! thread; it takes what is waiting in batches (`recvmmsg`) and answers them in one
//! `sendmmsg`, so that at saturation it spends its time in the network stack rather than in
//! system-call overhead: its CPU is part of the load, not of what is measured.

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

/// Receive and send buffer asked for (the kernel caps it at net.core.rmem_max / wmem_max).
const BUFFER_BYTES: usize = 4 << 20;

/// A running echo peer; stopped when dropped.
#[derive(Debug)]
pub struct EchoPeer {
    /// Its address.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EchoPeer {
    /// Binds 127.0.0.1:0 and starts echoing.
    #[cfg(test)]
    pub fn start() -> anyhow::Result<EchoPeer> {
        EchoPeer::start_on(Ipv4Addr::LOCALHOST)
    }

    /// Binds `ip`, a free port, and starts echoing (in the network namespace of the calling
    /// thread: a socket stays in the one it was made in).
    pub fn start_on(ip: Ipv4Addr) -> anyhow::Result<EchoPeer> {
        let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        let _ = socket.set_recv_buffer_size(BUFFER_BYTES);
        let _ = socket.set_send_buffer_size(BUFFER_BYTES);
        socket.bind(&SocketAddr::from((ip, 0)).into())?;
        socket.set_nonblocking(true)?;
        let socket: UdpSocket = socket.into();
        let addr = socket.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("echo-peer".into())
                .spawn(move || echo(&socket, &stop))?
        };
        Ok(EchoPeer {
            addr,
            stop,
            thread: Some(thread),
        })
    }
}

/// Echoes until `stop`; wakes up every 100 ms to notice it.
fn echo(socket: &UdpSocket, stop: &AtomicBool) {
    let Ok(mut poll) = mio::Poll::new() else {
        return;
    };
    let fd = socket.as_raw_fd();
    let token = mio::Token(0);
    let registered = poll.registry().register(
        &mut mio::unix::SourceFd(&fd),
        token,
        mio::Interest::READABLE,
    );
    if registered.is_err() {
        return;
    }
    let batching = net::Batching::detect();
    let mut batch = net::RecvBatch::new(net::MAX_BATCH, 0, 2048, 0);
    let mut events = mio::Events::with_capacity(4);
    while !stop.load(Ordering::Relaxed) {
        if poll
            .poll(&mut events, Some(Duration::from_millis(100)))
            .is_err()
        {
            continue;
        }
        // Edge-triggered: drain the socket before waiting again.
        loop {
            match batch.recv(socket, batching) {
                Ok(n) => {
                    let answers: Vec<net::Transmit<'_>> = (0..n)
                        .map(|i| {
                            let (data, to) = batch.datagram(i);
                            net::Transmit { data, to }
                        })
                        .collect();
                    // A full send buffer loses answers, which the generator counts as loss.
                    let _ = net::send_batch(socket, &answers, batching);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => {} // an ICMP error reported on the socket
            }
        }
    }
}

impl Drop for EchoPeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
