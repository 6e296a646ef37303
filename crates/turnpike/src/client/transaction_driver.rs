//! The one driver of a STUN Binding transaction ([`ice::BindingTransaction`]) for the client
//! commands, through the run-loop contract every sans-IO core follows ([`sansio::Core`]): feed
//! what arrives and the timeouts, send its transmits, stop at its event (the result). `stun`
//! runs it over a UDP socket or a DTLS session, `check` over its link (UDP, TCP, TLS, DTLS):
//! each only says how to send and receive ([`Wire`]).

use std::net::SocketAddr;
use std::time::Instant;

use ice::{BindingResponse, BindingTransaction, TransactionError};
use sansio::{Core, Datagram};

/// How a driver reaches the server: send one message, receive the next.
pub(crate) trait Wire {
    /// Sends `payload` to `to` (on a connected socket or a session, to its server).
    async fn send(&mut self, to: SocketAddr, payload: &[u8]) -> anyhow::Result<()>;

    /// The next message and its source; `None` for a transient error worth waiting past (an
    /// ICMP error reported on a UDP socket: a retransmission may still get through). Must be
    /// cancel-safe: a timer may win the race.
    async fn recv(&mut self) -> anyhow::Result<Option<(SocketAddr, Vec<u8>)>>;
}

/// Runs `tx` over `wire` until it ends. The outer error is the wire's; the inner result is the
/// transaction's outcome.
pub(crate) async fn run(
    mut tx: BindingTransaction,
    wire: &mut impl Wire,
) -> anyhow::Result<Result<BindingResponse, TransactionError>> {
    loop {
        if let Some(result) = Core::poll_event(&mut tx) {
            return Ok(result);
        }
        while let Some(transmit) = Core::poll_transmit(&mut tx, Instant::now()) {
            let (to, payload) = (transmit.destination, transmit.payload.to_vec());
            wire.send(to, &payload).await?;
        }
        let Some(wake) = Core::poll_timeout(&tx) else {
            continue;
        };
        tokio::select! {
            () = tokio::time::sleep_until(wake.into()) => Core::handle_timeout(&mut tx, Instant::now()),
            received = wire.recv() => {
                if let Some((from, bytes)) = received? {
                    let ours = Core::handle_input(&mut tx, Instant::now(), Datagram::new(from, &bytes));
                    tracing::trace!(%from, len = bytes.len(), ours, "datagram received");
                }
            }
        }
    }
}
