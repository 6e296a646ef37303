//! `turnpike stun stun:HOST[:PORT]`: one Binding transaction over UDP, printed as text or JSON;
//! `stuns:HOST[:PORT]` (optionally `?transport=udp`) runs it inside DTLS (RFC 7350,
//! [`crate::client::stun_dtls`]).
//!
//! The thin tokio driver around [`ice::BindingTransaction`]: resolve (SRV `_stun._udp`, then
//! A/AAAA: RFC 8489 §8), bind, then the run loop of the `ice` crate docs (send what is due,
//! sleep until the next timeout or a datagram). When SRV names several servers, they are
//! tried in order until one answers.

use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};

use crate::client::client_args::{
    is_transient, parse_seconds, parse_uri, resolve_stun, seconds_duration,
};
use crate::client::discovery::DnsArgs;
use crate::client::stun_dtls;
use crate::client::transaction_driver::Wire;
use ice::{
    BindingResponse, BindingTransaction, RequestOptions, RetransmitTiming, StunUri,
    TransactionError,
};
use stun::TransactionId;
use tokio::net::UdpSocket;

/// Arguments of `turnpike stun`.
#[derive(Debug, clap::Args)]
pub struct StunArgs {
    /// RFC 7064 URI of the server: `stun:HOST[:PORT]` (port 3478 by default), or
    /// `stuns:HOST[:PORT]` for STUN over DTLS (RFC 7350; port 5349 by default;
    /// `?transport=udp` may follow).
    #[arg(value_name = "URI", value_parser = parse_stun_uri)]
    pub uri: String,
    /// For stuns:, trust only the certificates of this PEM file (a private CA, a self-signed
    /// server, intermediates) instead of the public web CAs.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<std::path::PathBuf>,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Give up after this many seconds, name resolution included.
    #[arg(long, default_value_t = 5.0, value_name = "SECS", value_parser = parse_timeout)]
    pub timeout: f64,
    /// Use only an IPv4 address of the server.
    #[arg(long, short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// Use only an IPv6 address of the server.
    #[arg(long, short = '6')]
    pub ipv6: bool,
    /// Initial retransmission timeout in milliseconds; it doubles with each resend, and at most
    /// 7 requests are sent (RFC 8489 §6.2.1).
    #[arg(long, default_value_t = 500, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub rto: u64,
    /// DNS for the server's SRV and address records.
    #[command(flatten)]
    pub dns: DnsArgs,
}

/// `text` without a trailing `?transport=udp` (any case): `stuns:` with it is DTLS, the only
/// secure transport of this command.
fn without_udp_transport(text: &str) -> &str {
    let cut = text.len().saturating_sub("?transport=udp".len());
    match text.get(cut..) {
        Some(tail) if tail.eq_ignore_ascii_case("?transport=udp") => &text[..cut],
        _ => text,
    }
}

/// [`parse_uri`] for `turnpike stun`, which also takes `stuns:…?transport=udp`.
fn parse_stun_uri(text: &str) -> Result<String, ice::UriError> {
    parse_uri(without_udp_transport(text)).map(|_| text.to_owned())
}

