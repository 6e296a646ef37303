//! What the client commands (`turnpike stun`, `turnpike nat`) share: checking their arguments
//! at parse time, and telling a socket error that concerns one datagram from a fatal one.

use std::time::Duration;

use std::net::{IpAddr, SocketAddr};

use anyhow::{anyhow, Context};
use ice::StunUri;
use tokio::net::UdpSocket;

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
