//! The fast path relays through the kernel on `lo` (generic XDP), both directions, IPv4 and IPv6.
//!
//! Checksums: a UDP socket on lo leaves its checksum to "the device" (CHECKSUM_PARTIAL: the
//! field holds only the pseudo-header sum), which the program cannot update into a valid one, so
//! it passes such datagrams to userspace (`passes_datagrams_with_partial_checksums`). The
//! relayed traffic is therefore sent from raw sockets with complete checksums, as a NIC
//! delivers it. Found here (kernel 6.18): the relayed datagram is a CHECKSUM_NONE packet for
//! the receiving UDP stack, which verifies the checksum and drops it on error (UdpInCsumErrors
//! grew while the program got it wrong), so delivery proves the checksums right.

#![cfg(target_os = "linux")]

mod common;

use std::net::IpAddr;

use common::scenario::*;
use common::*;
use xdp::{AttachMode, Channel, FastPath};

/// Attaches to lo, panicking with the error's text (which tells an operator what is wrong).
fn attach_lo() -> FastPath {
    let fast =
        FastPath::attach(&["lo".to_string()], 1500).unwrap_or_else(|e| panic!("attach to lo: {e}"));
    assert_eq!(
        fast.modes()[0].mode,
        AttachMode::Generic,
        "lo has no native XDP"
    );
    fast
}

fn relay_on_lo(ip: IpAddr) {
    require_root();
    let _lo = lo_lock();
    let s = sockets(ip);
    let channel = channel_of(&s);
    {
        let mut fast = attach_lo();
        assert!(has_xdp(None, "lo"));
        fast.install(&channel).expect("install");
        let bytes = relay_both_ways(&s, &fast, &channel);
        passes_what_is_not_a_channel(&s, &fast, &channel);
        removed_channel_goes_to_userspace(&s, &mut fast, &channel, bytes);
    }
    assert!(
        !has_xdp(None, "lo"),
        "dropping the FastPath detaches it from lo"
    );
}

#[test]
fn relays_ipv4_channel_data_on_lo() {
    relay_on_lo("127.0.0.1".parse().expect("literal"));
}

#[test]
fn relays_ipv6_channel_data_on_lo() {
    relay_on_lo("::1".parse().expect("literal"));
}

#[test]
fn reinstall_keeps_counters_and_too_big_passes() {
    require_root();
    let _lo = lo_lock();
    let s = sockets("127.0.0.1".parse().expect("literal"));
    let channel = channel_of(&s);
    // 20 (IP) + 8 (UDP) + 4 (header) + 100 bytes of data = 132: the limit lets 100 through.
    let mut fast = FastPath::attach(&["lo".to_string()], 132).expect("attach");
    fast.install(&channel).expect("install");
    send_checksummed(&s.raw_peer, channel.peer, channel.relay, &[7u8; 100]);
    assert_eq!(recv(&s.client, "100 bytes fit").0.len(), 104);
    let before = fast.stats().expect("stats");
    send_checksummed(&s.raw_peer, channel.peer, channel.relay, &[7u8; 101]);
    assert_eq!(
        recv(&s.relay, "101 bytes are too big: userspace").0.len(),
        101
    );
    assert_eq!(
        fast.stats().expect("stats").since(&before).passed_too_big,
        1
    );
    fast.install(&channel).expect("install again");
    assert_eq!(
        fast.counters(&channel).expect("counters").to_client_packets,
        1,
        "kept on overwrite"
    );
    drop(fast);
    assert!(!has_xdp(None, "lo"));
}

/// Sockets on `ip`, their channel, and the program on lo with the channel installed.
fn installed_on_lo(ip: &str) -> (Sockets, Channel, FastPath) {
    let s = sockets(ip.parse().expect("literal"));
    let channel = channel_of(&s);
    let mut fast = attach_lo();
    fast.install(&channel).expect("install");
    (s, channel, fast)
}

