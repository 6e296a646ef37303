//! Two ICE agents (RFC 8445) through a simulated network with a hand-moved clock: LAN,
//! NATs of each kind, loss, trickle, role conflicts, nomination, consent (RFC 7675).

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

mod candidates;
#[path = "../common/fake_relay.rs"]
mod fake_relay;
mod net;

use std::time::Duration;

use ice::{CandidateKind, IceConnectionState, IceEvent};
use net::{Filtering, Mapping, World};

const STUN: &str = "198.51.100.1:3478";
const TURN: &str = "198.51.100.2:3478";

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Both peers Connected.
fn both_connected(world: &World) -> bool {
    world
        .peers
        .iter()
        .all(|p| p.agent.state() == IceConnectionState::Connected)
}

/// Each side's selected pair is the mirror of the other's: my local address is the
/// address the peer sends to, and the reverse.
fn assert_same_pair(world: &World) {
    let (l0, r0) = world.peers[0]
        .agent
        .selected_pair()
        .expect("peer 0 selected a pair");
    let (l1, r1) = world.peers[1]
        .agent
        .selected_pair()
        .expect("peer 1 selected a pair");
    assert_eq!(l0.address, r1.address, "peer 0 local = peer 1 remote");
    assert_eq!(l1.address, r0.address, "peer 1 local = peer 0 remote");
}

/// Data goes both ways over the selected pair.
fn assert_data_round_trip(world: &mut World) {
    let now = world.now;
    let t = world.peers[0]
        .agent
        .send_data(now, b"ping")
        .expect("a selected pair");
    let nat = world.peers[0].nat;
    world.send(nat, t.source, t.destination, t.payload);
    world.run_for(Duration::from_millis(200));
    assert_eq!(world.peers[1].data, vec![b"ping".to_vec()]);
    let now = world.now;
    let t = world.peers[1]
        .agent
        .send_data(now, b"pong")
        .expect("a selected pair");
    let nat = world.peers[1].nat;
    world.send(nat, t.source, t.destination, t.payload);
    world.run_for(Duration::from_millis(200));
    assert_eq!(world.peers[0].data, vec![b"pong".to_vec()]);
}

/// Two peers on one LAN, not started: `controlling` gives each one's initial role.
fn two_on_lan(seed: u8, latency: Duration, controlling: [bool; 2]) -> World {
    let mut world = World::new(seed, latency);
    let c0 = world.config(controlling[0]);
    let c1 = world.config(controlling[1]);
    world.add_peer(c0, "192.168.1.10:5000", None);
    world.add_peer(c1, "192.168.1.11:6000", None);
    world
}

/// Two peers on one LAN, credentials exchanged, started.
fn lan_started(seed: u8, controlling: [bool; 2]) -> World {
    let mut world = two_on_lan(seed, Duration::from_millis(5), controlling);
    world.exchange_credentials();
    world.start();
    world
}

/// Exactly one agent ends up controlling.
fn assert_one_controlling(world: &World) {
    let controlling = world
        .peers
        .iter()
        .filter(|p| p.agent.is_controlling())
        .count();
    assert_eq!(controlling, 1, "one controlling agent");
}

fn lan() -> World {
    lan_started(1, [true, false])
}

fn behind_nats(seed: u8, a: (Mapping, Filtering), b: (Mapping, Filtering)) -> World {
    let mut world = World::new(seed, Duration::from_millis(20));
    world.set_stun_server(STUN);
    let na = world.add_nat("203.0.113.1", a.0, a.1);
    let nb = world.add_nat("203.0.113.2", b.0, b.1);
    let c0 = world.config(true);
    let c1 = world.config(false);
    world.add_peer(c0, "10.0.1.10:5000", Some(na));
    world.add_peer(c1, "10.0.2.10:6000", Some(nb));
    world.exchange_credentials();
    world.start();
    world
}

const PORT_RESTRICTED: (Mapping, Filtering) = (
    Mapping::EndpointIndependent,
    Filtering::AddressAndPortDependent,
);
const RESTRICTED: (Mapping, Filtering) =
    (Mapping::EndpointIndependent, Filtering::AddressDependent);
