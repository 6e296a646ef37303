//! Helpers of the integration tests: root check, sockets, ChannelData, the `lo` lock, netns.
#![allow(dead_code)] // each test binary uses a part

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

/// Only one XDP program can be attached to `lo`: the tests of a binary take turns.
static LO: Mutex<()> = Mutex::new(());

/// Serializes the tests that attach to `lo` (a panicking test does not poison the others).
pub fn lo_lock() -> MutexGuard<'static, ()> {
    LO.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// These tests attach XDP programs: they need root (CI runs as root). Fail loudly otherwise.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the XDP integration tests need root (CAP_BPF, CAP_NET_ADMIN): run them as root, as CI does"
    );
}

/// A UDP socket with an 8 MiB receive buffer (a burst on lo overflows the default one) and a
/// read timeout, so a lost datagram fails the test instead of hanging it.
pub fn udp(addr: SocketAddr) -> UdpSocket {
    let socket =
        Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP)).expect("socket");
    socket.set_recv_buffer_size(8 << 20).expect("SO_RCVBUF");
    if addr.is_ipv6() {
        socket.set_only_v6(true).expect("IPV6_V6ONLY");
    }
    socket.bind(&addr.into()).expect("bind");
    let socket: UdpSocket = socket.into();
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    socket
}

pub fn local(socket: &UdpSocket) -> SocketAddr {
    socket.local_addr().expect("local_addr")
}

/// ChannelData (RFC 8656 §12): channel, length, data, then `pad` padding bytes of `fill`.
pub fn channel_data(number: u16, data: &[u8], pad: usize, fill: u8) -> Vec<u8> {
    let mut message = Vec::with_capacity(4 + data.len() + pad);
    message.extend_from_slice(&number.to_be_bytes());
    message.extend_from_slice(&u16::try_from(data.len()).expect("short data").to_be_bytes());
    message.extend_from_slice(data);
    message.extend(std::iter::repeat_n(fill, pad));
    message
}

/// Padding to a multiple of 4, as RFC 8656 §12 says a UDP sender MAY add.
pub fn padding_of(len: usize) -> usize {
    (4 - len % 4) % 4
}

/// Test data of length `len`: its first byte is in 0x40..0x7F for some lengths, so the
/// program's client-side lookup is exercised on relayed data too.
pub fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Receives one datagram, failing the test on timeout.
pub fn recv(socket: &UdpSocket, what: &str) -> (Vec<u8>, SocketAddr) {
    let mut buf = vec![0u8; 65_536];
    let (n, from) = socket
        .recv_from(&mut buf)
        .unwrap_or_else(|e| panic!("{what}: nothing received ({e})"));
    buf.truncate(n);
    (buf, from)
}

/// Asserts that nothing arrives within a short time.
pub fn assert_silent(socket: &UdpSocket, what: &str) {
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let mut buf = [0u8; 2048];
    let got = socket.recv_from(&mut buf);
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    assert!(
        got.is_err(),
        "{what}: unexpected datagram {:?}",
        got.map(|(n, a)| (buf[..n].to_vec(), a))
    );
}

/// Runs a command, failing the test with its output if it fails.
pub fn run(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether `ip link show DEV` (in namespace `ns`, if given) shows an XDP program.
pub fn has_xdp(ns: Option<&str>, dev: &str) -> bool {
    let output = match ns {
        Some(ns) => run(&["ip", "-n", ns, "link", "show", "dev", dev]),
        None => run(&["ip", "link", "show", "dev", dev]),
    };
    output.contains("xdp")
}

/// The one's-complement sum of `bytes` as big-endian 16-bit words, not folded.
fn sum_be(bytes: &[u8]) -> u64 {
    bytes
        .chunks(2)
        .map(|w| u64::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
        .sum()
}

fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The UDP checksum (RFC 768 / RFC 8200 §8.1) of a datagram between two addresses.
pub fn udp_checksum(src: IpAddr, dst: IpAddr, udp: &[u8]) -> u16 {
    let mut sum = sum_be(udp);
    let len = udp.len() as u64;
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            sum += sum_be(&s.octets()) + sum_be(&d.octets()) + 17 + len
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            sum += sum_be(&s.octets()) + sum_be(&d.octets()) + 17 + len
        }
        _ => panic!("mixed families"),
    }
    let check = !fold(sum);
    if check == 0 {
        0xffff
    } else {
        check
    }
}

/// A UDP header and payload with a correct checksum, for a raw socket: the kernel sends it as
/// is, where a UDP socket on lo or veth would leave the checksum to "the device".
pub fn udp_datagram(from: SocketAddr, to: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(8 + payload.len()).expect("short");
    let mut datagram = Vec::with_capacity(len as usize);
    datagram.extend_from_slice(&from.port().to_be_bytes());
    datagram.extend_from_slice(&to.port().to_be_bytes());
    datagram.extend_from_slice(&len.to_be_bytes());
    datagram.extend_from_slice(&[0, 0]);
    datagram.extend_from_slice(payload);
    let check = udp_checksum(from.ip(), to.ip(), &datagram);
    datagram[6..8].copy_from_slice(&check.to_be_bytes());
    datagram
}

/// A raw IPPROTO_UDP socket: sends UDP datagrams built by [`udp_datagram`].
pub fn raw_udp(family: IpAddr) -> Socket {
    let domain = if family.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    Socket::new(domain, Type::RAW, Some(Protocol::UDP)).expect("raw socket (root)")
}

/// Sends `payload` from `from` (whose IP must be local) to `to` with a complete UDP checksum.
pub fn send_checksummed(raw: &Socket, from: SocketAddr, to: SocketAddr, payload: &[u8]) {
    let datagram = udp_datagram(from, to, payload);
    // The kernel picks the source IP from the route; `from` is only used for the checksum, so
    // the source IP must be the one the route gives (true for the tests' addresses).
    let to_raw = SocketAddr::new(to.ip(), 0);
    raw.send_to(&datagram, &to_raw.into()).expect("raw send");
}
