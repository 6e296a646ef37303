//! `turnpike user add|remove|list`: manages the user database that `serve` reads (`user-db`).
//!
//! The database is `--db`, else `user-db` from `--config FILE`, else `turnpike.db` in the
//! working directory; the realm is `--realm`, else `realm` from the file, else `turnpike`
//! (each flag also reads its `TURNPIKE_*` variable, as for `serve`). Exit codes: 0 success,
//! 1 runtime error (a database problem, a name that exists or does not), 2 usage error (a bad
//! name, realm, password or configuration file).

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::anyhow;
use turn::auth::UserKeys;

use super::store::{Added, UserStore};
use crate::config::{self, realm_problem, user_name_problem};

/// The database used when neither `--db` nor the configuration names one.
const DEFAULT_DB: &str = "turnpike.db";
/// The realm used when neither `--realm` nor the configuration sets one.
const DEFAULT_REALM: &str = "turnpike";

/// Arguments of `turnpike user`; the common flags are accepted before or after the action.
#[derive(Debug, clap::Args)]
pub struct UserArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: UserAction,
    /// User database [default: `user-db` from --config, else turnpike.db].
    #[arg(long, global = true, env = "TURNPIKE_USER_DB", value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// Realm the keys are derived for [default: `realm` from --config, else turnpike].
    #[arg(long, global = true, env = "TURNPIKE_REALM", value_name = "REALM")]
    pub realm: Option<String>,
    /// Configuration file to take `user-db` and `realm` from.
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "TURNPIKE_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,
}

/// The `turnpike user` actions.
#[derive(Debug, clap::Subcommand)]
pub enum UserAction {
    /// Add a user (creating the database, mode 0600, if needed); the password is asked twice
    /// without echo on a terminal, read as one line of stdin otherwise, unless --password is
    /// given.
    Add {
        /// The user name: not empty, no `:`.
        name: String,
        /// The password (visible to other local users in `ps`: prefer stdin).
        #[arg(long, value_name = "PASSWORD")]
        password: Option<String>,
        /// Replace the keys (and realm) of an existing user instead of refusing.
        #[arg(long)]
        update: bool,
    },
    /// Remove a user.
    Remove {
        /// The user name.
        name: String,
    },
    /// List the users: name, realm and creation time (UTC), tab-separated, one per line.
    List {
        /// Print a JSON array of {name, realm, created_at (Unix seconds), created} instead.
        #[arg(long)]
        json: bool,
    },
}

/// Why a command failed, which decides its exit code.
#[derive(Debug)]
enum Failure {
    /// Bad input: exit 2.
    Usage(String),
    /// Anything else: exit 1.
    Runtime(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Failure::Runtime(error)
    }
}

/// Runs `turnpike user …`, printing results to stdout and errors to stderr.
pub fn run(args: UserArgs) -> ExitCode {
    match execute(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(error)) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}

/// Resolves the database and realm, then performs the action.
fn execute(args: UserArgs) -> Result<(), Failure> {
    let from_file = match &args.config {
        Some(path) => config::read_keys(path, &["user-db", "realm"])
            .map_err(|error| Failure::Usage(error.to_string()))?,
        None => config::ConfigLayer::default(),
    };
    let db = args
        .db
        .or(from_file.user_db)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DB));
    let realm = args
        .realm
        .or(from_file.realm)
        .unwrap_or_else(|| DEFAULT_REALM.to_owned());
    if let Some(why) = realm_problem(&realm) {
        return Err(Failure::Usage(format!("realm: {why}")));
    }
    match args.action {
        UserAction::Add {
            name,
            password,
            update,
        } => add(&db, &realm, &name, password, update),
        UserAction::Remove { name } => {
            if !UserStore::open_existing(&db)?.remove(&name)? {
                return Err(anyhow!("no user `{name}` in `{}`", db.display()).into());
            }
            println!("removed user `{name}` from {}", db.display());
            Ok(())
        }
        UserAction::List { json } => list(&db, json),
    }
}

/// `turnpike user add`.
fn add(
    db: &Path,
    realm: &str,
    name: &str,
    password: Option<String>,
    update: bool,
) -> Result<(), Failure> {
    if let Some(why) = user_name_problem(name) {
        return Err(Failure::Usage(why));
    }
    let password = match password {
        Some(password) => password,
        None => read_password(name)?,
    };
    if password.is_empty() {
        return Err(Failure::Usage("the password is empty".to_owned()));
    }
    let keys = UserKeys::from_password(name, realm, &password);
    let store = UserStore::create_or_open(db)?;
    match store.add(name, realm, &keys, update, unix_now())? {
        Added::Created => println!("added user `{name}` (realm `{realm}`) to {}", db.display()),
        Added::Updated => println!(
            "updated user `{name}` (realm `{realm}`) in {}",
            db.display()
        ),
        Added::Exists => {
            let why = anyhow!(
                "user `{name}` already exists in `{}`; use --update to replace its password",
                db.display()
            );
            return Err(why.into());
        }
    }
    Ok(())
}

