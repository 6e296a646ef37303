//! `relay-bench`: Turnpike and coturn side by side on loopback, driven by the same load
//! generator, with a bare UDP forwarder as the ceiling (a benchmark, not a test).
//!
//! One command installs coturn if it is missing, builds Turnpike, and for each of N rounds runs
//! every workload against each server in turn — a fresh server process per run, Turnpike and
//! coturn alternating so that drift on a shared machine hits both — then prints the medians as
//! a markdown table and writes them, with a PNG chart, into docs/benchmarks.md. See
//! bench/README.md.

mod chart;
mod echo;
mod machine_lock;
mod report;
mod servers;
mod sessions;
mod traffic;
mod turn_client;
mod uclient;
mod veth;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;

use report::{Metric, Results, Workload};
use servers::{Binaries, Kind, Placement, Server};
use traffic::{Flow, Pace, Packet, Timing};
use turn_client::{Credentials, Goal};
use turnpike_bench::procfs::Machine;

/// Where the traffic runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Topology {
    /// Everything on 127.0.0.1 (the default suite).
    Loopback,
    /// Servers in one network namespace, generator and echo peer in another, joined by a veth
    /// pair; adds Turnpike with its kernel fast path (XDP) and a direct run; relay workloads
    /// only; needs root.
    Veth,
}

/// Side-by-side benchmark of Turnpike and coturn (a benchmark, not a test).
#[derive(Debug, Parser, Clone)]
#[command(name = "relay-bench", version)]
struct Args {
    /// Where the traffic runs: loopback, or veth (namespaces, XDP; see bench/README.md)
    #[arg(long, value_enum, default_value_t = Topology::Loopback)]
    topology: Topology,
    /// A few seconds end to end, both servers, tiny loads; no figures checked, docs untouched
    #[arg(long)]
    smoke: bool,
    /// One round, shorter runs (about 2 minutes)
    #[arg(long)]
    quick: bool,
    /// Rounds (each runs every workload on every server) [default: 3; 1 with --quick/--smoke]
    #[arg(long)]
    rounds: Option<usize>,
    /// Seconds of traffic measured per run [default: 5; 2 with --quick; 0.5 with --smoke]
    #[arg(long)]
    duration: Option<f64>,
    /// Seconds of traffic before the measuring window [default: 1; 0.3 with --smoke]
    #[arg(long)]
    warmup: Option<f64>,
    /// Allocations of the relay workloads [default: 100,1000; 10 with --smoke]
    #[arg(long, value_delimiter = ',')]
    allocations: Option<Vec<usize>>,
    /// Payload sizes of the relay workloads, bytes [default: 100,1200; 100 with --smoke]
    #[arg(long, value_delimiter = ',')]
    payloads: Option<Vec<usize>>,
    /// Datagrams in flight in all in the closed-loop relay runs (split evenly over the allocations, at least 1 each)
    #[arg(long, default_value_t = 300)]
    in_flight: u32,
    /// Generator threads sharing the client sockets (and a paced rate): 1 leaves a core to the relay on a 2-core machine; more lets a saturation run use every core when the relay needs little CPU (the kernel fast path)
    #[arg(long, default_value_t = 1)]
    generator_threads: usize,
    /// Round trips/s offered in the fixed-rate relay run (first allocation count and payload; veth: every allocation count) [default: 20000; veth 40000; 1000 with --smoke]
    #[arg(long)]
    paced_rate: Option<u64>,
    /// Client sockets of the STUN workload
    #[arg(long, default_value_t = 100)]
    stun_clients: usize,
    /// Binding requests in flight per STUN client socket
    #[arg(long, default_value_t = 3)]
    stun_window: u32,
    /// Allocate sessions in flight in the Allocate/s workload
    #[arg(long, default_value_t = 64)]
    allocate_concurrency: usize,
    /// Idle allocations of the memory workload [default: 10000; 200 with --smoke]
    #[arg(long)]
    memory_allocations: Option<usize>,
    /// turnutils_uclient: -m clients, -n messages each, -l bytes, -z ms apart [default: 100,1000,100,5; 4,20,100,5 with --smoke]
    #[arg(long, value_delimiter = ',')]
    uclient: Option<Vec<u32>>,
    /// Workloads to leave out: stun, relay, paced, allocate, memory, uclient
    #[arg(long, value_delimiter = ',')]
    skip: Vec<String>,
    /// The turnpike binary [default: the one next to this program, rebuilt with cargo first]
    #[arg(long, value_name = "PATH")]
    server_bin: Option<PathBuf>,
    /// Write docs/benchmarks.md (generated section) and docs/img/relay-bench.png [default: yes, unless --smoke or --quick]
    #[arg(long)]
    docs: Option<bool>,
    /// The repository whose docs/ is written
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/.."))]
    repo: PathBuf,
    /// Where server logs go [default: $TMPDIR/relay-bench]
    #[arg(long)]
    log_dir: Option<PathBuf>,
}

/// The run's settings once the defaults of the mode are applied.
#[derive(Debug, Clone)]
struct Plan {
    rounds: usize,
    timing: Timing,
    allocations: Vec<usize>,
    in_flight: u32,
    generator_threads: usize,
    paced_rate: u64,
    stun_clients: usize,
    stun_window: u32,
    allocate_concurrency: usize,
    memory_allocations: usize,
    uclient: uclient::UclientLoad,
    workloads: Vec<Workload>,
    docs: bool,
    log_dir: PathBuf,
    /// The veth topology (its own workloads, kinds and report).
    veth: bool,
}

