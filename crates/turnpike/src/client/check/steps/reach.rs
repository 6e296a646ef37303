//! Reaching the server: DNS, the connection (TCP, TLS or DTLS with its certificate), a
//! Binding, and the other address family of the name.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use crate::client::discovery::{self, Candidate};
use crate::client::dtls_session::{DtlsError, DtlsSession};

use super::super::args::Transport;
use super::super::diagnosis::CERT_WARN_DAYS;
use super::super::link::Link;
use super::super::report::{Outcome, Step, Verdict};
use super::super::session::binding;
use super::super::tls::{certificate_facts, problem_of};
use super::{Run, Stop};

/// The addresses after the first: another family of the first target, and the first address
/// of each later SRV target.
pub(super) struct Fallbacks {
    /// The first target's address of the other family (without -4 or -6).
    pub other: Option<SocketAddr>,
    /// Later targets, in the order to try them (RFC 2782).
    pub next: Vec<Candidate>,
}

/// DNS: server discovery (RFC 5928 §3 for turn:, RFC 8489 §8 for stun:), every query shown
/// as a step, then the first address of the wanted family.
pub(super) async fn resolve(run: &mut Run<'_>) -> Result<(SocketAddr, Fallbacks), Stop> {
    let started = Instant::now();
    let settings = run.settings;
    let target = run.target;
    let wanted = |a: &SocketAddr| match settings.ipv4_only {
        Some(v4) => a.is_ipv4() == v4,
        None => true,
    };
    // `turn:` without ?transport=: NAPTR records choose among all three (RFC 5928 §3).
    let supported = match target.name.transport {
        Some(transport) => vec![transport],
        None => vec![Transport::Udp, Transport::Tcp, Transport::Tls],
    };
    let lookup = discovery::resolve(&settings.dns, &target.name, &supported);
    let Ok(resolution) = tokio::time::timeout(settings.timeout, lookup).await else {
        run.evidence.dns_error = Some("no answer".into());
        return Err(run.fail("dns", started, "no answer".into(), Outcome::Unreachable));
    };
    // A literal or an explicit port is one step, shown as before discovery; NAPTR and SRV
    // show every query, what it returned, and what was picked.
    let single = resolution.steps.len() == 1;
    if !single {
        for step in &resolution.steps {
            let verdict = if step.failed {
                Verdict::Warn
            } else {
                Verdict::Ok
            };
            run.steps
                .push(Step::new("dns", verdict, step.took, step.to_string()));
        }
    }
    let candidates = resolution.candidates;
    if candidates.is_empty() {
        let error = resolution
            .steps
            .last()
            .map_or_else(|| "no address".to_owned(), |s| s.answer.clone());
        run.evidence.dns_error = Some(error.clone());
        let detail = if single {
            error
        } else {
            "no server address found".into()
        };
        return Err(run.fail("dns", started, detail, Outcome::Unreachable));
    }
    let Some(chosen) = candidates.iter().find(|c| wanted(&c.address)).cloned() else {
        if let (true, Ok(ip)) = (single, target.host.parse::<IpAddr>()) {
            return Err(run.fail(
                "dns",
                started,
                format!("{ip} is not of the family asked for"),
                Outcome::Unreachable,
            ));
        }
        let family = if settings.ipv4_only == Some(true) {
            "IPv4"
        } else {
            "IPv6"
        };
        let listed: Vec<String> = candidates
            .iter()
            .map(|c| c.address.ip().to_string())
            .collect();
        let detail = format!("no {family} address (has {})", listed.join(", "));
        run.evidence.dns_error = Some(detail.clone());
        return Err(run.fail("dns", started, detail, Outcome::Unreachable));
    };
    run.transport = chosen.transport;
    run.evidence.transport = Some(chosen.transport);
    let same_target =
        |c: &Candidate| c.host == chosen.host && c.address.port() == chosen.address.port();
    if single {
        let detail = match target.host.parse::<IpAddr>() {
            Ok(ip) => format!("{ip} (literal)"),
            Err(_) => {
                let listed: Vec<String> = candidates
                    .iter()
                    .map(|c| c.address.ip().to_string())
                    .collect();
                listed.join(", ")
            }
        };
        run.ok("dns", started, detail);
    } else {
        run.ok(
            "dns",
            started,
            format!(
                "using {} ({}, {})",
                chosen.address,
                chosen.transport.name(),
                chosen.host
            ),
        );
    }
    // Without -4 or -6, the other family is tried too: a name whose A or AAAA record leads
    // nowhere makes the clients that try it first wait.
    let other = match settings.ipv4_only {
        None => candidates
            .iter()
            .find(|c| same_target(c) && c.address.is_ipv4() != chosen.address.is_ipv4())
            .map(|c| c.address),
        Some(_) => None,
    };
    let mut next: Vec<Candidate> = Vec::new();
    for candidate in candidates {
        let seen = |c: &Candidate| {
            c.host == candidate.host && c.address.port() == candidate.address.port()
        };
        if wanted(&candidate.address) && !same_target(&candidate) && !next.iter().any(seen) {
            next.push(candidate);
        }
    }
    Ok((chosen.address, Fallbacks { other, next }))
}

