//! Relaying between the two allocations: permissions and channels both ways (RFC 8656 §9,
//! §12), and data both ways in Send/Data indications (§11) and in ChannelData (§12.4).

use std::net::SocketAddr;
use std::time::Instant;

use ice::{TurnError, TurnEvent, TurnRequest};

use super::super::report::{millis, DataStats, Outcome, Verdict};
use super::super::session::{drive, Arrival, Session};
use super::{Run, Stop};

/// What [`grant`] asks for both ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Grant {
    /// CreatePermission (RFC 8656 §9.1).
    Permission,
    /// ChannelBind (RFC 8656 §12.1).
    Channel,
}

impl Grant {
    fn step(self) -> &'static str {
        match self {
            Grant::Permission => "permissions",
            Grant::Channel => "channels",
        }
    }

    fn ask(self, session: &mut Session, peer: SocketAddr) {
        match self {
            Grant::Permission => session.turn.create_permission(Instant::now(), peer),
            Grant::Channel => session.turn.bind_channel(Instant::now(), peer),
        }
    }

    /// The channel number, or 0 for a permission, once granted.
    fn granted(self, session: &Session, peer: SocketAddr) -> Option<u16> {
        match self {
            Grant::Permission => session
                .turn
                .has_permission(Instant::now(), peer)
                .then_some(0),
            Grant::Channel => session.turn.channel(Instant::now(), peer),
        }
    }

    fn failed(self, event: &TurnEvent) -> bool {
        match self {
            Grant::Permission => matches!(event, TurnEvent::PermissionFailed { .. }),
            Grant::Channel => matches!(event, TurnEvent::ChannelFailed { .. }),
        }
    }

    /// The peer and cause of a refused request of this kind.
    fn refusal(self, event: TurnEvent) -> Option<(SocketAddr, TurnError)> {
        match (self, event) {
            (
                Grant::Permission,
                TurnEvent::RequestFailed {
                    request: TurnRequest::CreatePermission { peer },
                    error,
                },
            )
            | (
                Grant::Channel,
                TurnEvent::RequestFailed {
                    request: TurnRequest::ChannelBind { peer, .. },
                    error,
                },
            ) => Some((peer, error)),
            _ => None,
        }
    }
}

/// CreatePermission or ChannelBind both ways: each allocation lets the other one's relayed
/// address in (RFC 8656 §9), or binds a channel to it (§12).
pub(super) async fn grant(
    run: &mut Run<'_>,
    sessions: &mut [Session],
    first: SocketAddr,
    second: SocketAddr,
    kind: Grant,
) -> Result<(), Stop> {
    let started = Instant::now();
    let peers = [second, first];
    for (session, peer) in sessions.iter_mut().zip(peers) {
        kind.ask(session, peer);
    }
    let until = run.deadline();
    let done = drive(sessions, until, |s| {
        let all = s
            .iter()
            .zip(peers)
            .all(|(s, p)| kind.granted(s, p).is_some());
        all || s.iter().any(|s| s.events.iter().any(|e| kind.failed(e)))
    })
    .await
    .unwrap_or(false);
    let granted: Vec<Option<u16>> = sessions
        .iter()
        .zip(peers)
        .map(|(s, peer)| kind.granted(s, peer))
        .collect();
    let refusal = sessions.iter_mut().find_map(|s| {
        std::mem::take(&mut s.events)
            .into_iter()
            .find_map(|e| kind.refusal(e))
    });
    if let Some((peer, error)) = refusal {
        if let (Grant::Permission, Some(code)) = (kind, error.code()) {
            run.evidence.permission_error = Some((code, peer.ip()));
        }
        let detail = format!("for {}: {error}", peer.ip());
        return Err(run.fail(kind.step(), started, detail, Outcome::Relay));
    }
    let detail = match (done, granted.as_slice(), kind) {
        (true, [Some(_), Some(_)], Grant::Permission) => {
            format!("{} ↔ {}", first.ip(), second.ip())
        }
        (true, [Some(a), Some(b)], Grant::Channel) => format!("0x{a:04X} and 0x{b:04X}"),
        _ => {
            let detail = "no answer".to_owned();
            return Err(run.fail(kind.step(), started, detail, Outcome::Relay));
        }
    };
    run.ok(kind.step(), started, detail);
    Ok(())
}

/// The first bytes of every test datagram.
const MAGIC: &[u8; 14] = b"turnpike-check";

