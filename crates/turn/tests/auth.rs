//! Scenario tests of long-term credential authentication (RFC 8489 §9.2, RFC 8656 §5,
//! draft-uberti-behave-turn-rest-00), each naming the rule it checks. Requests are built
//! with the codec's writer and signed as a client would sign them.

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use stun::attributes::{
    ErrorCode, Nonce, PasswordAlgorithm, PasswordAlgorithmId, PasswordAlgorithms, Realm, Userhash,
    Username,
};
use stun::{error_code, Class, LongTermKey, Message, MessageType, MessageWriter, Method};
use stun::{TransactionId, HEADER_LEN};
use turn::auth::rest;
use turn::auth::{
    AuthConfig, AuthRejection, Authenticated, Authenticator, IntegrityKind, SharedLimits,
    StaticUser,
};
use turn::relay::ClientTransport;

const UDP: ClientTransport = ClientTransport::Udp;

const REALM: &str = "turnpike.example";
const SECRET: [u8; 32] = [0x42; 32];
/// Wall-clock "now" of the tests, in Unix seconds.
const NOW: u64 = 1_700_000_000;
const MD5: PasswordAlgorithmId = PasswordAlgorithmId::MD5;
const SHA256: PasswordAlgorithmId = PasswordAlgorithmId::SHA256;
const ADVERTISED: [PasswordAlgorithmId; 2] = [SHA256, MD5];

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn client() -> SocketAddr {
    addr("198.51.100.7:40000")
}

fn config() -> AuthConfig {
    let mut config = AuthConfig::new(REALM, SECRET);
    config.users = vec![
        StaticUser::from_password("alice", REALM, "alice-password"),
        StaticUser::from_password("bob", REALM, "bob-password"),
    ];
    config
}

fn rest_config(secrets: &[&str]) -> AuthConfig {
    let mut config = config();
    config.rest_secrets = secrets.iter().map(|s| s.to_string()).collect();
    config
}

fn key(algorithm: PasswordAlgorithmId, username: &str, password: &str) -> LongTermKey {
    LongTermKey::derive(algorithm, username, REALM, password).unwrap()
}

fn alice_md5() -> LongTermKey {
    key(MD5, "alice", "alice-password")
}

/// A request as a client builds it; `None` leaves an attribute out.
#[derive(Clone)]
struct Request<'a> {
    method: Method,
    username: Option<&'a str>,
    userhash: Option<[u8; 32]>,
    realm: Option<&'a str>,
    nonce: Option<&'a str>,
    algorithms: Option<&'a [PasswordAlgorithmId]>,
    algorithm: Option<PasswordAlgorithmId>,
    /// Signs with MESSAGE-INTEGRITY (or -SHA256) when set.
    key: Option<LongTermKey>,
    sha256: bool,
}

impl<'a> Request<'a> {
    /// An RFC 5389/5766 client's request: USERNAME, REALM, NONCE, MESSAGE-INTEGRITY.
    fn legacy(username: &'a str, nonce: &'a str, key: LongTermKey) -> Request<'a> {
        Request {
            method: Method::ALLOCATE,
            username: Some(username),
            userhash: None,
            realm: Some(REALM),
            nonce: Some(nonce),
            algorithms: None,
            algorithm: None,
            key: Some(key),
            sha256: false,
        }
    }

    /// An RFC 8489 client's request choosing SHA-256 and signing with -SHA256.
    fn modern(username: &'a str, nonce: &'a str, key: LongTermKey) -> Request<'a> {
        Request {
            algorithms: Some(&ADVERTISED),
            algorithm: Some(SHA256),
            sha256: true,
            ..Request::legacy(username, nonce, key)
        }
    }

    /// The first request of a client: no credentials at all (RFC 8489 §9.2.3.1).
    fn first() -> Request<'static> {
        Request {
            method: Method::ALLOCATE,
            username: None,
            userhash: None,
            realm: None,
            nonce: None,
            algorithms: None,
            algorithm: None,
            key: None,
            sha256: false,
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut buf = vec![0u8; 1024];
        let mut w = MessageWriter::new(
            &mut buf,
            MessageType::new(self.method, Class::Request),
            TransactionId([7; 12]),
        )
        .unwrap();
        if let Some(name) = self.username {
            w.add(&Username(name)).unwrap();
        }
        if let Some(hash) = self.userhash {
            w.add(&Userhash(hash)).unwrap();
        }
        if let Some(realm) = self.realm {
            w.add(&Realm(realm)).unwrap();
        }
        if let Some(nonce) = self.nonce {
            w.add(&Nonce(nonce)).unwrap();
        }
        if let Some(list) = self.algorithms {
            w.add(&PasswordAlgorithms::new(list)).unwrap();
        }
        if let Some(algorithm) = self.algorithm {
            w.add(&PasswordAlgorithm {
                algorithm,
                parameters: &[],
            })
            .unwrap();
        }
        match (self.key, self.sha256) {
            (Some(k), false) => w.add_message_integrity(k.as_bytes()).unwrap(),
            (Some(k), true) => w.add_message_integrity_sha256(k.as_bytes()).unwrap(),
            (None, _) => {}
        }
        let len = w.finish();
        buf.truncate(len);
        buf
    }
}