/// The first later SRV target that answers, when the first one did not (RFC 2782: a client
/// tries the targets in order); the check goes on there.
pub(super) async fn next_target(
    run: &mut Run<'_>,
    next: &[Candidate],
) -> Option<(Link, SocketAddr)> {
    let first = run.transport;
    for candidate in next {
        run.transport = candidate.transport;
        if let Some(link) = reach_quietly(run, candidate.address).await {
            run.evidence.transport = Some(candidate.transport);
            return Some((link, candidate.address));
        }
    }
    run.transport = first;
    None
}

/// The address of the other family, once the first one answered: a warning when it does not.
pub(super) async fn other_family(run: &mut Run<'_>, other: SocketAddr, first: SocketAddr) {
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
pub(super) async fn reach_quietly(run: &Run<'_>, server: SocketAddr) -> Option<Link> {
    let timeout = run.settings.timeout.min(Duration::from_secs(2));
    let mut link = match run.transport {
        Transport::Udp => Link::udp(server).await.ok()?,
        Transport::Dtls => {
            let verifier = run.settings.tls.dtls_verifier(&run.target.host).ok()?;
            let insecure = run.settings.tls.insecure();
            let deadline = Instant::now() + timeout;
            let session = DtlsSession::connect(server, &verifier, insecure, deadline);
            Link::dtls(session.await.ok()?)
        }
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
                Link::tls(Box::new(stream), server)
            }
        }
    };
    match binding(&mut link, server, timeout).await {
        Ok(Ok(_)) => Some(link),
        _ => None,
    }
}

