//! The standard `process_*` metrics of the Prometheus client libraries, read from
//! `/proc/self` at scrape time: CPU seconds, resident memory, open and maximum file
//! descriptors, start time.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::MetricType;

use super::encode::{gauge, gauges};

/// Clock ticks per second of `/proc/*/stat` times: `USER_HZ`, which Linux fixes at 100 for
/// user space on every architecture (whatever the kernel's own tick rate).
const USER_HZ: f64 = 100.0;

/// What `/proc/self` says now.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessSample {
    /// User and system CPU time, seconds.
    pub cpu_seconds: f64,
    /// Resident set size, bytes.
    pub resident_bytes: u64,
    /// Open file descriptors.
    pub open_fds: u64,
    /// The soft `RLIMIT_NOFILE`.
    pub max_fds: u64,
    /// Start time, seconds since the Unix epoch.
    pub start_time_seconds: f64,
}

impl ProcessSample {
    /// Reads the sample; what cannot be read stays 0.
    pub fn read() -> ProcessSample {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        // Fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
        // Counting from the state (field 3 of proc(5)): utime is 14, stime 15, starttime 22.
        let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
        let ticks = field(14).unwrap_or(0) + field(15).unwrap_or(0);
        let start_time_seconds = match (field(22), boot_time()) {
            (Some(start), Some(boot)) => boot as f64 + start as f64 / USER_HZ,
            _ => 0.0,
        };
        ProcessSample {
            cpu_seconds: ticks as f64 / USER_HZ,
            resident_bytes: resident_bytes().unwrap_or(0),
            open_fds: std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64),
            max_fds: rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(0, |(soft, _)| soft),
            start_time_seconds,
        }
    }
}

/// `VmRSS` of `/proc/self/status`, in bytes.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// `btime` of `/proc/stat`: the boot time, seconds since the Unix epoch.
fn boot_time() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("btime "))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The collector.
#[derive(Debug)]
pub struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let sample = ProcessSample::read();
        let cpu = encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds.",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(sample.cpu_seconds).encode(cpu)?;
        let e = &mut encoder;
        let whole = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                sample.resident_bytes,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors.",
                sample.open_fds,
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors.",
                sample.max_fds,
            ),
        ];
        for (name, help, value) in whole {
            gauge(e, name, help, value)?;
        }
        gauges::<0, f64>(
            e,
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            [([], sample.start_time_seconds)],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let sample = ProcessSample::read();
        assert!(sample.resident_bytes > 1024 * 1024, "{sample:?}");
        assert!(sample.open_fds >= 3, "{sample:?}");
        assert!(sample.max_fds >= sample.open_fds, "{sample:?}");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            sample.start_time_seconds > now - 86_400.0 && sample.start_time_seconds <= now + 1.0,
            "{sample:?}"
        );
    }
}