const SYMMETRIC: (Mapping, Filtering) = (
    Mapping::AddressAndPortDependent,
    Filtering::AddressAndPortDependent,
);

// RFC 8445 §2: two agents on one LAN pair their host candidates and connect host↔host.
#[test]
fn lan_host_to_host() {
    let mut world = lan();
    assert!(
        world.run_until_or(secs(5), both_connected),
        "connected within 5 s"
    );
    let (local, remote) = world.peers[0].agent.selected_pair().unwrap();
    assert_eq!(local.kind, CandidateKind::Host);
    assert_eq!(remote.kind, CandidateKind::Host);
    assert_same_pair(&world);
    // Both saw Checking before Connected.
    for peer in &world.peers {
        let states: Vec<_> = peer.states().into_iter().map(|(_, s)| s).collect();
        assert_eq!(
            states,
            [IceConnectionState::Checking, IceConnectionState::Connected]
        );
    }
    // One host candidate each, and gathering completes with no STUN server.
    for peer in &world.peers {
        assert_eq!(peer.local_candidates().len(), 1);
        assert!(peer
            .events
            .iter()
            .any(|(_, e)| *e == IceEvent::GatheringComplete));
    }
    // Ta pacing and a 5 ms network: connected well under a second.
    assert!(
        world.elapsed() < Duration::from_millis(500),
        "took {:?}",
        world.elapsed()
    );
}

// RFC 8445 §2.2 / §5.1.1.2: behind port-restricted cone NATs, each side learns its srflx
// candidate from STUN, and checks sent by both open the NATs (hole punching).
#[test]
fn port_restricted_cones_connect_srflx_to_srflx() {
    let mut world = behind_nats(2, PORT_RESTRICTED, PORT_RESTRICTED);
    assert!(
        world.run_until_or(secs(15), both_connected),
        "connected within 15 s"
    );
    for peer in &world.peers {
        let kinds: Vec<_> = peer.local_candidates().iter().map(|c| c.kind).collect();
        assert_eq!(kinds, [CandidateKind::Host, CandidateKind::ServerReflexive]);
        let srflx = &peer.local_candidates()[1];
        assert_eq!(srflx.related, Some(peer.host), "raddr/rport is the base");
    }
    let (local, remote) = world.peers[0].agent.selected_pair().unwrap();
    assert_eq!(local.kind, CandidateKind::ServerReflexive);
    assert_eq!(remote.kind, CandidateKind::ServerReflexive);
    assert_same_pair(&world);
    assert!(
        world.filtered > 0,
        "the first checks were filtered by the NATs"
    );
    assert_data_round_trip(&mut world);
}

// RFC 8445 §7.2.5.3.1 and §7.3.1.3: a symmetric NAT gives its peer a new port per
// destination, so both sides learn peer-reflexive candidates.
#[test]
fn symmetric_vs_restricted_cone_learns_prflx() {
    let mut world = behind_nats(3, SYMMETRIC, RESTRICTED);
    assert!(
        world.run_until_or(secs(20), both_connected),
        "connected within 20 s"
    );
    let (local0, remote0) = world.peers[0].agent.selected_pair().unwrap();
    let (_, remote1) = world.peers[1].agent.selected_pair().unwrap();
    assert_eq!(
        local0.kind,
        CandidateKind::PeerReflexive,
        "symmetric side: local prflx"
    );
    assert_eq!(
        remote1.kind,
        CandidateKind::PeerReflexive,
        "cone side: remote prflx"
    );
    assert_eq!(remote0.kind, CandidateKind::ServerReflexive);
    // The prflx address is not the srflx one the STUN server saw.
    let srflx = world.peers[0].local_candidates()[1].clone();
    assert_ne!(srflx.address, local0.address);
    assert_same_pair(&world);
    assert_data_round_trip(&mut world);
}

