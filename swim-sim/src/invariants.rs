//! Safety invariants of the protocol, checked at every state change a node
//! reports (each event, and what the node says of itself after each input),
//! each under a name a failure quotes, in the style of a VOPR.
//!
//! A node does not announce when it reaps a tombstone, so "unless reaped"
//! is read conservatively: a Dead or Left entry may have been reaped once
//! the tombstone timeout has passed since the observer announced it, or
//! once the observer reports a tombstone evicted early since then.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use swim_core::{Bytes, Config, Instant, State};

use crate::beliefs::Belief;
use crate::nibbles::Nibbles;

/// One invariant, by the name a violation quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Invariant {
    /// A node's view of a member's incarnation never goes down, except
    /// after the entry was reaped.
    IncarnationMonotonic,
    /// A member a node holds Dead or Left at incarnation I comes back Alive
    /// only above I, unless the entry was reaped.
    NoResurrection,
    /// No illegal state change: Dead@I to Suspect@I, Left to Suspect.
    LegalTransition,
    /// Every node reports one metadata value per (member, incarnation) in
    /// the Alive claims it announces.
    OneMetadataPerIncarnation,
    /// A node's own incarnation never goes down (within one process).
    OwnIncarnationMonotonic,
    /// A running node believes itself Alive (Left while it leaves), never
    /// Suspect or Failed.
    SelfAlive,
    /// A node knows no more members than were ever introduced.
    KnownWithinIntroduced,
    /// Every queue a node reports stays within its configured bound.
    QueuesBounded,
    /// No node takes an address that was never a member (a flood's
    /// outsider, or any id the run never started) into its table.
    NoOutsiders,
}

impl Invariant {
    /// Every invariant, in the order the report lists them.
    pub const ALL: [Invariant; 9] = [
        Invariant::IncarnationMonotonic,
        Invariant::NoResurrection,
        Invariant::LegalTransition,
        Invariant::OneMetadataPerIncarnation,
        Invariant::OwnIncarnationMonotonic,
        Invariant::SelfAlive,
        Invariant::KnownWithinIntroduced,
        Invariant::QueuesBounded,
        Invariant::NoOutsiders,
    ];

    /// The name a violation quotes.
    pub fn name(self) -> &'static str {
        match self {
            Invariant::IncarnationMonotonic => "incarnation-monotonic",
            Invariant::NoResurrection => "no-resurrection",
            Invariant::LegalTransition => "legal-transition",
            Invariant::OneMetadataPerIncarnation => "one-metadata-per-incarnation",
            Invariant::OwnIncarnationMonotonic => "own-incarnation-monotonic",
            Invariant::SelfAlive => "self-alive",
            Invariant::KnownWithinIntroduced => "known-within-introduced",
            Invariant::QueuesBounded => "queues-bounded",
            Invariant::NoOutsiders => "no-outsiders",
        }
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a node says of itself after an input, read by the simulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeReport {
    /// Its own incarnation.
    pub incarnation: u32,
    /// Its own state in its member table (`None`: absent).
    pub self_state: Option<State>,
    /// Whether it was told to leave.
    pub leaving: bool,
    /// Members in its table, itself and tombstones included.
    pub known: u32,
    /// Dead and Left entries about others in its table.
    pub tombstones: u32,
    /// Updates and broadcasts waiting to be piggybacked.
    pub gossip_backlog: usize,
    /// Tombstones it reaped early, so far.
    pub tombstones_evicted: u64,
}

/// The bounds of [`Invariant::QueuesBounded`] and the reap timing, from
/// the protocol configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `max_members`.
    pub max_members: usize,
    /// `max_tombstones`.
    pub max_tombstones: usize,
    /// `max_gossip_queue`.
    pub max_gossip_queue: usize,
    /// `tombstone_timeout`: the earliest a tombstone is reaped on time.
    pub tombstone_timeout: Duration,
}

