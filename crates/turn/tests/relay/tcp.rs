//! RFC 6062 (TURN extensions for TCP allocations) with a hand-moved clock: Allocate with
//! REQUESTED-TRANSPORT 6, Connect, peer connections and ConnectionAttempt, ConnectionBind,
//! and the 30-second deadlines.

use std::net::SocketAddr;
use std::time::Duration;

use stun::attributes::{
    ConnectionId as ConnectionIdAttribute, DontFragment, EvenPort, ReservationToken,
    XorPeerAddress, XorRelayedAddress,
};
use stun::{AnyAttribute, Class, Message, Method};
use turn::relay::{
    ClientOutcome, ConnectionId, ControlMessage, PeerAddr, RelayAddr, TurnConfig, BIND_TIMEOUT,
    CONNECT_TIMEOUT,
};

use super::harness::{code, config, tcp_client, udp_client, Client, World};
use super::{peer, permit, send_indication, UDP};
use stun::attributes::RequestedTransport;

const TCP: AnyAttribute<'static> = AnyAttribute::RequestedTransport(RequestedTransport(6));
/// A peer the default policy allows (a documentation address).
const PEER: &str = "203.0.113.50:8000";

/// A TCP allocation over a TCP control connection; returns the client and relayed address.
fn tcp_allocation(world: &mut World) -> (Client, SocketAddr) {
    let mut client = Client::new(tcp_client(5000), "alice", "alice-pass");
    let reply = client.request(world, Method::ALLOCATE, &[TCP]);
    assert_eq!(code(&reply), 0, "TCP allocate");
    let m = Message::decode(&reply).unwrap();
    let relay = m
        .get::<stun::attributes::XorRelayedAddress>()
        .unwrap()
        .unwrap()
        .0;
    (client, relay)
}