/// A link to the server: a UDP socket, a TCP connection, a TLS session or a DTLS session.
/// Only the first one is recorded as steps (connect, tls, dtls).
pub(super) async fn connect(
    run: &mut Run<'_>,
    server: SocketAddr,
    record: bool,
) -> Result<Link, Stop> {
    let timeout = run.settings.timeout;
    if run.transport == Transport::Udp {
        return Link::udp(server).await.map_err(|error| {
            run.fail(
                "connect",
                Instant::now(),
                format!("cannot bind a UDP socket: {error}"),
                Outcome::Unreachable,
            )
        });
    }
    if run.transport == Transport::Dtls {
        return dtls(run, server, record).await;
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
    if run.transport == Transport::Tcp {
        return Ok(Link::stream(Box::new(tcp), server));
    }
    tls(run, tcp, server, record).await
}

/// The TLS handshake over `tcp`; recorded (certificate, verdict) with `record`.
async fn tls(
    run: &mut Run<'_>,
    tcp: TcpStream,
    server: SocketAddr,
    record: bool,
) -> Result<Link, Stop> {
    let started = Instant::now();
    let unix_now = run.evidence.unix_now as i64;
    let handshake = run.settings.tls.handshake(tcp, &run.target.host, unix_now);
    let handshake = match tokio::time::timeout(run.settings.timeout, handshake).await {
        Ok(Ok(handshake)) => handshake,
        Ok(Err(error)) => return Err(run.fail("tls", started, format!("{error:#}"), Outcome::Tls)),
        Err(_) => return Err(run.fail("tls", started, "no handshake".into(), Outcome::Tls)),
    };
    let mut detail = String::new();
    if let Some(cert) = handshake.certificate.as_ref().filter(|_| record) {
        run.evidence.cert_names = cert.names.clone();
        run.evidence.cert_days = Some(cert.expires_in_days);
        detail = format!(
            "certificate for {}, expires in {} days, chain of {}",
            cert.names.join(", "),
            cert.expires_in_days,
            cert.chain_len
        );
        run.facts.certificate = Some(cert.clone());
        run.evidence.cert_problem = handshake.problem;
    }
    let Some(stream) = handshake.stream else {
        let mut error = handshake.error.unwrap_or_default();
        if !detail.is_empty() {
            error = format!("{error}; {detail}");
        }
        return Err(run.fail("tls", started, error, Outcome::Tls));
    };
    if record {
        let expiring = run.evidence.cert_days.is_some_and(|d| d < CERT_WARN_DAYS);
        let verdict = if handshake.problem.is_some() || expiring {
            Verdict::Warn
        } else {
            Verdict::Ok
        };
        if let Some(error) = handshake.certificate.and_then(|c| c.error) {
            detail = format!("{error} (--insecure: going on); {detail}");
        }
        run.record("tls", verdict, started, detail);
    }
    Ok(Link::tls(Box::new(stream), server))
}

/// The DTLS handshake with `server` (RFC 7350: DTLS over UDP, no connection before it);
/// recorded (certificate, verdict) with `record`. A handshake nobody answers is an
/// unreachable server, as a silent UDP one is; a refused certificate is a TLS failure.
async fn dtls(run: &mut Run<'_>, server: SocketAddr, record: bool) -> Result<Link, Stop> {
    let started = Instant::now();
    let verifier = match run.settings.tls.dtls_verifier(&run.target.host) {
        Ok(verifier) => verifier,
        Err(error) => return Err(run.fail("dtls", started, format!("{error:#}"), Outcome::Tls)),
    };
    let deadline = started + run.settings.timeout;
    let insecure = run.settings.tls.insecure();
    let session = match DtlsSession::connect(server, &verifier, insecure, deadline).await {
        Ok(session) => session,
        Err(DtlsError::Untrusted { error, leaf }) => {
            let mut detail = error.to_string();
            if record {
                run.evidence.cert_problem = Some(problem_of(&error));
                let facts = dtls_certificate(run, &leaf, Some(&error));
                detail = format!("{detail}; {facts}");
            }
            return Err(run.fail("dtls", started, detail, Outcome::Tls));
        }
        Err(DtlsError::NoHandshake { refused, .. }) => {
            run.evidence.no_answer = true;
            run.evidence.icmp_refused = refused > 0;
            return Err(run.fail(
                "dtls",
                started,
                format!("no answer to the DTLS handshake from {server}"),
                Outcome::Unreachable,
            ));
        }
        Err(error) => return Err(run.fail("dtls", started, error.to_string(), Outcome::Tls)),
    };
    if record {
        let untrusted = session.untrusted().cloned();
        let mut detail = match session.certificate() {
            Some(leaf) => dtls_certificate(run, leaf, untrusted.as_ref()),
            None => String::new(),
        };
        run.evidence.cert_problem = untrusted.as_ref().map(problem_of);
        let expiring = run.evidence.cert_days.is_some_and(|d| d < CERT_WARN_DAYS);
        let verdict = if untrusted.is_some() || expiring {
            Verdict::Warn
        } else {
            Verdict::Ok
        };
        if let Some(error) = untrusted {
            detail = format!("{error} (--insecure: going on); {detail}");
        }
        run.record(
            "dtls",
            verdict,
            started,
            format!("DTLS 1.2 with {server}, {detail}"),
        );
    }
    Ok(Link::dtls(session))
}

/// Records the facts of the server's DTLS certificate (`dimpl` gives the leaf alone: a chain
/// of 1) and says them in a few words.
fn dtls_certificate(run: &mut Run<'_>, leaf: &[u8], error: Option<&rustls::Error>) -> String {
    let mut facts = certificate_facts(leaf, run.evidence.unix_now as i64);
    facts.error = error.map(ToString::to_string);
    run.evidence.cert_names = facts.names.clone();
    run.evidence.cert_days = Some(facts.expires_in_days);
    let said = format!(
        "certificate for {}, expires in {} days",
        facts.names.join(", "),
        facts.expires_in_days
    );
    run.facts.certificate = Some(facts);
    said
}

/// Binding (RFC 8489 §6): the server answers and tells our mapped address.
pub(super) async fn binding_step(
    run: &mut Run<'_>,
    link: &mut Link,
    server: SocketAddr,
) -> Result<(), Stop> {
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
