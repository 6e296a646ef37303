//! A Binding success response, read into what a client wants to know.

use std::net::SocketAddr;
use std::time::Duration;

use stun::attributes::{
    ChangedAddress, ErrorCode, MappedAddress, OtherAddress, ResponseOrigin, Software,
    SourceAddress, UnknownAttributes, XorMappedAddress,
};
use stun::{Class, Message};

use crate::error::{MalformedResponse, TransactionError};

/// What a Binding success response told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingResponse {
    /// Our address as the server saw it: XOR-MAPPED-ADDRESS, or MAPPED-ADDRESS from servers
    /// that send only that (RFC 3489, RFC 8489 §14.1).
    pub mapped: SocketAddr,
    /// Where the server sent the answer from: RESPONSE-ORIGIN (RFC 5780 §7.3), or
    /// SOURCE-ADDRESS from RFC 3489 servers.
    pub response_origin: Option<SocketAddr>,
    /// The server's alternate address: OTHER-ADDRESS (RFC 5780 §7.4), or CHANGED-ADDRESS from
    /// RFC 3489 servers. Present when the server supports behaviour discovery.
    pub other_address: Option<SocketAddr>,
    /// SOFTWARE, if the server sent it.
    pub software: Option<String>,
    /// Where the datagram came from (with CHANGE-REQUEST, not where the request went).
    pub from: SocketAddr,
    /// Time from the most recent send to the answer. After a retransmission the answer may
    /// belong to an earlier send (Karn's ambiguity, RFC 6298 §3), so this can understate the
    /// RTT; check `sends`.
    pub rtt: Duration,
    /// How many requests had been sent when the answer came; 1 means no retransmission, and
    /// `rtt` is exact.
    pub sends: u32,
}

/// Reads a response to our request: success, error, or unusable. Optional attributes with
/// bad values (RESPONSE-ORIGIN, OTHER-ADDRESS, SOFTWARE, …) are ignored, not fatal.
pub(crate) fn interpret(
    message: &Message<'_>,
    from: SocketAddr,
    rtt: Duration,
    sends: u32,
) -> Result<BindingResponse, TransactionError> {
    let malformed = |problem| TransactionError::Malformed { from, problem };
    // RFC 8489 §6.3.3, §6.3.4: unknown comprehension-required attributes fail the transaction.
    if let Some(unknown) = message.unknown_comprehension_required().next() {
        return Err(malformed(MalformedResponse::UnknownAttribute(unknown)));
    }
    if message.header().message_type.class == Class::Error {
        return Err(error_response(message, from));
    }
    let mapped = match message.get::<XorMappedAddress>() {
        Some(xor) => xor.map(|a| a.0),
        None => match message.get::<MappedAddress>() {
            Some(plain) => plain.map(|a| a.0),
            None => return Err(malformed(MalformedResponse::NoMappedAddress)),
        },
    }
    .map_err(|e| malformed(MalformedResponse::Attribute(e)))?;
    let ok = |found: Option<Result<SocketAddr, _>>| found.and_then(Result::ok);
    let response_origin = ok(message.get::<ResponseOrigin>().map(|r| r.map(|a| a.0)))
        .or_else(|| ok(message.get::<SourceAddress>().map(|r| r.map(|a| a.0))));
    let other_address = ok(message.get::<OtherAddress>().map(|r| r.map(|a| a.0)))
        .or_else(|| ok(message.get::<ChangedAddress>().map(|r| r.map(|a| a.0))));
    let software = message
        .get::<Software<'_>>()
        .and_then(Result::ok)
        .map(|s| s.0.to_owned());
    Ok(BindingResponse {
        mapped,
        response_origin,
        other_address,
        software,
        from,
        rtt,
        sends,
    })
}

/// RFC 8489 §6.3.4: an error response without ERROR-CODE just fails the transaction.
fn error_response(message: &Message<'_>, from: SocketAddr) -> TransactionError {
    let code = match message.get::<ErrorCode<'_>>() {
        Some(Ok(code)) => code,
        Some(Err(e)) => {
            return TransactionError::Malformed {
                from,
                problem: MalformedResponse::Attribute(e),
            }
        }
        None => {
            return TransactionError::Malformed {
                from,
                problem: MalformedResponse::NoErrorCode,
            }
        }
    };
    let unknown_attributes = match message.get::<UnknownAttributes<'_>>() {
        Some(Ok(list)) => list.iter().collect(),
        _ => Vec::new(),
    };
    TransactionError::ErrorResponse {
        code: code.code,
        reason: code.reason.to_owned(),
        unknown_attributes,
        from,
    }
}