/// Sends a request `client` signs with the nonce it holds; the outcome and the reply.
fn signed(
    world: &mut World,
    client: &Client,
    method: Method,
    attributes: &[AnyAttribute<'_>],
) -> (ClientOutcome, Vec<u8>) {
    let tid = world.tid();
    world.feed(client.five_tuple, &client.encode(method, tid, attributes))
}

/// Sends a Connect to `to` (the client knows its nonce); the immediate reply, if any.
fn connect(world: &mut World, client: &Client, to: &str) -> Option<Vec<u8>> {
    let attrs = [AnyAttribute::XorPeerAddress(XorPeerAddress(peer(to)))];
    let (outcome, reply) = signed(world, client, Method::CONNECT, &attrs);
    match outcome {
        ClientOutcome::Nothing => None,
        _ => Some(reply),
    }
}

fn control(world: &mut World) -> Vec<ControlMessage> {
    std::iter::from_fn(|| world.server.poll_control_message()).collect()
}

fn connection_id(message: &[u8]) -> ConnectionId {
    let m = Message::decode(message).unwrap();
    ConnectionId(m.get::<ConnectionIdAttribute>().unwrap().unwrap().0)
}

/// A ConnectionBind for `id` on a new connection from `port`, as `user`: the outcome and
/// the answer's code.
fn bind_data(
    world: &mut World,
    port: u16,
    user: (&str, &str),
    id: ConnectionId,
) -> (ClientOutcome, u16) {
    let mut data = Client::new(tcp_client(port), user.0, user.1);
    data.learn_nonce(world);
    let attrs = [AnyAttribute::ConnectionId(ConnectionIdAttribute(id.0))];
    let (outcome, reply) = signed(world, &data, Method::CONNECTION_BIND, &attrs);
    (outcome, code(&reply))
}

/// An outgoing connection made and reported: its id.
fn connected(world: &mut World, client: &mut Client, to: &str) -> ConnectionId {
    assert_eq!(permit(world, client, &[to]), 0);
    assert!(connect(world, client, to).is_none(), "answered later");
    let (id, _, _) = *world.sockets.connecting.last().unwrap();
    assert!(world.server.tcp_connect_result(world.now, id, true));
    let answers = control(world);
    assert_eq!(answers.len(), 1);
    assert_eq!(code(&answers[0].bytes), 0);
    assert_eq!(connection_id(&answers[0].bytes), id);
    id
}

// RFC 6062 §5.1: REQUESTED-TRANSPORT 6 over TCP gets a TCP relayed address: a listening
// socket, not a UDP one (step 4), and no RESERVATION-TOKEN (step 5).
#[test]
fn tcp_allocate_listens_on_the_relayed_address() {
    let mut world = World::new(config());
    let mut client = Client::new(tcp_client(5000), "alice", "alice-pass");
    let reply = client.request(&mut world, Method::ALLOCATE, &[TCP]);
    assert_eq!(code(&reply), 0);
    let m = Message::decode(&reply).unwrap();
    let relay = m.get::<XorRelayedAddress>().unwrap().unwrap().0;
    assert!(m.get::<ReservationToken>().is_none());
    assert!(world.sockets.listening.contains(&relay));
    assert!(world.sockets.open.is_empty(), "no UDP relay socket");
}

// RFC 6062 §5.1 step 2: a TCP allocation over UDP is a 400; step 3: EVEN-PORT is a 400;
// step 1: another protocol is a 442, as is TCP when the operator turned it off.
#[test]
fn tcp_allocate_refusals() {
    let mut world = World::new(config());
    let mut udp = Client::new(udp_client(5000), "alice", "alice-pass");
    assert_eq!(
        code(&udp.request(&mut world, Method::ALLOCATE, &[TCP])),
        400
    );
    let mut tcp = Client::new(tcp_client(5001), "alice", "alice-pass");
    let even = AnyAttribute::EvenPort(EvenPort {
        reserve_next: false,
    });
    assert_eq!(
        code(&tcp.request(&mut world, Method::ALLOCATE, &[TCP, even])),
        400
    );
    // With a server that can honour DONT-FRAGMENT (else it is a 420 before anything else).
    let mut df_world = World::new(TurnConfig {
        dont_fragment: true,
        ..config()
    });
    let mut df = Client::new(tcp_client(5002), "alice", "alice-pass");
    let dont_fragment = AnyAttribute::DontFragment(DontFragment);
    assert_eq!(
        code(&df.request(&mut df_world, Method::ALLOCATE, &[TCP, dont_fragment])),
        400
    );
    let token = AnyAttribute::ReservationToken(ReservationToken([1; 8]));
    assert_eq!(
        code(&df.request(&mut df_world, Method::ALLOCATE, &[TCP, token])),
        400
    );
    assert!(df_world.sockets.listening.is_empty());
    let sctp = AnyAttribute::RequestedTransport(RequestedTransport(132));
    assert_eq!(
        code(&tcp.request(&mut world, Method::ALLOCATE, &[sctp])),
        442
    );
    let mut off = World::new(TurnConfig {
        tcp_relay: false,
        ..config()
    });
    let mut tcp = Client::new(tcp_client(5001), "alice", "alice-pass");
    assert_eq!(code(&tcp.request(&mut off, Method::ALLOCATE, &[TCP])), 442);
    assert!(world.sockets.listening.is_empty() && off.sockets.listening.is_empty());
}

// RFC 6062 §5.2: Connect on a connection without allocation is 437; a peer without a
// permission, or one the peer policy denies, is 403; no connection is attempted.
#[test]
fn connect_refusals() {
    let mut world = World::new(config());
    let mut stray = Client::new(tcp_client(6000), "alice", "alice-pass");
    let reply = stray.request(
        &mut world,
        Method::CONNECT,
        &[AnyAttribute::XorPeerAddress(XorPeerAddress(peer(PEER)))],
    );
    assert_eq!(code(&reply), 437);
    let (mut client, _) = tcp_allocation(&mut world);
    assert_eq!(code(&connect(&mut world, &client, PEER).unwrap()), 403);
    // 10.0.0.0/8 is denied by default: CreatePermission refuses it already, and Connect too.
    assert_eq!(permit(&mut world, &mut client, &["10.1.2.3:80"]), 403);
    assert_eq!(
        code(&connect(&mut world, &client, "10.1.2.3:80").unwrap()),
        403
    );
    // No XOR-PEER-ADDRESS: 400.
    let (_, reply) = signed(&mut world, &client, Method::CONNECT, &[]);
    assert_eq!(code(&reply), 400);
    assert!(world.sockets.connecting.is_empty());
}

// RFC 6062 §5.2: the server connects from the relayed address; the success carries
// CONNECTION-ID and is signed like any answer; a second Connect to the same peer, while the
// first is in progress or its connection pending, is 446.
#[test]
fn connect_success_and_duplicate() {
    let mut world = World::new(config());
    let (mut client, relay) = tcp_allocation(&mut world);
    assert_eq!(permit(&mut world, &mut client, &[PEER]), 0);
    assert!(connect(&mut world, &client, PEER).is_none());
    let (id, from, to) = world.sockets.connecting[0];
    assert_eq!((from, to), (relay, peer(PEER)));
    assert_eq!(code(&connect(&mut world, &client, PEER).unwrap()), 446);
    assert!(world.server.tcp_connect_result(world.now, id, true));
    let answers = control(&mut world);
    assert_eq!(answers[0].to, client.five_tuple);
    let m = Message::decode(&answers[0].bytes).unwrap();
    assert_eq!(m.header().message_type.method, Method::CONNECT);
    m.verify_integrity(client.key.as_bytes()).unwrap();
    assert_eq!(connection_id(&answers[0].bytes), id);
    assert_eq!(code(&connect(&mut world, &client, PEER).unwrap()), 446);
    // Another port of the same peer is another connection.
    assert!(connect(&mut world, &client, "203.0.113.50:8001").is_none());
}

// RFC 6062 §5.2: a failed connection is 447, and the peer may be tried again.
#[test]
fn connect_failure_is_447() {
    let mut world = World::new(config());
    let (mut client, _) = tcp_allocation(&mut world);
    assert_eq!(permit(&mut world, &mut client, &[PEER]), 0);
    assert!(connect(&mut world, &client, PEER).is_none());
    let (id, _, _) = world.sockets.connecting[0];
    assert!(!world.server.tcp_connect_result(world.now, id, false));
    let answers = control(&mut world);
    assert_eq!(code(&answers[0].bytes), 447);
    assert!(connect(&mut world, &client, PEER).is_none(), "tried again");
}

// RFC 6062 §5.2: "If the connection attempt fails or times out, the server MUST return a
// 447 ... The timeout value MUST be at least 30 seconds."
#[test]
fn connect_times_out_after_30_seconds() {
    let mut world = World::new(config());
    let (mut client, _) = tcp_allocation(&mut world);
    assert_eq!(permit(&mut world, &mut client, &[PEER]), 0);
    assert!(connect(&mut world, &client, PEER).is_none());
    let (id, _, _) = world.sockets.connecting[0];
    world.advance(CONNECT_TIMEOUT - Duration::from_secs(1));
    assert!(control(&mut world).is_empty(), "still waiting at 29 s");
    world.advance(Duration::from_secs(1));
    let answers = control(&mut world);
    assert_eq!(code(&answers[0].bytes), 447);
    assert_eq!(world.sockets.closed_tcp, vec![id]);
    assert!(
        !world.server.tcp_connect_result(world.now, id, true),
        "a late success is refused: the driver closes it"
    );
}

// RFC 6062 §5.3: a peer without a permission is closed at once; with one, the client gets a
// ConnectionAttempt with XOR-PEER-ADDRESS and CONNECTION-ID.
#[test]
fn incoming_connection_needs_a_permission() {
    let mut world = World::new(config());
    let (mut client, relay) = tcp_allocation(&mut world);
    let now = world.now;
    assert_eq!(
        world
            .server
            .tcp_peer_accepted(now, RelayAddr::from(relay), PeerAddr::from(peer(PEER))),
        None
    );
    assert!(control(&mut world).is_empty());
    assert_eq!(permit(&mut world, &mut client, &[PEER]), 0);
    let id = world
        .server
        .tcp_peer_accepted(now, RelayAddr::from(relay), PeerAddr::from(peer(PEER)))
        .expect("kept");
    let attempts = control(&mut world);
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].to, client.five_tuple);
    let m = Message::decode(&attempts[0].bytes).unwrap();
    assert_eq!(
        m.header().message_type,
        stun::MessageType::new(Method::CONNECTION_ATTEMPT, Class::Indication)
    );
    assert_eq!(m.get::<XorPeerAddress>().unwrap().unwrap().0, peer(PEER));
    assert_eq!(connection_id(&attempts[0].bytes), id);
    // An unknown relayed address: closed.
    let other: SocketAddr = "203.0.113.10:1".parse().unwrap();
    assert_eq!(
        world
            .server
            .tcp_peer_accepted(now, RelayAddr::from(other), PeerAddr::from(peer(PEER))),
        None
    );
}

