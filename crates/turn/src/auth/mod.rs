//! Long-term credential authentication for TURN requests (RFC 8489 §9.2, RFC 8656 §5).
//!
//! [`Authenticator::authenticate`] takes one decoded request and returns who sent it
//! ([`Authenticated`]: username, the key that verified it, which integrity attribute to sign
//! the response with) or why not ([`AuthRejection`], which maps to exactly one answer).
//! [`Authenticator::add_challenge`] writes REALM, NONCE and PASSWORD-ALGORITHMS into 401 and
//! 438 answers. Sans-IO: no clock (a monotonic `now` and wall-clock `unix_now` are passed
//! in), no randomness, no I/O; an unauthenticated packet creates no state.
//!
//! ## The procedure (RFC 8489 §9.2.4), in order
//! 1. **No MESSAGE-INTEGRITY(-SHA256)** → 401 with a challenge: REALM, a fresh NONCE and
//!    PASSWORD-ALGORITHMS `[SHA256, MD5]` (§9.2.4 first bullet; the first request of every
//!    client, §9.2.3.1, so not a failure). Over UDP the core sends it only within the
//!    source's amplification budget ([`crate::budget`]), and drops outright the requests no
//!    client sends unauthenticated ([`crate::relay`]'s `challenge` module).
//! 2. **USERNAME or USERHASH, REALM or NONCE missing** (or malformed, §6.3.1) → 400.
//! 3. **PASSWORD-ALGORITHMS** (§9.2.4 third bullet; our nonce cookie has the "Password
//!    algorithms" bit): neither it nor PASSWORD-ALGORITHM → MD5 key (every RFC 5389/5766
//!    client); otherwise both present, the list equal to the one we send and the choice in
//!    it, else 400.
//! 4. **Nonce** (stateless, [`nonce`]): our cookie, our MAC over issue time and the client's
//!    transport address (IP, port, UDP/TCP), not older than `nonce_lifetime`, not from the
//!    future → else 438 with a fresh nonce. A request replayed from another port gets 438.
//! 5. **Credentials**: REALM equal to ours; the user by USERHASH (static users, §14.4), by
//!    USERNAME (static users first), else as a TURN REST username ([`rest`]); the key for
//!    the negotiated algorithm (§9.2.2, §18.5.1); MESSAGE-INTEGRITY-SHA256 checked if
//!    present, else MESSAGE-INTEGRITY (§9.2.4 fifth bullet), in constant time. A match is
//!    served, **whatever the source's failure count**. A miss is counted against the source
//!    (IPv4 address, IPv6 /64) in the [`rate_limit`] table all workers share: within the
//!    first `failures_allowed` of the window → 401 with a challenge; beyond →
//!    [`AuthRejection::RateLimited`], dropped silently (no 401: no password-guessing
//!    oracle).
//!
//! The limiter thus costs the attacker, not the victim: during a lockout, others behind the
//! same address (a NAT), or a victim whose address an attacker can receive at, keep getting
//! their challenges (within the budget) and are served once their integrity verifies. Only
//! the failing attempts are throttled.
//!
//! The response to an authenticated request is signed with [`Authenticated::key`] using the
//! attribute of [`Authenticated::integrity`] (§9.2.4, last paragraph).
//!
//! ## Deviations, and why
//! - **The nonce is checked before the credentials** (§9.2.4 lists it last). A request with
//!   both a stale nonce and a wrong password gets 438 instead of 401; the client retries with
//!   the new nonce (§9.2.5) and then gets the 401. In exchange, (a) a forged or stale nonce
//!   costs one HMAC and nothing else — no user lookup, no REST HMACs, no key derivation —
//!   and (b) only a request with a nonce valid for its transport address can count as a
//!   failure, and such a nonce is only obtained by receiving our challenge at that address:
//!   an off-path attacker spoofing a victim's address cannot push it over the limit.
//! - **Stale and forged nonces are not counted as failures.** Counting them would hand
//!   exactly that lockout lever to spoofers, and would punish honest clients after a
//!   restart with a new random secret or an IP change. A forged-nonce flood is instead made
//!   cheap: a length check, a base64 decode and one HMAC-SHA256, no allocation, no state;
//!   its 438 answers are charged to the source's amplification budget over UDP.
//!   [`AuthStats`] exposes `stale_nonce` so a flood shows in metrics.
//! - **"Username anonymity" is announced only without REST secrets**: see
//!   [`Authenticator::new`].
//! - **REST expiry is enforced on Allocate only**, as the TURN REST draft says: see
//!   [`rest`] and the note on the check in the authenticator.

pub mod algorithms;
pub mod authenticator;
pub mod config;
pub mod credentials;
pub mod limits;
pub mod nonce;
pub mod outcome;
pub mod rate_limit;
pub mod rest;

pub use authenticator::{AuthStats, Authenticator, Challenge};
pub use config::{
    AuthConfig, StaticUser, UserKeys, DEFAULT_FAILURES_ALLOWED, DEFAULT_FAILURE_WINDOW,
    DEFAULT_NONCE_LIFETIME, DEFAULT_RATE_LIMIT_TABLE_SIZE,
};
pub use limits::SharedLimits;
pub use outcome::{AuthRejection, Authenticated, IntegrityKind};
