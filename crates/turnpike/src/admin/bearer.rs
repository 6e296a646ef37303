//! `Authorization: Bearer TOKEN` for the admin API, compared in constant time (`subtle`) so
//! that response timing does not reveal how much of a guess was right.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq as _;

/// The expected token.
#[derive(Clone)]
pub struct Token(std::sync::Arc<[u8]>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

impl Token {
    /// The token `text`.
    pub fn new(text: &str) -> Token {
        Token(text.as_bytes().into())
    }

    /// True when `header` is `Bearer <this token>` (scheme case-insensitive, RFC 6750 §2.1).
    fn accepts(&self, header: &[u8]) -> bool {
        let Some(given) = header
            .split_at_checked(7)
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case(b"bearer "))
            .map(|(_, token)| token.trim_ascii())
        else {
            return false;
        };
        // `ct_eq` on slices of different lengths is false at once: the length is not secret
        // (the validation rules publish the minimum), the bytes are.
        bool::from(given.ct_eq(&self.0))
    }
}

/// Middleware: 401 with `WWW-Authenticate: Bearer` unless the request carries the token.
pub async fn require(State(token): State<Token>, request: Request, next: Next) -> Response {
    let authorized = request
        .headers()
        .get(header::AUTHORIZATION)
        .is_some_and(|value| token.accepts(value.as_bytes()));
    if !authorized {
        tracing::debug!(path = %request.uri().path(), "admin API: missing or wrong token");
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer realm=\"turnpike admin\"")],
            "missing or wrong bearer token\n",
        )
            .into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_token_is_accepted() {
        let token = Token::new("0123456789abcdef");
        assert!(token.accepts(b"Bearer 0123456789abcdef"));
        assert!(token.accepts(b"bearer 0123456789abcdef "));
        for wrong in [
            &b""[..],
            b"Bearer",
            b"Bearer ",
            b"Bearer 0123456789abcde",
            b"Bearer 0123456789abcdeff",
            b"Basic 0123456789abcdef",
            b"0123456789abcdef",
        ] {
            assert!(!token.accepts(wrong), "{}", String::from_utf8_lossy(wrong));
        }
    }
}
