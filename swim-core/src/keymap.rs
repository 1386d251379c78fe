//! A map from 32-bit keys to 32-bit values with O(1) expected lookups and
//! no allocation while it holds a few: the side indexes of the exchanges'
//! queues (a held transfer by its ping's sequence, a requester's waiting
//! answer by its address) fill and empty one entry at a time in steady
//! state, and a `BTreeMap` there allocated a node each time it went from
//! empty to one.
//!
//! Open addressing with linear probing over a power-of-two number of slots
//! (the first four inline), at most three quarters full, deletion by
//! backward shift (no tombstones). Homes come from the key mixed with a
//! per-node secret: keys are sequences and address hashes an outsider may
//! choose or see, and predictable homes would let it crowd one run. The
//! table grows when full and gives its memory back once emptied.

use smallvec::SmallVec;

use crate::digest::finalize;

/// Slots held inline; the table never has fewer.
const MIN_SLOTS: usize = 4;

#[derive(Debug)]
pub(crate) struct KeyMap {
    /// `(key, value)`, or `None`; a power-of-two count.
    slots: SmallVec<[Option<(u32, u32)>; MIN_SLOTS]>,
    len: usize,
    secret: u64,
}

impl KeyMap {
    pub fn new(secret: u64) -> Self {
        KeyMap { slots: SmallVec::from_buf([None; MIN_SLOTS]), len: 0, secret }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn get(&self, key: u32) -> Option<u32> {
        self.find(key).and_then(|i| self.slots.get(i).copied().flatten()).map(|(_, v)| v)
    }

    /// Set `key` to `value`; the value it had, if any.
    pub fn insert(&mut self, key: u32, value: u32) -> Option<u32> {
        if let Some(i) = self.find(key) {
            let slot = self.slots.get_mut(i)?;
            return slot.replace((key, value)).map(|(_, v)| v);
        }
        if 4 * (self.len + 1) > 3 * self.slots.len() {
            self.resize(self.slots.len() * 2);
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(key, mask);
        while self.slots.get(i).is_some_and(Option::is_some) {
            i = (i + 1) & mask;
        }
        if let Some(slot) = self.slots.get_mut(i) {
            *slot = Some((key, value));
            self.len += 1;
        }
        None
    }

    /// Take `key` out; its value, if it had one.
    pub fn remove(&mut self, key: u32) -> Option<u32> {
        let hole = self.find(key)?;
        let (_, value) = self.slots.get_mut(hole)?.take()?;
        self.len -= 1;
        self.close(hole);
        if self.len == 0 && self.slots.spilled() {
            self.slots = SmallVec::from_buf([None; MIN_SLOTS]);
        }
        Some(value)
    }

    fn home(&self, key: u32, mask: usize) -> usize {
        (finalize(u64::from(key) ^ self.secret) >> 32) as usize & mask
    }

    fn find(&self, key: u32) -> Option<usize> {
        let mask = self.slots.len() - 1;
        let mut i = self.home(key, mask);
        // At most three quarters full: an empty slot ends every walk.
        loop {
            match self.slots.get(i).copied().flatten() {
                Some((k, _)) if k == key => return Some(i),
                Some(_) => i = (i + 1) & mask,
                None => return None,
            }
        }
    }

    /// Backward-shift deletion: pull later entries of the run into `hole`
    /// while that is no further from their home than where they are.
    fn close(&mut self, mut hole: usize) {
        let mask = self.slots.len() - 1;
        let mut i = (hole + 1) & mask;
        while let Some((k, v)) = self.slots.get(i).copied().flatten() {
            let home = self.home(k, mask);
            if hole.wrapping_sub(home) & mask <= i.wrapping_sub(home) & mask {
                if let Some(slot) = self.slots.get_mut(hole) {
                    *slot = Some((k, v));
                }
                if let Some(slot) = self.slots.get_mut(i) {
                    *slot = None;
                }
                hole = i;
            }
            i = (i + 1) & mask;
        }
    }

    fn resize(&mut self, size: usize) {
        let old = core::mem::replace(&mut self.slots, SmallVec::from_elem(None, size.max(MIN_SLOTS)));
        self.len = 0;
        for (k, v) in old.into_iter().flatten() {
            self.insert(k, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;

    #[test]
    fn agrees_with_a_btree_map_through_inserts_and_removals() {
        let mut map = KeyMap::new(0x1234);
        let mut model = BTreeMap::new();
        let mut x = 7u64;
        for step in 0..20_000u32 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            // Few distinct keys, so runs collide, wrap and empty often, and
            // the table grows and shrinks back inline.
            let key = (x >> 57) as u32;
            if x & 3 == 0 || (step / 2_000) % 2 == 1 && x & 1 == 0 {
                assert_eq!(map.remove(key), model.remove(&key), "step {step}");
            } else {
                assert_eq!(map.insert(key, step), model.insert(key, step), "step {step}");
            }
            assert_eq!(map.len(), model.len());
            if step % 97 == 0 {
                for (&k, &v) in &model {
                    assert_eq!(map.get(k), Some(v));
                }
            }
        }
    }

    #[test]
    fn a_few_entries_stay_inline_and_an_emptied_table_goes_back_inline() {
        let mut map = KeyMap::new(9);
        for k in 0..3 {
            map.insert(k, k);
        }
        assert!(!map.slots.spilled(), "three entries, no allocation");
        for k in 0..1_000 {
            map.insert(k, k);
        }
        assert!(map.slots.spilled());
        for k in 0..1_000 {
            assert_eq!(map.remove(k), Some(k));
        }
        assert!(!map.slots.spilled());
        assert_eq!(map.get(5), None);
    }
}
