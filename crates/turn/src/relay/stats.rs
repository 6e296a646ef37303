//! The TURN core's global counters, for metrics and tests: plain integers in each core (one
//! per worker), which the binary sums over the workers when it is scraped. Counting is an
//! array index and an add: nothing here allocates, formats or locks, so the data path can
//! count every packet (the counting-allocator test in `tests/no_alloc.rs` holds it to that).
//!
//! Every place the core drops a datagram names a [`DropCause`]; the I/O layer adds its own
//! causes (a full socket buffer, a full TCP/TLS queue) to the same list, so that one metric
//! accounts for every datagram the server did not deliver.

use std::time::Duration;

use stun::attributes::ErrorCode;
use stun::{Class, Message, MessageType, Method};

use super::allocation::{Allocation, Relays};
use super::five_tuple::ClientTransport;

/// Why a datagram was dropped. The first causes are the core's; the last ones are counted by
/// the I/O layer (the core never sees those datagrams fail).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum DropCause {
    /// Not STUN or ChannelData, undecodable, a truncated ChannelData message, a Send
    /// indication without XOR-PEER-ADDRESS or DATA, an Allocate without REQUESTED-TRANSPORT
    /// from an unauthenticated UDP source.
    Malformed,
    /// A STUN message the relay does not handle: a response, an unknown method, an
    /// indication other than Send, an RFC 3489 request, TURN turned off (RFC 8489 §6.3).
    Unsupported,
    /// Data or a request for a 5-tuple (or relay address) with no allocation.
    NoAllocation,
    /// No permission for the peer (RFC 8656 §9: the permission check on both directions).
    NoPermission,
    /// ChannelData on a channel number not bound (RFC 8656 §12.6).
    NoChannel,
    /// The peer policy (`denied-peers`, the server's own addresses and service ports).
    PeerPolicy,
    /// The allocation has no relay of the peer's address family.
    AddressFamily,
    /// A Send indication with DONT-FRAGMENT the server cannot honour (RFC 8656 §11.2).
    DontFragment,
    /// The allocation's bandwidth cap (`bandwidth`).
    BandwidthCap,
    /// A peer datagram too large for the receive buffer's framing room.
    TooLarge,
    /// An unauthenticated answer dropped because its source's amplification budget was spent
    /// (RFC 8489 §16.1.2).
    AmplificationBudget,
    /// A failed authentication over the source's allowance (`auth-failures`): no answer.
    AuthRateLimit,
    /// The I/O layer: a send to a UDP client found the socket buffer full (EAGAIN/ENOBUFS).
    SocketBufferFull,
    /// The I/O layer: a send to a UDP client failed for another reason (unreachable, …).
    SendFailed,
    /// The I/O layer: a TCP/TLS client's queue was full (a client that does not read).
    QueueFull,
}

impl DropCause {
    /// Every cause, in label order.
    pub const ALL: [DropCause; 15] = [
        DropCause::Malformed,
        DropCause::Unsupported,
        DropCause::NoAllocation,
        DropCause::NoPermission,
        DropCause::NoChannel,
        DropCause::PeerPolicy,
        DropCause::AddressFamily,
        DropCause::DontFragment,
        DropCause::BandwidthCap,
        DropCause::TooLarge,
        DropCause::AmplificationBudget,
        DropCause::AuthRateLimit,
        DropCause::SocketBufferFull,
        DropCause::SendFailed,
        DropCause::QueueFull,
    ];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            DropCause::Malformed => "malformed",
            DropCause::Unsupported => "unsupported",
            DropCause::NoAllocation => "no_allocation",
            DropCause::NoPermission => "no_permission",
            DropCause::NoChannel => "no_channel",
            DropCause::PeerPolicy => "peer_policy",
            DropCause::AddressFamily => "address_family",
            DropCause::DontFragment => "dont_fragment",
            DropCause::BandwidthCap => "bandwidth_cap",
            DropCause::TooLarge => "too_large",
            DropCause::AmplificationBudget => "amplification_budget",
            DropCause::AuthRateLimit => "auth_rate_limit",
            DropCause::SocketBufferFull => "socket_buffer_full",
            DropCause::SendFailed => "send_failed",
            DropCause::QueueFull => "queue_full",
        }
    }
}

