//! The command line (`turnpike serve | config check | config example | config import-coturn |
//! stun | nat | check | p2p |
//! user | token | admin | completions | man`)
//! and its dispatch.
//!
//! Exit codes: 0 success, 2 configuration or usage error (nothing was bound), 1 runtime error;
//! `check` has one per outcome (3 to 7, docs/client.md).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::client::stun_command;
use crate::client::stun_command::StunArgs;
use crate::config::{self, CliLayer, Config, ConfigLayer, LogArgs, Origin};
use crate::logging;
use crate::server::serve;

/// Exit code of a configuration or usage error (the same as clap's usage errors).
const EXIT_CONFIG: u8 = 2;
/// Exit code of a runtime error.
const EXIT_RUNTIME: u8 = 1;

/// Turnpike: STUN/TURN server and client tools for WebRTC connectivity.
#[derive(Debug, Parser)]
#[command(name = "turnpike", version, propagate_version = true)]
pub struct Cli {
    /// Logging flags, accepted by every subcommand.
    #[command(flatten)]
    pub log: LogArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
// Parsed once per process: the size of the `serve` flags does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the STUN/TURN server. Every configuration key is also a flag and a TURNPIKE_* env var.
    Serve(ServeArgs),
    /// Check a configuration file, or print a commented example.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Send one STUN Binding request and print the address the server saw.
    Stun(StunArgs),
    /// Discover the NAT's behaviour (RFC 5780): mapping, filtering, hairpinning, NAT type.
    Nat(crate::client::nat_command::NatArgs),
    /// Check a STUN/TURN deployment end to end (DNS, TLS, Binding, Allocate, permissions,
    /// relayed data, Refresh, deallocation) and say what to fix; exit code per outcome.
    Check(crate::client::check::CheckArgs),
    /// Manage TURN users in a SQLite user database (the `user-db` of `serve`).
    User(crate::users::command::UserArgs),
    /// Print a signaling join token for a room, minted with `signaling-secret`.
    Token(crate::client::token_command::TokenArgs),
    /// Connect to another peer through a signaling room (ICE: direct or relayed, then QUIC),
    /// and chat or send a file.
    P2p(crate::client::p2p::P2pArgs),
    /// Call the admin API of a running server: sessions, kick, drain, reload, info.
    Admin(crate::admin::command::AdminArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(crate::completions::CompletionsArgs),
    /// Print the manual page (roff), or write one page per command with --dir.
    Man(crate::completions::ManArgs),
}

/// Arguments of `turnpike serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Configuration file (TOML); flags and TURNPIKE_* env vars override its keys.
    #[arg(long, short = 'c', env = "TURNPIKE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The configuration keys as flags.
    #[command(flatten)]
    pub layer: ConfigLayer,
}

/// The `turnpike config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check FILE: print "FILE: ok", or every problem as FILE:LINE: key `KEY`: REASON and exit 2.
    Check {
        /// The configuration file to check.
        file: PathBuf,
    },
    /// Print a commented configuration file documenting every key and its default.
    Example,
    /// Translate coturn's turnserver.conf into a Turnpike file, with a comment for every
    /// option dropped or meaning something different; exit 1 on a line coturn would refuse.
    ImportCoturn(crate::coturn_command::ImportArgs),
}