impl Limits {
    /// The limits `config` sets.
    pub fn of(config: &Config) -> Self {
        Limits {
            max_members: config.max_members,
            max_tombstones: config.max_tombstones,
            max_gossip_queue: config.max_gossip_queue,
            tombstone_timeout: config.tombstone_timeout,
        }
    }
}

/// When an observer announced a member Dead or Left, and how many
/// tombstones it had evicted early by then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tomb {
    at: Instant,
    evicted: u64,
}

/// The incarnation each observer last reported for each member, by cell
/// `observer * n + member`: half a byte a pair, since nearly every
/// incarnation is small, and a map for the few that are not (a node's table of N²
/// pairs is the simulator's largest cost after the nodes' own).
#[derive(Debug)]
struct Incarnations {
    n: usize,
    small: Nibbles,
    large: BTreeMap<usize, u32>,
}

/// A `small` cell whose incarnation is in `large`.
const LARGE: u8 = 15;

impl Incarnations {
    fn new(n: usize) -> Self {
        Incarnations { n, small: Nibbles::new(n * n), large: BTreeMap::new() }
    }

    fn get(&self, cell: usize) -> u32 {
        match self.small.get(cell) {
            LARGE => self.large.get(&cell).copied().unwrap_or(0),
            v => u32::from(v),
        }
    }

    fn set(&mut self, cell: usize, incarnation: u32) {
        if self.small.get(cell) == LARGE {
            self.large.remove(&cell);
        }
        match u8::try_from(incarnation) {
            Ok(v) if v < LARGE => self.small.set(cell, v),
            _ => {
                self.small.set(cell, LARGE);
                self.large.insert(cell, incarnation);
            }
        }
    }

    /// Forget what observer `o` reported.
    fn clear_row(&mut self, o: usize) {
        let row = o * self.n..(o + 1) * self.n;
        self.small.fill(row.clone(), 0);
        let cells: Vec<usize> = self.large.range(row).map(|(&c, _)| c).collect();
        for c in cells {
            self.large.remove(&c);
        }
    }
}

/// The invariants' own memory: the incarnation each observer last
/// reported for each member, tombstones, metadata, own incarnations.
#[derive(Debug)]
pub struct Invariants {
    n: usize,
    limits: Limits,
    incarnations: Incarnations,
    tombs: BTreeMap<(u32, u32), Tomb>,
    /// The first metadata reported for each member at each incarnation,
    /// by member (a short list each: one entry an incarnation it took).
    meta: Vec<Vec<(u32, Bytes)>>,
    own: Vec<Option<u32>>,
    evicted: Vec<u64>,
}

impl Invariants {
    /// For `n` node ids under `limits`.
    pub fn new(n: usize, limits: Limits) -> Self {
        Invariants {
            n,
            limits,
            incarnations: Incarnations::new(n),
            tombs: BTreeMap::new(),
            meta: vec![Vec::new(); n],
            own: vec![None; n],
            evicted: vec![0; n],
        }
    }

    /// A fresh process under `id`: it remembers nothing.
    pub fn on_start(&mut self, id: usize) {
        if id >= self.n {
            return;
        }
        self.incarnations.clear_row(id);
        let (lo, hi) = (id as u32, id as u32 + 1);
        let keys: Vec<(u32, u32)> = self.tombs.range((lo, 0)..(hi, 0)).map(|(k, _)| *k).collect();
        for k in keys {
            self.tombs.remove(&k);
        }
        self.own[id] = None;
        self.evicted[id] = 0;
    }

