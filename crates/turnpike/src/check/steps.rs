//! The steps of one check, in order: DNS, connect, TLS, Binding, Allocate, a second
//! allocation, permissions both ways, data both ways in Send/Data indications and in
//! ChannelData, Refresh, deallocation. Each is timed and judged; the first failure ends the
//! check (the allocations made so far are deleted first).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ice::{TurnCredentials, TurnError, TurnEvent, TurnRequest};
use tokio::net::TcpStream;

use super::args::{Target, Transport};
use super::diagnosis::{self, relayed_is_unreachable, Evidence, CERT_WARN_DAYS};
use super::link::Link;
use super::report::{millis, DataStats, Facts, Outcome, Step, UriReport, Verdict};
use super::session::{binding, drive, Session};
use super::tls::TlsSettings;

/// What every check of a run shares.
#[derive(Debug)]
pub struct Settings {
    /// How long one step may take.
    pub timeout: Duration,
    /// Datagrams per data test.
    pub count: u32,
    /// Between two of them.
    pub interval: Duration,
    /// Only IPv4 (`Some(true)`), only IPv6 (`Some(false)`), or either.
    pub ipv4_only: Option<bool>,
    /// The realm expected.
    pub realm: Option<String>,
    /// TLS trust.
    pub tls: TlsSettings,
}

/// The credentials of a TURN check.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// Username and password.
    pub turn: TurnCredentials,
    /// Minted here from a REST secret.
    pub minted: bool,
}

/// A step that ended the check, with the outcome it implies.
struct Stop(Outcome);

/// One check in progress.
struct Run<'a> {
    target: &'a Target,
    settings: &'a Settings,
    steps: Vec<Step>,
    facts: Facts,
    evidence: Evidence,
    server: Option<SocketAddr>,
}

impl Run<'_> {
    fn record(&mut self, name: &'static str, verdict: Verdict, started: Instant, detail: String) {
        self.steps
            .push(Step::new(name, verdict, started.elapsed(), detail));
    }

    fn ok(&mut self, name: &'static str, started: Instant, detail: String) {
        self.record(name, Verdict::Ok, started, detail);
    }

    fn fail(
        &mut self,
        name: &'static str,
        started: Instant,
        detail: String,
        outcome: Outcome,
    ) -> Stop {
        self.record(name, Verdict::Fail, started, detail);
        Stop(outcome)
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.settings.timeout
    }
}

