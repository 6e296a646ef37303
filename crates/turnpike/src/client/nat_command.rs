//! `turnpike nat stun:HOST[:PORT] ...`: NAT behaviour discovery (RFC 5780 §4) over UDP,
//! printed as text or JSON.
//!
//! The thin tokio driver around [`ice::NatDiscovery`]: resolve the servers, bind the primary
//! socket (and, for `--lifetime`, the second socket of RFC 5780 §4.6) on the address that
//! routes to the first server, then the run loop of the `ice::nat` docs.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};

use crate::client::client_args::{
    is_transient, parse_seconds, parse_uri, resolve_stun, route_to, seconds_duration,
};
use crate::client::discovery::DnsArgs;
use ice::nat::{
    Lifetime, LifetimeConfig, Lifetimes, Mapping, NatConfig, NatDiscovery, NatReport, NatSocket,
    ProbeOutcome, ProbeRecord,
};
use ice::StunUri;
use sansio::{Core, Datagram};
use stun::TransactionId;
use tokio::net::UdpSocket;

/// Arguments of `turnpike nat`.
#[derive(Debug, clap::Args)]
pub struct NatArgs {
    /// STUN servers as RFC 7064 URIs, `stun:HOST[:PORT]` (port 3478 by default). The first
    /// that supports RFC 5780 (sends OTHER-ADDRESS) runs the mapping and filtering tests; the
    /// mapped addresses of all of them are compared.
    #[arg(value_name = "URI", required = true, value_parser = parse_uri)]
    pub uris: Vec<String>,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// How long to wait for the answer to each probe, retransmissions included (requests at
    /// 0, 0.5, 1.5, 3.5 s, ...). Filtering and hairpinning probes that the NAT blocks take
    /// this long.
    #[arg(long, default_value_t = 3.0, value_name = "SECS", value_parser = parse_timeout)]
    pub timeout: f64,
    /// Also measure how long the NAT keeps an idle binding (RFC 5780 §4.6), for a new binding
    /// and for one refreshed 3 s after it was made: each wait on a fresh binding, waits from
    /// 1 s doubling up to --lifetime-max (all at once), then a binary search. Takes about
    /// three times the longer lifetime.
    #[arg(long)]
    pub lifetime: bool,
    /// The longest wait of the lifetime test, in seconds.
    #[arg(long, default_value_t = 600, value_name = "SECS", requires = "lifetime",
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub lifetime_max: u64,
    /// Use only IPv4 addresses of the servers.
    #[arg(long, short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// Use only IPv6 addresses of the servers.
    #[arg(long, short = '6')]
    pub ipv6: bool,
    /// DNS for the servers' SRV and address records.
    #[command(flatten)]
    pub dns: DnsArgs,
}

/// A server as given and as resolved.
#[derive(Debug, Clone)]
struct Server {
    uri: String,
    address: SocketAddr,
}

