//! A bounded set of recent addresses, oldest forgotten first, with O(1)
//! expected lookups.
//!
//! A node remembers the addresses that answered its pings lately, so a
//! state transfer to one of them goes out at once instead of after a
//! verification round trip. Every answered probe asks whether its sender is
//! already remembered; a linear search of a few thousand addresses made that
//! question cost more than the rest of the probe round together once a table
//! passed a few thousand members. Here a hash table of positions sits beside
//! the queue of addresses, so the question costs a few probes whatever the
//! count.
//!
//! The table is open addressing with linear probing over a power-of-two
//! number of slots, at most three quarters full, keyed by the address's
//! hash mixed with a per-node secret: members' addresses come from gossip,
//! which outsiders can feed, and a fixed hash would let them choose
//! addresses that share one run of slots. Each slot holds the insertion
//! number of an address (31 bits, wrapping, with the top bit marking the
//! slot used); the address's place in the queue is that number less the
//! number of the queue's front.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::addr::Address;
use crate::digest;

/// Insertion numbers wrap at 2^31; the top bit marks a used slot.
const SEQ_MASK: u32 = 0x7fff_ffff;
const USED: u32 = 0x8000_0000;
/// The fewest slots a table that holds anything has.
const MIN_SLOTS: usize = 16;

#[derive(Debug)]
pub(crate) struct RecentSet<A> {
    queue: VecDeque<A>,
    /// The insertion number of `queue[0]`.
    front: u32,
    /// Empty (0) or `USED | insertion number`.
    slots: Vec<u32>,
    max: usize,
    key: u64,
}

impl<A: Address> RecentSet<A> {
    /// An empty set of at most `max` addresses (at most 2^30); `key` is a
    /// secret of this node's for the hash.
    pub fn new(max: usize, key: u64) -> Self {
        RecentSet { queue: VecDeque::new(), front: 0, slots: Vec::new(), max: max.min(1 << 30), key }
    }

