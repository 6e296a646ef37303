//! The allocation's own steps: Allocate through the challenge (RFC 8656 §7, RFC 8489 §9.2),
//! Refresh (§8), deallocation, and the clean-up after a failure.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ice::{TurnError, TurnEvent, TurnRequest};

use super::super::args::Transport;
use super::super::diagnosis::relayed_is_unreachable;
use super::super::report::{Outcome, Verdict};
use super::super::session::{drive, Session};
use super::{Run, Stop};

/// Allocate (RFC 8656 §7) on session `index`: 401 → realm and nonce → 200.
pub(super) async fn allocate(
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
    if let Some((from, to, domain)) = events.iter().find_map(|e| match e {
        TurnEvent::Redirected { from, to, domain } => Some((*from, *to, domain)),
        _ => None,
    }) {
        // RFC 8656 §7.2: a full or draining server sends the client to another one; over TLS
        // or DTLS, ALTERNATE-DOMAIN names the certificate to expect there (RFC 8489 §10).
        let mut detail = format!("{from} answered 300 (Try Alternate): allocating at {to}");
        let secure = matches!(run.transport, Transport::Tls | Transport::Dtls);
        if let Some(domain) = domain.as_ref().filter(|_| secure) {
            detail.push_str(&format!(", its certificate as {domain}"));
        }
        run.ok("redirect", started, detail);
        run.facts.redirected_to.push(to);
    }
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
                let detail = format!(
                    "{course} → 200: relayed {relayed}, mapped {mapped}, lifetime {} s",
                    lifetime.as_secs()
                );
                run.facts.lifetime_s = Some(lifetime.as_secs());
                run.facts.mapped.get_or_insert(mapped);
                return allocated(run, index, name, started, relayed, detail);
            }
            TurnEvent::AllocationFailed(error) => {
                return Err(allocation_failed(run, name, started, &course, error))
            }
            _ => {}
        }
    }
    Err(run.fail(name, started, "no answer".into(), Outcome::Unreachable))
}

/// An allocation made: its relayed address judged (the first one's: a private address
/// behind a public server), and the realm compared with `--realm`.
fn allocated(
    run: &mut Run<'_>,
    index: usize,
    name: &'static str,
    started: Instant,
    relayed: SocketAddr,
    detail: String,
) -> Result<SocketAddr, Stop> {
    run.facts.relayed.push(relayed);
    let mut verdict = Verdict::Ok;
    if index == 0 {
        run.evidence.relayed = Some(relayed);
        if relayed_is_unreachable(relayed.ip(), run.server) {
            verdict = Verdict::Warn;
        }
    }
    run.record(name, verdict, started, detail);
    if let (0, Some(expected), Some(realm)) = (index, &run.settings.realm, &run.facts.realm) {
        if expected != realm {
            let detail = format!("server says \"{realm}\", expected \"{expected}\"");
            return Err(run.fail("realm", Instant::now(), detail, Outcome::Auth));
        }
    }
    Ok(relayed)
}

/// An Allocate that failed, and the outcome its error means: 401 after the challenge is
/// authentication; silence before any challenge, unreachable; any other error, allocation.
fn allocation_failed(
    run: &mut Run<'_>,
    name: &'static str,
    started: Instant,
    course: &str,
    error: TurnError,
) -> Stop {
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
    run.fail(name, started, detail, outcome)
}

/// The challenges answered, as the allocate and refresh steps print them: `401 realm "r"`,
/// `438 realm "r"` (a stale nonce, RFC 8489 §9.2.5, retried with the new one), and a redirect
/// followed: `300 → IP:PORT`.
fn challenges(events: &[TurnEvent]) -> String {
    let course: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            TurnEvent::Challenged { code, realm, .. } => Some(format!("{code} realm \"{realm}\"")),
            TurnEvent::Redirected { to, .. } => Some(format!("300 → {to}")),
            _ => None,
        })
        .collect();
    course.join(" → ")
}

/// Refresh (RFC 8656 §8) of the first allocation.
pub(super) async fn refresh(run: &mut Run<'_>, sessions: &mut [Session]) -> Result<(), Stop> {
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
pub(super) async fn deallocate(run: &mut Run<'_>, sessions: &mut [Session]) -> Result<(), Stop> {
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
pub(super) async fn cleanup(sessions: &mut [Session], timeout: Duration) {
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