/// Checks one URI.
pub async fn check(
    target: &Target,
    credentials: Option<&Credentials>,
    settings: &Settings,
) -> UriReport {
    let mut run = Run {
        target,
        settings,
        steps: Vec::new(),
        facts: Facts::default(),
        evidence: Evidence {
            transport: Some(target.transport),
            host: target.host.clone(),
            realm_expected: settings.realm.clone(),
            unix_now: unix_now(),
            ..Evidence::default()
        },
        server: None,
    };
    let outcome = match steps(&mut run, credentials).await {
        Ok(()) => Outcome::Ok,
        Err(Stop(outcome)) => outcome,
    };
    UriReport {
        uri: target.uri.clone(),
        transport: target.transport,
        server: run.server,
        diagnoses: diagnosis::diagnose(&run.evidence),
        steps: run.steps,
        facts: run.facts,
        outcome,
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The steps, up to the first failure.
async fn steps(run: &mut Run<'_>, credentials: Option<&Credentials>) -> Result<(), Stop> {
    let (first, other) = resolve(run).await?;
    run.server = Some(first);
    run.evidence.server = Some(first);
    let reached = match connect(run, first, true).await {
        Ok(mut link) => binding_step(run, &mut link, first).await.map(|()| link),
        Err(stop) => Err(stop),
    };
    let (link, server) = match (reached, other) {
        (Ok(link), None) => (link, first),
        (Ok(link), Some(other)) => {
            other_family(run, other, first).await;
            (link, first)
        }
        (Err(stop), None) => return Err(stop),
        // The first address is silent: if the other family answers, the check goes on there.
        (Err(stop), Some(other)) => match reach_quietly(run, other).await {
            Some(link) => {
                if let Some(step) = run.steps.last_mut() {
                    step.verdict = Verdict::Warn;
                }
                run.ok(
                    "other family",
                    Instant::now(),
                    format!("{other} answers: going on there"),
                );
                run.evidence.silent_family = Some((first, other));
                run.evidence.no_answer = false;
                run.evidence.icmp_refused = false;
                run.evidence.connect_refused = false;
                run.evidence.connect_timeout = false;
                run.server = Some(other);
                run.evidence.server = Some(other);
                (link, other)
            }
            None => return Err(stop),
        },
    };
    let Some(credentials) = credentials else {
        return Ok(());
    };
    run.evidence.username = Some(credentials.turn.username.clone());
    run.evidence.minted = credentials.minted;
    let mut sessions = vec![Session::new(
        link,
        server,
        credentials.turn.clone(),
        run.settings.timeout,
    )];
    let result = relay_steps(run, &mut sessions, server, credentials).await;
    if result.is_err() {
        // Leave nothing behind on the server: allocations hold relay ports for their lifetime.
        cleanup(&mut sessions, run.settings.timeout).await;
    }
    result
}

/// The TURN steps over the first allocation's link and a second one.
async fn relay_steps(
    run: &mut Run<'_>,
    sessions: &mut Vec<Session>,
    server: SocketAddr,
    credentials: &Credentials,
) -> Result<(), Stop> {
    let first = allocate(run, sessions, 0, "allocate").await?;
    let link = connect(run, server, false).await?;
    sessions.push(Session::new(
        link,
        server,
        credentials.turn.clone(),
        run.settings.timeout,
    ));
    let second = allocate(run, sessions, 1, "allocate (second)").await?;
    grant(run, sessions, first, second, Grant::Permission).await?;
    data(run, sessions, second, false).await?;
    grant(run, sessions, first, second, Grant::Channel).await?;
    data(run, sessions, second, true).await?;
    refresh(run, sessions).await?;
    deallocate(run, sessions).await
}

/// DNS: the first address of the wanted family.
async fn resolve(run: &mut Run<'_>) -> Result<(SocketAddr, Option<SocketAddr>), Stop> {
    let started = Instant::now();
    let (host, port) = (run.target.host.clone(), run.target.port);
    let wanted = |a: &SocketAddr| match run.settings.ipv4_only {
        Some(v4) => a.is_ipv4() == v4,
        None => true,
    };
    if let Ok(ip) = host.parse::<IpAddr>() {
        let address = SocketAddr::new(ip, port);
        if !wanted(&address) {
            return Err(run.fail(
                "dns",
                started,
                format!("{ip} is not of the family asked for"),
                Outcome::Unreachable,
            ));
        }
        run.ok("dns", started, format!("{ip} (literal)"));
        return Ok((address, None));
    }
    let lookup = tokio::time::timeout(
        run.settings.timeout,
        tokio::net::lookup_host((host.as_str(), port)),
    )
    .await;
    let addresses: Vec<SocketAddr> = match lookup {
        Ok(Ok(found)) => found.collect(),
        Ok(Err(error)) => {
            run.evidence.dns_error = Some(error.to_string());
            return Err(run.fail("dns", started, error.to_string(), Outcome::Unreachable));
        }
        Err(_) => {
            run.evidence.dns_error = Some("no answer".into());
            return Err(run.fail("dns", started, "no answer".into(), Outcome::Unreachable));
        }
    };
    let listed: Vec<String> = addresses.iter().map(|a| a.ip().to_string()).collect();
    let Some(chosen) = addresses.iter().copied().find(wanted) else {
        let family = if run.settings.ipv4_only == Some(true) {
            "IPv4"
        } else {
            "IPv6"
        };
        let detail = format!("no {family} address (has {})", listed.join(", "));
        run.evidence.dns_error = Some(detail.clone());
        return Err(run.fail("dns", started, detail, Outcome::Unreachable));
    };
    run.ok("dns", started, listed.join(", "));
    // Without -4 or -6, the other family is tried too: a name whose A or AAAA record leads
    // nowhere makes the clients that try it first wait.
    let other = match run.settings.ipv4_only {
        None => addresses
            .into_iter()
            .find(|a| a.is_ipv4() != chosen.is_ipv4()),
        Some(_) => None,
    };
    Ok((chosen, other))
}

/// The address of the other family, once the first one answered: a warning when it does not.
async fn other_family(run: &mut Run<'_>, other: SocketAddr, first: SocketAddr) {
    let started = Instant::now();
    if reach_quietly(run, other).await.is_some() {
        run.ok("other family", started, format!("{other} answers too"));
    } else {
        run.record(
            "other family",
            Verdict::Warn,
            started,
            format!("no answer from {other}"),
        );
        run.evidence.silent_family = Some((other, first));
    }
}

/// Connects to `server` and has a Binding answered, recording nothing; at most two seconds.
async fn reach_quietly(run: &Run<'_>, server: SocketAddr) -> Option<Link> {
    let timeout = run.settings.timeout.min(Duration::from_secs(2));
    let mut link = match run.target.transport {
        Transport::Udp => Link::udp(server).await.ok()?,
        transport => {
            let connect = TcpStream::connect(server);
            let tcp = tokio::time::timeout(timeout, connect).await.ok()?.ok()?;
            if transport == Transport::Tcp {
                Link::stream(Box::new(tcp), server)
            } else {
                let unix_now = run.evidence.unix_now as i64;
                let handshake = run.settings.tls.handshake(tcp, &run.target.host, unix_now);
                let stream = tokio::time::timeout(timeout, handshake)
                    .await
                    .ok()?
                    .ok()?
                    .stream?;
                Link::stream(Box::new(stream), server)
            }
        }
    };
    match binding(&mut link, server, timeout).await {
        Ok(Ok(_)) => Some(link),
        _ => None,
    }
}

/// A link to the server: a UDP socket, a TCP connection, or a TLS session. Only the first
/// one is recorded as steps (connect, tls).
async fn connect(run: &mut Run<'_>, server: SocketAddr, record: bool) -> Result<Link, Stop> {
    let timeout = run.settings.timeout;
    if run.target.transport == Transport::Udp {
        return Link::udp(server).await.map_err(|error| {
            run.fail(
                "connect",
                Instant::now(),
                format!("cannot bind a UDP socket: {error}"),
                Outcome::Unreachable,
            )
        });
    }
    let started = Instant::now();
    let tcp = match tokio::time::timeout(timeout, TcpStream::connect(server)).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(error)) => {
            run.evidence.connect_refused = error.kind() == std::io::ErrorKind::ConnectionRefused;
            return Err(run.fail("connect", started, error.to_string(), Outcome::Unreachable));
        }
        Err(_) => {
            run.evidence.connect_timeout = true;
            return Err(run.fail("connect", started, "no answer".into(), Outcome::Unreachable));
        }
    };
    // Small STUN messages go out at once.
    let _ = tcp.set_nodelay(true);
    if record {
        run.ok("connect", started, format!("TCP to {server}"));
    }
    if run.target.transport == Transport::Tcp {
        return Ok(Link::stream(Box::new(tcp), server));
    }
    let started = Instant::now();
    let handshake = tokio::time::timeout(
        timeout,
        run.settings
            .tls
            .handshake(tcp, &run.target.host, run.evidence.unix_now as i64),
    )
    .await;
    let handshake = match handshake {
        Ok(Ok(handshake)) => handshake,
        Ok(Err(error)) => return Err(run.fail("tls", started, format!("{error:#}"), Outcome::Tls)),
        Err(_) => return Err(run.fail("tls", started, "no handshake".into(), Outcome::Tls)),
    };
    if !record {
        return handshake
            .stream
            .map(|s| Link::stream(Box::new(s), server))
            .ok_or_else(|| {
                run.fail(
                    "tls",
                    started,
                    handshake.error.unwrap_or_default(),
                    Outcome::Tls,
                )
            });
    }
    let mut detail = String::new();
    if let Some(cert) = &handshake.certificate {
        run.evidence.cert_names = cert.names.clone();
        run.evidence.cert_days = Some(cert.expires_in_days);
        detail = format!(
            "certificate for {}, expires in {} days, chain of {}",
            cert.names.join(", "),
            cert.expires_in_days,
            cert.chain_len
        );
        run.facts.certificate = Some(cert.clone());
    }
    run.evidence.cert_problem = handshake.problem;
    let Some(stream) = handshake.stream else {
        let error = handshake.error.unwrap_or_default();
        return Err(run.fail("tls", started, format!("{error}; {detail}"), Outcome::Tls));
    };
    let verdict = if handshake.problem.is_some()
        || run.evidence.cert_days.is_some_and(|d| d < CERT_WARN_DAYS)
    {
        Verdict::Warn
    } else {
        Verdict::Ok
    };
    if let Some(error) = handshake.certificate.and_then(|c| c.error) {
        detail = format!("{error} (--insecure: going on); {detail}");
    }
    run.record("tls", verdict, started, detail);
    Ok(Link::stream(Box::new(stream), server))
}

