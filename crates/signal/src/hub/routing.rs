//! Routing: directed frames to one peer of the sender's room, broadcasts to the others,
//! presence to everyone; frames for an away peer wait in its bounded queue.

use std::time::Instant;

use serde_json::value::RawValue;

use super::state::{Presence, Timer};
use super::Hub;
use crate::error::ErrorCode;
use crate::ids::PeerId;
use crate::inbound::Directed;
use crate::outbound;
use crate::output::ConnId;

/// The recipient is away and its queue is full.
#[derive(Debug)]
pub(super) struct QueueFull;

impl Hub {
    /// A directed frame from peer `from` (on `conn`) to the peer named `to`.
    pub(super) fn directed(
        &mut self,
        conn: ConnId,
        from: PeerId,
        kind: Directed,
        to: &str,
        data: &RawValue,
    ) {
        let room = self.peers.get(&from).map(|p| &p.room);
        let target = PeerId::parse(to)
            .filter(|id| self.peers.get(id).map(|p| &p.room) == room && room.is_some());
        let Some(target) = target else {
            self.send_error(conn, ErrorCode::UnknownPeer, Some(kind.as_str()));
            return;
        };
        let text = outbound::relayed(kind.as_str(), from, data);
        if self.deliver(target, text).is_err() {
            self.send_error(conn, ErrorCode::QueueFull, Some(kind.as_str()));
        }
    }

    /// A broadcast from peer `from` (on `conn`) to every other peer of its room, in join
    /// order. Recipients whose queue is full miss it; the sender gets one `queue-full`.
    pub(super) fn broadcast(&mut self, conn: ConnId, from: PeerId, data: &RawValue) {
        let Some(members) = self.members_of(from) else {
            return;
        };
        let text = outbound::relayed("broadcast", from, data);
        let mut dropped = false;
        for member in members.into_iter().filter(|&m| m != from) {
            dropped |= self.deliver(member, text.clone()).is_err();
        }
        if dropped {
            self.send_error(conn, ErrorCode::QueueFull, Some("broadcast"));
        }
    }

    /// Presence for every member of `room` but `except`. An away member whose queue is full
    /// could not stay consistent: its grace window ends now.
    pub(super) fn announce(
        &mut self,
        now: Instant,
        room: &str,
        except: Option<PeerId>,
        text: &str,
    ) {
        let Some(members) = self.rooms.get(room).map(|r| r.members.clone()) else {
            return;
        };
        for member in members.into_iter().filter(|&m| Some(m) != except) {
            if self.deliver(member, text.to_owned()).is_err() {
                self.end_grace_now(now, member);
            }
        }
    }

    /// Sends `text` to peer `id`, or queues it while the peer is away.
    fn deliver(&mut self, id: PeerId, text: String) -> Result<(), QueueFull> {
        let Some(peer) = self.peers.get_mut(&id) else {
            return Err(QueueFull);
        };
        match &mut peer.presence {
            Presence::Online(conn) => {
                let conn = *conn;
                self.send(conn, text);
                Ok(())
            }
            Presence::Away { queue, .. } if queue.len() < self.config.queue_length => {
                queue.push_back(text);
                Ok(())
            }
            Presence::Away { .. } => Err(QueueFull),
        }
    }

    /// Ends away peer `id`'s grace window at `now`: it can no longer resume, and it leaves
    /// at the next [`Hub::handle_timeout`].
    fn end_grace_now(&mut self, now: Instant, id: PeerId) {
        if let Some(peer) = self.peers.get_mut(&id) {
            if let Presence::Away { until, .. } = &mut peer.presence {
                *until = now.min(*until);
                self.timers.schedule(Timer::Grace(id), *until);
            }
        }
    }

    /// The members of `id`'s room, in join order.
    fn members_of(&self, id: PeerId) -> Option<Vec<PeerId>> {
        let peer = self.peers.get(&id)?;
        self.rooms.get(&peer.room).map(|r| r.members.clone())
    }
}
