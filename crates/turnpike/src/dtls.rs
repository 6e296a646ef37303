//! DTLS (RFC 7350: STUN and TURN over DTLS) for the server: the certificate the handshakes
//! present, the per-source HelloVerifyRequest cookie secret, and the few record-header reads
//! the listener needs to keep no state for a source that has not returned a cookie.
//!
//! The DTLS protocol itself is `dimpl`'s (sans-IO DTLS 1.2; no crypto of ours). Admission
//! works like this (RFC 6347 §4.2.1):
//! - a ClientHello from a source without a session is given to a throw-away `dimpl` server
//!   whose cookie secret is an HMAC of the source address under a per-process key;
//! - if that server answers with a HelloVerifyRequest (no cookie, or a cookie made for another
//!   address), the answer is sent and the server dropped: the source got a datagram smaller
//!   than its own and the listener kept nothing;
//! - only a ClientHello that returns the cookie made for its source address proves the
//!   source receives our datagrams; its server becomes a session.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::TlsFiles;
use crate::tls::{read_certs, read_key};

/// The largest datagram a session sends: DTLS records of the handshake are cut to fit, and
/// relayed data larger than this (less the record overhead) is dropped by `dimpl`.
const MTU: usize = 1_400;

/// DTLS record content type of handshake records (RFC 6347 §4.1).
const CONTENT_HANDSHAKE: u8 = 22;
/// Length of the DTLS record header (RFC 6347 §4.1).
const RECORD_HEADER: usize = 13;
/// Handshake message types (RFC 6347 §4.2.2, §4.3.2).
const CLIENT_HELLO: u8 = 1;
const HELLO_VERIFY_REQUEST: u8 = 3;

/// The server's DTLS identity: certificate, key and cookie key.
pub struct DtlsIdentity {
    certificate: dimpl::DtlsCertificate,
    /// Keys the per-source cookie secrets; drawn at startup, never leaves the process.
    cookie_key: [u8; 32],
    handshake_timeout: Duration,
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
        let leaf = read_certs(&files.cert, "tls-cert")?
            .into_iter()
            .next()
            .context("tls-cert: no certificate")?;
        let key = read_key(&files.key, "tls-key")?;
        let key = key.secret_der().to_vec();
        let config = dimpl::Config::default();
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
        Ok(DtlsIdentity {
            certificate: dimpl::DtlsCertificate {
                certificate: leaf.to_vec(),
                private_key: key,
            },
            cookie_key: rand::random(),
            handshake_timeout,
        })
    }

    /// A DTLS 1.2 server for a handshake with `client`, whose HelloVerifyRequest cookies are
    /// valid for `client` alone.
    pub fn server(&self, client: SocketAddr, now: Instant) -> Result<dimpl::Dtls, dimpl::Error> {
        let config = dimpl::Config::builder()
            .mtu(MTU)
            // TURN clients authenticate with STUN credentials, not certificates.
            .require_client_certificate(false)
            .use_server_cookie(true)
            .cookie_secret(self.cookie_secret(client))
            .handshake_timeout(self.handshake_timeout)
            .build()?;
        Ok(dimpl::Dtls::new_12(
            Arc::new(config),
            self.certificate.clone(),
            now,
        ))
    }

    /// [`DtlsIdentity::server`] for the first datagram of a source, `client_hello`: a
    /// ClientHello that answers a HelloVerifyRequest (sent by an earlier server for this
    /// source, now gone) continues that exchange.
    pub fn server_for(
        &self,
        client: SocketAddr,
        client_hello: &[u8],
        now: Instant,
    ) -> Result<dimpl::Dtls, dimpl::Error> {
        let mut server = self.server(client, now)?;
        if is_cookie_retry(client_hello) {
            server.resume_after_hello_verify();
        }
        Ok(server)
    }

    /// HMAC-SHA-256 of the source address: the cookie a source gets proves it receives what
    /// is sent to that address, and is worth nothing from any other.
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

/// True when `datagram` starts with a plaintext (epoch 0) handshake record carrying a
/// ClientHello (RFC 6347 §4.1, §4.2.2): the only datagram that may open a session.
pub fn is_client_hello(datagram: &[u8]) -> bool {
    handshake_type(datagram) == Some(CLIENT_HELLO) && datagram.get(3..5) == Some(&[0, 0])
}

/// True when the ClientHello starting `datagram` has message_seq 1: the client's second,
/// answering a HelloVerifyRequest (RFC 6347 §4.2.2).
pub fn is_cookie_retry(datagram: &[u8]) -> bool {
    // Record header, then msg_type (1), length (3), message_seq (2).
    datagram.get(RECORD_HEADER + 4..RECORD_HEADER + 6) == Some(&[0, 1])
}