// RFC 8445 §2.2: two symmetric NATs defeat hole punching; without a relay every pair fails
// and the agents report Failed once the peer's candidates are complete.
#[test]
fn symmetric_vs_symmetric_fails_without_relay() {
    let mut world = behind_nats(4, SYMMETRIC, SYMMETRIC);
    world.run_for(secs(1));
    for peer in &mut world.peers {
        peer.agent.end_of_remote_candidates();
    }
    let failed = |w: &World| {
        w.peers
            .iter()
            .all(|p| p.agent.state() == IceConnectionState::Failed)
    };
    assert!(world.run_until_or(secs(60), failed), "both failed");
    for peer in &world.peers {
        assert!(peer.agent.selected_pair().is_none());
        assert!(peer.reached(IceConnectionState::Connected).is_none());
    }
    // All pairs time out: 9.9 s per check, and the last pair starts late.
    assert!(
        world.elapsed() > secs(9),
        "failed only after the checks timed out"
    );
}

// RFC 8445 §5.1.1.2 / RFC 8656: with a TURN server, the symmetric pair that failed above
// connects through a relayed candidate; the relay carries the checks and the data.
#[test]
fn symmetric_vs_symmetric_connects_via_relay() {
    let mut world = World::new(17, Duration::from_millis(20));
    world.set_stun_server(STUN);
    let turn = world.set_turn_server(TURN, "198.51.100.200");
    let na = world.add_nat("203.0.113.1", SYMMETRIC.0, SYMMETRIC.1);
    let nb = world.add_nat("203.0.113.2", SYMMETRIC.0, SYMMETRIC.1);
    let mut c0 = world.config(true);
    c0.turn_servers.push((turn, net::turn_credentials()));
    let c1 = world.config(false);
    world.add_peer(c0, "10.0.1.10:5000", Some(na));
    world.add_peer(c1, "10.0.2.10:6000", Some(nb));
    world.exchange_credentials();
    world.start();
    assert!(
        world.run_until_or(secs(30), both_connected),
        "connected via the relay"
    );
    let kinds: Vec<_> = world.peers[0]
        .local_candidates()
        .iter()
        .map(|c| c.kind)
        .collect();
    assert!(
        kinds.contains(&CandidateKind::Relayed),
        "relayed candidate gathered: {kinds:?}"
    );
    let (local0, _) = world.peers[0].agent.selected_pair().unwrap();
    assert_eq!(local0.kind, CandidateKind::Relayed);
    let (_, remote1) = world.peers[1].agent.selected_pair().unwrap();
    assert_eq!(
        remote1.address, local0.address,
        "peer 1 sends to the relayed address"
    );
    let before = world.relayed;
    assert_data_round_trip(&mut world);
    assert!(
        world.relayed >= before + 2,
        "the data went through the relay"
    );
    // Consent keeps the relayed pair up (permission and channel refreshes included).
    world.run_for(secs(700));
    assert_eq!(world.peers[0].agent.state(), IceConnectionState::Connected);
    assert_eq!(world.peers[1].agent.state(), IceConnectionState::Connected);
    world.peers[0].data.clear();
    world.peers[1].data.clear();
    assert_data_round_trip(&mut world);
    // RFC 8656 §7: closing releases the allocation at once (Refresh, LIFETIME 0) rather than
    // leaving it to expire on the server.
    assert_eq!(world.open_relay_sockets(), 1);
    let now = world.now;
    world.peers[0].agent.close(now);
    world.flush();
    world.run_for(secs(1));
    assert_eq!(world.open_relay_sockets(), 0, "the allocation was released");
}

// 20 % loss in each direction: retransmissions (RFC 8489 §6.2.1) still get checks through.
#[test]
fn twenty_percent_loss_still_connects() {
    for seed in 10..15 {
        let mut world = behind_nats(seed, PORT_RESTRICTED, PORT_RESTRICTED);
        world.loss = 0.2;
        assert!(
            world.run_until_or(secs(30), both_connected),
            "seed {seed}: connected"
        );
        assert_same_pair(&world);
    }
}

