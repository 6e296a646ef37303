//! `turnpike stun stuns:HOST[:PORT]`: the Binding transaction of [`crate::client::stun_command`] inside
//! a DTLS 1.2 session over UDP (RFC 7350 §4: STUN messages as application data, with UDP's
//! retransmission timers).
//!
//! The DTLS protocol is `dimpl`'s; the server's certificate is checked by rustls' WebPKI
//! verifier (`dimpl` only checks that the handshake was signed by the certificate it got):
//! the public web CAs, or with `--ca-file` only that file's certificates, for the URI's host.
//! `dimpl` hands over the leaf alone, so a server whose certificate needs an intermediate is
//! trusted only when `--ca-file` holds that intermediate. A certificate found as such in
//! `--ca-file` is trusted as it is (pinned), whatever its extensions: `openssl req -x509`
//! makes self-signed certificates marked as CAs, which WebPKI refuses as a server's.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, Context};
use ice::{
    BindingResponse, BindingTransaction, RequestOptions, RetransmitTiming, TransactionError,
};
use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use stun::TransactionId;

use crate::client::client_args::is_transient;

/// Checks the server's certificate for `host`.
pub struct Verifier {
    verifier: Arc<WebPkiServerVerifier>,
    name: ServerName<'static>,
    /// The certificates of `--ca-file`, trusted as they are.
    pinned: Vec<CertificateDer<'static>>,
}

impl Verifier {
    /// Trusts the public web CAs, or with `ca_file` only its certificates (which may include
    /// intermediates), for `host`.
    pub fn new(host: &str, ca_file: Option<&Path>) -> anyhow::Result<Verifier> {
        let roots = crate::tls::client_roots(ca_file)?;
        let pinned = match ca_file {
            Some(path) => crate::tls::read_certs(path, "--ca-file")?,
            None => Vec::new(),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
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

    fn check(&self, leaf: &[u8]) -> anyhow::Result<()> {
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
            .map_err(|e| anyhow!("the server's certificate is not trusted: {e}"))
    }
}

/// A DTLS 1.2 client with a throw-away certificate (`dimpl` needs one; the server asks for
/// none).
fn client(now: Instant) -> anyhow::Result<dimpl::Dtls> {
    let own = rcgen::generate_simple_self_signed(vec!["turnpike-client".to_string()])
        .context("client certificate")?;
    let certificate = dimpl::DtlsCertificate {
        certificate: own.cert.der().to_vec(),
        private_key: own.key_pair.serialize_der(),
    };
    let mut dtls = dimpl::Dtls::new_12(Arc::new(dimpl::Config::default()), certificate, now);
    dtls.set_active(true);
    dtls.handle_timeout(now).map_err(|e| anyhow!("DTLS: {e}"))?;
    Ok(dtls)
}

/// Runs the handshake and then one Binding transaction with `server`, until `timing` gives
/// up (the handshake counts against it too). The outer error is a socket, handshake or
/// certificate failure; the inner result is the transaction's outcome.
pub async fn transact(
    server: SocketAddr,
    verifier: &Verifier,
    timing: RetransmitTiming,
) -> anyhow::Result<Result<BindingResponse, TransactionError>> {
    let socket = crate::client::stun_command::socket_for(server).await?;
    let started = Instant::now();
    let give_up = timing.give_up_after.map(|after| started + after);
    let mut dtls = client(started)?;
    let mut tx: Option<BindingTransaction> = None;
    let mut dtls_timer: Option<Instant>;
    let mut buf = vec![0u8; 65_535];
    loop {
        // Everything `dimpl` has to say, then what the transaction has to send.
        let mut out = vec![0u8; 2_048];
        loop {
            match dtls.poll_output(&mut out) {
                dimpl::Output::Packet(packet) => {
                    socket
                        .send_to(packet, server)
                        .await
                        .with_context(|| format!("cannot send to {server}"))?;
                }
                dimpl::Output::BufferTooSmall { needed } => out.resize(needed, 0),
                dimpl::Output::PeerCert(leaf) => verifier.check(leaf)?,
                dimpl::Output::Connected if tx.is_none() => {
                    tracing::debug!(%server, "DTLS session up");
                    // RFC 8489 §5: the transaction id is uniformly and cryptographically random.
                    let id = TransactionId(rand::random());
                    let left = RetransmitTiming {
                        give_up_after: give_up
                            .map(|at| at.saturating_duration_since(Instant::now())),
                        ..timing
                    };
                    tx = Some(BindingTransaction::new(
                        Instant::now(),
                        server,
                        id,
                        &RequestOptions::default(),
                        left,
                    )?);
                }
                dimpl::Output::ApplicationData(data) => {
                    if let Some(tx) = tx.as_mut() {
                        tx.handle_input(Instant::now(), server, data);
                    }
                }
                dimpl::Output::CloseNotify => bail!("{server} closed the DTLS session"),
                dimpl::Output::Timeout(at) => {
                    dtls_timer = Some(at);
                    break;
                }
                _ => {}
            }
        }
        if let Some(tx) = tx.as_mut() {
            if let Some(result) = tx.poll_result() {
                return Ok(result);
            }
            let mut sent = false;
            while let Some(transmit) = tx.poll_transmit(Instant::now()) {
                dtls.send_application_data(transmit.payload)
                    .map_err(|e| anyhow!("DTLS: {e}"))?;
                sent = true;
            }
            if sent {
                continue;
            }
        }
        let handshake_over = give_up.filter(|_| tx.is_none());
        let wake = [
            dtls_timer,
            tx.as_ref().and_then(|t| t.poll_timeout()),
            handshake_over,
        ]
        .into_iter()
        .flatten()
        .min();
        let sleep = async {
            match wake {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = sleep => {
                let now = Instant::now();
                if tx.is_none() && give_up.is_some_and(|at| now >= at) {
                    bail!("no DTLS handshake with {server} within {:.1} s", (now - started).as_secs_f64());
                }
                dtls.handle_timeout(now).map_err(|e| anyhow!("DTLS with {server}: {e}"))?;
                if let Some(tx) = tx.as_mut() {
                    tx.handle_timeout(now);
                }
            }
            received = socket.recv_from(&mut buf) => match received {
                Ok((len, from)) if from == server => {
                    dtls.handle_packet(&buf[..len]).map_err(|e| anyhow!("DTLS with {server}: {e}"))?;
                }
                Ok((_, from)) => tracing::trace!(%from, "datagram from elsewhere ignored"),
                Err(error) if is_transient(&error) => tracing::debug!(%error, "ignoring socket error"),
                Err(error) => return Err(error).context("cannot receive from the UDP socket"),
            },
        }
    }
}
