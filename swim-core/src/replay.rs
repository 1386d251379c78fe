//! Replay protection for sealed datagrams: per sending process, a window of
//! the datagram counters accepted from it.
//!
//! Every sealed datagram carries, authenticated, a 64-bit id of the process
//! that sealed it (drawn at random when the node is built) and a counter the
//! process raises with every datagram it sends. A receiver keeps, per
//! process, the highest counter accepted and which of the 64 below it were
//! seen: a counter already seen, or more than 64 below the highest, is a
//! replay. Windows are kept by process, not by source address, so a capture
//! replayed from another address is refused just the same. Timestamps could
//! not do this: each driver picks its own epoch.
//!
//! Windows are bounded: past `max`, the one that accepted a datagram
//! longest ago is forgotten. What is left open, and why it is harmless: a
//! datagram of a process whose window this node does not hold (one that
//! stopped before this node started, or whose window was forgotten) is
//! accepted once more. It carries that old process's claims, older than
//! what it said later, which the merge ignores; a question in it gets one
//! answer.

use alloc::collections::BTreeMap;

/// Counters below the highest one that a window remembers.
const WINDOW: u64 = 64;

#[derive(Debug, Clone, Copy)]
struct Window {
    top: u64,
    seen: u64,
    /// When it last accepted a datagram (the guard's own count).
    used: u64,
}

impl Window {
    fn allows(&self, counter: u64) -> bool {
        if counter > self.top {
            return true;
        }
        let back = self.top - counter;
        back < WINDOW && self.seen & (1 << back) == 0
    }

    fn accept(&mut self, counter: u64, stamp: u64) {
        if counter > self.top {
            let shift = counter - self.top;
            self.seen = if shift >= WINDOW { 0 } else { self.seen << shift };
            self.top = counter;
            self.seen |= 1;
        } else {
            self.seen |= 1 << (self.top - counter);
        }
        self.used = stamp;
    }
}

/// The replay windows of every sending process heard from.
#[derive(Debug)]
pub(crate) struct ReplayGuard {
    windows: BTreeMap<u64, Window>,
    max: usize,
    stamp: u64,
}

impl ReplayGuard {
    pub fn new(max: usize) -> Self {
        ReplayGuard { windows: BTreeMap::new(), max: max.max(1), stamp: 0 }
    }

    /// Whether a datagram would be fresh. Changes nothing: call
    /// [`ReplayGuard::accept`] once the datagram authenticated, so forged
    /// headers cannot spend a window.
    pub fn allows(&self, sender: u64, counter: u64) -> bool {
        self.windows.get(&sender).is_none_or(|w| w.allows(counter))
    }

    /// Record an authenticated datagram as seen.
    pub fn accept(&mut self, sender: u64, counter: u64) {
        self.stamp += 1;
        let stamp = self.stamp;
        if let Some(w) = self.windows.get_mut(&sender) {
            w.accept(counter, stamp);
            return;
        }
        if self.windows.len() >= self.max {
            // Rare (a new process while the bound is reached): a scan.
            if let Some(oldest) = self.windows.iter().min_by_key(|(_, w)| w.used).map(|(s, _)| *s) {
                self.windows.remove(&oldest);
            }
        }
        self.windows.insert(sender, Window { top: counter, seen: 1, used: stamp });
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.windows.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counter_is_accepted_once_and_old_ones_never() {
        let mut g = ReplayGuard::new(8);
        for c in [5, 3, 9, 4] {
            assert!(g.allows(7, c));
            g.accept(7, c);
            assert!(!g.allows(7, c), "counter {c} accepted twice");
        }
        assert!(g.allows(7, 6), "reordered within the window");
        assert!(g.allows(8, 5), "another process has its own window");
        g.accept(7, 200);
        assert!(!g.allows(7, 136), "too far below the top");
        assert!(g.allows(7, 137));
        assert!(!g.allows(7, 9), "seen before the jump, and now out of the window");
    }

    #[test]
    fn windows_are_bounded_forgetting_the_quietest() {
        let mut g = ReplayGuard::new(3);
        for sender in 0..10u64 {
            g.accept(sender, 1);
            assert!(g.len() <= 3);
        }
        assert!(!g.allows(9, 1));
        assert!(g.allows(0, 1), "forgotten");
        // A busy window survives newcomers.
        let mut g = ReplayGuard::new(2);
        g.accept(1, 1);
        for sender in 10..20u64 {
            g.accept(1, sender);
            g.accept(sender, 1);
        }
        assert!(!g.allows(1, 19));
    }
}