// RFC 6062 §5.4: ConnectionBind on a new connection, with the same credentials, binds a
// pending connection once; an unknown id, a bound one, or a bind over UDP is 400; another
// user's credentials are 441.
#[test]
fn connection_bind() {
    let mut world = World::new(config());
    let (mut client, _) = tcp_allocation(&mut world);
    let id = connected(&mut world, &mut client, PEER);
    let (_, unknown) = bind_data(
        &mut world,
        7001,
        ("alice", "alice-pass"),
        ConnectionId(id.0 ^ 1),
    );
    assert_eq!(unknown, 400);
    let (_, other_user) = bind_data(&mut world, 7002, ("bob", "bob-pass"), id);
    assert_eq!(other_user, 441);
    let mut udp = Client::new(udp_client(7003), "alice", "alice-pass");
    udp.learn_nonce(&mut world);
    let attrs = [AnyAttribute::ConnectionId(ConnectionIdAttribute(id.0))];
    let (_, reply) = signed(&mut world, &udp, Method::CONNECTION_BIND, &attrs);
    assert_eq!(code(&reply), 400);
    // The control connection cannot become a data connection.
    let (_, reply) = signed(&mut world, &client, Method::CONNECTION_BIND, &attrs);
    assert_eq!(code(&reply), 400);
    let mut data = Client::new(tcp_client(7004), "alice", "alice-pass");
    data.learn_nonce(&mut world);
    let (outcome, reply) = signed(&mut world, &data, Method::CONNECTION_BIND, &attrs);
    assert_eq!(code(&reply), 0);
    Message::decode(&reply)
        .unwrap()
        .verify_integrity(data.key.as_bytes())
        .unwrap();
    assert!(matches!(
        outcome,
        ClientOutcome::ConnectionBound { connection, .. } if connection == id
    ));
    let (_, again) = bind_data(&mut world, 7005, ("alice", "alice-pass"), id);
    assert_eq!(again, 400, "bound already");
    // §5.2: 446 also while the connection is active.
    assert_eq!(code(&connect(&mut world, &client, PEER).unwrap()), 446);
    // §5.4: no CONNECTION-ID at all.
    let mut bare = Client::new(tcp_client(7006), "alice", "alice-pass");
    bare.learn_nonce(&mut world);
    let (_, reply) = signed(&mut world, &bare, Method::CONNECTION_BIND, &[]);
    assert_eq!(code(&reply), 400);
    // Bound connections have no deadline: nothing closes them but the allocation's end.
    world.advance(BIND_TIMEOUT * 2);
    assert!(world.sockets.closed_tcp.is_empty());
}

