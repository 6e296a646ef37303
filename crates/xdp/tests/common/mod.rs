//! Helpers of the integration tests: root check, sockets, ChannelData, the `lo` lock, netns.
#![allow(dead_code)] // each test binary uses a part

pub mod scenario;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

/// Only one XDP program can be attached to `lo`: the tests of a binary take turns.
static LO: Mutex<()> = Mutex::new(());

/// The same turn across processes: two test runs on one machine (two CI checkouts, or this
/// crate's test binaries run at once) would otherwise find `lo` busy.
const LO_LOCK_FILE: &str = "/tmp/turnpike-xdp-lo.lock";

/// Holds `lo` for one test: the process-wide mutex and the machine-wide file lock.
pub struct LoTurn {
    _file: nix::fcntl::Flock<std::fs::File>,
    _thread: MutexGuard<'static, ()>,
}

/// Serializes the tests that attach to `lo` (a panicking test does not poison the others).
pub fn lo_lock() -> LoTurn {
    let thread = LO.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(LO_LOCK_FILE)
        .expect("open the lo lock file");
    let file = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .expect("flock the lo lock file");
    LoTurn {
        _file: file,
        _thread: thread,
    }
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

/// A raw IPPROTO_UDP socket bound to `ip`, its source address: sends UDP datagrams built by
/// [`udp_datagram`].
pub fn raw_udp(ip: IpAddr) -> Socket {
    let domain = if ip.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let socket = Socket::new(domain, Type::RAW, Some(Protocol::UDP)).expect("raw socket (root)");
    socket
        .bind(&SocketAddr::new(ip, 0).into())
        .expect("bind raw socket");
    socket
}

/// Sends `payload` from `from` (whose IP must be local) to `to` with a complete UDP checksum.
pub fn send_checksummed(raw: &Socket, from: SocketAddr, to: SocketAddr, payload: &[u8]) {
    let datagram = udp_datagram(from, to, payload);
    // The source IP is the one `raw` is bound to: it must be `from`'s.
    let to_raw = SocketAddr::new(to.ip(), 0);
    raw.send_to(&datagram, &to_raw.into()).expect("raw send");
}

/// A UDP datagram seen by a packet socket, with what its checksums say.
#[derive(Debug)]
pub struct Captured {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    /// TTL or hop limit.
    pub ttl: u8,
    /// The IPv4 header checksum is right (always true for IPv6, which has none).
    pub ip_checksum_ok: bool,
    /// The UDP checksum is present and right.
    pub udp_checksum_ok: bool,
}

/// Parses an Ethernet frame carrying IPv4 (no options) or IPv6 (no extension headers) UDP.
pub fn parse_udp_frame(frame: &[u8]) -> Option<Captured> {
    let ether_type = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    let (src_ip, dst_ip, ttl, ip_checksum_ok, udp_at): (IpAddr, IpAddr, u8, bool, usize) =
        match ether_type {
            0x0800 => {
                let ip = frame.get(14..34)?;
                if ip[0] != 0x45 || ip[9] != 17 {
                    return None;
                }
                let src: [u8; 4] = ip[12..16].try_into().ok()?;
                let dst: [u8; 4] = ip[16..20].try_into().ok()?;
                (
                    src.into(),
                    dst.into(),
                    ip[8],
                    fold(sum_be(ip)) == 0xffff,
                    34,
                )
            }
            0x86dd => {
                let ip = frame.get(14..54)?;
                if ip[6] != 17 {
                    return None;
                }
                let src: [u8; 16] = ip[8..24].try_into().ok()?;
                let dst: [u8; 16] = ip[24..40].try_into().ok()?;
                (src.into(), dst.into(), ip[7], true, 54)
            }
            _ => return None,
        };
    let header = frame.get(udp_at..udp_at + 8)?;
    let len = usize::from(u16::from_be_bytes([header[4], header[5]]));
    let mut udp = frame.get(udp_at..udp_at + len)?.to_vec();
    let stored = u16::from_be_bytes([udp[6], udp[7]]);
    udp[6..8].copy_from_slice(&[0, 0]);
    let udp_checksum_ok = stored != 0 && stored == udp_checksum(src_ip, dst_ip, &udp);
    let port = |at: usize| u16::from_be_bytes([header[at], header[at + 1]]);
    Some(Captured {
        src: SocketAddr::new(src_ip, port(0)),
        dst: SocketAddr::new(dst_ip, port(2)),
        ttl,
        ip_checksum_ok,
        udp_checksum_ok,
    })
}

/// A packet socket that sees every frame of its network namespace, both ways.
pub fn packet_capture() -> Socket {
    const ETH_P_ALL: u16 = 0x0003;
    let protocol = Protocol::from(i32::from(ETH_P_ALL.to_be()));
    let socket =
        Socket::new(Domain::PACKET, Type::RAW, Some(protocol)).expect("packet socket (root)");
    socket.set_recv_buffer_size(8 << 20).expect("SO_RCVBUF");
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    socket
}

/// Every UDP datagram captured until the socket has been quiet for its timeout.
pub fn drain_capture(socket: &Socket) -> Vec<Captured> {
    use std::io::Read;
    let mut captured = Vec::new();
    let mut buf = vec![0u8; 65_536];
    let mut reader = socket;
    while let Ok(n) = reader.read(&mut buf) {
        captured.extend(parse_udp_frame(&buf[..n]));
    }
    captured
}
