//! The fast path relays through the kernel on `lo` (generic XDP), both directions, IPv4 and IPv6.
//!
//! Checksums: a UDP socket on lo leaves its checksum to "the device" (CHECKSUM_PARTIAL: the
//! field holds only the pseudo-header sum), which the program cannot update into a valid one, so
//! it passes such datagrams to userspace (`passes_datagrams_with_partial_checksums`). The
//! relayed traffic is therefore sent from raw sockets with complete checksums, as a NIC
//! delivers it. Found here (kernel 6.18): the relayed datagram is a CHECKSUM_NONE packet for
//! the receiving UDP stack, which verifies the checksum and drops it on error (UdpInCsumErrors
//! grew while the program got it wrong), so delivery proves the checksums right.

mod common;

use std::net::{IpAddr, SocketAddr, UdpSocket};

use common::*;
use xdp::{AttachMode, Channel, FastPath, Stats};

const NUMBER: u16 = 0x4001;
const ROUNDS: usize = 40;

struct Sockets {
    raw: socket2::Socket,
    client: UdpSocket,
    server: UdpSocket,
    relay: UdpSocket,
    peer: UdpSocket,
}

fn sockets(ip: IpAddr) -> Sockets {
    let any = SocketAddr::new(ip, 0);
    Sockets {
        raw: raw_udp(ip),
        client: udp(any),
        server: udp(any),
        relay: udp(any),
        peer: udp(any),
    }
}

fn channel_of(s: &Sockets) -> Channel {
    Channel {
        client: local(&s.client),
        server: local(&s.server),
        number: NUMBER,
        relay: local(&s.relay),
        peer: local(&s.peer),
    }
}

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

/// Sends ROUNDS datagrams each way through an installed channel and checks what arrives,
/// the per-channel counters and the global stats. Returns the bytes relayed each way.
fn relay_both_ways(s: &Sockets, fast: &FastPath, channel: &Channel) -> (u64, u64) {
    let before = fast.stats().expect("stats");
    let mut bytes = 0u64;
    for len in 0..ROUNDS {
        let payload = data(len, 0x41);
        // Padding bytes are ignored by the receiver (RFC 8656 §12); make them non-zero.
        let message = channel_data(NUMBER, &payload, padding_of(len), 0xAA);
        send_checksummed(&s.raw, channel.client, channel.server, &message);
        let (got, from) = recv(&s.peer, "client -> peer");
        assert_eq!(
            got, payload,
            "the peer receives the data alone, header and padding stripped"
        );
        assert_eq!(from, channel.relay, "from the relay address");
        bytes += len as u64;
    }
    for len in 0..ROUNDS {
        let payload = data(len, 0x42);
        send_checksummed(&s.raw, channel.peer, channel.relay, &payload);
        let (got, from) = recv(&s.client, "peer -> client");
        assert_eq!(
            got,
            channel_data(NUMBER, &payload, 0, 0),
            "the client receives ChannelData"
        );
        assert_eq!(from, channel.server, "from the server address");
    }
    let counters = fast.counters(channel).expect("counters");
    assert_eq!(counters.to_peer_packets, ROUNDS as u64);
    assert_eq!(counters.to_client_packets, ROUNDS as u64);
    assert_eq!(counters.to_peer_bytes, bytes);
    assert_eq!(counters.to_client_bytes, bytes);
    let delta = fast.stats().expect("stats").since(&before);
    assert_eq!(delta.relayed_to_peer, ROUNDS as u64);
    assert_eq!(delta.relayed_to_client, ROUNDS as u64);
    assert_silent(&s.server, "server socket while relaying");
    assert_silent(&s.relay, "relay socket while relaying");
    (bytes, bytes)
}

/// Malformed lengths and unknown channels pass to userspace unchanged.
fn passes_what_is_not_a_channel(s: &Sockets, fast: &FastPath, channel: &Channel) {
    let before = fast.stats().expect("stats");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("length beyond the datagram", {
            let mut m = channel_data(NUMBER, &data(8, 1), 0, 0);
            m[3] = 100;
            m
        }),
        (
            "4 bytes after the data: more than padding",
            channel_data(NUMBER, &data(8, 1), 4, 0),
        ),
        (
            "unknown channel",
            channel_data(NUMBER + 1, &data(8, 1), 0, 0),
        ),
        ("shorter than a header", vec![0x40, 0x01, 0]),
    ];
    for (what, message) in &cases {
        send_checksummed(&s.raw, channel.client, channel.server, message);
        let (got, from) = recv(&s.server, what);
        assert_eq!(&got, message, "{what}: reaches the server socket unchanged");
        assert_eq!(from, channel.client, "{what}");
    }
    assert_silent(&s.peer, "peer, after passed datagrams");
    let delta: Stats = fast.stats().expect("stats").since(&before);
    assert_eq!(delta.passed_malformed, 2, "{delta:?}");
    assert_eq!(delta.relayed_to_peer, 0, "{delta:?}");
}

/// After `remove`, both directions reach the userspace sockets again.
fn removed_channel_goes_to_userspace(
    s: &Sockets,
    fast: &mut FastPath,
    channel: &Channel,
    bytes: (u64, u64),
) {
    let last = fast.remove(channel).expect("remove");
    assert_eq!(last.to_peer_packets, ROUNDS as u64);
    assert_eq!((last.to_peer_bytes, last.to_client_bytes), bytes);
    assert!(matches!(
        fast.counters(channel),
        Err(xdp::XdpError::NotInstalled)
    ));
    let message = channel_data(NUMBER, &data(5, 3), 3, 0);
    s.client.send_to(&message, channel.server).expect("send");
    assert_eq!(recv(&s.server, "client after remove").0, message);
    s.peer.send_to(b"hello", channel.relay).expect("send");
    assert_eq!(recv(&s.relay, "peer after remove").0, b"hello");
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
    send_checksummed(&s.raw, channel.peer, channel.relay, &[7u8; 100]);
    assert_eq!(recv(&s.client, "100 bytes fit").0.len(), 104);
    let before = fast.stats().expect("stats");
    send_checksummed(&s.raw, channel.peer, channel.relay, &[7u8; 101]);
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

#[test]
fn passes_datagrams_with_partial_checksums() {
    require_root();
    let _lo = lo_lock();
    for ip in ["127.0.0.1", "::1"] {
        let s = sockets(ip.parse().expect("literal"));
        let channel = channel_of(&s);
        let mut fast = attach_lo();
        fast.install(&channel).expect("install");
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
