//! A minimal TURN client for the load generator: just enough of RFC 8656 to get a relayed
//! address with long-term credentials, bind a channel and free the allocation.
//!
//! [`Session`] is one socket's exchange as a state machine without I/O: the caller sends the
//! bytes it writes, feeds it the answers and the clock, and retransmits when it says so
//! (RFC 8489 §6.2.1, simplified to a fixed interval: loopback loses nothing unless overloaded).

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use stun::attributes::{
    ChannelNumber, ErrorCode, Lifetime, Nonce, PasswordAlgorithmId, Realm, RequestedTransport,
    Username, XorPeerAddress, XorRelayedAddress,
};
use stun::{Class, LongTermKey, Message, MessageType, MessageWriter, Method, TransactionId};

/// The channel every flow binds to its peer (RFC 8656 §12: 0x4000–0x4FFF).
pub const CHANNEL: u16 = 0x4000;
/// A request is sent again when no answer came within this time.
const RETRANSMIT_AFTER: Duration = Duration::from_millis(500);
/// And given up after this many sends.
const MAX_SENDS: u32 = 6;

/// What one session does once it has an allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// Keep it (idle allocations for the memory workload).
    Allocate,
    /// Bind [`CHANNEL`] to this peer (relay workloads).
    Channel(SocketAddr),
    /// Free it at once with Refresh(lifetime 0) (Allocate/s workload).
    AllocateAndFree,
}

/// Where a session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Allocate without credentials sent; expecting 401 with REALM and NONCE.
    Challenge,
    /// Authenticated Allocate sent.
    Allocate,
    /// ChannelBind sent.
    ChannelBind,
    /// Refresh(0) sent.
    Free,
    /// Finished as the goal says.
    Done,
    /// Gave up: an unexpected error response, or no answer.
    Failed,
}

/// The long-term key, derived once (every session uses the same user and realm).
#[derive(Debug, Clone)]
pub struct Credentials {
    username: String,
    realm: String,
    key: LongTermKey,
}

impl Credentials {
    /// Derives the MD5 key of `username:realm:password` (RFC 8489 §9.2.2).
    pub fn new(username: &str, realm: &str, password: &str) -> Option<Credentials> {
        Some(Credentials {
            username: username.into(),
            realm: realm.into(),
            key: LongTermKey::derive(PasswordAlgorithmId::MD5, username, realm, password)?,
        })
    }
}

/// One socket's TURN exchange.
#[derive(Debug)]
pub struct Session {
    goal: Goal,
    step: Step,
    transaction: u64,
    nonce: String,
    sent_at: Instant,
    sends: u32,
    /// The relayed transport address, once allocated.
    pub relayed: Option<SocketAddr>,
    /// The error code that failed it, if any (0: no answer).
    pub error: Option<u16>,
}

impl Session {
    /// A session whose first request (an unauthenticated Allocate) is written to `out`;
    /// returns it and the request's length. `transaction` makes transaction ids unique.
    pub fn start(goal: Goal, transaction: u64, now: Instant, out: &mut [u8]) -> (Session, usize) {
        let session = Session {
            goal,
            step: Step::Challenge,
            transaction,
            nonce: String::new(),
            sent_at: now,
            sends: 1,
            relayed: None,
            error: None,
        };
        let len = session.write_request(None, out);
        (session, len)
    }

    /// Where it is.
    pub fn step(&self) -> Step {
        self.step
    }

    /// Whether it finished, successfully or not.
    pub fn finished(&self) -> bool {
        matches!(self.step, Step::Done | Step::Failed)
    }