/// Binding (RFC 8489 §6): the server answers and tells our mapped address.
async fn binding_step(run: &mut Run<'_>, link: &mut Link, server: SocketAddr) -> Result<(), Stop> {
    let started = Instant::now();
    let result = binding(link, server, run.settings.timeout).await;
    run.evidence.icmp_refused = link.refused() > 0;
    match result {
        Ok(Ok(response)) => {
            run.facts.mapped = Some(response.mapped);
            let software = response
                .software
                .as_deref()
                .map_or_else(String::new, |s| format!(", software \"{s}\""));
            run.ok(
                "binding",
                started,
                format!("mapped {}{software}", response.mapped),
            );
            Ok(())
        }
        Ok(Err(error)) if matches!(error, ice::TransactionError::Timeout { .. }) => {
            run.evidence.no_answer = true;
            Err(run.fail("binding", started, error.to_string(), Outcome::Unreachable))
        }
        // An error response still proves a STUN server is there; TURN may work.
        Ok(Err(error)) => {
            run.record("binding", Verdict::Warn, started, error.to_string());
            Ok(())
        }
        Err(error) => Err(run.fail(
            "binding",
            started,
            format!("{error:#}"),
            Outcome::Unreachable,
        )),
    }
}

/// Allocate (RFC 8656 §7) on session `index`: 401 → realm and nonce → 200.
async fn allocate(
    run: &mut Run<'_>,
    sessions: &mut [Session],
    index: usize,
    name: &'static str,
) -> Result<SocketAddr, Stop> {
    let started = Instant::now();
    let until = run.deadline() + run.settings.timeout;
    let ended = drive(sessions, until, |s| {
        s[index].events.iter().any(|e| {
            matches!(
                e,
                TurnEvent::Allocated { .. } | TurnEvent::AllocationFailed(_)
            )
        })
    })
    .await;
    let events = std::mem::take(&mut sessions[index].events);
    if let Some(realm) = events.iter().find_map(|e| match e {
        TurnEvent::Challenged { realm, .. } => Some(realm.clone()),
        _ => None,
    }) {
        run.facts.realm = Some(realm.clone());
        run.evidence.realm = Some(realm);
    }
    let course = challenges(&events);
    let io_error = |e: std::io::Error| e.to_string();
    match ended.map_err(io_error) {
        Err(error) => return Err(run.fail(name, started, error, Outcome::Unreachable)),
        Ok(false) => return Err(run.fail(name, started, "no answer".into(), Outcome::Unreachable)),
        Ok(true) => {}
    }
    for event in events {
        match event {
            TurnEvent::Allocated {
                relayed,
                mapped,
                lifetime,
            } => {
                run.facts.relayed.push(relayed);
                run.facts.lifetime_s = Some(lifetime.as_secs());
                run.facts.mapped.get_or_insert(mapped);
                let mut verdict = Verdict::Ok;
                if index == 0 {
                    run.evidence.relayed = Some(relayed);
                    if relayed_is_unreachable(relayed.ip(), run.server) {
                        verdict = Verdict::Warn;
                    }
                }
                let detail = format!(
                    "{course} → 200: relayed {relayed}, mapped {mapped}, lifetime {} s",
                    lifetime.as_secs()
                );
                run.record(name, verdict, started, detail);
                if let (Some(expected), Some(realm)) = (&run.settings.realm, &run.facts.realm) {
                    if expected != realm && index == 0 {
                        let detail = format!("server says \"{realm}\", expected \"{expected}\"");
                        return Err(run.fail("realm", Instant::now(), detail, Outcome::Auth));
                    }
                }
                return Ok(relayed);
            }
            TurnEvent::AllocationFailed(error) => {
                let detail = if course.is_empty() {
                    error.to_string()
                } else {
                    format!("{course} → {error}")
                };
                let outcome = match &error {
                    TurnError::ErrorResponse { code: 401, .. } => {
                        run.evidence.auth_rejected = true;
                        Outcome::Auth
                    }
                    TurnError::ErrorResponse { code, reason } => {
                        run.evidence.allocate_error = Some((*code, reason.clone()));
                        Outcome::Allocation
                    }
                    TurnError::Timeout { .. } if course.is_empty() => {
                        run.evidence.no_answer = true;
                        Outcome::Unreachable
                    }
                    _ => Outcome::Allocation,
                };
                return Err(run.fail(name, started, detail, outcome));
            }
            _ => {}
        }
    }
    Err(run.fail(name, started, "no answer".into(), Outcome::Unreachable))
}

