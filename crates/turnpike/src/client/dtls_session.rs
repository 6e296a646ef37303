//! The DTLS 1.2 client of the client tools (`turnpike stun stuns:`, `turnpike check
//! turns:…?transport=udp`): a session over a UDP socket connected to the server, carrying
//! whole STUN messages and ChannelData as application data (RFC 7350: STUN over DTLS keeps
//! UDP's framing, one message per record, and UDP's retransmission timers).
//!
//! The DTLS protocol is `dimpl`'s; the server's certificate is checked by rustls' WebPKI
//! verifier (`dimpl` only checks that the handshake was signed by the certificate it got):
//! the public web CAs, or with `--ca-file` only that file's certificates, for the URI's host.
//! `dimpl` hands over the leaf alone, so a server whose certificate needs an intermediate is
//! trusted only when `--ca-file` holds that intermediate. A certificate found as such in
//! `--ca-file` is trusted as it is (pinned), whatever its extensions: `openssl req -x509`
//! makes self-signed certificates marked as CAs, which WebPKI refuses as a server's.

use std::collections::VecDeque;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::net::UdpSocket;

use crate::client::client_args::is_transient;

/// Checks the server's certificate for one host.
#[derive(Debug)]
pub struct Verifier {
    verifier: Arc<WebPkiServerVerifier>,
    name: ServerName<'static>,
    /// The certificates of `--ca-file`, trusted as they are.
    pinned: Arc<Vec<CertificateDer<'static>>>,
}

impl Verifier {
    /// Trusts the public web CAs, or with `ca_file` only its certificates (which may include
    /// intermediates), for `host`.
    pub fn new(host: &str, ca_file: Option<&Path>) -> anyhow::Result<Verifier> {
        let roots = Arc::new(crate::tls::client_roots(ca_file)?);
        Verifier::with_trust(host, roots, Arc::new(pinned_certificates(ca_file)?))
    }

    /// Trusts `roots`, and `pinned` as they are, for `host` (a name or an IP literal).
    pub fn with_trust(
        host: &str,
        roots: Arc<rustls::RootCertStore>,
        pinned: Arc<Vec<CertificateDer<'static>>>,
    ) -> anyhow::Result<Verifier> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .context("certificate verifier")?;
        let name = ServerName::try_from(host.to_owned())
            .with_context(|| format!("{host} is not a name a certificate can be checked for"))?;
        Ok(Verifier {
            verifier,
            name,
            pinned,
        })
    }

    /// Whether `leaf` (DER) is trusted for the host.
    pub fn check(&self, leaf: &[u8]) -> Result<(), rustls::Error> {
        // `dimpl` has checked that the handshake was signed with this certificate's key.
        if self.pinned.iter().any(|pinned| pinned.as_ref() == leaf) {
            return Ok(());
        }
        self.verifier
            .verify_server_cert(
                &CertificateDer::from(leaf.to_vec()),
                &[],
                &self.name,
                &[],
                UnixTime::now(),
            )
            .map(|_| ())
    }
}

/// The certificates of `ca_file`, to be trusted as they are (none without a file).
pub fn pinned_certificates(ca_file: Option<&Path>) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    match ca_file {
        Some(path) => crate::tls::read_certs(path, "--ca-file"),
        None => Ok(Vec::new()),
    }
}

/// Why a DTLS session failed or ended.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DtlsError {
    /// The UDP socket failed.
    #[error("UDP socket: {0}")]
    Io(#[from] io::Error),
    /// No throw-away client certificate could be made.
    #[error("client certificate: {0}")]
    ClientCertificate(String),
    /// The DTLS protocol failed (an alert, a bad record, a handshake `dimpl` gave up on).
    #[error("DTLS: {0}")]
    Protocol(String),
    /// The server's certificate is not trusted.
    #[error("the server's certificate is not trusted: {error}")]
    Untrusted {
        /// Why rustls refused it.
        error: rustls::Error,
        /// The certificate (DER), for a report of its names and expiry.
        leaf: Vec<u8>,
    },
    /// The handshake did not finish in time.
    #[error("no DTLS handshake within {seconds:.1} s")]
    NoHandshake {
        /// How long it was tried.
        seconds: f64,
        /// ICMP errors seen meanwhile (port unreachable: nothing listens there).
        refused: u32,
    },
    /// The server closed the session (close_notify).
    #[error("the server closed the DTLS session")]
    Closed,
}

