//! DTLS (RFC 7350: STUN and TURN over DTLS) for the server: the certificate the handshakes
//! present (re-read on reload, as TLS's: [`DtlsIdentity::reload`]), and the stateless cookie
//! exchange that keeps a source from getting any state
//! before it proves it receives what is sent to its address (RFC 6347 §4.2.1).
//!
//! The DTLS protocol itself is `dimpl`'s (sans-IO DTLS 1.2; no crypto of ours: HMAC-SHA-256
//! from the `hmac` crate). Admission:
//! - a ClientHello from a source without a session is read here, not by `dimpl` (creating a
//!   `dimpl` server costs ~0.4 ms of CPU, parsing its key: too much to spend on every spoofed
//!   datagram);
//! - without a cookie, or with one made for another address, it gets a HelloVerifyRequest of
//!   60 bytes built here: cookie = HMAC-SHA-256(secret of the source, client random), the
//!   secret of a source being HMAC-SHA-256(per-process key, its address). That is the cookie
//!   `dimpl` computes and checks (its HMAC over the client random), keyed the same way through
//!   `Dtls::set_cookie_secret`, so the exchange needs no memory of the first ClientHello;
//! - only a ClientHello that returns the cookie of its own source address gets a `dimpl`
//!   server, which continues the exchange as if it had sent the HelloVerifyRequest itself.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use arc_swap::ArcSwap;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::TlsFiles;
use crate::tls::{read_certs, read_key};

/// The largest datagram a session sends: DTLS records of the handshake are cut to fit, and
/// relayed data larger than this (less the record overhead) is dropped by `dimpl`.
const MTU: usize = 1_400;

/// DTLS record content types (RFC 6347 §4.1).
const CONTENT_ALERT: u8 = 21;
const CONTENT_HANDSHAKE: u8 = 22;
/// Length of the DTLS record header (RFC 6347 §4.1).
const RECORD_HEADER: usize = 13;
/// Length of the DTLS handshake header (RFC 6347 §4.2.2).
const HANDSHAKE_HEADER: usize = 12;
/// Handshake message types (RFC 6347 §4.2.2, §4.3.2).
const CLIENT_HELLO: u8 = 1;
const HELLO_VERIFY_REQUEST: u8 = 3;
/// DTLS 1.0's version bytes (RFC 4347 §4.1: {254, 255}); a HelloVerifyRequest carries them
/// whatever the version negotiated later (RFC 6347 §4.2.1).
const DTLS_1_0: [u8; 2] = [0xfe, 0xff];
/// Length of a cookie: `dimpl` checks 32-byte cookies.
const COOKIE_LEN: usize = 32;
/// Length of a HelloVerifyRequest with a 32-byte cookie, record header included.
pub const HELLO_VERIFY_REQUEST_LEN: usize = RECORD_HEADER + HANDSHAKE_HEADER + 3 + COOKIE_LEN;

/// The fields of an unfragmented ClientHello that the cookie exchange reads (RFC 6347
/// §4.1, §4.2.1, §4.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientHello<'a> {
    /// The record's sequence number, echoed by the HelloVerifyRequest (RFC 6347 §4.2.1).
    pub record_sequence: &'a [u8],
    /// 0 for a first ClientHello, 1 for the one answering a HelloVerifyRequest.
    pub message_seq: u16,
    /// client_version: `{254, 255}` for DTLS 1.0, `{254, 253}` for 1.2.
    pub version: [u8; 2],
    /// The client's random.
    pub random: &'a [u8],
    /// The cookie, empty in a first ClientHello.
    pub cookie: &'a [u8],
}

