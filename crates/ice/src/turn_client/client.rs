//! [`TurnClient`]: one allocation on one TURN server, with its permissions and channels.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use stun::attributes::{AlternateDomain, AlternateServer, ErrorCode};
use stun::{Class, Message, MessageType, Method, TransactionId};

use super::allocation::{read_allocate_success, read_lifetime, Allocation};
use super::channels::{Channels, CHANNEL_LIFETIME};
use super::config::TurnClientConfig;
use super::credentials::{Auth, TurnCredentials};
use super::error::TurnError;
use super::event::TurnEvent;
use super::framing::{channel_data, parse_channel_data, parse_data_indication, send_indication};
use super::lease::Lease;
use super::permissions::{Permissions, PERMISSION_LIFETIME};
use super::request::RequestKind;
use super::response::{classify, Verdict};
use super::transaction::{Tick, Transaction};
use super::transmit::{TurnInput, TurnTransmit};

/// Challenges (401, 438) answered for one request before giving up: a server that keeps
/// sending fresh nonces must not keep the client busy forever.
const MAX_CHALLENGES: u8 = 3;

/// Where the allocation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The Allocate (or its challenge retry) is in flight.
    Allocating,
    /// Allocated; refreshed before it lapses.
    Allocated(Allocation),
    /// The Refresh with LIFETIME 0 is in flight.
    Deallocating,
    /// Failed, expired or deallocated: nothing more is sent.
    Closed,
}

/// A sans-IO RFC 8656 TURN client over UDP with long-term credentials (RFC 8489 §9.2).
///
/// It owns no socket and reads no clock: feed it every datagram from the server
/// ([`Self::handle_input`]) and the timer ([`Self::handle_timeout`]), and send what
/// [`Self::poll_transmit`] returns. See the [module documentation](super) for the run loop.
///
/// ```
/// # use std::time::{Duration, Instant};
/// # use ice::{TurnClient, TurnCredentials};
/// let start = Instant::now();
/// let server = "192.0.2.1:3478".parse().unwrap();
/// let credentials = TurnCredentials { username: "alice".into(), password: "secret".into() };
/// let mut turn = TurnClient::new(start, server, credentials, [7; 32]);
/// let allocate = turn.poll_transmit().expect("the Allocate is due at once");
/// assert_eq!(allocate.destination, server);
/// assert_eq!(&allocate.payload[..2], &[0x00, 0x03], "an Allocate request");
/// assert_eq!(turn.poll_timeout(), Some(start + Duration::from_millis(500)));
/// ```
#[derive(Debug)]
pub struct TurnClient {
    server: SocketAddr,
    /// The server that redirected us to `server` with a 300 (at most one redirect).
    redirected_from: Option<SocketAddr>,
    credentials: TurnCredentials,
    config: TurnClientConfig,
    rng: StdRng,
    auth: Option<Auth>,
    state: State,
    /// Requests in flight; at most one per allocation, permission and channel, so bounded
    /// by the table limits.
    transactions: Vec<Transaction>,
    permissions: Permissions,
    channels: Channels,
    outbox: VecDeque<Vec<u8>>,
    events: VecDeque<TurnEvent>,
}

impl TurnClient {
    /// Starts an Allocate (REQUESTED-TRANSPORT UDP) to `server` at once, with RFC 8489
    /// timing: the first request is ready in [`Self::poll_transmit`].
    pub fn new(
        now: Instant,
        server: SocketAddr,
        credentials: TurnCredentials,
        seed: [u8; 32],
    ) -> Self {
        Self::with_config(now, server, credentials, seed, TurnClientConfig::default())
    }

