//! Results: every round's figures, their medians, the markdown table, the check against the
//! issue's targets, and the generated section of docs/benchmarks.md.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::servers::Kind;

/// One figure of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    /// Requests, relayed packets or allocations per second.
    Rate,
    /// % of datagrams (or uclient messages) lost.
    Loss,
    /// RTT p50, ms.
    P50,
    /// RTT p99, ms.
    P99,
    /// Mean RTT, ms (uclient).
    MeanRtt,
    /// Server CPU seconds per million packets (or requests, allocations).
    CpuPerMillion,
    /// Server CPU in % of one core.
    ServerCpuPercent,
    /// Generator + echo peer CPU in % of one core.
    GeneratorCpuPercent,
    /// Everything else on the machine (busy − server − generator), % of one core.
    OthersCpuPercent,
    /// KiB per idle allocation.
    KibPerAllocation,
    /// Busy CPU of the whole machine (`/proc/stat`, all cores) in µs per relayed packet.
    MachineCpuPerMillion,
    /// Busy CPU of the whole machine in % of one core.
    MachineCpuPercent,
    /// The relay's own cost: [`Metric::MachineCpuPerMillion`] minus the same round's direct
    /// run's (veth topology).
    OwnCostPerMillion,
    /// % of the packets Turnpike relayed that the kernel fast path carried.
    XdpShare,
    /// Failed sessions.
    Failures,
}

/// The workloads, in table order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Workload {
    /// (a) Binding requests.
    Stun,
    /// (b) closed-loop relay: allocations, payload bytes.
    Relay(usize, usize),
    /// (b) relay at a fixed offered rate (round trips/s): allocations, payload bytes, rate.
    RelayPaced(usize, usize, u64),
    /// (c) authenticated Allocate + Refresh(0).
    Allocate,
    /// (d) idle allocations.
    Memory(usize),
    /// (e) turnutils_uclient.
    Uclient,
}

impl Workload {
    /// Its name in the table.
    pub fn title(&self) -> String {
        match *self {
            Workload::Stun => "(a) STUN Binding".into(),
            Workload::Relay(n, p) => format!("(b) relay, {n} allocations, {p} B, closed loop"),
            Workload::RelayPaced(n, p, r) => {
                format!(
                    "(b) relay, {n} allocations, {p} B, fixed {} round trips/s",
                    thousands(r as f64)
                )
            }
            Workload::Allocate => "(c) Allocate (401 + authenticated) + Refresh 0".into(),
            Workload::Memory(n) => format!("(d) idle allocations ({})", thousands(n as f64)),
            Workload::Uclient => "(e) turnutils_uclient cross-check".into(),
        }
    }

    /// Short label for the chart.
    pub fn short(&self) -> String {
        match *self {
            Workload::Relay(n, p) => format!("{n} alloc, {p} B"),
            Workload::RelayPaced(n, p, _) => format!("{n} alloc, {p} B, fixed rate"),
            _ => self.title(),
        }
    }
}

/// All runs.
#[derive(Debug, Default)]
pub struct Results {
    runs: BTreeMap<(Workload, Kind), Vec<BTreeMap<Metric, f64>>>,
    /// Notes (failures, warnings) to print under the table.
    pub notes: Vec<String>,
}

impl Results {
    /// Records one run's figures.
    pub fn add(&mut self, workload: Workload, kind: Kind, figures: BTreeMap<Metric, f64>) {
        self.runs.entry((workload, kind)).or_default().push(figures);
    }

    /// The median of `metric` over the rounds.
    pub fn median(&self, workload: Workload, kind: Kind, metric: Metric) -> Option<f64> {
        let mut values = self.values(workload, kind, metric);
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let mid = values.len() / 2;
        Some(if values.len() % 2 == 1 {
            values[mid]
        } else {
            (values[mid - 1] + values[mid]) / 2.0
        })
    }

