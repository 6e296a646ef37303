//! What can go wrong, worded for the operator who reads it in a log: each variant says what to do.

use std::io;

use aya::maps::MapError;
use aya::programs::ProgramError;
use aya::EbpfError;

/// An error of the XDP fast path. None of them affects correctness: without the fast path,
/// userspace relays everything.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum XdpError {
    /// EPERM: loading BPF programs and attaching them needs root, or CAP_BPF with CAP_NET_ADMIN.
    #[error(
        "permission denied during {during}: the XDP fast path needs root (or CAP_BPF and \
         CAP_NET_ADMIN); run without it or grant the capabilities"
    )]
    PermissionDenied {
        /// The step that was refused.
        during: String,
    },
    /// The kernel has no BPF syscall, or lacks a map or program type this program needs.
    #[error("BPF is not available in this kernel ({during}): {source}")]
    Unavailable {
        /// The step that failed.
        during: String,
        /// The kernel's answer.
        source: io::Error,
    },
    /// The kernel's verifier refused the program: a kernel too old for it, or a bug in relay.c.
    #[error("the kernel verifier rejected the XDP program ({source}); last lines of its log:\n{log_tail}")]
    VerifierRejected {
        /// The last lines of the verifier log.
        log_tail: String,
        /// The errno of BPF_PROG_LOAD.
        source: io::Error,
    },
    /// No network interface has this name (in this network namespace).
    #[error("network interface {name:?} not found")]
    InterfaceNotFound {
        /// The name asked for.
        name: String,
    },
    /// The interface already has an XDP program (another Turnpike, or another tool).
    #[error("network interface {interface:?} already has an XDP program attached; detach it first (ip link set dev {interface} xdp off)")]
    InterfaceBusy {
        /// The interface.
        interface: String,
    },
    /// Neither native nor generic attach worked.
    #[error(
        "could not attach the XDP program to {interface:?} in native or generic mode: {source}"
    )]
    AttachFailed {
        /// The interface.
        interface: String,
        /// The kernel's answer to the generic (SKB mode) attempt.
        source: io::Error,
    },
    /// A channel map holds its maximum number of entries; the channel stays on the userspace path.
    #[error(
        "the fast path's map {map} is full ({capacity} entries); the channel stays in userspace"
    )]
    MapFull {
        /// The map's name.
        map: &'static str,
        /// Its capacity.
        capacity: u32,
    },
    /// The channel mixes IPv4 and IPv6 (client and peer, or an address and its server/relay).
    /// The program would pass such packets anyway; refusing makes the mistake visible.
    #[error("channel crosses address families: {0}")]
    FamilyMismatch(String),
    /// The channel cannot be expressed in the maps (unspecified address, bad number, port 0).
    #[error("invalid channel for the fast path: {0}")]
    InvalidChannel(String),
    /// `remove` or `counters` of a channel that is not installed.
    #[error("channel is not installed in the fast path")]
    NotInstalled,
    /// Any other failure of the BPF syscalls or of parsing the embedded object.
    #[error("BPF error during {during}: {message}")]
    Bpf {
        /// The step that failed.
        during: String,
        /// aya's description of the failure.
        message: String,
    },
}

/// The io::Error somewhere in an error's source chain, if any.
fn io_source<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a io::Error> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return Some(io);
        }
        current = e.source();
    }
    None
}

fn copy_io(error: &io::Error) -> io::Error {
    match error.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(error.kind(), error.to_string()),
    }
}

/// The last `lines` non-empty lines of a verifier log.
fn tail(log: &str, lines: usize) -> String {
    let all: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl XdpError {
    /// Classifies any aya error by the errno behind it.
    pub(crate) fn from_aya(during: &str, error: &(dyn std::error::Error + 'static)) -> XdpError {
        if let Some(EbpfError::ProgramError(p)) = error.downcast_ref::<EbpfError>() {
            return XdpError::from_aya(during, p);
        }
        if let Some(ProgramError::LoadError {
            io_error,
            verifier_log,
        }) = error.downcast_ref::<ProgramError>()
        {
            if io_error.raw_os_error() != Some(libc::EPERM) {
                return XdpError::VerifierRejected {
                    log_tail: tail(&verifier_log.to_string(), 20),
                    source: copy_io(io_error),
                };
            }
        }
        if let Some(ProgramError::UnknownInterface { name }) = error.downcast_ref::<ProgramError>()
        {
            return XdpError::InterfaceNotFound { name: name.clone() };
        }
        let during = during.to_string();
        match io_source(error) {
            Some(io) if io.raw_os_error() == Some(libc::EPERM) => {
                XdpError::PermissionDenied { during }
            }
            Some(io) if io.raw_os_error() == Some(libc::ENOSYS) => XdpError::Unavailable {
                during,
                source: copy_io(io),
            },
            _ => XdpError::Bpf {
                during,
                message: error_chain(error),
            },
        }
    }

    /// A map update that failed: E2BIG from a hash map means it is full.
    pub(crate) fn from_map_update(map: &'static str, capacity: u32, error: MapError) -> XdpError {
        match io_source(&error) {
            Some(io) if io.raw_os_error() == Some(libc::E2BIG) => {
                XdpError::MapFull { map, capacity }
            }
            _ => XdpError::from_aya(&format!("update of map {map}"), &error),
        }
    }
}

/// An error and its sources on one line.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut current = error.source();
    while let Some(e) = current {
        text.push_str(": ");
        text.push_str(&e.to_string());
        current = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\n\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
    }

    #[test]
    fn eperm_is_permission_denied() {
        let error = MapError::SyscallError(aya::sys::SyscallError {
            call: "bpf_map_update_elem",
            io_error: io::Error::from_raw_os_error(libc::EPERM),
        });
        assert!(matches!(
            XdpError::from_aya("x", &error),
            XdpError::PermissionDenied { .. }
        ));
    }

    #[test]
    fn e2big_on_update_is_map_full() {
        let error = MapError::SyscallError(aya::sys::SyscallError {
            call: "bpf_map_update_elem",
            io_error: io::Error::from_raw_os_error(libc::E2BIG),
        });
        let e = XdpError::from_map_update("client_channels", 65_536, error);
        assert!(matches!(
            e,
            XdpError::MapFull {
                map: "client_channels",
                capacity: 65_536
            }
        ));
    }
}