/// Runs one Binding transaction and prints the result.
pub async fn run(args: StunArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let uri = StunUri::parse(without_udp_transport(&args.uri))
        .with_context(|| format!("invalid STUN URI \"{}\"", args.uri))?;
    // stuns: is DTLS here (RFC 7350 §4: TLS or DTLS; this command speaks UDP only).
    let verifier = match uri.secure {
        true => Some(stun_dtls::Verifier::new(
            &uri.host,
            args.ca_file.as_deref(),
        )?),
        false => None,
    };
    // The addresses are those of the host (SRV for stuns: over UDP is not looked up).
    let uri = StunUri {
        secure: false,
        explicit_port: uri.explicit_port || uri.secure,
        ..uri
    };
    let timeout = timeout_duration(args.timeout)?;
    let deadline = started + timeout;
    let family = match (args.ipv4, args.ipv6) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    let servers = resolve_stun(&uri, &args.dns, family, timeout).await?;
    let rto = RetransmitTiming::with_rto(Duration::from_millis(args.rto));
    let (server, result, timing) = first_answer(&servers, rto, deadline, verifier.as_ref()).await?;
    match result {
        Ok(response) => print_response(&args, server, &response),
        Err(TransactionError::Timeout { sends }) => {
            let schedule = RetransmitTiming {
                give_up_after: None,
                ..timing
            }
            .total();
            bail!(
                "no answer from {server} ({}) after {} s ({sends} request{} sent)",
                args.uri,
                seconds(schedule.min(if servers.len() == 1 {
                    timeout
                } else {
                    timing.give_up_after.unwrap_or(timeout)
                })),
                if sends == 1 { "" } else { "s" }
            )
        }
        Err(error @ TransactionError::ErrorResponse { .. }) => {
            let unknown = match &error {
                TransactionError::ErrorResponse {
                    unknown_attributes, ..
                } if !unknown_attributes.is_empty() => {
                    let names: Vec<String> =
                        unknown_attributes.iter().map(ToString::to_string).collect();
                    format!(" (unknown: {})", names.join(", "))
                }
                _ => String::new(),
            };
            bail!("{} ({server}): {error}{unknown}", args.uri)
        }
        Err(error) => bail!("{} ({server}): {error}", args.uri),
    }
}

/// A positive, finite number of seconds that fits a [`Duration`].
fn parse_timeout(text: &str) -> Result<f64, String> {
    parse_seconds(text, MAX_TIMEOUT)
}

/// The longest `--timeout`: a day, far beyond the longest schedule (`--rto 60000`: 79 min).
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

fn timeout_duration(secs: f64) -> anyhow::Result<Duration> {
    seconds_duration(secs, MAX_TIMEOUT)
}

/// Tries `servers` in order until one answers (RFC 2782: a client moves to the next target
/// when one does not respond). Each gets an equal share of the time left; the last one's
/// outcome is returned when none answers.
async fn first_answer(
    servers: &[SocketAddr],
    rto: RetransmitTiming,
    deadline: Instant,
    dtls: Option<&stun_dtls::Verifier>,
) -> anyhow::Result<(
    SocketAddr,
    Result<BindingResponse, TransactionError>,
    RetransmitTiming,
)> {
    let mut last = None;
    for (index, &server) in servers.iter().enumerate() {
        let left = u32::try_from(servers.len() - index).unwrap_or(u32::MAX);
        let timing = RetransmitTiming {
            give_up_after: Some(deadline.saturating_duration_since(Instant::now()) / left),
            ..rto
        };
        tracing::debug!(%server, "sending STUN Binding request");
        let result = match dtls {
            Some(verifier) => stun_dtls::transact(server, verifier, timing).await?,
            None => transact(server, timing).await?,
        };
        match result {
            Err(TransactionError::Timeout { .. }) if left > 1 => {
                tracing::info!(%server, "no answer: trying the next server");
                last = Some((server, result, timing));
            }
            result => return Ok((server, result, timing)),
        }
    }
    last.ok_or_else(|| anyhow!("no server address to try"))
}

/// A new UDP socket on the wildcard address of `server`'s family, any port.
pub async fn socket_for(server: SocketAddr) -> anyhow::Result<UdpSocket> {
    let bind: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    UdpSocket::bind(bind)
        .await
        .with_context(|| format!("cannot bind a UDP socket on {bind}"))
}

/// Drives the transaction over a new socket until it ends. The outer error is a socket
/// failure; the inner result is the transaction's outcome.
async fn transact(
    server: SocketAddr,
    timing: RetransmitTiming,
) -> anyhow::Result<Result<BindingResponse, TransactionError>> {
    let socket = socket_for(server).await?;
    // RFC 8489 §5: the transaction id is uniformly and cryptographically random.
    let id = TransactionId(rand::random());
    let tx = BindingTransaction::new(
        Instant::now(),
        server,
        id,
        &RequestOptions::default(),
        timing,
    )?;
    let mut wire = UdpWire {
        socket,
        buf: [0u8; 2048],
    };
    crate::client::transaction_driver::run(tx, &mut wire).await
}

/// A UDP socket as the transaction's [`Wire`].
struct UdpWire {
    socket: UdpSocket,
    buf: [u8; 2048],
}

