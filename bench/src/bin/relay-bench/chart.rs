//! The PNG chart (plotters, bitmap backend). Text is drawn with `ab_glyph` from a TrueType
//! font read at run time — DejaVu Sans from Debian's `fonts-dejavu-core`, installed if missing
//! — since plotters' bitmap backend has no font of its own.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::report::{thousands, Metric, Results, Workload};
use crate::servers::{self, Kind};

/// Where Debian puts DejaVu Sans.
const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
/// The font family name the chart asks for.
const FAMILY: &str = "sans-serif";

const TURNPIKE: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const COTURN: RGBColor = RGBColor(0xff, 0x7f, 0x0e);
const FORWARDER: RGBColor = RGBColor(0x99, 0x99, 0x99);

fn color(kind: Kind) -> RGBColor {
    match kind {
        Kind::Turnpike | Kind::TurnpikeXdp => TURNPIKE,
        Kind::Coturn => COTURN,
        Kind::Forwarder | Kind::Direct => FORWARDER,
    }
}

/// Registers the font with plotters, installing `fonts-dejavu-core` if needed.
pub fn load_font() -> anyhow::Result<()> {
    let path = PathBuf::from(FONT);
    if !path.is_file() {
        eprintln!("relay-bench: {FONT} missing: apt-get install -y fonts-dejavu-core");
        servers::apt_install("fonts-dejavu-core")?;
    }
    let bytes = std::fs::read(&path).with_context(|| format!("reading {FONT}"))?;
    // plotters keeps a reference for the life of the program.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font(FAMILY, FontStyle::Normal, bytes)
        .map_err(|_| anyhow!("{FONT} is not a font plotters can read"))?;
    Ok(())
}

/// Draws the chart to `path`: relayed packets/s and server CPU per relayed packet for the
/// closed-loop relay workloads, and the Turnpike/coturn ratios of the other workloads.
pub fn draw(results: &Results, title: &str, path: &Path) -> anyhow::Result<()> {
    let root = BitMapBackend::new(path, (1500, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let (header, body) = root.split_vertically(44);
    header
        .draw(&Text::new(title, (16, 12), (FAMILY, 20).into_font()))
        .map_err(|e| anyhow!("{e}"))?;
    let panels = body.split_evenly((1, 3));
    let relay: Vec<Workload> = results
        .workloads()
        .into_iter()
        .filter(|w| matches!(w, Workload::Relay(..)))
        .collect();
    bars(
        &panels[0],
        results,
        &relay,
        "Relayed packets/s (median; higher is better)",
        Metric::Rate,
        &[Kind::Turnpike, Kind::Coturn, Kind::Forwarder],
        1.0 / 1000.0,
        "k packets/s",
    )?;
    bars(
        &panels[1],
        results,
        &relay,
        "Server CPU per relayed packet (lower is better)",
        Metric::CpuPerMillion,
        &[Kind::Turnpike, Kind::Coturn, Kind::Forwarder],
        1.0, // s per million = µs per packet
        "µs of CPU per packet",
    )?;
    ratios(&panels[2], results)?;
    root.present().map_err(|e| anyhow!("{e}"))?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn bars(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    results: &Results,
    workloads: &[Workload],
    caption: &str,
    metric: Metric,
    kinds: &[Kind],
    scale: f64,
    unit: &str,
) -> anyhow::Result<()> {
    let value = |w: Workload, k: Kind| results.median(w, k, metric).map(|v| v * scale);
    let max = workloads
        .iter()
        .flat_map(|&w| kinds.iter().filter_map(move |&k| value(w, k)))
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max)
        .max(1e-9);
    let groups = workloads.len().max(1);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FAMILY, 16))
        .margin(12)
        .x_label_area_size(56)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..groups as f64, 0f64..max * 1.18)
        .map_err(|e| anyhow!("{e}"))?;
    let labels: Vec<String> = workloads.iter().map(|w| w.short()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(groups * 2 + 1)
        .x_label_formatter(&|x| group_label(&labels, *x))
        .y_desc(unit)
        .label_style((FAMILY, 12))
        .axis_desc_style((FAMILY, 13))
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    let width = 0.8 / kinds.len() as f64;
    for (g, &w) in workloads.iter().enumerate() {
        for (i, &k) in kinds.iter().enumerate() {
            let Some(v) = value(w, k).filter(|v| v.is_finite()) else {
                continue;
            };
            let x0 = g as f64 + 0.1 + i as f64 * width;
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x0, 0.0), (x0 + width * 0.92, v)],
                    color(k).filled(),
                )))
                .map_err(|e| anyhow!("{e}"))?;
            let text = if v >= 100.0 {
                thousands(v)
            } else {
                format!("{v:.2}")
            };
            chart
                .draw_series(std::iter::once(Text::new(
                    text,
                    (x0, v + max * 0.02),
                    (FAMILY, 10).into_font(),
                )))
                .map_err(|e| anyhow!("{e}"))?;
        }
    }
    for (i, &k) in kinds.iter().enumerate() {
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [
                    (0.05 + i as f64 * 0.9, max * 1.12),
                    (0.12 + i as f64 * 0.9, max * 1.16),
                ],
                color(k).filled(),
            )))
            .map_err(|e| anyhow!("{e}"))?;
        chart
            .draw_series(std::iter::once(Text::new(
                k.name(),
                (0.15 + i as f64 * 0.9, max * 1.165),
                (FAMILY, 12).into_font(),
            )))
            .map_err(|e| anyhow!("{e}"))?;
    }
    Ok(())
}

