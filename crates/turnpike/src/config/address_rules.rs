//! The rules of the relay address keys, `relay-ip` and `external-ip`; [`external_for`] is
//! also used at start, once the relay IPs are detected.

use std::net::IpAddr;

use super::error::Reason;
use super::validate::{push, Problems};
use super::values::ExternalIp;

/// Why `ip` cannot be one of this host's addresses, if it cannot.
fn not_specific(ip: IpAddr) -> Option<String> {
    if ip.is_unspecified() {
        Some(format!("`{ip}` is not a specific address"))
    } else if ip.is_multicast() {
        Some(format!("`{ip}` is a multicast address"))
    } else {
        None
    }
}

/// Specific addresses, each listed once. Several of a family are allowed: each holds one
/// allocation per relay port, and allocations take them in turn.
pub(super) fn check_relay_ips(p: &mut Problems, ips: &[IpAddr]) {
    for (i, ip) in ips.iter().enumerate() {
        let why = if let Some(why) = not_specific(*ip) {
            why
        } else if ips[..i].contains(ip) {
            format!("`{ip}` is listed twice")
        } else {
            continue;
        };
        push(p, "relay-ip", Reason::Rule(why));
    }
}

/// "IPv4" or "IPv6".
pub(super) fn family(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

/// Each entry of one family, specific addresses, at most one per family; and, when the relay
/// IPs are known now (configured), each maps one of them.
pub(super) fn check_external_ips(p: &mut Problems, entries: &[ExternalIp], relay_ips: &[IpAddr]) {
    let mut families = Vec::new();
    for entry in entries {
        let addresses = [Some(entry.public), entry.private];
        let why = if let Some(why) = addresses.into_iter().flatten().find_map(not_specific) {
            why
        } else if entry
            .private
            .is_some_and(|ip| ip.is_ipv4() != entry.public.is_ipv4())
        {
            format!("`{entry}` mixes IPv4 and IPv6")
        } else if families.contains(&entry.public.is_ipv4()) {
            format!(
                "`{entry}` is a second {} entry; list at most one IPv4 and one IPv6 entry",
                family(entry.public)
            )
        } else if relay_ips
            .iter()
            .filter(|ip| ip.is_ipv4() == entry.public.is_ipv4())
            .count()
            > 1
        {
            format!(
                "`{entry}`: a 1:1 NAT maps one relay address, and `relay-ip` lists several {} \
                 addresses",
                family(entry.public)
            )
        } else if let Err(why) = external_for(entry, relay_ips, !relay_ips.is_empty()) {
            why
        } else {
            families.push(entry.public.is_ipv4());
            continue;
        };
        push(p, "external-ip", Reason::Rule(why));
    }
}

/// Checks that `entry` maps a relay IP: its PRIVATE part, when given, is the relay IP of its
/// family. `relay_ips` are the relay IPs in use; when they are `final_` (configured or
/// detected) a missing relay IP of the entry's family is an error too. An IPv6 entry without
/// PRIVATE needs a configured IPv6 relay IP even before detection, since IPv6 is never
/// detected.
pub fn external_for(entry: &ExternalIp, relay_ips: &[IpAddr], final_: bool) -> Result<(), String> {
    let relay = relay_ips
        .iter()
        .find(|ip| ip.is_ipv4() == entry.public.is_ipv4());
    match (relay, entry.private) {
        (Some(relay), Some(private)) if *relay != private => Err(format!(
            "`{entry}`: `{private}` is not the {} relay address `{relay}`",
            family(private)
        )),
        (None, None) if final_ || entry.public.is_ipv6() => Err(format!(
            "`{entry}`: there is no {} relay address to advertise it for; set `relay-ip` \
             or write PUBLIC/PRIVATE",
            family(entry.public)
        )),
        _ => Ok(()),
    }
}
