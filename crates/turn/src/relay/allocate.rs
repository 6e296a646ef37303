//! Allocate and Refresh (RFC 8656 §7, §8).

use std::time::{Duration, Instant};

use stun::attributes::{
    AdditionalAddressFamily, AddressErrorCode, AddressFamily, DontFragment, EvenPort, Lifetime,
    RequestedAddressFamily, RequestedTransport, ReservationToken, Software, XorMappedAddress,
    XorRelayedAddress,
};
use stun::error_code::{ALLOCATION_QUOTA_REACHED, INSUFFICIENT_CAPACITY, TRY_ALTERNATE};
use stun::{Attribute, Class, EncodeError, Message, MessageWriter};

use super::allocation::{Allocation, RelayTransport};
use super::bandwidth::TokenBucket;
use super::events::{EndReason, ServerErrorCause};
use super::five_tuple::ClientTransport;
use super::five_tuple::FiveTuple;
use super::pending_open::{PendingAllocate, OPEN_TIMEOUT};
use super::refusal::Refusal;
use super::relay_search::{OpenedRelays, RelaySearch, Step};
use super::respond::{respond, respond_error, respond_result};
use super::server::{AllocationId, TurnServer};
use super::sessions::SessionRecord;
use super::shared_state::QuotaExceeded;
use crate::auth::Authenticated;
use crate::sockets::SocketId;

/// Reads an optional attribute: `Err(())` when present but malformed (→ 400).
fn optional<'a, A: Attribute<'a>>(message: &Message<'a>) -> Result<Option<A>, ()> {
    message.get::<A>().transpose().map_err(|_| ())
}

/// The answer to an Allocate: now (`None`: nothing to send), or once its relay socket is
/// bound ([`TurnServer::relay_opened`]).
pub(super) enum AllocateAnswer {
    Now(Option<usize>),
    Later,
}

/// What an Allocate asks for, once validated (RFC 8656 §7.2 steps 3–9).
struct AllocateRequest {
    token: Option<ReservationToken>,
    even: Option<EvenPort>,
    family: AddressFamily,
    dual: bool,
    lifetime: Duration,
    transport: RelayTransport,
}

impl TurnServer {
    /// The time-to-expiry for a requested LIFETIME (RFC 8656 §7.2, §8.2): the client's value
    /// capped at the maximum, but never below the default.
    fn desired_lifetime(&self, requested: Option<Lifetime>) -> Duration {
        match requested {
            None => self.config.default_lifetime,
            Some(Lifetime(secs)) => Duration::from_secs(u64::from(secs))
                .min(self.config.max_lifetime)
                .max(self.config.default_lifetime),
        }
    }

