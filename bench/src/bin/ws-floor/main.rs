//! The floor of a WebSocket signaling relay on this machine (a benchmark tool, not a server):
//! what `signal-load` costs against the least a server can do per routed message — one
//! thread, one epoll set, one `read` of the sender's frame and one `write` of the routed frame
//! to the recipient, no async runtime, no HTTP library, no JSON parser, no limits, no timers.
//!
//! It speaks only what `signal-load` sends: `GET /healthz`, the WebSocket upgrade of `/ws`
//! (RFC 6455 §4.2), unfragmented masked text frames (§5.2), `join` (answered with `joined` and
//! `peer-joined`), `message` (routed with the server-stamped `from`), `pong`, ping and close.
//! Anything else closes the connection. Started as `ws-floor serve … --http-listen ADDR …`
//! (the flags `signal-load` gives `turnpike serve`; all but `--http-listen` are ignored), so
//! that `signal-load --server-bin target/release/ws-floor` measures it with the same command
//! as Turnpike. With `WS_FLOOR_HUB=1` in its environment it runs [`hub`] instead: the same
//! loop driving the real hub. See docs/benchmarks.md, "The floor of a WebSocket relay".

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;

use anyhow::{bail, Context};
use base64::Engine;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use sha1::{Digest, Sha1};

/// The listener's token; connection `i` has token `i + 1`.
const LISTENER: Token = Token(0);

/// Bytes read per `read` call: larger than any frame `signal-load` sends.
const READ_CHUNK: usize = 4096;

/// The answer to `GET /healthz` (what `signal-load` waits for before it starts).
const HEALTHZ_OK: &str = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";

/// RFC 6455 §1.3: appended to the client's key before hashing.
const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

struct Conn {
    stream: TcpStream,
    /// Bytes read and not yet parsed (a partial request or frame).
    input: Vec<u8>,
    /// Bytes the socket did not take yet; written when it is writable again.
    output: Vec<u8>,
    /// Upgraded to WebSocket.
    open: bool,
    /// The room it joined.
    room: Option<String>,
}

mod hub;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let listen: SocketAddr = args
        .iter()
        .position(|a| a == "--http-listen")
        .and_then(|i| args.get(i + 1))
        .context("--http-listen ADDR is required")?
        .parse()
        .context("--http-listen")?;
    // An environment variable, not a flag: `signal-load` gives the server its own flags.
    if std::env::var_os("WS_FLOOR_HUB").is_some() {
        return hub::run(listen);
    }
    let mut poll = Poll::new()?;
    let mut listener = TcpListener::bind(listen)?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut rooms: HashMap<String, Vec<usize>> = HashMap::new();
    let mut events = Events::with_capacity(1024);
    let mut chunk = vec![0u8; READ_CHUNK];
    loop {
        poll.poll(&mut events, None)?;
        for event in &events {
            if event.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            stream.set_nodelay(true)?;
                            let index = free.pop().unwrap_or_else(|| {
                                conns.push(None);
                                conns.len() - 1
                            });
                            poll.registry().register(
                                &mut stream,
                                Token(index + 1),
                                Interest::READABLE | Interest::WRITABLE,
                            )?;
                            conns[index] = Some(Conn {
                                stream,
                                input: Vec::new(),
                                output: Vec::new(),
                                open: false,
                                room: None,
                            });
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e.into()),
                    }
                }
                continue;
            }
            let index = event.token().0 - 1;
            if event.is_writable() {
                flush(&mut conns, index);
            }
            if event.is_readable() || event.is_read_closed() {
                let alive = read_all(&mut conns, index, &mut chunk, &mut rooms);
                if !alive {
                    close(&mut conns, &mut free, &mut rooms, &poll, index);
                }
            }
        }
    }
}

