//! The [`Authenticator`]: one decision per request, following RFC 8489 §9.2.4 (see the
//! module doc of [`crate::auth`] for the order of the checks and why).

use std::fmt;
use std::net::SocketAddr;
use std::time::Instant;

use stun::attributes::{Nonce, PasswordAlgorithmId, PasswordAlgorithms, Realm, Userhash, Username};
use stun::{EncodeError, IntegrityError, LongTermKey, Message, MessageWriter, Method};

use super::algorithms::{self, ADVERTISED};
use super::config::{AuthConfig, StaticUser};
use super::credentials::UserTable;
use super::limits::SharedLimits;
use super::nonce::{NonceKey, NonceText, SecurityFeatures};
use super::outcome::{AuthRejection, Authenticated, IntegrityKind};
use super::rest;
use crate::budget::ResponseBudget;
use crate::relay::ClientTransport;

/// Counts of decisions, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuthStats {
    /// Requests authenticated.
    pub accepted: u64,
    /// Requests without integrity, answered 401 with a challenge.
    pub unauthenticated: u64,
    /// Requests answered 400.
    pub bad_request: u64,
    /// Requests answered 438: expired nonces and forged ones alike.
    pub stale_nonce: u64,
    /// Failed authentications, answered 401 and counted against their source.
    pub wrong_credentials: u64,
    /// Failed authentications dropped without an answer because their source used up its
    /// allowance.
    pub rate_limited: u64,
    /// Unauthenticated answers dropped because their source's amplification budget was
    /// spent (counted by the caller that applies the budget).
    pub over_budget: u64,
}

/// How the client named itself (RFC 8489 §9.2.4: USERNAME or USERHASH).
#[derive(Debug, Clone, Copy)]
enum Identity<'m> {
    Username(&'m str),
    Userhash([u8; 32]),
}

/// The attributes RFC 8489 §9.2.4 requires once integrity is present.
#[derive(Debug, Clone, Copy)]
struct Claims<'m> {
    identity: Identity<'m>,
    realm: &'m str,
    nonce: &'m str,
}

impl<'m> Claims<'m> {
    /// USERNAME or USERHASH, REALM and NONCE, all present and well-formed; else `None`
    /// (400). USERNAME wins when a client sends both.
    fn read(request: &Message<'m>) -> Option<Claims<'m>> {
        let identity = match request.get::<Username<'m>>() {
            Some(name) => Identity::Username(name.ok()?.0),
            None => Identity::Userhash(request.get::<Userhash>()?.ok()?.0),
        };
        Some(Claims {
            identity,
            realm: request.get::<Realm<'m>>()?.ok()?.0,
            nonce: request.get::<Nonce<'m>>()?.ok()?.0,
        })
    }
}

/// Why credentials did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    /// The integrity attribute itself is malformed: 400, not a failure.
    Malformed,
    /// Wrong user, password, realm or expired credentials: 401, a failure.
    Failed,
}

/// Stands in for a key when there is no user, so that an unknown name costs about as much
/// as a wrong password and response timing does not tell which names exist.
const DECOY_KEY: LongTermKey = LongTermKey::Md5([0; 16]);

/// Long-term credential authentication for TURN requests (RFC 8489 §9.2.4, RFC 8656 §5):
/// stateless nonces, static users (by USERNAME or USERHASH), TURN REST credentials, and a
/// bounded per-source failure limit shared by every worker. Sans-IO: both clocks are
/// passed in.
pub struct Authenticator {
    realm: String,
    nonces: NonceKey,
    users: UserTable,
    rest_secrets: Vec<String>,
    limits: SharedLimits,
    stats: AuthStats,
}

/// REALM and a fresh NONCE for one client, ready to be written into 401 and 438 answers
/// (as many times as the answer is written).
#[derive(Debug, Clone, Copy)]
pub struct Challenge<'a> {
    realm: &'a str,
    nonce: NonceText,
}

