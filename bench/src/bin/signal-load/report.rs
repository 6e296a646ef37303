//! The results: a markdown table for docs/benchmarks.md, or JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::peers::{lock, Stats};
use crate::Settings;

/// Percentiles of a microsecond histogram, in milliseconds.
#[derive(Debug, Default, Serialize)]
pub struct Latency {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Latency {
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1000.0,
        }
    }
}

/// One server-side process's CPU time during the traffic.
#[derive(Debug, Default, Serialize)]
pub struct ProcessCpu {
    /// `turnpike`, `turnpike nI` or `redis-server`.
    pub name: String,
    pub user_s: f64,
    pub system_s: f64,
    /// Of one core, over the traffic window.
    pub percent: f64,
    /// (user + system) / messages received.
    pub us_per_message: f64,
}

/// Everything one run measured.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub command: String,
    /// The (first) node's command line.
    pub server_command: String,
    /// redis-server's, with more than one node.
    pub redis_command: Option<String>,
    pub date: String,
    pub machine: Machine,
    pub peers: usize,
    pub rooms: usize,
    /// Turnpike nodes (above 1: on one redis-server, the two peers of each room on two nodes).
    pub nodes: usize,
    pub rate: u64,
    pub duration_s: u64,
    pub pad_bytes: usize,
    pub server_message_rate: u64,
    pub limit_note: Option<String>,
    pub connect_time_s: f64,
    #[serde(skip)]
    pub connect_time: Duration,
    pub server_rss_before_bytes: u64,
    pub server_rss_idle_bytes: u64,
    pub server_rss_peak_bytes: Option<u64>,
    pub server_bytes_per_idle_connection: f64,
    pub server_fds_idle: Option<usize>,
    pub server_idle_cpu_percent: f64,
    pub issued: u64,
    pub undeliverable: u64,
    pub sent: u64,
    pub received: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub misrouted: u64,
    pub achieved_rate: f64,
    pub latency: Latency,
    pub send_lag: Latency,
    /// p99 and max relay latency of each second of traffic (by send time), ms.
    pub per_second_p99_ms: Vec<f64>,
    pub per_second_max_ms: Vec<f64>,
    pub errors: BTreeMap<String, u64>,
    pub closes: BTreeMap<String, u64>,
    pub failures: BTreeMap<String, u64>,
    pub connect_retries: usize,
    pub pings_answered: u64,
    pub peer_left: u64,
    pub unexpected_frames: u64,
    pub wall_s: f64,
    pub server_cpu_s: f64,
    pub server_cpu_user_s: f64,
    pub server_cpu_system_s: f64,
    pub server_cpu_percent: f64,
    pub server_cpu_us_per_message: f64,
    /// Each process of the server side (the figures above are their sums).
    pub server_cpu_by_process: Vec<ProcessCpu>,
    pub client_cpu_s: f64,
    pub client_cpu_percent: f64,
    pub client_rss_bytes: Option<u64>,
    /// CPU used by every other process during the traffic, in % of one core.
    pub others_cpu_percent: f64,
    pub server_log_lines: u64,
    pub server_alive: bool,
    pub load_before: String,
    pub load_after: String,
}

pub use turnpike_bench::procfs::Machine;

/// `/proc/loadavg`'s three averages.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

impl Report {
    pub fn new(command: String, settings: &Settings, server_message_rate: u64) -> Report {
        Report {
            command,
            date: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            machine: Machine::here(),
            peers: settings.peers,
            rooms: settings.peers / 2,
            nodes: settings.nodes,
            rate: settings.rate,
            duration_s: settings.duration.as_secs(),
            pad_bytes: settings.pad,
            server_message_rate,
            load_before: load(),
            server_alive: true,
            ..Report::default()
        }
    }

    pub fn note_limit(&mut self, note: Option<String>) {
        self.limit_note = note;
    }

    pub fn memory(&mut self, before: u64, idle: u64, peak: Option<u64>, fds: Option<usize>) {
        self.server_rss_before_bytes = before;
        self.server_rss_idle_bytes = idle;
        self.server_rss_peak_bytes = peak;
        self.server_fds_idle = fds;
        self.server_bytes_per_idle_connection =
            idle.saturating_sub(before) as f64 / self.peers.max(1) as f64;
    }

    pub fn idle_cpu(&mut self, cpu: Duration, wall: Duration) {
        self.server_idle_cpu_percent = 100.0 * cpu.as_secs_f64() / wall.as_secs_f64().max(1e-9);
    }

