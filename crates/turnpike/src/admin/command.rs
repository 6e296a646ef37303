//! `turnpike admin`: the admin API from the command line.
//!
//! The token comes from `--token-file`, else `TURNPIKE_ADMIN_TOKEN`, else `admin-token` of
//! `--config FILE`: never from a plain argument, which every user of the host sees in `ps`.
//! The URL is `--url`, else `http://` + `admin-listen` of `--config FILE`, else
//! `http://127.0.0.1:9642`. Exit codes: 0 done, 1 the server refused or could not be reached,
//! 2 usage or configuration error.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;

use super::wire::{Draining, Failure, Info, Kick, Kicked, Reload, Session};
use crate::cluster::fleet::NodeRecord;
use crate::config::{self, Config};

/// The environment variable holding the token (the same as `serve` reads `admin-token` from).
const TOKEN_VAR: &str = "TURNPIKE_ADMIN_TOKEN";
/// How long one call may take: a reload reads the user database, nothing takes longer.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest answer read (a sessions list of a busy server fits).
const MAX_ANSWER_BYTES: usize = 64 << 20;

/// Arguments of `turnpike admin`.
#[derive(Debug, clap::Args)]
pub struct AdminArgs {
    /// Admin API URL [default: http:// + admin-listen of --config, else http://127.0.0.1:9642].
    #[arg(long, env = "TURNPIKE_ADMIN_URL", value_name = "URL")]
    pub url: Option<String>,
    /// File holding the admin token (first line) [default: env TURNPIKE_ADMIN_TOKEN, else
    /// admin-token of --config].
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// The server's configuration file, for admin-token and admin-listen.
    #[arg(long, short = 'c', env = "TURNPIKE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the API's JSON answer as it is.
    #[arg(long)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub action: Action,
}

/// The admin actions.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// List the allocations: user, client 5-tuple, relay address, age, traffic.
    Sessions,
    /// End one client's allocations, or every allocation of a user.
    Kick {
        /// Every allocation of this username.
        #[arg(long, value_name = "USER", conflicts_with = "client")]
        user: Option<String>,
        /// The client address (IP:PORT) whose allocations end.
        #[arg(value_name = "CLIENT_ADDR", required_unless_present = "user")]
        client: Option<SocketAddr>,
    },
    /// Begin a drain (as SIGTERM does): new allocations refused, the process exits when the
    /// last one ends or at drain-timeout.
    Drain,
    /// Reload the configuration file (as SIGHUP does); prints the problems when it is invalid.
    Reload,
    /// Version, uptime, workers, allocations, draining.
    Info,
    /// The cluster's nodes as this one last read them: allocations, whether each takes new
    /// ones, signaling rooms and peers, TURN host (docs/cluster.md).
    Cluster,
}

/// Runs `turnpike admin`.
pub fn run(args: AdminArgs) -> ExitCode {
    let target = match Target::from_args(&args) {
        Ok(target) => target,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let result = runtime
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(act(&target, &args)));
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}

/// Where to call, with which token.
struct Target {
    url: Uri,
    token: String,
}

impl Target {
    fn from_args(args: &AdminArgs) -> anyhow::Result<Target> {
        let file = match &args.config {
            Some(path) => Some(read_config(path)?),
            None => None,
        };
        let token = match (&args.token_file, std::env::var(TOKEN_VAR)) {
            (Some(path), _) => read_token_file(path)?,
            (None, Ok(token)) if !token.trim().is_empty() => token.trim().to_owned(),
            _ => file
                .as_ref()
                .and_then(|config| config.admin_token.as_ref())
                .map(|token| token.expose().to_owned())
                .with_context(|| {
                    format!("no admin token: give --token-file, set {TOKEN_VAR} or --config")
                })?,
        };
        let url = match (&args.url, &file) {
            (Some(url), _) => url.clone(),
            (None, Some(config)) => format!("http://{}", config.admin_listen),
            (None, None) => format!("http://{}", Config::default().admin_listen),
        };
        let url: Uri = url
            .parse()
            .with_context(|| format!("`{url}` is not a URL"))?;
        if url.scheme_str() != Some("http") || url.authority().is_none() {
            bail!("`{url}`: the admin API speaks http://HOST:PORT");
        }
        Ok(Target { url, token })
    }
}

/// `admin-token` and `admin-listen` of the server's configuration file, checked as the
/// server checks them.
fn read_config(path: &Path) -> anyhow::Result<Config> {
    let layer = config::read_keys(path, &["admin-token", "admin-listen"])
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    let only = config::ConfigLayer {
        admin_token: layer.admin_token,
        admin_listen: layer.admin_listen,
        ..Default::default()
    };
    Config::from_layer(&only).map_err(|problems| {
        let reasons: Vec<String> = problems
            .iter()
            .map(|p| format!("{}: key `{}`: {}", path.display(), p.key, p.reason))
            .collect();
        anyhow::anyhow!("{}", reasons.join("\n"))
    })
}

/// The first line of `path`, trimmed; its contents never appear in an error.
fn read_token_file(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the token file {}", path.display()))?;
    let token = text.lines().next().unwrap_or_default().trim();
    if token.is_empty() {
        bail!("the token file {} is empty", path.display());
    }
    Ok(token.to_owned())
}

