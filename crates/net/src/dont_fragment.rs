//! The DF bit on relayed datagrams (RFC 8656 §14, §15): clear by default, set only for a Send
//! indication that carries DONT-FRAGMENT.

use std::io;
use std::os::fd::AsFd;

use crate::sys;

/// Sets (or clears) "don't fragment" on a UDP socket's outgoing datagrams.
///
/// On Linux, IPv4: `IP_MTU_DISCOVER` = `IP_PMTUDISC_DO` sets the DF bit, `IP_PMTUDISC_DONT`
/// clears it (the Linux default, `IP_PMTUDISC_WANT`, would set DF on relayed data, which RFC
/// 8656 §14 says must be 0 unless the client asked). IPv6 routers never fragment;
/// `IPV6_DONTFRAG` stops the sender fragmenting instead (§15). Elsewhere clearing succeeds
/// (DF is off by default there) and setting is `Unsupported`.
pub fn set_dont_fragment(socket: &impl AsFd, ipv6: bool, on: bool) -> io::Result<()> {
    sys::set_dont_fragment(socket.as_fd(), ipv6, on)
}

/// Reads whether "don't fragment" is set (for tests).
pub fn dont_fragment(socket: &impl AsFd, ipv6: bool) -> io::Result<bool> {
    sys::dont_fragment(socket.as_fd(), ipv6)
}

// The portable path cannot set DF: these are the Linux path's.
#[cfg(all(test, target_os = "linux", not(turnpike_force_fallback)))]
mod tests {
    use super::*;

    #[test]
    fn toggles_df_on_ipv4() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        set_dont_fragment(&socket, false, true).unwrap();
        assert!(dont_fragment(&socket, false).unwrap());
        set_dont_fragment(&socket, false, false).unwrap();
        assert!(!dont_fragment(&socket, false).unwrap());
    }

    #[test]
    fn toggles_df_on_ipv6() {
        let Ok(socket) = std::net::UdpSocket::bind("[::1]:0") else {
            return; // no IPv6 loopback on this machine
        };
        set_dont_fragment(&socket, true, true).unwrap();
        assert!(dont_fragment(&socket, true).unwrap());
        set_dont_fragment(&socket, true, false).unwrap();
        assert!(!dont_fragment(&socket, true).unwrap());
    }
}

// The portable path clears DF (nothing to do) and refuses to set it.
#[cfg(all(test, not(all(target_os = "linux", not(turnpike_force_fallback)))))]
mod portable_tests {
    use super::*;

    #[test]
    fn clearing_succeeds_and_setting_is_unsupported() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        set_dont_fragment(&socket, false, false).unwrap();
        assert!(!dont_fragment(&socket, false).unwrap());
        let refused = set_dont_fragment(&socket, false, true).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::Unsupported);
    }
}
