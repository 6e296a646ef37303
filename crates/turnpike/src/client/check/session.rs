//! The I/O loop of `turnpike check`: sans-IO clients ([`ice::TurnClient`],
//! [`ice::BindingTransaction`]) driven over [`Link`]s, the run loop of the `ice` crate docs
//! with several allocations served by one loop.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::future::select_all;
use ice::{
    BindingResponse, BindingTransaction, RequestOptions, RetransmitTiming, TransactionError,
    TurnClient, TurnClientConfig, TurnCredentials, TurnEvent, TurnInput,
};
use stun::TransactionId;

use super::link::{Link, Trust};
use crate::client::transaction_driver::Wire;

/// The request timing of a check: RFC 8489 §6.2.1 retransmissions over UDP, a single send
/// over a stream (§6.2.2: reliable transports do not retransmit), both given up after
/// `timeout`.
pub fn timing(stream: bool, timeout: Duration) -> RetransmitTiming {
    if stream {
        RetransmitTiming {
            initial_rto: timeout,
            max_sends: 1,
            last_wait_factor: 1,
            max_interval: None,
            give_up_after: Some(timeout),
        }
    } else {
        RetransmitTiming {
            give_up_after: Some(timeout),
            ..RetransmitTiming::RFC_8489
        }
    }
}

/// Data that reached an allocation from a peer.
#[derive(Debug, Clone)]
pub struct Arrival {
    /// When.
    pub at: Instant,
    /// The payload.
    pub payload: Vec<u8>,
    /// True when it came as ChannelData, false for a Data indication.
    pub channel_data: bool,
}

/// One allocation: its leg to the server and its TURN client.
#[derive(Debug)]
pub struct Session {
    /// The leg to the server.
    pub link: Link,
    /// The TURN client.
    pub turn: TurnClient,
    /// Events since the caller last cleared them.
    pub events: Vec<TurnEvent>,
    /// Peer data received since the caller last cleared it.
    pub arrivals: Vec<Arrival>,
    /// Send every datagram received from a peer back to it (the far end of the data test).
    pub echo: bool,
    /// Echoes waiting to be sent.
    outbox: VecDeque<Vec<u8>>,
    /// How long a new connection may take (to an alternate server).
    timeout: Duration,
    /// Over TLS or DTLS: how to check an alternate server's certificate.
    trust: Option<Trust>,
}

impl Session {
    /// A TURN client over `link`, with its Allocate under way; a TLS or DTLS link follows a
    /// 300 only with `trust`.
    pub fn new(
        link: Link,
        server: SocketAddr,
        credentials: TurnCredentials,
        timeout: Duration,
        trust: Option<Trust>,
    ) -> Session {
        let stream = link.is_stream();
        let config = TurnClientConfig {
            timing: timing(stream, timeout),
            stream,
            diagnostics: true,
            // A 300 (Try Alternate) moves the link to the alternate (see `drive`).
            follow_alternate: !link.is_secure() || trust.is_some(),
            ..TurnClientConfig::default()
        };
        // The seed draws transaction ids, which RFC 8489 §5 wants random.
        let turn =
            TurnClient::with_config(Instant::now(), server, credentials, rand::random(), config);
        Session {
            link,
            turn,
            events: Vec::new(),
            arrivals: Vec::new(),
            echo: false,
            outbox: VecDeque::new(),
            timeout,
            trust,
        }
    }

    /// Sends the echoes and everything the client has queued.
    async fn flush(&mut self) -> std::io::Result<()> {
        while let Some(payload) = self.outbox.pop_front() {
            self.link.send(&payload).await?;
        }
        while let Some(transmit) = self.turn.poll_transmit() {
            self.link.send(&transmit.payload).await?;
        }
        Ok(())
    }

    /// Offers one received message to the client.
    fn input(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        if let TurnInput::Data { peer, payload } = self.turn.handle_input(now, from, bytes) {
            // RFC 8656 §12: ChannelData starts with the bits 01.
            let channel_data = bytes.first().is_some_and(|b| b >> 6 == 0b01);
            self.arrivals.push(Arrival {
                at: now,
                payload: payload.to_vec(),
                channel_data,
            });
            if self.echo {
                let echo = self.turn.send_to(now, peer, payload);
                self.outbox.push_back(echo.payload);
            }
        }
    }

    /// Sends `data` to `peer` through the relay now (ChannelData once a channel is bound,
    /// else a Send indication).
    pub async fn send_to(&mut self, peer: SocketAddr, data: &[u8]) -> std::io::Result<()> {
        let transmit = self.turn.send_to(Instant::now(), peer, data);
        self.link.send(&transmit.payload).await
    }
}

/// Drives `sessions` until `done` holds (true) or `until` passes (false). `done` is asked
/// after every message and timer.
pub async fn drive(
    sessions: &mut [Session],
    until: Instant,
    mut done: impl FnMut(&[Session]) -> bool,
) -> std::io::Result<bool> {
    loop {
        for session in sessions.iter_mut() {
            session.flush().await?;
        }
        if done(sessions) {
            return Ok(true);
        }
        if sessions.is_empty() || Instant::now() >= until {
            return Ok(false);
        }
        let wake = sessions
            .iter()
            .filter_map(|s| s.turn.poll_timeout())
            .fold(until, Instant::min);
        let received = {
            let receives = sessions
                .iter_mut()
                .enumerate()
                .map(|(i, s)| Box::pin(async move { (i, s.link.recv().await) }));
            tokio::select! {
                () = tokio::time::sleep_until(wake.into()) => None,
                ((i, result), _, _) = select_all(receives) => Some((i, result)),
            }
        };
        let now = Instant::now();
        if let Some((i, result)) = received {
            let (from, bytes) = result?;
            sessions[i].input(now, from, &bytes);
        }
        for session in sessions.iter_mut() {
            session.turn.handle_timeout(now);
            while let Some(event) = session.turn.poll_event() {
                tracing::debug!(?event, "TURN event");
                let redirect = match &event {
                    TurnEvent::Redirected { to, domain, .. } => Some((*to, domain.clone())),
                    _ => None,
                };
                // Kept before the move below, which may fail: the report shows the 300.
                session.events.push(event);
                if let Some((to, domain)) = redirect {
                    // The client's next Allocate is for the alternate: over a new link of the
                    // same transport (RFC 8489 §10), before the next flush sends it; over TLS
                    // or DTLS its certificate is checked against ALTERNATE-DOMAIN, if any.
                    let (trust, domain) = (session.trust.as_ref(), domain.as_deref());
                    let link = session.link.reconnect(to, session.timeout, trust, domain);
                    session.link = link.await?;
                }
            }
        }
    }
}

/// One Binding transaction (RFC 8489 §6) over `link`. The outer error is the link's.
pub async fn binding(
    link: &mut Link,
    server: SocketAddr,
    timeout: Duration,
) -> anyhow::Result<Result<BindingResponse, TransactionError>> {
    let id = TransactionId(rand::random());
    let timing = timing(link.is_stream(), timeout);
    let tx = BindingTransaction::new(
        Instant::now(),
        server,
        id,
        &RequestOptions::default(),
        timing,
    )?;
    crate::client::transaction_driver::run(tx, link).await
}

/// A check's link as a transaction's [`Wire`] (it is connected: `to` is its server).
impl Wire for Link {
    async fn send(&mut self, _: SocketAddr, payload: &[u8]) -> anyhow::Result<()> {
        Ok(Link::send(self, payload).await?)
    }

    async fn recv(&mut self) -> anyhow::Result<Option<(SocketAddr, Vec<u8>)>> {
        Ok(Some(Link::recv(self).await?))
    }
}