/// DTLS 1.0's version bytes (RFC 4347 §4.1: {254, 255}).
const DTLS_1_0: [u8; 2] = [0xfe, 0xff];

/// True when the ClientHello starting `datagram` offers at most DTLS 1.0 (its client_version,
/// RFC 6347 §4.2.1), which `dimpl` does not speak.
pub fn offers_only_dtls_1_0(datagram: &[u8]) -> bool {
    // Record header, handshake header (12), then client_version.
    datagram.get(RECORD_HEADER + 12..RECORD_HEADER + 14) == Some(&DTLS_1_0)
}

/// A plaintext fatal `protocol_version` alert (RFC 5246 §7.2, RFC 6347 §4.1) in a DTLS 1.0
/// record: the answer to a DTLS 1.0 ClientHello, so that a client that can also speak DTLS
/// 1.2 tries again at once (coturn's `turnutils_uclient` picks a version at random and
/// retries on an alert) rather than retransmitting into silence. 15 bytes, fewer than any
/// ClientHello: no amplification.
pub const PROTOCOL_VERSION_ALERT: [u8; 15] = [
    21, 0xfe, 0xff, // alert, DTLS 1.0
    0, 0, 0, 0, 0, 0, 0, 0, // epoch 0, sequence number 0
    0, 2, // length
    2, 70, // fatal, protocol_version
];

/// True when `datagram` is a HelloVerifyRequest (RFC 6347 §4.2.1): the server asked for a
/// cookie, so the handshake gave no proof of the source yet.
pub fn is_hello_verify_request(datagram: &[u8]) -> bool {
    handshake_type(datagram) == Some(HELLO_VERIFY_REQUEST)
}

/// The handshake message type of the first record, when it is a handshake record.
fn handshake_type(datagram: &[u8]) -> Option<u8> {
    (*datagram.first()? == CONTENT_HANDSHAKE)
        .then(|| datagram.get(RECORD_HEADER).copied())
        .flatten()
}

/// What the DTLS listeners count, for metrics and tests. Counted per handshake or session,
/// never per packet.
#[derive(Debug, Default)]
pub struct DtlsCounters {
    hello_verify: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
    closed: AtomicU64,
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DTLS 1.2 record header (RFC 6347 §4.1) and the handshake type byte.
    fn record(content: u8, epoch: u16, handshake: u8) -> Vec<u8> {
        let mut r = vec![content, 0xfe, 0xfd];
        r.extend_from_slice(&epoch.to_be_bytes());
        r.extend_from_slice(&[0; 6]); // sequence number
        r.extend_from_slice(&[0, 12]); // length
        r.push(handshake);
        r
    }

    #[test]
    fn client_hello_is_a_plaintext_handshake_record_of_type_1() {
        // RFC 6347 §4.2.2: a ClientHello travels in epoch 0.
        assert!(is_client_hello(&record(22, 0, 1)));
        assert!(!is_client_hello(&record(22, 1, 1)));
        assert!(!is_client_hello(&record(23, 0, 1)));
        assert!(!is_client_hello(&record(22, 0, 2)));
        assert!(!is_client_hello(&[22, 0xfe]));
        assert!(!is_client_hello(&[]));
    }

    #[test]
    fn cookie_retry_is_message_seq_1() {
        // RFC 6347 §4.2.2: the ClientHello after a HelloVerifyRequest has message_seq 1.
        let mut hello = record(22, 0, 1);
        hello.extend_from_slice(&[0, 0, 100, 0, 1]);
        assert!(is_cookie_retry(&hello));
        hello[18] = 0;
        assert!(!is_cookie_retry(&hello));
    }

    #[test]
    fn dtls_1_0_is_client_version_fe_ff() {
        let mut hello = record(22, 0, 1);
        hello.extend_from_slice(&[0; 11]); // rest of the handshake header
        hello.extend_from_slice(&[0xfe, 0xff]);
        assert!(offers_only_dtls_1_0(&hello));
        let last = hello.len() - 1;
        hello[last] = 0xfd; // DTLS 1.2
        assert!(!offers_only_dtls_1_0(&hello));
    }

    #[test]
    fn hello_verify_request_is_handshake_type_3() {
        assert!(is_hello_verify_request(&record(22, 0, 3)));
        assert!(!is_hello_verify_request(&record(22, 0, 2)));
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