    /// What node `id` says of itself after an input; `introduced` is how
    /// many node ids were ever started. Returns the broken invariants with
    /// what went wrong, and whether the node took a higher incarnation.
    pub fn on_report(&mut self, id: usize, r: &NodeReport, introduced: u32) -> (Vec<(Invariant, String)>, bool) {
        let mut broken = Vec::new();
        if id >= self.n {
            return (broken, false);
        }
        let mut rose = false;
        if let Some(before) = self.own[id] {
            if r.incarnation < before {
                broken.push((
                    Invariant::OwnIncarnationMonotonic,
                    format!("n{id}'s own incarnation went down from {before} to {}", r.incarnation),
                ));
            }
            rose = r.incarnation > before;
        }
        self.own[id] = Some(r.incarnation);
        let fine = match r.self_state {
            Some(State::Alive) => true,
            Some(State::Left) => r.leaving,
            _ => false,
        };
        if !fine {
            let state = r.self_state.map_or("absent", State::as_str);
            broken.push((Invariant::SelfAlive, format!("n{id} believes itself {state}")));
        }
        if r.known > introduced {
            broken.push((
                Invariant::KnownWithinIntroduced,
                format!("n{id} knows {} members but only {introduced} were ever introduced", r.known),
            ));
        }
        let l = self.limits;
        for (queue, len, max) in [
            ("member table", r.known as usize, l.max_members),
            ("tombstones", r.tombstones as usize, l.max_tombstones),
            ("gossip queue", r.gossip_backlog, l.max_gossip_queue),
        ] {
            if len > max {
                broken
                    .push((Invariant::QueuesBounded, format!("n{id}'s {queue} holds {len}, over its bound of {max}")));
            }
        }
        self.evicted[id] = r.tombstones_evicted;
        (broken, rose)
    }

    /// Whether observer `o` may have reaped its tombstone of `m` by `now`.
    fn may_have_reaped(&self, o: usize, m: usize, now: Instant) -> bool {
        self.tombs
            .get(&(o as u32, m as u32))
            .is_some_and(|t| now - t.at >= self.limits.tombstone_timeout || self.evicted[o] > t.evicted)
    }

    /// Observer `o`, which believed `old` about `m`, reports `m` in `state`
    /// at `incarnation` with `meta`. Returns the broken invariants.
    #[allow(clippy::too_many_arguments)]
    pub fn on_change(
        &mut self,
        now: Instant,
        o: usize,
        m: usize,
        old: Belief,
        state: State,
        incarnation: u32,
        meta: &Bytes,
    ) -> Vec<(Invariant, String)> {
        let mut broken = Vec::new();
        if o >= self.n || m >= self.n || o == m {
            return broken;
        }
        let cell = o * self.n + m;
        let before = self.incarnations.get(cell);
        let reaped = self.may_have_reaped(o, m, now);
        let was = |b: Belief| format!("{}@{before}", belief_name(b));
        // Formatted only for a broken invariant: this runs for every
        // member every node learns (4e8 times in a 20,000-node join).
        let now_is = || format!("{}@{incarnation}", state.as_str());
        if old != Belief::Unknown && !reaped {
            if incarnation < before {
                broken.push((
                    Invariant::IncarnationMonotonic,
                    format!("n{o}'s view of n{m} went down from {} to {}", was(old), now_is()),
                ));
            }
            let gone = matches!(old, Belief::Dead | Belief::Left);
            if gone && state == State::Alive && incarnation <= before {
                broken.push((
                    Invariant::NoResurrection,
                    format!("n{o} took n{m} from {} back to {} without a higher incarnation", was(old), now_is()),
                ));
            }
            let illegal = (old == Belief::Dead && state == State::Suspect && incarnation == before)
                || (old == Belief::Left && state == State::Suspect);
            if illegal {
                broken.push((Invariant::LegalTransition, format!("n{o} took n{m} from {} to {}", was(old), now_is())));
            }
        }
        self.incarnations.set(cell, incarnation);
        if matches!(state, State::Dead | State::Left) {
            self.tombs.insert((o as u32, m as u32), Tomb { at: now, evicted: self.evicted[o] });
        } else if !self.tombs.is_empty() {
            self.tombs.remove(&(o as u32, m as u32));
        }
        // Metadata rides on Alive claims; what a Suspect or Dead entry
        // carries along is not a claim of its own.
        if state != State::Alive {
            return broken;
        }
        let Some(seen) = self.meta.get_mut(m) else { return broken };
        match seen.iter().find(|(i, _)| *i == incarnation).map(|(_, first)| first) {
            Some(first) if first != meta => broken.push((
                Invariant::OneMetadataPerIncarnation,
                format!(
                    "n{o} reports n{m}@{incarnation} with {} bytes of metadata, another node reported {} different bytes",
                    meta.len(),
                    first.len()
                ),
            )),
            Some(_) => {}
            None => seen.push((incarnation, meta.clone())),
        }
        broken
    }
}

