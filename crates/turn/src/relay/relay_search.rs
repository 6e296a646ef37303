//! The search for an Allocate's relayed transport addresses (RFC 8656 §7.2), one bind at a
//! time: the core picks an address, claims it, asks the I/O layer to bind it
//! ([`super::RelayCommand::Open`]) and resumes with the result.
//!
//! - A RESERVATION-TOKEN names the address: it is bound as it is (step 5).
//! - Otherwise each family asked for (one, or IPv4 then IPv6 for ADDITIONAL-ADDRESS-FAMILY,
//!   RFC 8656 §7.2 step 9) is served by one relay IP of that family: starting at the next one
//!   in turn, [`ATTEMPTS`] random ports each (even ones for EVEN-PORT; with R=1 an even port
//!   whose successor is claimed too and reserved under a token). EADDRINUSE moves on to
//!   another port; any other bind error to the next relay IP (it holds for every port).

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use rand::RngCore;
use stun::attributes::{AddressFamily, EvenPort, ReservationToken};
use stun::error_code::{ADDRESS_FAMILY_NOT_SUPPORTED, INSUFFICIENT_CAPACITY};

use super::addresses::RelayAddr;
use super::allocation::Relays;
use super::commands::RelayCommand;
use super::events::ServerErrorCause;
use super::ports::{Parity, RelayOpenError, ATTEMPTS, RESERVATION_LIFETIME};
use super::server::TurnServer;

/// What the search obtained.
#[derive(Debug)]
pub(super) struct OpenedRelays {
    pub(super) relays: Relays,
    /// RESERVATION-TOKEN for the port reserved by EVEN-PORT R=1.
    pub(super) token: Option<ReservationToken>,
    /// ADDRESS-ERROR-CODE (family, code) of a partly served dual allocation.
    pub(super) address_error: Option<(u8, u16)>,
    /// Why the family of `address_error` got no relay, when for a reason of ours.
    pub(super) partial_failure: Option<ServerErrorCause>,
}

/// What the search needs next.
#[derive(Debug)]
pub(super) enum Step {
    /// Bind this (claimed) address, then [`TurnServer::resume_search`] with the result.
    Open(RelayAddr),
    /// Finished: the relays, or the cause of the 508 (300) when nothing could be opened.
    Done(Result<OpenedRelays, ServerErrorCause>),
}

/// The relay IPs of one family being tried.
#[derive(Debug)]
struct FamilySearch {
    family: AddressFamily,
    ips: Vec<IpAddr>,
    /// Where this allocation starts in `ips` (each allocation starts at the next one).
    first: usize,
    /// Relay IPs given up on so far.
    tried: usize,
    /// Ports drawn on the current relay IP.
    attempts: usize,
    /// Why the relay IPs tried so far failed; an OS error wins over an empty pool on
    /// another relay IP of the family (it is what the operator must fix).
    cause: Option<ServerErrorCause>,
}

impl FamilySearch {
    fn ip(&self) -> Option<IpAddr> {
        (self.tried < self.ips.len()).then(|| self.ips[(self.first + self.tried) % self.ips.len()])
    }

    /// Gives up on the current relay IP for `cause`.
    fn ip_failed(&mut self, cause: ServerErrorCause) {
        if !matches!(self.cause, Some(ServerErrorCause::RelaySocket { .. })) {
            self.cause = Some(cause);
        }
        self.tried += 1;
        self.attempts = 0;
    }
}

/// One Allocate's search, between two binds.
#[derive(Debug)]
pub(super) struct RelaySearch {
    even: Option<EvenPort>,
    dual: bool,
    /// Families not started yet, in order.
    families: Vec<AddressFamily>,
    current: Option<FamilySearch>,
    /// The address being bound (claimed).
    in_flight: Option<RelayAddr>,
    /// The address was redeemed from a RESERVATION-TOKEN.
    redeemed: bool,
    relays: Relays,
    token: Option<ReservationToken>,
    address_error: Option<(u8, u16)>,
    /// The cause of the last family that got no relay.
    failure: Option<ServerErrorCause>,
}

impl RelaySearch {
    /// A search for `family` (and IPv6 too when `dual`), with EVEN-PORT `even`.
    pub(super) fn new(family: AddressFamily, dual: bool, even: Option<EvenPort>) -> Self {
        let families = if dual {
            vec![AddressFamily::IPV4, AddressFamily::IPV6]
        } else {
            vec![family]
        };
        RelaySearch {
            even,
            dual,
            families,
            current: None,
            in_flight: None,
            redeemed: false,
            relays: Relays::default(),
            token: None,
            address_error: None,
            failure: None,
        }
    }

    /// The relays opened so far and the address being bound: what to give back when the
    /// search is abandoned.
    pub(super) fn held(&self) -> (Relays, Option<RelayAddr>) {
        (self.relays, self.in_flight)
    }

    fn parity(&self) -> Parity {
        match self.even {
            Some(EvenPort { reserve_next: true }) => Parity::EvenPair,
            Some(_) => Parity::Even,
            None => Parity::Any,
        }
    }

    fn record(&mut self, addr: RelayAddr) {
        if addr.is_ipv4() {
            self.relays.v4 = Some(addr);
        } else {
            self.relays.v6 = Some(addr);
        }
    }

