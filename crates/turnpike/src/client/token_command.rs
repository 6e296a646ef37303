//! `turnpike token --room ROOM --ttl 1h`: prints a signaling join token for ROOM, valid for the
//! TTL, minted with `signaling-secret` (see docs/signaling.md "Tokens").
//!
//! The secret is `--secret` (or `TURNPIKE_SIGNALING_SECRET`), else `signaling-secret` from
//! `--config FILE`. Exit codes: 0 with the token on stdout, 2 when there is no usable secret
//! or an argument is bad.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::{self, Secret, SIGNALING_SECRET_MIN_BYTES};

/// Longest token lifetime: a year (a longer one is a password, not a token).
const MAX_TTL: Duration = Duration::from_secs(366 * 86_400);
/// Longest room name (docs/signaling.md: 1–64 characters of `[A-Za-z0-9._-]`).
const ROOM_MAX_CHARS: usize = 64;

/// Arguments of `turnpike token`.
#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// The room the token admits to: 1-64 characters of A-Z a-z 0-9 . _ -
    #[arg(long, value_name = "ROOM", value_parser = parse_room)]
    pub room: String,
    /// How long the token is valid: 90s, 15m, 1h, 7d, or plain seconds.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_ttl)]
    pub ttl: Duration,
    /// The signaling secret [default: `signaling-secret` from --config] (visible in `ps`:
    /// prefer the env var or the file).
    #[arg(
        long,
        env = "TURNPIKE_SIGNALING_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub secret: Option<Secret>,
    /// Configuration file to take `signaling-secret` from.
    #[arg(long, short = 'c', env = "TURNPIKE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Prints the token, or the reason there is none.
pub fn run(args: TokenArgs) -> ExitCode {
    match token(args, unix_now()) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

/// The token for `args` at `unix_now`.
fn token(args: TokenArgs, unix_now: u64) -> Result<String, String> {
    let secret = secret(&args)?;
    let expiry = unix_now.saturating_add(args.ttl.as_secs());
    Ok(signal::token::mint(
        secret.expose().as_bytes(),
        &args.room,
        expiry,
    ))
}

/// `--secret`, else the file's `signaling-secret`; at least 16 bytes.
fn secret(args: &TokenArgs) -> Result<Secret, String> {
    let from_flag = args.secret.clone().filter(|s| !s.expose().is_empty());
    let secret = match (from_flag, &args.config) {
        (Some(secret), _) => secret,
        (None, Some(path)) => config::read_keys(path, &["signaling-secret"])
            .map_err(|error| error.to_string())?
            .signaling_secret
            .filter(|s| !s.expose().is_empty())
            .ok_or_else(|| format!("`{}` sets no `signaling-secret`", path.display()))?,
        (None, None) => {
            return Err(
                "no signaling secret: give --secret, TURNPIKE_SIGNALING_SECRET or \
                        --config FILE with `signaling-secret`"
                    .to_owned(),
            )
        }
    };
    if secret.expose().len() < SIGNALING_SECRET_MIN_BYTES {
        return Err(format!(
            "the signaling secret is shorter than {SIGNALING_SECRET_MIN_BYTES} bytes, so the \
             server would refuse it"
        ));
    }
    Ok(secret)
}

/// A room name as the hub accepts it.
fn parse_room(text: &str) -> Result<String, String> {
    let ok = !text.is_empty()
        && text.chars().count() <= ROOM_MAX_CHARS
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(text.to_owned())
    } else {
        Err("a room name is 1-64 characters of A-Z a-z 0-9 . _ -".to_owned())
    }
}

/// `1h`, `90s`, `1h 30m` (humantime), or plain seconds; more than zero, at most a year.
fn parse_ttl(text: &str) -> Result<Duration, String> {
    let ttl = match text.trim().parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => humantime::parse_duration(text.trim()).map_err(|error| error.to_string())?,
    };
    if ttl < Duration::from_secs(1) || ttl > MAX_TTL {
        return Err("the TTL must be between 1 second and 366 days".to_owned());
    }
    Ok(ttl)
}

/// Seconds since the Unix epoch.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(secret: Option<&str>) -> TokenArgs {
        TokenArgs {
            room: "lobby".to_owned(),
            ttl: Duration::from_secs(3600),
            secret: secret.map(|s| Secret(s.to_owned())),
            config: None,
        }
    }

    #[test]
    fn the_token_verifies_for_its_room_until_the_ttl() {
        let secret = "0123456789abcdef";
        let token = token(args(Some(secret)), 1_000).unwrap();
        let verify = |room, now| signal::token::verify(secret.as_bytes(), &token, room, now);
        assert_eq!(verify("lobby", 4_599), Ok(()));
        assert!(verify("lobby", 4_600).is_err());
        assert!(verify("hall", 1_000).is_err());
    }

    #[test]
    fn no_or_short_secret_is_an_error() {
        assert!(token(args(None), 0)
            .unwrap_err()
            .contains("no signaling secret"));
        assert!(token(args(Some("")), 0).is_err());
        assert!(token(args(Some("short")), 0)
            .unwrap_err()
            .contains("16 bytes"));
    }

    #[test]
    fn ttls_and_rooms() {
        assert_eq!(parse_ttl("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_ttl("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_ttl("1h 30m"), Ok(Duration::from_secs(5400)));
        for bad in ["0", "0s", "soon", "400d", "-1"] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
        assert!(parse_room("a.b_c-D9").is_ok());
        for bad in ["", "a b", "é", &"a".repeat(65)] {
            assert!(parse_room(bad).is_err(), "{bad}");
        }
    }
}
