//! Finding a STUN or TURN server from its URI, as the RFCs say: RFC 5928 §3 for `turn:` and
//! `turns:` (NAPTR, then SRV, then A/AAAA), RFC 8489 §8 for `stun:` and `stuns:` (SRV, then
//! A/AAAA). Every client command (`stun`, `nat`, `check`, `p2p`) resolves its servers here.
//!
//! [`plan`], [`naptr`] and [`srv`] are pure: what to ask and in which order to try the
//! answers, unit-tested without DNS. [`dns`] is the I/O (hickory-resolver, or one server
//! given by `--dns-server`), [`resolve`] runs the plan and records every query and its answer
//! so that `turnpike check` can show them.

mod args;
mod dns;
mod naptr;
mod plan;
mod resolve;
mod srv;

pub use args::DnsArgs;
pub use dns::Dns;
pub use plan::ServerName;
pub use resolve::{resolve, Candidate};

/// How a client reaches the server: the transports of RFC 5928 §3 and RFC 8489 §8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
    /// DTLS over UDP (RFC 7350): `turns:` with `?transport=udp`.
    Dtls,
}

impl Transport {
    /// "udp", "tcp", "tls", "dtls".
    pub fn name(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
            Transport::Dtls => "dtls",
        }
    }
}
