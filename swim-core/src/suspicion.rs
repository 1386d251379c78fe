//! Lifeguard's dynamic suspicion timeout (Lifeguard §IV.B, memberlist
//! `suspicion.go`).
//!
//! A suspicion starts with a long timeout and shrinks it with every
//! independent confirmation, logarithmically, down to a floor that grows with
//! log10 of the cluster size. A member that is really dead is confirmed by
//! many probers and declared fast; a member suspected by one unhealthy node
//! gets the full window to refute. All arithmetic is integer: no floating
//! point reaches a protocol decision.
//!
//! [`Suspicions`] owns every running suspicion: when it started, its
//! window, who raised and who confirmed it, when the suspect was last told
//! of it, and when it expires. The node decides when a member becomes
//! suspect (that is the merge of claims and the probe's verdict) and what
//! an expiry means (Dead); this module decides how long a suspicion runs,
//! which confirmation counts, whom a claim names as its accuser, and when
//! the suspect may be told again.

use alloc::collections::{BTreeMap, BTreeSet};
use core::time::Duration;
use smallvec::SmallVec;

use crate::config::Config;
use crate::time::{duration_nanos, Instant};

/// The bounds of one suspicion's timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    min: Duration,
    max: Duration,
    /// Independent confirmations that bring the timeout down to `min`.
    needed: u32,
}