// RFC 6062 §5.2, §5.3: "If no ConnectionBind request associated with this peer data
// connection is received after 30 seconds, the peer data connection MUST be closed."
#[test]
fn unbound_connections_close_after_30_seconds() {
    let mut world = World::new(config());
    let (mut client, relay) = tcp_allocation(&mut world);
    let outgoing = connected(&mut world, &mut client, PEER);
    world.advance(Duration::from_secs(10));
    assert_eq!(permit(&mut world, &mut client, &["203.0.113.51:1"]), 0);
    let now = world.now;
    let incoming = world
        .server
        .tcp_peer_accepted(
            now,
            RelayAddr::from(relay),
            PeerAddr::from(peer("203.0.113.51:9")),
        )
        .unwrap();
    world.advance(BIND_TIMEOUT - Duration::from_secs(10));
    assert_eq!(world.sockets.closed_tcp, vec![outgoing]);
    let (_, late) = bind_data(&mut world, 7001, ("alice", "alice-pass"), outgoing);
    assert_eq!(late, 400);
    world.advance(Duration::from_secs(10));
    assert_eq!(world.sockets.closed_tcp, vec![outgoing, incoming]);
    assert_eq!(world.server.peer_connections(), 0);
}

// RFC 6062 §5.5: when the allocation goes (here: its control connection closed), its data
// connections are closed, and the relayed address stops listening.
#[test]
fn allocation_end_closes_its_connections() {
    let mut world = World::new(config());
    let (mut client, relay) = tcp_allocation(&mut world);
    let a = connected(&mut world, &mut client, PEER);
    let b = connected(&mut world, &mut client, "203.0.113.50:8001");
    let (outcome, bound) = bind_data(&mut world, 7001, ("alice", "alice-pass"), a);
    assert!(matches!(outcome, ClientOutcome::ConnectionBound { .. }));
    assert_eq!(bound, 0);
    world.client_closed(&client.five_tuple);
    let mut closed = world.sockets.closed_tcp.clone();
    closed.sort();
    let mut expected = vec![a, b];
    expected.sort();
    assert_eq!(closed, expected);
    assert!(!world.sockets.listening.contains(&relay));
    assert_eq!(world.server.peer_connections(), 0);
}