/// Direction of relayed data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client → peer.
    ToPeer,
    /// Peer → client.
    ToClient,
}

impl Direction {
    /// Both, in label order.
    pub const ALL: [Direction; 2] = [Direction::ToPeer, Direction::ToClient];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::ToPeer => "to_peer",
            Direction::ToClient => "to_client",
        }
    }
}

/// The client transports, in label order.
pub const TRANSPORTS: [ClientTransport; 4] = [
    ClientTransport::Udp,
    ClientTransport::Tcp,
    ClientTransport::Tls,
    ClientTransport::Dtls,
];

fn transport_index(transport: ClientTransport) -> usize {
    match transport {
        ClientTransport::Udp => 0,
        ClientTransport::Tcp => 1,
        ClientTransport::Tls => 2,
        ClientTransport::Dtls => 3,
    }
}

/// Relay address families of an allocation, in label order.
pub const FAMILIES: [&str; 3] = ["ipv4", "ipv6", "dual"];

fn family_index(relays: &Relays) -> usize {
    match (relays.v4.is_some(), relays.v6.is_some()) {
        (true, true) => 2,
        (false, true) => 1,
        _ => 0,
    }
}

/// The TURN request methods counted, in label order.
pub const METHODS: [(Method, &str); 6] = [
    (Method::ALLOCATE, "allocate"),
    (Method::REFRESH, "refresh"),
    (Method::CREATE_PERMISSION, "create_permission"),
    (Method::CHANNEL_BIND, "channel_bind"),
    (Method::CONNECT, "connect"),
    (Method::CONNECTION_BIND, "connection_bind"),
];

/// The answers counted per method, in label order: success, each error code the core
/// sends, any other error code, and no answer at all (dropped).
pub const RESPONSE_CODES: [&str; 19] = [
    "success", "300", "400", "401", "403", "420", "437", "438", "440", "441", "442", "443", "446",
    "447", "486", "500", "508", "other", "none",
];

/// The error codes of [`RESPONSE_CODES`] (from its second entry on), as numbers.
const ERROR_CODES: [u16; 16] = [
    300, 400, 401, 403, 420, 437, 438, 440, 441, 442, 443, 446, 447, 486, 500, 508,
];

/// The index in [`RESPONSE_CODES`] of the answer `response` (a STUN response as written),
/// `None` for no answer. Only error responses are decoded (for their ERROR-CODE): counting
/// a success reads the two bytes of its type.
pub fn answer_index(response: Option<&[u8]>) -> usize {
    let other = ERROR_CODES.len() + 1;
    let Some(bytes) = response else {
        return RESPONSE_CODES.len() - 1;
    };
    let class = bytes
        .get(..2)
        .and_then(|t| MessageType::from_u16(u16::from_be_bytes([t[0], t[1]])))
        .map(|t| t.class);
    match class {
        Some(Class::Success) => 0,
        Some(Class::Error) => match Message::decode(bytes).map(|m| m.get::<ErrorCode<'_>>()) {
            Ok(Some(Ok(error))) => code_index(error.code),
            _ => other,
        },
        _ => other,
    }
}

/// The index of an error code in [`RESPONSE_CODES`].
fn code_index(code: u16) -> usize {
    ERROR_CODES
        .iter()
        .position(|c| *c == code)
        .map_or(ERROR_CODES.len() + 1, |i| i + 1)
}

/// Upper bounds (seconds) of the allocation lifetime histogram's buckets; a last, implicit
/// bucket takes the rest (`+Inf`).
pub const LIFETIME_BUCKETS: [f64; 10] = [
    10.0, 30.0, 60.0, 300.0, 600.0, 1_800.0, 3_600.0, 7_200.0, 21_600.0, 86_400.0,
];

/// A histogram of allocation lifetimes, observed when an allocation ends: counts per bucket
/// (not cumulative), their sum and count.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LifetimeHistogram {
    /// Allocations per bucket of [`LIFETIME_BUCKETS`], the last entry for `+Inf`.
    pub buckets: [u64; LIFETIME_BUCKETS.len() + 1],
    /// Sum of the lifetimes, in seconds.
    pub sum_seconds: f64,
    /// Allocations observed.
    pub count: u64,
}