/// Parses `args` (program name first) and runs the chosen subcommand.
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let parsed = Cli::command()
        .try_get_matches_from(args)
        .and_then(|matches| Cli::from_arg_matches(&matches).map(|cli| (cli, matches)));
    let (cli, matches) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => return usage_error(&error),
    };
    let rust_log = std::env::var("RUST_LOG")
        .ok()
        .filter(|filter| !filter.is_empty());
    match cli.command {
        Command::Serve(args) => {
            let cli = serve_layer(cli.log, args.layer, &matches, rust_log);
            serve_command(args.config.as_deref(), &cli)
        }
        Command::Config(ConfigCommand::Check { file }) => check_command(&file),
        Command::Config(ConfigCommand::Example) => {
            print!("{}", config::EXAMPLE);
            ExitCode::SUCCESS
        }
        Command::Config(ConfigCommand::ImportCoturn(args)) => crate::coturn_command::run(&args),
        Command::User(args) => crate::users::command::run(args),
        Command::Token(args) => crate::client::token_command::run(args),
        Command::Admin(args) => crate::admin::command::run(args),
        Command::Stun(args) => client_command(cli.log, &matches, rust_log, stun_command::run(args)),
        Command::Nat(args) => client_command(
            cli.log,
            &matches,
            rust_log,
            crate::client::nat_command::run(args),
        ),
        Command::P2p(args) => {
            client_command(cli.log, &matches, rust_log, crate::client::p2p::run(args))
        }
        Command::Check(args) => {
            client_command_with_code(cli.log, &matches, rust_log, crate::client::check::run(args))
        }
        Command::Completions(args) => plain_result(crate::completions::completions(&args)),
        Command::Man(args) => plain_result(crate::completions::man(&args)),
    }
}

/// Runs a client command (`stun`, `nat`, `p2p`): only the logging flags apply; failures are
/// reported as `error: …` on stderr.
fn client_command(
    log: LogArgs,
    matches: &ArgMatches,
    rust_log: Option<String>,
    task: impl Future<Output = anyhow::Result<()>>,
) -> ExitCode {
    client_command_with_code(log, matches, rust_log, async {
        task.await.map(|()| ExitCode::SUCCESS)
    })
}

/// [`client_command`] for a command whose exit code tells its outcome (`check`).
fn client_command_with_code(
    log: LogArgs,
    matches: &ArgMatches,
    rust_log: Option<String>,
    task: impl Future<Output = anyhow::Result<ExitCode>>,
) -> ExitCode {
    let layer = log.into_layer();
    let origins = cli_origins(&layer, &[matches]);
    let cli = CliLayer {
        layer,
        origins,
        rust_log,
    };
    let Some(config) = load_or_report(None, &cli) else {
        return ExitCode::from(EXIT_CONFIG);
    };
    with_logging(&config, Fatal::Plain, task)
}

/// Exit 0, or `error: …` on stderr and exit 1.
fn plain_result(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

/// Prints clap's message; `--help` and `--version` exit 0, usage errors 2.
fn usage_error(error: &clap::Error) -> ExitCode {
    // Printing to a closed stdout/stderr is not worth a second error.
    let _ = error.print();
    ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(EXIT_CONFIG))
}

/// The command-line layer of `serve`: its flags plus the global logging flags, with the origin of
/// each value. `matches` are the top-level matches.
pub fn serve_layer(
    log: LogArgs,
    flags: ConfigLayer,
    matches: &ArgMatches,
    rust_log: Option<String>,
) -> CliLayer {
    let layer = log.into_layer().overlay(flags);
    let scopes: Vec<&ArgMatches> = [matches.subcommand_matches("serve"), Some(matches)]
        .into_iter()
        .flatten()
        .collect();
    let origins = cli_origins(&layer, &scopes);
    CliLayer {
        layer,
        origins,
        rust_log,
    }
}

/// For every key `layer` sets, whether a flag or an env var set it, looked up in the first of
/// `scopes` (subcommand matches, then top-level matches for the global logging flags) that holds
/// the key.
pub fn cli_origins(layer: &ConfigLayer, scopes: &[&ArgMatches]) -> BTreeMap<String, Origin> {
    let mut origins = BTreeMap::new();
    for key in layer.set_keys() {
        let id = key.replace('-', "_");
        // `value_source` panics (in debug builds) on an id its command does not define, so look
        // only where the id is present.
        let source = scopes
            .iter()
            .find(|matches| matches.ids().any(|present| present.as_str() == id))
            .and_then(|matches| matches.value_source(&id));
        let origin = match source {
            Some(ValueSource::EnvVariable) => Origin::Env {
                var: config::env_var_of_key(&key),
            },
            _ => Origin::Flag,
        };
        origins.insert(key, origin);
    }
    origins
}

