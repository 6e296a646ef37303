//! `turnpike check URI...`: an end-to-end check of any STUN/TURN deployment (Turnpike,
//! coturn, eturnal, any RFC 8656 server), step by step, with a diagnosis of the classic
//! mistakes and an exit code per outcome (docs/client.md).
//!
//! The protocol is the `ice` crate's sans-IO clients ([`ice::TurnClient`],
//! [`ice::BindingTransaction`]); this module is their I/O: [`link`] (UDP, TCP, TLS),
//! [`session`] (the run loop), [`tls`] (handshake and certificate), [`steps`] (the order of
//! the steps), [`diagnosis`] (what to change), [`report`] (text and JSON), [`ice_servers`]
//! (`GET /api/ice-servers`).

mod args;
mod diagnosis;
mod ice_servers;
mod link;
mod report;
mod session;
mod steps;
mod tls;

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::bail;
use ice::TurnCredentials;

pub use args::CheckArgs;
use args::{parse_target, Target};
use report::Report;
use steps::{Credentials, Settings};

/// Exit code of a usage error (as clap's).
const EXIT_USAGE: u8 = 2;

/// A problem with the arguments found after parsing: exit 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(String);

/// Runs the checks and prints the report; the exit code tells the outcome.
pub async fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    match checks(&args).await {
        Ok(report) => {
            let mut out = std::io::stdout().lock();
            if args.json {
                report.write_json(&mut out)?;
            } else {
                report.write_text(&mut out)?;
            }
            out.flush()?;
            Ok(ExitCode::from(report.exit_code))
        }
        Err(error) => match error.downcast_ref::<UsageError>() {
            Some(usage) => {
                eprintln!("error: {usage}");
                Ok(ExitCode::from(EXIT_USAGE))
            }
            None => Err(error),
        },
    }
}

/// Every target with its credentials, checked in order.
async fn checks(args: &CheckArgs) -> anyhow::Result<Report> {
    let mut targets: Vec<(Target, Option<Credentials>)> = Vec::new();
    if args.password.is_some() && args.user.is_none() {
        return Err(UsageError("--password needs --user".into()).into());
    }
    let given = given_credentials(args);
    for target in &args.uris {
        if target.turn && given.is_none() && args.ice_servers.is_none() {
            return Err(UsageError(format!(
                "{}: a TURN check needs credentials: --user and --password, or --rest-secret",
                target.uri
            ))
            .into());
        }
        targets.push((target.clone(), given.clone().filter(|_| target.turn)));
    }
    if let Some(url) = &args.ice_servers {
        let servers =
            ice_servers::fetch(url, args.token.as_deref(), args.ca_file.as_deref()).await?;
        for (uri, credentials) in servers {
            match parse_target(&uri) {
                Ok(target) => {
                    let credentials = credentials.filter(|_| target.turn).map(|turn| Credentials {
                        turn,
                        minted: false,
                    });
                    if target.turn && credentials.is_none() {
                        tracing::warn!(%uri, "no credentials in the list: checked as STUN only");
                    }
                    targets.push((target, credentials));
                }
                Err(why) => tracing::warn!(%uri, %why, "skipping a URL of the list"),
            }
        }
    }
    if targets.is_empty() {
        bail!(UsageError(
            "nothing to check: give URIs (stun:, stuns:, turn:, turns:) or --ice-servers URL"
                .into()
        ));
    }
    let settings = Settings {
        timeout: args.step_timeout(),
        count: args.count,
        interval: Duration::from_millis(args.interval),
        ipv4_only: match (args.ipv4, args.ipv6) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        },
        realm: args.realm.clone(),
        tls: tls::TlsSettings::new(args.ca_file.as_deref(), args.insecure)?,
        dns: crate::client::discovery::Dns::new(args.dns.dns_server, args.step_timeout()),
    };
    let mut results = Vec::new();
    for (target, credentials) in &targets {
        results.push(steps::check(target, credentials.as_ref(), &settings).await);
    }
    let summary: Vec<_> = results
        .iter()
        .zip(&targets)
        .map(|(r, (t, _))| {
            let unanswered = r.outcome == report::Outcome::Unreachable;
            (
                t.host.clone(),
                // The transport checked: NAPTR records may have chosen it (RFC 5928 §3).
                r.transport,
                unanswered,
                r.outcome == report::Outcome::Ok,
            )
        })
        .collect();
    for (index, sentence) in diagnosis::across(&summary) {
        results[index].diagnoses.push(sentence);
    }
    Ok(Report::new(results))
}

/// The credentials of the command line: --user/--password, or a REST credential minted with
/// --rest-secret (draft-uberti-behave-turn-rest-00 §2.2).
fn given_credentials(args: &CheckArgs) -> Option<Credentials> {
    if let Some(secret) = &args.rest_secret {
        let unix_now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let username = turn::auth::rest::username(unix_now + args.rest_ttl, args.user.as_deref());
        let password = turn::auth::rest::password(secret, &username);
        return Some(Credentials {
            turn: TurnCredentials { username, password },
            minted: true,
        });
    }
    let (user, password) = (args.user.as_ref()?, args.password.as_ref()?);
    Some(Credentials {
        turn: TurnCredentials {
            username: user.clone(),
            password: password.clone(),
        },
        minted: false,
    })
}
