//! Answering TURN requests that did not authenticate (RFC 8489 §9.2.4), without making the
//! server an amplifier for spoofed UDP (RFC 8489 §16.1.2; see [`crate::budget`]).
//!
//! Over UDP, where a source address can be forged:
//! - requests no legitimate client sends without credentials are dropped silently instead
//!   of drawing a 401: an Allocate without REQUESTED-TRANSPORT (RFC 8656 §7.1: it "MUST"
//!   carry one, so the request is malformed whatever its credentials; §7.2 step 3 would
//!   answer 400 after authenticating it, which an unauthenticated sender never gets to), and
//!   a Refresh, CreatePermission or ChannelBind on a 5-tuple with no allocation (a client
//!   only sends those on its allocation, after the Allocate gave it a nonce; authenticated,
//!   the request would get 437 anyway);
//! - a 401 or 438 carries no reason phrase when it is larger than the request (the phrase is
//!   for diagnostics, RFC 8489 §14.8), as the Binding service does;
//! - what is still larger than the request is charged to the source's
//!   [`crate::budget::ResponseBudget`], and dropped when the budget is spent.
//!
//! Over TCP and TLS the handshake proved the address: every answer goes, as RFC 8489 says.

use std::time::Instant;

use stun::attributes::{ErrorCode, RequestedTransport, Software};
use stun::{Class, Message, Method};

use super::five_tuple::{ClientTransport, FiveTuple};
use super::respond::respond;
use super::server::TurnServer;
use super::stats::DropCause;
use crate::auth::{AuthRejection, Challenge};

impl TurnServer {
    /// False for an unauthenticated request over UDP that no legitimate client sends: drop
    /// it without an answer (see the module doc).
    pub(super) fn worth_a_challenge(&self, five_tuple: &FiveTuple, message: &Message<'_>) -> bool {
        if five_tuple.transport != ClientTransport::Udp || message.has_integrity() {
            return true;
        }
        if message.header().message_type.method == Method::ALLOCATE {
            message.contains::<RequestedTransport>()
        } else {
            self.allocation_id(five_tuple).is_some()
        }
    }

    /// Answers a request that failed authentication: 400, or 401/438 with a fresh challenge
    /// (RFC 8489 §9.2.4); nothing for a failure over the source's allowance, nor, over UDP,
    /// for an answer larger than the request that the source's budget cannot pay for.
    pub(super) fn reject(
        &mut self,
        now: Instant,
        unix_now: u64,
        five_tuple: &FiveTuple,
        message: &Message<'_>,
        rejection: AuthRejection,
        out: &mut [u8],
    ) -> Option<usize> {
        let Some(code) = rejection.error_code() else {
            self.stats.drop_packet(DropCause::AuthRateLimit);
            return None;
        };
        let client = five_tuple.client.get();
        let challenge = rejection
            .needs_challenge()
            .then(|| self.auth.challenge(unix_now, client, five_tuple.transport));
        let request_len = message.as_bytes().len();
        let mut len = self.write_rejection(message, code, challenge, out)?;
        if five_tuple.transport != ClientTransport::Udp {
            return Some(len);
        }
        if len > request_len {
            let bare = ErrorCode { reason: "", ..code };
            len = self.write_rejection(message, bare, challenge, out)?;
        }
        if self.auth.budget().allow(now, client.ip(), request_len, len) {
            Some(len)
        } else {
            self.auth.count_over_budget();
            self.stats.drop_packet(DropCause::AmplificationBudget);
            None
        }
    }

    fn write_rejection(
        &self,
        message: &Message<'_>,
        code: ErrorCode<'_>,
        challenge: Option<Challenge<'_>>,
        out: &mut [u8],
    ) -> Option<usize> {
        respond(message, Class::Error, None, out, |w| {
            w.add(&code)?;
            if let Some(challenge) = &challenge {
                challenge.add_to(w)?;
            }
            if let Some(software) = &self.config.software {
                w.add(&Software(software))?;
            }
            Ok(())
        })
    }
}