// RFC 8838 (trickle): peer 1 learns peer 0's credentials and candidates only 3 s after
// peer 0 started checking. Its early checks are answered with the local password
// (RFC 8445 §7.3), the source becomes a prflx candidate, and the late candidates work.
#[test]
fn trickle_late_candidates_and_credentials() {
    let mut world = two_on_lan(5, Duration::from_millis(10), [true, false]);
    world.auto_signal = None;
    let (u1, p1) = {
        let (u, p) = world.peers[1].agent.local_credentials();
        (u.to_owned(), p.to_owned())
    };
    world.peers[0].agent.set_remote_credentials(&u1, &p1);
    world.start();
    // Peer 0 knows peer 1's candidate at once and starts checking.
    let c1_host = world.peers[1].local_candidates()[0].clone();
    let now = world.now;
    world.peers[0].agent.add_remote_candidate(now, c1_host);
    world.run_for(secs(3));
    // Peer 1 cannot check anything yet (no credentials), so it is not connected, whatever
    // peer 0 (whose checks were answered) thinks.
    assert_eq!(world.peers[1].agent.state(), IceConnectionState::New);
    // Peer 1 answered without knowing peer 0's credentials, and learned a prflx candidate.
    let learned = world.peers[1].agent.remote_candidates().to_vec();
    assert_eq!(learned.len(), 1);
    assert_eq!(learned[0].kind, CandidateKind::PeerReflexive);
    // Now the signalling catches up.
    let (u0, p0) = {
        let (u, p) = world.peers[0].agent.local_credentials();
        (u.to_owned(), p.to_owned())
    };
    world.peers[1].agent.set_remote_credentials(&u0, &p0);
    let c0_host = world.peers[0].local_candidates()[0].clone();
    let now = world.now;
    world.peers[1]
        .agent
        .add_remote_candidate(now, c0_host.clone());
    assert!(
        world.run_until_or(secs(10), both_connected),
        "connected after trickle"
    );
    assert_same_pair(&world);
    // The signalled candidate replaced the prflx one learned at the same address.
    let (_, remote1) = world.peers[1].agent.selected_pair().unwrap();
    assert_eq!(remote1, &c0_host);
    assert_data_round_trip(&mut world);
}

// RFC 8445 §7.3.1.3 and RFC 8838 §11: a check travels faster than signaling, so peer 1
// learns peer 0 as peer-reflexive, and here even selects that pair, before peer 0's host
// candidate is signalled. The signalled candidate then replaces the peer-reflexive one in the
// selected pair (same transport address): the pair stays selected and the caller hears of
// its `host` type in a new SelectedPair event (`turnpike p2p` printed `host ↔ prflx`).
#[test]
fn a_candidate_signalled_after_its_check_replaces_the_selected_prflx() {
    let mut world = two_on_lan(7, Duration::from_millis(10), [true, false]);
    world.auto_signal = None;
    world.exchange_credentials();
    world.start();
    let c1_host = world.peers[1].local_candidates()[0].clone();
    let c0_host = world.peers[0].local_candidates()[0].clone();
    let now = world.now;
    world.peers[0].agent.add_remote_candidate(now, c1_host);
    assert!(
        world.run_until_or(secs(5), both_connected),
        "connected before peer 0's candidate is signalled"
    );
    let (_, remote1) = world.peers[1].agent.selected_pair().unwrap();
    assert_eq!(remote1.kind, CandidateKind::PeerReflexive);
    assert_eq!(remote1.address, c0_host.address);
    let selections_before = selected_pairs(&world.peers[1].events).len();

    let now = world.now;
    world.peers[1]
        .agent
        .add_remote_candidate(now, c0_host.clone());
    world.run_for(Duration::from_millis(200));

    assert_eq!(world.peers[1].agent.state(), IceConnectionState::Connected);
    let (_, remote1) = world.peers[1].agent.selected_pair().unwrap();
    assert_eq!(remote1, &c0_host, "the signalled host candidate, not prflx");
    assert_eq!(
        world.peers[1].agent.remote_candidates(),
        std::slice::from_ref(&c0_host)
    );
    let selections = selected_pairs(&world.peers[1].events);
    assert_eq!(selections.len(), selections_before + 1, "{selections:?}");
    let (local, remote) = selections.last().unwrap();
    assert_eq!(remote, &c0_host);
    assert_eq!(local.kind, CandidateKind::Host);
    assert_same_pair(&world);
    assert_data_round_trip(&mut world);
}

