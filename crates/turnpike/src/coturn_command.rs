//! `turnpike config import-coturn FILE [-o OUT] [--strict]`: translates coturn's
//! `turnserver.conf` into a Turnpike TOML file.
//!
//! Exit codes: 0 translated (what was dropped or means something else is written as comments
//! of the output and counted on stderr), 1 a line coturn would not accept either (each named
//! `FILE:LINE: key `KEY`: why`), an unreadable input, an unwritable output or, with
//! `--strict`, anything dropped or different; 2 usage. Secrets (passwords, REST secrets,
//! database connection strings) are written to the output — that is its purpose — and never
//! to stderr.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::config::{self, coturn};

/// Exit code of an import that cannot be done as asked.
const EXIT_FAILED: u8 = 1;
/// Mode of the written file: it holds passwords and REST secrets.
const PRIVATE: u32 = 0o600;

/// Arguments of `turnpike config import-coturn`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// coturn's configuration file (turnserver.conf).
    pub file: PathBuf,
    /// Write the Turnpike file here, with mode 0600 (it holds the credentials), instead of
    /// to stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Fail, writing nothing, when any coturn option is dropped or means something different
    /// in Turnpike, or the result does not pass `turnpike config check`.
    #[arg(long)]
    pub strict: bool,
}

/// Runs the import.
pub fn run(args: &ImportArgs) -> ExitCode {
    let file = args.file.display();
    let text = match std::fs::read_to_string(&args.file) {
        Ok(text) => text,
        Err(error) => {
            eprintln!("{file}: cannot read the file: {error}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let imported = match coturn::import(&args.file, &text) {
        Ok(imported) => imported,
        Err(problems) => {
            for p in problems {
                eprintln!("{file}:{}: key `{}`: {}", p.line, p.key, p.why);
            }
            return ExitCode::from(EXIT_FAILED);
        }
    };
    // The problems `config check` would find in the result: named by key, never by value.
    let name = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from("turnpike.toml"));
    let unchecked = config::check_text(&name, &imported.toml).err();
    let strict_failure =
        !imported.dropped.is_empty() || !imported.differs.is_empty() || unchecked.is_some();
    if args.strict && strict_failure {
        for (what, notes) in [
            ("dropped", &imported.dropped),
            ("different", &imported.differs),
        ] {
            for note in notes {
                let line = note.line.map(|l| format!(":{l}")).unwrap_or_default();
                eprintln!("{file}{line}: key `{}`: {what}: {}", note.key, note.why);
            }
        }
        if let Some(error) = &unchecked {
            eprintln!("{error}");
        }
        eprintln!("{file}: not translated (--strict)");
        return ExitCode::from(EXIT_FAILED);
    }
    let written = match &args.output {
        Some(path) => write_private(path, &imported.toml),
        None => std::io::stdout().write_all(imported.toml.as_bytes()),
    };
    if let Err(error) = written {
        eprintln!("{}: cannot write: {error}", name.display());
        return ExitCode::from(EXIT_FAILED);
    }
    eprintln!(
        "{file}: {} Turnpike keys written, {} coturn options left out, {} differences noted \
         (each explained in a comment of the output)",
        imported.translated,
        imported.dropped.len(),
        imported.differs.len()
    );
    if let Some(path) = &args.output {
        eprintln!(
            "{}: written with mode 0600: it holds the credentials of the original",
            path.display()
        );
    }
    if let Some(error) = unchecked {
        eprintln!("warning: `turnpike config check` finds problems in the result; fix them before `serve`:");
        eprintln!("{error}");
    }
    ExitCode::SUCCESS
}

/// Writes `text` to `path`, readable by its owner only — also when the file existed before with
/// a wider mode.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(PRIVATE)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(PRIVATE))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}