    /// Feeds one datagram from the server; returns the length of the next request written to
    /// `out`, if there is one to send.
    pub fn handle(
        &mut self,
        credentials: &Credentials,
        datagram: &[u8],
        now: Instant,
        out: &mut [u8],
    ) -> Option<usize> {
        if self.finished() {
            return None;
        }
        let message = Message::decode(datagram).ok()?;
        if message.header().transaction_id != self.transaction_id() {
            return None; // a late answer to an earlier send
        }
        let class = message.header().message_type.class;
        let error = match message.get::<ErrorCode<'_>>() {
            Some(Ok(e)) => Some(e.code),
            _ => None,
        };
        let nonce = match message.get::<Nonce<'_>>() {
            Some(Ok(n)) => Some(n.0.to_string()),
            _ => None,
        };
        match (self.step, class, error) {
            // 401 to the first Allocate, or 438 Stale Nonce to any request: (re)send with the
            // server's nonce (RFC 8489 §9.2.4, RFC 8656 §7.2).
            (Step::Challenge, Class::Error, Some(401)) | (_, Class::Error, Some(438)) => {
                let realm_ok =
                    matches!(message.get::<Realm<'_>>(), Some(Ok(r)) if r.0 == credentials.realm);
                match nonce {
                    Some(nonce) if realm_ok => {
                        self.nonce = nonce;
                        if self.step == Step::Challenge {
                            self.step = Step::Allocate;
                        }
                        Some(self.next_request(credentials, now, out))
                    }
                    _ => self.fail(error),
                }
            }
            (Step::Allocate, Class::Success, _) => {
                self.relayed = match message.get::<XorRelayedAddress>() {
                    Some(Ok(a)) => Some(a.0),
                    _ => return self.fail(None),
                };
                self.step = match self.goal {
                    Goal::Allocate => Step::Done,
                    Goal::Channel(_) => Step::ChannelBind,
                    Goal::AllocateAndFree => Step::Free,
                };
                if self.step == Step::Done {
                    return None;
                }
                Some(self.next_request(credentials, now, out))
            }
            (Step::ChannelBind | Step::Free, Class::Success, _) => {
                self.step = Step::Done;
                None
            }
            (_, Class::Error, code) => self.fail(code),
            _ => None,
        }
    }

    /// Retransmits when the last request went unanswered too long: the length of the request
    /// written to `out`, if one is due.
    pub fn poll_retransmit(
        &mut self,
        credentials: &Credentials,
        now: Instant,
        out: &mut [u8],
    ) -> Option<usize> {
        if self.finished() || now.duration_since(self.sent_at) < RETRANSMIT_AFTER {
            return None;
        }
        if self.sends >= MAX_SENDS {
            self.step = Step::Failed;
            self.error = Some(0);
            return None;
        }
        self.sends += 1;
        self.sent_at = now;
        let auth = (self.step != Step::Challenge).then_some(credentials);
        Some(self.write_request(auth, out))
    }

    fn fail(&mut self, code: Option<u16>) -> Option<usize> {
        self.step = Step::Failed;
        self.error = Some(code.unwrap_or(0));
        None
    }

    /// A new transaction for the current step.
    fn next_request(&mut self, credentials: &Credentials, now: Instant, out: &mut [u8]) -> usize {
        self.transaction = self.transaction.wrapping_add(1 << 40);
        self.sent_at = now;
        self.sends = 1;
        self.write_request(Some(credentials), out)
    }

    fn transaction_id(&self) -> TransactionId {
        let mut id = [0u8; 12];
        id[..8].copy_from_slice(&self.transaction.to_be_bytes());
        id[8..].copy_from_slice(b"tpbn");
        TransactionId(id)
    }

    fn write_request(&self, credentials: Option<&Credentials>, out: &mut [u8]) -> usize {
        let method = match self.step {
            Step::Challenge | Step::Allocate => Method::ALLOCATE,
            Step::ChannelBind => Method::CHANNEL_BIND,
            Step::Free | Step::Done | Step::Failed => Method::REFRESH,
        };
        let id = self.transaction_id();
        // The buffer is the caller's 1,500-byte datagram buffer and these requests are under
        // 200 bytes, so writing cannot fail; an error would show as a request the server drops.
        let written = (|| {
            let mut w = MessageWriter::new(out, MessageType::new(method, Class::Request), id)?;
            match self.step {
                Step::Challenge | Step::Allocate => {
                    w.add(&RequestedTransport(RequestedTransport::UDP))?
                }
                Step::ChannelBind => {
                    if let Goal::Channel(peer) = self.goal {
                        w.add(&ChannelNumber(CHANNEL))?;
                        w.add(&XorPeerAddress(peer))?;
                    }
                }
                Step::Free | Step::Done | Step::Failed => w.add(&Lifetime(0))?,
            }
            if let Some(c) = credentials {
                w.add(&Username(&c.username))?;
                w.add(&Realm(&c.realm))?;
                w.add(&Nonce(&self.nonce))?;
                w.add_message_integrity(c.key.as_bytes())?;
            }
            Ok::<_, stun::EncodeError>(w.finish())
        })();
        written.unwrap_or(0)
    }
}