/// What [`grant`] asks for both ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grant {
    /// CreatePermission (RFC 8656 §9.1).
    Permission,
    /// ChannelBind (RFC 8656 §12.1).
    Channel,
}

impl Grant {
    fn step(self) -> &'static str {
        match self {
            Grant::Permission => "permissions",
            Grant::Channel => "channels",
        }
    }

    fn ask(self, session: &mut Session, peer: SocketAddr) {
        match self {
            Grant::Permission => session.turn.create_permission(Instant::now(), peer),
            Grant::Channel => session.turn.bind_channel(Instant::now(), peer),
        }
    }

    /// The channel number, or 0 for a permission, once granted.
    fn granted(self, session: &Session, peer: SocketAddr) -> Option<u16> {
        match self {
            Grant::Permission => session
                .turn
                .has_permission(Instant::now(), peer)
                .then_some(0),
            Grant::Channel => session.turn.channel(Instant::now(), peer),
        }
    }

    fn failed(self, event: &TurnEvent) -> bool {
        match self {
            Grant::Permission => matches!(event, TurnEvent::PermissionFailed { .. }),
            Grant::Channel => matches!(event, TurnEvent::ChannelFailed { .. }),
        }
    }

    /// The peer and cause of a refused request of this kind.
    fn refusal(self, event: TurnEvent) -> Option<(SocketAddr, TurnError)> {
        match (self, event) {
            (
                Grant::Permission,
                TurnEvent::RequestFailed {
                    request: TurnRequest::CreatePermission { peer },
                    error,
                },
            )
            | (
                Grant::Channel,
                TurnEvent::RequestFailed {
                    request: TurnRequest::ChannelBind { peer, .. },
                    error,
                },
            ) => Some((peer, error)),
            _ => None,
        }
    }
}