/// The password of `turnpike user add`: on a terminal, typed twice at a prompt that does not
/// echo it (a mismatch is refused); otherwise (a script piping it in) one line of stdin.
fn read_password(name: &str) -> Result<String, Failure> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        // rpassword reads the terminal (/dev/tty) with echo off and restores it after.
        let mut prompt = |text: &str| rpassword::prompt_password(text);
        confirmed_password(name, &mut prompt)
    } else {
        one_line(&mut stdin.lock())
            .map_err(|error| anyhow!("cannot read the password: {error}").into())
    }
}

/// Asks for the password twice through `prompt`; refuses two different answers.
fn confirmed_password(
    name: &str,
    prompt: &mut dyn FnMut(&str) -> std::io::Result<String>,
) -> Result<String, Failure> {
    let cannot = |error: std::io::Error| anyhow!("cannot read the password: {error}");
    let first = prompt(&format!("password for `{name}`: ")).map_err(cannot)?;
    let again = prompt("the same password again: ").map_err(cannot)?;
    if first != again {
        return Err(Failure::Usage(
            "the two passwords differ; nothing was changed".to_owned(),
        ));
    }
    Ok(first)
}

/// One line without its line ending.
fn one_line(input: &mut dyn BufRead) -> std::io::Result<String> {
    let mut line = String::new();
    input.read_line(&mut line)?;
    let trimmed = line.strip_suffix('\n').unwrap_or(&line);
    Ok(trimmed.strip_suffix('\r').unwrap_or(trimmed).to_owned())
}

/// `turnpike user list`.
fn list(db: &Path, json: bool) -> Result<(), Failure> {
    let users = UserStore::open_existing(db)?.list()?;
    if json {
        let entries: Vec<serde_json::Value> = users
            .iter()
            .map(|user| {
                serde_json::json!({
                    "name": user.name,
                    "realm": user.realm,
                    "created_at": user.created_at,
                    "created": user.created_at.map(rfc3339),
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(entries));
    } else {
        for user in &users {
            let created = user.created_at.map(rfc3339).unwrap_or_default();
            println!("{}\t{}\t{created}", user.name, user.realm);
        }
    }
    Ok(())
}

/// Seconds since the Unix epoch (0 if the clock is before it).
fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

/// `YYYY-MM-DDTHH:MM:SSZ` for Unix seconds (proleptic Gregorian calendar, UTC).
pub fn rfc3339(unix: i64) -> String {
    let (days, seconds) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's `civil_from_days`).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (hour, minute, second) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A prompt that answers from a list, then fails as a closed terminal does.
    fn answers(replies: &[&str]) -> impl FnMut(&str) -> std::io::Result<String> {
        let mut replies: Vec<String> = replies.iter().rev().map(|r| (*r).to_owned()).collect();
        move |_: &str| {
            replies
                .pop()
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))
        }
    }

    #[test]
    fn the_password_is_asked_twice_and_kept_when_both_agree() {
        let mut asked = Vec::new();
        let mut prompt = |text: &str| {
            asked.push(text.to_owned());
            Ok("s3cret pass".to_owned())
        };
        let password = confirmed_password("alice", &mut prompt).unwrap();
        assert_eq!(password, "s3cret pass");
        assert_eq!(
            asked,
            ["password for `alice`: ", "the same password again: "]
        );
    }

    #[test]
    fn two_different_passwords_are_refused_as_a_usage_error() {
        let mut prompt = answers(&["first", "second"]);
        match confirmed_password("alice", &mut prompt) {
            Err(Failure::Usage(why)) => {
                assert!(why.contains("differ"), "{why}");
                assert!(!why.contains("first") && !why.contains("second"), "{why}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_prompt_that_cannot_read_is_a_runtime_error() {
        let mut prompt = answers(&["only one"]);
        assert!(matches!(
            confirmed_password("alice", &mut prompt),
            Err(Failure::Runtime(_))
        ));
    }

    #[test]
    fn a_script_gives_one_line_without_its_ending() {
        assert_eq!(one_line(&mut &b"pw one\r\nrest\n"[..]).unwrap(), "pw one");
        assert_eq!(one_line(&mut &b"last"[..]).unwrap(), "last");
    }
}