fn plan(args: &Args) -> anyhow::Result<Plan> {
    let (smoke, quick) = (args.smoke, args.quick);
    let pick = |full: f64, q: f64, s: f64| {
        if smoke {
            s
        } else if quick {
            q
        } else {
            full
        }
    };
    let secs = |v: f64| Duration::from_secs_f64(v.max(0.05));
    let timing = Timing {
        warmup: secs(args.warmup.unwrap_or(pick(1.0, 1.0, 0.3))),
        measure: secs(args.duration.unwrap_or(pick(5.0, 2.0, 0.5))),
    };
    let allocations =
        args.allocations
            .clone()
            .unwrap_or(if smoke { vec![10] } else { vec![100, 1000] });
    let payloads = args
        .payloads
        .clone()
        .unwrap_or(if smoke { vec![100] } else { vec![100, 1200] });
    if allocations.iter().any(|&n| n == 0 || n > 60_000) {
        bail!("--allocations: each between 1 and 60000");
    }
    if payloads.iter().any(|&p| !(16..=1400).contains(&p)) {
        bail!("--payloads: each between 16 and 1400 bytes");
    }
    let u = args.uclient.clone().unwrap_or(if smoke {
        vec![4, 20, 100, 5]
    } else {
        vec![100, 1000, 100, 5]
    });
    let [clients, messages, length, interval_ms] = u[..] else {
        bail!("--uclient takes four numbers: clients,messages,length,interval-ms");
    };
    let veth = args.topology == Topology::Veth;
    let paced_rate = args.paced_rate.unwrap_or(match (smoke, veth) {
        (true, _) => 1000,
        (false, true) => 40_000,
        (false, false) => 20_000,
    });
    if veth && args.docs == Some(true) {
        bail!("--topology veth does not write docs (its section in docs/benchmarks.md is hand-written)");
    }
    let memory_allocations = args
        .memory_allocations
        .unwrap_or(if smoke { 200 } else { 10_000 });
    let skip = |name: &str| args.skip.iter().any(|s| s == name);
    for name in &args.skip {
        if !["stun", "relay", "paced", "allocate", "memory", "uclient"].contains(&name.as_str()) {
            bail!("--skip: unknown workload {name:?}");
        }
    }
    let mut workloads = Vec::new();
    if veth {
        // Fixed rate at every allocation count, then the closed loop at the largest; the
        // first payload size.
        if !skip("paced") {
            workloads.extend(
                allocations
                    .iter()
                    .map(|&n| Workload::RelayPaced(n, payloads[0], paced_rate)),
            );
        }
        if !skip("relay") {
            let most = allocations.iter().copied().max().unwrap_or(1);
            workloads.push(Workload::Relay(most, payloads[0]));
        }
    } else if !skip("stun") {
        workloads.push(Workload::Stun);
    }
    if !skip("relay") && !veth {
        for &n in &allocations {
            for &p in &payloads {
                workloads.push(Workload::Relay(n, p));
            }
        }
    }
    if !skip("paced") && !veth {
        workloads.push(Workload::RelayPaced(
            allocations[0],
            payloads[0],
            paced_rate,
        ));
    }
    if !skip("allocate") && !veth {
        workloads.push(Workload::Allocate);
    }
    if !skip("memory") && !veth {
        workloads.push(Workload::Memory(memory_allocations.max(200)));
    }
    if !skip("uclient") && !veth {
        workloads.push(Workload::Uclient);
    }
    Ok(Plan {
        rounds: args
            .rounds
            .unwrap_or(if smoke || quick { 1 } else { 3 })
            .max(1),
        timing,
        allocations,
        in_flight: args.in_flight.max(1),
        generator_threads: args.generator_threads.clamp(1, 64),
        paced_rate,
        stun_clients: args.stun_clients.clamp(1, 10_000),
        stun_window: args.stun_window.max(1),
        allocate_concurrency: args.allocate_concurrency.max(1),
        memory_allocations: memory_allocations.max(200),
        uclient: uclient::UclientLoad {
            clients,
            messages,
            length,
            interval_ms,
        },
        workloads,
        docs: args.docs.unwrap_or(!smoke && !quick && !veth),
        veth,
        log_dir: args
            .log_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("relay-bench")),
    })
}

fn main() -> ExitCode {
    let args = Args::parse();
    let plan = match plan(&args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("relay-bench: {e:#}");
            return ExitCode::from(2);
        }
    };
    match run(&args, &plan) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("relay-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Everything a run needs.
struct Bench<'a> {
    plan: &'a Plan,
    binaries: Binaries,
    echo: echo::EchoPeer,
    uclient_peer: Option<uclient::UclientPeer>,
    credentials: Credentials,
    results: Results,
    /// Remarks made while measuring (failed sessions, by error code).
    remarks: std::cell::RefCell<Vec<String>>,
    commands: BTreeMap<Kind, String>,
    rcvbuf: BTreeMap<Kind, u64>,
    started: Instant,
    done_runs: usize,
    total_runs: usize,
    /// Where the servers run (loopback, or the veth topology's server namespace).
    placement: Placement,
    /// The direct run's echo peer, in the server namespace (veth topology).
    direct_echo: Option<echo::EchoPeer>,
    /// Whole-machine CPU per million packets of each round's direct run, by workload.
    direct_cost: BTreeMap<(usize, Workload), f64>,
}