/// Turnpike / coturn for the other workloads, oriented so that above 1 is better for Turnpike.
fn ratios(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    results: &Results,
) -> anyhow::Result<()> {
    let mut items: Vec<(String, f64)> = Vec::new();
    for w in results.workloads() {
        let m = |k, x| results.median(w, k, x);
        let pair = |x| m(Kind::Turnpike, x).zip(m(Kind::Coturn, x));
        match w {
            Workload::Stun => {
                if let Some((t, c)) = pair(Metric::Rate) {
                    items.push(("STUN/s".into(), t / c));
                }
            }
            Workload::Allocate => {
                if let Some((t, c)) = pair(Metric::Rate) {
                    items.push(("Allocate/s".into(), t / c));
                }
            }
            Workload::Memory(_) => {
                if let Some((t, c)) = pair(Metric::KibPerAllocation) {
                    items.push(("memory*".into(), c / t));
                }
            }
            Workload::RelayPaced(..) => {
                if let Some((t, c)) = pair(Metric::P99) {
                    items.push(("RTT p99*".into(), c / t));
                }
            }
            Workload::Uclient => {
                if let Some((t, c)) = pair(Metric::CpuPerMillion) {
                    items.push(("uclient CPU*".into(), c / t));
                }
            }
            Workload::Relay(..) => {}
        }
    }
    // A zero figure (a tiny smoke run) would make an infinite ratio, on which plotters' axis
    // code loops forever.
    items.retain(|(_, v)| v.is_finite() && *v > 0.0);
    let max = items.iter().map(|(_, v)| *v).fold(2.2f64, f64::max);
    let n = items.len().max(1);
    let mut chart = ChartBuilder::on(area)
        .caption(
            "Turnpike vs coturn (> 1: Turnpike better; * coturn ÷ Turnpike)",
            (FAMILY, 15),
        )
        .margin(12)
        .x_label_area_size(56)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..n as f64, 0f64..max * 1.1)
        .map_err(|e| anyhow!("{e}"))?;
    let labels: Vec<String> = items.iter().map(|(l, _)| l.clone()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n * 2 + 1)
        .x_label_formatter(&|x| group_label(&labels, *x))
        .y_desc("ratio")
        .label_style((FAMILY, 11))
        .axis_desc_style((FAMILY, 13))
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    for (i, (_, v)) in items.iter().enumerate() {
        let x0 = i as f64 + 0.2;
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x0, 0.0), (x0 + 0.6, *v)],
                TURNPIKE.filled(),
            )))
            .map_err(|e| anyhow!("{e}"))?;
        chart
            .draw_series(std::iter::once(Text::new(
                format!("{v:.2}×"),
                (x0 + 0.12, v + max * 0.02),
                (FAMILY, 11).into_font(),
            )))
            .map_err(|e| anyhow!("{e}"))?;
    }
    for level in [1.0, 2.0] {
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(0.0, level), (n as f64, level)],
                ShapeStyle::from(&BLACK.mix(0.5)).stroke_width(1),
            )))
            .map_err(|e| anyhow!("{e}"))?;
    }
    Ok(())
}

/// The label under group `i` of a bar chart whose groups span `i..i + 1`: asked at the middle
/// of each group (and at its edges, which get none).
fn group_label(labels: &[String], x: f64) -> String {
    let i = x.floor() as usize;
    if (x - i as f64 - 0.5).abs() < 0.01 {
        labels.get(i).cloned().unwrap_or_default()
    } else {
        String::new()
    }
}
