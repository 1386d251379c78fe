//! The echo queue: members learned from the replies to a join's
//! follow-ups (or a catch-up), each to be sent once after all other news,
//! stored as runs of consecutive handles.
//!
//! One such reply can teach a node hundreds of members at once (a join
//! reply that lost a datagram, a join storm's later half for its early
//! joiners), and the table hands them consecutive handles, so the queue of
//! what to echo is a few runs `(first handle, count, source)` rather than
//! one entry per member: a join storm of N nodes would otherwise hold up to
//! N² entries in these queues at its peak. Taking an item out of the middle
//! of a run splits it, so the queue never holds more runs than items.

use alloc::collections::VecDeque;

/// Consecutive handles with one source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    first: u32,
    len: u32,
    source: u32,
}

/// What a walk over the queue does with the item it was shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Visit {
    /// Leave it queued and go on to the next.
    Keep,
    /// Take it out and go on to the next.
    Remove,
    /// Leave it queued and end the walk.
    Stop,
}

/// Runs stay in queueing order, oldest first.
#[derive(Debug, Default)]
pub(crate) struct EchoQueue {
    runs: VecDeque<Run>,
    len: usize,
}

/// Queues with at most this many runs keep their memory when drained.
const KEEP_RUNS: usize = 16;

impl EchoQueue {
    pub fn new() -> Self {
        EchoQueue::default()
    }

    /// Items queued.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queue `(handle, source)` last; it joins the last run when it follows on.
    pub fn push_back(&mut self, handle: u32, source: u32) {
        self.len += 1;
        if let Some(last) = self.runs.back_mut() {
            if last.source == source && last.first.checked_add(last.len) == Some(handle) {
                last.len += 1;
                return;
            }
        }
        self.runs.push_back(Run { first: handle, len: 1, source });
    }

    /// Take the oldest item.
    pub fn pop_front(&mut self) -> Option<(u32, u32)> {
        let front = self.runs.front_mut()?;
        let item = (front.first, front.source);
        front.first += 1;
        front.len -= 1;
        if front.len == 0 {
            self.runs.pop_front();
        }
        self.len -= 1;
        self.give_back();
        Some(item)
    }

    /// Take out every item about `handle`.
    pub fn remove_handle(&mut self, handle: u32) {
        self.walk(|h, _| if h == handle { Visit::Remove } else { Visit::Keep });
    }

    /// Show `visit` the items oldest first, `(handle, source)`, doing what it says with each.
    pub fn walk(&mut self, mut visit: impl FnMut(u32, u32) -> Visit) {
        let (mut r, mut k) = (0usize, 0u32);
        while let Some(run) = self.runs.get(r).copied() {
            if k >= run.len {
                (r, k) = (r + 1, 0);
                continue;
            }
            match visit(run.first + k, run.source) {
                Visit::Keep => k += 1,
                Visit::Stop => break,
                Visit::Remove => {
                    self.remove_at(r, k);
                    // From the front of a run the next item is now at
                    // (r, 0); from anywhere else it starts run r + 1.
                    if k > 0 {
                        (r, k) = (r + 1, 0);
                    }
                }
            }
        }
        self.give_back();
    }

    /// Take out the `k`-th item of run `r`.
    fn remove_at(&mut self, r: usize, k: u32) {
        let Some(run) = self.runs.get_mut(r) else { return };
        self.len -= 1;
        if k == 0 {
            run.first += 1;
            run.len -= 1;
            if run.len == 0 {
                self.runs.remove(r);
            }
        } else if k + 1 == run.len {
            run.len -= 1;
        } else {
            let rest = Run { first: run.first + k + 1, len: run.len - k - 1, source: run.source };
            run.len = k;
            self.runs.insert(r + 1, rest);
        }
    }

    /// A drained queue that a burst grew gives its memory back.
    fn give_back(&mut self) {
        if self.len == 0 && self.runs.capacity() > KEEP_RUNS {
            self.runs = VecDeque::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn items(q: &mut EchoQueue) -> Vec<(u32, u32)> {
        let mut out = Vec::new();
        q.walk(|h, s| {
            out.push((h, s));
            Visit::Keep
        });
        out
    }

    #[test]
    fn a_join_replys_members_take_one_run_not_one_entry_each() {
        let mut q = EchoQueue::new();
        for h in 0..5_000 {
            q.push_back(h, 7);
        }
        assert_eq!((q.len(), q.runs.len()), (5_000, 1));
        q.push_back(5_000, 8);
        q.push_back(9_000, 8);
        assert_eq!(q.runs.len(), 3, "a new source or a gap starts a run");
        assert_eq!(q.pop_front(), Some((0, 7)));
        assert_eq!(q.len(), 5_001);
    }

    #[test]
    fn taking_items_out_keeps_the_order_of_the_rest() {
        let mut q = EchoQueue::new();
        for h in 10..20 {
            q.push_back(h, 1);
        }
        q.remove_handle(15);
        q.remove_handle(10);
        q.remove_handle(19);
        let left: Vec<u32> = items(&mut q).into_iter().map(|(h, _)| h).collect();
        assert_eq!(left, [11, 12, 13, 14, 16, 17, 18]);
        assert_eq!(q.len(), 7);
        // Remove every other item in one walk, and stop part way.
        let mut n = 0;
        q.walk(|_, _| {
            n += 1;
            match n {
                5 => Visit::Stop,
                _ if n % 2 == 1 => Visit::Remove,
                _ => Visit::Keep,
            }
        });
        let left: Vec<u32> = items(&mut q).into_iter().map(|(h, _)| h).collect();
        assert_eq!(left, [12, 14, 16, 17, 18]);
        assert_eq!(q.len(), 5);
        for h in 0..100 {
            q.push_back(100 + 2 * h, 1);
        }
        while q.pop_front().is_some() {}
        assert!(q.is_empty());
        assert_eq!(q.runs.capacity(), 0, "drained, it gave its memory back");
    }
}
