//! Writing TURN responses: the success or error answer to a request, signed with the key
//! that authenticated it (RFC 8489 §9.2.4: same integrity attribute as the request), with
//! FINGERPRINT when the request had one.

use stun::attributes::ErrorCode;

use super::refusal::Refusal;
use stun::{Class, EncodeError, Message, MessageWriter};

use crate::auth::{Authenticated, IntegrityKind};

/// Writes a response to `request` into `out`: `body` adds the method's attributes, then
/// integrity (when authenticated) and FINGERPRINT close it. Returns the length.
pub fn respond(
    request: &Message<'_>,
    class: Class,
    auth: Option<&Authenticated>,
    out: &mut [u8],
    body: impl FnOnce(&mut MessageWriter<'_>) -> Result<(), EncodeError>,
) -> Option<usize> {
    let mut w = MessageWriter::response(out, request.header(), class).ok()?;
    body(&mut w).ok()?;
    if let Some(auth) = auth {
        match auth.integrity {
            IntegrityKind::Sha256 => w.add_message_integrity_sha256(auth.key.as_bytes()).ok()?,
            _ => w.add_message_integrity(auth.key.as_bytes()).ok()?,
        }
    }
    if request.has_fingerprint() {
        w.add_fingerprint().ok()?;
    }
    Some(w.finish())
}

/// Writes an error response with `code` (signed when the request was authenticated).
pub fn respond_error(
    request: &Message<'_>,
    code: ErrorCode<'static>,
    auth: Option<&Authenticated>,
    out: &mut [u8],
) -> Option<usize> {
    respond(request, Class::Error, auth, out, |w| w.add(&code))
}

/// The answer to a request whose processing gave `result`: an empty success, or the error
/// its refusal maps to.
pub fn respond_result(
    request: &Message<'_>,
    result: Result<(), Refusal>,
    auth: Option<&Authenticated>,
    out: &mut [u8],
) -> Option<usize> {
    match result {
        Ok(()) => respond(request, Class::Success, auth, out, |_| Ok(())),
        Err(refusal) => respond_error(request, refusal.code(), auth, out),
    }
}