/// The challenges answered, as the allocate and refresh steps print them: `401 realm "r"`,
/// `438 realm "r"` (a stale nonce, RFC 8489 §9.2.5, retried with the new one).
fn challenges(events: &[TurnEvent]) -> String {
    let course: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            TurnEvent::Challenged { code, realm, .. } => Some(format!("{code} realm \"{realm}\"")),
            _ => None,
        })
        .collect();
    course.join(" → ")
}

/// CreatePermission or ChannelBind both ways: each allocation lets the other one's relayed
/// address in (RFC 8656 §9), or binds a channel to it (§12).
async fn grant(
    run: &mut Run<'_>,
    sessions: &mut [Session],
    first: SocketAddr,
    second: SocketAddr,
    kind: Grant,
) -> Result<(), Stop> {
    let started = Instant::now();
    let peers = [second, first];
    for (session, peer) in sessions.iter_mut().zip(peers) {
        kind.ask(session, peer);
    }
    let until = run.deadline();
    let done = drive(sessions, until, |s| {
        let all = s
            .iter()
            .zip(peers)
            .all(|(s, p)| kind.granted(s, p).is_some());
        all || s.iter().any(|s| s.events.iter().any(|e| kind.failed(e)))
    })
    .await
    .unwrap_or(false);
    let granted: Vec<Option<u16>> = sessions
        .iter()
        .zip(peers)
        .map(|(s, peer)| kind.granted(s, peer))
        .collect();
    let refusal = sessions.iter_mut().find_map(|s| {
        std::mem::take(&mut s.events)
            .into_iter()
            .find_map(|e| kind.refusal(e))
    });
    if let Some((peer, error)) = refusal {
        if let (Grant::Permission, Some(code)) = (kind, error.code()) {
            run.evidence.permission_error = Some((code, peer.ip()));
        }
        let detail = format!("for {}: {error}", peer.ip());
        return Err(run.fail(kind.step(), started, detail, Outcome::Relay));
    }
    let detail = match (done, granted.as_slice(), kind) {
        (true, [Some(_), Some(_)], Grant::Permission) => {
            format!("{} ↔ {}", first.ip(), second.ip())
        }
        (true, [Some(a), Some(b)], Grant::Channel) => format!("0x{a:04X} and 0x{b:04X}"),
        _ => {
            let detail = "no answer".to_owned();
            return Err(run.fail(kind.step(), started, detail, Outcome::Relay));
        }
    };
    run.ok(kind.step(), started, detail);
    Ok(())
}

