//! What NAT behaviour discovery found: the verdicts, the notes that qualify them, and every
//! probe that led to them.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use stun::attributes::ChangeRequest;

use super::behaviour::{Filtering, Mapping, NatType};
use super::lifetime::Lifetime;
use crate::error::TransactionError;
use crate::response::BindingResponse;

/// One of the client's sockets. Exhaustive on purpose: a driver must own every socket
/// discovery may send from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NatSocket {
    /// The socket whose NAT behaviour is examined; every test but the lifetime's is sent
    /// from it.
    Primary,
    /// The socket the lifetime checks are sent from (RFC 5780 §4.6, "source port Y"); used
    /// only when the lifetime is measured.
    LifetimeProbe,
    /// The binding under test of one lifetime trial (RFC 5780 §4.6, "source port X"): a
    /// fresh socket per trial, on a new local port, which the driver binds the first time
    /// it is asked to send from it. Each trial so measures a binding of its own, which an
    /// earlier trial's expiry cannot have shortened.
    LifetimeBinding(u32),
}

impl NatSocket {
    /// A short name, as printed (trial sockets share one).
    pub const fn as_str(self) -> &'static str {
        match self {
            NatSocket::Primary => "primary",
            NatSocket::LifetimeProbe => "lifetime-probe",
            NatSocket::LifetimeBinding(_) => "lifetime-binding",
        }
    }
}

impl fmt::Display for NatSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NatSocket::LifetimeBinding(n) => write!(f, "lifetime-binding-{n}"),
            other => f.write_str(other.as_str()),
        }
    }
}

/// Which binding lifetime a lifetime trial measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BindingAge {
    /// A binding made by one request and its answer.
    New,
    /// A binding refreshed by a second request some time after the first
    /// ([`LifetimeConfig::warm_up`](super::LifetimeConfig::warm_up)).
    Refreshed,
}

impl BindingAge {
    /// "new" or "refreshed".
    pub const fn as_str(self) -> &'static str {
        match self {
            BindingAge::New => "new",
            BindingAge::Refreshed => "refreshed",
        }
    }
}

/// Which test a probe is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Test {
    /// Test I (RFC 5780 §4.2, §4.3): a plain Binding request to server number `server` (an
    /// index into the servers given).
    Basic {
        /// Index of the server in the list given to discovery.
        server: usize,
    },
    /// RFC 5780 §4.4 test II: to the primary address, CHANGE-REQUEST change IP and port.
    FilteringII,
    /// RFC 5780 §4.4 test III: to the primary address, CHANGE-REQUEST change port.
    FilteringIII,
    /// Test II for a server without a second port (its OTHER-ADDRESS has the primary port):
    /// CHANGE-REQUEST change IP only. An answer proves endpoint-independent filtering as
    /// test II's does; none leaves address-dependent and address-and-port-dependent apart
    /// only by test III, which needs the port the server does not have.
    FilteringIIChangeIp,
    /// RFC 5780 §4.3 test II: to OTHER-ADDRESS's IP and the primary port.
    MappingII,
    /// RFC 5780 §4.3 test III: to OTHER-ADDRESS (IP and port).
    MappingIII,
    /// Hairpinning (RFC 4787 §6): a Binding request to our own mapped address, which comes
    /// back to the primary socket if the NAT hairpins.
    Hairpin,
    /// RFC 5780 §4.6: the first request from a trial's fresh socket ("port X"), which makes
    /// the binding under test.
    LifetimeCreate {
        /// Which lifetime the trial measures.
        age: BindingAge,
        /// The wait the trial tries.
        wait: Duration,
    },
    /// A second request from the trial's socket, `warm_up` after the first.
    LifetimeRefresh {
        /// Always [`BindingAge::Refreshed`].
        age: BindingAge,
        /// The wait the trial tries.
        wait: Duration,
    },
    /// RFC 5780 §4.6: after `wait`, a request from the lifetime probe socket ("port Y") with
    /// RESPONSE-PORT set to the trial binding's mapped port.
    LifetimeCheck {
        /// Which lifetime the trial measures.
        age: BindingAge,
        /// How long after the binding's last answer this check was sent.
        wait: Duration,
    },
}

impl Test {
    /// The CHANGE-REQUEST flags this test sends.
    pub const fn change_request(self) -> ChangeRequest {
        match self {
            Test::FilteringII => ChangeRequest {
                change_ip: true,
                change_port: true,
            },
            Test::FilteringIII => ChangeRequest {
                change_ip: false,
                change_port: true,
            },
            Test::FilteringIIChangeIp => ChangeRequest {
                change_ip: true,
                change_port: false,
            },
            _ => ChangeRequest {
                change_ip: false,
                change_port: false,
            },
        }
    }
}