/// `turnpike serve`: configuration (checked against this host too), logging, then the server
/// in a multi-thread runtime.
fn serve_command(file: Option<&Path>, cli: &CliLayer) -> ExitCode {
    let config = match config::load_with(file, cli, crate::server::host_checks::problems) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let startup = config.clone();
    let source = crate::control::ConfigSource {
        file: file.map(Path::to_path_buf),
        cli: cli.clone(),
    };
    with_logging(&config, Fatal::Logged, async move {
        log_startup(&startup);
        crate::server::fd_limit::raise_to_hard_limit();
        serve::run(startup, source)
            .await
            .map(|()| ExitCode::SUCCESS)
    })
}

/// `turnpike config check FILE`.
fn check_command(file: &Path) -> ExitCode {
    match config::check_file(file) {
        Ok(_) => {
            println!("{}: ok", file.display());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

/// Loads the configuration, printing every problem to stderr when it is unusable.
fn load_or_report(file: Option<&Path>, cli: &CliLayer) -> Option<Config> {
    config::load(file, cli)
        .map_err(|error| eprintln!("{error}"))
        .ok()
}

/// Where a fatal error of a command is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fatal {
    /// As an ERROR event in the log stream (long-running server).
    Logged,
    /// As `error: …` on stderr (client commands).
    Plain,
}

/// Installs logging, then runs `task` to completion in a multi-thread tokio runtime.
fn with_logging(
    config: &Config,
    fatal: Fatal,
    task: impl Future<Output = anyhow::Result<ExitCode>>,
) -> ExitCode {
    if let Err(error) = logging::init(config) {
        eprintln!("error: {error:#}");
        return ExitCode::from(EXIT_RUNTIME);
    }
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| {
            let result = runtime.block_on(task);
            // Dropping the runtime waits for its blocking threads, and tokio's stdin reader is
            // one that may sit in read(2) forever (`turnpike p2p` ended by its peer while the
            // terminal is quiet): give them a moment, not forever.
            runtime.shutdown_timeout(std::time::Duration::from_millis(250));
            result
        });
    match result {
        Ok(code) => code,
        Err(error) => {
            // A server's fatal error belongs in the log stream (JSON collectors see it), unless
            // the filter would hide it: then stderr, so that no failure is silent. A client
            // command's failure is its answer to the person who typed it: plain stderr.
            if fatal == Fatal::Logged && tracing::enabled!(tracing::Level::ERROR) {
                tracing::error!("{error:#}");
            } else {
                eprintln!("error: {error:#}");
            }
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

/// One line with the effective configuration, so that an operator sees what the layers added up to.
fn log_startup(config: &Config) {
    tracing::info!(
        listen = ?config.listen,
        udp = config.udp,
        tcp = config.tcp,
        tls_listen = ?config.tls.as_ref().map(|_| &config.tls_listen),
        tls_cert = ?config.tls.as_ref().map(|tls| &tls.cert),
        tls_key = ?config.tls.as_ref().map(|tls| &tls.key),
        alternate_ip = ?config.alternate_ip,
        alternate_port = ?config.alternate_port,
        software = ?config.software,
        tcp_idle_timeout = ?config.tcp_idle_timeout,
        max_tcp_connections = config.max_tcp_connections,
        turn = config.turn,
        http_listen = ?config.http.then_some(&config.http_listen),
        https_listen = ?(config.http && !config.https_listen.is_empty())
            .then_some(&config.https_listen),
        metrics_listen = ?config.metrics_listen,
        admin_listen = ?config.admin_token.as_ref().map(|_| config.admin_listen),
        cluster = config.redis_url.is_some(),
        node_id = ?config.node_id,
        log_format = ?config.log_format,
        "starting turnpike"
    );
}