impl Challenge<'_> {
    /// Writes REALM, NONCE and PASSWORD-ALGORITHMS (RFC 8489 §9.2.4). PASSWORD-ALGORITHMS
    /// goes into every challenge: §9.2.4 requires it in 438 and in the 401 for a bad
    /// username, and our nonce cookie sets the "Password algorithms" bit, with which a
    /// client must not retry unless the attribute is there (§9.2.5) — dropping it would
    /// mean dropping the bit and with it the bid-down protection of SHA-256 (§9.2.1).
    pub fn add_to(&self, writer: &mut MessageWriter<'_>) -> Result<(), EncodeError> {
        writer.add(&Realm(self.realm))?;
        writer.add(&Nonce(self.nonce.as_str()))?;
        writer.add(&PasswordAlgorithms::new(&ADVERTISED))
    }
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("realm", &self.realm)
            .field("nonces", &self.nonces)
            .field("users", &self.users.len())
            .field("rest_secrets", &self.rest_secrets.len())
            .field("tracked_sources", &self.limits.failures.tracked())
            .field("stats", &self.stats)
            .finish()
    }
}

impl Authenticator {
    /// An authenticator for `config`.
    ///
    /// Nonces announce the "Password algorithms" feature always, and "Username anonymity"
    /// only when no TURN REST secret is configured: that bit obliges RFC 8489 clients to send
    /// USERHASH (§9.2.5), which REST credentials cannot use (the server could not read the
    /// expiry back from a hash). USERHASH from static users is accepted either way.
    ///
    /// The failure counts and the amplification budget are this authenticator's own; use
    /// [`Authenticator::with_limits`] to share them between workers.
    pub fn new(config: AuthConfig) -> Authenticator {
        let limits = SharedLimits::derived(&config);
        Authenticator::with_limits(config, limits)
    }

    /// An authenticator for `config` counting failures and spending budget in `limits`,
    /// which other authenticators (one per worker) share.
    pub fn with_limits(config: AuthConfig, limits: SharedLimits) -> Authenticator {
        let features = SecurityFeatures::new(true, config.rest_secrets.is_empty());
        Authenticator {
            nonces: NonceKey::new(
                &config.nonce_secret,
                features,
                config.nonce_lifetime.as_secs(),
            ),
            users: UserTable::new(config.users, &config.realm),
            realm: config.realm,
            rest_secrets: config.rest_secrets,
            limits,
            stats: AuthStats::default(),
        }
    }

