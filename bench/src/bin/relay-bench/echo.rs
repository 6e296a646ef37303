//! The echo peer: one UDP socket on loopback that sends every datagram back to where it came
//! from. Its own thread, blocking I/O — two system calls per datagram, so that it is not what
//! limits a run (its CPU is inside the generator's figure).

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
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
        let socket: UdpSocket = socket.into();
        // Wake up now and then to notice the stop flag.
        socket.set_read_timeout(Some(Duration::from_millis(100)))?;
        let addr = socket.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("echo-peer".into())
                .spawn(move || {
                    let mut buf = vec![0u8; 65_536];
                    while !stop.load(Ordering::Relaxed) {
                        if let Ok((n, from)) = socket.recv_from(&mut buf) {
                            let _ = socket.send_to(&buf[..n], from);
                        }
                    }
                })?
        };
        Ok(EchoPeer {
            addr,
            stop,
            thread: Some(thread),
        })
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