    /// [`Self::new`] with other timing or table limits.
    pub fn with_config(
        now: Instant,
        server: SocketAddr,
        credentials: TurnCredentials,
        seed: [u8; 32],
        config: TurnClientConfig,
    ) -> Self {
        let mut client = TurnClient {
            server,
            redirected_from: None,
            credentials,
            config,
            rng: StdRng::from_seed(seed),
            auth: None,
            state: State::Allocating,
            transactions: Vec::new(),
            permissions: Permissions::new(config.max_permissions),
            channels: Channels::new(config.max_channels),
            outbox: VecDeque::new(),
            events: VecDeque::new(),
        };
        // RFC 8489 §9.2.3: the first request goes without credentials; the 401 it draws
        // tells the realm, the nonce and the password algorithms.
        client.start(now, RequestKind::Allocate, 0);
        client
    }

    /// The TURN server: the one given, or the alternate it redirected us to
    /// ([`TurnEvent::Redirected`]).
    pub fn server(&self) -> SocketAddr {
        self.server
    }

    /// The server that redirected us to [`Self::server`], if one did.
    pub fn redirected_from(&self) -> Option<SocketAddr> {
        self.redirected_from
    }

    /// The relayed transport address, while allocated.
    pub fn relayed_address(&self) -> Option<SocketAddr> {
        match self.state {
            State::Allocated(a) => Some(a.relayed),
            _ => None,
        }
    }

    /// Our address as the server saw it (XOR-MAPPED-ADDRESS of the Allocate success): a
    /// server-reflexive candidate for free.
    pub fn mapped_address(&self) -> Option<SocketAddr> {
        match self.state {
            State::Allocated(a) => Some(a.mapped),
            _ => None,
        }
    }

    /// The channel bound to `peer`, once the server has confirmed it and while it lasts.
    pub fn channel(&self, now: Instant, peer: SocketAddr) -> Option<u16> {
        self.channels
            .get(peer)
            .filter(|c| c.lease.is_live(now))
            .map(|c| c.number)
    }

    /// True when the server has confirmed a permission for `peer`'s IP (by CreatePermission
    /// or ChannelBind) and it has not lapsed.
    pub fn has_permission(&self, now: Instant, peer: SocketAddr) -> bool {
        self.permissions
            .get(peer.ip())
            .is_some_and(|p| p.lease.is_live(now))
    }

