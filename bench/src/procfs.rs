//! Readings from `/proc`: a process's CPU time (`/proc/PID/stat`, all its threads) and memory
//! (`/proc/PID/status`), the machine's busy time (`/proc/stat`) and what the machine is.

use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context};

/// Resident memory of `pid` in bytes (`VmRSS`), or of the peak (`VmHWM`).
pub fn memory(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    for line in status.lines() {
        if let Some(rest) = line.strip_prefix(field).and_then(|r| r.strip_prefix(':')) {
            let kib: u64 = rest
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .with_context(|| format!("bad {field} line: {line}"))?;
            return Ok(kib * 1024);
        }
    }
    bail!("no {field} in /proc/{pid}/status")
}

/// CPU time (user + system) of `pid` so far, from `/proc/PID/stat`.
pub fn cpu_time(pid: u32, clock_ticks: u64) -> anyhow::Result<Duration> {
    let (user, system) = cpu_times(pid, clock_ticks)?;
    Ok(user + system)
}

/// User and system CPU time of `pid` so far (all its threads), from `/proc/PID/stat`.
pub fn cpu_times(pid: u32, clock_ticks: u64) -> anyhow::Result<(Duration, Duration)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start at field 3 (state);
    // utime and stime are fields 14 and 15.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("bad /proc/PID/stat")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<u64> {
        Ok(fields
            .get(i)
            .context("short /proc/PID/stat")?
            .parse::<u64>()?)
    };
    let seconds = |t: u64| Duration::from_secs_f64(t as f64 / clock_ticks as f64);
    Ok((seconds(ticks(11)?), seconds(ticks(12)?)))
}

/// Open file descriptors of `pid`.
pub fn open_fds(pid: u32) -> Option<usize> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()
        .map(|dir| dir.count())
}

/// Clock ticks per second for `/proc/PID/stat` (`getconf CLK_TCK`; 100 on Linux in practice).
pub fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .filter(|&ticks| ticks > 0)
        .unwrap_or(100)
}

/// Busy CPU time of the whole machine so far (all cores, everything but idle and iowait),
/// from the first line of `/proc/stat`.
pub fn machine_busy(clock_ticks: u64) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat.lines().next().context("empty /proc/stat")?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let busy: u64 = fields
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, v)| v)
        .sum();
    Ok(Duration::from_secs_f64(busy as f64 / clock_ticks as f64))
}

/// The machine a run was on.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Machine {
    /// CPUs available to us.
    pub nproc: usize,
    /// `model name` of /proc/cpuinfo.
    pub cpu_model: String,
    /// Kernel release.
    pub kernel: String,
    /// `MemTotal` of /proc/meminfo, as written there ("24684164 kB").
    pub memory_total: String,
}

impl Machine {
    /// Reads this machine.
    pub fn here() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let field = |text: &str, key: &str| {
            text.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
                .unwrap_or_default()
        };
        Machine {
            nproc: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model: field(&cpuinfo, "model name"),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_string(),
            memory_total: field(&meminfo, "MemTotal"),
        }
    }

    /// `memory_total` in GiB.
    pub fn memory_gib(&self) -> f64 {
        let kib: f64 = self
            .memory_total
            .trim_end_matches("kB")
            .trim()
            .parse()
            .unwrap_or(0.0);
        kib / 1024.0 / 1024.0
    }
}
