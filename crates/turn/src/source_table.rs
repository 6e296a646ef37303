//! A fixed-size, lock-free table of per-source state, shared by every worker.
//!
//! A *source* is an IPv4 address, or an IPv6 /64 (one host usually holds a whole /64, so
//! counting single IPv6 addresses would hand it 2^64 allowances); an IPv4 client seen through
//! a dual-stack socket (`::ffff:a.b.c.d`) is its IPv4 address.
//!
//! Each slot is one `AtomicU64`: a 16-bit tag naming the source that owns it and 48 bits of
//! state that the user of the table defines (a failure count and its window, a token-bucket
//! deadline). A source lives in exactly one slot, chosen by a **keyed** hash (SipHash-1-3
//! under a 128-bit key the caller draws at random): without the key nobody can pick sources
//! that collide, so an attacker cannot aim its own entries at a victim's slot. Updates are a
//! compare-and-swap loop, so workers never lock and a count is never lost.
//!
//! When a source finds its slot owned by another source, it takes the slot over (its state
//! starts afresh): the table forgets, it never mixes two sources' state. Memory is fixed at
//! creation (8 bytes a slot) and nothing is allocated per request.

use std::hash::Hasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use siphasher::sip::SipHasher13;

/// Bits of state a slot holds for its source.
pub const STATE_BITS: u32 = 48;
/// The largest state value.
pub const STATE_MAX: u64 = (1 << STATE_BITS) - 1;
/// Slots at most: 16 Mi slots (128 MiB), far more than any configuration needs.
const MAX_SLOTS: usize = 1 << 24;

/// Per-source state in a fixed number of atomic slots.
#[derive(Debug)]
pub struct SourceTable {
    slots: Box<[AtomicU64]>,
    /// Slots that have been taken at least once (never decreases).
    occupied: AtomicUsize,
    key: (u64, u64),
}

impl SourceTable {
    /// A table of at least `capacity` slots (rounded up to a power of two, at most 2^24);
    /// 0 makes a table that keeps nothing. `key` keys the hash that places sources.
    pub fn new(capacity: usize, key: [u8; 16]) -> SourceTable {
        let len = if capacity == 0 {
            0
        } else {
            capacity.min(MAX_SLOTS).next_power_of_two()
        };
        let mut k0 = [0u8; 8];
        let mut k1 = [0u8; 8];
        k0.copy_from_slice(&key[..8]);
        k1.copy_from_slice(&key[8..]);
        SourceTable {
            slots: (0..len).map(|_| AtomicU64::new(0)).collect(),
            occupied: AtomicUsize::new(0),
            key: (u64::from_le_bytes(k0), u64::from_le_bytes(k1)),
        }
    }

    /// The source `ip` counts as: the address itself for IPv4, its /64 for IPv6.
    pub fn source(ip: IpAddr) -> IpAddr {
        match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(prefix.into())
            }
            v4 => v4,
        }
    }

    /// The number of slots (0: the table keeps nothing).
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Slots that have held a source so far; never more than [`SourceTable::capacity`].
    pub fn occupied(&self) -> usize {
        self.occupied.load(Ordering::Relaxed)
    }

    /// The state `ip`'s source holds, if it owns its slot.
    pub fn get(&self, ip: IpAddr) -> Option<u64> {
        let (slot, tag) = self.locate(ip)?;
        owned(slot.load(Ordering::Acquire), tag)
    }

    /// Updates `ip`'s state atomically: `change` gets the current state (`None` when the
    /// source owns no slot yet, or its slot belongs to another source) and returns the new
    /// state (at most [`STATE_MAX`]), or `None` to leave the slot as it is. It may run more
    /// than once when another worker updates the slot at the same time. Returns what
    /// `change` decided the last time it ran; `None` when the table keeps nothing.
    pub fn update(
        &self,
        ip: IpAddr,
        mut change: impl FnMut(Option<u64>) -> Option<u64>,
    ) -> Option<u64> {
        let (slot, tag) = self.locate(ip)?;
        let mut current = slot.load(Ordering::Acquire);
        loop {
            let new_state = change(owned(current, tag))?;
            let new = (u64::from(tag) << STATE_BITS) | (new_state & STATE_MAX);
            match slot.compare_exchange_weak(current, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(previous) => {
                    if previous == 0 {
                        self.occupied.fetch_add(1, Ordering::Relaxed);
                    }
                    return Some(new_state & STATE_MAX);
                }
                Err(actual) => current = actual,
            }
        }
    }

    /// The slot of `ip`'s source and the tag that marks it as the owner.
    fn locate(&self, ip: IpAddr) -> Option<(&AtomicU64, u16)> {
        let (index, tag) = self.place(ip)?;
        Some((&self.slots[index], tag))
    }

    /// The index of `ip`'s slot and its owner tag (never 0, so that an empty slot, all
    /// zeros, belongs to nobody).
    fn place(&self, ip: IpAddr) -> Option<(usize, u16)> {
        if self.slots.is_empty() {
            return None;
        }
        let mut key = [0u8; 17];
        match Self::source(ip) {
            IpAddr::V4(v4) => {
                key[0] = 4;
                key[1..5].copy_from_slice(&v4.octets());
            }
            IpAddr::V6(v6) => {
                key[0] = 6;
                key[1..].copy_from_slice(&v6.octets());
            }
        }
        let mut hasher = SipHasher13::new_with_keys(self.key.0, self.key.1);
        hasher.write(&key);
        let hash = hasher.finish();
        // The low bits pick the slot, the high 16 bits name the owner.
        let index = usize::try_from(hash).unwrap_or(usize::MAX) & (self.slots.len() - 1);
        let tag = u16::try_from(hash >> STATE_BITS).unwrap_or(u16::MAX).max(1);
        Some((index, tag))
    }
}

