//! The probe order and the dense rosters random picks draw from.
//!
//! SWIM §4.3: members are probed in a shuffled round-robin order, reshuffled
//! each pass, and a member that joins goes to a random place among those not
//! yet probed this pass, so every live member is probed by every other within
//! a bounded number of periods. The order is an array of the live members
//! other than this node, which makes it also the roster for uniform random
//! picks (gossip targets, ping-req helpers, exchange partners) in O(1)
//! each; a second array holds the members held dead, for the exchanges that
//! must reach them too.
//!
//! Every node holds these for every member, so they cost 4 bytes a member
//! and half a byte of marks a handle, with no array of positions: a member that
//! leaves an array stays in it as a stale entry, skipped by probes and
//! picks, until stale entries are more than an eighth of the array, when it
//! is compacted in order (O(1) amortised per change; a pick is retried
//! with probability under 1/8). A member that comes back before that takes
//! up its old entry again (the one place the order is not reshuffled: it
//! was a random place when it was made).

use alloc::vec::Vec;

use crate::member::grow_gently;

/// Where a member belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// Alive or Suspect, and not this node: probed and picked.
    Live,
    /// Dead: picked only by exchanges that want tombstones.
    Dead,
    /// Left, reaped, or this node itself.
    Neither,
}

/// The place bits of a mark.
const PLACE: u8 = 0b11;
const LIVE: u8 = 1;
const DEAD: u8 = 2;
/// The handle has an entry (perhaps stale) in `live`.
const IN_LIVE: u8 = 1 << 2;
/// The handle has an entry (perhaps stale) in `dead`.
const IN_DEAD: u8 = 1 << 3;

#[derive(Debug, Default)]
pub(crate) struct ProbeOrder {
    /// Live members other than this node, and stale entries of members that
    /// left since the last compaction; `[..cursor]` were visited this pass.
    live: Vec<u32>,
    cursor: usize,
    /// Entries of `live` that are not stale.
    live_count: usize,
    dead: Vec<u32>,
    dead_count: usize,
    /// By handle: its place (`LIVE`, `DEAD` or 0) and its `IN_*` bits.
    marks: Marks,
}

/// Four bits a handle, two handles a byte: every node holds a mark for
/// every member, so half a byte a member is 12.5 MB of a 5,000-node
/// simulation.
#[derive(Debug, Default)]
struct Marks(Vec<u8>);

impl Marks {
    /// The mark of `h` (0 past the end).
    fn get(&self, h: usize) -> u8 {
        self.0.get(h / 2).map_or(0, |b| (b >> (4 * (h % 2))) & 0x0f)
    }

    /// Set the mark of `h` (at most four bits), growing the array gently.
    fn set(&mut self, h: usize, mark: u8) {
        if self.0.len() <= h / 2 {
            grow_gently(&mut self.0);
            self.0.resize(h / 2 + 1, 0);
        }
        if let Some(b) = self.0.get_mut(h / 2) {
            let shift = 4 * (h % 2);
            *b = (*b & !(0x0f << shift)) | ((mark & 0x0f) << shift);
        }
    }

    /// Handles the array has room for.
    #[cfg(test)]
    fn handles(&self) -> usize {
        2 * self.0.len()
    }
}

impl ProbeOrder {
    pub fn new() -> Self {
        ProbeOrder::default()
    }

    /// Live members other than this node.
    pub fn live_len(&self) -> usize {
        self.live_count
    }

    /// Members held dead.
    pub fn dead_len(&self) -> usize {
        self.dead_count
    }

    /// Entries [`ProbeOrder::nth`] draws from, stale ones included: a
    /// uniform index below this, retried while `nth` gives `None`, is a
    /// uniform pick.
    pub fn roster_len(&self, with_dead: bool) -> usize {
        self.live.len() + if with_dead { self.dead.len() } else { 0 }
    }

    /// The `i`-th entry of the live members then the dead ones (for uniform
    /// picks); `None` for a stale entry.
    pub fn nth(&self, i: usize, with_dead: bool) -> Option<u32> {
        match self.live.get(i) {
            Some(&h) => (self.code(h) == LIVE).then_some(h),
            None if with_dead => self.dead.get(i - self.live.len()).copied().filter(|&h| self.code(h) == DEAD),
            None => None,
        }
    }

    pub fn place_of(&self, handle: u32) -> Place {
        match self.code(handle) {
            LIVE => Place::Live,
            DEAD => Place::Dead,
            _ => Place::Neither,
        }
    }

