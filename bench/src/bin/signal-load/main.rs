//! `signal-load`: a load generator for Turnpike's signaling WebSocket (a benchmark, not a test).
//!
//! It starts `turnpike serve` on loopback, opens N WebSocket peers in rooms of two, measures the
//! server's resident memory per idle connection, then drives a fixed total rate of directed
//! `message` frames (each peer to its partner) and records the relay latency in an HDR
//! histogram. With `--nodes N` it starts a redis-server and N nodes on it instead, and puts the
//! two peers of every room on different nodes. See `bench/README.md`.

mod fleet;
mod peers;
mod report;
mod server;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use tokio::sync::{mpsc, Semaphore};

use fleet::Fleet;
use peers::{lock, now_ns, PeerSpec, Stats};
use report::Report;
use server::ServerSettings;

/// Descriptors kept free besides one per peer (runtime, stdio, the server's listeners, …).
const SPARE_FDS: u64 = 256;
/// The server pings every connection this often (docs/signaling.md).
const PING_INTERVAL: Duration = Duration::from_secs(10);
/// The server's default `message-rate`, kept when it is enough.
const DEFAULT_MESSAGE_RATE: u64 = 50;
/// Most nodes `--nodes` starts (each is a process on the same machine).
const MAX_NODES: usize = 16;

/// Load generator for the signaling WebSocket of `turnpike serve` (a benchmark, not a test).
#[derive(Debug, Parser)]
#[command(name = "signal-load", version)]
struct Args {
    /// WebSocket peers, in rooms of two [default: 10000; 100 with --smoke]
    #[arg(long)]
    peers: Option<usize>,
    /// Directed `message` frames per second, in total over all peers [default: 5000; 200 with --smoke]
    #[arg(long)]
    rate: Option<u64>,
    /// Seconds of traffic [default: 30; 2 with --smoke]
    #[arg(long)]
    duration: Option<u64>,
    /// The turnpike binary [default: the one next to this program, rebuilt with cargo first]
    #[arg(long, value_name = "PATH")]
    server_bin: Option<PathBuf>,
    /// Quick check: 100 peers, 200 msg/s, 2 s; exit status 1 unless every message arrived
    #[arg(long)]
    smoke: bool,
    /// Print the results as JSON on stdout instead of a markdown table
    #[arg(long)]
    json: bool,
    /// Connections being opened at once (opening them in batches avoids SYN floods)
    #[arg(long, default_value_t = 100)]
    connect_concurrency: usize,
    /// Seconds to wait after the last send for messages still in flight
    #[arg(long, default_value_t = 5)]
    drain: u64,
    /// Extra bytes of padding in each message's `data` (models larger frames such as SDP)
    #[arg(long, default_value_t = 0)]
    pad: usize,
    /// Turnpike nodes: above 1, a redis-server and this many `turnpike serve --redis-url`
    /// nodes, the two peers of room k on nodes k mod N and (k + 1) mod N
    #[arg(long, default_value_t = 1)]
    nodes: usize,
}