    #[allow(clippy::too_many_arguments)]
    pub fn traffic(
        &mut self,
        stats: &Stats,
        issued: u64,
        undeliverable: u64,
        send_window: Duration,
        wall: Duration,
        server_cpu: &[(String, Duration, Duration)],
        client_cpu: Duration,
    ) {
        self.issued = issued;
        self.undeliverable = undeliverable;
        self.sent = stats.sent.load(Ordering::Relaxed);
        self.received = stats.received.load(Ordering::Relaxed);
        self.lost = issued.saturating_sub(self.received);
        self.duplicates = stats.duplicates.load(Ordering::Relaxed);
        self.misrouted = stats.misrouted.load(Ordering::Relaxed);
        self.achieved_rate = self.sent as f64 / send_window.as_secs_f64().max(1e-9);
        self.latency = Latency::of(&lock(&stats.latency));
        self.send_lag = Latency::of(&lock(&stats.send_lag));
        for second in lock(&stats.per_second).iter() {
            let l = Latency::of(second);
            self.per_second_p99_ms.push(l.p99_ms);
            self.per_second_max_ms.push(l.max_ms);
        }
        self.errors = lock(&stats.errors).clone();
        self.closes = lock(&stats.closes).clone();
        self.failures = lock(&stats.failures).clone();
        self.connect_retries = stats.connect_retries.load(Ordering::Relaxed);
        self.pings_answered = stats.pings.load(Ordering::Relaxed);
        self.peer_left = stats.peer_left.load(Ordering::Relaxed);
        self.unexpected_frames = stats.unexpected.load(Ordering::Relaxed);
        self.wall_s = wall.as_secs_f64();
        let percent = |s: f64| 100.0 * s / self.wall_s.max(1e-9);
        let per_message = |s: f64| 1e6 * s / (self.received.max(1) as f64);
        self.server_cpu_by_process = server_cpu
            .iter()
            .map(|(name, user, system)| {
                let total = user.as_secs_f64() + system.as_secs_f64();
                ProcessCpu {
                    name: name.clone(),
                    user_s: user.as_secs_f64(),
                    system_s: system.as_secs_f64(),
                    percent: percent(total),
                    us_per_message: per_message(total),
                }
            })
            .collect();
        self.server_cpu_user_s = self.server_cpu_by_process.iter().map(|p| p.user_s).sum();
        self.server_cpu_system_s = self.server_cpu_by_process.iter().map(|p| p.system_s).sum();
        self.server_cpu_s = self.server_cpu_user_s + self.server_cpu_system_s;
        self.server_cpu_percent = percent(self.server_cpu_s);
        self.server_cpu_us_per_message = per_message(self.server_cpu_s);
        self.client_cpu_s = client_cpu.as_secs_f64();
        self.client_cpu_percent = 100.0 * self.client_cpu_s / self.wall_s.max(1e-9);
    }

    /// Records the machine's busy time during the traffic; what the server and the load
    /// generator did not use went to other processes (noise).
    pub fn others_cpu(&mut self, busy: Duration, wall: Duration) {
        let others = (busy.as_secs_f64() - self.server_cpu_s - self.client_cpu_s).max(0.0);
        self.others_cpu_percent = 100.0 * others / wall.as_secs_f64().max(1e-9);
    }

    pub fn finish(&mut self) {
        self.connect_time_s = self.connect_time.as_secs_f64();
        self.load_after = load();
    }