impl DtlsError {
    fn protocol(error: dimpl::Error) -> DtlsError {
        DtlsError::Protocol(error.to_string())
    }
}

/// A DTLS 1.2 client session with one server, over a connected UDP socket.
pub struct DtlsSession {
    socket: UdpSocket,
    server: SocketAddr,
    dtls: dimpl::Dtls,
    /// When `dimpl` wants its timer (handshake retransmissions).
    timer: Option<Instant>,
    connected: bool,
    closed: bool,
    /// Application data received and not yet handed out, one message per record.
    received: VecDeque<Vec<u8>>,
    /// The server's certificate (DER), once the handshake showed it.
    leaf: Option<Vec<u8>>,
    /// Why the certificate did not verify, when the session went on anyway (`insecure`).
    untrusted: Option<rustls::Error>,
    /// ICMP errors seen (port unreachable: nothing listens there).
    refused: u32,
}

impl std::fmt::Debug for DtlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DtlsSession({})", self.server)
    }
}

impl Drop for DtlsSession {
    /// Tells the server the session is over (a close_notify alert), so that it frees the
    /// session at once rather than at its idle timeout. Best effort: one datagram, which
    /// DTLS does not retransmit.
    fn drop(&mut self) {
        if self.connected && !self.closed && self.dtls.close().is_ok() {
            let _ = self.drain(None);
        }
    }
}

/// A DTLS 1.2 client with a throw-away certificate (`dimpl` needs one; the server asks for
/// none).
fn client(now: Instant) -> Result<dimpl::Dtls, DtlsError> {
    let own = rcgen::generate_simple_self_signed(vec!["turnpike-client".to_string()])
        .map_err(|e| DtlsError::ClientCertificate(e.to_string()))?;
    let certificate = dimpl::DtlsCertificate {
        certificate: own.cert.der().to_vec(),
        private_key: own.key_pair.serialize_der(),
    };
    let mut dtls = dimpl::Dtls::new_12(Arc::new(dimpl::Config::default()), certificate, now);
    dtls.set_active(true);
    dtls.handle_timeout(now).map_err(DtlsError::protocol)?;
    Ok(dtls)
}

/// A UDP socket on the wildcard address of `server`'s family, connected to it: Linux reports
/// ICMP errors (port unreachable) only on connected sockets, and datagrams from anyone else
/// are not for this session.
async fn connected_socket(server: SocketAddr) -> io::Result<UdpSocket> {
    let bind: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(bind).await?;
    socket.connect(server).await?;
    Ok(socket)
}

impl DtlsSession {
    /// Runs the handshake with `server` until `deadline`. The certificate is checked by
    /// `verifier`; with `insecure`, a refused one is remembered ([`DtlsSession::untrusted`])
    /// and the session goes on.
    pub async fn connect(
        server: SocketAddr,
        verifier: &Verifier,
        insecure: bool,
        deadline: Instant,
    ) -> Result<DtlsSession, DtlsError> {
        let started = Instant::now();
        let mut session = DtlsSession {
            socket: connected_socket(server).await?,
            server,
            dtls: client(started)?,
            timer: None,
            connected: false,
            closed: false,
            received: VecDeque::new(),
            leaf: None,
            untrusted: None,
            refused: 0,
        };
        session.drain(Some((verifier, insecure)))?;
        while !session.connected {
            if session.closed {
                return Err(DtlsError::Closed);
            }
            if !session
                .step(Some(deadline), Some((verifier, insecure)))
                .await?
            {
                return Err(DtlsError::NoHandshake {
                    seconds: started.elapsed().as_secs_f64(),
                    refused: session.refused,
                });
            }
        }
        if session.leaf.is_none() {
            // Nothing was checked: a certificate is the only trust this client knows.
            return Err(DtlsError::Protocol(
                "the server showed no certificate".into(),
            ));
        }
        tracing::debug!(%server, "DTLS session up");
        Ok(session)
    }

    /// The server.
    pub fn server(&self) -> SocketAddr {
        self.server
    }

