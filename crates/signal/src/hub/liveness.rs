//! Time: heartbeat pings, silent connections, and the end of grace windows.

use std::time::Instant;

use super::state::{later, Presence, Timer};
use super::Hub;
use crate::outbound;
use crate::output::{CloseReason, ConnId, Output};

impl Hub {
    /// When [`Hub::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first()
    }

    /// Sends the pings due by `now`, closes connections silent for `silence_timeout`
    /// (their peers enter their grace window), and removes peers whose grace window has
    /// passed (`peer-left` to the others).
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_due(now) {
            match timer {
                Timer::Conn(conn) => self.connection_due(now, conn),
                Timer::Grace(peer) => {
                    let over = self.peers.get(&peer).is_some_and(
                        |p| matches!(p.presence, Presence::Away { until, .. } if until <= now),
                    );
                    if over {
                        self.remove_peer(now, peer);
                    }
                }
            }
        }
    }

    /// A connection's timer fired: close it if silent, else ping it if a ping is due, and
    /// re-arm. The timer is not moved when a frame arrives; it finds out here.
    fn connection_due(&mut self, now: Instant, conn: ConnId) {
        let silence = self.config.silence_timeout;
        let interval = self.config.ping_interval;
        let Some(connection) = self.conns.get_mut(&conn) else {
            return;
        };
        if connection.silent_at(silence).is_some_and(|at| at <= now) {
            self.close(now, conn, CloseReason::Silent);
            return;
        }
        let mut ping = false;
        if let Some(at) = connection.next_ping.filter(|&at| at <= now) {
            // A ping exists to make a quiet connection carry a frame each way (the client
            // answers it, and counts the server silent after 35 s without a frame). When, since
            // the last slot, a frame came from the client and one went to it, the traffic has
            // done that already: skip this slot's ping. That is most of a busy server's pings,
            // each a frame written and one read. An idle connection still gets one every
            // interval; the longest gap between two frames to a client stays under two
            // intervals.
            let heard = at
                .checked_sub(interval)
                .is_none_or(|slot| connection.last_seen > slot);
            ping = !(heard && connection.sent_since_slot);
            connection.sent_since_slot = false;
            // Keep the cadence; after a late call, start it again from now.
            let next = later(at, interval).filter(|&next| next > now);
            connection.next_ping = next.or_else(|| later(now, interval));
        }
        if let Some(at) = connection.deadline(silence) {
            self.timers.schedule(Timer::Conn(conn), at);
        }
        if ping {
            // Not through `send`: a ping is not traffic that proves anything.
            self.outputs.push_back(Output::Send {
                conn,
                text: outbound::PING.to_owned(),
            });
        }
    }
}