impl<'a> ClientHello<'a> {
    /// The ClientHello that `datagram` starts with: a plaintext (epoch 0) handshake record
    /// holding a whole ClientHello. `None` for anything else (a fragmented ClientHello too: a
    /// source without a session is worth no reassembly buffer).
    pub fn parse(datagram: &'a [u8]) -> Option<ClientHello<'a>> {
        let record = datagram.get(..RECORD_HEADER)?;
        if record[0] != CONTENT_HANDSHAKE || record[3..5] != [0, 0] {
            return None;
        }
        let record_len = usize::from(u16::from_be_bytes([record[11], record[12]]));
        let handshake = datagram.get(RECORD_HEADER..RECORD_HEADER + record_len)?;
        let header = handshake.get(..HANDSHAKE_HEADER)?;
        let length = u24(&header[1..4]);
        let unfragmented = u24(&header[6..9]) == 0 && u24(&header[9..12]) == length;
        if header[0] != CLIENT_HELLO || !unfragmented {
            return None;
        }
        let body = handshake.get(HANDSHAKE_HEADER..HANDSHAKE_HEADER + length)?;
        let random = body.get(2..34)?;
        let session_len = usize::from(*body.get(34)?);
        let cookie_at = 35 + session_len;
        let cookie_len = usize::from(*body.get(cookie_at)?);
        Some(ClientHello {
            record_sequence: &record[5..11],
            message_seq: u16::from_be_bytes([header[4], header[5]]),
            version: [body[0], body[1]],
            random,
            cookie: body.get(cookie_at + 1..cookie_at + 1 + cookie_len)?,
        })
    }

    /// True when the client offers at most DTLS 1.0, which `dimpl` does not speak.
    pub fn only_dtls_1_0(&self) -> bool {
        self.version == DTLS_1_0
    }
}

/// A 24-bit big-endian length.
fn u24(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .fold(0, |value, byte| (value << 8) | usize::from(*byte))
}

/// A plaintext fatal `protocol_version` alert (RFC 5246 §7.2, RFC 6347 §4.1) in a DTLS 1.0
/// record: the answer to a DTLS 1.0 ClientHello, so that a client that can also speak DTLS
/// 1.2 tries again at once (coturn's `turnutils_uclient` picks a version at random and
/// retries on an alert) rather than retransmitting into silence. 15 bytes, fewer than any
/// ClientHello: no amplification.
pub const PROTOCOL_VERSION_ALERT: [u8; 15] = [
    CONTENT_ALERT,
    0xfe,
    0xff, // DTLS 1.0
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0, // epoch 0, sequence number 0
    0,
    2, // length
    2,
    70, // fatal, protocol_version
];

/// The server's DTLS identity: certificate, key and cookie key.
pub struct DtlsIdentity {
    /// Where the certificate and key come from, to read them again on reload.
    files: TlsFiles,
    /// What new handshakes present; replaced whole by [`DtlsIdentity::reload`], while
    /// sessions already established keep the keys they negotiated.
    certificate: ArcSwap<dimpl::DtlsCertificate>,
    /// Built once: building a `dimpl` configuration validates its crypto provider (~10 ms).
    config: Arc<dimpl::Config>,
    /// Keys the per-source cookie secrets; drawn at startup, never leaves the process.
    cookie_key: [u8; 32],
}

/// The leaf certificate and key of `files` (`tls-cert`, `tls-key`); fails, naming the key
/// and path, when the key is not one `dimpl` signs with (ECDSA P-256 or P-384: it has no RSA).
fn read_certificate(
    files: &TlsFiles,
    config: &dimpl::Config,
) -> anyhow::Result<dimpl::DtlsCertificate> {
    let leaf = read_certs(&files.cert, "tls-cert")?
        .into_iter()
        .next()
        .context("tls-cert: no certificate")?;
    let key = read_key(&files.key, "tls-key")?;
    let key = key.secret_der().to_vec();
    if config
        .crypto_provider()
        .key_provider
        .load_private_key(&key)
        .is_err()
    {
        anyhow::bail!(
            "tls-key {}: DTLS needs an ECDSA (P-256 or P-384) key; this one is not \
             (set `dtls = false` to serve TLS alone with it)",
            files.key.display()
        );
    }
    Ok(dimpl::DtlsCertificate {
        certificate: leaf.to_vec(),
        private_key: key,
    })
}

impl std::fmt::Debug for DtlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key or the cookie key.
        f.debug_struct("DtlsIdentity").finish_non_exhaustive()
    }
}

