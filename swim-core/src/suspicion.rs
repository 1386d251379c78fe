//! Lifeguard's dynamic suspicion timeout (Lifeguard §IV.B, memberlist
//! `suspicion.go`).
//!
//! A suspicion starts with a long timeout and shrinks it with every
//! independent confirmation, logarithmically, down to a floor that grows with
//! log10 of the cluster size. A member that is really dead is confirmed by
//! many probers and declared fast; a member suspected by one unhealthy node
//! gets the full window to refute. All arithmetic is integer: no floating
//! point reaches a protocol decision.

use alloc::collections::{BTreeMap, BTreeSet};
use core::time::Duration;
use smallvec::SmallVec;

use crate::time::{duration_nanos, Instant};

/// The bounds of one suspicion's timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    pub min: Duration,
    pub max: Duration,
    /// Independent confirmations that bring the timeout down to `min`.
    pub needed: u32,
}

impl Window {
    /// memberlist `suspicionTimeout`: `mult * max(1, log10(n)) * interval`
    /// with the log rounded down, so timeouts step at 10, 100, 1000 members;
    /// the maximum is `max_mult` times that, and `mult - 2` confirmations are
    /// wanted unless the cluster is too small to give them.
    pub fn new(mult: u32, max_mult: u32, live_members: u32, interval: Duration, lifeguard: bool) -> Window {
        let scale = ilog10(live_members).max(1);
        let min = crate::time::scale(interval, mult.saturating_mul(scale));
        if !lifeguard {
            // Plain SWIM: one fixed timeout, confirmations change nothing.
            return Window { min, max: min, needed: 0 };
        }
        let max = crate::time::scale(min, max_mult.max(1));
        let mut needed = mult.saturating_sub(2);
        if live_members.saturating_sub(2) < needed {
            needed = 0;
        }
        Window { min, max, needed }
    }

    /// The timeout after `confirmations` independent confirmations:
    /// `max - (max - min) * log(c + 1) / log(k + 1)`, never below `min`.
    pub fn timeout(&self, confirmations: u32) -> Duration {
        if self.needed == 0 || confirmations >= self.needed {
            return self.min;
        }
        let span = duration_nanos(self.max).saturating_sub(duration_nanos(self.min));
        let num = log2_q16(confirmations + 1);
        let den = log2_q16(self.needed + 1).max(1);
        let shrink = (u128::from(span) * u128::from(num) / u128::from(den)) as u64;
        let nanos = duration_nanos(self.max).saturating_sub(shrink).max(duration_nanos(self.min));
        Duration::from_nanos(nanos)
    }
}

/// A running suspicion about one member.
#[derive(Debug, Clone)]
pub(crate) struct Suspicion<A> {
    pub started: Instant,
    pub window: Window,
    /// Who raised it first; further claims from them are not independent.
    pub accuser: A,
    pub confirmers: SmallVec<[A; 4]>,
}

impl<A: PartialEq + Clone> Suspicion<A> {
    pub fn new(started: Instant, window: Window, accuser: A) -> Self {
        Suspicion { started, window, accuser, confirmers: SmallVec::new() }
    }

    pub fn deadline(&self) -> Instant {
        self.started + self.window.timeout(self.confirmers.len() as u32)
    }

    /// Count `accuser` as a confirmation if it is new and more are wanted.
    /// Returns whether it counted (and the deadline may have moved).
    pub fn confirm(&mut self, accuser: &A) -> bool {
        if self.confirmers.len() as u32 >= self.window.needed
            || *accuser == self.accuser
            || self.confirmers.contains(accuser)
        {
            return false;
        }
        self.confirmers.push(accuser.clone());
        true
    }
}

/// The running suspicions, by member handle, and their deadlines in order:
/// exactly one deadline entry per suspicion, moved when a confirmation
/// shortens it and removed with it, so nothing stale is kept and the next
/// expiry is the first entry.
#[derive(Debug)]
pub(crate) struct Suspicions<A> {
    by_member: BTreeMap<u32, Suspicion<A>>,
    deadlines: BTreeSet<(Instant, u32)>,
}

impl<A: PartialEq + Clone> Suspicions<A> {
    pub fn new() -> Self {
        Suspicions { by_member: BTreeMap::new(), deadlines: BTreeSet::new() }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_member.len()
    }

    /// Deadline entries held: always `len()` (tests check it).
    #[cfg(test)]
    pub fn deadline_entries(&self) -> usize {
        self.deadlines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_member.is_empty()
    }

    /// Start (or restart) the suspicion about `handle`.
    pub fn start(&mut self, handle: u32, suspicion: Suspicion<A>) {
        self.remove(handle);
        self.deadlines.insert((suspicion.deadline(), handle));
        self.by_member.insert(handle, suspicion);
    }