    /// The server's certificate (DER).
    pub fn certificate(&self) -> Option<&[u8]> {
        self.leaf.as_deref()
    }

    /// Why the certificate was refused, when the session went on anyway.
    pub fn untrusted(&self) -> Option<&rustls::Error> {
        self.untrusted.as_ref()
    }

    /// ICMP "port unreachable" errors seen.
    pub fn refused(&self) -> u32 {
        self.refused
    }

    /// Sends one message as one record of application data (RFC 7350: a STUN message or a
    /// ChannelData message per record, as per datagram over UDP).
    pub fn send(&mut self, payload: &[u8]) -> Result<(), DtlsError> {
        if self.closed {
            return Err(DtlsError::Closed);
        }
        self.dtls
            .send_application_data(payload)
            .map_err(DtlsError::protocol)?;
        self.drain(None)
    }

    /// The next record of application data. Cancel-safe: the only awaits are the timer and
    /// the socket's receive, and what they bring is handled before the next await.
    pub async fn recv(&mut self) -> Result<Vec<u8>, DtlsError> {
        loop {
            if let Some(data) = self.received.pop_front() {
                return Ok(data);
            }
            if self.closed {
                return Err(DtlsError::Closed);
            }
            self.step(None, None).await?;
        }
    }

    /// Waits for the timer or a datagram and hands it to `dimpl`; false when `deadline`
    /// came first.
    async fn step(
        &mut self,
        deadline: Option<Instant>,
        verifier: Option<(&Verifier, bool)>,
    ) -> Result<bool, DtlsError> {
        let wake = [self.timer, deadline].into_iter().flatten().min();
        let sleep = async {
            match wake {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        let mut buf = vec![0u8; 65_535];
        tokio::select! {
            () = sleep => {
                let now = Instant::now();
                if deadline.is_some_and(|at| now >= at) {
                    return Ok(false);
                }
                self.dtls.handle_timeout(now).map_err(DtlsError::protocol)?;
            }
            received = self.socket.recv(&mut buf) => match received {
                Ok(len) => self.dtls.handle_packet(&buf[..len]).map_err(DtlsError::protocol)?,
                // Linux reports an ICMP port unreachable on the next receive; DTLS
                // retransmits its flights, so the handshake goes on until its deadline.
                Err(error) if is_transient(&error) => self.refused += 1,
                Err(error) => return Err(error.into()),
            },
        }
        self.drain(verifier)?;
        Ok(true)
    }

    /// Everything `dimpl` has to say: datagrams are sent at once (without waiting, so that
    /// [`DtlsSession::recv`] stays cancel-safe), application data queued, the certificate
    /// checked.
    fn drain(&mut self, verifier: Option<(&Verifier, bool)>) -> Result<(), DtlsError> {
        let mut out = vec![0u8; 2_048];
        loop {
            match self.dtls.poll_output(&mut out) {
                dimpl::Output::Packet(packet) => match self.socket.try_send(packet) {
                    Ok(_) => {}
                    // A full socket buffer loses the datagram as the network could: DTLS
                    // retransmits its handshake, STUN its requests.
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                        tracing::debug!("UDP send buffer full: datagram dropped");
                    }
                    Err(error) if is_transient(&error) => self.refused += 1,
                    Err(error) => return Err(error.into()),
                },
                dimpl::Output::BufferTooSmall { needed } => out.resize(needed, 0),
                dimpl::Output::PeerCert(leaf) => {
                    self.leaf = Some(leaf.to_vec());
                    if let Some((verifier, insecure)) = verifier {
                        match verifier.check(leaf) {
                            Ok(()) => {}
                            Err(error) if insecure => self.untrusted = Some(error),
                            Err(error) => {
                                return Err(DtlsError::Untrusted {
                                    error,
                                    leaf: leaf.to_vec(),
                                })
                            }
                        }
                    }
                }
                dimpl::Output::Connected => self.connected = true,
                dimpl::Output::ApplicationData(data) => self.received.push_back(data.to_vec()),
                dimpl::Output::CloseNotify => self.closed = true,
                dimpl::Output::Timeout(at) => {
                    self.timer = Some(at);
                    return Ok(());
                }
                _ => {}
            }
        }
    }
}