impl DtlsIdentity {
    /// Reads the leaf certificate and key of `files` (`tls-cert`, `tls-key`); fails, naming
    /// the key and path, when the key is not one `dimpl` signs with (ECDSA P-256 or P-384:
    /// it has no RSA). A handshake that is not finished after `handshake_timeout` fails.
    pub fn load(files: &TlsFiles, handshake_timeout: Duration) -> anyhow::Result<Self> {
        let config = dimpl::Config::builder()
            .mtu(MTU)
            // Answers to one record of several messages are queued before the session sends
            // them; `dimpl` fails a session whose queue overflows (its default holds 10).
            .max_queue_tx(64)
            // TURN clients authenticate with STUN credentials, not certificates.
            .require_client_certificate(false)
            .use_server_cookie(true)
            .handshake_timeout(handshake_timeout)
            .build()
            .context("DTLS configuration")?;
        let certificate = read_certificate(files, &config)?;
        Ok(DtlsIdentity {
            files: files.clone(),
            certificate: ArcSwap::from_pointee(certificate),
            config: Arc::new(config),
            cookie_key: rand::random(),
        })
    }

    /// Re-reads the certificate and key files: handshakes that start afterwards present
    /// them. On any error the certificate in use stays, and the error names the key and file
    /// at fault. The caller has checked that the key is the certificate's (the TLS store of
    /// the same files, [`crate::tls::Certificates::reload`]): `dimpl` does not.
    pub fn reload(&self) -> anyhow::Result<()> {
        let fresh = read_certificate(&self.files, &self.config)?;
        self.certificate.store(Arc::new(fresh));
        Ok(())
    }

    /// True when `hello` carries the cookie made for `client` (RFC 6347 §4.2.1).
    pub fn cookie_is_valid(&self, client: SocketAddr, hello: &ClientHello<'_>) -> bool {
        self.cookie_mac(client, hello.random)
            .verify_slice(hello.cookie)
            .is_ok()
    }

    /// The HelloVerifyRequest answering `hello` from `client` (RFC 6347 §4.2.1): in a record
    /// with the ClientHello's sequence number, message_seq 0, version DTLS 1.0, and the cookie
    /// of `client` for this client random. 60 bytes.
    pub fn hello_verify_request(&self, client: SocketAddr, hello: &ClientHello<'_>) -> Vec<u8> {
        let cookie = self
            .cookie_mac(client, hello.random)
            .finalize()
            .into_bytes();
        let body_len = 3 + COOKIE_LEN;
        let mut out = Vec::with_capacity(HELLO_VERIFY_REQUEST_LEN);
        out.push(CONTENT_HANDSHAKE);
        out.extend_from_slice(&DTLS_1_0);
        out.extend_from_slice(&[0, 0]); // epoch
        out.extend_from_slice(hello.record_sequence);
        out.extend_from_slice(&((HANDSHAKE_HEADER + body_len) as u16).to_be_bytes());
        out.push(HELLO_VERIFY_REQUEST);
        let length = (body_len as u32).to_be_bytes();
        out.extend_from_slice(&length[1..]); // length
        out.extend_from_slice(&[0, 0]); // message_seq
        out.extend_from_slice(&[0, 0, 0]); // fragment_offset
        out.extend_from_slice(&length[1..]); // fragment_length
        out.extend_from_slice(&DTLS_1_0);
        out.push(COOKIE_LEN as u8);
        out.extend_from_slice(&cookie);
        out
    }

    /// A DTLS 1.2 server for `client`, whose first datagram was `hello` with a valid cookie:
    /// it checks that cookie as we do and, for a ClientHello answering our HelloVerifyRequest
    /// (message_seq 1), carries on from there (RFC 6347 §4.2.2).
    pub fn server(&self, client: SocketAddr, hello: &ClientHello<'_>, now: Instant) -> dimpl::Dtls {
        let certificate = dimpl::DtlsCertificate::clone(&self.certificate.load());
        let mut server = dimpl::Dtls::new_12(self.config.clone(), certificate, now);
        server.set_cookie_secret(self.cookie_secret(client));
        if hello.message_seq == 1 {
            server.resume_after_hello_verify();
        }
        server
    }

