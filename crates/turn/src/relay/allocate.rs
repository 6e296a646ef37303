//! Allocate and Refresh (RFC 8656 §7, §8).

use std::time::{Duration, Instant};

use stun::attributes::{
    AdditionalAddressFamily, AddressErrorCode, AddressFamily, DontFragment, EvenPort, Lifetime,
    RequestedAddressFamily, RequestedTransport, ReservationToken, Software, XorMappedAddress,
    XorRelayedAddress,
};
use stun::error_code::{
    ADDRESS_FAMILY_NOT_SUPPORTED, ALLOCATION_QUOTA_REACHED, INSUFFICIENT_CAPACITY, TRY_ALTERNATE,
};
use stun::{Attribute, Class, EncodeError, Message, MessageWriter};

use super::addresses::RelayAddr;
use super::allocation::{Allocation, RelayTransport, Relays};
use super::bandwidth::TokenBucket;
use super::events::{EndReason, ServerErrorCause};
use super::five_tuple::ClientTransport;
use super::five_tuple::FiveTuple;
use super::ports::{OpenFailure, RelaySockets, TcpListeners};
use super::refusal::Refusal;
use super::respond::{respond, respond_error, respond_result};
use super::server::{AllocationId, TurnServer};
use super::sessions::SessionRecord;
use super::shared_state::QuotaExceeded;
use crate::auth::Authenticated;

/// Reads an optional attribute: `Err(())` when present but malformed (→ 400).
fn optional<'a, A: Attribute<'a>>(message: &Message<'a>) -> Result<Option<A>, ()> {
    message.get::<A>().transpose().map_err(|_| ())
}

/// What [`TurnServer::open_relays`] obtained.
struct OpenedRelays {
    relays: Relays,
    /// RESERVATION-TOKEN for the port reserved by EVEN-PORT R=1.
    token: Option<ReservationToken>,
    /// ADDRESS-ERROR-CODE (family, code) of a partly served dual allocation.
    address_error: Option<(u8, u16)>,
    /// Why the family of `address_error` got no relay, when for a reason of ours.
    partial_failure: Option<ServerErrorCause>,
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

    /// Allocate (RFC 8656 §7.2).
    pub(super) fn allocate(
        &mut self,
        now: Instant,
        five_tuple: FiveTuple,
        message: &Message<'_>,
        auth: &Authenticated,
        out: &mut [u8],
        sockets: &mut dyn RelaySockets,
    ) -> Option<usize> {
        // Step 2: the 5-tuple is in use. A retransmission of the creating request gets the
        // success again; anything else is 437.
        if let Some(id) = self.allocation_id(&five_tuple) {
            if self.allocations[&id].created_by == message.header().transaction_id {
                return self.allocate_success(now, id, message, auth, out);
            }
            return respond_result(message, Err(Refusal::AllocationExists), Some(auth), out);
        }
        // Step 11: "at any point" the server may redirect; a draining one takes nothing new.
        if let Some(refused) = self.refuse_while_draining(&five_tuple, message, auth, out) {
            return refused;
        }
        let request = match self.parse_allocate(five_tuple.transport, message) {
            Ok(request) => request,
            Err(refusal) => return respond_result(message, Err(refusal), Some(auth), out),
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
                return respond_error(message, code, Some(auth), out);
            }
            Err(QuotaExceeded::Total) => {
                let cause = ServerErrorCause::TotalQuota;
                return self.refuse_when_full(cause, five_tuple, message, auth, out);
            }
        }
        let OpenedRelays {
            relays,
            token,
            address_error,
            partial_failure,
        } = match self.open_relays_for(now, &request, sockets) {
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
            now + request.lifetime,
            message.header().transaction_id,
            bandwidth,
            SessionRecord::new(now, self.auth.realm()),
        );
        allocation.reservation_token = token;
        allocation.transport = request.transport;
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

    /// Opens the relay sockets of the request's transport: UDP sockets, or TCP listening
    /// sockets (RFC 6062 §5.1 step 4: "A TCP relayed transport address MUST be allocated").
    fn open_relays_for(
        &mut self,
        now: Instant,
        request: &AllocateRequest,
        sockets: &mut dyn RelaySockets,
    ) -> Result<OpenedRelays, ServerErrorCause> {
        match request.transport {
            RelayTransport::Udp => self.open_relays(now, request, sockets),
            RelayTransport::Tcp => self.open_relays(now, request, &mut TcpListeners(sockets)),
        }
    }

