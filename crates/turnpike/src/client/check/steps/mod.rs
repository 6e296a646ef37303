//! The steps of one check, in order: DNS, connect, TLS, Binding, Allocate, a second
//! allocation, permissions both ways, data both ways in Send/Data indications and in
//! ChannelData, Refresh, deallocation. Each is timed and judged; the first failure ends the
//! check (the allocations made so far are deleted first).
//!
//! [`reach`]: DNS, connect, TLS, Binding, the other address family; [`allocation`]: Allocate,
//! Refresh, deallocation; [`relay`]: permissions, channels and data both ways.

mod allocation;
mod reach;
mod relay;

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ice::TurnCredentials;

use crate::client::discovery::{Candidate, Dns};

use super::args::{Target, Transport};
use super::diagnosis::{self, Evidence};
use super::link::{Link, Trust};
use super::report::{Facts, Outcome, Step, UriReport, Verdict};
use super::session::Session;
use super::tls::TlsSettings;
use allocation::{allocate, cleanup, deallocate, refresh};
use reach::{binding_step, connect, next_target, other_family, reach_quietly, resolve};
use relay::{data, grant, Grant};

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
    /// DNS for server discovery (`--dns-server` or the system's).
    pub dns: Dns,
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
    /// The transport in use: the target's, or the one NAPTR records chose.
    transport: Transport,
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
        transport: target.transport,
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
        transport: run.transport,
        server: run.server,
        diagnoses: diagnosis::diagnose(&run.evidence),
        steps: run.steps,
        facts: run.facts,
        outcome,
    }
}

/// Wall-clock seconds (certificate validity, the report).
pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The steps, up to the first failure.
async fn steps(run: &mut Run<'_>, credentials: Option<&Credentials>) -> Result<(), Stop> {
    let (first, fallbacks) = resolve(run).await?;
    run.server = Some(first);
    run.evidence.server = Some(first);
    let reached = match connect(run, first, true).await {
        Ok(mut link) => binding_step(run, &mut link, first).await.map(|()| link),
        Err(stop) => Err(stop),
    };
    let (link, server) = match (reached, fallbacks.other) {
        (Ok(link), None) => (link, first),
        (Ok(link), Some(other)) => {
            other_family(run, other, first).await;
            (link, first)
        }
        (Err(stop), other) => match recover(run, first, other, &fallbacks.next).await {
            Some(reached) => reached,
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
        trust(run),
    )];
    let result = relay_steps(run, &mut sessions, server, credentials).await;
    if result.is_err() {
        // Leave nothing behind on the server: allocations hold relay ports for their lifetime.
        cleanup(&mut sessions, run.settings.timeout).await;
    }
    result
}

/// How a TLS or DTLS session is moved to an alternate server: with the run's trust, checked
/// against the URI's host unless a 300 names another (RFC 8489 §10).
fn trust(run: &Run<'_>) -> Option<Trust> {
    matches!(run.transport, Transport::Tls | Transport::Dtls).then(|| Trust {
        settings: run.settings.tls.clone(),
        host: run.target.host.clone(),
    })
}

/// The first address is silent: if the other family answers, the check goes on there; if
/// not, at a later SRV target that answers (RFC 2782: the next target when one fails).
async fn recover(
    run: &mut Run<'_>,
    first: SocketAddr,
    other: Option<SocketAddr>,
    next: &[Candidate],
) -> Option<(Link, SocketAddr)> {
    if let Some(other) = other {
        if let Some(link) = reach_quietly(run, other).await {
            going_on(run, "other family", other);
            run.evidence.silent_family = Some((first, other));
            return Some((link, other));
        }
    }
    let (link, server) = next_target(run, next).await?;
    going_on(run, "next target", server);
    Some((link, server))
}

/// The check goes on at `server` after the first address failed: that failure becomes a
/// warning, and the evidence of an unreachable server is dropped.
fn going_on(run: &mut Run<'_>, name: &'static str, server: SocketAddr) {
    if let Some(step) = run.steps.last_mut() {
        step.verdict = Verdict::Warn;
    }
    run.ok(
        name,
        Instant::now(),
        format!("{server} answers: going on there"),
    );
    run.evidence.no_answer = false;
    run.evidence.icmp_refused = false;
    run.evidence.connect_refused = false;
    run.evidence.connect_timeout = false;
    run.server = Some(server);
    run.evidence.server = Some(server);
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
        trust(run),
    ));
    let second = allocate(run, sessions, 1, "allocate (second)").await?;
    grant(run, sessions, first, second, Grant::Permission).await?;
    data(run, sessions, second, false).await?;
    grant(run, sessions, first, second, Grant::Channel).await?;
    data(run, sessions, second, true).await?;
    refresh(run, sessions).await?;
    deallocate(run, sessions).await
}
