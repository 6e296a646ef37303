//! How a client transaction fails.

use std::net::SocketAddr;

use stun::{AttributeError, AttributeType};

/// Why a transaction ended without a usable success response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransactionError {
    /// Every request went unanswered (RFC 8489 §6.2.1), or the caller's deadline passed.
    #[error("no answer after {sends} request(s)")]
    Timeout {
        /// How many requests were sent.
        sends: u32,
    },
    /// The server answered with an error response (RFC 8489 §6.3.4).
    #[error("server answered {code} {reason}")]
    ErrorResponse {
        /// The ERROR-CODE number, 300 to 699.
        code: u16,
        /// The reason phrase, as sent (may be empty).
        reason: String,
        /// UNKNOWN-ATTRIBUTES, listed with a 420.
        unknown_attributes: Vec<AttributeType>,
        /// Where the answer came from.
        from: SocketAddr,
    },
    /// A response with our transaction id that cannot be used; the transaction has failed
    /// (RFC 8489 §6.3.3, §6.3.4).
    #[error("unusable response from {from}: {problem}")]
    Malformed {
        /// Where the answer came from.
        from: SocketAddr,
        /// What is wrong with it.
        problem: MalformedResponse,
    },
}

/// What makes a response with our transaction id unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MalformedResponse {
    /// A success response without XOR-MAPPED-ADDRESS or MAPPED-ADDRESS.
    #[error("no XOR-MAPPED-ADDRESS or MAPPED-ADDRESS")]
    NoMappedAddress,
    /// An error response without ERROR-CODE.
    #[error("error response without ERROR-CODE")]
    NoErrorCode,
    /// The mapped address or the error code has a bad value.
    #[error("{0}")]
    Attribute(AttributeError),
    /// A comprehension-required attribute we do not know (RFC 8489 §6.3.3).
    #[error("unknown comprehension-required attribute {0}")]
    UnknownAttribute(AttributeType),
}