fn run(args: &Args, plan: &Plan) -> anyhow::Result<bool> {
    let _lock = machine_lock::MachineLock::acquire(Duration::from_secs(3600))?;
    raise_fd_limit(plan);
    let coturn = servers::ensure_installed("turnserver", "coturn")?;
    servers::ensure_installed("turnutils_uclient", "coturn")?;
    let binaries = servers::resolve_binaries(args.server_bin.as_deref(), coturn)?;
    std::fs::create_dir_all(&plan.log_dir)
        .with_context(|| format!("creating {}", plan.log_dir.display()))?;
    let font = chart::load_font();
    if let Err(e) = &font {
        eprintln!("relay-bench: warning: no font for the chart: {e:#}");
    }
    let machine = Machine::here();
    let load_before = load_average();
    let credentials = Credentials::new(servers::USERNAME, servers::REALM, servers::PASSWORD)
        .context("deriving the long-term key")?;
    let uclient_peer = if plan.workloads.contains(&Workload::Uclient) {
        Some(uclient::UclientPeer::start(
            &plan.log_dir.join("turnutils_peer.log"),
        )?)
    } else {
        None
    };
    let total_runs = plan.rounds
        * plan
            .workloads
            .iter()
            .map(|w| kinds(*w, 0, plan.veth).len())
            .sum::<usize>();
    let topology = match plan.veth {
        true => Some(veth::Topology::create(
            &args.repo.join("crates/xdp/bpf/relay.o"),
        )?),
        false => None,
    };
    let (placement, direct_echo) = match &topology {
        Some(t) => (
            t.placement(),
            Some(veth::in_namespace(&t.server_ns, || {
                echo::EchoPeer::start_on(veth::SERVER_IP)
            })?),
        ),
        None => (Placement::loopback(), None),
    };
    // On the veth topology, the generator and its echo peer work from the client namespace.
    let measure_all = || -> anyhow::Result<Bench<'_>> {
        let mut bench = Bench {
            plan,
            binaries,
            echo: echo::EchoPeer::start_on(placement.client_ip)?,
            placement,
            direct_echo,
            direct_cost: BTreeMap::new(),
            uclient_peer,
            credentials,
            results: Results::default(),
            remarks: Default::default(),
            commands: BTreeMap::new(),
            rcvbuf: BTreeMap::new(),
            started: Instant::now(),
            done_runs: 0,
            total_runs,
        };
        eprintln!(
            "relay-bench: {} rounds × {} workloads, {} runs; logs in {}",
            plan.rounds,
            plan.workloads.len(),
            total_runs,
            plan.log_dir.display()
        );
        for round in 0..plan.rounds {
            for &workload in &plan.workloads {
                for kind in kinds(workload, round, plan.veth) {
                    bench.one(round, workload, kind);
                }
            }
        }
        Ok(bench)
    };
    let bench = match &topology {
        Some(t) => veth::in_namespace(&t.client_ns, measure_all)?,
        None => measure_all()?,
    };
    let load_after = load_average();
    if let Some(topology) = topology {
        let section = veth_section(
            args,
            &bench,
            &machine,
            (&load_before, &load_after),
            &topology,
        );
        println!("{section}");
        let ok = finished_ok(&bench.results);
        drop(bench); // the echo peers first, then the namespaces
        drop(topology);
        return Ok(ok);
    }
    let wall = bench.started.elapsed();
    let date = command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let commit = command_line(
        "git",
        &[
            "-C",
            &args.repo.display().to_string(),
            "describe",
            "--always",
            "--dirty",
        ],
    );
    let turnpike_version = servers::version_line(&bench.binaries.turnpike, &["--version"]);
    let coturn_version = coturn_version(&bench.binaries.coturn);
    let command = invocation();
    let paced = plan
        .workloads
        .iter()
        .copied()
        .find(|w| matches!(w, Workload::RelayPaced(..)));
    let mut section = String::new();
    section.push_str("## Relay: Turnpike vs coturn vs a bare forwarder (generated)\n\n");
    section.push_str(&format!(
        "- Command: `{command}` ({} rounds, alternating Turnpike and coturn; {:.0} s of traffic per run after {:.0} s of warm-up; whole run {:.1} min)\n",
        plan.rounds,
        plan.timing.measure.as_secs_f64(),
        plan.timing.warmup.as_secs_f64(),
        wall.as_secs_f64() / 60.0
    ));
    section.push_str(&format!(
        "- Machine: {} cores ({}), Linux {}, {:.0} GiB RAM. **The load generator, the echo peer and the server share these {} cores**; load average {} before, {} after.\n",
        machine.nproc, machine.cpu_model, machine.kernel, machine.memory_gib(), machine.nproc, load_before, load_after
    ));
    section.push_str(&format!(
        "- Date: {date}; work tree `{commit}`; {turnpike_version}; {coturn_version}.\n"
    ));
    for (kind, cmd) in &bench.commands {
        section.push_str(&format!("- {}: `{}`\n", kind.name(), shorten_paths(cmd)));
    }
    if !bench.rcvbuf.is_empty() {
        let bufs: Vec<String> = bench
            .rcvbuf
            .iter()
            .map(|(k, b)| format!("{} {} KiB", k.name(), b / 1024))
            .collect();
        section.push_str(&format!(
            "- UDP receive buffer of the listening socket (`ss -m`, as the kernel accounts it): {}.\n",
            bufs.join(", ")
        ));
    }
    section.push_str(&format!(
        "- Loads: STUN {} client sockets × {} requests in flight; relay closed loop {} datagrams in flight in all (per allocation: {}), loss timeout 200 ms; {} generator thread(s); fixed-rate relay {} round trips/s; Allocate/s {} sessions in flight, a new client socket each; memory: ΔRSS from 100 to {} idle allocations; uclient `-m {} -n {} -l {} -z {}`.\n",
        plan.stun_clients,
        plan.stun_window,
        plan.in_flight,
        plan.allocations
            .iter()
            .map(|&n| format!("{} at {n}", (plan.in_flight as usize / n).max(1)))
            .collect::<Vec<_>>()
            .join(", "),
        plan.generator_threads,
        report::thousands(plan.paced_rate as f64),
        plan.allocate_concurrency,
        report::thousands(plan.memory_allocations as f64),
        plan.uclient.clients,
        plan.uclient.messages,
        plan.uclient.length,
        plan.uclient.interval_ms,
    ));
    section.push_str("- Figures are medians over the rounds, with (min–max). A relayed round trip is two relayed packets (client → peer, peer → client); RTT is client → relay → echo peer → relay → client. Server CPU is user + system of the server process (all threads) from `/proc/PID/stat` over the measuring window.\n\n");
    section.push_str(&bench.results.table());
    section.push_str("\n### Targets\n\n");
    section.push_str(&bench.results.targets(paced));
    if !bench.results.notes.is_empty() {
        section.push_str("\nNotes from the run:\n\n");
        for note in &bench.results.notes {
            section.push_str(&format!("- {note}\n"));
        }
    }
    section.push_str("\n![relay-bench chart](img/relay-bench.png)\n\n");
    println!("{section}");
    let chart_path = if plan.docs {
        args.repo.join("docs/img/relay-bench.png")
    } else {
        plan.log_dir.join("relay-bench.png")
    };
    if font.is_ok() {
        if let Some(dir) = chart_path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let title = format!(
            "relay-bench {date}: Turnpike vs coturn vs bare forwarder, loopback, {} shared cores ({}), medians of {} rounds",
            machine.nproc, machine.cpu_model, plan.rounds
        );
        match chart::draw(&bench.results, &title, &chart_path) {
            Ok(()) => eprintln!("relay-bench: chart written to {}", chart_path.display()),
            Err(e) => eprintln!("relay-bench: warning: chart not drawn: {e:#}"),
        }
    }
    if plan.docs {
        let doc_path = args.repo.join("docs/benchmarks.md");
        let doc = std::fs::read_to_string(&doc_path).unwrap_or_else(|_| "# Benchmarks\n".into());
        std::fs::write(&doc_path, report::splice(&doc, &section))
            .with_context(|| format!("writing {}", doc_path.display()))?;
        eprintln!("relay-bench: results written to {}", doc_path.display());
    }
    Ok(finished_ok(&bench.results))
}

