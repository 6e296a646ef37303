//! Relay sockets asked for through the core's output: an Allocate claims an address, queues
//! `RelayCommand::Open` and is answered when the driver reports with `relay_opened`. The
//! fake driver holds the binds here (`hold_opens`) so that each test answers them by hand.

use std::net::SocketAddr;

use stun::attributes::{EvenPort, ReservationToken, XorRelayedAddress};
use stun::{AnyAttribute, Message, Method};
use turn::relay::{ClientOutcome, FiveTuple, RelayOpenError, ServerErrorCause, OPEN_TIMEOUT};

use super::harness::{code, config, tcp_client, udp_client, Client, World, RELAY_IP};
use super::UDP;

/// A world whose fake driver holds every bind until answered, and a UDP client that knows
/// its nonce (so that one Allocate is one request).
fn holding(port: u16) -> (World, Client) {
    holding_on(udp_client(port))
}

/// The same, with a client on `five_tuple`.
fn holding_on(five_tuple: FiveTuple) -> (World, Client) {
    let mut world = World::new(config());
    let client = knowing_nonce(&mut world, five_tuple, "alice", "alice-pass");
    world.sockets.hold_opens = true;
    (world, client)
}

fn knowing_nonce(world: &mut World, five_tuple: FiveTuple, user: &str, password: &str) -> Client {
    let mut client = Client::new(five_tuple, user, password);
    client.learn_nonce(world);
    client
}

/// Allocates with EVEN-PORT R=1 (RFC 8656 §7.2), the bind answered `Ok`: the even port
/// bound and the token of the next one.
fn reserve_pair(world: &mut World, client: &Client) -> (SocketAddr, ReservationToken) {
    let even = AnyAttribute::EvenPort(EvenPort { reserve_next: true });
    let (_, addr) = allocate_held(world, client, &[UDP, even]);
    let (_, reply) = answer(world, Ok(()));
    assert_eq!(code(&reply), 0);
    let m = Message::decode(&reply).unwrap();
    (addr, m.get::<ReservationToken>().unwrap().unwrap())
}

fn relayed(reply: &[u8]) -> SocketAddr {
    let m = Message::decode(reply).unwrap();
    m.get::<XorRelayedAddress>().unwrap().unwrap().0
}

fn relay_ip() -> std::net::IpAddr {
    RELAY_IP.parse().unwrap()
}

