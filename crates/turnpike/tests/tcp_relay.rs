//! TCP allocations (RFC 6062) against the real binary on loopback, with a hand-driven client
//! (raw STUN over TCP with the crate's codec) and plain TCP echo peers: Connect and
//! ConnectionBind, a peer connecting in (ConnectionAttempt), data both ways, and the error
//! answers (403 without permission or against the peer policy, 447, 446). Two workers, so that
//! data connections land on a worker other than their allocation's as often as not.

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use stun::attributes::{
    ConnectionId, ErrorCode, Nonce, PasswordAlgorithmId, RequestedTransport, XorPeerAddress,
    XorRelayedAddress,
};
use stun::{AnyAttribute, Class, LongTermKey, Message, MessageType, Method, TransactionId};

mod common;

use common::{request_bytes, Server, Signer};

const REALM: &str = "tcp-relay.test";
/// Generous for a loaded 2-core machine: nothing here waits on a timer of the server's.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

fn start() -> Server {
    Server::spawn(
        &[
            "--listen",
            "127.0.0.1:0",
            "--udp",
            "false",
            "--http",
            "false",
            "--workers",
            "2",
            "--relay-ip",
            "127.0.0.1",
            "--allowed-peers",
            "127.0.0.1/32",
            "--realm",
            REALM,
            "--users",
            "alice:pw",
        ],
        |_| {},
    )
}

/// A STUN client on one TCP connection, with alice's credentials.
struct StunTcp {
    tcp: TcpStream,
    key: LongTermKey,
    nonce: Option<String>,
    next_tid: u32,
    /// Indications read while waiting for a response.
    indications: VecDeque<Vec<u8>>,
}

impl StunTcp {
    fn connect(server: SocketAddr) -> StunTcp {
        let tcp = TcpStream::connect(server).unwrap();
        tcp.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        tcp.set_nodelay(true).unwrap();
        let key = LongTermKey::derive(PasswordAlgorithmId::MD5, "alice", REALM, "pw").unwrap();
        StunTcp {
            tcp,
            key,
            nonce: None,
            next_tid: 0,
            indications: VecDeque::new(),
        }
    }

    /// The next STUN message on the connection (a 20-byte header, then its length).
    fn read_message(&mut self) -> Vec<u8> {
        let mut message = vec![0u8; 20];
        self.tcp.read_exact(&mut message).unwrap();
        let len = usize::from(u16::from_be_bytes([message[2], message[3]]));
        message.resize(20 + len, 0);
        self.tcp.read_exact(&mut message[20..]).unwrap();
        message
    }

