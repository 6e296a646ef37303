//! The DF bit on relayed datagrams (RFC 8656 §14, §15): clear by default, set only for a Send
//! indication that carries DONT-FRAGMENT.

use std::io;
use std::os::fd::{AsFd, AsRawFd};

/// Sets (or clears) "don't fragment" on a UDP socket's outgoing datagrams.
///
/// IPv4: `IP_MTU_DISCOVER` = `IP_PMTUDISC_DO` sets the DF bit, `IP_PMTUDISC_DONT` clears it
/// (the Linux default, `IP_PMTUDISC_WANT`, would set DF on relayed data, which RFC 8656 §14
/// says must be 0 unless the client asked). IPv6 routers never fragment; `IPV6_DONTFRAG`
/// stops the sender fragmenting instead (§15).
pub fn set_dont_fragment(socket: &impl AsFd, ipv6: bool, on: bool) -> io::Result<()> {
    let (level, name, value) = if ipv6 {
        (
            libc::IPPROTO_IPV6,
            libc::IPV6_DONTFRAG,
            libc::c_int::from(on),
        )
    } else {
        let value = if on {
            libc::IP_PMTUDISC_DO
        } else {
            libc::IP_PMTUDISC_DONT
        };
        (libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, value)
    };
    let fd = socket.as_fd().as_raw_fd();
    // SAFETY: `fd` is a valid open socket for the duration of the call (borrowed through
    // `AsFd`), and the option value points to a live `c_int` whose size is passed.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            std::ptr::from_ref(&value).cast::<libc::c_void>(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reads whether "don't fragment" is set (for tests).
pub fn dont_fragment(socket: &impl AsFd, ipv6: bool) -> io::Result<bool> {
    let (level, name) = if ipv6 {
        (libc::IPPROTO_IPV6, libc::IPV6_DONTFRAG)
    } else {
        (libc::IPPROTO_IP, libc::IP_MTU_DISCOVER)
    };
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: as above; `value` and `len` are live and sized for the option.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::getsockopt(
            socket.as_fd().as_raw_fd(),
            level,
            name,
            std::ptr::from_mut(&mut value).cast::<libc::c_void>(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(if ipv6 {
        value != 0
    } else {
        value == libc::IP_PMTUDISC_DO
    })
}

#[cfg(test)]
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
