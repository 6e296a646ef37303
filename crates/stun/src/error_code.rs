//! The error codes Turnpike sends, with their RFC reason phrases, in one place
//! (RFC 8489 §14.8, RFC 8656 §19, RFC 6062 §6.3).

use crate::attributes::ErrorCode;

macro_rules! codes {
    ($( $(#[$doc:meta])* $name:ident = $code:literal, $reason:literal; )*) => {
        $( $(#[$doc])* pub const $name: ErrorCode<'static> = ErrorCode { code: $code, reason: $reason }; )*

        /// The standard reason phrase for `code`, if it is one Turnpike knows.
        pub fn reason(code: u16) -> Option<&'static str> {
            match code {
                $( $code => Some($reason), )*
                _ => None,
            }
        }
    };
}

codes! {
    /// 300: the client should contact ALTERNATE-SERVER.
    TRY_ALTERNATE = 300, "Try Alternate";
    /// 400: malformed request.
    BAD_REQUEST = 400, "Bad Request";
    /// 401: missing or wrong credentials.
    UNAUTHORIZED = 401, "Unauthorized";
    /// 403: request not allowed (RFC 8656: denied peer address).
    FORBIDDEN = 403, "Forbidden";
    /// 405: mobility forbidden (RFC 8016).
    MOBILITY_FORBIDDEN = 405, "Mobility Forbidden";
    /// 420: unknown comprehension-required attribute.
    UNKNOWN_ATTRIBUTE = 420, "Unknown Attribute";
    /// 437: allocation mismatch (RFC 8656).
    ALLOCATION_MISMATCH = 437, "Allocation Mismatch";
    /// 438: stale nonce.
    STALE_NONCE = 438, "Stale Nonce";
    /// 440: address family not supported (RFC 8656).
    ADDRESS_FAMILY_NOT_SUPPORTED = 440, "Address Family not Supported";
    /// 441: wrong credentials for this allocation (RFC 8656).
    WRONG_CREDENTIALS = 441, "Wrong Credentials";
    /// 442: unsupported transport protocol (RFC 8656).
    UNSUPPORTED_TRANSPORT_PROTOCOL = 442, "Unsupported Transport Protocol";
    /// 443: peer address family mismatch (RFC 8656).
    PEER_ADDRESS_FAMILY_MISMATCH = 443, "Peer Address Family Mismatch";
    /// 446: connection already exists (RFC 6062).
    CONNECTION_ALREADY_EXISTS = 446, "Connection Already Exists";
    /// 447: connection timeout or failure (RFC 6062).
    CONNECTION_TIMEOUT_OR_FAILURE = 447, "Connection Timeout or Failure";
    /// 486: allocation quota reached (RFC 8656).
    ALLOCATION_QUOTA_REACHED = 486, "Allocation Quota Reached";
    /// 487: ICE role conflict (RFC 8445).
    ROLE_CONFLICT = 487, "Role Conflict";
    /// 500: server error.
    SERVER_ERROR = 500, "Server Error";
    /// 508: insufficient capacity (RFC 8656).
    INSUFFICIENT_CAPACITY = 508, "Insufficient Capacity";
}