/// Sends an Allocate with `attributes` whose bind is held: no answer yet, one bind asked.
fn allocate_held(
    world: &mut World,
    client: &Client,
    attributes: &[AnyAttribute<'_>],
) -> (Vec<u8>, SocketAddr) {
    let tid = world.tid();
    let request = client.encode(Method::ALLOCATE, tid, attributes);
    let (outcome, _) = world.feed(client.five_tuple, &request);
    assert_eq!(outcome, ClientOutcome::Nothing, "no answer before the bind");
    let &(_, addr) = world.sockets.held.last().expect("a bind asked for");
    (request, addr)
}

/// An Allocate given up holds nothing: not the claim of `addr`, not a place in the quota.
fn assert_given_back(world: &World, addr: SocketAddr) {
    let shared = world.server.shared_state();
    assert!(!shared.is_relay(addr), "claim of {addr} released");
    assert_eq!(shared.allocations(), 0, "quota given back");
}

/// Answers the one held bind with `result`.
fn answer(world: &mut World, result: Result<(), RelayOpenError>) -> (ClientOutcome, Vec<u8>) {
    let (ticket, addr) = world.sockets.held.pop().expect("a held bind");
    assert!(world.sockets.held.is_empty());
    if result.is_ok() {
        world.sockets.open.insert(addr);
    }
    world.answer_open(ticket, result)
}

// RFC 8656 §7.2: the server "chooses a relayed transport address"; RFC 6056 random ports: a
// port another program holds (EADDRINUSE) is not the end, another port of the range is tried.
#[test]
fn address_in_use_tries_another_port() {
    let (mut world, client) = holding(6000);
    let (_, first) = allocate_held(&mut world, &client, &[UDP]);
    let shared = world.server.shared_state().clone();
    assert!(shared.is_relay(first), "claimed while being bound");
    let (outcome, _) = answer(&mut world, Err(RelayOpenError::AddrInUse));
    assert_eq!(outcome, ClientOutcome::Nothing, "another port is asked for");
    assert!(!shared.is_relay(first), "the refused port is given back");
    let (_, second) = *world.sockets.held.last().expect("a second bind");
    assert_ne!(second, first);
    let (outcome, reply) = answer(&mut world, Ok(()));
    assert!(matches!(outcome, ClientOutcome::Reply(_)));
    assert_eq!(code(&reply), 0);
    assert_eq!(relayed(&reply), second);
    assert_eq!(world.sockets.opens_asked, [first, second]);
}

// RFC 8656 §7.2 step 10 / §6: a bind error that holds for every port (EMFILE) ends the search
// at once: 508 (Insufficient Capacity), the cause reported, the quota given back.
#[test]
fn os_error_is_insufficient_capacity_with_its_cause() {
    let (mut world, client) = holding(6001);
    let (_, addr) = allocate_held(&mut world, &client, &[UDP]);
    world.server_errors();
    let error = RelayOpenError::ProcessFileLimit;
    let (outcome, reply) = answer(&mut world, Err(error));
    assert!(matches!(outcome, ClientOutcome::Reply(_)));
    assert_eq!(code(&reply), 508);
    let cause = ServerErrorCause::RelaySocket {
        ip: relay_ip(),
        error,
    };
    assert_eq!(world.server_errors(), [(508, cause)]);
    assert_eq!(world.sockets.opens_asked, [addr], "no other port tried");
    assert_given_back(&world, addr);
}

// RFC 8656 §7.2 step 2 (and RFC 8489 §6.3.1: retransmissions): the retransmission of an
// Allocate whose relay socket is being bound starts no second bind; the first request is
// answered once bound, and a retransmission after that gets the same success.
#[test]
fn retransmission_while_binding_starts_nothing() {
    let (mut world, client) = holding(6002);
    let (request, addr) = allocate_held(&mut world, &client, &[UDP]);
    let (outcome, _) = world.feed(client.five_tuple, &request);
    assert_eq!(outcome, ClientOutcome::Nothing);
    assert_eq!(world.sockets.opens_asked, [addr], "one bind only");
    // Another Allocate on the 5-tuple meanwhile: 437, as for an allocation that exists.
    let tid = world.tid();
    let other = client.encode(Method::ALLOCATE, tid, &[UDP]);
    assert_eq!(code(&world.feed(client.five_tuple, &other).1), 437);
    let (_, reply) = answer(&mut world, Ok(()));
    assert_eq!(code(&reply), 0);
    let (_, again) = world.feed(client.five_tuple, &request);
    assert_eq!(code(&again), 0);
    assert_eq!(relayed(&again), addr);
    assert_eq!(world.sockets.opens_asked, [addr]);
}

// A bind the driver never answers must not hold its port and quota place for ever: after
// OPEN_TIMEOUT the Allocate is given up (no answer: the client retransmits, RFC 8489 §6.2.1)
// and a late answer is ignored.
#[test]
fn unanswered_bind_is_released_on_timeout() {
    let (mut world, client) = holding(6003);
    let (request, addr) = allocate_held(&mut world, &client, &[UDP]);
    assert_eq!(world.server.shared_state().allocations(), 1);
    assert!(world.server.poll_timeout().unwrap() <= world.now + OPEN_TIMEOUT);
    world.advance(OPEN_TIMEOUT);
    assert_given_back(&world, addr);
    let (ticket, _) = world.sockets.held.pop().unwrap();
    let (late, _) = world.answer_open(ticket, Ok(()));
    assert_eq!(late, ClientOutcome::Nothing);
    assert!(world.server.sessions(world.now).is_empty());
    // The client's retransmission starts afresh.
    world.sockets.hold_opens = false;
    let (_, reply) = world.feed(client.five_tuple, &request);
    assert_eq!(code(&reply), 0);
}

// RFC 8656 §3.1: over TCP the allocation goes with the connection; one still being bound
// when the connection closes is given up when the bind is answered, its socket closed.
#[test]
fn client_gone_while_binding() {
    let (mut world, client) = holding_on(tcp_client(6004));
    let (_, addr) = allocate_held(&mut world, &client, &[UDP]);
    world.client_closed(&client.five_tuple);
    let (outcome, _) = answer(&mut world, Ok(()));
    assert_eq!(outcome, ClientOutcome::Nothing);
    assert!(!world.sockets.open.contains(&addr), "closed");
    assert_given_back(&world, addr);
}

// RFC 8656 §7.2: EVEN-PORT with R=1 binds an even port and reserves the next one under a
// RESERVATION-TOKEN; an Allocate with that token binds exactly the reserved port.
#[test]
fn even_port_pair_and_reservation_token() {
    let (mut world, client) = holding(6005);
    let (addr, token) = reserve_pair(&mut world, &client);
    assert_eq!(addr.port() % 2, 0, "an even port");
    let reserved = SocketAddr::new(addr.ip(), addr.port() + 1);
    let shared = world.server.shared_state().clone();
    assert!(shared.is_relay(reserved), "claimed, not bound");
    assert!(!world.sockets.open.contains(&reserved));

    let other = knowing_nonce(&mut world, udp_client(6006), "bob", "bob-pass");
    let with_token = [UDP, AnyAttribute::ReservationToken(token)];
    let (_, bound) = allocate_held(&mut world, &other, &with_token);
    assert_eq!(bound, reserved, "the reserved port is bound");
    let (_, reply) = answer(&mut world, Ok(()));
    assert_eq!(code(&reply), 0);
    assert_eq!(relayed(&reply), reserved);
}

// RFC 8656 §7.2 step 5: a reserved port that cannot be bound is a 508, with the OS error
// as its cause; the reservation is spent.
#[test]
fn reserved_port_that_cannot_be_bound() {
    let (mut world, client) = holding(6007);
    let (_, token) = reserve_pair(&mut world, &client);
    let other = knowing_nonce(&mut world, udp_client(6008), "bob", "bob-pass");
    world.server_errors();
    let (_, reserved) = allocate_held(
        &mut world,
        &other,
        &[UDP, AnyAttribute::ReservationToken(token)],
    );
    let error = RelayOpenError::AddrNotAvailable;
    let (_, reply) = answer(&mut world, Err(error));
    assert_eq!(code(&reply), 508);
    let cause = ServerErrorCause::RelaySocket {
        ip: relay_ip(),
        error,
    };
    assert_eq!(world.server_errors(), [(508, cause)]);
    assert!(!world.server.shared_state().is_relay(reserved));
}
