//! Connectivity-check messages: building Binding requests and responses, and validating
//! requests from the peer (RFC 8445 §7.1, §7.2, §7.3; short-term credentials, RFC 8489 §9.1).

use std::net::SocketAddr;

use stun::attributes::{
    ErrorCode, IceControlled, IceControlling, Priority, UseCandidate, Username, XorMappedAddress,
};
use stun::{
    error_code, Class, EncodeError, Header, Message, MessageType, MessageWriter, TransactionId,
};

/// The role a check claims, with its tie-breaker (RFC 8445 §7.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleClaim {
    /// ICE-CONTROLLING (true) or ICE-CONTROLLED (false).
    pub controlling: bool,
    /// The sender's tie-breaker.
    pub tie_breaker: u64,
}

/// What a Binding request of ours carries (RFC 8445 §7.1).
#[derive(Debug, Clone, Copy)]
pub struct CheckRequest<'a> {
    /// The peer's ufrag, first in USERNAME (§7.2.2: "RFRAG:LFRAG").
    pub remote_ufrag: &'a str,
    /// Our ufrag.
    pub local_ufrag: &'a str,
    /// The peer's password: the short-term MESSAGE-INTEGRITY key (§7.2.2).
    pub remote_pwd: &'a str,
    /// PRIORITY: what a peer-reflexive candidate learned from this check would have
    /// (§7.1.1: type preference of prflx, the local preference of the base).
    pub priority: u32,
    /// Our role and tie-breaker.
    pub role: RoleClaim,
    /// USE-CANDIDATE (§7.1.2, controlling agent only).
    pub use_candidate: bool,
}

/// Writes a check request into `buf`; returns its length.
pub fn write_request(
    buf: &mut [u8],
    transaction_id: TransactionId,
    request: &CheckRequest<'_>,
) -> Result<usize, EncodeError> {
    let mut w = MessageWriter::new(buf, MessageType::BINDING_REQUEST, transaction_id)?;
    let mut username =
        String::with_capacity(request.remote_ufrag.len() + 1 + request.local_ufrag.len());
    username.push_str(request.remote_ufrag);
    username.push(':');
    username.push_str(request.local_ufrag);
    w.add(&Username(&username))?;
    w.add(&Priority(request.priority))?;
    if request.role.controlling {
        w.add(&IceControlling(request.role.tie_breaker))?;
        if request.use_candidate {
            w.add(&UseCandidate)?;
        }
    } else {
        w.add(&IceControlled(request.role.tie_breaker))?;
    }
    w.add_message_integrity(request.remote_pwd.as_bytes())?;
    w.add_fingerprint()?;
    Ok(w.finish())
}

/// Writes the success response to a check (§7.3.1: XOR-MAPPED-ADDRESS of the source,
/// MESSAGE-INTEGRITY with our password, FINGERPRINT).
pub fn write_success(
    buf: &mut [u8],
    request: &Header,
    source: SocketAddr,
    local_pwd: &str,
) -> Result<usize, EncodeError> {
    let mut w = MessageWriter::response(buf, request, Class::Success)?;
    w.add(&XorMappedAddress(source))?;
    w.add_message_integrity(local_pwd.as_bytes())?;
    w.add_fingerprint()?;
    Ok(w.finish())
}

/// Writes an error response. 400 and 401 answer requests we could not authenticate, so
/// they carry no MESSAGE-INTEGRITY (RFC 8489 §9.1.3); 487 answers an authenticated one and
/// is signed with our password.
pub fn write_error(
    buf: &mut [u8],
    request: &Header,
    refusal: Refusal,
    local_pwd: &str,
) -> Result<usize, EncodeError> {
    let mut w = MessageWriter::response(buf, request, Class::Error)?;
    w.add(&refusal.error_code())?;
    if refusal == Refusal::RoleConflict {
        w.add_message_integrity(local_pwd.as_bytes())?;
    }
    w.add_fingerprint()?;
    Ok(w.finish())
}

/// Why a check request is refused; the one place that maps refusals to error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 400: MESSAGE-INTEGRITY, USERNAME or PRIORITY missing, or a malformed value
    /// (RFC 8489 §9.1.3, RFC 8445 §7.1.1).
    BadRequest,
    /// 401: USERNAME does not start with our ufrag, or MESSAGE-INTEGRITY does not verify
    /// with our password (RFC 8489 §9.1.3, RFC 8445 §7.3).
    Unauthorized,
    /// 487: role conflict and we keep our role (RFC 8445 §7.3.1.1).
    RoleConflict,
}

impl Refusal {
    fn error_code(self) -> ErrorCode<'static> {
        match self {
            Refusal::BadRequest => error_code::BAD_REQUEST,
            Refusal::Unauthorized => error_code::UNAUTHORIZED,
            Refusal::RoleConflict => ErrorCode {
                code: 487,
                reason: "Role Conflict",
            },
        }
    }
}