/// Runs discovery and prints the report. No answer from any server is an error (exit 1),
/// after the report.
pub async fn run(args: NatArgs) -> anyhow::Result<()> {
    let timeout = timeout_duration(args.timeout)?;
    let servers = resolve_all(&args, timeout).await?;
    let first = servers
        .first()
        .ok_or_else(|| anyhow!("no STUN server given"))?;
    let local_ip = route_to(first.address).await?;
    let primary = UdpSocket::bind(SocketAddr::new(local_ip, 0))
        .await
        .with_context(|| format!("cannot bind a UDP socket on {local_ip}"))?;
    let local = primary.local_addr().context("no local address")?;
    let probe = if args.lifetime {
        let socket = UdpSocket::bind(SocketAddr::new(local_ip, 0))
            .await
            .with_context(|| format!("cannot bind a second UDP socket on {local_ip}"))?;
        Some(socket)
    } else {
        None
    };
    let mut config = NatConfig::with_probe_timeout(timeout);
    if args.lifetime {
        let max_wait = Duration::from_secs(args.lifetime_max);
        config.lifetime = Some(LifetimeConfig {
            max_wait,
            ..LifetimeConfig::default()
        });
        tracing::info!(
            "measuring the binding lifetime (RFC 5780 §4.6) with waits of up to {} s: this \
             takes a while",
            max_wait.as_secs()
        );
    }
    let started = Instant::now();
    let addresses = servers.iter().map(|s| s.address).collect();
    // RFC 8489 §5: transaction ids are uniformly and cryptographically random.
    let nat = NatDiscovery::new(started, config, addresses, local, || {
        TransactionId(rand::random())
    });
    let report = drive(nat, local_ip, primary, probe).await?;
    let elapsed = started.elapsed();
    print_report(&args, &servers, &report, elapsed)?;
    if report.public.is_none() {
        bail!(
            "no server answered: UDP to {} is blocked, or the server{} down",
            servers
                .iter()
                .map(|s| s.address.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            if servers.len() == 1 { " is" } else { "s are" }
        );
    }
    Ok(())
}

/// A datagram (or a fatal error) from one of discovery's sockets.
type Received = (NatSocket, std::io::Result<(Vec<u8>, SocketAddr)>);

/// Runs discovery over the sockets until it reports. The lifetime test's trial sockets
/// ([`NatSocket::LifetimeBinding`]) are bound on `local_ip` the first time discovery sends
/// from them; every socket has a reader task feeding one channel.
async fn drive(
    mut nat: NatDiscovery,
    local_ip: std::net::IpAddr,
    primary: UdpSocket,
    probe: Option<UdpSocket>,
) -> anyhow::Result<NatReport> {
    let (deliver, mut incoming) = tokio::sync::mpsc::channel::<Received>(256);
    let mut sockets = Sockets {
        open: HashMap::new(),
        readers: tokio::task::JoinSet::new(),
        deliver,
    };
    sockets.add(NatSocket::Primary, primary);
    if let Some(probe) = probe {
        sockets.add(NatSocket::LifetimeProbe, probe);
    }
    let mut logged = 0;
    loop {
        for record in nat.probes().get(logged..).unwrap_or_default() {
            log_probe(record);
        }
        logged = nat.probes().len();
        // The run-loop contract of every core (sans-IO `Core`): its one event is the report.
        if let Some(report) = Core::poll_event(&mut nat) {
            return Ok(report);
        }
        while let Some(transmit) = Core::poll_transmit(&mut nat, Instant::now()) {
            let socket = match sockets.open.get(&transmit.socket) {
                Some(socket) => socket.clone(),
                None if matches!(transmit.socket, NatSocket::LifetimeBinding(_)) => {
                    let socket = UdpSocket::bind(SocketAddr::new(local_ip, 0))
                        .await
                        .with_context(|| format!("cannot bind a UDP socket on {local_ip}"))?;
                    sockets.add(transmit.socket, socket)
                }
                None => bail!("internal error: no {} socket", transmit.socket),
            };
            // A failed send is a probe that goes unanswered (no route to the server's other
            // address, say): the report says so.
            if let Err(error) = socket.send_to(transmit.payload, transmit.destination).await {
                tracing::debug!(%error, destination = %transmit.destination, "send failed");
            }
        }
        let Some(wake) = Core::poll_timeout(&nat) else {
            continue;
        };
        tokio::select! {
            () = tokio::time::sleep_until(wake.into()) => Core::handle_timeout(&mut nat, Instant::now()),
            Some((which, received)) = incoming.recv() => match received {
                Ok((bytes, from)) => {
                    let datagram = Datagram { local: which, from, bytes: &bytes };
                    Core::handle_input(&mut nat, Instant::now(), datagram);
                }
                Err(error) => {
                    return Err(error).with_context(|| format!("cannot receive on the {which} socket"))
                }
            },
        }
    }
}

/// Discovery's open sockets and their readers (aborted when this is dropped).
struct Sockets {
    open: HashMap<NatSocket, Arc<UdpSocket>>,
    readers: tokio::task::JoinSet<()>,
    deliver: tokio::sync::mpsc::Sender<Received>,
}

impl Sockets {
    fn add(&mut self, which: NatSocket, socket: UdpSocket) -> Arc<UdpSocket> {
        let socket = Arc::new(socket);
        let reader = read_socket(which, socket.clone(), self.deliver.clone());
        self.readers.spawn(reader);
        self.open.insert(which, socket.clone());
        socket
    }
}

/// Forwards what `socket` receives until a fatal error (sent on too) or the channel closes.
async fn read_socket(
    which: NatSocket,
    socket: Arc<UdpSocket>,
    deliver: tokio::sync::mpsc::Sender<Received>,
) {
    let mut buffer = [0u8; 2048];
    loop {
        let received = match socket.recv_from(&mut buffer).await {
            Ok((len, from)) => Ok((buffer[..len].to_vec(), from)),
            Err(error) if is_transient(&error) => {
                tracing::debug!(%error, "ignoring socket error");
                continue;
            }
            Err(error) => Err(error),
        };
        let fatal = received.is_err();
        if deliver.send((which, received)).await.is_err() || fatal {
            return;
        }
    }
}

fn log_probe(record: &ProbeRecord) {
    tracing::debug!(
        test = %record.test,
        socket = %record.socket,
        destination = %record.destination,
        started_ms = record.started.as_millis() as u64,
        outcome = %record.outcome,
        "probe finished"
    );
}

/// A positive, finite number of seconds that fits a [`Duration`].
fn parse_timeout(text: &str) -> Result<f64, String> {
    parse_seconds(text, MAX_TIMEOUT)
}

/// The longest `--timeout`: ten minutes per probe.
const MAX_TIMEOUT: Duration = Duration::from_secs(600);

fn timeout_duration(secs: f64) -> anyhow::Result<Duration> {
    seconds_duration(secs, MAX_TIMEOUT)
}

/// Resolves every URI; all servers get an address of one family (the primary socket's).
async fn resolve_all(args: &NatArgs, timeout: Duration) -> anyhow::Result<Vec<Server>> {
    let mut servers = Vec::with_capacity(args.uris.len());
    let mut family_v4 = if args.ipv4 {
        Some(true)
    } else if args.ipv6 {
        Some(false)
    } else {
        None
    };
    for text in &args.uris {
        let uri = StunUri::parse(text).with_context(|| format!("invalid STUN URI \"{text}\""))?;
        if uri.secure {
            bail!("{text}: NAT behaviour discovery runs over UDP; stuns: (TLS) cannot be used");
        }
        // The first server SRV names (RFC 8489 §8): the tests compare what each server saw,
        // so each URI is one server.
        let found = resolve_stun(&uri, &args.dns, family_v4, timeout)
            .await
            .map_err(|error| match family_v4 {
                Some(_) if !servers.is_empty() => {
                    error.context("all servers must share the family of the first")
                }
                _ => error,
            })?;
        let Some(&address) = found.first() else {
            bail!("{} has no address", uri.host);
        };
        family_v4 = Some(address.is_ipv4());
        servers.push(Server {
            uri: text.clone(),
            address,
        });
    }
    Ok(servers)
}

// ------------------------------------------------------------------------------------------
// Output
// ------------------------------------------------------------------------------------------

/// The width of the text labels.
const LABEL: usize = 17;

fn print_report(
    args: &NatArgs,
    servers: &[Server],
    report: &NatReport,
    elapsed: Duration,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut out, &json_report(servers, report, elapsed))?;
        writeln!(out)?;
        return Ok(());
    }
    for line in text_report(servers, report) {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// The URI a server was given as.
fn uri_of(servers: &[Server], address: SocketAddr) -> &str {
    servers
        .iter()
        .find(|s| s.address == address)
        .map_or("?", |s| s.uri.as_str())
}

fn line(label: &str, value: impl std::fmt::Display) -> String {
    format!("{label:<LABEL$}{value}")
}

fn text_report(servers: &[Server], report: &NatReport) -> Vec<String> {
    let mut lines = Vec::new();
    let several = report.servers.len() > 1;
    for observed in &report.servers {
        let name = format!("{} ({})", uri_of(servers, observed.server), observed.server);
        let value = match &observed.outcome {
            ProbeOutcome::Answered { response, .. } if several => {
                format!("{name}: mapped {}", response.mapped)
            }
            ProbeOutcome::Answered { .. } => name,
            other => format!("{name}: {other}"),
        };
        lines.push(line("server", value));
    }
    if let Some(other) = report.other_address {
        let of = match report.behaviour_server {
            Some(server) if several => format!(" of {}", uri_of(servers, server)),
            _ => String::new(),
        };
        lines.push(line(
            "other address",
            format!("{other}{of} (RFC 5780 behaviour discovery)"),
        ));
    }
    lines.push(line("local address", report.local));
    lines.push(line(
        "public address",
        report
            .public
            .map_or_else(|| "unknown".to_owned(), |p| p.to_string()),
    ));
    lines.push(line("mapping", mapping_text(report)));
    lines.push(line(
        "filtering",
        match report.filtering {
            Some(filtering) => format!("{filtering} (RFC 5780 §4.4)"),
            None => "unknown".to_owned(),
        },
    ));
    lines.push(line(
        "hairpinning",
        match (report.hairpinning, report.behind_nat) {
            (Some(true), _) => "yes",
            (Some(false), _) => "no",
            (None, Some(false)) => "not applicable (no NAT)",
            (None, _) => "unknown",
        },
    ));
    lines.push(line(
        "NAT type",
        match report.nat_type {
            Some(nat_type) => format!("{nat_type} (RFC 3489)"),
            None => "unknown".to_owned(),
        },
    ));
    if let Some(lifetimes) = report.lifetime {
        lines.extend(lifetime_lines(lifetimes));
    }
    for note in &report.notes {
        lines.push(line("note", note));
    }
    lines
}

fn mapping_text(report: &NatReport) -> String {
    let Some(mapping) = report.mapping else {
        return "unknown".to_owned();
    };
    if report.behind_nat == Some(false) {
        return format!("{mapping} (no NAT: the mapped address is the local address)");
    }
    if report.mapping_by_comparison {
        let answered = report
            .servers
            .iter()
            .filter(|s| s.mapped().is_some())
            .count();
        return match mapping {
            Mapping::EndpointIndependent => {
                format!("{mapping} (the same mapped address from {answered} servers)")
            }
            _ => format!("{mapping} (the servers saw different mapped addresses)"),
        };
    }
    format!("{mapping} (RFC 5780 §4.3)")
}

/// One line per lifetime: a new binding's, then a refreshed one's.
fn lifetime_lines(lifetimes: Lifetimes) -> [String; 2] {
    [
        line(
            "binding lifetime",
            format!(
                "{} for a new binding (RFC 5780 §4.6)",
                lifetime_text(lifetimes.new)
            ),
        ),
        line(
            "binding lifetime",
            format!(
                "{} for a binding refreshed {} after it was made",
                lifetime_text(lifetimes.refreshed),
                seconds(lifetimes.warm_up)
            ),
        ),
    ]
}

fn lifetime_text(lifetime: Lifetime) -> String {
    match lifetime.expired {
        None => format!(
            "longer than {} (the longest wait tried)",
            seconds(lifetime.alive)
        ),
        Some(expired) if lifetime.alive.is_zero() => {
            format!("shorter than {}", seconds(expired))
        }
        Some(expired) => format!(
            "between {} and {}",
            seconds(lifetime.alive),
            seconds(expired)
        ),
    }
}

/// Seconds as a person writes them: "5 s", "2.5 s".
fn seconds(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis % 1000 == 0 {
        format!("{} s", millis / 1000)
    } else {
        format!("{} s", millis as f64 / 1000.0)
    }
}

/// The result as `--json` prints it.
#[derive(Debug, serde::Serialize)]
struct JsonReport<'a> {
    servers: Vec<JsonServer<'a>>,
    local: SocketAddr,
    public: Option<SocketAddr>,
    behind_nat: Option<bool>,
    behaviour_server: Option<SocketAddr>,
    other_address: Option<SocketAddr>,
    mapping: Option<&'static str>,
    /// How the mapping was found: "rfc5780", "no-nat" or "server-comparison".
    mapping_method: Option<&'static str>,
    filtering: Option<&'static str>,
    hairpinning: Option<bool>,
    nat_type: Option<&'static str>,
    /// A new binding's lifetime.
    lifetime: Option<JsonLifetime>,
    /// A refreshed binding's lifetime.
    lifetime_refreshed: Option<JsonLifetime>,
    /// Seconds between a binding's first request and its refresh.
    lifetime_warm_up_s: Option<f64>,
    notes: Vec<String>,
    probes: Vec<JsonProbe>,
    duration_ms: u64,
}