    /// Validates an Allocate request in the order of RFC 8656 §7.2.
    fn parse_allocate(
        &self,
        client: ClientTransport,
        message: &Message<'_>,
    ) -> Result<AllocateRequest, Refusal> {
        // Step 3: REQUESTED-TRANSPORT present and UDP — or TCP (RFC 6062 §5.1 step 1).
        let transport = match optional::<RequestedTransport>(message) {
            Ok(Some(RequestedTransport(RequestedTransport::UDP))) => RelayTransport::Udp,
            Ok(Some(RequestedTransport(RequestedTransport::TCP))) if self.config.tcp_relay => {
                RelayTransport::Tcp
            }
            Ok(Some(_)) => return Err(Refusal::UnsupportedTransport),
            Ok(None) | Err(()) => return Err(Refusal::MissingTransport),
        };
        let bad = |name| move |()| Refusal::Malformed(name);
        let token = optional::<ReservationToken>(message).map_err(bad("RESERVATION-TOKEN"))?;
        let even = optional::<EvenPort>(message).map_err(bad("EVEN-PORT"))?;
        if transport == RelayTransport::Tcp {
            // RFC 6062 §5.1 step 2: TCP allocations only over TCP or TLS; step 3: the
            // UDP-only features are a 400.
            let udp_only = token.is_some() || even.is_some() || message.contains::<DontFragment>();
            if !client.is_stream() || udp_only {
                return Err(Refusal::TcpAllocationRules);
            }
        }
        let requested =
            optional::<RequestedAddressFamily>(message).map_err(bad("REQUESTED-ADDRESS-FAMILY"))?;
        let additional = optional::<AdditionalAddressFamily>(message)
            .map_err(bad("ADDITIONAL-ADDRESS-FAMILY"))?;
        let lifetime =
            self.desired_lifetime(optional::<Lifetime>(message).map_err(bad("LIFETIME"))?);
        // Step 5: RESERVATION-TOKEN excludes EVEN-PORT and the family attributes.
        if token.is_some() && (even.is_some() || requested.is_some() || additional.is_some()) {
            return Err(Refusal::TokenWithOtherAttributes);
        }
        // Step 6: not both family attributes.
        if requested.is_some() && additional.is_some() {
            return Err(Refusal::BothFamilies);
        }
        // Step 7: the requested family must be one we relay.
        let family = requested.map_or(AddressFamily::IPV4, |r| r.0);
        let supported = match family {
            AddressFamily::IPV4 => self.config.relay_v4.is_some(),
            AddressFamily::IPV6 => self.config.relay_v6.is_some(),
            _ => false,
        };
        if !supported && token.is_none() && additional.is_none() {
            return Err(Refusal::FamilyNotRelayed);
        }
        // Step 8: EVEN-PORT with R=1 cannot go with a dual allocation.
        if even.is_some_and(|e| e.reserve_next) && additional.is_some() {
            return Err(Refusal::EvenPortWithDual);
        }
        // Step 9: ADDITIONAL-ADDRESS-FAMILY may only ask for IPv6.
        if additional.is_some_and(|a| a.0 != AddressFamily::IPV6) {
            return Err(Refusal::AdditionalNotIpv6);
        }
        Ok(AllocateRequest {
            token,
            even,
            family,
            dual: additional.is_some(),
            lifetime,
            transport,
        })
    }

    /// Allocate (RFC 8656 §7.2). Answered at once, or [`AllocateAnswer::Later`] when a relay
    /// socket must be bound first (see [`super::pending_open`]).
    pub(super) fn allocate(
        &mut self,
        now: Instant,
        five_tuple: FiveTuple,
        local: SocketId,
        message: &Message<'_>,
        auth: &Authenticated,
        out: &mut [u8],
    ) -> AllocateAnswer {
        let now_answer = AllocateAnswer::Now;
        // Step 2: the 5-tuple is in use. A retransmission of the creating request gets the
        // success again; anything else is 437.
        if let Some(id) = self.allocation_id(&five_tuple) {
            if self.allocations[&id].created_by == message.header().transaction_id {
                return now_answer(self.allocate_success(now, id, message, auth, out));
            }
            let refused = Err(Refusal::AllocationExists);
            return now_answer(respond_result(message, refused, Some(auth), out));
        }
        // The same while the allocation is being made: a retransmission is answered when the
        // relay socket is bound (once), another request on the 5-tuple is 437.
        if let Some(pending) = self.pending_allocate(&five_tuple) {
            let request = Message::decode(&pending.request).map(|m| m.header().transaction_id);
            if request == Ok(message.header().transaction_id) {
                return AllocateAnswer::Later;
            }
            let refused = Err(Refusal::AllocationExists);
            return now_answer(respond_result(message, refused, Some(auth), out));
        }
        // Step 11: "at any point" the server may redirect; a draining one takes nothing new.
        if let Some(refused) = self.refuse_while_draining(&five_tuple, message, auth, out) {
            return now_answer(refused);
        }
        let request = match self.parse_allocate(five_tuple.transport, message) {
            Ok(request) => request,
            Err(refusal) => {
                return now_answer(respond_result(message, Err(refusal), Some(auth), out))
            }
        };
        // Step 10: quotas, per username (486) and for the whole server (508), counted over
        // every worker's core.
        let counted = self.shared.add_allocation(
            &auth.username,
            self.config.user_quota,
            self.config.total_quota,
        );
        match counted {
            Ok(()) => {}
            // Never redirected: the operator capped what one username may hold here, and
            // another node would lift the cap rather than enforce it (see `alternate`).
            Err(QuotaExceeded::User) => {
                let (code, cause) = (ALLOCATION_QUOTA_REACHED, ServerErrorCause::UserQuota);
                self.emit_server_error(code, cause, five_tuple, &auth.username);
                return now_answer(respond_error(message, code, Some(auth), out));
            }
            Err(QuotaExceeded::Total) => {
                let cause = ServerErrorCause::TotalQuota;
                return now_answer(self.refuse_when_full(cause, five_tuple, message, auth, out));
            }
        }
        self.open_relays(now, (five_tuple, local), message, auth, &request, out)
    }

