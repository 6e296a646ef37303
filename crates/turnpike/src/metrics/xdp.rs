//! The kernel fast path's metrics (`xdp-interfaces`): what the XDP program relayed and what
//! it passed to userspace, by cause, read from its maps at scrape time. Nothing is written
//! without a fast path.

use std::fmt;
use std::sync::{Arc, OnceLock};

use prometheus_client::encoding::DescriptorEncoder;

use super::encode;
use super::turn::TurnSources;
use crate::server::kernel_path::KernelPath;

/// The program, once attached, and the workers (to count their installed channels).
#[derive(Debug)]
pub struct XdpCollector {
    pub path: Arc<OnceLock<Arc<KernelPath>>>,
    pub turn: Arc<TurnSources>,
}

impl prometheus_client::collector::Collector for XdpCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let Some(path) = self.path.get() else {
            return Ok(());
        };
        let channels: usize = self.turn.workers.get().map_or(0, |workers| {
            workers
                .iter()
                // On the HTTP server's runtime: may wait for each loop (see metrics/turn.rs).
                .filter_map(|w| {
                    w.call_blocking(|state| state.kernel.as_ref().map_or(0, |k| k.len()))
                })
                .sum()
        });
        let s = path.stats(channels as u64);
        let e = &mut encoder;
        let none: [(&str, &str); 0] = [];
        encode::gauges(
            e,
            "turnpike_xdp_channels",
            "Channels the kernel fast path relays now.",
            [(none, s.channels)],
        )?;
        encode::counters(
            e,
            "turnpike_xdp_relayed_packets",
            "Datagrams the XDP program relayed in the kernel, by direction.",
            [
                ([("direction", "to-peer")], s.relayed_to_peer),
                ([("direction", "to-client")], s.relayed_to_client),
            ],
        )?;
        encode::counters(
            e,
            "turnpike_xdp_passed_packets",
            "Datagrams the XDP program passed on to the userspace path, by cause.",
            s.passed.iter().map(|(cause, n)| ([("cause", *cause)], *n)),
        )?;
        encode::counters(
            e,
            "turnpike_xdp_failed_updates",
            "Channel map updates that failed (those channels relay in userspace).",
            [(none, s.failed_updates)],
        )
    }
}
