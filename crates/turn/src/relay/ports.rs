//! Relay port selection (RFC 8656 §7.2): random ports from the configured range (RFC 6056
//! recommends randomisation), even ports, and reservations of the next port with a token.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::Duration;

use rand::{Rng, RngCore};

use super::addresses::RelayAddr;

/// How long a port reserved by EVEN-PORT (R=1) stays reserved: RFC 8656 §7.2 says at least
/// 30 seconds.
pub const RESERVATION_LIFETIME: Duration = Duration::from_secs(30);

/// Attempts at a random port before giving up on an allocation (508).
pub(super) const ATTEMPTS: usize = 64;

/// Why the I/O layer could not bind a relay socket: the OS error, as exact as the core needs
/// it to tell the operator why an Allocate got 508 (an `external-ip`/relay address that is
/// not on the host, `ulimit -n` too low, …). The driver maps its OS error onto this; the core
/// stays free of OS error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum RelayOpenError {
    /// EADDRINUSE: another program holds this port; another port may do.
    #[error("address in use (EADDRINUSE)")]
    AddrInUse,
    /// EADDRNOTAVAIL: the relay IP is not an address of this host.
    #[error("address not available on this host (EADDRNOTAVAIL)")]
    AddrNotAvailable,
    /// EMFILE: the process is at its open-file limit (`ulimit -n`, `LimitNOFILE`).
    #[error("too many open files in the process (EMFILE)")]
    ProcessFileLimit,
    /// ENFILE: the system is at its open-file limit.
    #[error("too many open files in the system (ENFILE)")]
    SystemFileLimit,
    /// EACCES/EPERM: a privileged port, or a security policy.
    #[error("permission denied")]
    PermissionDenied,
    /// Any other OS error.
    #[error("OS error: {0}")]
    Other(std::io::ErrorKind),
}

impl RelayOpenError {
    /// True when the error concerns this port only, so that another port of the range may
    /// still be bound; the other errors hold for every port of the IP (or of the process).
    pub fn is_port_specific(&self) -> bool {
        *self == RelayOpenError::AddrInUse
    }
}

/// Which ports a draw may return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Parity {
    /// Any port of the range.
    Any,
    /// An even port (EVEN-PORT, RFC 8656 §7.2).
    Even,
    /// An even port whose successor is in the range too (EVEN-PORT with R=1).
    EvenPair,
}

/// Picks relay ports. Which addresses are taken (by allocations and reservations, of every
/// core) is tracked in [`super::SharedState`]; binding them is the I/O layer's (see
/// [`super::commands`]).
#[derive(Debug)]
pub struct PortPool {
    range: RangeInclusive<u16>,
}

impl PortPool {
    /// A pool over `range` (RFC 8656 §7.2 recommends 49152–65535).
    pub fn new(range: RangeInclusive<u16>) -> Self {
        PortPool { range }
    }

    /// The configured range.
    pub fn range(&self) -> &RangeInclusive<u16> {
        &self.range
    }

    /// One random draw of a port on `ip` (RFC 6056 recommends randomisation); `None` when
    /// the draw falls outside what `parity` allows (it still counts as one of the
    /// [`ATTEMPTS`]).
    pub(super) fn draw(
        &self,
        ip: IpAddr,
        parity: Parity,
        rng: &mut dyn RngCore,
    ) -> Option<RelayAddr> {
        let (low, high) = (*self.range.start(), *self.range.end());
        let mut port = rng.gen_range(low..=high);
        if parity != Parity::Any {
            port &= !1;
        }
        let fits = port >= low && (parity != Parity::EvenPair || port < high);
        fits.then(|| RelayAddr::new(SocketAddr::new(ip, port)))
    }
}
