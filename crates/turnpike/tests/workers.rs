//! `workers = 2`: UDP clients spread over two workers (SO_REUSEPORT), each allocation served
//! end to end by the worker that owns it, and both workers get some. The counters come from
//! `GET /metrics`, as an operator reads them.

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use stun::attributes::{
    ChannelNumber, Data, ErrorCode, Nonce, PasswordAlgorithmId, RequestedTransport, XorPeerAddress,
    XorRelayedAddress,
};
use stun::TransactionId;
use stun::{AnyAttribute, Class, LongTermKey, Message, Method};

mod common;

use common::scrape::{sum, value, wait_until};
use common::{request_bytes, Server, Signer};

const REALM: &str = "workers.test";

/// A TURN client on its own UDP socket (its own source port, so its own 5-tuple).
struct Client {
    socket: UdpSocket,
    server: SocketAddr,
    key: LongTermKey,
    nonce: Option<String>,
    next_tid: u8,
}

impl Client {
    fn new(server: SocketAddr) -> Client {
        Self::on(UdpSocket::bind("127.0.0.1:0").unwrap(), server)
    }

    /// A client on `socket` (blocking reads, 5 s timeout).
    fn on(socket: UdpSocket, server: SocketAddr) -> Client {
        socket.set_nonblocking(false).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let key = LongTermKey::derive(PasswordAlgorithmId::MD5, "alice", REALM, "pw").unwrap();
        Client {
            socket,
            server,
            key,
            nonce: None,
            next_tid: 0,
        }
    }