/// The run's settings once defaults and limits are applied.
#[derive(Debug, Clone)]
struct Settings {
    peers: usize,
    rate: u64,
    duration: Duration,
    drain: Duration,
    concurrency: usize,
    pad: usize,
    nodes: usize,
    smoke: bool,
    /// A note when the descriptor limit capped `peers`.
    capped: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let settings = match settings(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("signal-load: {e:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("signal-load: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&args, settings)) {
        Ok(report) => {
            if args.json {
                match serde_json::to_string_pretty(&report) {
                    Ok(text) => println!("{text}"),
                    Err(e) => eprintln!("signal-load: {e}"),
                }
            } else {
                print!("{}", report.markdown());
            }
            if report.ok() {
                ExitCode::SUCCESS
            } else {
                eprintln!("signal-load: FAILED: {}", report.problems().join("; "));
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("signal-load: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Applies the defaults, and raises the descriptor limit (capping the peers if it is too low).
fn settings(args: &Args) -> anyhow::Result<Settings> {
    let (peers, rate, duration) = if args.smoke {
        (100, 200, 2)
    } else {
        (10_000, 5_000, 30)
    };
    let mut peers = args.peers.unwrap_or(peers);
    let rate = args.rate.unwrap_or(rate);
    let duration = args.duration.unwrap_or(duration);
    if peers < 2 || peers % 2 != 0 {
        bail!("--peers must be even and at least 2 (rooms of two)");
    }
    if rate == 0 || duration == 0 {
        bail!("--rate and --duration must be positive");
    }
    if args.nodes == 0 || args.nodes > MAX_NODES {
        bail!("--nodes must be 1 to {MAX_NODES}");
    }
    // Raise the soft limit to the hard one before the server starts, so that it inherits it:
    // the client and the server each hold one descriptor per peer.
    let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
    let soft = rlimit::increase_nofile_limit(hard).context("cannot raise RLIMIT_NOFILE")?;
    let mut capped = None;
    let need = peers as u64 + SPARE_FDS;
    if soft < need {
        let fit = usize::try_from(soft.saturating_sub(SPARE_FDS) / 2 * 2).unwrap_or(0);
        if fit < 2 {
            bail!("RLIMIT_NOFILE is {soft} (hard limit {hard}): too low for any peers");
        }
        let note = format!(
            "RLIMIT_NOFILE hard limit is {hard}: {peers} peers need {need} descriptors; capped at {fit} peers (raise it with `ulimit -Hn` as root)"
        );
        eprintln!("signal-load: warning: {note}");
        capped = Some(note);
        peers = fit;
    }
    Ok(Settings {
        peers,
        rate,
        duration: Duration::from_secs(duration),
        drain: Duration::from_secs(args.drain),
        concurrency: args.connect_concurrency.max(1),
        pad: args.pad,
        nodes: args.nodes,
        smoke: args.smoke,
        capped,
    })
}

/// The server's `--message-rate`: its default unless one peer's share of the traffic (plus a
/// `pong` now and then) could come near it; twice the share then.
fn message_rate(peers: usize, rate: u64) -> anyhow::Result<u64> {
    let per_peer = rate.div_ceil(peers as u64);
    let needed = (2 * per_peer + 2).max(DEFAULT_MESSAGE_RATE);
    if needed > 10_000 {
        bail!("{per_peer} messages/s per peer is over what the server allows (message-rate 10000): use more peers or a lower rate");
    }
    Ok(needed)
}

/// Everything after the argument checks: server, peers, idle memory, traffic, report.
async fn run(args: &Args, settings: Settings) -> anyhow::Result<Report> {
    let n = settings.peers;
    let total = settings.rate * settings.duration.as_secs();
    let server_settings = ServerSettings {
        message_rate: message_rate(n, settings.rate)?,
        max_connections: n + 64,
    };
    let clock_ticks = server::clock_ticks();
    let mut report = Report::new(args_line(), &settings, server_settings.message_rate);
    report.note_limit(settings.capped.clone());

    let binary = server::resolve_binary(args.server_bin.as_deref())?;
    let mut fleet = Fleet::start(&binary, server_settings, settings.nodes)?;
    let processes = fleet.processes();
    report.server_command = fleet.command().to_owned();
    report.redis_command = fleet.redis_command().map(str::to_owned);
    eprintln!("signal-load: {}", report.server_command);
    if let Some(redis) = &report.redis_command {
        eprintln!("signal-load: {redis}");
    }
    for p in &processes {
        eprintln!("signal-load: {} is pid {}", p.name, p.pid);
    }

    // Quiet periods: shorter for the smoke run, which checks delivery, not figures.
    let settle = if settings.smoke {
        Duration::from_millis(300)
    } else {
        Duration::from_secs(2)
    };
    // The idle CPU window spans one ping interval (every connection pinged once).
    let idle_window = if settings.smoke {
        Duration::from_millis(500)
    } else {
        PING_INTERVAL
    };
    let log_lines_at_start = fleet.log_lines();

    // Memory before any WebSocket.
    tokio::time::sleep(settle / 2).await;
    let rss_before = fleet.memory("VmRSS")?;

    // Open the peers, pairs in consecutive order so that partners join close together.
    let stats = Arc::new(Stats::new(total + 1));
    let permits = Arc::new(Semaphore::new(settings.concurrency));
    let pad: Arc<str> = if settings.pad > 0 {
        format!(r#","p":"{}""#, "x".repeat(settings.pad)).into()
    } else {
        "".into()
    };
    let mut senders = Vec::with_capacity(n);
    let mut receivers = Vec::with_capacity(n);
    for _ in 0..n {
        let (tx, rx) = mpsc::unbounded_channel();
        senders.push(tx);
        receivers.push(rx);
    }
    let connect_started = Instant::now();
    {
        let stats = stats.clone();
        // Peer j (0 or 1) of room k on node (k + j) mod N: with more than one node, the two
        // peers of every room are on different nodes, and every node holds as many peers.
        let urls: Vec<String> = (0..settings.nodes)
            .map(|i| fleet.ws_url(i).to_owned())
            .collect();
        tokio::spawn(async move {
            for (i, rx) in receivers.into_iter().enumerate() {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    return;
                };
                let (room, position) = (i / 2, i % 2);
                let spec = PeerSpec {
                    url: urls[(room + position) % urls.len()].clone(),
                    room: format!("bench-{room}"),
                    pad: pad.clone(),
                };
                tokio::spawn(peers::run(spec, stats.clone(), rx, permit));
            }
        });
    }
    let progress = Progress::new();
    let mut last_paired = 0;
    let mut last_change = Instant::now();
    loop {
        let paired = stats.paired.load(Ordering::Relaxed);
        let failed = stats.failed.load(Ordering::Relaxed);
        progress.show(&format!(
            "connecting: {} connected, {} joined, {paired}/{n} paired, {failed} failed, {:.0} s",
            stats.connected.load(Ordering::Relaxed),
            stats.joined.load(Ordering::Relaxed),
            connect_started.elapsed().as_secs_f64()
        ));
        if paired == n {
            break;
        }
        if paired != last_paired {
            last_paired = paired;
            last_change = Instant::now();
        }
        if last_change.elapsed() > Duration::from_secs(30) || !fleet.running() {
            progress.done();
            bail!(
                "only {paired} of {n} peers paired (no progress for 30 s, server running: {}); failures: {:?}; closes: {:?}; errors: {:?}",
                fleet.running(),
                lock(&stats.failures),
                lock(&stats.closes),
                lock(&stats.errors)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let connect_time = connect_started.elapsed();
    progress.done();

    // Idle: every peer joined and paired, no traffic but the server's pings. Settle, then
    // take the memory and a CPU baseline (the 10 s pings and their pongs). Each connection's
    // first ping slot after its join is skipped (the join's frames went both ways:
    // docs/signaling.md, "Liveness"), so the window starts once those slots are past.
    let first_slots = if settings.smoke {
        Duration::ZERO
    } else {
        PING_INTERVAL
    };
    tokio::time::sleep(settle + first_slots).await;
    let idle_cpu0 = fleet.cpu_times(clock_ticks)?;
    let idle_t0 = Instant::now();
    tokio::time::sleep(idle_window).await;
    let idle_cpu = cpu_since(&idle_cpu0, &fleet.cpu_times(clock_ticks)?)
        .iter()
        .map(|(user, system)| *user + *system)
        .sum();
    let idle_wall = idle_t0.elapsed();
    let rss_idle = fleet.memory("VmRSS")?;
    let fds_idle = fleet.open_fds();

    // Traffic: `rate` messages per second, round-robin over the peers.
    let cpu0 = fleet.cpu_times(clock_ticks)?;
    let self_cpu0 = server::cpu_time(std::process::id(), clock_ticks)?;
    let busy0 = server::machine_busy(clock_ticks)?;
    let t0 = Instant::now();
    let t0_ns = now_ns();
    stats.traffic_start_ns.store(t0_ns, Ordering::Relaxed);
    let mut issued: u64 = 0;
    let mut undeliverable: u64 = 0;
    let mut next_progress = Duration::from_secs(1);
    loop {
        let elapsed = t0.elapsed();
        let due = u64::try_from(elapsed.as_nanos() * u128::from(settings.rate) / 1_000_000_000)
            .unwrap_or(total)
            .min(total);
        while issued < due {
            let send = peers::Send {
                seq: issued,
                due_ns: t0_ns
                    + u64::try_from(u128::from(issued) * 1_000_000_000 / u128::from(settings.rate))
                        .unwrap_or(u64::MAX),
            };
            let peer = usize::try_from(issued % n as u64).unwrap_or(0);
            if senders[peer].send(send).is_err() {
                undeliverable += 1;
            }
            issued += 1;
        }
        if issued >= total {
            break;
        }
        if elapsed >= next_progress {
            next_progress += Duration::from_secs(1);
            progress.show(&format!(
                "traffic: {:.0}/{} s, {} sent, {} received, {} errors",
                elapsed.as_secs_f64(),
                settings.duration.as_secs(),
                stats.sent.load(Ordering::Relaxed),
                stats.received.load(Ordering::Relaxed),
                lock(&stats.errors).values().sum::<u64>()
            ));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let send_window = t0.elapsed();
    // Drain: wait for the messages in flight.
    let drain_start = Instant::now();
    while drain_start.elapsed() < settings.drain {
        let sent = stats.sent.load(Ordering::Relaxed);
        let received = stats.received.load(Ordering::Relaxed);
        if sent + undeliverable >= issued && received >= sent {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let wall = t0.elapsed();
    let cpu: Vec<(String, Duration, Duration)> = processes
        .iter()
        .zip(cpu_since(&cpu0, &fleet.cpu_times(clock_ticks)?))
        .map(|(p, (user, system))| (p.name.clone(), user, system))
        .collect();
    let self_cpu = server::cpu_time(std::process::id(), clock_ticks)?.saturating_sub(self_cpu0);
    let busy = server::machine_busy(clock_ticks)?.saturating_sub(busy0);
    progress.done();

    report.connect_time = connect_time;
    report.memory(rss_before, rss_idle, fleet.memory("VmHWM").ok(), fds_idle);
    report.idle_cpu(idle_cpu, idle_wall);
    report.traffic(
        &stats,
        issued,
        undeliverable,
        send_window,
        wall,
        &cpu,
        self_cpu,
    );
    report.others_cpu(busy, wall);
    report.server_log_lines = fleet.log_lines().saturating_sub(log_lines_at_start);
    report.server_alive = fleet.running();
    report.client_rss_bytes = server::memory(std::process::id(), "VmRSS").ok();
    report.finish();
    drop(senders);
    drop(fleet);
    Ok(report)
}

/// CPU time (user, system) each process used between two readings of the same processes.
fn cpu_since(
    before: &[(Duration, Duration)],
    after: &[(Duration, Duration)],
) -> Vec<(Duration, Duration)> {
    before
        .iter()
        .zip(after)
        .map(|(b, a)| (a.0.saturating_sub(b.0), a.1.saturating_sub(b.1)))
        .collect()
}

/// The command that ran this, as one would type it.
fn args_line() -> String {
    let release = std::env::current_exe()
        .ok()
        .is_some_and(|exe| exe.components().any(|c| c.as_os_str() == "release"));
    let args: Vec<String> = std::env::args().skip(1).collect();
    format!(
        "cargo run{} -p turnpike-bench --bin signal-load --{}{}",
        if release { " --release" } else { "" },
        if args.is_empty() { "" } else { " " },
        args.join(" ")
    )
}

/// A progress line on stderr: rewritten in place on a terminal, one line every few seconds
/// otherwise.
#[derive(Debug)]
struct Progress {
    tty: bool,
    last: std::cell::Cell<Option<Instant>>,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            tty: std::io::stderr().is_terminal(),
            last: std::cell::Cell::new(None),
        }
    }

    fn show(&self, line: &str) {
        if self.tty {
            eprint!("\r\x1b[2K{line}");
        } else if self
            .last
            .get()
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(2))
        {
            self.last.set(Some(Instant::now()));
            eprintln!("{line}");
        }
    }

    fn done(&self) {
        if self.tty {
            eprintln!();
        }
        self.last.set(None);
    }
}