impl Window {
    /// memberlist `suspicionTimeout` (see [`suspicion_timeout`]); the
    /// maximum is `max_mult` times that, and `mult - 2` confirmations are
    /// wanted unless the cluster is too small to give them.
    fn new(mult: u32, max_mult: u32, live_members: u32, interval: Duration, lifeguard: bool) -> Window {
        let min = suspicion_timeout(mult, live_members, interval);
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
    fn timeout(&self, confirmations: u32) -> Duration {
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
struct Suspicion<A> {
    started: Instant,
    window: Window,
    /// Who raised it first; further claims from them are not independent.
    accuser: A,
    confirmers: SmallVec<[A; 4]>,
    /// When the suspect was last sent this suspicion first-hand because it
    /// sent us something (see [`Suspicions::tell`]).
    told: Option<Instant>,
}

impl<A: PartialEq + Clone> Suspicion<A> {
    fn new(started: Instant, window: Window, accuser: A) -> Self {
        Suspicion { started, window, accuser, confirmers: SmallVec::new(), told: None }
    }

    fn deadline(&self) -> Instant {
        self.started + self.window.timeout(self.confirmers.len() as u32)
    }

    /// Count `accuser` as a confirmation if it is new and more are wanted.
    /// Returns whether it counted (and the deadline may have moved).
    fn confirm(&mut self, accuser: &A) -> bool {
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
    /// What every window is drawn from (see [`Window::new`]).
    timing: Timing,
}

/// The configuration suspicions follow, copied once.
#[derive(Debug, Clone, Copy)]
struct Timing {
    /// `Config::suspicion_mult`.
    mult: u32,
    /// `Config::suspicion_max_timeout_mult`.
    max_mult: u32,
    /// `Config::probe_interval`: the unit of the timeout, and the least
    /// time between two tellings of one suspect.
    probe_interval: Duration,
    /// `Config::lifeguard`: without it, one fixed timeout.
    lifeguard: bool,
}

impl<A: PartialEq + Clone> Suspicions<A> {
    /// No suspicion yet; windows follow `config`.
    pub fn new(config: &Config) -> Self {
        let timing = Timing {
            mult: config.suspicion_mult,
            max_mult: config.suspicion_max_timeout_mult,
            probe_interval: config.probe_interval,
            lifeguard: config.lifeguard,
        };
        Suspicions { by_member: BTreeMap::new(), deadlines: BTreeSet::new(), timing }
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

    /// Start (or restart, with a full window) the suspicion about `handle`,
    /// raised by `accuser`, at `now`: its window is drawn for a cluster of
    /// `live_members` (Lifeguard §IV.B; see [`Window::new`]).
    pub fn start(&mut self, handle: u32, now: Instant, live_members: u32, accuser: A) {
        let t = self.timing;
        let window = Window::new(t.mult, t.max_mult, live_members, t.probe_interval, t.lifeguard);
        let suspicion = Suspicion::new(now, window, accuser);
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

    /// Bring the suspicion about `handle` down to its shortest timeout, as
    /// if every confirmation it wants had come.
    pub fn shorten_to_min(&mut self, handle: u32) {
        let Some(s) = self.by_member.get_mut(&handle) else { return };
        let before = s.deadline();
        s.window.needed = 0;
        self.deadlines.remove(&(before, handle));
        self.deadlines.insert((s.deadline(), handle));
    }

    /// End the suspicion about `handle` (refuted, declared, or reaped).
    pub fn remove(&mut self, handle: u32) {
        if let Some(s) = self.by_member.remove(&handle) {
            self.deadlines.remove(&(s.deadline(), handle));
        }
    }

    /// Whether the suspect `handle`, which just sent us a datagram, should
    /// be told of the suspicion first-hand now: at most once per probe
    /// interval, so a suspect that sends much gets one answer per period,
    /// not one per datagram. Records the telling when it says yes.
    pub fn tell(&mut self, handle: u32, now: Instant) -> bool {
        let every = self.timing.probe_interval;
        let Some(s) = self.by_member.get_mut(&handle) else { return false };
        if s.told.is_some_and(|t| now < t + every) {
            return false;
        }
        s.told = Some(now);
        true
    }

    /// Whom a claim about the suspect or dead member `handle` names as its
    /// accuser: whoever raised the running suspicion, else this node (`me`).
    pub fn accuser_or<'a>(&'a self, handle: u32, me: &'a A) -> &'a A {
        self.by_member.get(&handle).map_or(me, |s| &s.accuser)
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

/// memberlist's `suspicionTimeout`, to the nanosecond:
/// `mult * floor(1000 * max(1, log10(n))) * interval / 1000`. memberlist
/// computes the log in floating point and truncates it to thousandths;
/// [`log10_milli`] gives the same thousandths without floating point (pinned
/// against memberlist's own output for n = 1..100,000 in the tests).
pub(crate) fn suspicion_timeout(mult: u32, n: u32, interval: Duration) -> Duration {
    let scale = u128::from(log10_milli(n).max(1000));
    let nanos = u128::from(mult) * scale * u128::from(duration_nanos(interval)) / 1000;
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// log2(10) in Q60 fixed point.
const LOG2_10_Q60: u128 = 3_829_922_337_353_294_527;

/// `floor(1000 * log10(n))`, exactly, for n >= 1 (0 for n <= 1).
///
/// log2(n) is computed to 60 fractional bits by repeated squaring of the
/// normalised mantissa (the truncation errors shrink as they are mapped
/// back, so the result is within about 1e-17 of the truth), then divided by
/// log2(10). Only a value within that error of an integer could be floored
/// wrongly: 1000 * log10(n) is an integer only at powers of ten, which are
/// answered exactly first.
pub(crate) fn log10_milli(n: u32) -> u32 {
    if n <= 1 {
        return 0;
    }
    let mut power = 1u32;
    let mut exponent = 0u32;
    while power < n {
        match power.checked_mul(10) {
            Some(p) => {
                power = p;
                exponent += 1;
            }
            None => break,
        }
    }
    if power == n {
        return 1000 * exponent;
    }
    const WORK: u32 = 62;
    let int = n.ilog2();
    // The mantissa n / 2^int in [1, 2), in Q62.
    let mut y: u128 = (u128::from(n) << WORK) >> int;
    let mut frac: u128 = 0;
    for bit in (0..60).rev() {
        y = (y * y) >> WORK;
        if y >= 2u128 << WORK {
            y >>= 1;
            frac |= 1 << bit;
        }
    }
    let log2_q60 = (u128::from(int) << 60) | frac;
    u32::try_from(1000 * log2_q60 / LOG2_10_Q60).unwrap_or(u32::MAX)
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

    /// memberlist's `suspicionTimeout` scale, `time.Duration(nodeScale*1000)`
    /// with `nodeScale = math.Max(1, math.Log10(math.Max(1, float64(n))))`,
    /// for every n in 1..=100,000, folded with FNV-1a (64-bit, one whole
    /// value per step) by a Go program run with Go 1.19 on amd64.
    const MEMBERLIST_SCALES_FNV: u64 = 739_271_047_819_886_899;

    #[test]
    fn the_suspicion_timeout_is_memberlists_for_every_cluster_size_to_100_000() {
        let mut h: u64 = 1_469_598_103_934_665_603;
        for n in 1..=100_000u32 {
            h ^= u64::from(log10_milli(n).max(1000));
            h = h.wrapping_mul(1_099_511_628_211);
        }
        assert_eq!(h, MEMBERLIST_SCALES_FNV);
        // And the timeouts memberlist prints for the LAN profile.
        let lan = |n| suspicion_timeout(4, n, Duration::from_secs(1));
        assert_eq!(lan(5), Duration::from_secs(4));
        assert_eq!(lan(50), Duration::from_millis(6_792));
        assert_eq!(lan(100), Duration::from_secs(8));
        assert_eq!(lan(990), Duration::from_millis(11_980));
        assert_eq!(lan(999), Duration::from_millis(11_996));
        assert_eq!(lan(1000), Duration::from_secs(12));
        assert_eq!(lan(100_000), Duration::from_secs(20));
    }

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
    fn a_suspect_is_told_once_a_period_and_claims_name_the_first_accuser() {
        let mut config = Config::lan();
        config.probe_interval = Duration::from_secs(1);
        let mut s = Suspicions::new(&config);
        let ms = Instant::from_millis;
        assert_eq!(*s.accuser_or(7, &0u32), 0, "no suspicion: this node is named");
        s.start(7, ms(0), 100, 3u32);
        assert!(s.confirm(7, &4));
        assert_eq!(*s.accuser_or(7, &0), 3);
        assert!(s.tell(7, ms(10)));
        assert!(!s.tell(7, ms(900)));
        assert!(s.tell(7, ms(1010)));
        s.remove(7);
        assert!(!s.tell(7, ms(5000)) && s.next_deadline().is_none());
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