// A closed pair frees its peer for a new Connect (RFC 6062 §5.2: 446 only while pending or
// active); `max-peer-connections` bounds the connections of one allocation (508).
#[test]
fn connection_limit_and_reuse() {
    let mut world = World::new(TurnConfig {
        max_peer_connections: 1,
        ..config()
    });
    let (mut client, relay) = tcp_allocation(&mut world);
    let id = connected(&mut world, &mut client, PEER);
    assert_eq!(permit(&mut world, &mut client, &["203.0.113.52:1"]), 0);
    assert_eq!(
        code(&connect(&mut world, &client, "203.0.113.52:1").unwrap()),
        508
    );
    let now = world.now;
    assert_eq!(
        world.server.tcp_peer_accepted(
            now,
            RelayAddr::from(relay),
            PeerAddr::from(peer("203.0.113.52:2"))
        ),
        None
    );
    world.server.tcp_connection_closed(id);
    assert!(connect(&mut world, &client, PEER).is_none(), "free again");
}

// A TCP allocation relays no datagrams: Send indications are dropped, ChannelBind is a 400.
#[test]
fn no_datagrams_on_a_tcp_allocation() {
    let mut world = World::new(config());
    let (mut client, _) = tcp_allocation(&mut world);
    assert_eq!(permit(&mut world, &mut client, &[PEER]), 0);
    let (outcome, _) = world.feed(
        client.five_tuple,
        &send_indication(&client, PEER, b"hi", false),
    );
    assert_eq!(outcome, ClientOutcome::Nothing);
    let bind = super::bind(&mut world, &mut client, 0x4000, PEER);
    assert_eq!(bind, 400);
    let _ = UDP;
}

// RFC 6062 §4.3: the data connection authenticates "with the same method and credentials as
// for the control connection". coturn's client sends the control connection's nonce on it
// and does not retry after a 438, so that nonce is accepted for a ConnectionBind naming a
// connection of that allocation — and for nothing else from another port.
#[test]
fn connection_bind_accepts_the_control_connections_nonce() {
    let mut world = World::new(config());
    let (mut client, _) = tcp_allocation(&mut world);
    let id = connected(&mut world, &mut client, PEER);
    let borrowed = |port| Client {
        nonce: client.nonce.clone(),
        ..Client::new(tcp_client(port), "alice", "alice-pass")
    };
    // Another request from another port with that nonce: stale.
    let stranger = borrowed(7100);
    let (_, reply) = signed(&mut world, &stranger, Method::REFRESH, &[]);
    assert_eq!(code(&reply), 438);
    // A ConnectionBind for an unknown id: stale too (no control connection to match).
    let unknown = [AnyAttribute::ConnectionId(ConnectionIdAttribute(id.0 ^ 1))];
    let (_, reply) = signed(&mut world, &stranger, Method::CONNECTION_BIND, &unknown);
    assert_eq!(code(&reply), 438);
    let data = borrowed(7101);
    let attrs = [AnyAttribute::ConnectionId(ConnectionIdAttribute(id.0))];
    let (outcome, reply) = signed(&mut world, &data, Method::CONNECTION_BIND, &attrs);
    assert_eq!(code(&reply), 0);
    assert!(matches!(outcome, ClientOutcome::ConnectionBound { .. }));
}