    /// Sends a request of `method`, signed once a nonce is known; returns its transaction id.
    fn send(&mut self, method: Method, attributes: &[AnyAttribute<'_>]) -> TransactionId {
        self.next_tid += 1;
        let tid = TransactionId([self.next_tid; 12]);
        let signer = self.nonce.as_deref().map(|nonce| Signer {
            username: "alice",
            realm: REALM,
            nonce,
            key: &self.key,
        });
        let bytes = request_bytes(method, tid, attributes, signer);
        self.socket.send_to(&bytes, self.server).unwrap();
        tid
    }

    /// Sends an unsigned Allocate and keeps the nonce of the 401 it draws.
    fn challenge(&mut self, attributes: &[AnyAttribute<'_>]) {
        self.nonce = None;
        self.send(Method::ALLOCATE, attributes);
        let mut reply = [0u8; 1500];
        let len = self.socket.recv(&mut reply).unwrap();
        let m = Message::decode(&reply[..len]).unwrap();
        self.nonce = Some(m.get::<Nonce<'_>>().unwrap().unwrap().0.to_string());
    }

    /// Sends a request (answering one 401 challenge) and returns the success response.
    fn request(&mut self, method: Method, attributes: &[AnyAttribute<'_>]) -> Vec<u8> {
        for _ in 0..2 {
            let tid = self.send(method, attributes);
            let mut reply = [0u8; 1500];
            let len = self.socket.recv(&mut reply).unwrap();
            let m = Message::decode(&reply[..len]).unwrap();
            assert_eq!(m.header().transaction_id, tid);
            if m.header().message_type.class == Class::Success {
                return reply[..len].to_vec();
            }
            let code = m.get::<ErrorCode<'_>>().unwrap().unwrap().code;
            assert_eq!(code, 401, "{method:?}");
            self.nonce = Some(m.get::<Nonce<'_>>().unwrap().unwrap().0.to_string());
        }
        panic!("challenge loop");
    }
}

/// A server relaying on loopback for `alice`, with `workers` workers.
fn relay_server(workers: &str) -> Server {
    relay_server_on(workers, "127.0.0.1")
}

/// [`relay_server`] with the relay addresses `relay_ips` (comma-separated).
fn relay_server_on(workers: &str, relay_ips: &str) -> Server {
    relay_server_with(workers, relay_ips, &[])
}

/// [`relay_server_on`] with more flags.
fn relay_server_with(workers: &str, relay_ips: &str, more: &[&str]) -> Server {
    let mut args = vec![
        "--listen",
        "127.0.0.1:0",
        "--tcp",
        "false",
        "--http",
        "false",
        "--workers",
        workers,
        "--relay-ip",
        relay_ips,
        "--allowed-peers",
        "127.0.0.1/32",
        "--realm",
        REALM,
        "--users",
        "alice:pw",
        "--metrics-listen",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(more);
    Server::spawn(&args, |_| {})
}

/// Allocates a UDP relay; returns the relayed address.
fn allocate(client: &mut Client) -> SocketAddr {
    let reply = client.request(
        Method::ALLOCATE,
        &[AnyAttribute::RequestedTransport(RequestedTransport(
            RequestedTransport::UDP,
        ))],
    );
    Message::decode(&reply)
        .unwrap()
        .get::<XorRelayedAddress>()
        .unwrap()
        .unwrap()
        .0
}

/// Allocates and binds channel 0x4000 to `peer`; returns the relayed address.
fn allocate_and_bind(client: &mut Client, peer: SocketAddr) -> SocketAddr {
    let relay = allocate(client);
    client.request(
        Method::CHANNEL_BIND,
        &[
            AnyAttribute::ChannelNumber(ChannelNumber(0x4000)),
            AnyAttribute::XorPeerAddress(XorPeerAddress(peer)),
        ],
    );
    relay
}

/// Allocates and installs a permission for `peer` (no channel: peer data comes back as Data
/// indications, RFC 8656 §11.3); returns the relayed address.
fn allocate_and_permit(client: &mut Client, peer: SocketAddr) -> SocketAddr {
    let relay = allocate(client);
    client.request(
        Method::CREATE_PERMISSION,
        &[AnyAttribute::XorPeerAddress(XorPeerAddress(peer))],
    );
    relay
}

// Bursts, so that the loops get many datagrams per `recvmmsg` and send them with
// `sendmmsg` (client → peer) and with one GSO send (peer → client: equal sizes, one client,
// the last shorter): every datagram arrives, whole and in order (RFC 8656 §12.4 framing).
#[test]
fn bursts_are_relayed_whole_and_in_order() {
    let server = relay_server("1");
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut client = Client::new(server.address("udp"));
    let relay = allocate_and_bind(&mut client, peer.local_addr().unwrap());
    const BURST: u8 = 30;
    for round in 0..3u8 {
        for i in 0..BURST {
            let mut data = vec![0x40, 0x00, 0x00, 200];
            data.extend([round ^ i; 200]);
            client.socket.send_to(&data, client.server).unwrap();
        }
        let mut buf = [0u8; 1500];
        for i in 0..BURST {
            let len = peer.recv(&mut buf).unwrap();
            assert_eq!(
                &buf[..len],
                &[round ^ i; 200][..],
                "round {round} datagram {i}"
            );
        }
        for i in 0..BURST {
            let len = if i == BURST - 1 { 57 } else { 300 };
            peer.send_to(&vec![round ^ i; len], relay).unwrap();
        }
        for i in 0..BURST {
            let len = client.socket.recv(&mut buf).unwrap();
            let want = if i == BURST - 1 { 57 } else { 300 };
            assert_eq!(&buf[..2], &[0x40, 0x00]);
            assert_eq!(&buf[2..4], &u16::try_from(want).unwrap().to_be_bytes());
            assert_eq!(
                &buf[4..len],
                &vec![round ^ i; want][..],
                "round {round} datagram {i}"
            );
        }
    }
    // Each datagram counted once, however many went per syscall.
    let relayed = f64::from(3 * u32::from(BURST));
    let direction =
        |d: &str| format!(r#"turnpike_relayed_packets_total{{direction="{d}",transport="udp"}}"#);
    wait_until(
        server.address("metrics"),
        |s| {
            s.get(&direction("to_peer")) == Some(&relayed)
                && s.get(&direction("to_client")) == Some(&relayed)
        },
        "every datagram of the bursts counted",
    );
    let (code, _) = server.stop_with_log();
    assert_eq!(code, Some(0));
}

/// Sends `signal` (STOP or CONT) to process `pid`.
fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pid}");
}

// The relay loop (one epoll set per worker over its relay sockets): with the server stopped,
// a peer queues one datagram on each of 40 quiet allocations (channels and Data indications
// alternating) and 300 on a busy one, more than one pass's budget for a socket (4 batches of
// 32). Resumed, the worker finds them all ready at once; quiet sockets' datagrams share
// batches, each must reach its own client framed for its own allocation, and the busy
// socket's rest, carried over to later passes, must arrive whole and in order without any
// new datagram to wake the loop. Nothing is dropped (every drop would be counted by cause).
#[test]
fn a_pass_over_many_ready_relay_sockets_routes_each_datagram_and_carries_the_rest() {
    let server = relay_server("1");
    let peer = net::bind_udp("127.0.0.1:0".parse().unwrap()).unwrap();
    let peer_addr = peer.local_addr().unwrap();
    const QUIET: usize = 40;
    const BUSY: u16 = 300;
    let mut quiet = Vec::new();
    for i in 0..QUIET {
        let mut client = Client::new(server.address("udp"));
        let relay = if i % 2 == 0 {
            allocate_and_bind(&mut client, peer_addr)
        } else {
            allocate_and_permit(&mut client, peer_addr)
        };
        quiet.push((client, relay));
    }
    // The busy client reads 300 datagrams at once: a 4 MiB receive buffer.
    let busy_socket = net::bind_udp("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut busy = Client::on(busy_socket, server.address("udp"));
    let busy_relay = allocate_and_bind(&mut busy, peer_addr);

    signal(server.child.id(), "STOP");
    let sent = std::panic::catch_unwind(|| {
        for seq in 0..BUSY {
            peer.send_to(&seq.to_be_bytes().repeat(20), busy_relay)
                .unwrap();
        }
        for (i, (_, relay)) in quiet.iter().enumerate() {
            peer.send_to(format!("to quiet {i}").as_bytes(), *relay)
                .unwrap();
        }
    });
    signal(server.child.id(), "CONT");
    sent.unwrap();

    let mut buf = [0u8; 1500];
    for (i, (client, _)) in quiet.iter().enumerate() {
        let len = client.socket.recv(&mut buf).unwrap();
        let want = format!("to quiet {i}");
        if i % 2 == 0 {
            assert_eq!(&buf[..2], &[0x40, 0x00], "ChannelData for client {i}");
            assert_eq!(&buf[4..len], want.as_bytes(), "client {i}");
        } else {
            let m = Message::decode(&buf[..len]).unwrap();
            assert_eq!(m.header().message_type.method, Method::DATA, "client {i}");
            assert_eq!(m.get::<Data<'_>>().unwrap().unwrap().0, want.as_bytes());
            assert_eq!(
                m.get::<XorPeerAddress>().unwrap().unwrap().0,
                peer_addr,
                "client {i}"
            );
        }
    }
    for seq in 0..BUSY {
        let len = busy.socket.recv(&mut buf).unwrap();
        assert_eq!(&buf[..4], &[0x40, 0x00, 0x00, 40]);
        assert_eq!(&buf[4..len], &seq.to_be_bytes().repeat(20)[..], "seq {seq}");
    }
    let all = (QUIET + usize::from(BUSY)) as f64;
    let to_client = r#"turnpike_relayed_packets_total{direction="to_client",transport="udp"}"#;
    let scrape = wait_until(
        server.address("metrics"),
        |s| s.get(to_client) == Some(&all),
        "every datagram counted",
    );
    assert_eq!(sum(&scrape, "turnpike_dropped_packets", &[]), 0.0);
    let (code, _) = server.stop_with_log();
    assert_eq!(code, Some(0));
}

#[test]
fn two_workers_share_the_clients_and_each_relays_its_own() {
    let server = relay_server("2");
    assert!(server
        .startup
        .iter()
        .any(|v| v["fields"]["message"] == "workers started" && v["fields"]["workers"] == 2));
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let peer_addr = peer.local_addr().unwrap();
    const CLIENTS: usize = 40;
    let mut relayed = Vec::new();
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        let mut client = Client::new(server.address("udp"));
        let relay = allocate_and_bind(&mut client, peer_addr);
        // ChannelData (RFC 8656 §12.4) client → relay → peer.
        let payload = format!("hello from client {i}");
        let mut data = vec![0x40, 0x00];
        data.extend(u16::try_from(payload.len()).unwrap().to_be_bytes());
        data.extend(payload.as_bytes());
        client.socket.send_to(&data, client.server).unwrap();
        let mut buf = [0u8; 1500];
        let (len, from) = peer.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..len], payload.as_bytes());
        assert_eq!(from, relay, "sent from the allocation's relay address");
        relayed.push(relay);
        clients.push((client, payload, relay));
    }
    relayed.sort();
    relayed.dedup();
    assert_eq!(relayed.len(), CLIENTS, "one relay address per allocation");
    // Peer → relay → client, framed as ChannelData on the channel.
    for (client, payload, relay) in &clients {
        let echo = format!("{payload} echoed");
        peer.send_to(echo.as_bytes(), *relay).unwrap();
        let mut buf = [0u8; 1500];
        let len = client.socket.recv(&mut buf).unwrap();
        assert_eq!(&buf[..2], &[0x40, 0x00]);
        assert_eq!(&buf[4..len], echo.as_bytes());
    }
    let all = CLIENTS as f64;
    let to_client = r#"direction="to_client""#;
    let scrape = wait_until(
        server.address("metrics"),
        |s| sum(s, "turnpike_worker_relayed_packets_total", &[to_client]) == all,
        "every echo counted",
    );
    assert_eq!(value(&scrape, "turnpike_workers"), 2.0);
    assert_eq!(sum(&scrape, "turnpike_allocations", &[]), all);
    assert_eq!(
        sum(
            &scrape,
            "turnpike_relayed_packets_total",
            &[r#"direction="to_peer""#]
        ),
        all
    );
    // (allocations, to peer, to client) of each worker.
    let workers: Vec<(f64, f64, f64)> = ["0", "1"]
        .iter()
        .map(|w| {
            let packets = |d: &str| {
                value(
                    &scrape,
                    &format!(
                        r#"turnpike_worker_relayed_packets_total{{worker="{w}",direction="{d}"}}"#
                    ),
                )
            };
            (
                value(
                    &scrape,
                    &format!(r#"turnpike_worker_allocations{{worker="{w}"}}"#),
                ),
                packets("to_peer"),
                packets("to_client"),
            )
        })
        .collect();
    let total = |pick: fn(&(f64, f64, f64)) -> f64| workers.iter().map(pick).sum::<f64>();
    assert_eq!(total(|w| w.0), all, "{workers:?}");
    assert_eq!(total(|w| w.1), all, "{workers:?}");
    let (code, _) = server.stop_with_log();
    assert_eq!(code, Some(0));
    for w in &workers {
        assert!(w.0 > 0.0, "both workers got clients: {workers:?}");
        // A worker relays for its own allocations only, both ways.
        assert_eq!(w.0, w.1);
        assert_eq!(w.0, w.2);
    }
}

// Two relay addresses (`relay-ip` lists both): allocations take them in turn, and data is
// relayed from each (RFC 8656 §7.2: XOR-RELAYED-ADDRESS is the address the peer sees).
#[test]
fn allocations_take_the_relay_addresses_in_turn() {
    let server = relay_server_on("1", "127.0.0.1,127.0.0.2");
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut ips = Vec::new();
    for i in 0..4u8 {
        let mut client = Client::new(server.address("udp"));
        let relay = allocate_and_bind(&mut client, peer.local_addr().unwrap());
        ips.push(relay.ip().to_string());
        client
            .socket
            .send_to(&[0x40, 0x00, 0x00, 0x01, i], client.server)
            .unwrap();
        let mut buf = [0u8; 16];
        let (len, from) = peer.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..len], from), (&[i][..], relay));
    }
    assert_eq!(ips, ["127.0.0.1", "127.0.0.2", "127.0.0.1", "127.0.0.2"]);
}

// One failure limit per source for the whole server (`auth-failures`), however SO_REUSEPORT
// spreads the source's ports over the workers: of 40 wrong-password Allocates from one IP,
// each from its own port, exactly `auth-failures` get their 401 and the rest are dropped;
// a request with the right password from the same IP is still served (the limiter costs
// the attacker, not whoever shares its address).
#[test]
fn auth_failures_are_limited_once_across_workers() {
    const LIMIT: usize = 5;
    const TRIES: usize = 40;
    let server = relay_server_with("2", "127.0.0.1", &["--auth-failures", "5"]);
    let transport = [AnyAttribute::RequestedTransport(RequestedTransport(
        RequestedTransport::UDP,
    ))];
    // Each attacker socket learns its own nonce (it is bound to its port), then guesses.
    let mut attackers: Vec<Client> = (0..TRIES)
        .map(|_| Client::new(server.address("udp")))
        .collect();
    for attacker in &mut attackers {
        attacker.key =
            LongTermKey::derive(PasswordAlgorithmId::MD5, "alice", REALM, "guess").unwrap();
        attacker.challenge(&transport);
    }
    for attacker in &mut attackers {
        attacker.send(Method::ALLOCATE, &transport);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    let mut answered = 0;
    for attacker in &attackers {
        attacker.socket.set_nonblocking(true).unwrap();
    }
    while std::time::Instant::now() < deadline {
        for attacker in &attackers {
            let mut buf = [0u8; 1500];
            if let Ok(len) = attacker.socket.recv(&mut buf) {
                let m = Message::decode(&buf[..len]).unwrap();
                assert_eq!(m.get::<ErrorCode<'_>>().unwrap().unwrap().code, 401);
                answered += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        answered, LIMIT,
        "401s to the failures of one IP, all workers together"
    );
    let mut honest = Client::new(server.address("udp"));
    let reply = honest.request(Method::ALLOCATE, &transport);
    assert!(Message::decode(&reply)
        .unwrap()
        .get::<XorRelayedAddress>()
        .is_some());
    // Every worker's drops, summed: the metric an operator watches.
    let scrape = wait_until(
        server.address("metrics"),
        |s| s.contains_key(r#"turnpike_auth_total{outcome="rate_limited"}"#),
        "the auth counters",
    );
    assert_eq!(
        value(&scrape, r#"turnpike_auth_total{outcome="rate_limited"}"#),
        (TRIES - LIMIT) as f64,
        "dropped failures, counted per worker"
    );
    let (code, _) = server.stop_with_log();
    assert_eq!(code, Some(0));
}