/// The first bytes of every test datagram.
const MAGIC: &[u8; 14] = b"turnpike-check";

/// `count` datagrams from the first allocation to the second one's relayed address, each
/// echoed back: Send/Data indications (RFC 8656 §11) before channels are bound, ChannelData
/// (§12) after.
async fn data(
    run: &mut Run<'_>,
    sessions: &mut [Session],
    second: SocketAddr,
    channel: bool,
) -> Result<(), Stop> {
    let name = if channel { "channel data" } else { "send/data" };
    let started = Instant::now();
    for session in sessions.iter_mut() {
        session.arrivals.clear();
    }
    sessions[1].echo = true;
    let count = run.settings.count;
    let mut sent_at = Vec::with_capacity(count as usize);
    for seq in 0..count {
        let mut payload = MAGIC.to_vec();
        payload.extend_from_slice(&seq.to_be_bytes());
        sent_at.push(Instant::now());
        if let Err(error) = sessions[0].send_to(second, &payload).await {
            return Err(run.fail(name, started, error.to_string(), Outcome::Relay));
        }
        let pause = Instant::now() + run.settings.interval;
        if drive(sessions, pause, |_| false).await.is_err() {
            break;
        }
    }
    let until = run.deadline();
    let all_back = |s: &[Session]| s[0].arrivals.len() >= count as usize;
    let _ = drive(sessions, until, all_back).await;
    sessions[1].echo = false;
    let stats = stats(
        &sessions[0].arrivals,
        &sessions[1].arrivals,
        &sent_at,
        count,
    );
    let framed_right = sessions
        .iter()
        .flat_map(|s| &s.arrivals)
        .all(|a| a.channel_data == channel);
    let detail = format!(
        "{}/{} delivered, {}/{} back, loss {:.0} %{}{}",
        stats.delivered,
        stats.sent,
        stats.returned,
        stats.sent,
        stats.loss_percent,
        stats.rtt_ms_avg.map_or_else(String::new, |avg| format!(
            ", RTT {:.1}/{avg:.1}/{:.1} ms",
            stats.rtt_ms_min.unwrap_or(avg),
            stats.rtt_ms_max.unwrap_or(avg)
        )),
        if framed_right {
            ""
        } else {
            " (not all in the framing sent)"
        }
    );
    let returned = stats.returned;
    let loss = stats.loss_percent;
    if channel {
        run.facts.channel_data = Some(stats);
    } else {
        run.facts.send_data = Some(stats);
    }
    if returned == 0 {
        run.evidence.no_data = true;
        return Err(run.fail(name, started, detail, Outcome::Relay));
    }
    let verdict = if loss > 0.0 || !framed_right {
        run.evidence.loss_percent = Some(loss.max(run.evidence.loss_percent.unwrap_or(0.0)));
        Verdict::Warn
    } else {
        Verdict::Ok
    };
    run.record(name, verdict, started, detail);
    Ok(())
}

