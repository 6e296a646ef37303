//! Reading a response to one of our requests: authentic or not, challenge, error or
//! success (RFC 8489 §6.3.3, §6.3.4, §9.2.5).

use stun::attributes::ErrorCode;
use stun::{Class, Message};

use super::credentials::Auth;
use super::error::TurnError;

/// What to do with a response whose transaction id is ours.
#[derive(Debug)]
pub(super) enum Verdict {
    /// Discard as if never received: integrity missing or wrong (RFC 8489 §9.2.5);
    /// retransmissions go on.
    Discard,
    /// 401 (Unauthenticated) or 438 (Stale Nonce): answer the challenge with a new
    /// transaction.
    Challenge {
        /// The error code, 401 or 438.
        code: u16,
    },
    /// The request failed.
    Failed(TurnError),
    /// A success response, authentic when the request was.
    Success,
}

/// Classifies `response` to a request that was signed with `auth` (`None`: unsigned).
pub(super) fn classify(response: &Message<'_>, auth: Option<&Auth>) -> Verdict {
    let authentic = auth.is_some_and(|auth| auth.verifies(response));
    // RFC 8489 §9.2.5: responses to a signed request must verify, with one exception: 401
    // and 438 challenges cannot be signed (the server does not trust our key).
    let must_verify = auth.is_some();
    let error = match response.header().message_type.class {
        Class::Error => match response.get::<ErrorCode<'_>>() {
            Some(Ok(code)) => Some(code),
            _ if must_verify && !authentic => return Verdict::Discard,
            _ => return Verdict::Failed(TurnError::Malformed("error response without ERROR-CODE")),
        },
        _ => None,
    };
    if let Some(ErrorCode {
        code: code @ (401 | 438),
        ..
    }) = error
    {
        return Verdict::Challenge { code };
    }
    if must_verify && !authentic {
        // Also §9.2.5: "400 ... without MESSAGE-INTEGRITY ... MUST be discarded".
        return Verdict::Discard;
    }
    if let Some(code) = error {
        return Verdict::Failed(TurnError::ErrorResponse {
            code: code.code,
            reason: code.reason.to_owned(),
        });
    }
    // RFC 8489 §6.3.3: an unknown comprehension-required attribute fails the transaction.
    if response.unknown_comprehension_required().next().is_some() {
        return Verdict::Failed(TurnError::Malformed(
            "unknown comprehension-required attribute",
        ));
    }
    Verdict::Success
}