    fn values(&self, workload: Workload, kind: Kind, metric: Metric) -> Vec<f64> {
        self.runs
            .get(&(workload, kind))
            .map(|runs| {
                runs.iter()
                    .filter_map(|r| r.get(&metric).copied())
                    .filter(|v| v.is_finite())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `median` and, with several rounds, `(min–max)`.
    fn cell(
        &self,
        workload: Workload,
        kind: Kind,
        metric: Metric,
        fmt: fn(f64) -> String,
    ) -> String {
        let values = self.values(workload, kind, metric);
        let Some(median) = self.median(workload, kind, metric) else {
            return "—".into();
        };
        if values.len() < 2 {
            return fmt(median);
        }
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        format!("{} ({}–{})", fmt(median), fmt(min), fmt(max))
    }

    /// The workloads that ran, in order.
    pub fn workloads(&self) -> Vec<Workload> {
        let mut w: Vec<Workload> = self.runs.keys().map(|(w, _)| *w).collect();
        w.dedup();
        w
    }

    /// The results table in markdown.
    pub fn table(&self) -> String {
        let mut out = String::new();
        out.push_str("| workload | figure | Turnpike | coturn | Turnpike / coturn | bare forwarder | Turnpike % of forwarder |\n");
        out.push_str("| --- | --- | --- | --- | --- | --- | --- |\n");
        for workload in self.workloads() {
            for (metric, label, fmt, ratio) in rows(workload) {
                let t = self.median(workload, Kind::Turnpike, metric);
                let c = self.median(workload, Kind::Coturn, metric);
                let f = self.median(workload, Kind::Forwarder, metric);
                if t.is_none() && c.is_none() && f.is_none() {
                    continue;
                }
                let ratio_cell = match (t, c, ratio) {
                    (Some(t), Some(c), true) if c > 0.0 => format!("**{:.2}×**", t / c),
                    _ => String::new(),
                };
                let forwarder_share = match (t, f, ratio) {
                    (Some(t), Some(f), true) if f > 0.0 && metric == Metric::Rate => {
                        format!("{:.0} %", 100.0 * t / f)
                    }
                    // CPU per packet: the forwarder's cost as a share of Turnpike's.
                    (Some(t), Some(f), true) if t > 0.0 && metric == Metric::CpuPerMillion => {
                        format!("{:.0} % (efficiency)", 100.0 * f / t)
                    }
                    _ => String::new(),
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} |",
                    workload.title(),
                    label,
                    self.cell(workload, Kind::Turnpike, metric, fmt),
                    self.cell(workload, Kind::Coturn, metric, fmt),
                    ratio_cell,
                    if f.is_some() {
                        self.cell(workload, Kind::Forwarder, metric, fmt)
                    } else {
                        String::new()
                    },
                    forwarder_share,
                );
            }
        }
        out
    }

    /// The targets, each with its measured figures and a verdict.
    pub fn targets(&self, paced: Option<Workload>) -> String {
        let mut out = String::new();
        out.push_str("| target (issue #6) | measured (medians) | met? |\n| --- | --- | --- |\n");
        let verdict = |ok: bool| if ok { "yes" } else { "**no**" };
        for workload in self.workloads() {
            let Workload::Relay(..) = workload else {
                continue;
            };
            let m = |k, x| self.median(workload, k, x);
            if let (Some(t), Some(c), Some(tc), Some(cc)) = (
                m(Kind::Turnpike, Metric::Rate),
                m(Kind::Coturn, Metric::Rate),
                m(Kind::Turnpike, Metric::CpuPerMillion),
                m(Kind::Coturn, Metric::CpuPerMillion),
            ) {
                let _ = writeln!(
                    out,
                    "| relayed packets/s ≥ 2× coturn at ≤ its CPU — {} | {:.2}× ({} vs {} pkt/s); CPU {:.2} vs {:.2} s per M packets | {} |",
                    workload.short(),
                    t / c,
                    thousands(t),
                    thousands(c),
                    tc,
                    cc,
                    verdict(t >= 2.0 * c && tc <= cc)
                );
            }
            if let (Some(t), Some(f)) = (
                m(Kind::Turnpike, Metric::Rate),
                m(Kind::Forwarder, Metric::Rate),
            ) {
                let _ = writeln!(
                    out,
                    "| ≥ 70 % of the bare forwarder — {} | {:.0} % ({} vs {} pkt/s) | {} |",
                    workload.short(),
                    100.0 * t / f,
                    thousands(t),
                    thousands(f),
                    verdict(t >= 0.7 * f)
                );
            }
            if let (Some(t), Some(f)) = (
                m(Kind::Turnpike, Metric::CpuPerMillion),
                m(Kind::Forwarder, Metric::CpuPerMillion),
            ) {
                let _ = writeln!(
                    out,
                    "| (same, by CPU) forwarder's CPU per packet ≥ 70 % of Turnpike's — {} | {:.0} % ({:.2} vs {:.2} µs per packet) | {} |",
                    workload.short(),
                    100.0 * f / t,
                    f,
                    t,
                    verdict(f >= 0.7 * t)
                );
            }
        }
        if let Some(paced) = paced {
            if let (Some(t), Some(c)) = (
                self.median(paced, Kind::Turnpike, Metric::P99),
                self.median(paced, Kind::Coturn, Metric::P99),
            ) {
                let _ = writeln!(
                    out,
                    "| RTT p99 ≤ coturn's at the same load — {} | {:.3} vs {:.3} ms | {} |",
                    paced.short(),
                    t,
                    c,
                    verdict(t <= c)
                );
            }
        }
        if let Some(t) = self.median(Workload::Allocate, Kind::Turnpike, Metric::Rate) {
            let _ = writeln!(
                out,
                "| ≥ 5,000 authenticated Allocates/s | {} /s (coturn {} /s) | {} |",
                thousands(t),
                self.median(Workload::Allocate, Kind::Coturn, Metric::Rate)
                    .map_or("—".into(), thousands),
                verdict(t >= 5000.0)
            );
        }
        for workload in self.workloads() {
            let Workload::Memory(_) = workload else {
                continue;
            };
            if let Some(t) = self.median(workload, Kind::Turnpike, Metric::KibPerAllocation) {
                let _ = writeln!(
                    out,
                    "| ≤ 4 KiB per idle allocation | {t:.2} KiB (coturn {}) | {} |",
                    self.median(workload, Kind::Coturn, Metric::KibPerAllocation)
                        .map_or("—".into(), |c| format!("{c:.2} KiB")),
                    verdict(t <= 4.0)
                );
            }
        }
        if let (Some(t), Some(c)) = (
            self.median(Workload::Stun, Kind::Turnpike, Metric::Rate),
            self.median(Workload::Stun, Kind::Coturn, Metric::Rate),
        ) {
            let _ = writeln!(
                out,
                "| STUN Binding throughput ≥ 2× coturn | {:.2}× ({} vs {} /s) | {} |",
                t / c,
                thousands(t),
                thousands(c),
                verdict(t >= 2.0 * c)
            );
        }
        out
    }
}

/// The columns of the veth table, in order.
const VETH_KINDS: [Kind; 5] = [
    Kind::Coturn,
    Kind::Turnpike,
    Kind::TurnpikeXdp,
    Kind::Forwarder,
    Kind::Direct,
];

impl Results {
    /// The veth topology's table: one column per kind and XDP ÷ coturn.
    pub fn veth_table(&self) -> String {
        let mut out = String::from("| workload | figure | coturn | Turnpike userspace | Turnpike XDP | XDP / coturn | bare forwarder | direct (no relay) |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n");
        for workload in self.workloads() {
            for (metric, label, fmt, ratio) in veth_rows() {
                let median = |k| self.median(workload, k, metric);
                if VETH_KINDS.iter().all(|&k| median(k).is_none()) {
                    continue;
                }
                let cells: Vec<String> = VETH_KINDS
                    .iter()
                    .map(|&k| self.cell(workload, k, metric, fmt))
                    .collect();
                let ratio_cell = match (median(Kind::TurnpikeXdp), median(Kind::Coturn)) {
                    (Some(x), Some(c)) if ratio && c > 0.0 => format!("**{:.2}×**", x / c),
                    _ => String::new(),
                };
                let _ = writeln!(
                    out,
                    "| {} | {label} | {} | {} | {} | {ratio_cell} | {} | {} |",
                    workload.title(),
                    cells[0],
                    cells[1],
                    cells[2],
                    cells[3],
                    cells[4]
                );
            }
        }
        out
    }

    /// The targets for the kernel fast path (issue 15), reported, not asserted: Turnpike
    /// XDP's figure against another kind's, as a ratio with a bound.
    pub fn veth_targets(&self) -> String {
        struct Target {
            paced: bool,
            what: &'static str,
            than: Kind,
            metric: Metric,
            /// `true`: ratio ≥ bound; `false`: ratio ≤ bound.
            at_least: bool,
            bound: f64,
            unit: &'static str,
        }
        let targets = [
            Target {
                paced: true,
                what: "relay's own cost with XDP ≤ 0.25× coturn's",
                than: Kind::Coturn,
                metric: Metric::OwnCostPerMillion,
                at_least: false,
                bound: 0.25,
                unit: "µs per relayed packet",
            },
            Target {
                paced: true,
                what: "RTT p99 with XDP ≤ the userspace path's",
                than: Kind::Turnpike,
                metric: Metric::P99,
                at_least: false,
                bound: 1.0,
                unit: "ms",
            },
            Target {
                paced: false,
                what: "saturation: relayed packets/s with XDP ≥ 2× coturn's",
                than: Kind::Coturn,
                metric: Metric::Rate,
                at_least: true,
                bound: 2.0,
                unit: "pkt/s",
            },
        ];
        let mut out = String::from(
            "| target (issue 15) | measured (medians) | met? |\n| --- | --- | --- |\n",
        );
        for workload in self.workloads() {
            let paced = match workload {
                Workload::RelayPaced(..) => true,
                Workload::Relay(..) => false,
                _ => continue,
            };
            for t in targets.iter().filter(|t| t.paced == paced) {
                let (Some(x), Some(other)) = (
                    self.median(workload, Kind::TurnpikeXdp, t.metric),
                    self.median(workload, t.than, t.metric),
                ) else {
                    continue;
                };
                let ratio = x / other;
                let met = other > 0.0
                    && if t.at_least {
                        ratio >= t.bound
                    } else {
                        ratio <= t.bound
                    };
                let value = |v: f64| {
                    if t.metric == Metric::Rate {
                        thousands(v)
                    } else {
                        format!("{v:.3}")
                    }
                };
                let _ = writeln!(
                    out,
                    "| {} — {} | {ratio:.2}× ({} vs {} {}) | {} |",
                    t.what,
                    workload.short(),
                    value(x),
                    value(other),
                    t.unit,
                    if met { "yes" } else { "**no**" }
                );
            }
        }
        out
    }
}

/// The rows of the veth table.
fn veth_rows() -> Vec<Row> {
    let ms: fn(f64) -> String = |v| format!("{v:.3}");
    let us: fn(f64) -> String = |v| format!("{v:.2}");
    let whole: fn(f64) -> String = |v| format!("{v:.0} %");
    let mut rows: Vec<Row> = vec![
        (
            Metric::Rate,
            "relayed packets/s (2 per round trip)",
            thousands,
            true,
        ),
        (Metric::Loss, "loss", |v| format!("{v:.2} %"), false),
        (Metric::P50, "RTT p50 (ms)", ms, true),
        (Metric::P99, "RTT p99 (ms)", ms, true),
        (
            Metric::CpuPerMillion,
            "server process CPU, µs per relayed packet",
            us,
            true,
        ),
        (
            Metric::MachineCpuPerMillion,
            "whole-machine busy CPU, µs per relayed packet",
            us,
            true,
        ),
        (
            Metric::OwnCostPerMillion,
            "relay's own cost (whole machine − direct), µs per relayed packet",
            us,
            true,
        ),
        (
            Metric::XdpShare,
            "share of Turnpike's relayed packets carried by XDP",
            |v| format!("{v:.1} %"),
            false,
        ),
    ];
    // Server, generator and the rest as in the loopback table (the rest: anyone else's work,
    // and kernel work charged to them), then the whole machine.
    rows.extend(load_rows());
    rows.push((
        Metric::MachineCpuPercent,
        "whole machine busy (% of one core; 200 % = both)",
        whole,
        false,
    ));
    rows
}

/// The CPU rows in % of one core: server, generator, everything else.
fn load_rows() -> [Row; 3] {
    let whole: fn(f64) -> String = |v| format!("{v:.0} %");
    [
        (
            Metric::ServerCpuPercent,
            "server CPU (% of one core)",
            whole,
            false,
        ),
        (
            Metric::GeneratorCpuPercent,
            "generator + echo peer CPU (% of one core)",
            whole,
            false,
        ),
        (
            Metric::OthersCpuPercent,
            "other processes' CPU meanwhile (% of one core; noise)",
            whole,
            false,
        ),
    ]
}

type Row = (Metric, &'static str, fn(f64) -> String, bool);

/// The rows shown for a workload: metric, label, format, whether a ratio makes sense.
fn rows(workload: Workload) -> Vec<Row> {
    let rate = |label| (Metric::Rate, label, thousands as fn(f64) -> String, true);
    let ms: fn(f64) -> String = |v| format!("{v:.3}");
    let pct: fn(f64) -> String = |v| format!("{v:.2} %");
    let cpu: fn(f64) -> String = |v| format!("{v:.2}");
    let loads = load_rows();
    let mut r: Vec<Row> = match workload {
        Workload::Stun => vec![
            rate("requests/s"),
            (Metric::Loss, "unanswered", pct, false),
            (Metric::P50, "RTT p50 (ms)", ms, true),
            (Metric::P99, "RTT p99 (ms)", ms, true),
            (
                Metric::CpuPerMillion,
                "server CPU s per million requests",
                cpu,
                true,
            ),
        ],
        Workload::Relay(..) | Workload::RelayPaced(..) => vec![
            rate("relayed packets/s (2 per round trip)"),
            (Metric::Loss, "loss", pct, false),
            (Metric::P50, "RTT p50 (ms)", ms, true),
            (Metric::P99, "RTT p99 (ms)", ms, true),
            (
                Metric::CpuPerMillion,
                "server CPU s per million relayed packets",
                cpu,
                true,
            ),
        ],
        Workload::Allocate => vec![
            rate("allocations/s (each: 401, Allocate, Refresh 0)"),
            (
                Metric::Failures,
                "failed sessions",
                |v| format!("{v:.0}"),
                false,
            ),
            (
                Metric::CpuPerMillion,
                "server CPU s per million allocations",
                cpu,
                true,
            ),
        ],
        Workload::Memory(_) => vec![
            (
                Metric::KibPerAllocation,
                "resident memory per idle allocation (KiB)",
                |v| format!("{v:.2}"),
                true,
            ),
            (
                Metric::Failures,
                "failed allocations",
                |v| format!("{v:.0}"),
                false,
            ),
        ],
        Workload::Uclient => vec![
            (
                Metric::Rate,
                "its received messages/s (÷ its whole-second transmit time)",
                thousands,
                true,
            ),
            (Metric::Loss, "its loss", pct, false),
            (Metric::MeanRtt, "its mean RTT (ms)", ms, true),
            (
                Metric::CpuPerMillion,
                "server CPU s per million relayed packets (whole run)",
                cpu,
                true,
            ),
        ],
    };
    if !matches!(workload, Workload::Memory(_)) {
        r.extend(loads);
    }
    r
}

/// 12345.6 → "12,346".
pub fn thousands(value: f64) -> String {
    if !value.is_finite() {
        return "—".into();
    }
    let whole = value.round() as i64;
    let digits = whole.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if whole < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// Marker lines around the generated section of docs/benchmarks.md.
pub const BEGIN: &str =
    "<!-- relay-bench:begin (generated by bench relay-bench; edits inside are overwritten) -->";
/// End marker.
pub const END: &str = "<!-- relay-bench:end -->";

/// `doc` with the text between the markers replaced by `section` (appended with the markers
/// when they are not there yet).
pub fn splice(doc: &str, section: &str) -> String {
    let block = format!("{BEGIN}\n{section}{END}");
    match (doc.find(BEGIN), doc.find(END)) {
        (Some(start), Some(end)) if end > start => {
            format!("{}{}{}", &doc[..start], block, &doc[end + END.len()..])
        }
        _ => format!("{}\n{block}\n", doc.trim_end()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn median_of_odd_and_even_rounds() {
        let mut r = Results::default();
        for v in [3.0, 1.0, 2.0] {
            r.add(
                Workload::Stun,
                Kind::Turnpike,
                BTreeMap::from([(Metric::Rate, v)]),
            );
        }
        assert_eq!(
            r.median(Workload::Stun, Kind::Turnpike, Metric::Rate),
            Some(2.0)
        );
        r.add(
            Workload::Stun,
            Kind::Turnpike,
            BTreeMap::from([(Metric::Rate, 10.0)]),
        );
        assert_eq!(
            r.median(Workload::Stun, Kind::Turnpike, Metric::Rate),
            Some(2.5)
        );
        assert_eq!(r.median(Workload::Stun, Kind::Coturn, Metric::Rate), None);
    }

    #[test]
    fn splice_replaces_between_markers_and_keeps_the_rest() {
        let doc = format!("# B\n\nhand\n\n{BEGIN}\nold\n{END}\n\nmore hand\n");
        let new = splice(&doc, "new\n");
        assert_eq!(
            new,
            format!("# B\n\nhand\n\n{BEGIN}\nnew\n{END}\n\nmore hand\n")
        );
        let appended = splice("# B\n", "x\n");
        assert_eq!(appended, format!("# B\n{BEGIN}\nx\n{END}\n"));
    }

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(-1000.0), "-1,000");
    }
}