    /// Count an independent confirmation; true if it counted (and the
    /// deadline moved closer).
    pub fn confirm(&mut self, handle: u32, accuser: &A) -> bool {
        let Some(s) = self.by_member.get_mut(&handle) else { return false };
        let before = s.deadline();
        if !s.confirm(accuser) {
            return false;
        }
        self.deadlines.remove(&(before, handle));
        self.deadlines.insert((s.deadline(), handle));
        true
    }

    /// End the suspicion about `handle` (refuted, declared, or reaped).
    pub fn remove(&mut self, handle: u32) {
        if let Some(s) = self.by_member.remove(&handle) {
            self.deadlines.remove(&(s.deadline(), handle));
        }
    }

    /// Who raised the suspicion about `handle`.
    pub fn accuser(&self, handle: u32) -> Option<&A> {
        self.by_member.get(&handle).map(|s| &s.accuser)
    }

    /// The earliest deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|&(d, _)| d)
    }

    /// A suspicion whose deadline is at or before `now`, removed.
    pub fn pop_expired(&mut self, now: Instant) -> Option<u32> {
        let &(deadline, handle) = self.deadlines.first()?;
        if deadline > now {
            return None;
        }
        self.remove(handle);
        Some(handle)
    }

    /// The suspected member after `cursor` in handle order, wrapping around.
    pub fn next_after(&self, cursor: u32) -> Option<u32> {
        let after = self.by_member.range(cursor.saturating_add(1)..).next();
        after.or_else(|| self.by_member.iter().next()).map(|(&h, _)| h)
    }
}

/// floor(log10(n)), 0 for n < 10.
fn ilog10(n: u32) -> u32 {
    n.checked_ilog10().unwrap_or(0)
}

/// log2(x) in Q16 fixed point, for x >= 1, by repeated squaring of the
/// normalised mantissa (one result bit per squaring).
fn log2_q16(x: u32) -> u64 {
    let x = x.max(1);
    let int = x.ilog2();
    let mut result = u64::from(int) << 16;
    // Mantissa x / 2^int in [1, 2) as Q32.
    let mut y: u128 = u128::from(x) << (32 - int);
    for bit in (0..16).rev() {
        y = (y * y) >> 32;
        if y >= 2 << 32 {
            y >>= 1;
            result |= 1 << bit;
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_point_log_matches_known_values() {
        assert_eq!(log2_q16(1), 0);
        assert_eq!(log2_q16(2), 1 << 16);
        assert_eq!(log2_q16(8), 3 << 16);
        // log2(3) = 1.58496..., in Q16 = 103872.6
        assert!((103_870..=103_874).contains(&log2_q16(3)));
    }

    #[test]
    fn lan_window_at_one_thousand_members_matches_memberlist() {
        let w = Window::new(4, 6, 1000, Duration::from_secs(1), true);
        assert_eq!(w.min, Duration::from_secs(12));
        assert_eq!(w.max, Duration::from_secs(72));
        assert_eq!(w.needed, 2);
        assert_eq!(w.timeout(0), Duration::from_secs(72));
        // memberlist: 72 - 60 * log(2)/log(3) = 34.14s
        let one = w.timeout(1).as_millis();
        assert!((34_140..=34_145).contains(&one), "{one}");
        assert_eq!(w.timeout(2), Duration::from_secs(12));
        assert_eq!(w.timeout(9), Duration::from_secs(12));
    }

    #[test]
    fn small_clusters_want_no_confirmations() {
        let w = Window::new(4, 6, 3, Duration::from_secs(1), true);
        assert_eq!(w.needed, 0);
        assert_eq!(w.timeout(0), w.min);
    }

    #[test]
    fn without_lifeguard_the_timeout_is_fixed() {
        let w = Window::new(4, 6, 1000, Duration::from_secs(1), false);
        assert_eq!((w.min, w.max, w.needed), (Duration::from_secs(12), Duration::from_secs(12), 0));
    }

    #[test]
    fn each_independent_confirmation_counts_once() {
        let w = Window::new(5, 6, 100, Duration::from_secs(1), true);
        let mut s = Suspicion::new(Instant::ZERO, w, 1u32);
        let d0 = s.deadline();
        assert!(!s.confirm(&1), "the accuser does not confirm itself");
        assert!(s.confirm(&2));
        assert!(!s.confirm(&2));
        let d1 = s.deadline();
        assert!(d1 < d0);
        assert!(s.confirm(&3) && s.confirm(&4));
        assert!(!s.confirm(&5), "only `needed` confirmations count");
        assert_eq!(s.deadline(), Instant::ZERO + w.min);
    }
}