/// Writes a Binding request (RFC 8489 §6.1) with transaction id `id`; returns its length (20).
pub fn binding_request(id: [u8; 12], out: &mut [u8]) -> usize {
    MessageWriter::new(out, MessageType::BINDING_REQUEST, TransactionId(id))
        .map(MessageWriter::finish)
        .unwrap_or(0)
}

/// One Binding request to `server` from `probe` (which has a read timeout): whether a success
/// answer came back.
pub fn binding_answered(probe: &UdpSocket, server: SocketAddr) -> bool {
    let mut buf = [0u8; 1500];
    let len = binding_request([7; 12], &mut buf);
    if probe.send_to(&buf[..len], server).is_err() {
        return false;
    }
    match probe.recv_from(&mut buf) {
        Ok((n, from)) if from == server => Message::decode(&buf[..n])
            .map(|m| {
                m.header().message_type == MessageType::BINDING_REQUEST.with_class(Class::Success)
            })
            .unwrap_or(false),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn answer(request: &[u8], class: Class, build: impl FnOnce(&mut MessageWriter<'_>)) -> Vec<u8> {
        let m = Message::decode(request).unwrap();
        let mut buf = [0u8; 512];
        let mut w = MessageWriter::response(&mut buf, m.header(), class).unwrap();
        build(&mut w);
        let len = w.finish();
        buf[..len].to_vec()
    }

    // RFC 8656 §7.2 + RFC 8489 §9.2: Allocate, 401 with realm and nonce, authenticated
    // Allocate carrying USERNAME/REALM/NONCE/MESSAGE-INTEGRITY, success, then ChannelBind.
    #[test]
    fn allocates_with_long_term_credentials_then_binds_a_channel() {
        let creds = Credentials::new("u", "r", "p").unwrap();
        let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let now = Instant::now();
        let mut out = [0u8; 1500];
        let (mut s, len) = Session::start(Goal::Channel(peer), 1, now, &mut out);
        let first = out[..len].to_vec();
        assert!(!Message::decode(&first).unwrap().has_integrity());
        let challenge = answer(&first, Class::Error, |w| {
            w.add(&ErrorCode {
                code: 401,
                reason: "Unauthorized",
            })
            .unwrap();
            w.add(&Realm("r")).unwrap();
            w.add(&Nonce("n1")).unwrap();
        });
        let len = s.handle(&creds, &challenge, now, &mut out).unwrap();
        let second = out[..len].to_vec();
        let m = Message::decode(&second).unwrap();
        m.verify_integrity(creds.key.as_bytes()).unwrap();
        assert_eq!(m.get::<Nonce<'_>>().unwrap().unwrap().0, "n1");
        assert_eq!(s.step(), Step::Allocate);
        let relayed: SocketAddr = "127.0.0.1:10000".parse().unwrap();
        let ok = answer(&second, Class::Success, |w| {
            w.add(&XorRelayedAddress(relayed)).unwrap()
        });
        let len = s.handle(&creds, &ok, now, &mut out).unwrap();
        let bind = Message::decode(&out[..len]).unwrap();
        assert_eq!(bind.header().message_type.method, Method::CHANNEL_BIND);
        assert_eq!(bind.get::<XorPeerAddress>().unwrap().unwrap().0, peer);
        assert_eq!(s.relayed, Some(relayed));
        let bound = answer(&out[..len], Class::Success, |_| {});
        assert_eq!(s.handle(&creds, &bound, now, &mut out), None);
        assert_eq!(s.step(), Step::Done);
    }

    // A stray answer with another transaction id is ignored; silence is retransmitted, then
    // given up.
    #[test]
    fn retransmits_then_gives_up() {
        let creds = Credentials::new("u", "r", "p").unwrap();
        let t0 = Instant::now();
        let mut out = [0u8; 1500];
        let (mut s, _) = Session::start(Goal::Allocate, 1, t0, &mut out);
        assert_eq!(s.poll_retransmit(&creds, t0, &mut out), None);
        let mut t = t0;
        for _ in 1..MAX_SENDS {
            t += RETRANSMIT_AFTER;
            assert!(s.poll_retransmit(&creds, t, &mut out).is_some());
        }
        t += RETRANSMIT_AFTER;
        assert_eq!(s.poll_retransmit(&creds, t, &mut out), None);
        assert_eq!(s.step(), Step::Failed);
    }
}
