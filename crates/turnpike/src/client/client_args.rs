//! What the client commands (`turnpike stun`, `turnpike nat`) share: checking their arguments
//! at parse time, and telling a socket error that concerns one datagram from a fatal one.

use std::time::Duration;

use std::net::{IpAddr, SocketAddr};

use anyhow::{anyhow, bail, Context};
use ice::StunUri;
use tokio::net::UdpSocket;

use crate::client::discovery::{self, Dns, DnsArgs, ServerName, Transport};

/// Checks a STUN URI at parse time, so that a bad one is a usage error.
pub fn parse_uri(text: &str) -> Result<String, ice::UriError> {
    StunUri::parse(text).map(|_| text.to_owned())
}

/// A positive, finite number of seconds, at most `max` (a clap value parser's core).
pub fn parse_seconds(text: &str, max: Duration) -> Result<f64, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("\"{text}\" is not a number of seconds"))?;
    seconds_duration(secs, max)
        .map(|_| secs)
        .map_err(|error| error.to_string())
}

/// `secs` as a [`Duration`], when positive and at most `max`.
pub fn seconds_duration(secs: f64, max: Duration) -> anyhow::Result<Duration> {
    match Duration::try_from_secs_f64(secs) {
        Ok(duration) if !duration.is_zero() && duration <= max => Ok(duration),
        _ => Err(anyhow!(
            "the timeout must be a positive number of seconds, at most {}, not {secs}",
            max.as_secs()
        )),
    }
}

/// The addresses of a `stun:` server over UDP, in the order to try them: SRV `_stun._udp`
/// then A/AAAA (RFC 8489 §8), the first address of each target, of the family asked for
/// (`Some(true)`: IPv4 only, `Some(false)`: IPv6 only). `timeout` bounds the whole resolution.
pub async fn resolve_stun(
    uri: &StunUri,
    dns: &DnsArgs,
    ipv4_only: Option<bool>,
    timeout: Duration,
) -> anyhow::Result<Vec<SocketAddr>> {
    let client = Dns::new(dns.dns_server, timeout);
    let name = ServerName::stun(uri);
    let lookup = discovery::resolve(&client, &name, &[Transport::Udp]);
    let resolution = tokio::time::timeout(timeout, lookup).await.map_err(|_| {
        anyhow!(
            "cannot resolve {}: no answer within {} s",
            uri.host,
            timeout.as_secs_f64()
        )
    })?;
    if resolution.candidates.is_empty() {
        bail!("cannot resolve {}: {}", uri.host, resolution.error());
    }
    let addresses = resolution.first_per_target(|a| ipv4_only.is_none_or(|v4| a.is_ipv4() == v4));
    if addresses.is_empty() {
        let family = if ipv4_only == Some(false) {
            "IPv6"
        } else {
            "IPv4"
        };
        bail!("{} has no {family} address", uri.host);
    }
    Ok(addresses)
}

/// Errors a client socket reports for one earlier datagram (an ICMP error surfacing on
/// Linux) or a spurious wake-up: the transaction goes on.
pub fn is_transient(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionRefused, ConnectionReset, Interrupted, WouldBlock};
    matches!(
        error.kind(),
        ConnectionRefused | ConnectionReset | Interrupted | WouldBlock
    )
}

/// The local IP the system routes to `server` from: discovery compares it with the mapped
/// address, so the socket must be bound to it, not to a wildcard (RFC 5780 §4.3).
pub async fn route_to(server: SocketAddr) -> anyhow::Result<IpAddr> {
    let unspecified: IpAddr = match server {
        SocketAddr::V4(_) => std::net::Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
    };
    let socket = UdpSocket::bind(SocketAddr::new(unspecified, 0))
        .await
        .with_context(|| format!("cannot bind a UDP socket on {unspecified}"))?;
    socket
        .connect(server)
        .await
        .with_context(|| format!("no route to {server}"))?;
    Ok(socket.local_addr().context("no local address")?.ip())
}
