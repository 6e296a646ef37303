//! The hub: every connection, peer and room of one server, as one sans-IO state machine.

mod counters;
mod invariants;
mod liveness;
mod membership;
mod routing;
mod state;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Instant;

use rand::RngCore;

use crate::config::{HubConfig, IceSource};
use crate::deadlines::Deadlines;
use crate::error::ErrorCode;
use crate::ids::PeerId;
use crate::inbound::{self, Inbound};
use crate::outbound;
use crate::output::{CloseReason, ConnId, Output};
use state::{Connection, Peer, Presence, Room, Timer};

pub use counters::HubCounters;

/// Counters for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HubStats {
    /// Rooms (each has at least one peer).
    pub rooms: usize,
    /// Peers, counting those in their grace window.
    pub peers: usize,
    /// Peers in their grace window (no connection).
    pub away: usize,
    /// Open connections, joined or not.
    pub connections: usize,
}

/// The signaling hub. See the crate docs for the run loop.
pub struct Hub {
    /// Limits and durations.
    config: HubConfig,
    /// Draws peer ids and resume secrets.
    rng: Box<dyn RngCore + Send>,
    /// Open connections. Hash maps for connections and peers: every routed frame looks up
    /// two peers and a connection, and with thousands of them a B-tree walk's cache misses
    /// showed in profiles; nothing iterates them in order.
    conns: HashMap<ConnId, Connection>,
    /// Every peer, online or away.
    peers: HashMap<PeerId, Peer>,
    /// Rooms by name, each with at least one peer.
    rooms: BTreeMap<String, Room>,
    /// Connection timers and grace windows.
    timers: Deadlines<Timer>,
    /// Commands not yet polled.
    outputs: VecDeque<Output>,
    /// Totals for metrics.
    counters: HubCounters,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Hub {
    /// A hub with no connections; `rng` draws peer ids and resume tokens.
    pub fn new(config: HubConfig, rng: Box<dyn RngCore + Send>) -> Hub {
        Hub {
            config,
            rng,
            conns: HashMap::new(),
            peers: HashMap::new(),
            rooms: BTreeMap::new(),
            timers: Deadlines::new(),
            outputs: VecDeque::new(),
            counters: HubCounters::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// Whether room `name` has peers (online or away): an I/O layer that shares rooms with
    /// other servers keeps its claim on the room while it does.
    pub fn has_room(&self, name: &str) -> bool {
        self.rooms.contains_key(name)
    }

    /// The names of the rooms that have peers (online or away), in order.
    pub fn rooms(&self) -> impl Iterator<Item = &str> {
        self.rooms.keys().map(String::as_str)
    }

    /// Whether `conn` is open and has joined a room.
    pub fn is_joined(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).is_some_and(|c| c.peer.is_some())
    }

    /// A WebSocket opened; `ice` is where its `joined` gets its ICE servers (the I/O layer
    /// decides per connection, and may mint the TURN credentials from the join token's
    /// identity: [`IceSource::Minted`]). Reusing the id of an open connection first disconnects
    /// that one.
    pub fn connect(&mut self, now: Instant, conn: ConnId, ice: impl Into<IceSource>) {
        let ice = ice.into();
        if self.conns.contains_key(&conn) {
            self.disconnect(now, conn);
        }
        let connection = Connection::new(now, ice, &self.config);
        if let Some(at) = connection.deadline(self.config.silence_timeout) {
            self.timers.schedule(Timer::Conn(conn), at);
        }
        self.conns.insert(conn, connection);
    }

    /// One text frame from `conn`. `unix_now` is wall-clock seconds (token expiry). Frames
    /// from a connection the hub does not know (never connected, or closed by the hub) are
    /// ignored.
    pub fn handle_text(&mut self, now: Instant, unix_now: u64, conn: ConnId, text: &str) {
        let Some(connection) = self.conns.get_mut(&conn) else {
            return;
        };
        // Any frame at all is a sign of life, even one about to be refused.
        connection.last_seen = now;
        self.counters.messages += 1;
        if !connection.limiter.allow(now) {
            if connection.may_report_rate_limit(now) {
                self.send_error(conn, ErrorCode::RateLimited, None);
            }
            return;
        }
        let peer = connection.peer;
        // The size is checked before parsing: nothing over the limit is parsed.
        if text.len() > self.config.max_message_bytes {
            self.send_error(conn, ErrorCode::TooLarge, None);
            return;
        }
        let frame = match inbound::parse(text) {
            Ok(frame) => frame,
            Err(bad) => {
                let text = outbound::error(ErrorCode::BadMessage, &bad.reason, bad.kind.as_deref());
                self.counters.count_error(ErrorCode::BadMessage);
                self.send(conn, text);
                return;
            }
        };
        let kind = frame.kind();
        match (frame, peer) {
            (Inbound::Ping, _) => self.send(conn, outbound::PONG.to_owned()),
            (Inbound::Pong, _) => {}
            (
                Inbound::Join {
                    room,
                    token,
                    resume,
                },
                None,
            ) => self.join(now, unix_now, conn, room, token, resume),
            (Inbound::Join { .. }, Some(_)) => {
                self.send_error(conn, ErrorCode::AlreadyJoined, Some(kind))
            }
            (_, None) => self.send_error(conn, ErrorCode::NotJoined, Some(kind)),
            (Inbound::Directed { kind, to, data }, Some(from)) => {
                self.directed(conn, from, kind, &to, data)
            }
            (Inbound::Broadcast { data }, Some(from)) => self.broadcast(conn, from, data),
            (Inbound::Leave, Some(peer)) => {
                self.remove_peer(now, peer);
                self.close(now, conn, CloseReason::Left);
            }
        }
    }

    /// The socket closed (or the I/O layer dropped it as a slow consumer): its peer, if
    /// any, enters its grace window. Unknown connections are ignored.
    pub fn disconnect(&mut self, now: Instant, conn: ConnId) {
        if let Some(peer) = self.forget_connection(conn) {
            self.go_away(now, peer);
        }
    }

    /// The next command for the I/O layer. Call until `None` after every input.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// Counters.
    pub fn stats(&self) -> HubStats {
        let away = self
            .peers
            .values()
            .filter(|p| matches!(p.presence, Presence::Away { .. }))
            .count();
        HubStats {
            rooms: self.rooms.len(),
            peers: self.peers.len(),
            away,
            connections: self.conns.len(),
        }
    }

    /// Queues a frame for `conn`.
    fn send(&mut self, conn: ConnId, text: String) {
        if let Some(connection) = self.conns.get_mut(&conn) {
            connection.sent_since_slot = true;
        }
        self.outputs.push_back(Output::Send { conn, text });
    }

    /// Totals since the start (frames received, errors sent by code).
    pub fn counters(&self) -> HubCounters {
        self.counters
    }

    /// Queues an `error` frame with the code's standard message.
    fn send_error(&mut self, conn: ConnId, code: ErrorCode, kind: Option<&str>) {
        self.counters.count_error(code);
        self.send(conn, outbound::error(code, code.message(), kind));
    }

    /// Closes `conn`: the I/O layer is told, the hub forgets it, and its peer (if it still
    /// has one) enters its grace window.
    fn close(&mut self, now: Instant, conn: ConnId, reason: CloseReason) {
        self.outputs.push_back(Output::Close { conn, reason });
        self.disconnect(now, conn);
    }

    /// Drops `conn` and its timer; returns the peer it spoke for.
    fn forget_connection(&mut self, conn: ConnId) -> Option<PeerId> {
        let connection = self.conns.remove(&conn)?;
        self.timers.cancel(Timer::Conn(conn));
        connection.peer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_can_move_between_threads() {
        // The I/O layer keeps one hub behind a mutex shared by connection tasks.
        fn send<T: Send>() {}
        send::<Hub>();
        send::<Output>();
    }
}
