//! The probe order and the dense rosters random picks draw from.
//!
//! SWIM §4.3: members are probed in a shuffled round-robin order, reshuffled
//! each pass, and a member that joins goes to a random place among those not
//! yet probed this pass, so every live member is probed by every other within
//! a bounded number of periods. The order is an exact-size array of the live
//! members other than this node, which makes it also the roster for uniform
//! random picks (gossip targets, ping-req helpers, exchange partners) in O(1)
//! each; a second array holds the members held dead, for the exchanges that
//! must reach them too. A position array indexed by handle makes every
//! change O(1).

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

/// A handle in neither array.
const NONE: u32 = u32::MAX;
/// Set in a position that indexes the dead array.
const IN_DEAD: u32 = 1 << 31;

#[derive(Debug, Default)]
pub(crate) struct ProbeOrder {
    /// Live members other than this node; `[..cursor]` were probed this pass.
    live: Vec<u32>,
    cursor: usize,
    dead: Vec<u32>,
    /// By handle: its index in `live`, or `IN_DEAD | index` in `dead`, or `NONE`.
    pos: Vec<u32>,
}

impl ProbeOrder {
    pub fn new() -> Self {
        ProbeOrder::default()
    }

    /// Live members other than this node.
    pub fn live_len(&self) -> usize {
        self.live.len()
    }

    /// Members held dead.
    pub fn dead_len(&self) -> usize {
        self.dead.len()
    }

    /// The `i`-th of the live members then the dead ones (for uniform picks).
    pub fn nth(&self, i: usize, with_dead: bool) -> Option<u32> {
        match self.live.get(i) {
            Some(&h) => Some(h),
            None if with_dead => self.dead.get(i - self.live.len()).copied(),
            None => None,
        }
    }

    pub fn place_of(&self, handle: u32) -> Place {
        match self.pos.get(handle as usize).copied().unwrap_or(NONE) {
            NONE => Place::Neither,
            p if p & IN_DEAD != 0 => Place::Dead,
            _ => Place::Live,
        }
    }

    /// Move a member to `place`. A member joining the live set goes to the
    /// random spot `random` (uniform in `u32`) among those not yet probed.
    pub fn set(&mut self, handle: u32, place: Place, random: u32) {
        if self.place_of(handle) == place {
            return;
        }
        self.take_out(handle);
        let h = handle as usize;
        if self.pos.len() <= h {
            grow_gently(&mut self.pos);
            self.pos.resize(h + 1, NONE);
        }
        match place {
            Place::Neither => {}
            Place::Dead => {
                self.dead.push(handle);
                self.set_pos(handle, IN_DEAD | (self.dead.len() - 1) as u32);
            }
            Place::Live => {
                grow_gently(&mut self.live);
                self.live.push(handle);
                let last = self.live.len() - 1;
                self.set_pos(handle, last as u32);
                let unprobed = (self.live.len() - self.cursor) as u64;
                let j = self.cursor + ((u64::from(random) * unprobed) >> 32) as usize;
                self.swap_live(j, last);
            }
        }
    }

    /// The next member to probe, reshuffling (with `random_below`) when a
    /// pass is complete; `None` when there is nobody to probe.
    pub fn next(&mut self, mut random_below: impl FnMut(u32) -> u32) -> Option<u32> {
        if self.cursor >= self.live.len() {
            for i in (1..self.live.len()).rev() {
                let j = random_below(i as u32 + 1) as usize;
                self.live.swap(i, j);
            }
            for i in 0..self.live.len() {
                if let Some(&h) = self.live.get(i) {
                    self.set_pos(h, i as u32);
                }
            }
            self.cursor = 0;
        }
        let h = *self.live.get(self.cursor)?;
        self.cursor += 1;
        Some(h)
    }

    fn take_out(&mut self, handle: u32) {
        let p = match self.pos.get(handle as usize).copied() {
            Some(p) if p != NONE => p,
            _ => return,
        };
        self.set_pos(handle, NONE);
        if p & IN_DEAD != 0 {
            let i = (p & !IN_DEAD) as usize;
            self.dead.swap_remove(i);
            if let Some(&moved) = self.dead.get(i) {
                self.set_pos(moved, IN_DEAD | i as u32);
            }
            return;
        }
        let mut i = p as usize;
        // Keep the probed prefix contiguous: a removal there pulls the last
        // probed member into the hole, and the hole moves to the boundary.
        if i < self.cursor {
            let boundary = self.cursor - 1;
            self.swap_live(i, boundary);
            self.cursor = boundary;
            i = boundary;
        }
        let last = self.live.len() - 1;
        self.swap_live(i, last);
        self.live.pop();
        self.set_pos(handle, NONE);
    }

    fn swap_live(&mut self, i: usize, j: usize) {
        if i == j {
            return;
        }
        self.live.swap(i, j);
        for k in [i, j] {
            if let Some(&h) = self.live.get(k) {
                self.set_pos(h, k as u32);
            }
        }
    }

    fn set_pos(&mut self, handle: u32, p: u32) {
        if let Some(slot) = self.pos.get_mut(handle as usize) {
            *slot = p;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(x: &mut u64) -> u32 {
        *x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (*x >> 32) as u32
    }

    fn consistent(o: &ProbeOrder) {
        for (i, &h) in o.live.iter().enumerate() {
            assert_eq!(o.pos[h as usize], i as u32);
        }
        for (i, &h) in o.dead.iter().enumerate() {
            assert_eq!(o.pos[h as usize], IN_DEAD | i as u32);
        }
        let placed = o.pos.iter().filter(|&&p| p != NONE).count();
        assert_eq!(placed, o.live.len() + o.dead.len());
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

    #[test]
    fn a_member_added_mid_pass_is_probed_in_that_pass() {
        let mut o = ProbeOrder::new();
        let mut x = 5u64;
        for h in 0..10 {
            o.set(h, Place::Live, lcg(&mut x));
        }
        let mut rb = |b: u32| ((u64::from(lcg(&mut 9u64)) * u64::from(b)) >> 32) as u32;
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
        assert_eq!(o.nth(9, true), Some(3));
        assert_eq!(o.nth(9, false), None);
    }
}
