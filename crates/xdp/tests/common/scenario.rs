//! The relay scenario both loopback.rs and veth.rs run: sockets, traffic both ways, what must
//! pass, and the return to userspace after `remove`.

use std::net::{IpAddr, SocketAddr, UdpSocket};

use super::*;
use xdp::{Channel, FastPath, Stats};

pub const NUMBER: u16 = 0x4001;
pub const ROUNDS: usize = 40;

/// The four parties' sockets; the raw ones send with complete checksums from the client's and
/// the peer's IP.
pub struct Sockets {
    pub raw_client: socket2::Socket,
    pub raw_peer: socket2::Socket,
    pub client: UdpSocket,
    pub server: UdpSocket,
    pub relay: UdpSocket,
    pub peer: UdpSocket,
}

/// All four on one IP (lo).
pub fn sockets(ip: IpAddr) -> Sockets {
    let any = SocketAddr::new(ip, 0);
    Sockets {
        raw_client: raw_udp(ip),
        raw_peer: raw_udp(ip),
        client: udp(any),
        server: udp(any),
        relay: udp(any),
        peer: udp(any),
    }
}

pub fn channel_of(s: &Sockets) -> Channel {
    Channel {
        client: local(&s.client),
        server: local(&s.server),
        number: NUMBER,
        relay: local(&s.relay),
        peer: local(&s.peer),
    }
}

/// Sends ROUNDS datagrams each way through an installed channel and checks what arrives,
/// the per-channel counters and the global stats. Returns the bytes relayed each way.
pub fn relay_both_ways(s: &Sockets, fast: &FastPath, channel: &Channel) -> (u64, u64) {
    let before = fast.stats().expect("stats");
    let mut bytes = 0u64;
    for len in 0..ROUNDS {
        let payload = data(len, 0x41);
        // Padding bytes are ignored by the receiver (RFC 8656 §12); make them non-zero.
        let message = channel_data(NUMBER, &payload, padding_of(len), 0xAA);
        send_checksummed(&s.raw_client, channel.client, channel.server, &message);
        let (got, from) = recv_or(&s.peer, "client -> peer", fast);
        assert_eq!(
            got, payload,
            "the peer receives the data alone, header and padding stripped"
        );
        assert_eq!(from, channel.relay, "from the relay address");
        bytes += len as u64;
    }
    for len in 0..ROUNDS {
        let payload = data(len, 0x42);
        send_checksummed(&s.raw_peer, channel.peer, channel.relay, &payload);
        let (got, from) = recv_or(&s.client, "peer -> client", fast);
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
pub fn passes_what_is_not_a_channel(s: &Sockets, fast: &FastPath, channel: &Channel) {
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
        send_checksummed(&s.raw_client, channel.client, channel.server, message);
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
pub fn removed_channel_goes_to_userspace(
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

/// Receives one datagram; on timeout fails with the program's counters, which tell where it went.
fn recv_or(socket: &UdpSocket, what: &str, fast: &FastPath) -> (Vec<u8>, SocketAddr) {
    let mut buf = vec![0u8; 65_536];
    match socket.recv_from(&mut buf) {
        Ok((n, from)) => {
            buf.truncate(n);
            (buf, from)
        }
        Err(e) => panic!(
            "{what}: nothing received ({e}); program stats: {:?}",
            fast.stats()
        ),
    }
}