impl LifetimeHistogram {
    /// Records one lifetime.
    pub fn observe(&mut self, lifetime: Duration) {
        let secs = lifetime.as_secs_f64();
        let bucket = LIFETIME_BUCKETS
            .iter()
            .position(|bound| secs <= *bound)
            .unwrap_or(LIFETIME_BUCKETS.len());
        self.buckets[bucket] += 1;
        self.sum_seconds += secs;
        self.count += 1;
    }

    fn add(&mut self, other: &LifetimeHistogram) {
        for (a, b) in self.buckets.iter_mut().zip(other.buckets) {
            *a += b;
        }
        self.sum_seconds += other.sum_seconds;
        self.count += other.count;
    }
}

/// One core's counters. Sum several with [`TurnStats::add`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TurnStats {
    /// Allocations now, by client transport ([`TRANSPORTS`]) and relay family
    /// ([`FAMILIES`]).
    pub allocations: [[u64; FAMILIES.len()]; TRANSPORTS.len()],
    /// Live permissions now (filled in by [`super::TurnServer::stats`]).
    pub permissions: u64,
    /// Channel bindings now, counting those in their cool-down (filled in likewise).
    pub channels: u64,
    /// Peer TCP connections of TCP allocations (RFC 6062), connecting, waiting for their
    /// ConnectionBind or spliced (filled in likewise).
    pub peer_connections: u64,
    /// Packets relayed, by [`Direction`] and client transport.
    pub packets: [[u64; TRANSPORTS.len()]; 2],
    /// Payload bytes relayed (application data, without TURN framing), likewise.
    pub bytes: [[u64; TRANSPORTS.len()]; 2],
    /// Datagrams dropped, by [`DropCause`] (index in [`DropCause::ALL`]).
    pub drops: [u64; DropCause::ALL.len()],
    /// Requests answered, by method ([`METHODS`]) and answer ([`RESPONSE_CODES`]).
    pub requests: [[u64; RESPONSE_CODES.len()]; METHODS.len()],
    /// Lifetimes of the allocations that ended.
    pub lifetimes: LifetimeHistogram,
}

impl TurnStats {
    /// Counts a dropped datagram.
    pub fn drop_packet(&mut self, cause: DropCause) {
        self.drops[cause as usize] += 1;
    }

    /// Drops for `cause`.
    pub fn dropped_for(&self, cause: DropCause) -> u64 {
        self.drops[cause as usize]
    }

    /// Counts a relayed packet with `bytes` of payload.
    pub fn relayed(&mut self, direction: Direction, transport: ClientTransport, bytes: usize) {
        let (d, t) = (direction as usize, transport_index(transport));
        self.packets[d][t] += 1;
        self.bytes[d][t] += bytes as u64;
    }

    /// Counts packets relayed elsewhere (the kernel fast path), reported in bulk.
    pub fn relayed_many(
        &mut self,
        direction: Direction,
        transport: ClientTransport,
        traffic: super::sessions::Traffic,
    ) {
        let (d, t) = (direction as usize, transport_index(transport));
        self.packets[d][t] += traffic.packets;
        self.bytes[d][t] += traffic.bytes;
    }

    /// Counts a new allocation.
    pub fn allocation_created(&mut self, allocation: &Allocation) {
        let t = transport_index(allocation.five_tuple.transport);
        self.allocations[t][family_index(&allocation.relays)] += 1;
    }

    /// Counts an allocation that ended after `lifetime`.
    pub fn allocation_ended(&mut self, allocation: &Allocation, lifetime: Duration) {
        let t = transport_index(allocation.five_tuple.transport);
        let slot = &mut self.allocations[t][family_index(&allocation.relays)];
        *slot = slot.saturating_sub(1);
        self.lifetimes.observe(lifetime);
    }

    /// Counts the answer to a request of `method`: `response` is the answer written, `None`
    /// when the request was dropped.
    pub fn answered(&mut self, method: Method, response: Option<&[u8]>) {
        let Some(m) = METHODS.iter().position(|(known, _)| *known == method) else {
            return;
        };
        self.requests[m][answer_index(response)] += 1;
    }

