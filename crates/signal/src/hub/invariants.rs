//! The hub's invariants, checked on demand by property tests and fuzz targets.

use super::state::{Presence, Timer};
use super::Hub;

impl Hub {
    /// Checks the hub's internal consistency (O(peers + connections)): every peer is in
    /// exactly one room, once; rooms are non-empty and within capacity; connections and
    /// peers point at each other; away peers have a grace timer and a bounded queue. Returns
    /// the first violation found.
    pub fn check_invariants(&self) -> Result<(), String> {
        for (name, room) in &self.rooms {
            if room.members.is_empty() {
                return Err(format!("room {name} is empty"));
            }
            if room.members.len() > self.config.room_capacity {
                return Err(format!("room {name} is over capacity"));
            }
            for (i, id) in room.members.iter().enumerate() {
                if room.members[..i].contains(id) {
                    return Err(format!("peer {id} is twice in room {name}"));
                }
                if self.peers.get(id).map(|p| &p.room) != Some(name) {
                    return Err(format!("room {name} lists peer {id}, which is elsewhere"));
                }
            }
        }
        for (id, peer) in &self.peers {
            let listed = self.rooms.get(&peer.room);
            if !listed.is_some_and(|r| r.members.contains(id)) {
                return Err(format!("peer {id} is in no room"));
            }
            match &peer.presence {
                Presence::Online(conn) => {
                    if self.conns.get(conn).and_then(|c| c.peer) != Some(*id) {
                        return Err(format!("peer {id}'s connection {conn} is not its own"));
                    }
                }
                Presence::Away { until, queue } => {
                    if self.timers.get(Timer::Grace(*id)) != Some(*until) {
                        return Err(format!("away peer {id} has no grace timer"));
                    }
                    if queue.len() > self.config.queue_length {
                        return Err(format!("away peer {id}'s queue is over its bound"));
                    }
                }
            }
        }
        for (conn, connection) in &self.conns {
            if let Some(id) = connection.peer {
                let online = self.peers.get(&id).map(|p| &p.presence);
                if !matches!(online, Some(Presence::Online(c)) if c == conn) {
                    return Err(format!(
                        "connection {conn} speaks for peer {id}, not online"
                    ));
                }
            }
            let armed = self.timers.get(Timer::Conn(*conn)).is_some();
            if armed != connection.deadline(self.config.silence_timeout).is_some() {
                return Err(format!("connection {conn}'s timer is not armed"));
            }
        }
        Ok(())
    }
}