    /// Opens the relay sockets the request asks for; the cause of the 508 when nothing could
    /// be opened.
    fn open_relays(
        &mut self,
        now: Instant,
        request: &AllocateRequest,
        sockets: &mut dyn RelaySockets,
    ) -> Result<OpenedRelays, ServerErrorCause> {
        if let Some(token) = request.token {
            // The reserved port is claimed but not bound (the reservation may come from
            // another worker's core): bind it here.
            let addr = self
                .shared
                .redeem(now, token)
                .ok_or(ServerErrorCause::ReservationUnavailable)?;
            if let Err(error) = sockets.open(addr) {
                self.shared.release(addr);
                return Err(ServerErrorCause::RelaySocket {
                    ip: addr.ip(),
                    error,
                });
            }
            let relays = if addr.is_ipv4() {
                Relays {
                    v4: Some(addr),
                    v6: None,
                }
            } else {
                Relays {
                    v4: None,
                    v6: Some(addr),
                }
            };
            return Ok(OpenedRelays {
                relays,
                token: None,
                address_error: None,
                partial_failure: None,
            });
        }
        let mut relays = Relays::default();
        let mut token = None;
        let mut address_error = None;
        // The cause of the last family that got no relay; an OS error wins over an empty
        // pool on another relay IP of the family (it is what the operator must fix).
        let mut failure: Option<ServerErrorCause> = None;
        let wanted: &[AddressFamily] = if request.dual {
            &[AddressFamily::IPV4, AddressFamily::IPV6]
        } else {
            std::slice::from_ref(&request.family)
        };
        for &family in wanted {
            let ips = self.config.relay_ips_of(family == AddressFamily::IPV4);
            if ips.is_empty() {
                address_error = Some((family.0, ADDRESS_FAMILY_NOT_SUPPORTED.code));
                continue;
            }
            // Several relay addresses: each allocation starts at the next one in turn and
            // moves on while one has no free port.
            let first = self.next_relay_ip;
            self.next_relay_ip = self.next_relay_ip.wrapping_add(1);
            let mut cause: Option<ServerErrorCause> = None;
            let opened = (0..ips.len()).find_map(|k| {
                let ip = ips[(first + k) % ips.len()];
                match self.open_relay(now, ip, request, &mut token, sockets) {
                    Ok(addr) => Some(addr),
                    Err(failure) => {
                        let this = ServerErrorCause::of_open(ip, failure);
                        if !matches!(cause, Some(ServerErrorCause::RelaySocket { .. })) {
                            cause = Some(this);
                        }
                        None
                    }
                }
            });
            match (opened, family) {
                (Some(addr), AddressFamily::IPV4) => relays.v4 = Some(addr),
                (Some(addr), _) => relays.v6 = Some(addr),
                (None, _) => {
                    address_error = Some((family.0, INSUFFICIENT_CAPACITY.code));
                    failure = cause;
                }
            }
        }
        if relays.v4.is_none() && relays.v6.is_none() {
            return Err(failure.unwrap_or(ServerErrorCause::NoRelayAddress));
        }
        Ok(OpenedRelays {
            relays,
            token,
            address_error: address_error.filter(|_| request.dual),
            partial_failure: failure.filter(|_| request.dual),
        })
    }

    /// Opens one relay socket on `ip` as the request asks (even port, or a pair with the
    /// next port reserved under a token written to `token`).
    fn open_relay(
        &mut self,
        now: Instant,
        ip: std::net::IpAddr,
        request: &AllocateRequest,
        token: &mut Option<ReservationToken>,
        sockets: &mut dyn RelaySockets,
    ) -> Result<RelayAddr, OpenFailure> {
        if request.even.is_some_and(|e| e.reserve_next) {
            let (addr, t) =
                self.ports
                    .open_pair(now, ip, self.rng.as_mut(), sockets, &self.shared)?;
            *token = Some(t);
            return Ok(addr);
        }
        let even = request.even.is_some();
        self.ports
            .open(ip, even, self.rng.as_mut(), sockets, &self.shared)
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
        sockets: &mut dyn RelaySockets,
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
            self.end(now, id, EndReason::Deleted, sockets);
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
