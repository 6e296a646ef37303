//! RFC 8839 §5.1 candidate strings, RFC 8445 §5.1.2 priorities, and robustness of
//! `handle_input` against arbitrary bytes.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ice::agent::candidate::{candidate_priority, CandidateError};
use ice::{AgentConfig, AgentInput, Candidate, CandidateKind, IceAgent};
use proptest::prelude::*;

// A Chrome-style srflx candidate with extensions we ignore.
#[test]
fn browser_srflx_string() {
    let text = "candidate:842163049 1 udp 1677729535 203.0.113.5 40212 typ srflx raddr 192.168.1.5 rport 40212 generation 0 ufrag abcd network-cost 999";
    let c: Candidate = text.parse().unwrap();
    assert_eq!(c.foundation, "842163049");
    assert_eq!(c.component, 1);
    assert_eq!(c.priority, 1_677_729_535);
    assert_eq!(
        c.address,
        "203.0.113.5:40212".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(c.kind, CandidateKind::ServerReflexive);
    assert_eq!(c.related, Some("192.168.1.5:40212".parse().unwrap()));
    // Display drops the extensions; parsing that again gives the same candidate.
    let written = c.to_string();
    assert_eq!(
        written,
        "candidate:842163049 1 udp 1677729535 203.0.113.5 40212 typ srflx raddr 192.168.1.5 rport 40212"
    );
    assert_eq!(written.parse::<Candidate>().unwrap(), c);
}

#[test]
fn more_strings_round_trip() {
    for text in [
        "candidate:1 1 udp 2130706431 192.168.1.5 5000 typ host",
        "a=candidate:1 1 UDP 2130706431 192.168.1.5 5000 typ host generation 0 network-id 1",
        "candidate:abc+/ 1 udp 16777215 198.51.100.9 60000 typ relay raddr 203.0.113.5 rport 40212",
        "candidate:3 1 udp 1862270975 2001:db8::1 7000 typ prflx raddr 2001:db8::2 rport 7001",
        "candidate:4 1 udp 2122260223 fe80::1 9 typ host tcptype active",
    ] {
        let c: Candidate = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(c.to_string().parse::<Candidate>().unwrap(), c, "{text}");
    }
}

#[test]
fn malformed_strings_give_typed_errors() {
    type Expect = fn(&CandidateError) -> bool;
    let cases: &[(&str, Expect)] = &[
        ("1 1 udp 1 1.2.3.4 5 typ host", |e| {
            matches!(e, CandidateError::NotACandidate)
        }),
        ("candidate:1 1 udp 1 1.2.3.4 5 typ", |e| {
            matches!(e, CandidateError::Missing("cand-type"))
        }),
        ("candidate:1 1 udp", |e| {
            matches!(e, CandidateError::Missing("priority"))
        }),
        ("candidate:1 1 tcp 1 1.2.3.4 5 typ host", |e| {
            matches!(e, CandidateError::Transport(_))
        }),
        ("candidate:1 0 udp 1 1.2.3.4 5 typ host", |e| {
            matches!(e, CandidateError::Component(_))
        }),
        ("candidate:1 1 udp 0 1.2.3.4 5 typ host", |e| {
            matches!(e, CandidateError::Priority(_))
        }),
        ("candidate:1 1 udp 4294967295 1.2.3.4 5 typ host", |e| {
            matches!(e, CandidateError::Priority(_))
        }),
        ("candidate:1 1 udp 1 host.local 5 typ host", |e| {
            matches!(e, CandidateError::Address(_))
        }),
        ("candidate:1 1 udp 1 1.2.3.4 70000 typ host", |e| {
            matches!(e, CandidateError::Port(_))
        }),
        ("candidate:1 1 udp 1 1.2.3.4 5 type host", |e| {
            matches!(e, CandidateError::Type(_))
        }),
        ("candidate:1 1 udp 1 1.2.3.4 5 typ nat", |e| {
            matches!(e, CandidateError::Type(_))
        }),
        ("candidate:1 1 udp 1 1.2.3.4 5 typ srflx raddr", |e| {
            matches!(e, CandidateError::Extension(_))
        }),
        (
            "candidate:1 1 udp 1 1.2.3.4 5 typ srflx raddr 1.2.3.4 generation 0",
            |e| matches!(e, CandidateError::Related),
        ),
        (
            "candidate:1 1 udp 1 1.2.3.4 5 typ srflx raddr x rport 1",
            |e| matches!(e, CandidateError::Related),
        ),
        ("candidate:f*o 1 udp 1 1.2.3.4 5 typ host", |e| {
            matches!(e, CandidateError::Foundation(_))
        }),
    ];
    for (text, expected) in cases {
        let err = text.parse::<Candidate>().unwrap_err();
        assert!(expected(&err), "{text}: got {err:?}");
    }
}

// RFC 8445 §5.1.2.1 with the recommended type preferences of §5.1.2.2 (host 126, prflx 110,
// srflx 100, relayed 0), local preference 65535, component 1.
#[test]
fn priority_values() {
    assert_eq!(
        candidate_priority(CandidateKind::Host, 65535, 1),
        2_130_706_431
    );
    assert_eq!(
        candidate_priority(CandidateKind::PeerReflexive, 65535, 1),
        1_862_270_975
    );
    assert_eq!(
        candidate_priority(CandidateKind::ServerReflexive, 65535, 1),
        1_694_498_815
    );
    assert_eq!(
        candidate_priority(CandidateKind::Relayed, 65535, 1),
        16_777_215
    );
    // The agent's host candidates: first 65535, the next one a step lower.
    let now = Instant::now();
    let mut agent = IceAgent::new(now, AgentConfig::new(true), [1; 32]);
    agent.add_host_candidate(now, "192.168.1.5:5000".parse().unwrap());
    agent.add_host_candidate(now, "10.0.0.5:5000".parse().unwrap());
    let locals: Vec<_> = agent.local_candidates().cloned().collect();
    assert_eq!(locals[0].priority, 2_130_706_431);
    assert_eq!(locals[1].priority, 2_130_706_431 - 256);
    // RFC 8445 §5.1.1.3: different base IPs, different foundations.
    assert_ne!(locals[0].foundation, locals[1].foundation);
}

#[test]
fn remote_candidates_are_bounded() {
    // Bounded memory per peer: a peer that trickles without end is ignored past the limit.
    let now = Instant::now();
    let mut agent = IceAgent::new(now, AgentConfig::new(true), [3; 32]);
    agent.add_host_candidate(now, "192.168.1.5:5000".parse().unwrap());
    for port in 0..(ice::MAX_REMOTE_CANDIDATES as u16 + 50) {
        let text = format!(
            "candidate:1 1 udp 2130706431 192.168.1.6 {} typ host",
            1000 + port
        );
        agent.add_remote_candidate(now, text.parse().unwrap());
    }
    assert_eq!(agent.remote_candidates().len(), ice::MAX_REMOTE_CANDIDATES);
}

proptest! {
    // Nothing from the network makes the agent panic, whatever state it is in.
    #[test]
    fn handle_input_never_panics(packets in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 1..20),
                                 stunlike in any::<bool>()) {
        let now = Instant::now();
        let mut agent = IceAgent::new(now, AgentConfig::new(true), [2; 32]);
        let local: SocketAddr = "192.168.1.5:5000".parse().unwrap();
        let from: SocketAddr = "192.168.1.6:6000".parse().unwrap();
        agent.add_host_candidate(now, local);
        agent.set_remote_credentials("abcd", "0123456789012345678901");
        agent.add_remote_candidate(now, "candidate:1 1 udp 2130706431 192.168.1.6 6000 typ host".parse().unwrap());
        for (i, mut packet) in packets.into_iter().enumerate() {
            if stunlike && packet.len() >= 20 {
                // Make it pass the first STUN filter so that decoding is exercised.
                packet[0] &= 0x3F;
                packet[4..8].copy_from_slice(&0x2112_A442u32.to_be_bytes());
                let len = (packet.len() - 20) as u16;
                packet[2..4].copy_from_slice(&len.to_be_bytes());
            }
            let t = now + Duration::from_millis(i as u64 * 10);
            let result = agent.handle_input(t, local, from, &packet);
            if let AgentInput::Data(d) = result {
                prop_assert_eq!(d, &packet[..]);
            }
            agent.handle_timeout(t);
            while agent.poll_transmit().is_some() {}
            while agent.poll_event().is_some() {}
        }
    }
}
