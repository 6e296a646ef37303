//! Draining: a server about to stop refuses new allocations while it keeps serving the ones it
//! has (Refresh, CreatePermission, ChannelBind and the data path are unchanged), so that an
//! operator can take it out of service without cutting calls.
//!
//! A refused Allocate gets 300 (Try Alternate) with ALTERNATE-SERVER when an alternate server
//! of the client's address family is known (see [`super::alternate`]), else 508 (Insufficient
//! Capacity), which tells the client to try another server of its list (RFC 8656 §7.2). The
//! answer is signed like every other answer to an authenticated request.

use std::net::SocketAddr;

use stun::error_code::INSUFFICIENT_CAPACITY;
use stun::Message;

use super::five_tuple::FiveTuple;
use super::respond::respond_error;
use super::server::TurnServer;
use crate::auth::Authenticated;

impl TurnServer {
    /// Starts draining with `alternates` as the alternate servers (they replace those of
    /// [`TurnServer::set_alternates`]): from now on every new Allocate is refused, with 300 and
    /// ALTERNATE-SERVER (the first of `alternates` of the client's family) or with 508 when
    /// there is none of that family. Existing allocations are served as before. Called again,
    /// it only updates the alternates.
    pub fn start_draining(&mut self, alternates: &[SocketAddr]) {
        self.set_alternates(alternates);
        self.draining = true;
    }

    /// True once [`TurnServer::start_draining`] was called.
    pub fn is_draining(&self) -> bool {
        self.draining
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
        if !self.draining {
            return None;
        }
        self.try_alternate(five_tuple, message, auth, out)
            .or_else(|| {
                Some(respond_error(
                    message,
                    INSUFFICIENT_CAPACITY,
                    Some(auth),
                    out,
                ))
            })
    }
}