/// The veth topology's report: what ran where, the table of medians and the targets.
fn veth_section(
    args: &Args,
    bench: &Bench<'_>,
    machine: &Machine,
    load: (&str, &str),
    topology: &veth::Topology,
) -> String {
    let plan = bench.plan;
    let mut out = String::from(
        "## The kernel fast path (XDP): whole-machine CPU per relayed packet (relay-bench --topology veth)\n\n",
    );
    let mut line = |text: String| {
        out.push_str("- ");
        out.push_str(&text);
        out.push('\n');
    };
    line(format!(
        "Command: `{}` ({} rounds; {:.0} s measured per run after {:.0} s of warm-up; whole run {:.1} min)",
        invocation(),
        plan.rounds,
        plan.timing.measure.as_secs_f64(),
        plan.timing.warmup.as_secs_f64(),
        bench.started.elapsed().as_secs_f64() / 60.0
    ));
    line(format!(
        "Machine: {} cores ({}), Linux {}; load average {} before, {} after; {}; work tree `{}`",
        machine.nproc,
        machine.cpu_model,
        machine.kernel,
        load.0,
        load.1,
        command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        command_line(
            "git",
            &[
                "-C",
                &args.repo.display().to_string(),
                "describe",
                "--always",
                "--dirty"
            ]
        )
    ));
    line(format!(
        "Topology: servers in namespace S ({} on veth {}), generator and echo peer in namespace C ({} on veth {}, checksum offload off, relay.o attached with empty maps); the direct run's echo peer is in S, so its datagrams cross the veth as relayed ones do",
        veth::SERVER_IP,
        topology.server_if,
        veth::CLIENT_IP,
        topology.client_if
    ));
    for (kind, cmd) in &bench.commands {
        line(format!("{}: `{}`", kind.name(), shorten_paths(cmd)));
    }
    line(format!(
        "Loads: fixed {} round trips/s (= {} relayed packets/s); closed loop {} datagrams in flight in all",
        report::thousands(plan.paced_rate as f64),
        report::thousands(2.0 * plan.paced_rate as f64),
        plan.in_flight
    ));
    line("Whole-machine CPU: user + nice + system + irq + softirq + steal of all cores (`/proc/stat`) over the window ÷ relayed packets (direct: datagrams echoed, 2 per round trip); the relay's own cost subtracts the same round's direct figure".into());
    out.push('\n');
    out.push_str(&bench.results.veth_table());
    out.push_str("\n### Targets (issue 15)\n\n");
    out.push_str(&bench.results.veth_targets());
    if !bench.results.notes.is_empty() {
        out.push_str("\nNotes from the run:\n\n");
        for note in &bench.results.notes {
            out.push_str(&format!("- {note}\n"));
        }
    }
    out
}

