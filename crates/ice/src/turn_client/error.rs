//! How a TURN request fails.

/// Why an Allocate (or a later request) ended without a usable success response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TurnError {
    /// Every request went unanswered (RFC 8489 §6.2.1).
    #[error("no answer after {sends} request(s)")]
    Timeout {
        /// How many requests were sent.
        sends: u32,
    },
    /// Answers came, but none carried a valid MESSAGE-INTEGRITY: RFC 8489 §9.2.5 says to
    /// report this instead of a timeout.
    #[error("integrity protection violated: {discarded} forged response(s), no valid one")]
    IntegrityViolated {
        /// How many responses were discarded.
        discarded: u32,
    },
    /// The server answered with an error response (RFC 8489 §6.3.4), e.g. 401 for wrong
    /// credentials, 437, 486, 508.
    #[error("server answered {code} {reason}")]
    ErrorResponse {
        /// The ERROR-CODE number, 300 to 699.
        code: u16,
        /// The reason phrase, as sent (may be empty).
        reason: String,
    },
    /// A response with our transaction id that cannot be used.
    #[error("unusable response: {0}")]
    Malformed(&'static str),
    /// A request could not be encoded (e.g. a username too long for one datagram).
    #[error("request does not fit a datagram: {0}")]
    Encode(stun::EncodeError),
    /// The client was told to deallocate before the allocation succeeded.
    #[error("cancelled")]
    Cancelled,
}

impl TurnError {
    /// The STUN error code, for [`TurnError::ErrorResponse`].
    pub fn code(&self) -> Option<u16> {
        match self {
            TurnError::ErrorResponse { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// True for [`TurnError::Timeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, TurnError::Timeout { .. })
    }
}