    /// Move a member to `place`. A member joining the live set goes to the
    /// random spot `random` (uniform in `u32`) among those not yet probed,
    /// unless it still has its old entry there.
    pub fn set(&mut self, handle: u32, place: Place, random: u32) {
        if self.place_of(handle) == place {
            return;
        }
        let h = handle as usize;
        let mut mark = self.marks.get(h);
        match mark & PLACE {
            LIVE => self.live_count -= 1,
            DEAD => self.dead_count -= 1,
            _ => {}
        }
        mark &= !PLACE;
        match place {
            Place::Neither => {}
            Place::Dead => {
                self.dead_count += 1;
                if mark & IN_DEAD == 0 {
                    grow_gently(&mut self.dead);
                    self.dead.push(handle);
                }
                mark |= DEAD | IN_DEAD;
            }
            Place::Live => {
                self.live_count += 1;
                if mark & IN_LIVE == 0 {
                    grow_gently(&mut self.live);
                    self.live.push(handle);
                    let last = self.live.len() - 1;
                    let unprobed = (self.live.len() - self.cursor) as u64;
                    let j = self.cursor + ((u64::from(random) * unprobed) >> 32) as usize;
                    self.live.swap(j, last);
                }
                mark |= LIVE | IN_LIVE;
            }
        }
        self.marks.set(h, mark);
        if 8 * (self.live.len() - self.live_count) > self.live.len() {
            self.compact_live();
        }
        if 8 * (self.dead.len() - self.dead_count) > self.dead.len() {
            self.compact_dead();
        }
    }

    /// The next member to probe, reshuffling (with `random_below`) when a
    /// pass is complete; `None` when there is nobody to probe.
    pub fn next(&mut self, mut random_below: impl FnMut(u32) -> u32) -> Option<u32> {
        loop {
            if self.cursor >= self.live.len() {
                self.compact_live();
                for i in (1..self.live.len()).rev() {
                    let j = random_below(i as u32 + 1) as usize;
                    self.live.swap(i, j);
                }
                self.cursor = 0;
            }
            let h = *self.live.get(self.cursor)?;
            self.cursor += 1;
            if self.code(h) == LIVE {
                return Some(h);
            }
        }
    }

    fn code(&self, handle: u32) -> u8 {
        self.marks.get(handle as usize) & PLACE
    }

    /// Drop the stale entries of `live`, keeping the order of the rest and
    /// the probed prefix.
    fn compact_live(&mut self) {
        let (mut kept, mut cursor) = (0, 0);
        for i in 0..self.live.len() {
            let Some(&h) = self.live.get(i) else { break };
            if self.code(h) == LIVE {
                if let Some(slot) = self.live.get_mut(kept) {
                    *slot = h;
                }
                kept += 1;
                cursor += usize::from(i < self.cursor);
            } else {
                let h = h as usize;
                self.marks.set(h, self.marks.get(h) & !IN_LIVE);
            }
        }
        self.live.truncate(kept);
        self.cursor = cursor;
        shrink_after_burst(&mut self.live);
    }

    fn compact_dead(&mut self) {
        let marks = &mut self.marks;
        self.dead.retain(|&h| {
            let (h, m) = (h as usize, marks.get(h as usize));
            let keep = m & PLACE == DEAD;
            if !keep {
                marks.set(h, m & !IN_DEAD);
            }
            keep
        });
        shrink_after_burst(&mut self.dead);
    }
}