    /// Addresses remembered.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn contains(&self, addr: &A) -> bool {
        self.find(addr).is_some()
    }

    /// Remember `addr` as the newest, unless it is remembered already (it
    /// keeps its place); past the bound the oldest is forgotten first.
    pub fn insert(&mut self, addr: &A) {
        if self.max == 0 {
            return;
        }
        // One hash for the lookup and the placing: every answered probe
        // comes here.
        let keyed = self.keyed(addr);
        if self.find_keyed(keyed, addr).is_some() {
            return;
        }
        if self.queue.len() >= self.max {
            self.pop_front();
        }
        if (self.queue.len() + 1) * 4 > self.slots.len() * 3 {
            self.grow();
        }
        let seq = self.front.wrapping_add(self.queue.len() as u32) & SEQ_MASK;
        self.queue.push_back(addr.clone());
        self.place(self.home_of(keyed), seq);
    }

    fn pop_front(&mut self) {
        let Some(oldest) = self.queue.front() else { return };
        if let Some(slot) = self.find(oldest) {
            self.vacate(slot);
        }
        self.queue.pop_front();
        self.front = self.front.wrapping_add(1) & SEQ_MASK;
    }

    /// The slot holding `addr`, if it is remembered.
    fn find(&self, addr: &A) -> Option<usize> {
        self.find_keyed(self.keyed(addr), addr)
    }

    /// [`RecentSet::find`] with the address's keyed hash already taken.
    fn find_keyed(&self, keyed: u64, addr: &A) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home_of(keyed);
        // At most three quarters full, so the walk meets an empty slot.
        for _ in 0..self.slots.len() {
            let v = *self.slots.get(i)?;
            if v & USED == 0 {
                return None;
            }
            if self.at(v) == Some(addr) {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
        None
    }

    /// The address a used slot's value names.
    fn at(&self, v: u32) -> Option<&A> {
        let place = (v & SEQ_MASK).wrapping_sub(self.front) & SEQ_MASK;
        self.queue.get(place as usize)
    }

    fn home(&self, addr: &A) -> usize {
        self.home_of(self.keyed(addr))
    }

    /// The address's hash under this node's key.
    fn keyed(&self, addr: &A) -> u64 {
        digest::finalize(digest::addr_hash(addr) ^ self.key)
    }

    /// The home slot of a keyed hash: its top bits (`slots.len()` is a
    /// power of two).
    fn home_of(&self, keyed: u64) -> usize {
        let bits = self.slots.len().trailing_zeros();
        if bits == 0 {
            0
        } else {
            (keyed >> (64 - bits)) as usize
        }
    }

    /// Put `seq` in the first free slot from `i` on.
    fn place(&mut self, mut i: usize, seq: u32) {
        let mask = self.slots.len().wrapping_sub(1);
        for _ in 0..self.slots.len() {
            match self.slots.get_mut(i) {
                Some(s) if *s & USED == 0 => {
                    *s = USED | seq;
                    return;
                }
                Some(_) => i = (i + 1) & mask,
                None => return,
            }
        }
    }

    /// Empty slot `i`, moving later entries of its run back so no lookup
    /// stops short of them (deletion without tombstones).
    fn vacate(&mut self, mut hole: usize) {
        let mask = self.slots.len() - 1;
        if let Some(s) = self.slots.get_mut(hole) {
            *s = 0;
        }
        let mut i = hole;
        for _ in 0..self.slots.len() {
            i = (i + 1) & mask;
            let Some(&v) = self.slots.get(i) else { return };
            if v & USED == 0 {
                return;
            }
            let Some(home) = self.at(v).map(|a| self.home(a)) else { return };
            // The entry at `i` may fill the hole unless its home lies
            // cyclically in (hole, i].
            let stays = if hole <= i { hole < home && home <= i } else { hole < home || home <= i };
            if !stays {
                if let Some(s) = self.slots.get_mut(hole) {
                    *s = v;
                }
                if let Some(s) = self.slots.get_mut(i) {
                    *s = 0;
                }
                hole = i;
            }
        }
    }

    /// Double the table (or make its first) and place every address again.
    fn grow(&mut self) {
        let want = (self.slots.len() * 2).max(MIN_SLOTS);
        self.slots.clear();
        self.slots.resize(want, 0);
        for place in 0..self.queue.len() {
            let Some(home) = self.queue.get(place).map(|a| self.home(a)) else { break };
            let seq = self.front.wrapping_add(place as u32) & SEQ_MASK;
            self.place(home, seq);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::NodeId;

    /// The plain queue this set replaces, as the model.
    struct Model {
        queue: VecDeque<NodeId>,
        max: usize,
    }

    impl Model {
        fn insert(&mut self, a: NodeId) {
            if !self.queue.contains(&a) {
                if self.queue.len() >= self.max {
                    self.queue.pop_front();
                }
                self.queue.push_back(a);
            }
        }
    }

    fn lcg(x: &mut u64) -> u32 {
        *x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (*x >> 33) as u32
    }

    #[test]
    fn agrees_with_a_plain_queue_through_inserts_and_evictions() {
        for (max, range) in [(1usize, 4u32), (7, 20), (64, 100), (300, 1000), (4096, 20_000)] {
            let mut set = RecentSet::new(max, 0x1234_5678);
            let mut model = Model { queue: VecDeque::new(), max };
            let mut x = max as u64;
            for _ in 0..20_000 {
                let a = NodeId(lcg(&mut x) % range);
                assert_eq!(set.contains(&a), model.queue.contains(&a), "max {max}, {a}");
                set.insert(&a);
                model.insert(a);
                assert_eq!(set.len(), model.queue.len());
            }
            for id in 0..range {
                assert_eq!(set.contains(&NodeId(id)), model.queue.contains(&NodeId(id)), "max {max}, n{id}");
            }
            assert!(set.slots.len() <= (2 * max).next_power_of_two().max(MIN_SLOTS), "max {max}");
        }
    }

    #[test]
    fn insertion_numbers_wrap_without_losing_anyone() {
        let mut set = RecentSet::new(8, 7);
        set.front = SEQ_MASK - 3;
        for id in 0..40 {
            set.insert(&NodeId(id));
            for back in 0..8.min(id + 1) {
                assert!(set.contains(&NodeId(id - back)), "n{} after n{id}", id - back);
            }
            if id >= 8 {
                assert!(!set.contains(&NodeId(id - 8)));
            }
        }
    }

    #[test]
    fn a_set_of_no_addresses_remembers_nothing() {
        let mut set = RecentSet::new(0, 1);
        set.insert(&NodeId(1));
        assert!(!set.contains(&NodeId(1)));
        assert_eq!(set.len(), 0);
    }
}
