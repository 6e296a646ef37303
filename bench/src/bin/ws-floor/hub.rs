//! `WS_FLOOR_HUB=1 ws-floor`: the floor's one-thread epoll loop driving the real sans-IO
//! signaling hub (`signal::Hub`: rooms, limits, routing, liveness, pings) over tungstenite's
//! synchronous WebSocket codec on non-blocking sockets (which also answers WebSocket pings and
//! checks frames: RFC 6455 framing, masking, UTF-8, size). It measures what a hub loop built
//! this way — one thread owning the hub and every signaling socket, no async runtime, no lock,
//! no channel per connection — would cost per routed message, before what it leaves out: TLS,
//! the cluster, ICE credentials in `joined`, Origin checks, connection limits, drain, metrics.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use signal::{Hub, HubConfig, IceConfig, Output};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, WebSocket};

use crate::{find, handshake, HEALTHZ_OK, LISTENER};

enum Conn {
    /// Reading the HTTP request (the upgrade, or `GET /healthz`).
    Http(TcpStream, Vec<u8>),
    /// Upgraded; known to the hub under its token.
    Ws(Box<WebSocket<TcpStream>>),
}

/// Serves `listen` until killed.
pub fn run(listen: std::net::SocketAddr) -> anyhow::Result<()> {
    let mut poll = Poll::new()?;
    let mut listener = TcpListener::bind(listen)?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let config = HubConfig {
        room_capacity: 2,
        ..HubConfig::default()
    };
    let mut hub = Hub::new(config, Box::new(rand::rngs::OsRng));
    let mut conns: HashMap<u64, Conn> = HashMap::new();
    let mut next: u64 = 1;
    let mut events = Events::with_capacity(1024);
    loop {
        let timeout = hub
            .poll_timeout()
            .map(|at| at.saturating_duration_since(Instant::now()));
        poll.poll(&mut events, timeout)?;
        let now = Instant::now();
        hub.handle_timeout(now);
        for event in &events {
            if event.token() == LISTENER {
                while let Ok((mut stream, _)) = listener.accept() {
                    stream.set_nodelay(true)?;
                    let id = next;
                    next += 1;
                    poll.registry().register(
                        &mut stream,
                        Token(usize::try_from(id)?),
                        Interest::READABLE | Interest::WRITABLE,
                    )?;
                    conns.insert(id, Conn::Http(stream, Vec::new()));
                }
                continue;
            }
            let id = event.token().0 as u64;
            let Some(conn) = conns.get_mut(&id) else {
                continue;
            };
            let alive = match conn {
                Conn::Http(stream, input) => match read_request(stream, input) {
                    Some(request) => match handshake(&request) {
                        Ok(Some(answer)) => {
                            let _ = std::io::Write::write_all(stream, answer.as_bytes());
                            upgrade(&mut conns, id);
                            hub.connect(now, id, IceConfig::empty());
                            true
                        }
                        Ok(None) => {
                            let _ = std::io::Write::write_all(stream, HEALTHZ_OK.as_bytes());
                            false
                        }
                        Err(_) => false,
                    },
                    None => true,
                },
                Conn::Ws(ws) => {
                    if event.is_writable() {
                        let _ = ws.flush();
                    }
                    read_frames(ws, id, now, &mut hub)
                }
            };
            if !alive {
                if let Some(Conn::Ws(_)) = conns.remove(&id) {
                    hub.disconnect(now, id);
                }
            }
            deliver(&mut hub, &mut conns);
        }
        deliver(&mut hub, &mut conns);
    }
}

/// Replaces connection `id`'s HTTP state by a WebSocket on the same socket. Its read and
/// write buffers are those `turnpike serve` uses (4 KiB to read, frames written at once).
fn upgrade(conns: &mut HashMap<u64, Conn>, id: u64) {
    if let Some(Conn::Http(stream, _)) = conns.remove(&id) {
        let config = WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(0);
        let ws = WebSocket::from_raw_socket(stream, Role::Server, Some(config));
        conns.insert(id, Conn::Ws(Box::new(ws)));
    }
}

/// Reads what the socket has; the request's head once it is complete.
fn read_request(stream: &mut TcpStream, input: &mut Vec<u8>) -> Option<String> {
    let mut chunk = [0u8; 2048];
    loop {
        match std::io::Read::read(stream, &mut chunk) {
            Ok(0) => return None,
            Ok(n) => input.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(_) => return None,
        }
    }
    let end = find(input, b"\r\n\r\n")?;
    Some(String::from_utf8_lossy(&input[..end]).into_owned())
}

/// Reads every frame waiting; false when the connection ended.
fn read_frames(ws: &mut WebSocket<TcpStream>, id: u64, now: Instant, hub: &mut Hub) -> bool {
    loop {
        match ws.read() {
            Ok(Message::Text(text)) => {
                let unix = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                hub.handle_text(now, unix, id, text.as_str());
            }
            Ok(Message::Close(_)) => return false,
            Ok(_) => {}
            Err(WsError::Io(e)) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
    }
}

/// Carries out the hub's outputs: frames written now (a frame the socket cannot take stays in
/// tungstenite's buffer until the socket is writable), closes sent.
fn deliver(hub: &mut Hub, conns: &mut HashMap<u64, Conn>) {
    while let Some(output) = hub.poll_output() {
        match output {
            Output::Send { conn, text } => {
                if let Some(Conn::Ws(ws)) = conns.get_mut(&conn) {
                    let _ = ws.send(Message::text(text));
                }
            }
            Output::Close { conn, .. } => {
                if let Some(Conn::Ws(ws)) = conns.get_mut(&conn) {
                    let _ = ws.close(None);
                    let _ = ws.flush();
                }
            }
            _ => {}
        }
    }
}