/// Runs one request through the authenticator.
fn run(
    auth: &mut Authenticator,
    now: Instant,
    unix_now: u64,
    source: SocketAddr,
    request: &Request<'_>,
) -> Result<Authenticated, AuthRejection> {
    let bytes = request.encode();
    let message = Message::decode(&bytes).unwrap();
    auth.authenticate(now, unix_now, source, UDP, &message)
}

/// The error response the server would send for `rejection`, as bytes.
fn error_response(
    auth: &Authenticator,
    unix_now: u64,
    source: SocketAddr,
    rejection: AuthRejection,
) -> Vec<u8> {
    let request = Request::first().encode();
    let request = Message::decode(&request).unwrap();
    let mut buf = vec![0u8; 512];
    let mut w = MessageWriter::response(&mut buf, request.header(), Class::Error).unwrap();
    w.add(&rejection.error_code().unwrap()).unwrap();
    if rejection.needs_challenge() {
        auth.add_challenge(unix_now, source, UDP, &mut w).unwrap();
    }
    let len = w.finish();
    buf.truncate(len);
    buf
}

/// The NONCE a client at `source` gets in a challenge at `unix_now`.
fn nonce_for(auth: &Authenticator, unix_now: u64, source: SocketAddr) -> String {
    let response = error_response(auth, unix_now, source, AuthRejection::Unauthenticated);
    let message = Message::decode(&response).unwrap();
    message.get::<Nonce<'_>>().unwrap().unwrap().0.to_owned()
}