    /// Decides about one request from `source` over `transport`. `now` is monotonic
    /// (failure windows), `unix_now` is wall-clock seconds (nonce timestamps, REST expiry);
    /// both are injected.
    pub fn authenticate<'m>(
        &mut self,
        now: Instant,
        unix_now: u64,
        source: SocketAddr,
        transport: ClientTransport,
        request: &Message<'m>,
    ) -> Result<Authenticated, AuthRejection> {
        self.authenticate_also_for(now, unix_now, source, None, transport, request)
    }

    /// [`Authenticator::authenticate`], also accepting a nonce issued to `control`: a
    /// ConnectionBind on a new TCP connection (RFC 6062 §4.3: "the same method and
    /// credentials as for the control connection") may carry the nonce its control
    /// connection got, as coturn's clients send it — they do not retry after a 438. The nonce
    /// still proves freshness and the integrity the user's key; only its binding to the
    /// source port is relaxed, to the control connection of the allocation it names.
    pub fn authenticate_also_for<'m>(
        &mut self,
        now: Instant,
        unix_now: u64,
        source: SocketAddr,
        control: Option<SocketAddr>,
        transport: ClientTransport,
        request: &Message<'m>,
    ) -> Result<Authenticated, AuthRejection> {
        let decision = self.decide(now, unix_now, source, control, transport, request);
        let counter = match &decision {
            Ok(_) => &mut self.stats.accepted,
            Err(AuthRejection::Unauthenticated) => &mut self.stats.unauthenticated,
            Err(AuthRejection::BadRequest) => &mut self.stats.bad_request,
            Err(AuthRejection::StaleNonce) => &mut self.stats.stale_nonce,
            Err(AuthRejection::WrongCredentials) => &mut self.stats.wrong_credentials,
            Err(AuthRejection::RateLimited) => &mut self.stats.rate_limited,
        };
        *counter += 1;
        decision
    }

    /// The challenge for a client at `source` over `transport`: REALM, a fresh NONCE
    /// bound to that transport address, PASSWORD-ALGORITHMS (401 and 438, RFC 8489 §9.2.4).
    /// Allocates nothing.
    pub fn challenge(
        &self,
        unix_now: u64,
        source: SocketAddr,
        transport: ClientTransport,
    ) -> Challenge<'_> {
        Challenge {
            realm: &self.realm,
            nonce: self.nonces.issue(unix_now, source, transport),
        }
    }

    /// Writes [`Authenticator::challenge`] into an error response being built.
    pub fn add_challenge(
        &self,
        unix_now: u64,
        source: SocketAddr,
        transport: ClientTransport,
        writer: &mut MessageWriter<'_>,
    ) -> Result<(), EncodeError> {
        self.challenge(unix_now, source, transport).add_to(writer)
    }

    /// The per-source amplification budget unauthenticated answers are charged to.
    pub fn budget(&self) -> &ResponseBudget {
        &self.limits.budget
    }

    /// Counts an unauthenticated answer dropped for want of budget.
    pub fn count_over_budget(&mut self) {
        self.stats.over_budget += 1;
    }

    /// Replaces the static users (e.g. after a SQLite reload). Nonces, REST secrets and
    /// failure counts are kept.
    pub fn set_users(&mut self, users: Vec<StaticUser>) {
        self.users = UserTable::new(users, &self.realm);
    }

    /// Replaces the static users with `table` (built outside any lock: indexing hashes every
    /// name) and returns the old table, for the caller to drop outside its lock too.
    pub fn replace_users(&mut self, table: UserTable) -> UserTable {
        std::mem::replace(&mut self.users, table)
    }

    /// Replaces the TURN REST secrets (a configuration reload). Nonces from now on announce
    /// "Username anonymity" only when there is none (see [`Authenticator::new`]); a nonce
    /// issued with the other feature set gets 438 and the client retries with a fresh one.
    /// Returns the old secrets.
    pub fn set_rest_secrets(&mut self, secrets: Vec<String>) -> Vec<String> {
        let features = SecurityFeatures::new(true, secrets.is_empty());
        self.nonces.set_features(features);
        std::mem::replace(&mut self.rest_secrets, secrets)
    }

    /// The realm.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Sources the failure limiter has tracked (slots taken); never more than the table's
    /// capacity (`rate_limit_table_size` rounded up to a power of two).
    pub fn tracked_sources(&self) -> usize {
        self.limits.failures.tracked()
    }

    /// True when `source` is over its failure allowance now (its failing attempts are
    /// dropped; requests that authenticate are still served).
    pub fn is_locked_out(&self, now: Instant, source: SocketAddr) -> bool {
        self.limits.failures.is_limited(now, source.ip())
    }

    /// Counts of decisions so far.
    pub fn stats(&self) -> AuthStats {
        self.stats
    }

    /// The checks, in order (see the module doc of [`crate::auth`]).
    fn decide(
        &mut self,
        now: Instant,
        unix_now: u64,
        source: SocketAddr,
        control: Option<SocketAddr>,
        transport: ClientTransport,
        request: &Message<'_>,
    ) -> Result<Authenticated, AuthRejection> {
        if !request.has_integrity() {
            return Err(AuthRejection::Unauthenticated);
        }
        let claims = Claims::read(request).ok_or(AuthRejection::BadRequest)?;
        let algorithm = match SecurityFeatures::of_nonce(claims.nonce) {
            Some(features) if features.password_algorithms() => {
                algorithms::negotiate(request).map_err(|_| AuthRejection::BadRequest)?
            }
            // Not our cookie: the nonce check below refuses it anyway.
            _ => PasswordAlgorithmId::MD5,
        };
        let fresh = |client| {
            self.nonces
                .check(claims.nonce, unix_now, client, transport)
                .is_ok()
        };
        if !fresh(source) && !control.is_some_and(fresh) {
            return Err(AuthRejection::StaleNonce);
        }
        // Verified requests are served whatever the source's failure count: the limiter
        // must cost the attacker, not whoever shares (or is spoofed as) its address.
        match self.verify(unix_now, request, claims, algorithm) {
            Ok(authenticated) => Ok(authenticated),
            Err(Refused::Malformed) => Err(AuthRejection::BadRequest),
            Err(Refused::Failed) => {
                let failures = self.limits.failures.record_failure(now, source.ip());
                if self.limits.failures.over(failures) {
                    Err(AuthRejection::RateLimited)
                } else {
                    Err(AuthRejection::WrongCredentials)
                }
            }
        }
    }

    /// Finds the user's key and checks the request's integrity with it.
    fn verify(
        &self,
        unix_now: u64,
        request: &Message<'_>,
        claims: Claims<'_>,
        algorithm: PasswordAlgorithmId,
    ) -> Result<Authenticated, Refused> {
        if claims.realm != self.realm {
            return Err(decoy(request));
        }
        match claims.identity {
            Identity::Userhash(hash) => match self.users.by_hash(&hash) {
                Some((name, keys)) => accept(request, name, keys.key(algorithm)),
                // REST users cannot hash: their username carries the expiry.
                None => Err(decoy(request)),
            },
            Identity::Username(name) => match self.users.by_name(name) {
                Some(keys) => accept(request, name, keys.key(algorithm)),
                None => self.verify_rest(unix_now, request, name, algorithm),
            },
        }
    }

    /// TURN REST credentials: the expiry, then every secret in turn (a rotation keeps the
    /// old and the new secret, draft-uberti-behave-turn-rest-00 §5.2).
    ///
    /// The expiry is enforced on Allocate requests only: the draft (§2, §4.2) says expiry
    /// "does not affect existing TURN allocations" and that for other requests the server
    /// "merely verifies that the USERNAME matches the USERNAME that was used in the
    /// ALLOCATE", which the allocation layer does (RFC 8656 §5: 441 otherwise). Without a
    /// matching allocation those requests get 437, so stale credentials create nothing.
    fn verify_rest(
        &self,
        unix_now: u64,
        request: &Message<'_>,
        name: &str,
        algorithm: PasswordAlgorithmId,
    ) -> Result<Authenticated, Refused> {
        let Some(expiry) = rest::expiry(name).filter(|_| !self.rest_secrets.is_empty()) else {
            return Err(decoy(request));
        };
        let allocating = request.header().message_type.method == Method::ALLOCATE;
        if allocating && expiry < unix_now {
            return Err(Refused::Failed);
        }
        for secret in &self.rest_secrets {
            match accept(
                request,
                name,
                rest::key(secret, name, &self.realm, algorithm),
            ) {
                Err(Refused::Failed) => continue,
                decided => return decided,
            }
        }
        Err(Refused::Failed)
    }
}