    /// The relayed transport addresses (steps 5, 9 and the end of §7.2): UDP sockets, or TCP
    /// listening sockets (RFC 6062 §5.1 step 4: "A TCP relayed transport address MUST be
    /// allocated"). The Allocate is answered now when no bind is needed (no relay IP, an
    /// unknown token), else when the driver reports the bind.
    fn open_relays(
        &mut self,
        now: Instant,
        (five_tuple, local): (FiveTuple, SocketId),
        message: &Message<'_>,
        auth: &Authenticated,
        request: &AllocateRequest,
        out: &mut [u8],
    ) -> AllocateAnswer {
        let search = RelaySearch::new(request.family, request.dual, request.even);
        let (search, step) = self.start_search(now, search, request.token);
        let addr = match step {
            Step::Open(addr) => addr,
            Step::Done(opened) => {
                let asked = (request.lifetime, request.transport);
                let len =
                    self.finish_allocate(now, (five_tuple, message, auth), asked, opened, out);
                return AllocateAnswer::Now(len);
            }
        };
        let pending = PendingAllocate {
            five_tuple,
            local,
            request: message.as_bytes().to_vec(),
            auth: auth.clone(),
            lifetime: request.lifetime,
            transport: request.transport,
            search,
            deadline: now + OPEN_TIMEOUT,
            cancelled: false,
        };
        self.queue_open(addr, pending);
        AllocateAnswer::Later
    }

