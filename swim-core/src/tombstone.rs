//! Tombstones: members held Dead or Left until `tombstone_timeout` has
//! passed, so a stale Alive about them cannot bring them back, then
//! forgotten (reaped).
//!
//! One entry per gone member, by handle, with the due times in order: a
//! member that comes back (a higher incarnation) or is declared gone again
//! moves or drops its one entry, so nothing stale waits to reach the front,
//! and the count never exceeds the members held gone.

use alloc::collections::{BTreeMap, BTreeSet};

use crate::time::Instant;

#[derive(Debug, Default)]
pub(crate) struct Tombstones {
    due_of: BTreeMap<u32, Instant>,
    order: BTreeSet<(Instant, u32)>,
}

impl Tombstones {
    pub fn new() -> Self {
        Tombstones::default()
    }

    pub fn len(&self) -> usize {
        self.due_of.len()
    }

    /// Reap `handle` at `due` (replacing an earlier schedule).
    pub fn schedule(&mut self, handle: u32, due: Instant) {
        self.cancel(handle);
        self.due_of.insert(handle, due);
        self.order.insert((due, handle));
    }

    /// The member is live again, or was reaped: forget its tombstone.
    pub fn cancel(&mut self, handle: u32) {
        if let Some(due) = self.due_of.remove(&handle) {
            self.order.remove(&(due, handle));
        }
    }

    pub fn next_due(&self) -> Option<Instant> {
        self.order.first().map(|&(due, _)| due)
    }

    /// A tombstone due at or before `now`, removed.
    pub fn pop_due(&mut self, now: Instant) -> Option<u32> {
        let &(due, handle) = self.order.first()?;
        if due > now {
            return None;
        }
        self.cancel(handle);
        Some(handle)
    }

    /// The tombstone due first, removed (to make room under a bound).
    pub fn pop_earliest(&mut self) -> Option<u32> {
        let &(_, handle) = self.order.first()?;
        self.cancel(handle);
        Some(handle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_entry_per_member_whatever_happens_to_it() {
        let mut t = Tombstones::new();
        for round in 0..1_000u64 {
            t.schedule(7, Instant::from_millis(round));
            if round % 3 == 0 {
                t.cancel(7);
            }
            assert!(t.len() <= 1 && t.order.len() == t.len());
        }
        t.schedule(1, Instant::from_millis(50));
        t.schedule(2, Instant::from_millis(10));
        assert_eq!(t.next_due(), Some(Instant::from_millis(10)));
        assert_eq!(t.pop_due(Instant::from_millis(5)), None);
        assert_eq!(t.pop_due(Instant::from_millis(10)), Some(2));
        assert_eq!(t.pop_earliest(), Some(1), "7 was cancelled in the last round");
        assert_eq!((t.len(), t.next_due()), (0, None));
    }
}