impl fmt::Display for Test {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Test::Basic { server } => write!(f, "test I (server {})", server + 1),
            Test::FilteringII => f.write_str("filtering test II (change IP and port)"),
            Test::FilteringIII => f.write_str("filtering test III (change port)"),
            Test::FilteringIIChangeIp => f.write_str("filtering test II (change IP only)"),
            Test::MappingII => f.write_str("mapping test II (other IP, primary port)"),
            Test::MappingIII => f.write_str("mapping test III (other IP and port)"),
            Test::Hairpin => f.write_str("hairpinning test"),
            Test::LifetimeCreate { age, wait } => write!(
                f,
                "lifetime binding ({} binding, wait {} ms)",
                age.as_str(),
                wait.as_millis()
            ),
            Test::LifetimeRefresh { wait, .. } => {
                write!(f, "lifetime refresh (wait {} ms)", wait.as_millis())
            }
            Test::LifetimeCheck { age, wait } => write!(
                f,
                "lifetime check after {} ms ({} binding)",
                wait.as_millis(),
                age.as_str()
            ),
        }
    }
}

/// How a probe ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProbeOutcome {
    /// A success response arrived on `socket`.
    Answered {
        /// What the response said.
        response: BindingResponse,
        /// The socket it arrived on.
        socket: NatSocket,
    },
    /// Our own request came back to the primary socket (hairpinning works).
    Hairpinned {
        /// Where it came from, as the socket saw it.
        from: SocketAddr,
    },
    /// Nothing came back before the probe gave up.
    NoAnswer {
        /// How many requests were sent.
        sends: u32,
    },
    /// An error response or an unusable answer.
    Failed(TransactionError),
}

impl ProbeOutcome {
    /// The success response, if there was one.
    pub fn response(&self) -> Option<&BindingResponse> {
        match self {
            ProbeOutcome::Answered { response, .. } => Some(response),
            _ => None,
        }
    }
}

impl fmt::Display for ProbeOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeOutcome::Answered { response, socket } => write!(
                f,
                "mapped {} (answer from {} on the {socket} socket)",
                response.mapped, response.from
            ),
            ProbeOutcome::Hairpinned { from } => write!(f, "our request came back from {from}"),
            ProbeOutcome::NoAnswer { sends } => {
                write!(f, "no answer ({sends} request(s) sent)")
            }
            ProbeOutcome::Failed(error) => write!(f, "{error}"),
        }
    }
}

/// One probe: what was sent, when, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeRecord {
    /// The test.
    pub test: Test,
    /// The socket it was sent from.
    pub socket: NatSocket,
    /// Where it was sent.
    pub destination: SocketAddr,
    /// When its first request left, from the start of discovery.
    pub started: Duration,
    /// How it ended.
    pub outcome: ProbeOutcome,
}

/// What one server's test I found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerObservation {
    /// The server's address.
    pub server: SocketAddr,
    /// How test I ended.
    pub outcome: ProbeOutcome,
}

impl ServerObservation {
    /// Our address as this server saw it.
    pub fn mapped(&self) -> Option<SocketAddr> {
        self.outcome.response().map(|r| r.mapped)
    }

    /// The server's OTHER-ADDRESS, if it sent one (RFC 5780 §7.4).
    pub fn other_address(&self) -> Option<SocketAddr> {
        self.outcome.response().and_then(|r| r.other_address)
    }
}