    /// Answers an Allocate once its relays are open (or could not be): creates the
    /// allocation and writes the success, or writes the 508/300 with the quota given back.
    pub(super) fn finish_allocate(
        &mut self,
        now: Instant,
        (five_tuple, message, auth): (FiveTuple, &Message<'_>, &Authenticated),
        (lifetime, transport): (Duration, RelayTransport),
        opened: Result<OpenedRelays, ServerErrorCause>,
        out: &mut [u8],
    ) -> Option<usize> {
        let OpenedRelays {
            relays,
            token,
            address_error,
            partial_failure,
        } = match opened {
            Ok(opened) => opened,
            Err(cause) => {
                self.shared.remove_allocation(&auth.username);
                return self.refuse_when_full(cause, five_tuple, message, auth, out);
            }
        };
        if let Some(cause) = partial_failure {
            self.emit_server_error(INSUFFICIENT_CAPACITY, cause, five_tuple, &auth.username);
        }
        let bandwidth = self
            .config
            .bandwidth
            .map(|rate| TokenBucket::new(now, rate));
        let mut allocation = Allocation::new(
            five_tuple,
            auth.username.clone(),
            relays,
            now + lifetime,
            message.header().transaction_id,
            bandwidth,
            SessionRecord::new(now, self.auth.realm()),
        );
        allocation.reservation_token = token;
        allocation.transport = transport;
        allocation.address_error = address_error;
        let id = self.insert(now, allocation);
        self.allocate_success(now, id, message, auth, out)
    }

    /// The answer to an Allocate this server cannot take for `cause`: 300 (Try Alternate) when
    /// the server is full (total quota, no relay socket) and an alternate of the client's family
    /// is known (RFC 8656 §7.2 step 11), else 508 (Insufficient Capacity). Either way the cause
    /// is reported, with the code sent: a redirect still tells the operator the node is full.
    fn refuse_when_full(
        &mut self,
        cause: ServerErrorCause,
        five_tuple: FiveTuple,
        message: &Message<'_>,
        auth: &Authenticated,
        out: &mut [u8],
    ) -> Option<usize> {
        let full = matches!(
            cause,
            ServerErrorCause::TotalQuota
                | ServerErrorCause::PortPoolEmpty { .. }
                | ServerErrorCause::RelaySocket { .. }
        );
        if full {
            if let Some(redirect) = self.try_alternate(&five_tuple, message, auth, out) {
                self.emit_server_error(TRY_ALTERNATE, cause, five_tuple, &auth.username);
                return redirect;
            }
        }
        self.emit_server_error(INSUFFICIENT_CAPACITY, cause, five_tuple, &auth.username);
        respond_error(message, INSUFFICIENT_CAPACITY, Some(auth), out)
    }

    /// The Allocate success response for allocation `id` (RFC 8656 §7.2, end).
    fn allocate_success(
        &self,
        now: Instant,
        id: AllocationId,
        message: &Message<'_>,
        auth: &Authenticated,
        out: &mut [u8],
    ) -> Option<usize> {
        let allocation = &self.allocations[&id];
        let remaining = allocation.expires.saturating_duration_since(now).as_secs();
        respond(message, Class::Success, Some(auth), out, |w| {
            for relay in allocation.relays.iter() {
                w.add(&XorRelayedAddress(self.advertised(relay.get())))?;
            }
            w.add(&Lifetime(u32::try_from(remaining).unwrap_or(u32::MAX)))?;
            if let Some(token) = allocation.reservation_token {
                w.add(&token)?;
            }
            if let Some((family, code)) = allocation.address_error {
                let reason = stun::error_code::reason(code).unwrap_or("");
                w.add(&AddressErrorCode {
                    family: AddressFamily(family),
                    code,
                    reason,
                })?;
            }
            w.add(&XorMappedAddress(allocation.five_tuple.client.get()))?;
            self.add_software(w)
        })
    }

    /// SOFTWARE, when configured (RFC 8656 §5: SHOULD in Allocate and Refresh responses).
    pub(super) fn add_software(&self, w: &mut MessageWriter<'_>) -> Result<(), EncodeError> {
        match &self.config.software {
            Some(software) => w.add(&Software(software)),
            None => Ok(()),
        }
    }

    /// The allocation for a non-Allocate request: 437 when there is none, 441 when it was
    /// created by another username (RFC 8656 §5).
    pub(super) fn owned_allocation(
        &self,
        five_tuple: &FiveTuple,
        auth: &Authenticated,
    ) -> Result<AllocationId, Refusal> {
        let id = self
            .allocation_id(five_tuple)
            .ok_or(Refusal::NoAllocation)?;
        if self.allocations[&id].username != auth.username {
            return Err(Refusal::OtherUser);
        }
        Ok(id)
    }

    /// Refresh (RFC 8656 §8.2).
    pub(super) fn refresh(
        &mut self,
        now: Instant,
        five_tuple: FiveTuple,
        message: &Message<'_>,
        auth: &Authenticated,
        out: &mut [u8],
    ) -> Option<usize> {
        let id = match self.owned_allocation(&five_tuple, auth) {
            Ok(id) => id,
            Err(refusal) => return respond_result(message, Err(refusal), Some(auth), out),
        };
        let Ok(requested) = optional::<Lifetime>(message) else {
            return respond_result(
                message,
                Err(Refusal::Malformed("LIFETIME")),
                Some(auth),
                out,
            );
        };
        match optional::<RequestedAddressFamily>(message) {
            Err(()) => {
                let refusal = Refusal::Malformed("REQUESTED-ADDRESS-FAMILY");
                return respond_result(message, Err(refusal), Some(auth), out);
            }
            Ok(Some(RequestedAddressFamily(family))) => {
                let relays = self.allocations[&id].relays;
                let has = if family == AddressFamily::IPV4 {
                    relays.v4.is_some()
                } else {
                    relays.v6.is_some()
                };
                if !has || family.0 > 2 {
                    return respond_result(message, Err(Refusal::PeerFamily), Some(auth), out);
                }
            }
            Ok(None) => {}
        }
        let lifetime = if requested == Some(Lifetime(0)) {
            // The "desired lifetime" is zero: the allocation is deleted.
            self.end(now, id, EndReason::Deleted);
            0
        } else {
            let lifetime = self.desired_lifetime(requested);
            if let Some(allocation) = self.allocations.get_mut(&id) {
                allocation.expires = now + lifetime;
            }
            self.reschedule(id);
            lifetime.as_secs()
        };
        respond(message, Class::Success, Some(auth), out, |w| {
            w.add(&Lifetime(u32::try_from(lifetime).unwrap_or(u32::MAX)))?;
            self.add_software(w)
        })
    }
}