/// Counts the test datagrams that arrived, and the round-trip times of those echoed.
fn stats(
    back: &[super::session::Arrival],
    there: &[super::session::Arrival],
    sent_at: &[Instant],
    count: u32,
) -> DataStats {
    let seq = |payload: &[u8]| -> Option<u32> {
        let rest = payload.strip_prefix(MAGIC.as_slice())?;
        Some(u32::from_be_bytes(rest.try_into().ok()?))
    };
    let unique = |arrivals: &[super::session::Arrival]| {
        let mut seen: Vec<u32> = arrivals
            .iter()
            .filter_map(|a| seq(&a.payload))
            .filter(|s| *s < count)
            .collect();
        seen.sort_unstable();
        seen.dedup();
        seen.len() as u32
    };
    let mut rtts: Vec<f64> = back
        .iter()
        .filter_map(|a| {
            let sent = sent_at.get(seq(&a.payload)? as usize)?;
            Some(millis(a.at.saturating_duration_since(*sent)))
        })
        .collect();
    rtts.sort_by(f64::total_cmp);
    let returned = unique(back);
    DataStats {
        sent: count,
        delivered: unique(there),
        returned,
        loss_percent: f64::from(count - returned.min(count)) * 100.0 / f64::from(count.max(1)),
        rtt_ms_min: rtts.first().copied(),
        rtt_ms_avg: (!rtts.is_empty()).then(|| rtts.iter().sum::<f64>() / rtts.len() as f64),
        rtt_ms_max: rtts.last().copied(),
    }
}

/// Refresh (RFC 8656 §8) of the first allocation.
async fn refresh(run: &mut Run<'_>, sessions: &mut [Session]) -> Result<(), Stop> {
    let started = Instant::now();
    sessions[0].turn.refresh(Instant::now());
    let until = run.deadline();
    let _ = drive(sessions, until, |s| {
        s[0].events.iter().any(|e| {
            matches!(
                e,
                TurnEvent::Refreshed { .. }
                    | TurnEvent::RequestFailed {
                        request: TurnRequest::Refresh,
                        ..
                    }
            )
        })
    })
    .await;
    let events = std::mem::take(&mut sessions[0].events);
    // A 438 here is a nonce that went stale since the Allocate: answered and retried.
    let course = challenges(&events);
    let course = if course.is_empty() {
        course
    } else {
        format!("{course} → ")
    };
    for event in events {
        match event {
            TurnEvent::Refreshed { lifetime } => {
                let detail = format!("{course}lifetime {} s", lifetime.as_secs());
                run.ok("refresh", started, detail);
                return Ok(());
            }
            TurnEvent::RequestFailed {
                request: TurnRequest::Refresh,
                error,
            } => {
                return Err(run.fail("refresh", started, error.to_string(), Outcome::Allocation));
            }
            _ => {}
        }
    }
    Err(run.fail("refresh", started, "no answer".into(), Outcome::Allocation))
}

/// Deallocation (RFC 8656 §7: a Refresh with LIFETIME 0) of both allocations.
async fn deallocate(run: &mut Run<'_>, sessions: &mut [Session]) -> Result<(), Stop> {
    let started = Instant::now();
    for session in sessions.iter_mut() {
        session.events.clear();
        session.turn.deallocate(Instant::now());
    }
    let until = run.deadline();
    let _ = drive(sessions, until, |s| {
        s.iter().all(|s| s.events.contains(&TurnEvent::Deallocated))
    })
    .await;
    let failure = sessions
        .iter()
        .flat_map(|s| &s.events)
        .find_map(|e| match e {
            TurnEvent::RequestFailed {
                request: TurnRequest::Deallocate,
                error,
            } => Some(error.clone()),
            _ => None,
        });
    let all = sessions
        .iter()
        .all(|s| s.events.contains(&TurnEvent::Deallocated));
    match failure {
        // The allocations expire on their own: worth a warning, not a failed check.
        Some(error) => run.record("deallocate", Verdict::Warn, started, error.to_string()),
        None if all => run.ok("deallocate", started, "both allocations deleted".into()),
        None => run.record("deallocate", Verdict::Warn, started, "no answer".into()),
    }
    Ok(())
}

/// Deletes whatever allocations exist, without recording steps.
async fn cleanup(sessions: &mut [Session], timeout: Duration) {
    for session in sessions.iter_mut() {
        session.events.clear();
        session.turn.deallocate(Instant::now());
    }
    let until = Instant::now() + timeout.min(Duration::from_secs(2));
    // A closed client has nothing left to send or wait for.
    let _ = drive(sessions, until, |s| {
        s.iter().all(|s| s.turn.poll_timeout().is_none())
    })
    .await;
}