/// Whether every run worked (said on stderr when not).
fn finished_ok(results: &Results) -> bool {
    let ok = results.notes.iter().all(|n| !n.starts_with("FAILED"));
    if !ok {
        eprintln!("relay-bench: some runs failed (see the notes above)");
    }
    ok
}

/// The servers a workload runs on, Turnpike and coturn swapping places every other round. On
/// the veth topology: the direct run first (the others subtract its cost), then coturn,
/// Turnpike, Turnpike XDP and the forwarder, turning by one place each round.
fn kinds(workload: Workload, round: usize, veth: bool) -> Vec<Kind> {
    if veth {
        let mut k = vec![
            Kind::Coturn,
            Kind::Turnpike,
            Kind::TurnpikeXdp,
            Kind::Forwarder,
        ];
        let turn = round % k.len();
        k.rotate_left(turn);
        k.insert(0, Kind::Direct);
        return k;
    }
    let mut k = if round % 2 == 0 {
        vec![Kind::Turnpike, Kind::Coturn]
    } else {
        vec![Kind::Coturn, Kind::Turnpike]
    };
    if matches!(workload, Workload::Relay(..) | Workload::RelayPaced(..)) {
        k.push(Kind::Forwarder);
    }
    k
}

impl Bench<'_> {
    /// One run, on a fresh server; a failure becomes a note.
    fn one(&mut self, round: usize, workload: Workload, kind: Kind) {
        let label = format!("r{}-{}", round + 1, slug(workload));
        let prefix = format!(
            "[{:>3}/{} {:>4.0}s] round {}: {} — {}",
            self.done_runs + 1,
            self.total_runs,
            self.started.elapsed().as_secs_f64(),
            round + 1,
            workload.title(),
            kind.name()
        );
        eprint!("{prefix} … ");
        let outcome = match kind {
            Kind::Direct => self.measure(workload, None, &label),
            _ => Server::start(
                kind,
                &self.binaries,
                &self.plan.log_dir,
                &label,
                self.echo.addr,
                &self.placement,
            )
            .and_then(|server| {
                self.commands
                    .entry(kind)
                    .or_insert_with(|| server.command.clone());
                if let Some(buf) = server.listener_rcvbuf() {
                    self.rcvbuf.entry(kind).or_insert(buf);
                }
                let figures = self.measure(workload, Some(&server), &label);
                server.stop();
                figures
            }),
        };
        self.done_runs += 1;
        match outcome {
            Ok(mut figures) => {
                self.own_cost(round, workload, kind, &mut figures);
                eprintln!("{}", summary(workload, &figures, self.plan.veth));
                for remark in self.remarks.borrow_mut().drain(..) {
                    eprintln!("    {remark}");
                    self.results.notes.push(format!(
                        "round {}, {}, {}: {remark}",
                        round + 1,
                        workload.title(),
                        kind.name()
                    ));
                }
                self.results.add(workload, kind, figures);
            }
            Err(e) => {
                eprintln!("FAILED: {e:#}");
                self.results.notes.push(format!(
                    "FAILED: round {}, {}, {}: {e:#}",
                    round + 1,
                    workload.title(),
                    kind.name()
                ));
            }
        }
    }

    /// The figures of one run; `server` is `None` for a direct run (relay workloads only).
    fn measure(
        &mut self,
        workload: Workload,
        server: Option<&Server>,
        label: &str,
    ) -> anyhow::Result<BTreeMap<Metric, f64>> {
        match (workload, server) {
            (Workload::Relay(n, p), _) => {
                let window = (self.plan.in_flight as usize / n).max(1) as u32;
                self.relay(server, n, p, Pace::Window(window))
            }
            (Workload::RelayPaced(n, p, rate), _) => {
                self.relay(server, n, p, Pace::Rate(rate as f64))
            }
            (_, None) => bail!("only the relay workloads run without a server"),
            (Workload::Stun, Some(server)) => self.stun(server),
            (Workload::Allocate, Some(server)) => self.allocate(server),
            (Workload::Memory(n), Some(server)) => self.memory(server, n),
            (Workload::Uclient, Some(server)) => self.uclient(server, label),
        }
    }

    /// The relay's own cost (veth topology): whole-machine CPU per packet minus that of the
    /// same round's direct run, which comes first.
    fn own_cost(
        &mut self,
        round: usize,
        workload: Workload,
        kind: Kind,
        figures: &mut BTreeMap<Metric, f64>,
    ) {
        let Some(&machine) = figures.get(&Metric::MachineCpuPerMillion) else {
            return;
        };
        if !self.plan.veth {
            return;
        }
        if kind == Kind::Direct {
            self.direct_cost.insert((round, workload), machine);
        } else if let Some(direct) = self.direct_cost.get(&(round, workload)) {
            figures.insert(Metric::OwnCostPerMillion, machine - direct);
        }
    }

    fn stun(&self, server: &Server) -> anyhow::Result<BTreeMap<Metric, f64>> {
        let mut flows = plain_flows(
            self.placement.client_ip,
            self.plan.stun_clients,
            server.addr,
        )?;
        let m = traffic::run(
            &mut flows,
            Packet::Binding,
            Pace::Window(self.plan.stun_window),
            self.plan.timing,
            self.plan.generator_threads,
            &|| server.cpu(),
        )?;
        self.remark_send_errors(&m);
        Ok(traffic_figures(&m, 1.0))
    }

    /// A relay workload through `server`, or with none (direct: straight to the echo peer in
    /// the server namespace).
    fn relay(
        &self,
        server: Option<&Server>,
        allocations: usize,
        payload: usize,
        pace: Pace,
    ) -> anyhow::Result<BTreeMap<Metric, f64>> {
        let local = self.placement.client_ip;
        let mut flows = match server {
            None => {
                let echo = self
                    .direct_echo
                    .as_ref()
                    .context("direct runs need --topology veth")?;
                plain_flows(local, allocations, echo.addr)?
            }
            Some(server) if server.kind == Kind::Forwarder => {
                plain_flows(local, allocations, server.addr)?
            }
            Some(server) => self.channels(server, allocations)?,
        };
        let m = traffic::run(
            &mut flows,
            Packet::ChannelData(payload),
            pace,
            self.plan.timing,
            self.plan.generator_threads,
            &|| server.map_or(Duration::ZERO, Server::cpu),
        )?;
        if m.delivered == 0 {
            bail!("nothing came back through the relay");
        }
        self.remark_send_errors(&m);
        let mut figures = traffic_figures(&m, 2.0);
        let turnpike = |s: &&Server| matches!(s.kind, Kind::Turnpike | Kind::TurnpikeXdp);
        if let Some(server) = server.filter(|s| self.plan.veth && turnpike(s)) {
            figures.insert(Metric::XdpShare, self.xdp_share(server)?);
        }
        Ok(figures)
    }

    /// `allocations` allocations on `server`, each with a channel to the echo peer.
    fn channels(&self, server: &Server, allocations: usize) -> anyhow::Result<Vec<Flow>> {
        let setup = sessions::run(
            self.placement.client_ip,
            server.addr,
            &self.credentials,
            Goal::Channel(self.echo.addr),
            sessions::Plan::Count(allocations),
            100,
            Duration::from_secs(60),
        )?;
        if setup.failures() > 0 {
            bail!(
                "{} of {allocations} allocations failed: {:?}",
                setup.failures(),
                setup.failed
            );
        }
        Ok(setup
            .kept
            .into_iter()
            .map(|(socket, _)| Flow {
                socket,
                dest: server.addr,
            })
            .collect())
    }

    /// The share (%) of the packets Turnpike relayed (`turnpike_relayed_packets_total`, which
    /// adds what the kernel relayed, read back every 100 ms) that the kernel fast path carried
    /// (`turnpike_xdp_relayed_packets_total`), over the server's life; when the XDP run's share
    /// is short, a remark says why the program passed datagrams up.
    fn xdp_share(&self, server: &Server) -> anyhow::Result<f64> {
        // The core adds the kernel's per-channel counts at its read-back, every 2 s
        // (crates/turnpike/src/server/server_events.rs): wait for one more, so that both
        // totals cover the same traffic.
        std::thread::sleep(Duration::from_millis(2_500));
        let text = server.metrics()?;
        let sum = |name: &str, label: &str| -> f64 {
            text.lines()
                .filter(|l| l.starts_with(name) && l.contains(label))
                .filter(|l| l.as_bytes().get(name.len()) == Some(&b'{'))
                .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
                .fold(0.0, |total, v| total + v) // (`sum` of nothing is -0.0)
        };
        let kernel = sum("turnpike_xdp_relayed_packets_total", "");
        let all = sum("turnpike_relayed_packets_total", "transport=\"udp\"");
        let share = if all > 0.0 { 100.0 * kernel / all } else { 0.0 };
        if server.kind == Kind::TurnpikeXdp && share < 99.0 {
            let passed: Vec<&str> = text
                .lines()
                .filter(|l| l.starts_with("turnpike_xdp_passed_packets_total{"))
                .collect();
            self.remarks.borrow_mut().push(format!(
                "XDP carried {share:.1} % ({kernel} of {all} relayed packets); the program passed: {}",
                passed.join(", ")
            ));
        }
        Ok(share)
    }

    fn allocate(&self, server: &Server) -> anyhow::Result<BTreeMap<Metric, f64>> {
        let cpu_before = server.cpu();
        let generator_before = traffic::self_cpu();
        let wall = Instant::now();
        let outcome = sessions::run(
            self.placement.client_ip,
            server.addr,
            &self.credentials,
            Goal::AllocateAndFree,
            sessions::Plan::Churn {
                warmup: self.plan.timing.warmup,
                measure: self.plan.timing.measure,
            },
            self.plan.allocate_concurrency,
            self.plan.timing.warmup + self.plan.timing.measure + Duration::from_secs(10),
        )?;
        let cpu = server.cpu().saturating_sub(cpu_before).as_secs_f64();
        let generator = traffic::self_cpu()
            .saturating_sub(generator_before)
            .as_secs_f64();
        let wall = wall.elapsed().as_secs_f64();
        if outcome.completed == 0 {
            bail!("no allocation completed: {:?}", outcome.failed);
        }
        self.remark_failures(&outcome);
        Ok(BTreeMap::from([
            (
                Metric::Rate,
                outcome.completed as f64 / outcome.elapsed.as_secs_f64(),
            ),
            (Metric::Failures, outcome.failures() as f64),
            (
                Metric::CpuPerMillion,
                cpu / outcome.total_completed.max(1) as f64 * 1e6,
            ),
            (Metric::ServerCpuPercent, 100.0 * cpu / wall),
            (Metric::GeneratorCpuPercent, 100.0 * generator / wall),
        ]))
    }

    fn memory(&self, server: &Server, total: usize) -> anyhow::Result<BTreeMap<Metric, f64>> {
        let warm = 100;
        let setup = |count| {
            sessions::run(
                self.placement.client_ip,
                server.addr,
                &self.credentials,
                Goal::Allocate,
                sessions::Plan::Count(count),
                100,
                Duration::from_secs(120),
            )
        };
        let first = setup(warm)?;
        std::thread::sleep(Duration::from_millis(500));
        let before = server.rss()?;
        let rest = setup(total - warm)?;
        std::thread::sleep(Duration::from_secs(1));
        let after = server.rss()?;
        self.remark_failures(&first);
        self.remark_failures(&rest);
        let failures = first.failures() + rest.failures();
        let made = rest.kept.len();
        if made == 0 {
            bail!("no allocation made: {:?}", rest.failed);
        }
        drop((first, rest));
        Ok(BTreeMap::from([
            (
                Metric::KibPerAllocation,
                after.saturating_sub(before) as f64 / made as f64 / 1024.0,
            ),
            (Metric::Failures, failures as f64),
        ]))
    }

    fn remark_send_errors(&self, m: &traffic::Measured) {
        if m.send_errors > 0 {
            self.remarks.borrow_mut().push(format!(
                "{} sends refused by the generator's own sockets (not counted as sent)",
                m.send_errors
            ));
        }
    }

    fn remark_failures(&self, outcome: &sessions::Outcome) {
        if outcome.failures() > 0 {
            let codes: Vec<String> = outcome
                .failed
                .iter()
                .map(|(code, n)| match code {
                    0 => format!("{n} unanswered"),
                    c => format!("{n} × error {c}"),
                })
                .collect();
            self.remarks.borrow_mut().push(format!(
                "{} sessions failed: {}",
                outcome.failures(),
                codes.join(", ")
            ));
        }
    }

    fn uclient(&self, server: &Server, label: &str) -> anyhow::Result<BTreeMap<Metric, f64>> {
        let peer = self
            .uclient_peer
            .as_ref()
            .context("turnutils_peer not started")?;
        let log = self
            .plan
            .log_dir
            .join(format!("uclient-{}-{label}.log", server.kind.name()));
        let r = uclient::run(
            server,
            peer,
            self.plan.uclient,
            &log,
            Duration::from_secs(180),
        )?;
        if r.received == 0 {
            bail!("turnutils_uclient got nothing back; see {}", log.display());
        }
        Ok(BTreeMap::from([
            (Metric::Rate, r.received as f64 / r.transmit_s.max(1.0)),
            (Metric::Loss, r.loss_percent),
            (Metric::MeanRtt, r.mean_rtt_ms),
            (
                Metric::CpuPerMillion,
                r.server_cpu.as_secs_f64() / (2.0 * r.received as f64) * 1e6,
            ),
        ]))
    }
}