/// Checks MESSAGE-INTEGRITY-SHA256 if present, else MESSAGE-INTEGRITY, with `key`, in
/// constant time (RFC 8489 §9.2.4).
fn check(request: &Message<'_>, key: &LongTermKey) -> Result<IntegrityKind, Refused> {
    let refused = |e| match e {
        IntegrityError::Malformed => Refused::Malformed,
        _ => Refused::Failed,
    };
    match request.verify_integrity_sha256(key.as_bytes()) {
        Ok(()) => Ok(IntegrityKind::Sha256),
        Err(IntegrityError::Missing) => request
            .verify_integrity(key.as_bytes())
            .map(|()| IntegrityKind::Sha1)
            .map_err(refused),
        Err(e) => Err(refused(e)),
    }
}

/// The outcome for `name` whose key is `key`.
fn accept(request: &Message<'_>, name: &str, key: LongTermKey) -> Result<Authenticated, Refused> {
    let integrity = check(request, &key)?;
    Ok(Authenticated {
        username: name.to_owned(),
        key,
        integrity,
    })
}

/// Spends on a decoy key what a real one would cost, then refuses.
fn decoy(request: &Message<'_>) -> Refused {
    match check(request, &DECOY_KEY) {
        Err(Refused::Malformed) => Refused::Malformed,
        _ => Refused::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stun::{Class, MessageType, TransactionId};

    const REALM: &str = "example.org";
    const NOW: u64 = 1_700_000_000;

    fn source() -> SocketAddr {
        "192.0.2.10:40000".parse().unwrap()
    }

    fn authenticator() -> Authenticator {
        let mut config = AuthConfig::new(REALM, [5; 32]);
        config.users = vec![StaticUser::from_password("alice", REALM, "pw")];
        Authenticator::new(config)
    }

    /// A signed Allocate request as an RFC 5389 client builds it.
    fn signed(nonce: &str, username: &str, key: &LongTermKey, buf: &mut [u8]) -> usize {
        let mut w = MessageWriter::new(
            buf,
            MessageType::new(Method::ALLOCATE, Class::Request),
            TransactionId([2; 12]),
        )
        .unwrap();
        w.add(&Username(username)).unwrap();
        w.add(&Realm(REALM)).unwrap();
        w.add(&Nonce(nonce)).unwrap();
        w.add_message_integrity(key.as_bytes()).unwrap();
        w.finish()
    }

    // RFC 8489 §9.2.4: integrity with the right key and a valid nonce passes.
    #[test]
    fn accepts_and_counts() {
        let mut auth = authenticator();
        let nonce = auth.nonces.issue(NOW, source(), ClientTransport::Udp);
        let key = LongTermKey::derive(PasswordAlgorithmId::MD5, "alice", REALM, "pw").unwrap();
        let mut buf = [0u8; 256];
        let len = signed(nonce.as_str(), "alice", &key, &mut buf);
        let request = Message::decode(&buf[..len]).unwrap();
        let ok = auth
            .authenticate(
                Instant::now(),
                NOW,
                source(),
                ClientTransport::Udp,
                &request,
            )
            .unwrap();
        assert_eq!(ok.username, "alice");
        assert_eq!(ok.integrity, IntegrityKind::Sha1);
        assert_eq!(auth.stats().accepted, 1);
    }

    // RFC 8489 §14.6: a MESSAGE-INTEGRITY-SHA256 of a bad length is malformed: 400, not a
    // failure against the source.
    #[test]
    fn malformed_integrity_is_a_bad_request() {
        let mut auth = authenticator();
        let nonce = auth.nonces.issue(NOW, source(), ClientTransport::Udp);
        let mut buf = [0u8; 256];
        let mut w = MessageWriter::new(
            &mut buf,
            MessageType::new(Method::ALLOCATE, Class::Request),
            TransactionId([2; 12]),
        )
        .unwrap();
        w.add(&Username("alice")).unwrap();
        w.add(&Realm(REALM)).unwrap();
        w.add(&Nonce(nonce.as_str())).unwrap();
        let mut len = w.finish();
        // A MESSAGE-INTEGRITY-SHA256 with 12 bytes of value (16 is the minimum).
        buf[len..len + 4].copy_from_slice(&[0x00, 0x1C, 0x00, 0x0C]);
        len += 16;
        buf[2..4].copy_from_slice(&u16::try_from(len - 20).unwrap().to_be_bytes());
        let request = Message::decode(&buf[..len]).unwrap();
        assert_eq!(
            auth.authenticate(
                Instant::now(),
                NOW,
                source(),
                ClientTransport::Udp,
                &request
            ),
            Err(AuthRejection::BadRequest)
        );
        assert_eq!(auth.tracked_sources(), 0);
    }

    #[test]
    fn debug_hides_secrets() {
        let text = format!("{:?}", authenticator());
        assert!(text.contains("example.org") && !text.contains("5, 5"));
    }
}