/// An array a burst grew gives memory back once it is a quarter full.
fn shrink_after_burst(v: &mut Vec<u32>) {
    if v.capacity() > 64 && 4 * v.len() < v.capacity() {
        v.shrink_to(2 * v.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(x: &mut u64) -> u32 {
        *x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (*x >> 32) as u32
    }

    /// Every member in a place has one entry in its array, stale entries
    /// are marked and at most an eighth of each array.
    fn consistent(o: &ProbeOrder) {
        let mut seen = alloc::collections::BTreeSet::new();
        for &h in &o.live {
            assert!(seen.insert(h), "{h} twice in the live array");
            assert!(o.marks.get(h as usize) & IN_LIVE != 0);
        }
        let mut seen_dead = alloc::collections::BTreeSet::new();
        for &h in &o.dead {
            assert!(seen_dead.insert(h), "{h} twice in the dead array");
            assert!(o.marks.get(h as usize) & IN_DEAD != 0);
        }
        let live = o.live.iter().filter(|&&h| o.place_of(h) == Place::Live).count();
        let dead = o.dead.iter().filter(|&&h| o.place_of(h) == Place::Dead).count();
        assert_eq!((live, dead), (o.live_len(), o.dead_len()));
        let placed = (0..o.marks.handles() as u32).filter(|&h| o.place_of(h) == Place::Live).count();
        assert_eq!(placed, live, "every live member has its entry");
        assert!(8 * (o.live.len() - live) <= o.live.len(), "stale entries within an eighth");
        assert!(8 * (o.dead.len() - dead) <= o.dead.len());
        assert!(o.cursor <= o.live.len());
    }

    #[test]
    fn every_live_member_is_probed_once_per_pass_whatever_changes() {
        let mut o = ProbeOrder::new();
        let mut x = 1u64;
        for h in 0..100 {
            o.set(h, Place::Live, lcg(&mut x));
        }
        // A full pass visits each live member exactly once, even with deaths
        // and returns half-way.
        for _pass in 0..20 {
            let mut seen = alloc::collections::BTreeSet::new();
            let mut removed = alloc::collections::BTreeSet::new();
            for step in 0..100 {
                if step == 50 {
                    for _ in 0..10 {
                        let h = lcg(&mut x) % 100;
                        o.set(h, Place::Dead, 0);
                        removed.insert(h);
                    }
                }
                let Some(h) = o.next(|b| ((u64::from(lcg(&mut x)) * u64::from(b)) >> 32) as u32) else { break };
                consistent(&o);
                if o.cursor == 1 && step > 0 {
                    break; // the pass ended early: fewer live members
                }
                assert!(seen.insert(h), "member {h} probed twice in one pass");
            }
            for h in removed {
                o.set(h, Place::Live, lcg(&mut x));
            }
            consistent(&o);
        }
        assert_eq!(o.live_len(), 100);
    }

    /// `n` live members placed with the stream `x`, and a `random_below` of its own.
    fn live_order(n: u32, x: &mut u64) -> (ProbeOrder, impl FnMut(u32) -> u32) {
        let mut o = ProbeOrder::new();
        for h in 0..n {
            o.set(h, Place::Live, lcg(x));
        }
        let mut y = *x ^ 0x5555;
        (o, move |b: u32| ((u64::from(lcg(&mut y)) * u64::from(b)) >> 32) as u32)
    }

    #[test]
    fn a_member_added_mid_pass_is_probed_in_that_pass() {
        let mut x = 5u64;
        let (mut o, mut rb) = live_order(10, &mut x);
        for _ in 0..5 {
            o.next(&mut rb);
        }
        o.set(42, Place::Live, lcg(&mut x));
        let rest: Vec<u32> = (0..6).filter_map(|_| o.next(&mut rb)).collect();
        assert!(rest.contains(&42), "{rest:?}");
        o.set(42, Place::Neither, 0);
        o.set(3, Place::Dead, 0);
        consistent(&o);
        assert_eq!((o.live_len(), o.dead_len()), (9, 1));
        assert_eq!(o.roster_len(true), 10, "the two stale entries were compacted away");
        assert_eq!(o.nth(9, true), Some(3));
        assert_eq!(o.nth(9, false), None);
    }

    #[test]
    fn the_order_costs_four_bytes_a_member_and_a_byte_a_handle_whatever_churns() {
        let mut x = 11u64;
        let (mut o, mut rb) = live_order(5_000, &mut x);
        for step in 0..50_000 {
            let h = lcg(&mut x) % 5_000;
            let place = match lcg(&mut x) % 3 {
                0 => Place::Live,
                1 => Place::Dead,
                _ => Place::Neither,
            };
            o.set(h, place, lcg(&mut x));
            if step % 7 == 0 {
                o.next(&mut rb);
            }
            if step % 997 == 0 {
                consistent(&o);
            }
            // No position array: the rosters hold their members and stale
            // entries that are at most an eighth of them.
            assert!(7 * o.live.len() <= 8 * o.live_len());
            assert!(7 * o.dead.len() <= 8 * o.dead_len());
        }
        consistent(&o);
        assert_eq!(o.marks.0.len(), 2_500, "half a byte a handle");
        // Picks over the roster land on members in their place only.
        for i in 0..o.roster_len(true) {
            if let Some(h) = o.nth(i, true) {
                assert_ne!(o.place_of(h), Place::Neither);
            }
        }
    }

    #[test]
    fn rosters_a_burst_grew_give_memory_back_when_it_leaves() {
        let mut x = 13u64;
        let (mut o, mut rb) = live_order(5_000, &mut x);
        for h in 0..5_000 {
            o.set(h, Place::Dead, 0);
        }
        assert_eq!((o.live_len(), o.dead_len()), (0, 5_000));
        assert!(o.live.capacity() <= 64, "live roster holds {} after everyone died", o.live.capacity());
        for h in 0..5_000 {
            o.set(h, Place::Neither, 0);
        }
        assert!(o.dead.capacity() <= 64, "dead roster holds {} after the reaping", o.dead.capacity());
        assert_eq!(o.next(&mut rb), None);
        consistent(&o);
    }
}