/// `count` client sockets on `local` sending straight to `dest` (STUN, the forwarder, or the
/// echo peer of a direct run).
fn plain_flows(local: Ipv4Addr, count: usize, dest: SocketAddr) -> anyhow::Result<Vec<Flow>> {
    (0..count)
        .map(|_| {
            let socket = std::net::UdpSocket::bind((local, 0))?;
            socket.set_nonblocking(true)?;
            Ok(Flow {
                socket: mio::net::UdpSocket::from_std(socket),
                dest,
            })
        })
        .collect()
}

/// The figures of a traffic run; `per_answer` server-side packets per answer (2 for a relayed
/// round trip, 1 for a Binding).
fn traffic_figures(m: &traffic::Measured, per_answer: f64) -> BTreeMap<Metric, f64> {
    let window = m.window.as_secs_f64();
    let packets = m.delivered as f64 * per_answer;
    BTreeMap::from([
        (Metric::Rate, packets / window),
        (Metric::Loss, m.loss_percent()),
        (Metric::P50, m.rtt_ms(0.5)),
        (Metric::P99, m.rtt_ms(0.99)),
        (
            Metric::CpuPerMillion,
            m.server_cpu.as_secs_f64() / packets.max(1.0) * 1e6,
        ),
        (
            Metric::ServerCpuPercent,
            100.0 * m.server_cpu.as_secs_f64() / window,
        ),
        (
            Metric::GeneratorCpuPercent,
            100.0 * m.generator_cpu.as_secs_f64() / window,
        ),
        (
            Metric::OthersCpuPercent,
            100.0
                * (m.machine_cpu.as_secs_f64()
                    - m.server_cpu.as_secs_f64()
                    - m.generator_cpu.as_secs_f64())
                .max(0.0)
                / window,
        ),
        (
            Metric::MachineCpuPerMillion,
            m.machine_cpu.as_secs_f64() / packets.max(1.0) * 1e6,
        ),
        (
            Metric::MachineCpuPercent,
            100.0 * m.machine_cpu.as_secs_f64() / window,
        ),
    ])
}