// As for UDP (RFC 8656 §21.2.1, "the server's own addresses"): a Connect never reaches one of
// the server's service ports, here its TURN port on the relay IP, even with a permission.
#[test]
fn connect_to_a_service_port_of_the_server_is_403() {
    let mut world = World::new(TurnConfig {
        service_ports: vec![3478],
        ..config()
    });
    let (mut client, _) = tcp_allocation(&mut world);
    let own = "203.0.113.10:3478";
    assert_eq!(
        permit(&mut world, &mut client, &[own]),
        0,
        "the relay IP is a peer"
    );
    assert_eq!(code(&connect(&mut world, &client, own).unwrap()), 403);
    assert!(world.sockets.connecting.is_empty());
}

// Connect answers are counted when they are sent, deferred ones included.
#[test]
fn connect_answers_are_counted() {
    use turn::relay::stats::{METHODS, RESPONSE_CODES};
    let mut world = World::new(config());
    let (mut client, _) = tcp_allocation(&mut world);
    connected(&mut world, &mut client, PEER);
    assert_eq!(permit(&mut world, &mut client, &["203.0.113.51:1"]), 0);
    assert!(connect(&mut world, &client, "203.0.113.51:1").is_none());
    let (id, _, _) = *world.sockets.connecting.last().unwrap();
    world.server.tcp_connect_result(world.now, id, false);
    assert_eq!(code(&connect(&mut world, &client, PEER).unwrap()), 446);
    let stats = world.server.stats();
    let method = METHODS
        .iter()
        .position(|(_, name)| *name == "connect")
        .unwrap();
    let count = |label: &str| {
        let i = RESPONSE_CODES.iter().position(|c| *c == label).unwrap();
        stats.requests[method][i]
    };
    assert_eq!((count("success"), count("447"), count("446")), (1, 1, 1));
    assert_eq!(
        count("none"),
        0,
        "a deferred answer is not a dropped request"
    );
    assert_eq!(stats.peer_connections, 1);
}

// What a spliced pair relayed shows in its allocation's session traffic (bytes only).
#[test]
fn relayed_bytes_count_in_the_session() {
    let mut world = World::new(config());
    let (mut client, _) = tcp_allocation(&mut world);
    let id = connected(&mut world, &mut client, PEER);
    let (outcome, _) = bind_data(&mut world, 7001, ("alice", "alice-pass"), id);
    assert!(matches!(outcome, ClientOutcome::ConnectionBound { .. }));
    world.server.tcp_relayed(id, 1000, 2500);
    world.server.tcp_connection_closed(id);
    world.server.tcp_relayed(id, 7, 7); // after the close: nobody to charge
    let sessions = world.server.sessions(world.now);
    let traffic = sessions[0].traffic;
    assert_eq!(
        (traffic.to_peer.bytes, traffic.to_client.bytes),
        (1000, 2500)
    );
    assert_eq!(world.server.peer_connections(), 0);
}

// RFC 6062 §5.5: "If the allocation associated with a data connection expires, the data
// connection MUST be closed" — bound or not.
#[test]
fn allocation_expiry_closes_its_connections() {
    let mut world = World::new(config());
    let (mut client, relay) = tcp_allocation(&mut world);
    let bound = connected(&mut world, &mut client, PEER);
    let (outcome, _) = bind_data(&mut world, 7001, ("alice", "alice-pass"), bound);
    assert!(matches!(outcome, ClientOutcome::ConnectionBound { .. }));
    // Keep the allocation's permission alive, and a second connection pending, until the end.
    world.advance(Duration::from_secs(290));
    assert_eq!(permit(&mut world, &mut client, &[PEER]), 0);
    world.advance(Duration::from_secs(290));
    let pending = connected(&mut world, &mut client, "203.0.113.50:8001");
    assert!(world.sockets.closed_tcp.is_empty());
    world.advance(Duration::from_secs(21)); // 601 s: the default 600 s lifetime is over
    let mut closed = world.sockets.closed_tcp.clone();
    closed.sort();
    let mut expected = vec![bound, pending];
    expected.sort();
    assert_eq!(closed, expected);
    assert!(!world.sockets.listening.contains(&relay));
}