/// The state in `slot` when `tag` owns it.
fn owned(slot: u64, tag: u16) -> Option<u64> {
    (slot >> STATE_BITS == u64::from(tag)).then_some(slot & STATE_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn keeps_state_per_source_and_ipv6_per_64() {
        let table = SourceTable::new(1000, [1; 16]);
        assert_eq!(table.capacity(), 1024);
        assert_eq!(table.get(ip("192.0.2.1")), None);
        assert_eq!(
            table.update(ip("192.0.2.1"), |s| Some(s.unwrap_or(0) + 5)),
            Some(5)
        );
        assert_eq!(
            table.update(ip("192.0.2.1"), |s| Some(s.unwrap_or(0) + 5)),
            Some(10)
        );
        assert_eq!(table.get(ip("::ffff:192.0.2.1")), Some(10));
        table.update(ip("2001:db8:1:2::1"), |_| Some(7));
        assert_eq!(table.get(ip("2001:db8:1:2:ffff::9")), Some(7));
        assert_eq!(table.get(ip("2001:db8:1:3::1")), None);
        assert_eq!(table.update(ip("192.0.2.9"), |_| None), None, "left alone");
        assert_eq!(table.occupied(), 2);
    }

    #[test]
    fn bounded_and_never_mixes_sources() {
        let table = SourceTable::new(16, [2; 16]);
        for i in 0..=255u8 {
            let source = IpAddr::from([10, 0, 1, i]);
            // A source never sees another one's state: it starts from None or its own.
            table.update(source, |s| {
                assert!(s.is_none() || s == Some(u64::from(i)));
                Some(u64::from(i))
            });
            assert_eq!(table.get(source), Some(u64::from(i)));
            assert!(table.occupied() <= 16);
        }
    }

    #[test]
    fn placement_depends_on_the_key() {
        let a = SourceTable::new(1 << 16, [3; 16]);
        let b = SourceTable::new(1 << 16, [4; 16]);
        let same = (0..64u8)
            .map(|i| IpAddr::from([192, 0, 2, i]))
            .filter(|&source| a.place(source) == b.place(source))
            .count();
        assert!(same < 4, "{same} of 64 sources placed alike under two keys");
    }

    #[test]
    fn zero_capacity_keeps_nothing() {
        let table = SourceTable::new(0, [0; 16]);
        assert_eq!(table.update(ip("192.0.2.1"), |_| Some(1)), None);
        assert_eq!(table.get(ip("192.0.2.1")), None);
    }

    // Updates from several threads are never lost (compare-and-swap).
    #[test]
    fn concurrent_updates_all_count() {
        let table = Arc::new(SourceTable::new(64, [5; 16]));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let table = table.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        table.update(ip("192.0.2.1"), |s| Some(s.unwrap_or(0) + 1));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(table.get(ip("192.0.2.1")), Some(40_000));
    }
}
