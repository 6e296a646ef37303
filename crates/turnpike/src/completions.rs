//! `turnpike completions SHELL` and `turnpike man`: shell completion scripts and roff manual
//! pages generated from the clap definitions, so that they never disagree with `--help`.
//! Packages install them (see deploy/build-deb and docs/operations.md).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

/// Arguments of `turnpike completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to write a completion script for.
    pub shell: Shell,
}

/// Arguments of `turnpike man`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write one page per command into DIR (turnpike.1, turnpike-serve.1, …) instead of the
    /// main page to standard output.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Writes the completion script for `args.shell` to standard output.
pub fn completions(args: &CompletionsArgs) -> anyhow::Result<()> {
    let mut script = Vec::new();
    // The generators panic on a failed write: render into memory, then write once.
    clap_complete::generate(args.shell, &mut Cli::command(), "turnpike", &mut script);
    to_stdout(&script)
}

/// Writes the main manual page to standard output, or every page into `args.dir`.
pub fn man(args: &ManArgs) -> anyhow::Result<()> {
    match &args.dir {
        Some(dir) => write_pages(dir),
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command()).render(&mut page)?;
            to_stdout(&page)
        }
    }
}

/// One page per command and subcommand, named as `man` looks them up (`turnpike-serve.1`).
fn write_pages(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    clap_mangen::generate_to(Cli::command(), dir)
        .with_context(|| format!("writing manual pages into {}", dir.display()))
}

/// Writes `bytes` to standard output; a reader that stopped early (`| head`) is not an error.
fn to_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(error).context("writing to standard output")
        }
        _ => Ok(()),
    }
}