/// A check request that passed authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingCheck {
    /// PRIORITY: the priority of the peer-reflexive candidate to learn (§7.3.1.3).
    pub priority: u32,
    /// ICE-CONTROLLING or ICE-CONTROLLED, if present.
    pub role: Option<RoleClaim>,
    /// USE-CANDIDATE present (§7.3.1.5).
    pub use_candidate: bool,
    /// The peer's ufrag, after the colon in USERNAME.
    pub remote_ufrag: String,
}

/// Checks a Binding request against our credentials (RFC 8489 §9.1.3, RFC 8445 §7.3).
/// Only our own ufrag and password are needed, so a request that arrives before the
/// peer's credentials is answered all the same (§7.3).
pub fn validate_request(
    message: &Message<'_>,
    local_ufrag: &str,
    local_pwd: &str,
) -> Result<IncomingCheck, Refusal> {
    if !message.has_integrity() {
        return Err(Refusal::BadRequest);
    }
    let username = match message.get::<Username<'_>>() {
        Some(Ok(u)) => u.0,
        _ => return Err(Refusal::BadRequest),
    };
    let (ours, theirs) = username.split_once(':').ok_or(Refusal::Unauthorized)?;
    if ours != local_ufrag {
        return Err(Refusal::Unauthorized);
    }
    message
        .verify_integrity(local_pwd.as_bytes())
        .map_err(|_| Refusal::Unauthorized)?;
    let priority = match message.get::<Priority>() {
        Some(Ok(p)) if p.0 > 0 => p.0,
        _ => return Err(Refusal::BadRequest),
    };
    let role = match (
        message.get::<IceControlling>(),
        message.get::<IceControlled>(),
    ) {
        (Some(Ok(c)), None) => Some(RoleClaim {
            controlling: true,
            tie_breaker: c.0,
        }),
        (None, Some(Ok(c))) => Some(RoleClaim {
            controlling: false,
            tie_breaker: c.0,
        }),
        (None, None) => None,
        _ => return Err(Refusal::BadRequest),
    };
    let use_candidate = match message.get::<UseCandidate>() {
        Some(Ok(_)) => true,
        Some(Err(_)) => return Err(Refusal::BadRequest),
        None => false,
    };
    Ok(IncomingCheck {
        priority,
        role,
        use_candidate,
        remote_ufrag: theirs.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn request(use_candidate: bool, pwd: &str) -> Vec<u8> {
        let mut buf = [0u8; 200];
        let len = write_request(
            &mut buf,
            TransactionId([4; 12]),
            &CheckRequest {
                remote_ufrag: "them",
                local_ufrag: "us",
                remote_pwd: pwd,
                priority: 1_862_270_975,
                role: RoleClaim {
                    controlling: true,
                    tie_breaker: 77,
                },
                use_candidate,
            },
        )
        .unwrap();
        buf[..len].to_vec()
    }

    // RFC 8445 §7.2.2 and §7.1: USERNAME "RFRAG:LFRAG", PRIORITY, ICE-CONTROLLING, USE-CANDIDATE,
    // MESSAGE-INTEGRITY keyed with the peer's password, FINGERPRINT.
    #[test]
    fn request_round_trip() {
        let bytes = request(true, "theirpassword");
        let message = Message::decode(&bytes).unwrap();
        assert!(message.has_fingerprint());
        let check = validate_request(&message, "them", "theirpassword").unwrap();
        assert_eq!(
            check,
            IncomingCheck {
                priority: 1_862_270_975,
                role: Some(RoleClaim {
                    controlling: true,
                    tie_breaker: 77
                }),
                use_candidate: true,
                remote_ufrag: "us".into(),
            }
        );
        assert_eq!(
            validate_request(&message, "them", "wrong"),
            Err(Refusal::Unauthorized)
        );
        assert_eq!(
            validate_request(&message, "other", "theirpassword"),
            Err(Refusal::Unauthorized)
        );
    }

    // RFC 8489 §9.1.3: a request without MESSAGE-INTEGRITY gets 400.
    #[test]
    fn missing_integrity_is_400() {
        let mut buf = [0u8; 64];
        let mut w = MessageWriter::new(
            &mut buf,
            MessageType::BINDING_REQUEST,
            TransactionId([1; 12]),
        )
        .unwrap();
        w.add(&Username("a:b")).unwrap();
        let len = w.finish();
        let message = Message::decode(&buf[..len]).unwrap();
        assert_eq!(
            validate_request(&message, "a", "p"),
            Err(Refusal::BadRequest)
        );
    }
}