#[derive(Debug, serde::Serialize)]
struct JsonServer<'a> {
    uri: &'a str,
    address: SocketAddr,
    mapped: Option<SocketAddr>,
    other_address: Option<SocketAddr>,
    outcome: String,
}

#[derive(Debug, serde::Serialize)]
struct JsonLifetime {
    /// The longest wait after which the binding was still alive.
    alive_s: f64,
    /// The shortest wait after which it was gone; null if it never was.
    expired_s: Option<f64>,
}

#[derive(Debug, serde::Serialize)]
struct JsonProbe {
    test: String,
    socket: &'static str,
    destination: SocketAddr,
    started_ms: u64,
    outcome: String,
}

fn json_lifetime(lifetime: Lifetime) -> JsonLifetime {
    JsonLifetime {
        alive_s: lifetime.alive.as_secs_f64(),
        expired_s: lifetime.expired.map(|e| e.as_secs_f64()),
    }
}

fn json_report<'a>(servers: &'a [Server], report: &NatReport, elapsed: Duration) -> JsonReport<'a> {
    let mapping_method = report.mapping.map(|_| {
        if report.behind_nat == Some(false) {
            "no-nat"
        } else if report.mapping_by_comparison {
            "server-comparison"
        } else {
            "rfc5780"
        }
    });
    JsonReport {
        servers: report
            .servers
            .iter()
            .map(|s| JsonServer {
                uri: uri_of(servers, s.server),
                address: s.server,
                mapped: s.mapped(),
                other_address: s.other_address(),
                outcome: s.outcome.to_string(),
            })
            .collect(),
        local: report.local,
        public: report.public,
        behind_nat: report.behind_nat,
        behaviour_server: report.behaviour_server,
        other_address: report.other_address,
        mapping: report.mapping.map(Mapping::as_str),
        mapping_method,
        filtering: report.filtering.map(|f| f.as_str()),
        hairpinning: report.hairpinning,
        nat_type: report.nat_type.map(|t| t.as_str()),
        lifetime: report.lifetime.map(|l| json_lifetime(l.new)),
        lifetime_refreshed: report.lifetime.map(|l| json_lifetime(l.refreshed)),
        lifetime_warm_up_s: report.lifetime.map(|l| l.warm_up.as_secs_f64()),
        notes: report.notes.iter().map(ToString::to_string).collect(),
        probes: report
            .probes
            .iter()
            .map(|p| JsonProbe {
                test: p.test.to_string(),
                socket: p.socket.as_str(),
                destination: p.destination,
                started_ms: p.started.as_millis() as u64,
                outcome: p.outcome.to_string(),
            })
            .collect(),
        duration_ms: elapsed.as_millis() as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_must_be_positive_and_bounded() {
        assert_eq!(parse_timeout("0.5"), Ok(0.5));
        for bad in ["0", "-1", "nan", "inf", "601", "soon"] {
            assert!(parse_timeout(bad).is_err(), "{bad}");
        }
    }

    fn parse(args: &[&str]) -> Result<NatArgs, clap::Error> {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from(args)?;
        match cli.command {
            crate::cli::Command::Nat(args) => Ok(args),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn arguments() {
        let error = parse(&["turnpike", "nat"]).unwrap_err();
        assert_eq!(
            error.kind(),
            clap::error::ErrorKind::MissingRequiredArgument
        );
        assert_eq!(error.exit_code(), 2);
        let args = parse(&[
            "turnpike",
            "nat",
            "stun:a",
            "stun:b:3479",
            "--json",
            "--lifetime",
            "--lifetime-max",
            "30",
            "--timeout",
            "1.5",
        ])
        .unwrap();
        assert_eq!(args.uris, ["stun:a", "stun:b:3479"]);
        assert!(args.json && args.lifetime);
        assert_eq!((args.lifetime_max, args.timeout), (30, 1.5));
        // --lifetime-max only with --lifetime; URIs are checked while parsing.
        assert!(parse(&["turnpike", "nat", "stun:a", "--lifetime-max", "30"]).is_err());
        assert!(parse(&["turnpike", "nat", "stun://a"]).is_err());
        assert!(parse(&[
            "turnpike",
            "nat",
            "stun:a",
            "--lifetime",
            "--lifetime-max",
            "0"
        ])
        .is_err());
    }

    #[test]
    fn lifetimes_read_as_intervals() {
        let secs = Duration::from_secs;
        let text = |alive, expired| lifetime_text(Lifetime { alive, expired });
        assert_eq!(text(secs(28), Some(secs(30))), "between 28 s and 30 s");
        assert_eq!(
            text(secs(600), None),
            "longer than 600 s (the longest wait tried)"
        );
        assert_eq!(text(Duration::ZERO, Some(secs(1))), "shorter than 1 s");
        assert_eq!(seconds(Duration::from_millis(2500)), "2.5 s");
    }
}