/// `count` datagrams from the first allocation to the second one's relayed address, each
/// echoed back: Send/Data indications (RFC 8656 §11) before channels are bound, ChannelData
/// (§12) after.
pub(super) async fn data(
    run: &mut Run<'_>,
    sessions: &mut [Session],
    second: SocketAddr,
    channel: bool,
) -> Result<(), Stop> {
    let name = if channel { "channel data" } else { "send/data" };
    let started = Instant::now();
    for session in sessions.iter_mut() {
        session.arrivals.clear();
    }
    sessions[1].echo = true;
    let count = run.settings.count;
    let mut sent_at = Vec::with_capacity(count as usize);
    for seq in 0..count {
        let mut payload = MAGIC.to_vec();
        payload.extend_from_slice(&seq.to_be_bytes());
        sent_at.push(Instant::now());
        if let Err(error) = sessions[0].send_to(second, &payload).await {
            return Err(run.fail(name, started, error.to_string(), Outcome::Relay));
        }
        let pause = Instant::now() + run.settings.interval;
        if drive(sessions, pause, |_| false).await.is_err() {
            break;
        }
    }
    let until = run.deadline();
    let all_back = |s: &[Session]| s[0].arrivals.len() >= count as usize;
    let _ = drive(sessions, until, all_back).await;
    sessions[1].echo = false;
    let stats = stats(
        &sessions[0].arrivals,
        &sessions[1].arrivals,
        &sent_at,
        count,
    );
    let framed_right = sessions
        .iter()
        .flat_map(|s| &s.arrivals)
        .all(|a| a.channel_data == channel);
    let detail = format!(
        "{}/{} delivered, {}/{} back, loss {:.0} %{}{}",
        stats.delivered,
        stats.sent,
        stats.returned,
        stats.sent,
        stats.loss_percent,
        stats.rtt_ms_avg.map_or_else(String::new, |avg| format!(
            ", RTT {:.1}/{avg:.1}/{:.1} ms",
            stats.rtt_ms_min.unwrap_or(avg),
            stats.rtt_ms_max.unwrap_or(avg)
        )),
        if framed_right {
            ""
        } else {
            " (not all in the framing sent)"
        }
    );
    let returned = stats.returned;
    let loss = stats.loss_percent;
    if channel {
        run.facts.channel_data = Some(stats);
    } else {
        run.facts.send_data = Some(stats);
    }
    if returned == 0 {
        run.evidence.no_data = true;
        return Err(run.fail(name, started, detail, Outcome::Relay));
    }
    let verdict = if loss > 0.0 || !framed_right {
        run.evidence.loss_percent = Some(loss.max(run.evidence.loss_percent.unwrap_or(0.0)));
        Verdict::Warn
    } else {
        Verdict::Ok
    };
    run.record(name, verdict, started, detail);
    Ok(())
}

/// Counts the test datagrams that arrived, and the round-trip times of those echoed.
fn stats(back: &[Arrival], there: &[Arrival], sent_at: &[Instant], count: u32) -> DataStats {
    let seq = |payload: &[u8]| -> Option<u32> {
        let rest = payload.strip_prefix(MAGIC.as_slice())?;
        Some(u32::from_be_bytes(rest.try_into().ok()?))
    };
    let unique = |arrivals: &[Arrival]| {
        let mut seen: Vec<u32> = arrivals
            .iter()
            .filter_map(|a| seq(&a.payload))
            .filter(|s| *s < count)
            .collect();
        seen.sort_unstable();
        seen.dedup();
        seen.len() as u32
    };
    let mut rtts: Vec<f64> = back
        .iter()
        .filter_map(|a| {
            let sent = sent_at.get(seq(&a.payload)? as usize)?;
            Some(millis(a.at.saturating_duration_since(*sent)))
        })
        .collect();
    rtts.sort_by(f64::total_cmp);
    let returned = unique(back);
    DataStats {
        sent: count,
        delivered: unique(there),
        returned,
        loss_percent: f64::from(count - returned.min(count)) * 100.0 / f64::from(count.max(1)),
        rtt_ms_min: rtts.first().copied(),
        rtt_ms_avg: (!rtts.is_empty()).then(|| rtts.iter().sum::<f64>() / rtts.len() as f64),
        rtt_ms_max: rtts.last().copied(),
    }
}