    /// The cookie MAC of `client` over a client random: `dimpl`'s cookie (HMAC-SHA-256 over
    /// the random) under the source's secret.
    fn cookie_mac(&self, client: SocketAddr, random: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.cookie_secret(client))
            .expect("HMAC takes a key of any length");
        mac.update(random);
        mac
    }

    /// HMAC-SHA-256 of the source address: a cookie proves its source receives what is sent
    /// to that address, and is worth nothing from any other.
    fn cookie_secret(&self, client: SocketAddr) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.cookie_key)
            .expect("HMAC takes a key of any length");
        match client.ip().to_canonical() {
            IpAddr::V4(ip) => mac.update(&ip.octets()),
            IpAddr::V6(ip) => mac.update(&ip.octets()),
        }
        mac.update(&client.port().to_be_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// True when `datagram` is a HelloVerifyRequest (RFC 6347 §4.2.1).
pub fn is_hello_verify_request(datagram: &[u8]) -> bool {
    datagram.first() == Some(&CONTENT_HANDSHAKE)
        && datagram.get(RECORD_HEADER) == Some(&HELLO_VERIFY_REQUEST)
}

/// What the DTLS listeners count, for metrics and tests. Counted per handshake or session,
/// never per packet.
#[derive(Debug, Default)]
pub struct DtlsCounters {
    hello_verify: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
    closed: AtomicU64,
    dropped: [AtomicU64; DtlsDrop::ALL.len()],
}

/// Why the DTLS listener or a DTLS session dropped a datagram (every drop is counted:
/// `turnpike_dtls_dropped_datagrams_total{cause}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtlsDrop {
    /// A session's inbox was full: its task is behind (as a full receive queue would drop).
    InboxFull,
    /// From a client without a session, and not a ClientHello.
    NoSession,
    /// A ClientHello with a valid cookie that the DTLS library refused.
    HandshakeRefused,
    /// A record of application data that is neither STUN nor ChannelData (RFC 7350 §4).
    NotStun,
    /// A send to the client failed (full socket buffer, or another error).
    SendFailed,
}

impl DtlsDrop {
    /// Every cause, in label order.
    pub const ALL: [DtlsDrop; 5] = [
        DtlsDrop::InboxFull,
        DtlsDrop::NoSession,
        DtlsDrop::HandshakeRefused,
        DtlsDrop::NotStun,
        DtlsDrop::SendFailed,
    ];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            DtlsDrop::InboxFull => "inbox_full",
            DtlsDrop::NoSession => "no_session",
            DtlsDrop::HandshakeRefused => "handshake_refused",
            DtlsDrop::NotStun => "not_stun",
            DtlsDrop::SendFailed => "send_failed",
        }
    }
}

/// A snapshot of [`DtlsCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DtlsSnapshot {
    /// ClientHellos answered with a HelloVerifyRequest (and no state).
    pub hello_verify: u64,
    /// Sessions opened (a ClientHello returned a valid cookie).
    pub accepted: u64,
    /// Valid ClientHellos refused: the session cap was reached.
    pub refused: u64,
    /// Sessions open now (handshaking or established).
    pub open: u64,
    /// Datagrams dropped, by cause (in [`DtlsDrop::ALL`] order).
    pub dropped: [u64; DtlsDrop::ALL.len()],
}

impl DtlsCounters {
    /// A HelloVerifyRequest was sent.
    pub fn hello_verify(&self) {
        self.hello_verify.fetch_add(1, Ordering::Relaxed);
    }

    /// A session was opened.
    pub fn accepted(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }

    /// A session was refused for the cap.
    pub fn refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// A datagram was dropped for `cause`.
    pub fn dropped(&self, cause: DtlsDrop) {
        self.dropped[cause as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// A session ended.
    pub fn closed(&self) {
        self.closed.fetch_add(1, Ordering::Relaxed);
    }

    /// Sessions open now.
    pub fn open(&self) -> u64 {
        let closed = self.closed.load(Ordering::Relaxed);
        self.accepted.load(Ordering::Relaxed).saturating_sub(closed)
    }

    /// The counts now.
    pub fn snapshot(&self) -> DtlsSnapshot {
        DtlsSnapshot {
            hello_verify: self.hello_verify.load(Ordering::Relaxed),
            accepted: self.accepted.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            open: self.open(),
            dropped: std::array::from_fn(|i| self.dropped[i].load(Ordering::Relaxed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ClientHello record (RFC 6347 §4.1, §4.2.2) with `cookie`, message_seq `seq`.
    fn hello(version: [u8; 2], cookie: &[u8], seq: u16) -> Vec<u8> {
        let mut body = version.to_vec();
        body.extend_from_slice(&[9; 32]); // random
        body.push(0); // session id
        body.push(cookie.len() as u8);
        body.extend_from_slice(cookie);
        body.extend_from_slice(&[0, 2, 0xc0, 0x2b, 1, 0]); // one suite, null compression
        let len = (body.len() as u32).to_be_bytes();
        let mut handshake = vec![CLIENT_HELLO];
        handshake.extend_from_slice(&len[1..]);
        handshake.extend_from_slice(&seq.to_be_bytes());
        handshake.extend_from_slice(&[0, 0, 0]);
        handshake.extend_from_slice(&len[1..]);
        handshake.extend_from_slice(&body);
        let mut record = vec![CONTENT_HANDSHAKE, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 5];
        record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
        record.extend_from_slice(&handshake);
        record
    }

    fn identity() -> DtlsIdentity {
        DtlsIdentity {
            files: TlsFiles {
                cert: "cert.pem".into(),
                key: "key.pem".into(),
            },
            certificate: ArcSwap::from_pointee(dimpl::DtlsCertificate {
                certificate: Vec::new(),
                private_key: Vec::new(),
            }),
            config: Arc::new(dimpl::Config::default()),
            cookie_key: [1; 32],
        }
    }

    #[test]
    fn a_client_hello_is_read_and_anything_else_is_not() {
        let bytes = hello([0xfe, 0xfd], b"", 0);
        let parsed = ClientHello::parse(&bytes).unwrap();
        assert_eq!(parsed.random, &[9; 32]);
        assert_eq!((parsed.message_seq, parsed.cookie), (0, &b""[..]));
        assert_eq!(parsed.record_sequence, &[0, 0, 0, 0, 0, 5]);
        assert!(!parsed.only_dtls_1_0());
        assert!(ClientHello::parse(&hello([0xfe, 0xff], b"", 0))
            .unwrap()
            .only_dtls_1_0());
        // RFC 6347 §4.2.2: a ClientHello travels in epoch 0.
        let mut epoch_1 = bytes.clone();
        epoch_1[4] = 1;
        assert_eq!(ClientHello::parse(&epoch_1), None);
        // A fragment (fragment_length short of the length) is not read.
        let mut fragment = bytes.clone();
        fragment[24] -= 1;
        assert_eq!(ClientHello::parse(&fragment), None);
        for cut in 0..bytes.len() {
            assert_eq!(ClientHello::parse(&bytes[..cut]), None, "cut at {cut}");
        }
    }

    // RFC 6347 §4.2.1: the HelloVerifyRequest echoes the record sequence number, carries
    // version DTLS 1.0 and a cookie that the same client returns from the same address.
    #[test]
    fn the_cookie_is_valid_from_its_own_address_only() {
        let identity = identity();
        let client: SocketAddr = "192.0.2.1:5000".parse().unwrap();
        let first = hello([0xfe, 0xfd], b"", 0);
        let verify = identity.hello_verify_request(client, &ClientHello::parse(&first).unwrap());
        assert_eq!(verify.len(), HELLO_VERIFY_REQUEST_LEN);
        assert_eq!(verify.len(), 60);
        assert!(is_hello_verify_request(&verify));
        assert_eq!(&verify[5..11], &[0, 0, 0, 0, 0, 5]);
        assert_eq!(&verify[25..27], &DTLS_1_0);
        let cookie = &verify[28..];
        let second = hello([0xfe, 0xfd], cookie, 1);
        let second = ClientHello::parse(&second).unwrap();
        assert!(identity.cookie_is_valid(client, &second));
        let elsewhere: SocketAddr = "192.0.2.1:5001".parse().unwrap();
        assert!(!identity.cookie_is_valid(elsewhere, &second));
        let first = ClientHello::parse(&first).unwrap();
        assert!(!identity.cookie_is_valid(client, &first));
    }

    #[test]
    fn open_sessions_are_accepted_less_closed() {
        let counters = DtlsCounters::default();
        counters.accepted();
        counters.accepted();
        counters.closed();
        counters.hello_verify();
        let snapshot = counters.snapshot();
        assert_eq!(
            (snapshot.open, snapshot.accepted, snapshot.hello_verify),
            (1, 2, 1)
        );
    }
}