    /// Allocations now, all kinds.
    pub fn allocation_count(&self) -> u64 {
        self.allocations.iter().flatten().sum()
    }

    /// Packets relayed in `direction`, all transports.
    pub fn packets_in(&self, direction: Direction) -> u64 {
        self.packets[direction as usize].iter().sum()
    }

    /// Datagrams dropped, all causes.
    pub fn dropped(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// Adds `other`'s counters to these (summing workers).
    pub fn add(&mut self, other: &TurnStats) {
        fn sum<const N: usize>(a: &mut [u64; N], b: &[u64; N]) {
            for (a, b) in a.iter_mut().zip(b) {
                *a += b;
            }
        }
        for (a, b) in self.allocations.iter_mut().zip(&other.allocations) {
            sum(a, b);
        }
        for (a, b) in self.packets.iter_mut().zip(&other.packets) {
            sum(a, b);
        }
        for (a, b) in self.bytes.iter_mut().zip(&other.bytes) {
            sum(a, b);
        }
        for (a, b) in self.requests.iter_mut().zip(&other.requests) {
            sum(a, b);
        }
        sum(&mut self.drops, &other.drops);
        self.permissions += other.permissions;
        self.channels += other.channels;
        self.peer_connections += other.peer_connections;
        self.lifetimes.add(&other.lifetimes);
    }
}

#[cfg(test)]
mod tests {
    use super::super::respond::{respond, respond_error};
    use super::*;

    #[test]
    fn lifetimes_fall_in_their_bucket() {
        let mut h = LifetimeHistogram::default();
        h.observe(Duration::from_secs(5));
        h.observe(Duration::from_secs(10));
        h.observe(Duration::from_secs(11));
        h.observe(Duration::from_secs(100_000));
        assert_eq!(h.buckets[0], 2, "5 s and 10 s are <= 10 s");
        assert_eq!(h.buckets[1], 1);
        assert_eq!(h.buckets[LIFETIME_BUCKETS.len()], 1, "+Inf");
        assert_eq!(h.count, 4);
        assert!((h.sum_seconds - 100_026.0).abs() < 1e-6);
    }

    #[test]
    fn error_codes_have_their_own_label() {
        assert_eq!(RESPONSE_CODES[code_index(401)], "401");
        assert_eq!(RESPONSE_CODES[code_index(508)], "508");
        assert_eq!(RESPONSE_CODES[code_index(599)], "other");
        for code in ERROR_CODES {
            assert_eq!(RESPONSE_CODES[code_index(code)], code.to_string());
        }
        for cause in DropCause::ALL {
            assert_eq!(
                DropCause::ALL[cause as usize],
                cause,
                "ALL is in index order"
            );
        }
    }

    #[test]
    fn answers_are_read_from_the_response() {
        let mut buf = [0u8; 64];
        let tid = stun::TransactionId([1; 12]);
        let len = stun::MessageWriter::new(&mut buf, stun::MessageType::BINDING_REQUEST, tid)
            .unwrap()
            .finish();
        let request = Message::decode(&buf[..len]).unwrap();
        let mut out = [0u8; 128];
        let ok = respond(&request, Class::Success, None, &mut out, |_| Ok(())).unwrap();
        assert_eq!(RESPONSE_CODES[answer_index(Some(&out[..ok]))], "success");
        let code = stun::error_code::ALLOCATION_QUOTA_REACHED;
        let err = respond_error(&request, code, None, &mut out).unwrap();
        assert_eq!(RESPONSE_CODES[answer_index(Some(&out[..err]))], "486");
        assert_eq!(RESPONSE_CODES[answer_index(None)], "none");
        assert_eq!(RESPONSE_CODES[answer_index(Some(&[1]))], "other");
    }

    #[test]
    fn sums_add_every_counter() {
        let mut a = TurnStats::default();
        a.drop_packet(DropCause::NoPermission);
        a.relayed(Direction::ToClient, ClientTransport::Tcp, 100);
        let mut total = TurnStats::default();
        total.add(&a);
        total.add(&a);
        assert_eq!(total.dropped_for(DropCause::NoPermission), 2);
        assert_eq!(total.packets_in(Direction::ToClient), 2);
        assert_eq!(total.bytes[1][1], 200);
    }
}