/// One status line's worth of a run's figures (with the whole machine's on the veth topology).
fn summary(workload: Workload, f: &BTreeMap<Metric, f64>, veth: bool) -> String {
    if veth {
        let g = |m| f.get(&m).copied().unwrap_or(f64::NAN);
        return format!(
            "{} (veth): machine {:.2} µs/pkt ({:.0} % of a core), own cost {:.2} µs/pkt, XDP share {:.1} %",
            summary(workload, f, false),
            g(Metric::MachineCpuPerMillion),
            g(Metric::MachineCpuPercent),
            g(Metric::OwnCostPerMillion),
            g(Metric::XdpShare)
        );
    }
    let g = |m| f.get(&m).copied().unwrap_or(f64::NAN);
    match workload {
        Workload::Memory(_) => format!("{:.2} KiB per idle allocation", g(Metric::KibPerAllocation)),
        Workload::Allocate => format!(
            "{} allocations/s, {} failed, server {:.0} % CPU, generator {:.0} %",
            report::thousands(g(Metric::Rate)),
            g(Metric::Failures),
            g(Metric::ServerCpuPercent),
            g(Metric::GeneratorCpuPercent)
        ),
        Workload::Uclient => format!(
            "{} msg/s, loss {:.2} %, mean RTT {:.2} ms",
            report::thousands(g(Metric::Rate)),
            g(Metric::Loss),
            g(Metric::MeanRtt)
        ),
        _ => format!(
            "{}/s, loss {:.2} %, RTT p50 {:.3} p99 {:.3} ms, server {:.0} % CPU ({:.2} s/M), generator {:.0} %, others {:.0} %",
            report::thousands(g(Metric::Rate)),
            g(Metric::Loss),
            g(Metric::P50),
            g(Metric::P99),
            g(Metric::ServerCpuPercent),
            g(Metric::CpuPerMillion),
            g(Metric::GeneratorCpuPercent),
            g(Metric::OthersCpuPercent)
        ),
    }
}

