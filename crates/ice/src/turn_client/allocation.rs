//! The allocation as the client sees it (RFC 8656 §7.3, §8): relayed and mapped addresses
//! and the lifetime the server last granted.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use stun::attributes::{Lifetime, XorMappedAddress, XorRelayedAddress};
use stun::Message;

use super::error::TurnError;
use super::lease::Lease;

/// A live allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Allocation {
    /// XOR-RELAYED-ADDRESS.
    pub(super) relayed: SocketAddr,
    /// XOR-MAPPED-ADDRESS.
    pub(super) mapped: SocketAddr,
    /// The lifetime last granted.
    pub(super) lifetime: Duration,
    /// When it lapses and when to refresh it.
    pub(super) lease: Lease,
}

/// Reads an Allocate success response (RFC 8656 §7.3): XOR-RELAYED-ADDRESS,
/// XOR-MAPPED-ADDRESS and LIFETIME, all of which the server MUST send.
pub(super) fn read_allocate_success(
    now: Instant,
    response: &Message<'_>,
) -> Result<Allocation, TurnError> {
    let relayed = match response.get::<XorRelayedAddress>() {
        Some(Ok(a)) => a.0,
        _ => return Err(TurnError::Malformed("no usable XOR-RELAYED-ADDRESS")),
    };
    let mapped = match response.get::<XorMappedAddress>() {
        Some(Ok(a)) => a.0,
        _ => return Err(TurnError::Malformed("no usable XOR-MAPPED-ADDRESS")),
    };
    let lifetime = read_lifetime(response).ok_or(TurnError::Malformed("no usable LIFETIME"))?;
    let mut lease = Lease::wanted(now);
    lease.confirmed(now, lifetime);
    Ok(Allocation {
        relayed,
        mapped,
        lifetime,
        lease,
    })
}

/// LIFETIME in seconds, as a duration.
pub(super) fn read_lifetime(response: &Message<'_>) -> Option<Duration> {
    match response.get::<Lifetime>() {
        Some(Ok(Lifetime(secs))) => Some(Duration::from_secs(u64::from(secs))),
        _ => None,
    }
}