#[test]
fn passes_datagrams_with_partial_checksums() {
    require_root();
    let _lo = lo_lock();
    for ip in ["127.0.0.1", "::1"] {
        let (s, channel, fast) = installed_on_lo(ip);
        let before = fast.stats().expect("stats");
        let message = channel_data(NUMBER, &data(9, 5), 3, 0);
        s.client.send_to(&message, channel.server).expect("send");
        assert_eq!(recv(&s.server, "partial checksum, client side").0, message);
        s.peer.send_to(b"peer data", channel.relay).expect("send");
        assert_eq!(
            recv(&s.relay, "partial checksum, peer side").0,
            b"peer data"
        );
        let delta = fast.stats().expect("stats").since(&before);
        assert_eq!(delta.passed_partial_checksum, 2, "{delta:?}");
        assert_eq!(
            fast.counters(&channel).expect("counters"),
            xdp::ChannelCounters::default()
        );
    }
}

/// A datagram that would leave with TTL (hop limit) 0 goes to userspace, which answers as the
/// stack does.
#[test]
fn ttl_one_passes_to_userspace() {
    require_root();
    let _lo = lo_lock();
    for ip in ["127.0.0.1", "::1"] {
        let (s, channel, fast) = installed_on_lo(ip);
        if channel.client.is_ipv6() {
            s.raw_client.set_unicast_hops_v6(1).expect("hop limit");
            s.raw_peer.set_unicast_hops_v6(1).expect("hop limit");
        } else {
            s.raw_client.set_ttl(1).expect("TTL");
            s.raw_peer.set_ttl(1).expect("TTL");
        }
        let before = fast.stats().expect("stats");
        let message = channel_data(NUMBER, &data(6, 9), 2, 0);
        send_checksummed(&s.raw_client, channel.client, channel.server, &message);
        assert_eq!(recv(&s.server, "TTL 1, client side").0, message);
        send_checksummed(&s.raw_peer, channel.peer, channel.relay, b"ttl");
        assert_eq!(recv(&s.relay, "TTL 1, peer side").0, b"ttl");
        let delta = fast.stats().expect("stats").since(&before);
        assert_eq!(delta.passed_ttl, 2, "{delta:?}");
    }
}

#[test]
fn detaches_from_lo_when_a_test_panics() {
    require_root();
    let _lo = lo_lock();
    let result = std::panic::catch_unwind(|| {
        let _fast = attach_lo();
        assert!(has_xdp(None, "lo"));
        panic!("a failing test");
    });
    assert!(result.is_err());
    assert!(
        !has_xdp(None, "lo"),
        "the program must be gone from lo after a panic"
    );
}

#[test]
fn refuses_channels_it_cannot_relay() {
    require_root();
    let _lo = lo_lock();
    let s = sockets("127.0.0.1".parse().expect("literal"));
    let mut fast = attach_lo();
    let channel = channel_of(&s);
    let crossing = Channel {
        peer: "[::1]:9".parse().expect("literal"),
        ..channel
    };
    assert!(matches!(
        fast.install(&crossing),
        Err(xdp::XdpError::FamilyMismatch(_))
    ));
    let unspecified = Channel {
        server: "0.0.0.0:3478".parse().expect("literal"),
        ..channel
    };
    assert!(matches!(
        fast.install(&unspecified),
        Err(xdp::XdpError::InvalidChannel(_))
    ));
    assert!(matches!(
        fast.remove(&channel),
        Err(xdp::XdpError::NotInstalled)
    ));
    assert!(matches!(
        FastPath::attach(&["no-such-if0".to_string()], 0),
        Err(xdp::XdpError::InterfaceNotFound { .. })
    ));
    // lo is taken by `fast`: a second program is refused with a clear error.
    let second = FastPath::attach(&["lo".to_string()], 0);
    assert!(
        matches!(second, Err(xdp::XdpError::InterfaceBusy { .. })),
        "{second:?}"
    );
}

/// After every test of this binary has dropped its FastPath, lo carries no XDP program.
#[test]
fn lo_has_no_xdp_program_between_tests() {
    let _lo = lo_lock();
    assert!(
        !has_xdp(None, "lo"),
        "an XDP program is attached to lo: ip link set dev lo xdpgeneric off"
    );
}
