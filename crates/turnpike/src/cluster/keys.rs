//! What the cluster keeps in Redis: key names, their lifetimes, and the scripts that change
//! them atomically. Every key has a TTL renewed by its owner's heartbeat, so a node that dies
//! leaves nothing behind once its TTLs run out.
//!
//! | key | value | TTL | written by |
//! |---|---|---|---|
//! | `PREFIX:node:ID` | the node's load (JSON) | [`NODE_TTL`] | node ID, every [`HEARTBEAT`] |
//! | `PREFIX:room:NAME` | the room's home node id | [`ROOM_TTL`] | the home, every [`HEARTBEAT`] |
//! | channel `PREFIX:to:ID` | messages to node ID ([`super::wire`]) | — | any node |

use std::time::Duration;

/// How often a node renews its keys and looks for dead nodes.
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// Lifetime of a node's presence key: three heartbeats, so one late heartbeat (a loaded
/// machine, a slow Redis) does not declare a live node dead.
pub const NODE_TTL: Duration = Duration::from_secs(6);
/// Lifetime of a room's home claim. Longer than [`NODE_TTL`]: a room whose home died can be
/// taken over as soon as the home's presence key is gone (the claim script checks it), so this
/// only bounds what an abandoned claim costs in Redis.
pub const ROOM_TTL: Duration = Duration::from_secs(15);

/// The key and channel names of one cluster (one `cluster-prefix`).
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Names under `prefix`.
    pub fn new(prefix: &str) -> Keys {
        Keys {
            prefix: prefix.to_owned(),
        }
    }

    /// The presence key of node `id`.
    pub fn node(&self, id: &str) -> String {
        format!("{}:node:{id}", self.prefix)
    }

    /// The prefix of presence keys (the claim script appends a node id).
    pub fn node_prefix(&self) -> String {
        format!("{}:node:", self.prefix)
    }

    /// The home claim of room `name`.
    pub fn room(&self, name: &str) -> String {
        format!("{}:room:{name}", self.prefix)
    }

    /// The channel node `id` listens on.
    pub fn channel(&self, id: &str) -> String {
        format!("{}:to:{id}", self.prefix)
    }
}

/// Claims a room for node `ARGV[1]` (or renews its claim), unless a live node holds it:
/// returns the home. A claim whose owner has no presence key (a dead node) is taken over.
/// `KEYS[1]` the room key, `ARGV[2]` the TTL in seconds, `ARGV[3]` the presence key prefix.
pub const CLAIM_ROOM: &str = r"
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] and redis.call('EXISTS', ARGV[3] .. owner) == 1 then
  return owner
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return ARGV[1]
";

/// Drops node `ARGV[1]`'s claim of room `KEYS[1]`, if it still holds it.
pub const RELEASE_ROOM: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_under_the_prefix() {
        let keys = Keys::new("tp");
        assert_eq!(keys.node("a"), "tp:node:a");
        assert_eq!(keys.node_prefix() + "a", keys.node("a"));
        assert_eq!(keys.room("lobby"), "tp:room:lobby");
        assert_eq!(keys.channel("a"), "tp:to:a");
    }

    #[test]
    fn a_dead_home_is_noticed_before_its_claim_expires() {
        assert!(NODE_TTL >= HEARTBEAT * 3);
        assert!(ROOM_TTL > NODE_TTL + HEARTBEAT);
    }
}