    /// Why the run does not count as clean (every message delivered once, to the right peer,
    /// no error frame, no connection lost).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.lost > 0 {
            problems.push(format!("{} of {} messages lost", self.lost, self.issued));
        }
        if self.duplicates > 0 {
            problems.push(format!("{} duplicates", self.duplicates));
        }
        if self.misrouted > 0 {
            problems.push(format!("{} misrouted", self.misrouted));
        }
        if !self.errors.is_empty() {
            problems.push(format!("error frames {:?}", self.errors));
        }
        if !self.closes.is_empty() {
            problems.push(format!("connections ended {:?}", self.closes));
        }
        if !self.failures.is_empty() {
            problems.push(format!("failures {:?}", self.failures));
        }
        if self.peer_left > 0 {
            problems.push(format!("{} peer-left", self.peer_left));
        }
        if !self.server_alive {
            problems.push("the server exited".into());
        }
        problems
    }

    pub fn ok(&self) -> bool {
        self.problems().is_empty()
    }

    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(out, "- Command: `{}`", self.command);
        match &self.redis_command {
            None => {
                let _ = writeln!(out, "- Server: `{}`", self.server_command);
            }
            Some(redis) => {
                let _ = writeln!(
                    out,
                    "- Servers: {} nodes, the first `{}` (the others: other free ports, `--node-id n1` …); Redis: `{redis}`",
                    self.nodes, self.server_command
                );
            }
        }
        let _ = writeln!(
            out,
            "- Machine: `nproc` = {}, {}, {} RAM, Linux {}; load generator and server share these cores (shared, noisy machine)",
            m.nproc, m.cpu_model, m.memory_total, m.kernel
        );
        let _ = writeln!(
            out,
            "- Date: {}; load average before {} / after {}",
            self.date, self.load_before, self.load_after
        );
        if let Some(note) = &self.limit_note {
            let _ = writeln!(out, "- Note: {note}");
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "| metric | value |");
        let _ = writeln!(out, "| --- | --- |");
        let mut row = |k: &str, v: String| {
            let _ = writeln!(out, "| {k} | {v} |");
        };
        let cluster = self.nodes > 1;
        row(
            "peers / rooms",
            if cluster {
                format!(
                    "{} / {} (rooms of two, the two peers on different nodes of {} on one redis-server)",
                    self.peers, self.rooms, self.nodes
                )
            } else {
                format!("{} / {} (rooms of two, one node)", self.peers, self.rooms)
            },
        );
        // With a cluster, the server-side figures are sums over every node and redis-server.
        let side = if cluster {
            " (all nodes + redis-server)"
        } else {
            ""
        };
        row(
            "connect + join + pair all peers",
            format!(
                "{:.1} s ({:.0} peers/s), {} connect retries",
                self.connect_time_s,
                self.peers as f64 / self.connect_time_s.max(1e-9),
                self.connect_retries
            ),
        );
        row(
            &format!("server RSS before → all idle{side}"),
            format!(
                "{:.1} MiB → {:.1} MiB (peak {}), {} fds",
                mib(self.server_rss_before_bytes),
                mib(self.server_rss_idle_bytes),
                self.server_rss_peak_bytes
                    .map_or("?".into(), |b| format!("{:.1} MiB", mib(b))),
                self.server_fds_idle.map_or("?".into(), |n| n.to_string())
            ),
        );
        row(
            "**server memory per idle connection**",
            format!(
                "**{:.1} KiB** (ΔRSS / peers)",
                self.server_bytes_per_idle_connection / 1024.0
            ),
        );
        row(
            &format!("server CPU while idle (10 s: one `ping` + `pong` per connection){side}"),
            format!("{:.1} % of one core", self.server_idle_cpu_percent),
        );
        row(
            "offered rate × duration",
            format!(
                "{} msg/s × {} s = {} messages ({} B padding each)",
                self.rate, self.duration_s, self.issued, self.pad_bytes
            ),
        );
        row(
            "sent / received / lost",
            format!(
                "{} / {} / **{}** ({:.0} msg/s achieved)",
                self.sent, self.received, self.lost, self.achieved_rate
            ),
        );
        row(
            "duplicates / misrouted / error frames",
            format!(
                "{} / {} / {}",
                self.duplicates,
                self.misrouted,
                if self.errors.is_empty() {
                    "0".to_string()
                } else {
                    format!("{:?}", self.errors)
                }
            ),
        );
        let l = &self.latency;
        row(
            if cluster {
                "**cross-node delivery latency p50 / p90 / p99 / p99.9 / max**"
            } else {
                "**relay latency p50 / p90 / p99 / p99.9 / max**"
            },
            format!(
                "**{:.2} / {:.2} / {:.2} / {:.2} / {:.2} ms**",
                l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms
            ),
        );
        let series = |values: &[f64]| {
            values
                .iter()
                .map(|v| format!("{v:.1}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        row(
            "p99 of each second of traffic",
            format!("{} ms", series(&self.per_second_p99_ms)),
        );
        row(
            "max of each second of traffic",
            format!("{} ms", series(&self.per_second_max_ms)),
        );
        let s = &self.send_lag;
        row(
            "load generator's send lag p50 / p99 / max",
            format!(
                "{:.2} / {:.2} / {:.2} ms (behind schedule; not in the latency above)",
                s.p50_ms, s.p99_ms, s.max_ms
            ),
        );
        row(
            &format!("server CPU during traffic{side}"),
            format!(
                "{:.2} s ({:.2} user + {:.2} system) in {:.1} s = {:.0} % of one core, {:.1} µs per relayed message (pings included)",
                self.server_cpu_s,
                self.server_cpu_user_s,
                self.server_cpu_system_s,
                self.wall_s,
                self.server_cpu_percent,
                self.server_cpu_us_per_message
            ),
        );
        if cluster {
            let parts: Vec<String> = self
                .server_cpu_by_process
                .iter()
                .map(|p| {
                    format!(
                        "{}: {:.2} s ({:.2} user + {:.2} system) = {:.0} %, {:.1} µs/msg",
                        p.name,
                        p.user_s + p.system_s,
                        p.user_s,
                        p.system_s,
                        p.percent,
                        p.us_per_message
                    )
                })
                .collect();
            row("server CPU by process", parts.join("; "));
        }
        row(
            "load generator CPU during traffic",
            format!(
                "{:.2} s = {:.0} % of one core; client RSS {}",
                self.client_cpu_s,
                self.client_cpu_percent,
                self.client_rss_bytes
                    .map_or("?".into(), |b| format!("{:.0} MiB", mib(b)))
            ),
        );
        row(
            "other processes' CPU during traffic (noise)",
            format!(
                "{:.0} % of one core (of {} cores)",
                self.others_cpu_percent, self.machine.nproc
            ),
        );
        row(
            "connections lost / peer-left / server log lines after start",
            format!(
                "{} / {} / {}",
                if self.closes.is_empty() {
                    "0".to_string()
                } else {
                    format!("{:?}", self.closes)
                },
                self.peer_left,
                self.server_log_lines
            ),
        );
        out
    }
}