    fn finish(&self) -> Result<OpenedRelays, ServerErrorCause> {
        if self.relays.v4.is_none() && self.relays.v6.is_none() {
            return Err(self.failure.unwrap_or(ServerErrorCause::NoRelayAddress));
        }
        Ok(OpenedRelays {
            relays: self.relays,
            token: self.token,
            address_error: self.address_error.filter(|_| self.dual),
            partial_failure: self.failure.filter(|_| self.dual),
        })
    }
}

impl TurnServer {
    /// Starts a search: binds the address of RESERVATION-TOKEN `token`, or looks for free
    /// ports as [`RelaySearch`] describes.
    pub(super) fn start_search(
        &mut self,
        now: Instant,
        mut search: RelaySearch,
        token: Option<ReservationToken>,
    ) -> (RelaySearch, Step) {
        let Some(token) = token else {
            let step = self.next_step(&mut search);
            return (search, step);
        };
        // RFC 8656 §7.2 step 5: the reserved port is claimed but not bound (the reservation
        // may come from another worker's core): bind it here.
        match self.shared.redeem(now, token) {
            Some(addr) => {
                search.redeemed = true;
                search.in_flight = Some(addr);
                (search, Step::Open(addr))
            }
            None => (
                search,
                Step::Done(Err(ServerErrorCause::ReservationUnavailable)),
            ),
        }
    }

    /// Resumes a search with the result of binding its address.
    pub(super) fn resume_search(
        &mut self,
        now: Instant,
        search: &mut RelaySearch,
        result: Result<(), RelayOpenError>,
    ) -> Step {
        let Some(addr) = search.in_flight.take() else {
            return self.next_step(search);
        };
        match result {
            Ok(()) if search.redeemed => {
                search.record(addr);
                return Step::Done(search.finish());
            }
            Ok(()) => self.opened(now, search, addr),
            Err(error) => {
                self.shared.release(addr);
                let cause = ServerErrorCause::RelaySocket {
                    ip: addr.ip(),
                    error,
                };
                if search.redeemed {
                    return Step::Done(Err(cause));
                }
                // EADDRINUSE: another program holds this port; another port may do.
                if !error.is_port_specific() {
                    if let Some(family) = &mut search.current {
                        family.ip_failed(cause);
                    }
                }
            }
        }
        self.next_step(search)
    }

    /// `addr` is bound: the family is served, once the successor of an EVEN-PORT R=1 port
    /// is claimed and reserved (RFC 8656 §7.2: "reserve the next higher port number").
    fn opened(&mut self, now: Instant, search: &mut RelaySearch, addr: RelayAddr) {
        if search.parity() == Parity::EvenPair {
            let next = RelayAddr::new(SocketAddr::new(addr.ip(), addr.port() + 1));
            if !self.shared.claim(next) {
                self.command(RelayCommand::Close(addr));
                self.shared.release(addr);
                return;
            }
            let mut token = ReservationToken([0; 8]);
            self.rng.fill_bytes(&mut token.0);
            self.shared.reserve(token, next, now + RESERVATION_LIFETIME);
            search.token = Some(token);
        }
        search.record(addr);
        search.current = None;
    }

    /// Draws and claims the next address to bind, or finishes.
    fn next_step(&mut self, search: &mut RelaySearch) -> Step {
        let parity = search.parity();
        loop {
            let Some(family) = &mut search.current else {
                if search.families.is_empty() {
                    return Step::Done(search.finish());
                }
                let family = search.families.remove(0);
                search.current = self.start_family(search, family);
                continue;
            };
            let Some(ip) = family.ip() else {
                // Every relay IP of the family failed.
                let (code, cause) = (family.family.0, family.cause);
                search.address_error = Some((code, INSUFFICIENT_CAPACITY.code));
                search.failure = cause;
                search.current = None;
                continue;
            };
            if family.attempts == ATTEMPTS {
                family.ip_failed(ServerErrorCause::PortPoolEmpty { ip });
                continue;
            }
            family.attempts += 1;
            let drawn = self.ports.draw(ip, parity, self.rng.as_mut());
            if let Some(addr) = drawn.filter(|addr| self.shared.claim(*addr)) {
                search.in_flight = Some(addr);
                return Step::Open(addr);
            }
        }
    }

    /// The relay IPs of `family`, starting at the next in turn; `None` (and an
    /// ADDRESS-ERROR-CODE 440) when the server relays none of that family.
    fn start_family(
        &mut self,
        search: &mut RelaySearch,
        family: AddressFamily,
    ) -> Option<FamilySearch> {
        let ips = self.config.relay_ips_of(family == AddressFamily::IPV4);
        if ips.is_empty() {
            search.address_error = Some((family.0, ADDRESS_FAMILY_NOT_SUPPORTED.code));
            return None;
        }
        let first = self.next_relay_ip;
        self.next_relay_ip = self.next_relay_ip.wrapping_add(1);
        Some(FamilySearch {
            family,
            ips: ips.to_vec(),
            first,
            tried: 0,
            attempts: 0,
            cause: None,
        })
    }
}