// RFC 8489 §9.2.4, first bullet: no MESSAGE-INTEGRITY → 401 with REALM, NONCE (with the
// nonce cookie, §9.2) and PASSWORD-ALGORITHMS; the first request is not a failure.
#[test]
fn no_integrity_gets_a_401_challenge() {
    let mut auth = Authenticator::new(config());
    let t0 = Instant::now();
    let rejection = run(&mut auth, t0, NOW, client(), &Request::first()).unwrap_err();
    assert_eq!(rejection, AuthRejection::Unauthenticated);
    assert_eq!(rejection.error_code(), Some(error_code::UNAUTHORIZED));
    assert!(rejection.needs_challenge());

    let response = error_response(&auth, NOW, client(), rejection);
    let message = Message::decode(&response).unwrap();
    assert_eq!(message.get::<ErrorCode<'_>>().unwrap().unwrap().code, 401);
    assert_eq!(message.get::<Realm<'_>>().unwrap().unwrap().0, REALM);
    let nonce = message.get::<Nonce<'_>>().unwrap().unwrap().0;
    assert!(nonce.starts_with("obMatJos2"), "{nonce}");
    assert!(nonce.chars().count() < 128, "RFC 8489 §14.10");
    let algorithms = message.get::<PasswordAlgorithms<'_>>().unwrap().unwrap();
    assert_eq!(algorithms, PasswordAlgorithms::new(&[SHA256, MD5]));
    // §9.2.4: "SHOULD NOT contain a USERNAME, USERHASH, MESSAGE-INTEGRITY".
    assert!(!message.contains::<Username<'_>>() && !message.has_integrity());
    assert_eq!(
        auth.tracked_sources(),
        0,
        "no state for unauthenticated packets"
    );
}

// RFC 8489 §9.2 and §18.1: the cookie carries bit 0 "Password algorithms", and bit 1
// "Username anonymity" when USERHASH is usable by every user (no REST secrets, §9.2.5).
#[test]
fn nonce_cookie_announces_the_security_features() {
    let plain = Authenticator::new(config());
    assert!(nonce_for(&plain, NOW, client()).starts_with("obMatJos2wAAA"));
    let with_rest = Authenticator::new(rest_config(&["s3cret"]));
    assert!(nonce_for(&with_rest, NOW, client()).starts_with("obMatJos2gAAA"));
}

// RFC 8489 §9.2.4, third bullet, first sub-bullet: neither PASSWORD-ALGORITHMS nor
// PASSWORD-ALGORITHM → processed as MD5, integrity by MESSAGE-INTEGRITY.
#[test]
fn legacy_md5_request_is_accepted() {
    let mut auth = Authenticator::new(config());
    let nonce = nonce_for(&auth, NOW, client());
    let ok = run(
        &mut auth,
        Instant::now(),
        NOW,
        client(),
        &Request::legacy("alice", &nonce, alice_md5()),
    )
    .unwrap();
    assert_eq!(ok.username, "alice");
    assert_eq!(ok.key, alice_md5());
    assert_eq!(ok.integrity, IntegrityKind::Sha1);
}

// RFC 8489 §9.2.4: PASSWORD-ALGORITHMS echoed, PASSWORD-ALGORITHM SHA256 → SHA-256 key
// (§18.5.1); MESSAGE-INTEGRITY-SHA256 checked (§14.6) and used for the response.
#[test]
fn sha256_request_is_accepted_with_sha256() {
    let mut auth = Authenticator::new(config());
    let nonce = nonce_for(&auth, NOW, client());
    let sha_key = key(SHA256, "alice", "alice-password");
    let ok = run(
        &mut auth,
        Instant::now(),
        NOW,
        client(),
        &Request::modern("alice", &nonce, sha_key),
    )
    .unwrap();
    assert_eq!(ok.key, sha_key);
    assert_eq!(ok.integrity, IntegrityKind::Sha256);

    // Choosing MD5 from the list is allowed too; the integrity attribute is the client's.
    let md5_choice = Request {
        algorithm: Some(MD5),
        ..Request::modern("alice", &nonce, alice_md5())
    };
    let ok = run(&mut auth, Instant::now(), NOW, client(), &md5_choice).unwrap();
    assert_eq!((ok.key, ok.integrity), (alice_md5(), IntegrityKind::Sha256));

    // The SHA-256 key does not verify a request negotiated as MD5, nor the reverse.
    let wrong = Request {
        algorithm: Some(MD5),
        ..Request::modern("alice", &nonce, sha_key)
    };
    assert_eq!(
        run(&mut auth, Instant::now(), NOW, client(), &wrong),
        Err(AuthRejection::WrongCredentials)
    );
}

// RFC 8489 §9.2.4, third bullet, second sub-bullet: unless both are present, the list
// matches what was sent and the choice is in it → 400. Not a failure of the source.
#[test]
fn mismatched_password_algorithms_is_a_bad_request() {
    let mut auth = Authenticator::new(config());
    let nonce = nonce_for(&auth, NOW, client());
    let sha_key = key(SHA256, "alice", "alice-password");
    let base = Request::modern("alice", &nonce, sha_key);
    let cases = [
        Request {
            algorithms: Some(&[MD5, SHA256]),
            ..base.clone()
        },
        Request {
            algorithms: Some(&[SHA256]),
            ..base.clone()
        },
        Request {
            algorithms: None,
            ..base.clone()
        },
        Request {
            algorithm: None,
            ..base.clone()
        },
        Request {
            algorithm: Some(PasswordAlgorithmId(3)),
            ..base.clone()
        },
    ];
    for request in &cases {
        let rejection = run(&mut auth, Instant::now(), NOW, client(), request).unwrap_err();
        assert_eq!(rejection, AuthRejection::BadRequest);
        assert_eq!(rejection.error_code(), Some(error_code::BAD_REQUEST));
        assert!(
            !rejection.needs_challenge(),
            "§9.2.4: 400 has no NONCE, REALM"
        );
    }
    assert_eq!(auth.tracked_sources(), 0);
}

// RFC 8489 §9.2.4, second bullet: integrity without USERNAME/USERHASH, REALM or NONCE → 400.
#[test]
fn missing_nonce_realm_or_username_is_a_bad_request() {
    let mut auth = Authenticator::new(config());
    let nonce = nonce_for(&auth, NOW, client());
    let base = Request::legacy("alice", &nonce, alice_md5());
    let cases = [
        Request {
            nonce: None,
            ..base.clone()
        },
        Request {
            realm: None,
            ..base.clone()
        },
        Request {
            username: None,
            ..base.clone()
        },
    ];
    for request in &cases {
        assert_eq!(
            run(&mut auth, Instant::now(), NOW, client(), request),
            Err(AuthRejection::BadRequest)
        );
    }
}

// RFC 8489 §9.2.4, fifth bullet: integrity that does not match → 401 with REALM and NONCE;
// counted as a failure of the source.
#[test]
fn wrong_password_is_wrong_credentials() {
    let mut auth = Authenticator::new(config());
    let nonce = nonce_for(&auth, NOW, client());
    let request = Request::legacy("alice", &nonce, key(MD5, "alice", "guess"));
    let rejection = run(&mut auth, Instant::now(), NOW, client(), &request).unwrap_err();
    assert_eq!(rejection, AuthRejection::WrongCredentials);
    assert_eq!(rejection.error_code(), Some(error_code::UNAUTHORIZED));
    assert!(rejection.needs_challenge());
    assert_eq!(auth.tracked_sources(), 1);
    // Bob's password is no good for Alice either.
    let crossed = Request::legacy("alice", &nonce, key(MD5, "alice", "bob-password"));
    assert_eq!(
        run(&mut auth, Instant::now(), NOW, client(), &crossed),
        Err(AuthRejection::WrongCredentials)
    );
    assert_eq!(auth.stats().wrong_credentials, 2);
}

// RFC 8489 §9.2.4, fourth bullet: a USERNAME that is not valid → 401.
#[test]
fn unknown_user_is_wrong_credentials() {
    let mut auth = Authenticator::new(config());
    let nonce = nonce_for(&auth, NOW, client());
    let request = Request::legacy("mallory", &nonce, key(MD5, "mallory", "x"));
    assert_eq!(
        run(&mut auth, Instant::now(), NOW, client(), &request),
        Err(AuthRejection::WrongCredentials)
    );
}

// RFC 8489 §9.2.2: the key is derived with the realm; a request for another realm is refused.
#[test]
fn realm_mismatch_is_wrong_credentials() {
    let mut auth = Authenticator::new(config());
    let nonce = nonce_for(&auth, NOW, client());
    let request = Request {
        realm: Some("elsewhere.example"),
        ..Request::legacy("alice", &nonce, alice_md5())
    };
    assert_eq!(
        run(&mut auth, Instant::now(), NOW, client(), &request),
        Err(AuthRejection::WrongCredentials)
    );
}

// RFC 8489 §9.2: the nonce indicates "client identity from which it is valid". Ours is
// the whole transport address: a nonce issued to another IP, another port of the same IP or
// another transport is stale (438), so a request captured and replayed from elsewhere cannot
// be used (and cannot be re-signed without the key).
#[test]
fn nonce_from_another_transport_address_is_stale() {
    let mut auth = Authenticator::new(config());
    let nonce = nonce_for(&auth, NOW, addr("203.0.113.5:40000"));
    let request = Request::legacy("alice", &nonce, alice_md5());
    let rejection = run(&mut auth, Instant::now(), NOW, client(), &request).unwrap_err();
    assert_eq!(rejection, AuthRejection::StaleNonce);
    assert_eq!(rejection.error_code(), Some(error_code::STALE_NONCE));
    assert!(rejection.needs_challenge());
    assert_eq!(auth.tracked_sources(), 0, "stale nonces are not failures");

    let nonce = nonce_for(&auth, NOW, client());
    let request = Request::legacy("alice", &nonce, alice_md5());
    assert!(run(&mut auth, Instant::now(), NOW, client(), &request).is_ok());
    let other_port = addr("198.51.100.7:40001");
    assert_eq!(
        run(&mut auth, Instant::now(), NOW, other_port, &request),
        Err(AuthRejection::StaleNonce)
    );
    let bytes = request.encode();
    let message = Message::decode(&bytes).unwrap();
    let over_tcp = auth.authenticate(
        Instant::now(),
        NOW,
        client(),
        ClientTransport::Tcp,
        &message,
    );
    assert_eq!(over_tcp, Err(AuthRejection::StaleNonce));
}

// RFC 8489 §9.2.4, sixth bullet: "If the NONCE is no longer valid" → 438 carrying a valid
// NONCE, with which the client's retry (§9.2.5) succeeds.
#[test]
fn expired_nonce_is_stale_then_the_fresh_one_works() {
    let mut auth = Authenticator::new(config());
    let t0 = Instant::now();
    let old = nonce_for(&auth, NOW, client());
    let still = NOW + 600;
    assert!(run(
        &mut auth,
        t0,
        still,
        client(),
        &Request::legacy("alice", &old, alice_md5())
    )
    .is_ok());

    let later = NOW + 601;
    let rejection = run(
        &mut auth,
        t0,
        later,
        client(),
        &Request::legacy("alice", &old, alice_md5()),
    )
    .unwrap_err();
    assert_eq!(rejection, AuthRejection::StaleNonce);
    let response = error_response(&auth, later, client(), rejection);
    let message = Message::decode(&response).unwrap();
    assert_eq!(message.get::<ErrorCode<'_>>().unwrap().unwrap().code, 438);
    assert!(message.contains::<PasswordAlgorithms<'_>>());
    let fresh = message.get::<Nonce<'_>>().unwrap().unwrap().0;
    assert_ne!(fresh, old);
    assert!(run(
        &mut auth,
        t0,
        later,
        client(),
        &Request::legacy("alice", fresh, alice_md5())
    )
    .is_ok());
}

// RFC 8489 §9.2: the nonce is "selected by the server": anything we did not issue is stale,
// and none of it counts against the source.
#[test]
fn forged_or_garbled_nonces_are_stale() {
    let mut auth = Authenticator::new(config());
    let good = nonce_for(&auth, NOW, client());
    let mut flipped = good.clone().into_bytes();
    let last = flipped.len() - 1;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let future = nonce_for(&auth, NOW + 3600, client());
    let forged: Vec<String> = vec![
        "garbage".into(),
        "".into(),
        flipped,
        good[..good.len() - 4].to_owned(),
        format!("{good}AAAA"),
        good.replacen("obMatJos2wAAA", "obMatJos2AAAA", 1),
        "obMatJos2wAAA!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!".into(),
        future,
    ];
    for nonce in &forged {
        assert_eq!(
            run(
                &mut auth,
                Instant::now(),
                NOW,
                client(),
                &Request::legacy("alice", nonce, alice_md5())
            ),
            Err(AuthRejection::StaleNonce),
            "{nonce:?}"
        );
    }
    assert_eq!(auth.tracked_sources(), 0);
    assert_eq!(auth.stats().stale_nonce, forged.len() as u64);
}

// RFC 8489 §14.4: USERHASH = SHA-256(username ":" realm) stands for the USERNAME of a static
// user; REST users cannot be hashed (their name carries the expiry) → 401.
#[test]
fn userhash_resolves_static_users() {
    let mut auth = Authenticator::new(rest_config(&["s3cret"]));
    let nonce = nonce_for(&auth, NOW, client());
    let sha_key = key(SHA256, "alice", "alice-password");
    let request = Request {
        username: None,
        userhash: Some(stun::userhash("alice", REALM)),
        ..Request::modern("alice", &nonce, sha_key)
    };
    let ok = run(&mut auth, Instant::now(), NOW, client(), &request).unwrap();
    assert_eq!(ok.username, "alice");
    assert_eq!(ok.integrity, IntegrityKind::Sha256);

    let rest_name = rest::username(NOW + 3600, Some("carol"));
    let rest_key = key(MD5, &rest_name, &rest::password("s3cret", &rest_name));
    let request = Request {
        username: None,
        userhash: Some(stun::userhash(&rest_name, REALM)),
        ..Request::legacy("", &nonce, rest_key)
    };
    assert_eq!(
        run(&mut auth, Instant::now(), NOW, client(), &request),
        Err(AuthRejection::WrongCredentials)
    );
}

/// A legacy request with TURN REST credentials under `secret`.
fn rest_request<'a>(name: &'a str, nonce: &'a str, secret: &str) -> Request<'a> {
    Request::legacy(name, nonce, key(MD5, name, &rest::password(secret, name)))
}

// draft-uberti-behave-turn-rest-00 §2.2 and §4.2: username "EXPIRY:USERID", password
// base64(HMAC-SHA1(secret, username)); the server recomputes it and checks the expiry.
#[test]
fn rest_credentials_valid_expired_and_wrong_secret() {
    let mut auth = Authenticator::new(rest_config(&["s3cret"]));
    let t0 = Instant::now();
    let nonce = nonce_for(&auth, NOW, client());

    let valid = rest::username(NOW + 86_400, Some("carol"));
    let ok = run(
        &mut auth,
        t0,
        NOW,
        client(),
        &rest_request(&valid, &nonce, "s3cret"),
    )
    .unwrap();
    assert_eq!(ok.username, valid);
    let bare = rest::username(NOW + 10, None);
    assert!(run(
        &mut auth,
        t0,
        NOW,
        client(),
        &rest_request(&bare, &nonce, "s3cret")
    )
    .is_ok());
    assert!(
        run(
            &mut auth,
            t0,
            NOW,
            client(),
            &rest_request(&valid, &nonce, "other")
        )
        .is_err(),
        "wrong secret"
    );

    // §4.2: on ALLOCATE, "verify that the timestamp ... has not yet been reached. If this
    // verification fails, it SHOULD reject the request with a 401".
    let expired = rest::username(NOW - 1, Some("carol"));
    assert_eq!(
        run(
            &mut auth,
            t0,
            NOW,
            client(),
            &rest_request(&expired, &nonce, "s3cret")
        ),
        Err(AuthRejection::WrongCredentials)
    );
    // §2: expiry "does not affect existing TURN allocations"; §4.2: for non-ALLOCATE
    // requests the server "merely verifies that the USERNAME matches" the allocation's.
    let refresh = Request {
        method: Method::REFRESH,
        ..rest_request(&expired, &nonce, "s3cret")
    };
    assert!(run(&mut auth, t0, NOW, client(), &refresh).is_ok());
    assert_eq!(auth.stats().wrong_credentials, 2);
}

// draft-uberti-behave-turn-rest-00 §5.2: "the TURN server SHOULD be able to validate
// incoming MESSAGE-INTEGRITY tokens based on at least 2 shared secrets at any time".
#[test]
fn rest_rotation_accepts_every_configured_secret() {
    let mut auth = Authenticator::new(rest_config(&["new-secret", "old-secret"]));
    let nonce = nonce_for(&auth, NOW, client());
    let name = rest::username(NOW + 3600, Some("dave"));
    for secret in ["new-secret", "old-secret"] {
        let ok = run(
            &mut auth,
            Instant::now(),
            NOW,
            client(),
            &rest_request(&name, &nonce, secret),
        );
        assert!(ok.is_ok(), "{secret}");
    }
    assert_eq!(
        run(
            &mut auth,
            Instant::now(),
            NOW,
            client(),
            &rest_request(&name, &nonce, "retired-secret")
        ),
        Err(AuthRejection::WrongCredentials)
    );
    // RFC 8489 §9.2.4 with REST credentials: the SHA-256 key of the same password.
    let password = rest::password("old-secret", &name);
    let modern = Request::modern(&name, &nonce, key(SHA256, &name, &password));
    let ok = run(&mut auth, Instant::now(), NOW, client(), &modern).unwrap();
    assert_eq!(ok.integrity, IntegrityKind::Sha256);
}

// draft-uberti-behave-turn-rest-00 §2.2 leaves the order open: "USERID:EXPIRY" is accepted
// when the first part is not a number and the last one is.
#[test]
fn rest_userid_first_order() {
    let mut auth = Authenticator::new(rest_config(&["s3cret"]));
    let nonce = nonce_for(&auth, NOW, client());
    let name = format!("erin:{}", NOW + 60);
    assert!(run(
        &mut auth,
        Instant::now(),
        NOW,
        client(),
        &rest_request(&name, &nonce, "s3cret")
    )
    .is_ok());
    let expired = format!("erin:{}", NOW - 60);
    assert_eq!(
        run(
            &mut auth,
            Instant::now(),
            NOW,
            client(),
            &rest_request(&expired, &nonce, "s3cret")
        ),
        Err(AuthRejection::WrongCredentials)
    );
}

// A username that is both a static user and REST-shaped is the static user.
#[test]
fn static_users_take_precedence_over_rest() {
    let name = rest::username(NOW + 3600, Some("frank"));
    let mut config = rest_config(&["s3cret"]);
    config
        .users
        .push(StaticUser::from_password(&name, REALM, "static-pw"));
    let mut auth = Authenticator::new(config);
    let nonce = nonce_for(&auth, NOW, client());
    let as_static = Request::legacy(&name, &nonce, key(MD5, &name, "static-pw"));
    assert!(run(&mut auth, Instant::now(), NOW, client(), &as_static).is_ok());
    assert_eq!(
        run(
            &mut auth,
            Instant::now(),
            NOW,
            client(),
            &rest_request(&name, &nonce, "s3cret")
        ),
        Err(AuthRejection::WrongCredentials)
    );
}

// Brute-force protection: after `failures_allowed` failures in the window, further failing
// attempts from the source are dropped without an answer (no 401: no password oracle) until
// the window ends.
#[test]
fn ten_failures_then_failures_are_dropped_until_the_window_ends() {
    let mut auth = Authenticator::new(config());
    let t0 = Instant::now();
    let nonce = nonce_for(&auth, NOW, client());
    let guess = Request::legacy("alice", &nonce, key(MD5, "alice", "guess"));
    for _ in 0..10 {
        assert_eq!(
            run(&mut auth, t0, NOW, client(), &guess),
            Err(AuthRejection::WrongCredentials)
        );
    }
    let t = t0 + Duration::from_secs(59);
    let rejection = run(&mut auth, t, NOW + 59, client(), &guess).unwrap_err();
    assert_eq!(rejection, AuthRejection::RateLimited);
    assert_eq!(rejection.error_code(), None, "dropped silently");
    assert!(!rejection.needs_challenge());
    assert!(auth.is_locked_out(t, client()));
    // Another source is not affected.
    let other = addr("198.51.100.8:40000");
    let other_nonce = nonce_for(&auth, NOW, other);
    let other_guess = Request::legacy("alice", &other_nonce, key(MD5, "alice", "guess"));
    assert_eq!(
        run(&mut auth, t, NOW + 59, other, &other_guess),
        Err(AuthRejection::WrongCredentials)
    );

    let t = t0 + Duration::from_secs(60);
    assert!(!auth.is_locked_out(t, client()));
    assert_eq!(
        run(&mut auth, t, NOW + 60, client(), &guess),
        Err(AuthRejection::WrongCredentials)
    );
    assert_eq!(auth.stats().rate_limited, 1);
}

// The limiter costs the attacker, not the victim: during a lockout caused by someone else's
// failures from the same address (a shared NAT, or an attacker that can receive there), a
// request whose MESSAGE-INTEGRITY verifies is served, and a client without credentials yet
// still gets its 401 challenge (RFC 8489 §9.2.4; the core caps it with the source's budget).
#[test]
fn a_locked_out_source_is_still_served_with_valid_credentials() {
    let mut auth = Authenticator::new(config());
    let t0 = Instant::now();
    let attacker = addr("198.51.100.7:40000");
    let nonce = nonce_for(&auth, NOW, attacker);
    let guess = Request::legacy("alice", &nonce, key(MD5, "alice", "guess"));
    for _ in 0..11 {
        run(&mut auth, t0, NOW, attacker, &guess).unwrap_err();
    }
    assert!(auth.is_locked_out(t0, attacker));

    let victim = addr("198.51.100.7:50000");
    assert_eq!(
        run(&mut auth, t0, NOW, victim, &Request::first()),
        Err(AuthRejection::Unauthenticated)
    );
    let victim_nonce = nonce_for(&auth, NOW, victim);
    let bob = Request::legacy("bob", &victim_nonce, key(MD5, "bob", "bob-password"));
    let ok = run(&mut auth, t0, NOW, victim, &bob).unwrap();
    assert_eq!(ok.username, "bob");
    // The attacker's own failing attempts stay dropped.
    assert_eq!(
        run(&mut auth, t0, NOW, attacker, &guess),
        Err(AuthRejection::RateLimited)
    );
}

// One limit per source for the whole server: authenticators of several workers sharing
// their limits count failures together, and the lockout comes at exactly the limit.
#[test]
fn workers_sharing_limits_count_failures_once() {
    let config = config();
    let limits = SharedLimits::new(&config, [1; 16]);
    let mut workers: Vec<Authenticator> = (0..3)
        .map(|_| Authenticator::with_limits(config.clone(), limits.clone()))
        .collect();
    let t0 = Instant::now();
    let mut answered = 0;
    for i in 0..30u16 {
        // Each failure from another port of the same IP, on another worker.
        let source = SocketAddr::new(client().ip(), 40_000 + i);
        let worker = &mut workers[usize::from(i) % 3];
        let nonce = nonce_for(worker, NOW, source);
        let guess = Request::legacy("alice", &nonce, key(MD5, "alice", "guess"));
        match run(worker, t0, NOW, source, &guess) {
            Err(AuthRejection::WrongCredentials) => answered += 1,
            Err(AuthRejection::RateLimited) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        answered, 10,
        "exactly `failures_allowed` failures answered in all"
    );
}

// Stale nonces are not failures (see the module doc: counting them would let a spoofer lock
// out a victim address), so a flood of them does not lock out the source.
#[test]
fn stale_nonces_do_not_count_towards_the_limit() {
    let mut auth = Authenticator::new(config());
    let t0 = Instant::now();
    for _ in 0..50 {
        let forged = Request::legacy("alice", "obMatJos2wAAAforged", alice_md5());
        assert_eq!(
            run(&mut auth, t0, NOW, client(), &forged),
            Err(AuthRejection::StaleNonce)
        );
    }
    let nonce = nonce_for(&auth, NOW, client());
    assert!(run(
        &mut auth,
        t0,
        NOW,
        client(),
        &Request::legacy("alice", &nonce, alice_md5())
    )
    .is_ok());
}

// The failure table has a fixed capacity: 100 000 failing sources never make it grow past it.
// (Each source fails once, so none is limited: a new source taking over a slot forgets the
// old one, it never mixes their counts.)
#[test]
fn failure_table_stays_within_its_bound() {
    let mut config = config();
    config.rate_limit_table_size = 1024;
    let mut auth = Authenticator::new(config);
    let t0 = Instant::now();
    let wrong = key(MD5, "alice", "guess");
    for i in 0..100_000u32 {
        let [_, b, c, d] = i.to_be_bytes();
        let source = SocketAddr::from(([10, b, c, d], 50_000));
        let nonce = nonce_for(&auth, NOW, source);
        let t = t0 + Duration::from_micros(u64::from(i));
        assert_eq!(
            run(
                &mut auth,
                t,
                NOW,
                source,
                &Request::legacy("alice", &nonce, wrong)
            ),
            Err(AuthRejection::WrongCredentials)
        );
        assert!(auth.tracked_sources() <= 1024);
    }
    // 100 000 sources hashed into 1024 slots fill them all.
    assert_eq!(auth.tracked_sources(), 1024);
}

// RFC 8489 §9.2: "Only the server needs to know about the internal structure of the
// cookie" — a restarted node, or a second one sharing the secret, accepts the nonce; a node
// with another secret answers 438.
#[test]
fn nonces_work_across_instances_sharing_the_secret() {
    let first = Authenticator::new(config());
    let nonce = nonce_for(&first, NOW, client());
    let request = Request::legacy("alice", &nonce, alice_md5());

    let mut second = Authenticator::new(config());
    assert!(run(&mut second, Instant::now(), NOW + 5, client(), &request).is_ok());

    let mut other = config();
    other.nonce_secret = [0x43; 32];
    let mut stranger = Authenticator::new(other);
    assert_eq!(
        run(&mut stranger, Instant::now(), NOW + 5, client(), &request),
        Err(AuthRejection::StaleNonce)
    );
}

// Users are replaced at runtime (SQLite reload): new ones work at once, removed ones fail.
#[test]
fn set_users_replaces_the_static_users() {
    let mut auth = Authenticator::new(config());
    let nonce = nonce_for(&auth, NOW, client());
    auth.set_users(vec![StaticUser::from_password("carol", REALM, "carol-pw")]);
    let carol = Request::legacy("carol", &nonce, key(MD5, "carol", "carol-pw"));
    assert!(run(&mut auth, Instant::now(), NOW, client(), &carol).is_ok());
    assert_eq!(
        run(
            &mut auth,
            Instant::now(),
            NOW,
            client(),
            &Request::legacy("alice", &nonce, alice_md5())
        ),
        Err(AuthRejection::WrongCredentials)
    );
}

// The challenge fits a response buffer of ordinary size and a full datagram's header.
#[test]
fn challenge_is_small() {
    let auth = Authenticator::new(config());
    let response = error_response(&auth, NOW, client(), AuthRejection::StaleNonce);
    assert!(response.len() < 160, "{}", response.len());
    assert!(response.len() > HEADER_LEN);
}

// The per-request path allocates only the returned username: decoding, nonce checks, key
// lookups, REST key derivation, the challenge and refusals allocate nothing.
#[test]
fn success_allocates_only_the_username() {
    let mut auth = Authenticator::new(rest_config(&["new-secret", "old-secret"]));
    let t0 = Instant::now();
    let nonce = nonce_for(&auth, NOW, client());
    let rest_name = rest::username(NOW + 3600, Some("gina"));
    let sha_key = key(SHA256, "alice", "alice-password");
    let accepted = [
        Request::legacy("alice", &nonce, alice_md5()).encode(),
        Request::modern("alice", &nonce, sha_key).encode(),
        rest_request(&rest_name, &nonce, "old-secret").encode(),
    ];
    let refused = [
        Request::first().encode(),
        Request::legacy("alice", "obMatJos2wAAAforged", alice_md5()).encode(),
        Request::legacy("alice", &nonce, key(MD5, "alice", "guess")).encode(),
    ];
    // The first failure creates the source's entry in the failure table; later ones do not.
    let guess = Message::decode(&refused[2]).unwrap();
    auth.authenticate(t0, NOW, client(), UDP, &guess)
        .unwrap_err();

    for bytes in &accepted {
        let message = Message::decode(bytes).unwrap();
        let mut result = None;
        let info = allocation_counter::measure(|| {
            result = Some(auth.authenticate(t0, NOW, client(), UDP, &message));
        });
        let ok = result.unwrap().unwrap();
        assert_eq!(info.count_total, 1, "{}", ok.username);
    }
    for bytes in &refused {
        let message = Message::decode(bytes).unwrap();
        let info = allocation_counter::measure(|| {
            auth.authenticate(t0, NOW, client(), UDP, &message)
                .unwrap_err();
        });
        assert_eq!(info.count_total, 0);
    }
    let mut buf = [0u8; 512];
    let info = allocation_counter::measure(|| {
        let request = Message::decode(&refused[0]).unwrap();
        let mut w = MessageWriter::response(&mut buf, request.header(), Class::Error).unwrap();
        auth.add_challenge(NOW, client(), UDP, &mut w).unwrap();
    });
    assert_eq!(info.count_total, 0);
}
