//! Draining: a server about to stop refuses new allocations while it keeps serving the ones it
//! has (Refresh, CreatePermission, ChannelBind and the data path are unchanged), so that an
//! operator can take it out of service without cutting calls.
//!
//! A refused Allocate gets 300 (Try Alternate) with ALTERNATE-SERVER when an alternate server
//! of the client's address family is known (RFC 8656 §7.2 step 11, RFC 8489 §10), else 508
//! (Insufficient Capacity), which tells the client to try another server of its list (RFC 8656
//! §7.2). The answer is signed like every other answer to an authenticated request.

use std::net::SocketAddr;

use stun::attributes::AlternateServer;
use stun::error_code::{INSUFFICIENT_CAPACITY, TRY_ALTERNATE};
use stun::{Class, Message};

use super::five_tuple::FiveTuple;
use super::respond::{respond, respond_error};
use super::server::TurnServer;
use crate::auth::Authenticated;

/// The draining state of one core.
#[derive(Debug, Clone, Default)]
pub struct Drain {
    /// Refusing new allocations.
    on: bool,
    /// The first alternate server of each family: IPv4, IPv6.
    alternates: [Option<SocketAddr>; 2],
}

impl Drain {
    /// The alternates for a client at `client`: its own family first (RFC 8489 §10: the first
    /// ALTERNATE-SERVER MUST be of the family of the request's source), then the other family
    /// (SHOULD). `None` when there is none of the client's family.
    fn alternates_for(&self, client: SocketAddr) -> Option<(SocketAddr, Option<SocketAddr>)> {
        let [v4, v6] = self.alternates;
        let (same, other) = if client.is_ipv4() { (v4, v6) } else { (v6, v4) };
        same.map(|same| (same, other))
    }
}

impl TurnServer {
    /// Starts draining (or updates the alternate servers of a drain under way): from now on
    /// every new Allocate is refused, with 300 and ALTERNATE-SERVER (the first of `alternates`
    /// of the client's family) or with 508 when there is none of that family. Existing
    /// allocations are served as before.
    pub fn start_draining(&mut self, alternates: &[SocketAddr]) {
        let first = |v4: bool| alternates.iter().copied().find(|a| a.is_ipv4() == v4);
        self.drain = Drain {
            on: true,
            alternates: [first(true), first(false)],
        };
    }

    /// True once [`TurnServer::start_draining`] was called.
    pub fn is_draining(&self) -> bool {
        self.drain.on
    }

    /// While draining, the refusal of a new Allocate from `five_tuple`, written into `out`
    /// (`Some(None)`: refused, but the answer did not fit); `None` when not draining.
    pub(super) fn refuse_while_draining(
        &self,
        five_tuple: &FiveTuple,
        message: &Message<'_>,
        auth: &Authenticated,
        out: &mut [u8],
    ) -> Option<Option<usize>> {
        if !self.drain.on {
            return None;
        }
        let Some((same, other)) = self.drain.alternates_for(five_tuple.client) else {
            return Some(respond_error(
                message,
                INSUFFICIENT_CAPACITY,
                Some(auth),
                out,
            ));
        };
        Some(respond(message, Class::Error, Some(auth), out, |w| {
            w.add(&TRY_ALTERNATE)?;
            w.add(&AlternateServer(same))?;
            match other {
                Some(other) => w.add(&AlternateServer(other)),
                None => Ok(()),
            }
        }))
    }
}