/// Performs `args.action` and prints the answer.
async fn act(target: &Target, args: &AdminArgs) -> anyhow::Result<ExitCode> {
    let (method, path, body) = match &args.action {
        Action::Sessions => (Method::GET, "/v1/sessions", None),
        Action::Info => (Method::GET, "/v1/info", None),
        Action::Cluster => (Method::GET, "/v1/cluster", None),
        Action::Drain => (Method::POST, "/v1/drain", Some(String::from("{}"))),
        Action::Reload => (Method::POST, "/v1/reload", Some(String::from("{}"))),
        Action::Kick { user, client } => {
            let kick = Kick {
                user: user.clone(),
                client: client.map(|c| c.to_string()),
            };
            (
                Method::POST,
                "/v1/kick",
                Some(serde_json::to_string(&kick)?),
            )
        }
    };
    let (status, answer) = tokio::time::timeout(CALL_TIMEOUT, call(target, method, path, body))
        .await
        .context("the admin API did not answer in time")??;
    if status == StatusCode::UNAUTHORIZED {
        bail!("the admin API refused the token (401)");
    }
    // A refused reload is an answer with problems, not a failed call.
    let reload_refused = status == StatusCode::UNPROCESSABLE_ENTITY;
    if !status.is_success() && !reload_refused {
        let error = serde_json::from_slice::<Failure>(&answer)
            .map(|f| f.error)
            .unwrap_or_else(|_| String::from_utf8_lossy(&answer).trim().to_owned());
        bail!("the admin API answered {status}: {error}");
    }
    if args.json {
        println!("{}", String::from_utf8_lossy(&answer).trim_end());
    } else {
        print_answer(&args.action, &answer)?;
    }
    Ok(if reload_refused {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// One HTTP/1.1 request (hyper's client connection: no pool, one call per run).
async fn call(
    target: &Target,
    method: Method,
    path: &str,
    body: Option<String>,
) -> anyhow::Result<(StatusCode, Vec<u8>)> {
    let authority = target
        .url
        .authority()
        .context("the URL has no host")?
        .clone();
    let port = authority.port_u16().unwrap_or(80);
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let stream = tokio::net::TcpStream::connect((host, port))
        .await
        .with_context(|| format!("connecting to the admin API at {authority}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP handshake with the admin API")?;
    tokio::spawn(connection);
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, authority.as_str())
        .header(header::AUTHORIZATION, format!("Bearer {}", target.token));
    if body.is_some() {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    let request = request.body(Body::from(body.unwrap_or_default()))?;
    let response = sender
        .send_request(request)
        .await
        .context("calling the admin API")?;
    let status = response.status();
    let bytes = axum::body::to_bytes(Body::new(response.into_body()), MAX_ANSWER_BYTES)
        .await
        .context("reading the admin API's answer")?;
    Ok((status, bytes.to_vec()))
}

fn parse<T: DeserializeOwned>(answer: &[u8]) -> anyhow::Result<T> {
    serde_json::from_slice(answer).context("an answer the admin API should not give")
}

/// The answer for a person.
fn print_answer(action: &Action, answer: &[u8]) -> anyhow::Result<()> {
    match action {
        Action::Info => {
            let info: Info = parse(answer)?;
            println!("version      {}", info.version);
            println!("uptime       {} s", info.uptime_secs);
            println!("workers      {}", info.workers);
            println!("allocations  {}", info.allocations);
            println!("draining     {}", if info.draining { "yes" } else { "no" });
        }
        Action::Sessions => print_sessions(&parse::<Vec<Session>>(answer)?),
        Action::Cluster => print_cluster(&parse::<Vec<NodeRecord>>(answer)?),
        Action::Kick { .. } => {
            let kicked: Kicked = parse(answer)?;
            println!("kicked {} allocation(s)", kicked.kicked);
        }
        Action::Drain => {
            let draining: Draining = parse(answer)?;
            let what = if draining.started {
                "draining"
            } else {
                "already draining"
            };
            println!("{what}: {} allocation(s) left", draining.allocations);
        }
        Action::Reload => {
            let reload: Reload = parse(answer)?;
            if reload.reloaded {
                println!("reloaded: {} static user(s)", reload.users);
                if !reload.restart_needed.is_empty() {
                    println!(
                        "changed keys that need a restart: {}",
                        reload.restart_needed.join(", ")
                    );
                }
            } else {
                eprintln!("not reloaded; the configuration in force is unchanged:");
                for problem in &reload.problems {
                    eprintln!("  {problem}");
                }
            }
        }
    }
    Ok(())
}

/// One line per allocation, aligned.
fn print_sessions(sessions: &[Session]) {
    let header = [
        "USER",
        "CLIENT",
        "PROTO",
        "RELAY",
        "AGE",
        "TO-PEER",
        "TO-CLIENT",
    ]
    .map(str::to_owned);
    let rows: Vec<[String; 7]> = sessions
        .iter()
        .map(|s| {
            [
                s.user.clone(),
                s.client.clone(),
                s.transport.clone(),
                s.relays.join(","),
                format!("{}s", s.age_secs),
                format!("{}p/{}B", s.to_peer_packets, s.to_peer_bytes),
                format!("{}p/{}B", s.to_client_packets, s.to_client_bytes),
            ]
        })
        .collect();
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
    println!("{} allocation(s)", sessions.len());
}

/// One line per node: id, allocations, open for new ones, signaling rooms and peers, TURN host.
fn print_cluster(nodes: &[NodeRecord]) {
    if nodes.is_empty() {
        println!("no cluster (redis-url unset), or no heartbeat read yet");
        return;
    }
    println!("node\tallocations\topen\trooms\tpeers\tturn");
    for node in nodes {
        let open = match (&node.turn, node.draining, node.full) {
            (None, ..) => "no TURN",
            (_, true, _) => "draining",
            (_, _, true) => "full",
            _ => "yes",
        };
        let turn = node
            .turn
            .as_ref()
            .and_then(|t| t.host.as_deref())
            .unwrap_or("-");
        println!(
            "{}\t{}\t{open}\t{}\t{}\t{turn}",
            node.id, node.allocations, node.rooms, node.peers
        );
    }
}
