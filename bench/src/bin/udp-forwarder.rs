//! `udp-forwarder`: the ceiling for relay-bench — a UDP relay with no protocol.
//!
//! It does what a TURN server does for relayed data with the same system calls and nothing
//! else: a datagram from a client on the listening socket is sent on, unchanged, from that
//! client's own "relay" socket (opened on its first datagram, as an allocation's would be) to
//! the one `--peer`; a datagram arriving on a relay socket is sent back, unchanged, from the
//! listening socket to its client. No parsing, no authentication, no permissions, no channel
//! numbers. `epoll` through `mio`, `recvfrom`/`sendto` one datagram at a time, in `--threads`
//! threads (default: one per CPU, as coturn and Turnpike use): each has its own listening
//! socket on the same port (`SO_REUSEPORT`, so the kernel spreads clients over them by their
//! address) and the relay sockets of its own clients — nothing is shared between threads.
//!
//! `udp-forwarder --listen 127.0.0.1:PORT --peer IP:PORT`; prints `listening ADDR` when ready.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};

use anyhow::Context;
use clap::Parser;
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use socket2::{Domain, Protocol, Socket, Type};

/// A bare UDP forwarder, the ceiling of relay-bench (a benchmark tool).
#[derive(Debug, Parser)]
#[command(name = "udp-forwarder")]
struct Args {
    /// Where clients send.
    #[arg(long)]
    listen: SocketAddr,
    /// Where every datagram goes.
    #[arg(long)]
    peer: SocketAddr,
    /// Threads, each with its own listening socket [default: one per CPU]
    #[arg(long)]
    threads: Option<usize>,
}

const LISTENER: Token = Token(usize::MAX);
/// Socket buffers asked for, as the TURN servers do (the kernel caps them at rmem_max).
const BUFFER_BYTES: usize = 4 << 20;

/// A non-blocking UDP socket with large buffers, like the servers' sockets.
fn bind(addr: SocketAddr, reuse_port: bool) -> std::io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    let _ = socket.set_recv_buffer_size(BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(BUFFER_BYTES);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(UdpSocket::from_std(socket.into()))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let mut listeners = Vec::new();
    for _ in 0..threads {
        listeners.push(bind(args.listen, true).context("binding --listen")?);
    }
    println!(
        "listening {} ({threads} threads)",
        listeners[0].local_addr()?
    );
    let workers: Vec<_> = listeners
        .into_iter()
        .map(|listener| {
            let (peer, ip) = (args.peer, args.listen.ip());
            std::thread::spawn(move || forward(listener, peer, ip))
        })
        .collect();
    for worker in workers {
        match worker.join() {
            Ok(result) => result?,
            Err(_) => anyhow::bail!("a forwarding thread panicked"),
        }
    }
    Ok(())
}

/// One thread's loop: its listening socket and its clients' relay sockets (on `ip`, the
/// listening address).
fn forward(mut listener: UdpSocket, peer: SocketAddr, ip: IpAddr) -> anyhow::Result<()> {
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut relays: Vec<(UdpSocket, SocketAddr)> = Vec::new();
    let mut by_client: HashMap<SocketAddr, usize> = HashMap::new();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 65_536];
    loop {
        poll.poll(&mut events, None)?;
        for event in events.iter() {
            if event.token() == LISTENER {
                loop {
                    let (n, client) = match listener.recv_from(&mut buf) {
                        Ok(received) => received,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(_) => continue,
                    };
                    let index = match by_client.get(&client) {
                        Some(&index) => index,
                        None => {
                            let mut relay = bind((ip, 0).into(), false)?;
                            let index = relays.len();
                            poll.registry().register(
                                &mut relay,
                                Token(index),
                                Interest::READABLE,
                            )?;
                            relays.push((relay, client));
                            by_client.insert(client, index);
                            index
                        }
                    };
                    let _ = relays[index].0.send_to(&buf[..n], peer);
                }
            } else {
                let Some((relay, client)) = relays.get(event.token().0) else {
                    continue;
                };
                loop {
                    match relay.recv_from(&mut buf) {
                        Ok((n, _)) => {
                            let _ = listener.send_to(&buf[..n], *client);
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(_) => continue,
                    }
                }
            }
        }
    }
}