fn belief_name(b: Belief) -> &'static str {
    match b {
        Belief::Unknown => "unknown",
        Belief::Alive => "alive",
        Belief::Suspect => "suspect",
        Belief::Dead => "dead",
        Belief::Left => "left",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits { max_members: 10, max_tombstones: 2, max_gossip_queue: 5, tombstone_timeout: Duration::from_secs(60) }
    }

    fn names(broken: &[(Invariant, String)]) -> Vec<&'static str> {
        broken.iter().map(|(i, _)| i.name()).collect()
    }

    #[test]
    fn a_tombstone_may_go_down_or_come_back_only_once_it_may_have_been_reaped() {
        let mut inv = Invariants::new(3, limits());
        let t = Instant::from_secs;
        let none = Bytes::new();
        assert!(inv.on_change(t(1), 0, 1, Belief::Unknown, State::Alive, 3, &none).is_empty());
        assert!(inv.on_change(t(2), 0, 1, Belief::Alive, State::Dead, 3, &none).is_empty());
        let early = inv.on_change(t(10), 0, 1, Belief::Dead, State::Alive, 2, &none);
        assert_eq!(names(&early), ["incarnation-monotonic", "no-resurrection"]);
        inv.on_change(t(11), 0, 1, Belief::Alive, State::Dead, 3, &none);
        assert!(inv.on_change(t(80), 0, 1, Belief::Dead, State::Alive, 0, &none).is_empty(), "past the timeout");
    }

    #[test]
    fn incarnations_past_a_byte_are_kept_exactly_and_forgotten_on_restart() {
        let mut inc = Incarnations::new(3);
        for (cell, v) in [(1, 14), (2, 15), (4, 70_000), (5, u32::MAX)] {
            inc.set(cell, v);
        }
        assert_eq!([1, 2, 4, 5].map(|c| inc.get(c)), [14, 15, 70_000, u32::MAX]);
        assert_eq!(inc.small.len(), 9, "a cell a pair");
        assert_eq!(inc.large.len(), 3, "15 and up go to the map");
        inc.set(2, 3);
        assert_eq!((inc.get(2), inc.large.len()), (3, 2), "back to small, out of the map");
        inc.clear_row(1);
        assert_eq!((inc.get(4), inc.get(5), inc.get(1)), (0, 0, 14), "only the restarted observer's row");
        assert!(inc.large.is_empty());
        // Through the checker: a drop from a large incarnation is caught.
        let mut inv = Invariants::new(3, limits());
        let none = Bytes::new();
        inv.on_change(Instant::from_secs(1), 0, 1, Belief::Unknown, State::Alive, 300, &none);
        let down = inv.on_change(Instant::from_secs(2), 0, 1, Belief::Alive, State::Alive, 299, &none);
        assert_eq!(names(&down), ["incarnation-monotonic"]);
    }

    #[test]
    fn the_self_report_is_checked_against_each_bound() {
        let mut inv = Invariants::new(3, limits());
        let ok = NodeReport {
            incarnation: 1,
            self_state: Some(State::Alive),
            leaving: false,
            known: 3,
            tombstones: 0,
            gossip_backlog: 0,
            tombstones_evicted: 0,
        };
        assert_eq!(inv.on_report(0, &ok, 3), (vec![], false));
        let bad = NodeReport { incarnation: 0, self_state: Some(State::Left), known: 11, gossip_backlog: 6, ..ok };
        let (broken, _) = inv.on_report(0, &bad, 3);
        assert_eq!(
            names(&broken),
            ["own-incarnation-monotonic", "self-alive", "known-within-introduced", "queues-bounded", "queues-bounded"]
        );
    }
}
