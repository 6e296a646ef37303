//! Helpers that write one metric family with its label sets, for the collectors that build
//! their values at scrape time (sums over the workers, `/proc`, the hub).

use std::fmt;

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

/// Label pairs of one series.
pub type Labels<'a, const N: usize> = [(&'static str, &'a str); N];

/// Writes counter `name` (exposed as `name_total`) with one series per row.
pub fn counters<'a, const N: usize>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (Labels<'a, N>, u64)>,
) -> fmt::Result {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in rows {
        if N == 0 {
            // No labels: the bare series (a family would write `name{}`).
            return ConstCounter::new(value).encode(metric);
        }
        ConstCounter::new(value).encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Writes gauge `name` with one series per row.
pub fn gauges<'a, const N: usize, V>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (Labels<'a, N>, V)>,
) -> fmt::Result
where
    V: prometheus_client::encoding::EncodeGaugeValue + Clone + fmt::Debug + Send + Sync,
    ConstGauge<V>: EncodeMetric,
{
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in rows {
        if N == 0 {
            return ConstGauge::new(value).encode(metric);
        }
        ConstGauge::new(value).encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Writes a gauge without labels.
pub fn gauge(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: u64,
) -> fmt::Result {
    gauges::<0, u64>(encoder, name, help, [([], value)])
}

/// Writes a counter without labels.
pub fn counter(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: u64,
) -> fmt::Result {
    counters::<0>(encoder, name, help, [([], value)])
}
