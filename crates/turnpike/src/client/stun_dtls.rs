//! `turnpike stun stuns:HOST[:PORT]`: the Binding transaction of [`crate::client::stun_command`] inside
//! a DTLS 1.2 session over UDP ([`crate::client::dtls_session`]; RFC 7350 §4: STUN messages as
//! application data, with UDP's retransmission timers).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use ice::{
    BindingResponse, BindingTransaction, RequestOptions, RetransmitTiming, TransactionError,
};
use stun::TransactionId;

use crate::client::dtls_session::DtlsSession;
pub use crate::client::dtls_session::Verifier;
use crate::client::transaction_driver::Wire;

/// Runs the handshake and then one Binding transaction with `server`, until `timing` gives
/// up (the handshake counts against it too). The outer error is a socket, handshake or
/// certificate failure; the inner result is the transaction's outcome.
pub async fn transact(
    server: SocketAddr,
    verifier: &Verifier,
    timing: RetransmitTiming,
) -> anyhow::Result<Result<BindingResponse, TransactionError>> {
    let started = Instant::now();
    // Without a limit, the handshake gets as long as a transaction would (RFC 8489 §6.2.1:
    // 39.5 s with the default timing).
    let give_up = started + timing.give_up_after.unwrap_or(Duration::from_secs(40));
    let session = DtlsSession::connect(server, verifier, false, give_up)
        .await
        .with_context(|| format!("DTLS with {server}"))?;
    // RFC 8489 §5: the transaction id is uniformly and cryptographically random.
    let id = TransactionId(rand::random());
    let left = RetransmitTiming {
        give_up_after: timing
            .give_up_after
            .map(|_| give_up.saturating_duration_since(Instant::now())),
        ..timing
    };
    let tx = BindingTransaction::new(Instant::now(), server, id, &RequestOptions::default(), left)?;
    crate::client::transaction_driver::run(tx, &mut SessionWire(session)).await
}

/// A DTLS session as the transaction's [`Wire`]: every record is from its server.
struct SessionWire(DtlsSession);

impl Wire for SessionWire {
    async fn send(&mut self, _: SocketAddr, payload: &[u8]) -> anyhow::Result<()> {
        let server = self.0.server();
        (self.0.send(payload)).map_err(|e| anyhow!("DTLS with {server}: {e}"))
    }

    async fn recv(&mut self) -> anyhow::Result<Option<(SocketAddr, Vec<u8>)>> {
        let server = self.0.server();
        let data = (self.0.recv().await).map_err(|e| anyhow!("DTLS with {server}: {e}"))?;
        Ok(Some((server, data)))
    }
}