/// Reads what the socket has (stopping at a short read, as tokio does: the next edge brings
/// more) and handles every complete request or frame. False: the connection is to be closed.
fn read_all(
    conns: &mut [Option<Conn>],
    index: usize,
    chunk: &mut [u8],
    rooms: &mut HashMap<String, Vec<usize>>,
) -> bool {
    loop {
        let Some(conn) = conns[index].as_mut() else {
            return false;
        };
        match conn.stream.read(chunk) {
            Ok(0) => return false,
            Ok(n) => {
                conn.input.extend_from_slice(&chunk[..n]);
                if !handle_input(conns, index, rooms) {
                    return false;
                }
                if n < chunk.len() {
                    return true;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

/// Handles the complete requests or frames in `conns[index].input`.
fn handle_input(
    conns: &mut [Option<Conn>],
    index: usize,
    rooms: &mut HashMap<String, Vec<usize>>,
) -> bool {
    loop {
        let Some(conn) = conns[index].as_mut() else {
            return false;
        };
        if !conn.open {
            let Some(end) = find(&conn.input, b"\r\n\r\n") else {
                return true;
            };
            let request = String::from_utf8_lossy(&conn.input[..end]).into_owned();
            conn.input.drain(..end + 4);
            return match handshake(&request) {
                Ok(Some(answer)) => {
                    conn.open = true;
                    send_raw(conns, index, answer.as_bytes());
                    true
                }
                Ok(None) => {
                    send_raw(conns, index, HEALTHZ_OK.as_bytes());
                    false
                }
                Err(_) => false,
            };
        }
        let Some((opcode, payload, used)) = (match parse_frame(&conn.input) {
            Ok(frame) => frame,
            Err(_) => return false,
        }) else {
            return true;
        };
        conn.input.drain(..used);
        match opcode {
            0x1 => {
                let Ok(text) = String::from_utf8(payload) else {
                    return false;
                };
                if !handle_text(conns, index, &text, rooms) {
                    return false;
                }
            }
            0x8 => {
                send_frame(conns, index, 0x8, &[]);
                return false;
            }
            0x9 => send_frame(conns, index, 0xA, &payload),
            0xA => {}
            _ => return false,
        }
    }
}

/// The answer to an HTTP request: `Some(101 …)` for the upgrade of `/ws`, `None` for
/// `/healthz`; anything else is refused.
fn handshake(request: &str) -> anyhow::Result<Option<String>> {
    let mut lines = request.split("\r\n");
    let first = lines.next().unwrap_or_default();
    if first.starts_with("GET /healthz ") {
        return Ok(None);
    }
    if !first.starts_with("GET /ws") {
        bail!("not /ws");
    }
    let key = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("sec-websocket-key"))
        .map(|(_, value)| value.trim().to_owned())
        .context("no Sec-WebSocket-Key")?;
    let mut hash = Sha1::new();
    hash.update(key.as_bytes());
    hash.update(WS_GUID.as_bytes());
    let accept = base64::engine::general_purpose::STANDARD.encode(hash.finalize());
    Ok(Some(format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    )))
}

/// One client frame (RFC 6455 §5.2: FIN set, masked): `(opcode, unmasked payload, bytes
/// used)`, or `None` until it is complete.
fn parse_frame(input: &[u8]) -> anyhow::Result<Option<(u8, Vec<u8>, usize)>> {
    if input.len() < 2 {
        return Ok(None);
    }
    if input[0] & 0x80 == 0 || input[1] & 0x80 == 0 {
        bail!("fragmented or unmasked");
    }
    let opcode = input[0] & 0x0f;
    let (len, mut at) = match input[1] & 0x7f {
        126 if input.len() >= 4 => (usize::from(u16::from_be_bytes([input[2], input[3]])), 4),
        127 => bail!("frame too large for the floor"),
        126 => return Ok(None),
        small => (usize::from(small), 2),
    };
    if input.len() < at + 4 + len {
        return Ok(None);
    }
    let mask = [input[at], input[at + 1], input[at + 2], input[at + 3]];
    at += 4;
    let payload = input[at..at + len]
        .iter()
        .zip(mask.iter().cycle())
        .map(|(b, m)| b ^ m)
        .collect();
    Ok(Some((opcode, payload, at + len)))
}

/// `join` and `message`; `pong` is ignored. False: close the connection.
fn handle_text(
    conns: &mut [Option<Conn>],
    index: usize,
    text: &str,
    rooms: &mut HashMap<String, Vec<usize>>,
) -> bool {
    if text.starts_with(r#"{"type":"message""#) {
        let (Some(to), Some(data_at)) = (string_member(text, "to"), text.find(r#""data":"#)) else {
            return false;
        };
        let data = &text[data_at + 7..text.len() - 1];
        let Some(to) = to.strip_prefix('p').and_then(|n| n.parse::<usize>().ok()) else {
            return false;
        };
        if conns.get(to).is_some_and(Option::is_some) {
            let frame = format!(r#"{{"type":"message","from":"p{index}","data":{data}}}"#);
            send_frame(conns, to, 0x1, frame.as_bytes());
        }
        return true;
    }
    if text.starts_with(r#"{"type":"join""#) {
        let Some(room) = string_member(text, "room") else {
            return false;
        };
        let members = rooms.entry(room.to_owned()).or_default();
        let peers: Vec<String> = members.iter().map(|m| format!(r#""p{m}""#)).collect();
        let others = members.clone();
        members.push(index);
        if let Some(conn) = conns[index].as_mut() {
            conn.room = Some(room.to_owned());
        }
        let joined = format!(
            r#"{{"type":"joined","id":"p{index}","peers":[{}]}}"#,
            peers.join(",")
        );
        send_frame(conns, index, 0x1, joined.as_bytes());
        let note = format!(r#"{{"type":"peer-joined","id":"p{index}"}}"#);
        for other in others {
            send_frame(conns, other, 0x1, note.as_bytes());
        }
        return true;
    }
    text.starts_with(r#"{"type":"pong""#)
}

/// The value of the string member `name` (no escapes: the floor's input has none).
fn string_member<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(r#""{name}":""#);
    let start = text.find(&key)? + key.len();
    let len = text[start..].find('"')?;
    Some(&text[start..start + len])
}

/// Sends one unmasked server frame (RFC 6455 §5.2).
fn send_frame(conns: &mut [Option<Conn>], index: usize, opcode: u8, payload: &[u8]) {
    let mut frame = Vec::with_capacity(payload.len() + 4);
    frame.push(0x80 | opcode);
    match u16::try_from(payload.len()) {
        Ok(len) if len < 126 => frame.push(len as u8),
        Ok(len) => {
            frame.push(126);
            frame.extend_from_slice(&len.to_be_bytes());
        }
        Err(_) => return,
    }
    frame.extend_from_slice(payload);
    send_raw(conns, index, &frame);
}

/// Writes `bytes` now if the socket takes them; the rest waits for writability.
fn send_raw(conns: &mut [Option<Conn>], index: usize, bytes: &[u8]) {
    let Some(conn) = conns.get_mut(index).and_then(Option::as_mut) else {
        return;
    };
    if !conn.output.is_empty() {
        conn.output.extend_from_slice(bytes);
        return;
    }
    let mut at = 0;
    while at < bytes.len() {
        match conn.stream.write(&bytes[at..]) {
            Ok(n) => at += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    conn.output.extend_from_slice(&bytes[at..]);
}

/// Writes what waited for writability.
fn flush(conns: &mut [Option<Conn>], index: usize) {
    let Some(conn) = conns.get_mut(index).and_then(Option::as_mut) else {
        return;
    };
    while !conn.output.is_empty() {
        match conn.stream.write(&conn.output) {
            Ok(n) => {
                conn.output.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Drops connection `index` and its room membership.
fn close(
    conns: &mut [Option<Conn>],
    free: &mut Vec<usize>,
    rooms: &mut HashMap<String, Vec<usize>>,
    poll: &Poll,
    index: usize,
) {
    let Some(mut conn) = conns[index].take() else {
        return;
    };
    let _ = poll.registry().deregister(&mut conn.stream);
    if let Some(room) = conn.room {
        if let Some(members) = rooms.get_mut(&room) {
            members.retain(|&m| m != index);
            if members.is_empty() {
                rooms.remove(&room);
            }
        }
    }
    free.push(index);
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