impl Wire for UdpWire {
    async fn send(&mut self, to: SocketAddr, payload: &[u8]) -> anyhow::Result<()> {
        (self.socket.send_to(payload, to).await).with_context(|| format!("cannot send to {to}"))?;
        Ok(())
    }

    async fn recv(&mut self) -> anyhow::Result<Option<(SocketAddr, Vec<u8>)>> {
        match self.socket.recv_from(&mut self.buf).await {
            Ok((len, from)) => Ok(Some((from, self.buf[..len].to_vec()))),
            // ICMP errors reported on the socket (some systems do): keep waiting, a
            // retransmission may still get through.
            Err(error) if is_transient(&error) => {
                tracing::debug!(%error, "ignoring socket error");
                Ok(None)
            }
            Err(error) => Err(error).context("cannot receive from the UDP socket"),
        }
    }
}

/// The result as `--json` prints it.
#[derive(Debug, serde::Serialize)]
struct Report<'a> {
    server: SocketAddr,
    uri: &'a str,
    mapped: SocketAddr,
    response_origin: Option<SocketAddr>,
    other_address: Option<SocketAddr>,
    software: Option<&'a str>,
    rtt_ms: f64,
}

fn print_response(
    args: &StunArgs,
    server: SocketAddr,
    response: &BindingResponse,
) -> anyhow::Result<()> {
    let rtt_ms = response.rtt.as_micros() as f64 / 1000.0;
    let mut out = std::io::stdout().lock();
    if args.json {
        let report = Report {
            server,
            uri: &args.uri,
            mapped: response.mapped,
            response_origin: response.response_origin,
            other_address: response.other_address,
            software: response.software.as_deref(),
            rtt_ms,
        };
        serde_json::to_writer(&mut out, &report)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(out, "{:<12}{server} ({})", "server", args.uri)?;
    writeln!(out, "{:<12}{}", "mapped", response.mapped)?;
    if let Some(origin) = response.response_origin {
        writeln!(out, "{:<12}{origin}", "origin")?;
    }
    if let Some(other) = response.other_address {
        writeln!(
            out,
            "{:<12}{other} (RFC 5780 behaviour discovery: supported)",
            "other"
        )?;
    }
    if let Some(software) = &response.software {
        writeln!(out, "{:<12}{software}", "software")?;
    }
    if response.sends > 1 {
        // Karn's ambiguity: the answer may be to an earlier request.
        writeln!(
            out,
            "{:<12}{rtt_ms:.1} ms (from the last of {} requests)",
            "rtt", response.sends
        )?;
    } else {
        writeln!(out, "{:<12}{rtt_ms:.1} ms", "rtt")?;
    }
    Ok(())
}

/// Seconds as a person writes them: "5", "39.5", "0.25".
fn seconds(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis % 1000 == 0 {
        format!("{}", millis / 1000)
    } else {
        format!("{}", millis as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_must_be_positive_and_finite() {
        assert_eq!(parse_timeout("1.5"), Ok(1.5));
        assert_eq!(parse_timeout("86400"), Ok(86400.0));
        for bad in ["0", "-1", "nan", "inf", "1e300", "86401", "soon"] {
            assert!(parse_timeout(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn seconds_are_written_briefly() {
        assert_eq!(seconds(Duration::from_secs(5)), "5");
        assert_eq!(seconds(Duration::from_millis(39_500)), "39.5");
        assert_eq!(seconds(Duration::from_millis(250)), "0.25");
    }

    #[test]
    fn uris_are_checked_while_parsing_arguments() {
        assert!(parse_uri("stun:example.org").is_ok());
        let error = parse_uri("stun://example.org").unwrap_err();
        assert!(error.to_string().contains("no \"//\""), "{error}");
    }

    // RFC 7350 §4: stuns: over UDP is DTLS; `?transport=udp` says so explicitly.
    #[test]
    fn stuns_may_name_udp_as_its_transport() {
        assert!(parse_stun_uri("stuns:example.org?transport=udp").is_ok());
        assert!(parse_stun_uri("stuns:example.org:5349?TRANSPORT=UDP").is_ok());
        assert_eq!(without_udp_transport("stuns:h?transport=udp"), "stuns:h");
        assert_eq!(without_udp_transport("stun:h"), "stun:h");
        assert!(parse_stun_uri("stuns:example.org?transport=tcp").is_err());
    }
}