/// Something that limits or qualifies the verdicts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Note {
    /// No server that answered sent OTHER-ADDRESS, so the RFC 5780 tests could not run.
    NoOtherAddress {
        /// How many servers answered test I.
        answered: usize,
    },
    /// A test could not be completed: no answer where one was needed, or an error response.
    TestFailed {
        /// The test.
        test: Test,
        /// What happened.
        outcome: ProbeOutcome,
    },
    /// The answer to a CHANGE-REQUEST test did not come from the address asked for, so the
    /// server does not honour CHANGE-REQUEST and filtering cannot be judged from it.
    ChangeRequestNotHonoured {
        /// The test.
        test: Test,
        /// Where the answer should have come from.
        expected: SocketAddr,
        /// Where it came from.
        from: SocketAddr,
    },
    /// The RFC 5780 tests found endpoint-independent mapping, yet two servers saw different
    /// mapped addresses; the more restrictive finding is reported.
    MappingInconsistent {
        /// One server and what it saw.
        first: (SocketAddr, SocketAddr),
        /// Another server and what it saw.
        second: (SocketAddr, SocketAddr),
    },
    /// Servers on one IP but different ports saw the same mapping; without a server on
    /// another IP, address-dependent mapping cannot be ruled out.
    MappingUndecided,
    /// The behaviour server's OTHER-ADDRESS has its own port: it has a second IP but no
    /// second port, so it cannot answer CHANGE-REQUEST for the port (RFC 5780 §6.1: 420)
    /// and `undecided` could only be narrowed down.
    NoAlternatePort {
        /// The server.
        server: SocketAddr,
        /// Its OTHER-ADDRESS.
        other: SocketAddr,
        /// What stays undecided.
        undecided: Undecided,
    },
    /// A server sent an OTHER-ADDRESS on its own IP, which the RFC 5780 tests cannot use
    /// (they need another IP).
    OtherAddressUnusable {
        /// The server.
        server: SocketAddr,
        /// Its OTHER-ADDRESS.
        other: SocketAddr,
    },
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::NoOtherAddress { answered: 0 | 1 } => f.write_str(
                "server does not support RFC 5780 (no OTHER-ADDRESS): only the mapping of \
                 one server can be observed",
            ),
            Note::NoOtherAddress { answered } => write!(
                f,
                "no server supports RFC 5780 (no OTHER-ADDRESS): mapping is judged by \
                 comparing the mapped addresses of {answered} servers; filtering cannot be \
                 observed"
            ),
            Note::TestFailed { test, outcome } => write!(f, "{test}: {outcome}"),
            Note::ChangeRequestNotHonoured {
                test,
                expected,
                from,
            } => write!(
                f,
                "{test}: the answer came from {from}, not {expected}: the server does not \
                 honour CHANGE-REQUEST, so filtering is unknown"
            ),
            Note::MappingInconsistent { first, second } => write!(
                f,
                "the RFC 5780 tests found endpoint-independent mapping, but {} saw {} and {} \
                 saw {}: reporting endpoint-dependent mapping",
                first.0, first.1, second.0, second.1
            ),
            Note::NoAlternatePort {
                server,
                other,
                undecided,
            } => {
                let what = match undecided {
                    Undecided::Filtering => {
                        "filtering is address-dependent or address-and-port-dependent"
                    }
                    Undecided::Mapping => {
                        "mapping is address-dependent or address-and-port-dependent"
                    }
                };
                write!(
                    f,
                    "server {server} gave OTHER-ADDRESS {other}, on its own port: it has no \
                     alternate port, so it cannot answer CHANGE-REQUEST for the port (the \
                     server needs alternate-port too); {what}, which of the two is unknown"
                )
            }
            Note::OtherAddressUnusable { server, other } => write!(
                f,
                "server {server} gave OTHER-ADDRESS {other}, on its own IP: the RFC 5780 \
                 tests need another IP"
            ),
            Note::MappingUndecided => f.write_str(
                "the servers that answered share one IP: address-dependent mapping cannot be \
                 ruled out",
            ),
        }
    }
}

/// The two binding lifetimes (RFC 5780 §4.6); see [`LifetimeConfig`](super::LifetimeConfig).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    /// A binding made by one request and its answer.
    pub new: Lifetime,
    /// A binding refreshed `warm_up` after it was made.
    pub refreshed: Lifetime,
    /// The time between the first request and the refresh.
    pub warm_up: Duration,
}

/// What a server without a second port leaves undecided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Undecided {
    /// Filtering is address-dependent or address-and-port-dependent.
    Filtering,
    /// Mapping is address-dependent or address-and-port-dependent.
    Mapping,
}

/// The findings of NAT behaviour discovery.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NatReport {
    /// The primary socket's local address, as given.
    pub local: SocketAddr,
    /// Test I against each server contacted, in the order given.
    pub servers: Vec<ServerObservation>,
    /// The server the RFC 5780 tests ran against (the first that sent OTHER-ADDRESS).
    pub behaviour_server: Option<SocketAddr>,
    /// That server's OTHER-ADDRESS.
    pub other_address: Option<SocketAddr>,
    /// Our public address: the mapped address from the first server that answered.
    pub public: Option<SocketAddr>,
    /// Whether the public address differs from the local one; `None` if nothing answered.
    pub behind_nat: Option<bool>,
    /// Mapping behaviour (RFC 5780 §4.3, or by comparing servers).
    pub mapping: Option<Mapping>,
    /// True when `mapping` comes from comparing servers rather than RFC 5780 tests.
    pub mapping_by_comparison: bool,
    /// Filtering behaviour (RFC 5780 §4.4).
    pub filtering: Option<Filtering>,
    /// Whether the NAT hairpins (RFC 4787 §6); `None` when not behind a NAT or not tested.
    pub hairpinning: Option<bool>,
    /// The RFC 3489 name.
    pub nat_type: Option<NatType>,
    /// The binding lifetimes (RFC 5780 §4.6), when they were measured.
    pub lifetime: Option<Lifetimes>,
    /// What limits these findings.
    pub notes: Vec<Note>,
    /// Every probe, in the order they ended.
    pub probes: Vec<ProbeRecord>,
}
