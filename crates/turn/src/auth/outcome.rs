//! What authentication decides: who the request is from, or which answer it gets. The one
//! place where refusals map to error codes.

use stun::attributes::ErrorCode;
use stun::{error_code, LongTermKey};

/// Which integrity attribute authenticated a request; the response carries the same one
/// (RFC 8489 §9.2.4, last paragraph; §9.2.3.2: the client chose after our answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IntegrityKind {
    /// MESSAGE-INTEGRITY (HMAC-SHA1, RFC 8489 §14.5).
    Sha1,
    /// MESSAGE-INTEGRITY-SHA256 (RFC 8489 §14.6).
    Sha256,
}

/// An authenticated request: the user, and what to sign the response with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// The USERNAME (or, for USERHASH, the name it resolved to).
    pub username: String,
    /// The key that verified the request; the response is signed with it.
    pub key: LongTermKey,
    /// The integrity attribute the request used; the response uses the same.
    pub integrity: IntegrityKind,
}

/// Why a request is not authenticated, and so what answer it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthRejection {
    /// No MESSAGE-INTEGRITY(-SHA256): the first request of every client (RFC 8489
    /// §9.2.3.1). 401 with a challenge; not a failure.
    Unauthenticated,
    /// Integrity present but USERNAME/USERHASH, REALM or NONCE missing or malformed, a
    /// PASSWORD-ALGORITHMS mismatch, or a malformed integrity attribute (RFC 8489 §9.2.4):
    /// 400 without a challenge.
    BadRequest,
    /// The nonce is not one of ours, is bound to another transport address or has expired: 438
    /// with a fresh nonce (RFC 8489 §9.2.4). Not a failure (see the module doc).
    StaleNonce,
    /// Unknown user, wrong password, expired REST credentials, realm mismatch or integrity
    /// mismatch: 401 with a challenge (RFC 8489 §9.2.4). Counted as a failure.
    WrongCredentials,
    /// A failed authentication over the source's allowance for the current window: drop
    /// silently, no answer (no 401, so no password-guessing oracle). Requests that
    /// authenticate are still served during the window.
    RateLimited,
}

impl AuthRejection {
    /// The ERROR-CODE of the answer; `None` when the request is dropped without one.
    pub fn error_code(&self) -> Option<ErrorCode<'static>> {
        match self {
            AuthRejection::Unauthenticated | AuthRejection::WrongCredentials => {
                Some(error_code::UNAUTHORIZED)
            }
            AuthRejection::BadRequest => Some(error_code::BAD_REQUEST),
            AuthRejection::StaleNonce => Some(error_code::STALE_NONCE),
            AuthRejection::RateLimited => None,
        }
    }

    /// True when the answer carries REALM, NONCE and PASSWORD-ALGORITHMS (written by
    /// [`crate::auth::Authenticator::add_challenge`]): 401 and 438 (RFC 8489 §9.2.4).
    pub fn needs_challenge(&self) -> bool {
        matches!(
            self,
            AuthRejection::Unauthenticated
                | AuthRejection::StaleNonce
                | AuthRejection::WrongCredentials
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 8489 §9.2.4: 401 and 438 carry REALM and NONCE; 400 does not.
    #[test]
    fn each_rejection_maps_to_one_answer() {
        let cases = [
            (AuthRejection::Unauthenticated, Some(401), true),
            (AuthRejection::BadRequest, Some(400), false),
            (AuthRejection::StaleNonce, Some(438), true),
            (AuthRejection::WrongCredentials, Some(401), true),
            (AuthRejection::RateLimited, None, false),
        ];
        for (rejection, code, challenge) in cases {
            assert_eq!(
                rejection.error_code().map(|c| c.code),
                code,
                "{rejection:?}"
            );
            assert_eq!(rejection.needs_challenge(), challenge, "{rejection:?}");
        }
    }
}
