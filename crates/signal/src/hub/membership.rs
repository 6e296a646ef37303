//! Joining, resuming and leaving rooms; presence (`peer-joined`, `peer-left`).

use std::collections::VecDeque;
use std::time::Instant;

use super::state::{later, Peer, Presence, Timer};
use super::Hub;
use crate::config::Grant;
use crate::error::ErrorCode;
use crate::ids::{PeerId, ResumeSecret};
use crate::outbound::{self, Joined};
use crate::output::{CloseReason, ConnId, Output};
use crate::token;

impl Hub {
    /// `join` on a connection that has not joined: resume with `resume`, else join afresh.
    pub(super) fn join(
        &mut self,
        now: Instant,
        unix_now: u64,
        conn: ConnId,
        room: String,
        token: Option<String>,
        resume: Option<String>,
    ) {
        match resume {
            // The resume token alone admits: it was issued after the join token was checked.
            Some(resume) => self.resume(now, unix_now, conn, &room, &resume),
            None => self.join_afresh(now, unix_now, conn, room, token.as_deref()),
        }
    }

    /// `join` without `resume`: check the token and capacity, then a new peer.
    fn join_afresh(
        &mut self,
        now: Instant,
        unix_now: u64,
        conn: ConnId,
        room: String,
        token: Option<&str>,
    ) {
        let mut token_expiry = None;
        if let Some(secret) = &self.config.token_secret {
            let verdict = match token {
                Some(token) => token::claims(secret, token, unix_now).and_then(|claims| {
                    if claims.room == room {
                        Ok(claims.expiry_unix)
                    } else {
                        Err(token::TokenError::WrongRoom)
                    }
                }),
                None => Err(token::TokenError::Malformed),
            };
            match verdict {
                Ok(expiry) => token_expiry = Some(expiry),
                Err(err) => {
                    let message = match token {
                        Some(_) => err.to_string(),
                        None => "this server needs a token to join".to_owned(),
                    };
                    let text = outbound::error(ErrorCode::BadToken, &message, Some("join"));
                    self.counters.count_error(ErrorCode::BadToken);
                    self.send(conn, text);
                    self.close(now, conn, CloseReason::BadToken);
                    return;
                }
            }
        }
        let size = self.rooms.get(&room).map_or(0, |r| r.members.len());
        if size >= self.config.room_capacity {
            self.send_error(conn, ErrorCode::RoomFull, Some("join"));
            return;
        }
        let id = self.fresh_peer_id();
        let secret = ResumeSecret::random(&mut *self.rng);
        let peer = Peer {
            room: room.clone(),
            secret,
            presence: Presence::Online(conn),
            token_expiry,
        };
        self.peers.insert(id, peer);
        self.rooms.entry(room.clone()).or_default().members.push(id);
        if let Some(connection) = self.conns.get_mut(&conn) {
            connection.peer = Some(id);
        }
        self.send_joined(conn, id, false, unix_now);
        self.announce(now, &room, Some(id), &outbound::peer_joined(id));
    }

    /// `join` with `resume`: the same peer, on this connection, with its queued frames.
    fn resume(&mut self, now: Instant, unix_now: u64, conn: ConnId, room: &str, token: &str) {
        let Some(id) = self.resumable(now, room, token) else {
            self.send_error(conn, ErrorCode::ResumeFailed, Some("join"));
            return;
        };
        let secret = ResumeSecret::random(&mut *self.rng);
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        peer.secret = secret;
        let queued = match std::mem::replace(&mut peer.presence, Presence::Online(conn)) {
            Presence::Away { queue, .. } => queue,
            Presence::Online(old) => {
                // The client came back before we noticed its old connection die.
                self.outputs.push_back(Output::Close {
                    conn: old,
                    reason: CloseReason::Replaced,
                });
                self.forget_connection(old);
                VecDeque::new()
            }
        };
        self.timers.cancel(Timer::Grace(id));
        if let Some(connection) = self.conns.get_mut(&conn) {
            connection.peer = Some(id);
        }
        self.send_joined(conn, id, true, unix_now);
        for text in queued {
            self.send(conn, text);
        }
    }

    /// The peer a resume token names, if it is in `room` and its grace window (if away)
    /// has not passed.
    fn resumable(&self, now: Instant, room: &str, token: &str) -> Option<PeerId> {
        let (id, secret) = ResumeSecret::parse_token(token)?;
        let peer = self.peers.get(&id)?;
        let in_window = match &peer.presence {
            Presence::Away { until, .. } => now < *until,
            Presence::Online(_) => true,
        };
        (peer.secret.matches(&secret) && peer.room == room && in_window).then_some(id)
    }

    /// Sends `joined` to `conn`, which now speaks for peer `id`. Its ICE servers are minted
    /// now, for the identity and lifetime of the join token that admitted the peer (a resumed
    /// peer keeps the grant of its first join).
    fn send_joined(&mut self, conn: ConnId, id: PeerId, resumed: bool, unix_now: u64) {
        let (Some(peer), Some(connection)) = (self.peers.get(&id), self.conns.get(&conn)) else {
            return;
        };
        let others: Vec<PeerId> = self
            .rooms
            .get(&peer.room)
            .map(|r| r.members.iter().copied().filter(|&m| m != id).collect())
            .unwrap_or_default();
        let grant = peer.token_expiry.map(|expiry_unix| Grant {
            room: &peer.room,
            expiry_unix,
        });
        let text = outbound::joined(&Joined {
            id,
            room: &peer.room,
            peers: &others,
            resume: &peer.secret.token(id),
            resumed,
            ice: &connection.ice.for_join(grant, unix_now),
        });
        self.send(conn, text);
    }

    /// A random peer id no peer of the hub has.
    fn fresh_peer_id(&mut self) -> PeerId {
        loop {
            let id = PeerId::random(&mut *self.rng);
            if !self.peers.contains_key(&id) {
                return id;
            }
        }
    }

    /// Peer `id` lost its connection (closed, silent or a slow consumer): it waits for a
    /// resume until the grace window passes, or leaves at once when there is none.
    pub(super) fn go_away(&mut self, now: Instant, id: PeerId) {
        let Some(until) = later(now, self.config.resume_grace) else {
            self.remove_peer(now, id);
            return;
        };
        if let Some(peer) = self.peers.get_mut(&id) {
            peer.presence = Presence::Away {
                until,
                queue: VecDeque::new(),
            };
            self.timers.schedule(Timer::Grace(id), until);
        }
    }

    /// Removes peer `id` from its room (the room too, when it empties) and tells the others.
    pub(super) fn remove_peer(&mut self, now: Instant, id: PeerId) {
        let Some(peer) = self.peers.remove(&id) else {
            return;
        };
        self.timers.cancel(Timer::Grace(id));
        if let Presence::Online(conn) = peer.presence {
            if let Some(connection) = self.conns.get_mut(&conn) {
                connection.peer = None;
            }
        }
        let Some(room) = self.rooms.get_mut(&peer.room) else {
            return;
        };
        room.members.retain(|&m| m != id);
        if room.members.is_empty() {
            self.rooms.remove(&peer.room);
            return;
        }
        self.announce(now, &peer.room, None, &outbound::peer_left(id));
    }
}