/// The (local, remote) of every SelectedPair event, in order.
fn selected_pairs(
    events: &[(std::time::Instant, IceEvent)],
) -> Vec<(ice::Candidate, ice::Candidate)> {
    events
        .iter()
        .filter_map(|(_, e)| match e {
            IceEvent::SelectedPair { local, remote } => Some((local.clone(), remote.clone())),
            _ => None,
        })
        .collect()
}

// Trickle the other way: candidates arrive after checks on other pairs started; a pair
// formed late is checked and, being the best, chosen.
#[test]
fn trickle_candidate_arriving_late_is_checked() {
    let mut world = two_on_lan(6, Duration::from_millis(10), [true, false]);
    world.auto_signal = None;
    world.exchange_credentials();
    world.start();
    // A candidate nobody answers at, first: checks start and go nowhere.
    let dead: ice::Candidate = "candidate:1 1 udp 2130706431 192.168.1.99 7000 typ host"
        .parse()
        .unwrap();
    let now = world.now;
    world.peers[0].agent.add_remote_candidate(now, dead);
    world.run_for(secs(2));
    assert_eq!(world.peers[0].agent.state(), IceConnectionState::Checking);
    let c1_host = world.peers[1].local_candidates()[0].clone();
    let c0_host = world.peers[0].local_candidates()[0].clone();
    let now = world.now;
    world.peers[0]
        .agent
        .add_remote_candidate(now, c1_host.clone());
    world.peers[1].agent.add_remote_candidate(now, c0_host);
    assert!(world.run_until_or(secs(5), both_connected), "connected");
    let (_, remote0) = world.peers[0].agent.selected_pair().unwrap();
    assert_eq!(remote0, &c1_host);
    assert_same_pair(&world);
}

// RFC 8445 §7.3.1.1 and §7.2.5.1: both start controlling; the one with the smaller
// tie-breaker gets 487 and switches; exactly one role switch, then a normal connection.
#[test]
fn role_conflict_both_controlling() {
    let mut world = lan_started(7, [true, true]);
    assert!(world.run_until_or(secs(5), both_connected), "connected");
    assert_one_controlling(&world);
    // The larger tie-breaker stays controlling (§7.3.1.1).
    let winner =
        usize::from(world.peers[1].agent.tie_breaker() > world.peers[0].agent.tie_breaker());
    assert!(world.peers[winner].agent.is_controlling());
    assert!(world.error_codes.contains(&487), "a 487 was sent");
    assert!(world.error_codes.iter().all(|c| *c == 487));
    assert_same_pair(&world);
}

// Both controlled: the larger tie-breaker switches to controlling on its own (§7.3.1.1).
#[test]
fn role_conflict_both_controlled() {
    let mut world = lan_started(8, [false, false]);
    assert!(world.run_until_or(secs(5), both_connected), "connected");
    assert_one_controlling(&world);
    assert_same_pair(&world);
}

// RFC 8445 §8.1.1: regular nomination. The controlling agent nominates one pair, after its
// check succeeded, with USE-CANDIDATE; the controlled agent selects that same pair, and
// both report it once.
#[test]
fn controlling_nominates_and_both_select_the_same_pair() {
    let mut world = behind_nats(9, RESTRICTED, PORT_RESTRICTED);
    assert!(world.run_until_or(secs(15), both_connected), "connected");
    assert_same_pair(&world);
    for peer in &world.peers {
        let selected: Vec<_> = peer
            .events
            .iter()
            .filter(|(_, e)| matches!(e, IceEvent::SelectedPair { .. }))
            .collect();
        assert_eq!(selected.len(), 1, "one selection");
        let IceEvent::SelectedPair { local, remote } = &selected[0].1 else {
            unreachable!()
        };
        let (l, r) = peer.agent.selected_pair().unwrap();
        assert_eq!((l, r), (local, remote));
    }
    // The controlled side selected later than (or with) the controlling side's nomination.
    let c0 = world.peers[0]
        .reached(IceConnectionState::Connected)
        .unwrap();
    let c1 = world.peers[1]
        .reached(IceConnectionState::Connected)
        .unwrap();
    assert!(c1 >= c0 - Duration::from_millis(100));
}