    /// Offers a datagram that arrived from `from`. Anything not from the server is
    /// [`TurnInput::NotMine`] without a look at its bytes; so is a STUN message from the
    /// server that answers none of our requests (a Binding response to another component
    /// sharing the socket, or a late duplicate).
    pub fn handle_input<'a>(
        &mut self,
        now: Instant,
        from: SocketAddr,
        packet: &'a [u8],
    ) -> TurnInput<'a> {
        if from != self.server {
            return TurnInput::NotMine;
        }
        match packet.first().map(|b| b >> 6) {
            // RFC 8656 §12: the first two bits 0b01 mark ChannelData.
            Some(0b01) => return self.channel_data_in(packet),
            Some(0b00) => {}
            _ => return TurnInput::NotMine,
        }
        let Ok(message) = Message::decode(packet) else {
            return TurnInput::NotMine;
        };
        let header = *message.header();
        if header.message_type == MessageType::new(Method::DATA, Class::Indication) {
            return match parse_data_indication(&message) {
                Some((peer, payload)) => TurnInput::Data { peer, payload },
                // RFC 8656 §11.6: a Data indication without both attributes is discarded.
                None => TurnInput::Consumed,
            };
        }
        if !matches!(header.message_type.class, Class::Success | Class::Error) {
            return TurnInput::NotMine;
        }
        let Some(index) = self
            .transactions
            .iter()
            .position(|tx| tx.id == header.transaction_id)
        else {
            return TurnInput::NotMine;
        };
        if self.transactions[index].kind.method() == header.message_type.method {
            self.handle_response(now, index, &message);
        }
        TurnInput::Consumed
    }

    /// Advances the clock: retransmissions, timeouts, refreshes, expiry. Early calls do
    /// nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        let timing = self.config.timing;
        let mut failures = Vec::new();
        let outbox = &mut self.outbox;
        self.transactions
            .retain_mut(|tx| match tx.tick(now, &timing) {
                Tick::Wait => true,
                Tick::Resend => {
                    outbox.push_back(tx.request.clone());
                    true
                }
                Tick::GiveUp(error) => {
                    failures.push((tx.kind, error));
                    false
                }
            });
        for (kind, error) in failures {
            self.failed(now, kind, error);
        }
        if let State::Allocated(a) = self.state {
            if a.lease.expires().is_some_and(|at| at <= now) {
                // RFC 8656 §8: an allocation not refreshed in time is deleted by the server.
                self.close();
                self.events.push_back(TurnEvent::Expired);
                return;
            }
        }
        self.send_due(now);
    }

    /// When [`Self::handle_timeout`] should next be called; `None` when nothing is pending.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next = self.transactions.iter().map(Transaction::deadline).min();
        if let State::Allocated(a) = self.state {
            let more = [
                a.lease.renew_at(),
                a.lease.expires(),
                self.permissions.next_renewal(),
                self.channels.next_renewal(),
            ];
            next = more.into_iter().flatten().chain(next).min();
        }
        next
    }

    /// The next datagram for the server: a request, a retransmission or a refresh.
    pub fn poll_transmit(&mut self) -> Option<TurnTransmit> {
        self.outbox.pop_front().map(|payload| TurnTransmit {
            destination: self.server,
            payload,
        })
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<TurnEvent> {
        self.events.pop_front()
    }

    /// Installs a permission for `peer`'s IP (CreatePermission, RFC 8656 §9.1) and keeps it
    /// refreshed before its 300 s lifetime ends. Idempotent. Before the allocation exists the
    /// request waits for it. Over the table limit: [`TurnEvent::PermissionFailed`].
    pub fn create_permission(&mut self, now: Instant, peer: SocketAddr) {
        if !self.is_open() || self.permissions.get(peer.ip()).is_some() {
            return;
        }
        if !self.permissions.insert(peer, Lease::wanted(now)) {
            self.events
                .push_back(TurnEvent::PermissionFailed { peer: peer.ip() });
            return;
        }
        self.send_due(now);
    }

    /// Binds a channel to `peer` (ChannelBind, RFC 8656 §12.1; it installs the permission
    /// too) and keeps it refreshed before its 600 s lifetime ends. Idempotent.
    /// [`TurnEvent::ChannelBound`] tells when [`Self::send_to`] starts using it.
    pub fn bind_channel(&mut self, now: Instant, peer: SocketAddr) {
        if !self.is_open() || self.channels.get(peer).is_some() {
            return;
        }
        if self.channels.assign(now, peer).is_none() {
            self.events.push_back(TurnEvent::ChannelFailed { peer });
            return;
        }
        self.send_due(now);
    }

    /// Wraps `data` for `peer`: ChannelData if a channel to `peer` is confirmed, else a Send
    /// indication (RFC 8656 §11.1). Without a permission for the peer's IP it asks for one
    /// and still returns the data (the server drops it until the permission is in place,
    /// which suits ICE checks, which are retransmitted). Data too long for one datagram
    /// (over 65 487 bytes) gives an empty payload.
    pub fn send_to(&mut self, now: Instant, peer: SocketAddr, data: &[u8]) -> TurnTransmit {
        let payload = match self.channel(now, peer) {
            Some(number) => channel_data(number, data, self.config.stream).unwrap_or_default(),
            None => {
                if self.permissions.get(peer.ip()).is_none() && self.channels.get(peer).is_none() {
                    self.create_permission(now, peer);
                }
                let id = self.new_id();
                send_indication(id, peer, data).unwrap_or_default()
            }
        };
        TurnTransmit {
            destination: self.server,
            payload,
        }
    }

    /// Refreshes the allocation now rather than at 80 % of its lifetime (RFC 8656 §8), unless
    /// a refresh is in flight already. [`TurnEvent::Refreshed`] tells the lifetime granted.
    pub fn refresh(&mut self, now: Instant) {
        if let State::Allocated(allocation) = &mut self.state {
            if allocation.lease.renew_at().is_some() {
                allocation.lease.due_at(now);
                self.send_due(now);
            }
        }
    }

    /// Deletes the allocation: a Refresh with LIFETIME 0 (RFC 8656 §7, §8), once; permission
    /// and channel refreshes stop. [`TurnEvent::Deallocated`] follows its answer or timeout.
    /// Before the allocation exists, the Allocate is abandoned instead
    /// ([`TurnEvent::AllocationFailed`] with [`TurnError::Cancelled`]).
    pub fn deallocate(&mut self, now: Instant) {
        match self.state {
            State::Allocated(_) => {
                self.close();
                self.state = State::Deallocating;
                self.start(now, RequestKind::Deallocate, 0);
            }
            State::Allocating => {
                self.close();
                self.events
                    .push_back(TurnEvent::AllocationFailed(TurnError::Cancelled));
            }
            State::Deallocating | State::Closed => {}
        }
    }

    /// False once deallocating or closed: no new permission or channel is wanted then.
    fn is_open(&self) -> bool {
        matches!(self.state, State::Allocating | State::Allocated(_))
    }

    /// A fresh random transaction id (RFC 8489 §5), from the seeded RNG.
    fn new_id(&mut self) -> TransactionId {
        let mut id = [0u8; 12];
        self.rng.fill_bytes(&mut id);
        TransactionId(id)
    }

    /// Encodes and queues a request for `kind` with a new transaction.
    fn start(&mut self, now: Instant, kind: RequestKind, challenges: u8) {
        let id = self.new_id();
        match kind.encode(id, self.auth.as_ref(), &self.credentials.username) {
            Ok(request) => {
                self.outbox.push_back(request.clone());
                let signed = self.auth.is_some();
                let mut tx = Transaction::sent(now, id, kind, request, signed, &self.config.timing);
                tx.challenges = challenges;
                self.transactions.push(tx);
            }
            Err(error) => self.failed(now, kind, TurnError::Encode(error)),
        }
    }

    /// Sends the refreshes and first requests that are due, once allocated.
    fn send_due(&mut self, now: Instant) {
        let State::Allocated(allocation) = &mut self.state else {
            return;
        };
        let mut due = Vec::new();
        if allocation.lease.is_due(now) {
            allocation.lease.requested();
            due.push(RequestKind::Refresh);
        }
        for permission in self.permissions.iter_mut() {
            if permission.lease.is_due(now) {
                permission.lease.requested();
                due.push(RequestKind::CreatePermission {
                    peer: permission.peer,
                });
            }
        }
        for (&peer, channel) in self.channels.iter_mut() {
            if channel.lease.is_due(now) {
                channel.lease.requested();
                due.push(RequestKind::ChannelBind {
                    peer,
                    channel: channel.number,
                });
            }
        }
        for kind in due {
            self.start(now, kind, 0);
        }
    }

    /// Data from a peer in ChannelData (RFC 8656 §12.6): on a channel we bound, else dropped.
    fn channel_data_in<'a>(&self, packet: &'a [u8]) -> TurnInput<'a> {
        match parse_channel_data(packet) {
            Some((number, payload)) => match self.channels.peer_of(number) {
                Some(peer) => TurnInput::Data { peer, payload },
                None => TurnInput::Consumed,
            },
            None => TurnInput::Consumed,
        }
    }

    /// A response with the id and method of transaction `index`.
    fn handle_response(&mut self, now: Instant, index: usize, response: &Message<'_>) {
        let tx = &mut self.transactions[index];
        let auth = self.auth.as_ref().filter(|_| tx.authenticated);
        match classify(response, auth) {
            Verdict::Discard => tx.discarded += 1,
            Verdict::Success => {
                let tx = self.transactions.remove(index);
                self.succeeded(now, tx.kind, response);
            }
            Verdict::Failed(error) => {
                let tx = self.transactions.remove(index);
                if tx.kind == RequestKind::Allocate && error.code() == Some(300) {
                    // Authentic here when the Allocate was signed (`classify` checked it).
                    return self.try_alternate(now, tx.authenticated, response, error);
                }
                self.failed(now, tx.kind, error);
            }
            Verdict::Challenge { code } => {
                let tx = self.transactions.remove(index);
                self.challenged(now, tx, code, response);
            }
        }
    }

    /// RFC 8489 §9.2.5: answers a 401 or 438 with a new transaction carrying the realm and
    /// nonce it gave, or fails the request where a retry would not help.
    fn challenged(&mut self, now: Instant, tx: Transaction, code: u16, response: &Message<'_>) {
        let reason = match response.get::<ErrorCode<'_>>() {
            Some(Ok(e)) => e.reason.to_owned(),
            _ => String::new(),
        };
        let refused = TurnError::ErrorResponse { code, reason };
        if tx.challenges >= MAX_CHALLENGES {
            return self.failed(now, tx.kind, refused);
        }
        let auth = match Auth::from_challenge(response, &self.credentials) {
            Ok(auth) => auth,
            Err(problem) => return self.failed(now, tx.kind, TurnError::Malformed(problem)),
        };
        // "The client MUST NOT perform this retry if it is not changing the USERNAME,
        // USERHASH, REALM, or its associated password": a 401 to a signed request in the
        // same realm means wrong credentials.
        let same_realm = self.auth.as_ref().map(Auth::realm) == Some(auth.realm());
        if code == 401 && tx.authenticated && same_realm {
            return self.failed(now, tx.kind, refused);
        }
        self.diagnostic(TurnEvent::Challenged {
            request: tx.kind,
            code,
            realm: auth.realm().to_owned(),
        });
        self.auth = Some(auth);
        self.start(now, tx.kind, tx.challenges + 1);
    }

    /// A 300 (Try Alternate) to the Allocate: start again at the ALTERNATE-SERVER of our
    /// family (RFC 8656 §7.2: the client "SHOULD try the Allocate request with the alternate
    /// server"), or fail with `error`. Followed only when
    /// - the 300 answered a signed request (so it verified with our key: nobody else can send
    ///   us elsewhere; our server only redirects authenticated clients anyway);
    /// - no redirect was followed yet: at most one per allocation, so two servers naming each
    ///   other cannot keep us going (RFC 8489 §10 forbids returning to a server tried in the
    ///   last five minutes; with one redirect the only other one is the first server);
    /// - the alternate is not the server that answered.
    ///
    /// The new Allocate goes unauthenticated first: the alternate's realm and nonce are its
    /// own, learned from its 401; the credentials are the same (RFC 8489 §10).
    fn try_alternate(
        &mut self,
        now: Instant,
        authentic: bool,
        response: &Message<'_>,
        error: TurnError,
    ) {
        let from = self.server;
        let alternate = response
            .get_all::<AlternateServer>()
            .filter_map(Result::ok)
            .map(|a| a.0)
            // Our socket is of the server's family (RFC 8489 §10: the first alternate is of
            // the request's family).
            .find(|a| a.is_ipv4() == from.is_ipv4());
        let to = match alternate {
            Some(to) if authentic && self.config.follow_alternate => to,
            _ => return self.failed(now, RequestKind::Allocate, error),
        };
        if self.redirected_from.is_some() || to == from {
            return self.failed(now, RequestKind::Allocate, error);
        }
        // Signed, so the name is the server's; whether it matters (TLS, DTLS) is the
        // driver's to know.
        let domain = match response.get::<AlternateDomain<'_>>() {
            Some(Ok(domain)) => Some(domain.0.to_owned()),
            _ => None,
        };
        self.redirected_from = Some(from);
        self.server = to;
        self.auth = None;
        self.events
            .push_back(TurnEvent::Redirected { from, to, domain });
        self.start(now, RequestKind::Allocate, 0);
    }

    /// A request succeeded.
    fn succeeded(&mut self, now: Instant, kind: RequestKind, response: &Message<'_>) {
        match kind {
            RequestKind::Allocate => match read_allocate_success(now, response) {
                Ok(allocation) => {
                    self.state = State::Allocated(allocation);
                    self.events.push_back(TurnEvent::Allocated {
                        relayed: allocation.relayed,
                        mapped: allocation.mapped,
                        lifetime: allocation.lifetime,
                    });
                    // Permissions and channels asked for while allocating go out now.
                    self.send_due(now);
                }
                Err(error) => self.failed(now, kind, error),
            },
            RequestKind::Refresh => {
                if let State::Allocated(allocation) = &mut self.state {
                    // RFC 8656 §8: the success carries the lifetime granted.
                    let lifetime = read_lifetime(response).unwrap_or(allocation.lifetime);
                    allocation.lifetime = lifetime;
                    allocation.lease.confirmed(now, lifetime);
                    self.diagnostic(TurnEvent::Refreshed { lifetime });
                }
            }
            RequestKind::Deallocate => {
                self.close();
                self.events.push_back(TurnEvent::Deallocated);
            }
            RequestKind::CreatePermission { peer } => {
                if let Some(permission) = self.permissions.get_mut(peer.ip()) {
                    permission.lease.confirmed(now, PERMISSION_LIFETIME);
                }
            }
            RequestKind::ChannelBind { peer, channel } => self.channel_bound(now, peer, channel),
        }
    }

    /// A ChannelBind succeeded: the channel is usable, and the peer's permission is installed
    /// or refreshed with it (RFC 8656 §12.2).
    fn channel_bound(&mut self, now: Instant, peer: SocketAddr, number: u16) {
        let Some(channel) = self.channels.get_mut(peer).filter(|c| c.number == number) else {
            return;
        };
        let first = !channel.lease.was_confirmed();
        channel.lease.confirmed(now, CHANNEL_LIFETIME);
        match self.permissions.get_mut(peer.ip()) {
            Some(permission) => permission.lease.confirmed(now, PERMISSION_LIFETIME),
            None => {
                let mut lease = Lease::wanted(now);
                lease.confirmed(now, PERMISSION_LIFETIME);
                // A full table only means this permission is not tracked on its own; the
                // channel refresh keeps it alive on the server anyway.
                let _ = self.permissions.insert(peer, lease);
            }
        }
        if first {
            self.events.push_back(TurnEvent::ChannelBound {
                peer,
                channel: number,
            });
        }
    }

    /// A request failed for good.
    fn failed(&mut self, now: Instant, kind: RequestKind, error: TurnError) {
        self.diagnostic(TurnEvent::RequestFailed {
            request: kind,
            error: error.clone(),
        });
        match kind {
            RequestKind::Allocate => {
                self.close();
                self.events.push_back(TurnEvent::AllocationFailed(error));
            }
            RequestKind::Refresh => match (&mut self.state, &error) {
                // A lost refresh is tried again while the allocation lasts; the expiry
                // timer ends it otherwise.
                (
                    State::Allocated(allocation),
                    TurnError::Timeout { .. } | TurnError::IntegrityViolated { .. },
                ) => allocation.lease.due_at(now),
                _ => {
                    self.close();
                    self.events.push_back(TurnEvent::Expired);
                }
            },
            RequestKind::Deallocate => {
                self.close();
                self.events.push_back(TurnEvent::Deallocated);
            }
            RequestKind::CreatePermission { peer } => {
                self.permissions.remove(peer.ip());
                self.events
                    .push_back(TurnEvent::PermissionFailed { peer: peer.ip() });
            }
            RequestKind::ChannelBind { peer, .. } => {
                self.channels.remove(peer);
                self.events.push_back(TurnEvent::ChannelFailed { peer });
            }
        }
    }

    /// Queues a diagnostic event, when the caller asked for them.
    fn diagnostic(&mut self, event: TurnEvent) {
        if self.config.diagnostics {
            self.events.push_back(event);
        }
    }

    /// Stops everything: no request in flight, no permission or channel to refresh.
    fn close(&mut self) {
        self.state = State::Closed;
        self.transactions.clear();
        self.permissions.clear();
        self.channels.clear();
    }
}