fn slug(workload: Workload) -> String {
    match workload {
        Workload::Stun => "stun".into(),
        Workload::Relay(n, p) => format!("relay-{n}x{p}"),
        Workload::RelayPaced(n, p, r) => format!("paced-{n}x{p}-{r}"),
        Workload::Allocate => "allocate".into(),
        Workload::Memory(n) => format!("memory-{n}"),
        Workload::Uclient => "uclient".into(),
    }
}

/// Raises RLIMIT_NOFILE to the hard limit (servers started later inherit it): the memory
/// workload holds one socket per allocation on each side.
fn raise_fd_limit(plan: &Plan) {
    let need = plan.memory_allocations as u64 + 1024;
    match rlimit::Resource::NOFILE.get() {
        Ok((soft, hard)) if soft < hard => {
            let _ = rlimit::Resource::NOFILE.set(hard, hard);
            if hard < need {
                eprintln!("relay-bench: warning: open-files hard limit {hard} < {need}: the memory workload may fail");
            }
        }
        Ok((soft, _)) if soft < need => {
            eprintln!("relay-bench: warning: open-files limit {soft} < {need}: the memory workload may fail");
        }
        _ => {}
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn command_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn coturn_version(turnserver: &Path) -> String {
    let line = command_line(&turnserver.display().to_string(), &["--version"]);
    if line.is_empty() {
        "coturn".into()
    } else {
        format!("coturn {line}")
    }
}

/// How this program was invoked, as the cargo command that runs it.
fn invocation() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let release = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.ends_with("release")))
        .unwrap_or(false);
    format!(
        "cargo run{} -p turnpike-bench --bin relay-bench{}{}",
        if release { " --release" } else { "" },
        if args.is_empty() { "" } else { " -- " },
        args.join(" ")
    )
}

/// Command lines without the machine's directories (target dir, temp dir).
fn shorten_paths(command: &str) -> String {
    command
        .split(' ')
        .map(|word| {
            if word.starts_with('/') && !word.starts_with("/usr/") {
                Path::new(word)
                    .file_name()
                    .map_or(word.to_string(), |f| f.to_string_lossy().into_owned())
            } else {
                word.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