    fn encode(
        &mut self,
        method: Method,
        attributes: &[AnyAttribute<'_>],
    ) -> (TransactionId, Vec<u8>) {
        self.next_tid += 1;
        let mut id = [7u8; 12];
        id[..4].copy_from_slice(&self.next_tid.to_be_bytes());
        let tid = TransactionId(id);
        let signer = self.nonce.as_deref().map(|nonce| Signer {
            username: "alice",
            realm: REALM,
            nonce,
            key: &self.key,
        });
        (tid, request_bytes(method, tid, attributes, signer))
    }

    /// The response to `tid`, keeping the indications that come before it.
    fn response(&mut self, tid: TransactionId) -> Vec<u8> {
        loop {
            let message = self.read_message();
            let m = Message::decode(&message).unwrap();
            if m.header().message_type.class == Class::Indication {
                self.indications.push_back(message);
                continue;
            }
            assert_eq!(
                m.header().transaction_id,
                tid,
                "a response to another request"
            );
            return message;
        }
    }

    /// Sends a request, answering one 401 challenge; the final response.
    fn request(&mut self, method: Method, attributes: &[AnyAttribute<'_>]) -> Vec<u8> {
        for _ in 0..2 {
            let (tid, bytes) = self.encode(method, attributes);
            self.tcp.write_all(&bytes).unwrap();
            let reply = self.response(tid);
            if code(&reply) == 401 && self.nonce.is_none() {
                let m = Message::decode(&reply).unwrap();
                self.nonce = Some(m.get::<Nonce<'_>>().unwrap().unwrap().0.to_string());
                continue;
            }
            return reply;
        }
        panic!("challenge loop");
    }

    /// The next indication (a ConnectionAttempt).
    fn indication(&mut self) -> Vec<u8> {
        match self.indications.pop_front() {
            Some(indication) => indication,
            None => self.read_message(),
        }
    }

    /// The raw connection, once it is a client data connection.
    fn into_stream(self) -> TcpStream {
        self.tcp
    }
}

/// The error code of a response, 0 for a success.
fn code(reply: &[u8]) -> u16 {
    let m = Message::decode(reply).unwrap();
    match m.header().message_type.class {
        Class::Success => 0,
        _ => m.get::<ErrorCode<'_>>().unwrap().unwrap().code,
    }
}

fn connection_id(message: &[u8]) -> u32 {
    let m = Message::decode(message).unwrap();
    m.get::<ConnectionId>().unwrap().unwrap().0
}

fn peer_attr(peer: SocketAddr) -> AnyAttribute<'static> {
    AnyAttribute::XorPeerAddress(XorPeerAddress(peer))
}

/// A control connection with a TCP allocation (RFC 6062 §4.1); its relayed address.
fn tcp_allocation(server: &Server) -> (StunTcp, SocketAddr) {
    let mut control = StunTcp::connect(server.address("tcp"));
    let tcp = AnyAttribute::RequestedTransport(RequestedTransport(RequestedTransport::TCP));
    let reply = control.request(Method::ALLOCATE, &[tcp]);
    assert_eq!(code(&reply), 0, "TCP Allocate");
    let m = Message::decode(&reply).unwrap();
    let relay = m.get::<XorRelayedAddress>().unwrap().unwrap().0;
    (control, relay)
}

/// A client data connection bound to `id` (RFC 6062 §4.3, §5.4), or the ConnectionBind's
/// error code.
fn bind_data(server: &Server, id: u32) -> Result<TcpStream, u16> {
    let mut data = StunTcp::connect(server.address("tcp"));
    let reply = data.request(
        Method::CONNECTION_BIND,
        &[AnyAttribute::ConnectionId(ConnectionId(id))],
    );
    match code(&reply) {
        0 => Ok(data.into_stream()),
        error => Err(error),
    }
}

/// A TCP echo peer on loopback: echoes every connection until it closes.
fn echo_peer() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                loop {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

/// A port on 127.0.0.1 where nothing listens.
fn closed_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Writes `len` patterned bytes to `stream` (from another thread) and reads them back: the
/// relay loses, reorders and adds nothing.
fn echo_round_trip(stream: &mut TcpStream, len: usize, seed: u8) {
    let data: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect();
    let mut writer = stream.try_clone().unwrap();
    let sent = data.clone();
    let writing = std::thread::spawn(move || writer.write_all(&sent).unwrap());
    let mut back = vec![0u8; len];
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.read_exact(&mut back).unwrap();
    writing.join().unwrap();
    assert!(back == data, "the echo differs");
}

/// True once `stream` is closed by the other side (EOF or reset) within `within`.
fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 64];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}

// RFC 6062 §4.3, §5.2, §5.4: Connect from the relayed address, ConnectionBind on a new
// connection, then bytes as they are both ways — for several peers at once, 256 KiB each.
#[test]
fn connect_bind_and_relay_both_ways() {
    let server = start();
    let (mut control, relay) = tcp_allocation(&server);
    let peers: Vec<SocketAddr> = (0..4).map(|_| echo_peer()).collect();
    let attrs: Vec<_> = peers.iter().map(|p| peer_attr(*p)).collect();
    assert_eq!(code(&control.request(Method::CREATE_PERMISSION, &attrs)), 0);
    let mut data = Vec::new();
    for peer in &peers {
        let reply = control.request(Method::CONNECT, &[peer_attr(*peer)]);
        assert_eq!(code(&reply), 0, "Connect to {peer}");
        Message::decode(&reply)
            .unwrap()
            .verify_integrity(control.key.as_bytes())
            .unwrap();
        data.push(bind_data(&server, connection_id(&reply)).unwrap());
    }
    for (i, stream) in data.iter_mut().enumerate() {
        echo_round_trip(stream, 256 * 1024, i as u8);
    }
    // The peer saw the relayed address as the source (RFC 6062 §5.2: "The local endpoint
    // is the relayed transport address"): checked by a peer that reports it.
    let reporter = TcpListener::bind("127.0.0.1:0").unwrap();
    let reporter_addr = reporter.local_addr().unwrap();
    let accepting = std::thread::spawn(move || reporter.accept().unwrap().1);
    assert_eq!(
        code(&control.request(Method::CREATE_PERMISSION, &[peer_attr(reporter_addr)])),
        0
    );
    let reply = control.request(Method::CONNECT, &[peer_attr(reporter_addr)]);
    assert_eq!(code(&reply), 0);
    assert_eq!(accepting.join().unwrap(), relay);
}

// RFC 6062 §5.3, §4.4: a permitted peer connecting to the relayed address brings a
// ConnectionAttempt (XOR-PEER-ADDRESS, CONNECTION-ID); after ConnectionBind, what the peer
// sent before the bind arrives first, and data flows both ways.
#[test]
fn peer_connects_in() {
    let server = start();
    let (mut control, relay) = tcp_allocation(&server);
    let probe = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    assert_eq!(
        code(&control.request(Method::CREATE_PERMISSION, &[peer_attr(probe)])),
        0
    );
    let mut peer = TcpStream::connect(relay).unwrap();
    peer.write_all(b"sent before the bind").unwrap();
    let attempt = control.indication();
    let m = Message::decode(&attempt).unwrap();
    assert_eq!(
        m.header().message_type,
        MessageType::new(Method::CONNECTION_ATTEMPT, Class::Indication)
    );
    assert_eq!(
        m.get::<XorPeerAddress>().unwrap().unwrap().0,
        peer.local_addr().unwrap()
    );
    let mut data = bind_data(&server, connection_id(&attempt)).unwrap();
    data.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut early = [0u8; 20];
    data.read_exact(&mut early).unwrap();
    assert_eq!(&early, b"sent before the bind");
    data.write_all(b"pong").unwrap();
    peer.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut pong = [0u8; 4];
    peer.read_exact(&mut pong).unwrap();
    assert_eq!(&pong, b"pong");
    // RFC 6062 §5.5: the peer closing closes the client data connection...
    drop(peer);
    assert!(closed_within(&mut data, IO_TIMEOUT));
    // ... and the client data connection closing closes the peer's.
    let mut peer = TcpStream::connect(relay).unwrap();
    let attempt = control.indication();
    let data = bind_data(&server, connection_id(&attempt)).unwrap();
    drop(data);
    assert!(closed_within(&mut peer, IO_TIMEOUT));
}

// RFC 6062 §5.3: a peer with no permission is closed at once, and the client hears nothing.
#[test]
fn a_peer_without_permission_is_closed() {
    let server = start();
    let (_control, relay) = tcp_allocation(&server);
    let mut peer = TcpStream::connect(relay).unwrap();
    assert!(closed_within(&mut peer, IO_TIMEOUT));
}

// RFC 6062 §5.2: 403 without a permission and for a peer the policy denies (127.0.0.2 is not
// in --allowed-peers), 447 when the peer refuses, 446 for a second Connect to a peer whose
// connection is pending; ConnectionBind with an unknown id is 400 (§5.4).
#[test]
fn connect_errors() {
    let server = start();
    let (mut control, _) = tcp_allocation(&server);
    let peer = echo_peer();
    assert_eq!(
        code(&control.request(Method::CONNECT, &[peer_attr(peer)])),
        403
    );
    let denied: SocketAddr = format!("127.0.0.2:{}", peer.port()).parse().unwrap();
    assert_eq!(
        code(&control.request(Method::CONNECT, &[peer_attr(denied)])),
        403
    );
    let refused = closed_port();
    let attrs = [peer_attr(peer), peer_attr(refused)];
    assert_eq!(code(&control.request(Method::CREATE_PERMISSION, &attrs)), 0);
    assert_eq!(
        code(&control.request(Method::CONNECT, &[peer_attr(refused)])),
        447
    );
    let reply = control.request(Method::CONNECT, &[peer_attr(peer)]);
    assert_eq!(code(&reply), 0);
    assert_eq!(
        code(&control.request(Method::CONNECT, &[peer_attr(peer)])),
        446
    );
    let id = connection_id(&reply);
    assert_eq!(bind_data(&server, id.wrapping_add(1)).err(), Some(400));
    let mut data = bind_data(&server, id).unwrap();
    echo_round_trip(&mut data, 1000, 9);
    // RFC 6062 §5.5 (and RFC 8656 §3.1): the control connection closing ends the allocation,
    // and with it the data connection.
    drop(control);
    assert!(closed_within(&mut data, IO_TIMEOUT));
}