// RFC 7675 §5.1: the peer goes silent; without consent responses the agent goes
// Disconnected (10 s) and then Failed 30 s after the last response, and stops sending data.
#[test]
fn consent_lost_after_peer_goes_silent() {
    let mut world = lan();
    assert!(world.run_until_or(secs(5), both_connected));
    world.run_for(secs(20));
    assert_eq!(world.peers[0].agent.state(), IceConnectionState::Connected);
    let silence = world.now;
    world.peers[1].silent = true;
    world.run_for(secs(60));
    let peer = &world.peers[0];
    let disconnected = peer
        .reached(IceConnectionState::Disconnected)
        .expect("Disconnected");
    let failed = peer.reached(IceConnectionState::Failed).expect("Failed");
    // The last response came at most one consent interval (≤ 6 s) before the silence.
    let d = disconnected - silence;
    assert!(d >= secs(4) && d <= secs(11), "Disconnected after {d:?}");
    let f = failed - silence;
    assert!(f >= secs(24) && f <= secs(31), "Failed after {f:?}");
    let now = world.now;
    assert!(
        world.peers[0].agent.send_data(now, b"x").is_none(),
        "no data without consent"
    );
}

// RFC 7675: while the peer answers, consent checks keep the pair Connected for minutes.
#[test]
fn consent_keeps_connection_alive_for_minutes() {
    let mut world = lan();
    assert!(world.run_until_or(secs(5), both_connected));
    world.loss = 0.05;
    world.run_for(secs(600));
    for peer in &world.peers {
        let states: Vec<_> = peer.states().into_iter().map(|(_, s)| s).collect();
        assert_eq!(
            states,
            [IceConnectionState::Checking, IceConnectionState::Connected]
        );
    }
    world.loss = 0.0;
    assert_data_round_trip(&mut world);
}

// A Binding request with a wrong password gets 401; one without MESSAGE-INTEGRITY, 400.
#[test]
fn bad_requests_get_400_and_401() {
    use stun::attributes::{Priority, Username};
    use stun::{MessageType, MessageWriter, TransactionId};
    let mut world = lan();
    assert!(world.run_until_or(secs(5), both_connected));
    let (ufrag, _) = world.peers[1].agent.local_credentials();
    let username = format!("{ufrag}:x");
    let mut buf = [0u8; 200];
    let mut w = MessageWriter::new(
        &mut buf,
        MessageType::BINDING_REQUEST,
        TransactionId([9; 12]),
    )
    .unwrap();
    w.add(&Username(&username)).unwrap();
    w.add(&Priority(1)).unwrap();
    w.add_message_integrity(b"not the password").unwrap();
    w.add_fingerprint().unwrap();
    let len = w.finish();
    let wrong = buf[..len].to_vec();
    let mut w = MessageWriter::new(
        &mut buf,
        MessageType::BINDING_REQUEST,
        TransactionId([8; 12]),
    )
    .unwrap();
    w.add(&Username(&username)).unwrap();
    w.add_fingerprint().unwrap();
    let len = w.finish();
    let unsigned = buf[..len].to_vec();
    let stranger = "192.168.1.66:1234".parse().unwrap();
    let target = world.peers[1].host;
    world.error_codes.clear();
    world.send(None, stranger, target, wrong);
    world.send(None, stranger, target, unsigned);
    world.run_for(Duration::from_millis(100));
    // The answers go to the stranger (nobody there); the network saw them pass.
    assert_eq!(world.error_codes, [401, 400]);
    assert_eq!(
        world.peers[1].agent.remote_candidates().len(),
        1,
        "no prflx from a bad request"
    );
    assert_eq!(world.peers[1].agent.state(), IceConnectionState::Connected);
}

// A full-cone NAT (endpoint-independent filtering) lets the symmetric side's checks in at
// once; the pair still needs the prflx candidate learned from them.
#[test]
fn symmetric_vs_full_cone_connects() {
    let full_cone = (Mapping::EndpointIndependent, Filtering::EndpointIndependent);
    let mut world = behind_nats(16, full_cone, SYMMETRIC);
    assert!(world.run_until_or(secs(20), both_connected), "connected");
    let (_, remote0) = world.peers[0].agent.selected_pair().unwrap();
    assert_eq!(remote0.kind, CandidateKind::PeerReflexive);
    assert_same_pair(&world);
}
