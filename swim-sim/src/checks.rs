//! Online checks: what nodes believe (see [`crate::beliefs`]) measured
//! against what is really true (who runs, who crashed, who left), as the
//! run goes: false positives and suspicions, detection times, broadcasts,
//! convergence, and broken invariants.

use std::collections::BTreeSet;
use std::time::Duration;

use swim_core::{Event, Instant, NodeId, State};

pub use crate::beliefs::Belief;
use crate::beliefs::Beliefs;
use crate::invariants::{Invariant, Invariants, Limits, NodeReport};
use crate::network::Network;

/// Mistakes described in words, per kind.
const MAX_EXAMPLES: usize = 10;
/// Violations kept in full; later ones are only counted.
pub const MAX_VIOLATIONS: usize = 100;

/// What a node really is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Life {
    /// Not started yet (a late joiner).
    NotStarted,
    /// Running: a live member that everyone should see.
    Running,
    /// Leaving gracefully: still sending its Left claim.
    Leaving,
    /// Left and stopped.
    Left,
    /// Crashed: silent.
    Crashed,
}

/// Why a node stopped being a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DepartureKind {
    /// It crashed.
    Crash,
    /// It left gracefully.
    Leave,
}

/// One crash or leave and how fast the cluster learnt of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Departure {
    /// The node.
    pub node: u32,
    /// Crash or leave.
    pub kind: DepartureKind,
    /// When it happened.
    pub at: Instant,
    /// The first Suspected event about it at a live node.
    pub first_suspect: Option<Instant>,
    /// The first Failed event about it at a live node.
    pub first_failed: Option<Instant>,
    /// When no live node believed it live any more.
    pub all_gone: Option<Instant>,
    /// Whether it restarted before everyone learnt it was gone.
    pub restarted: bool,
    /// Failed events about a leaving node (it left; they should say Left).
    pub failed_instead_of_left: u32,
}

/// A broken invariant: when, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// When it was seen.
    pub at: Instant,
    /// Which named invariant, for those of [`crate::invariants`].
    pub invariant: Option<Invariant>,
    /// What went wrong, in words (starting with `[name]` for a named one).
    pub what: String,
}

/// How much of the protocol's failure handling a run exercised, so that
/// a run which held every invariant because nothing happened says so.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Exercised {
    /// Suspected events, counted at every node (true or false).
    pub suspicions: u64,
    /// Failed events, counted at every node (true or false).
    pub deaths: u64,
    /// Times a node took a higher incarnation of its own (refuting, or
    /// coming back).
    pub refutations: u64,
    /// Graceful leaves started.
    pub leaves: u64,
    /// Crashes.
    pub crashes: u64,
    /// Processes restarted under an id that had run before.
    pub restarts: u64,
    /// Partitions or clogs that really cut off traffic.
    pub partitions: u64,
}

impl Exercised {
    /// Whether no failure handling at all was exercised.
    pub fn nothing(&self) -> bool {
        *self == Exercised::default()
    }
}

/// One application broadcast and its spread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroadcastRecord {
    /// When it was sent.
    pub sent: Instant,
    /// Who sent it.
    pub origin: u32,
    /// Nodes that delivered it.
    pub delivered: BTreeSet<u32>,
    /// Times a node delivered it again (must stay 0).
    pub duplicates: u32,
    /// When the last node owed it delivered it: the first time every node
    /// running then, other than the origin, that was already running when
    /// it was sent had delivered it.
    pub everywhere: Option<Instant>,
    /// Nodes owed it (running when it was sent and since, not its origin)
    /// that have not delivered it.
    pub missing: u32,
}

impl BroadcastRecord {
    /// Whether node `id`, running since `started`, is owed this broadcast:
    /// it was running when the broadcast was sent (a process started later,
    /// or restarted since, may come too late for it) and is not its origin.
    fn owed_to(&self, id: u32, started: Instant) -> bool {
        id != self.origin && started <= self.sent
    }
}

/// The payload the simulator broadcasts, numbered.
pub fn broadcast_payload(k: usize) -> Vec<u8> {
    format!("swim-sim broadcast {k}").into_bytes()
}

fn broadcast_number(payload: &[u8]) -> Option<usize> {
    std::str::from_utf8(payload).ok()?.strip_prefix("swim-sim broadcast ")?.parse().ok()
}

/// A sample of what the cluster sees, for the time series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ViewSample {
    /// Seconds since the start.
    pub t: f64,
    /// Nodes really running.
    pub live: u32,
    /// Node ids started at least once so far (running or not).
    pub introduced: u32,
    /// The fewest members any running node sees Alive (itself included).
    pub min_alive_seen: u32,
    /// The mean over running nodes.
    pub mean_alive_seen: f64,
    /// The most.
    pub max_alive_seen: u32,
}

/// Mistakes of one kind (Suspected, or Failed, about a live node).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mistakes {
    /// Events about live members outside any partition's reach, counted
    /// at every node that reported one.
    pub count: u64,
    /// The distinct members they were about.
    pub nodes: BTreeSet<u32>,
    /// Distinct (member, incarnation) claims behind those events: one
    /// suspicion raised once and heard by the whole cluster is one episode.
    pub episodes: BTreeSet<(u32, u32)>,
    /// Of `count`, the events about slow nodes.
    pub about_slow: u64,
    /// Events excused by a partition or a clog: about a member the observer
    /// was cut off from while the cut was in force, or any pair within the
    /// settle time after it healed (claims made across the cut spread then).
    pub across_partition: u64,
    /// Distinct (observer, member) pairs cut off from each other when one
    /// declared the other: at most the pairs across the cut.
    pub partition_pairs: BTreeSet<(u32, u32)>,
    /// Of `across_partition`, the events after the cut healed.
    pub after_heal: u64,
    /// The first few, in words: when, where, about whom.
    pub examples: Vec<String>,
}

/// Why a mistake is not held against the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Excuse {
    /// Not excused.
    None,
    /// Observer and member were cut off from each other.
    CutOff,
    /// The cut healed less than the grace ago.
    AfterHeal,
}

/// The online checker.
#[derive(Debug)]
pub struct Checks {
    n: usize,
    now: Instant,
    beliefs: Beliefs,
    life: Vec<Life>,
    /// Claims at or below this incarnation are about a crashed predecessor.
    old_incarnation: Vec<Option<u32>>,
    slow: Vec<bool>,
    open: Vec<Option<usize>>,
    departures: Vec<Departure>,
    partitioned: bool,
    clogged: BTreeSet<u32>,
    partition_grace_until: Instant,
    partition_grace: Duration,
    /// Failed events about live nodes.
    pub false_positives: Mistakes,
    /// Suspected events about live nodes.
    pub false_suspicions: Mistakes,
    violations: Vec<Violation>,
    violations_dropped: u64,
    broadcasts: Vec<BroadcastRecord>,
    /// When each node's current process started.
    started: Vec<Instant>,
    samples: Vec<ViewSample>,
    invariants: Invariants,
    /// What the run exercised.
    pub exercised: Exercised,
}

impl Checks {
    /// A checker for `n` node ids, none started. `partition_grace` is how
    /// long after a partition heals mistakes are still blamed on it. The
    /// queue bounds are those of `Config::lan()`.
    pub fn new(n: usize, partition_grace: Duration) -> Self {
        Self::with_limits(n, partition_grace, Limits::of(&swim_core::Config::lan()))
    }

    /// Like [`Checks::new`], checking queues against `limits`.
    pub fn with_limits(n: usize, partition_grace: Duration, limits: Limits) -> Self {
        Checks {
            invariants: Invariants::new(n, limits),
            exercised: Exercised::default(),
            n,
            now: Instant::ZERO,
            beliefs: Beliefs::new(n),
            life: vec![Life::NotStarted; n],
            old_incarnation: vec![None; n],
            slow: vec![false; n],
            open: vec![None; n],
            departures: Vec::new(),
            partitioned: false,
            clogged: BTreeSet::new(),
            partition_grace_until: Instant::ZERO,
            partition_grace,
            false_positives: Mistakes::default(),
            false_suspicions: Mistakes::default(),
            violations: Vec::new(),
            violations_dropped: 0,
            broadcasts: Vec::new(),
            started: vec![Instant::ZERO; n],
            samples: Vec::new(),
        }
    }

    fn is_live(&self, id: usize) -> bool {
        self.beliefs.is_running(id)
    }

    /// What node `id` really is.
    pub fn life(&self, id: u32) -> Life {
        self.life.get(id as usize).copied().unwrap_or(Life::NotStarted)
    }

    /// What `observer` believes about `member`.
    pub fn belief(&self, observer: u32, member: u32) -> Belief {
        self.beliefs.get(observer as usize, member as usize)
    }

    /// Running nodes.
    pub fn live_count(&self) -> u32 {
        self.beliefs.live()
    }

    /// Every running node sees every other running node as Alive.
    pub fn converged(&self) -> bool {
        self.beliefs.converged()
    }

    /// Every running node sees every other running node as a member (Alive
    /// or Suspect): a weaker convergence that transient suspicions under
    /// loss do not break.
    pub fn members_known(&self) -> bool {
        self.beliefs.members_known()
    }

    /// Every running node sees every running node as a member, and no
    /// running node believes a crashed or left node live.
    pub fn agreed(&self) -> bool {
        self.members_known() && self.undetected().is_empty()
    }

    /// Every running node sees every running node as a member (Alive or
    /// Suspect), and every healthy node sees every healthy node Alive: the
    /// join's convergence, which slow members (suspected again and again
    /// while they keep refuting) do not hold off for good.
    pub fn joined(&self) -> bool {
        self.members_known() && self.beliefs.healthy_converged()
    }

    /// Every running node sees every running node as a member and no
    /// stopped node (crashed, leaving or left) as live: [`Checks::agreed`]
    /// in O(1), with leaving nodes counted as gone.
    pub fn settled(&self) -> bool {
        self.members_known() && self.beliefs.ghosts() == 0
    }

    /// Mark a node slow, so mistakes about it are told apart. Only before
    /// it starts.
    pub fn set_slow(&mut self, id: u32) {
        if let Some(s) = self.slow.get_mut(id as usize) {
            *s = true;
            self.beliefs.set_slow(id as usize);
        }
    }

    /// Crashed or left nodes that some running node still believes live.
    pub fn undetected(&self) -> Vec<u32> {
        (0..self.n)
            .filter(|&m| matches!(self.life[m], Life::Crashed | Life::Left) && self.beliefs.live_believers(m) > 0)
            .map(|m| m as u32)
            .collect()
    }

    /// Running members that some running node does not see as live
    /// (Alive or Suspect), with how many such observers.
    pub fn unseen(&self) -> Vec<(u32, u32)> {
        let want = self.beliefs.live().saturating_sub(1);
        (0..self.n)
            .filter(|&m| self.is_live(m) && self.beliefs.live_believers(m) < want)
            .map(|m| (m as u32, want - self.beliefs.live_believers(m)))
            .collect()
    }

    /// Every crash and leave so far.
    pub fn departures(&self) -> &[Departure] {
        &self.departures
    }

    /// Broken invariants so far.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// Broadcasts so far.
    pub fn broadcasts(&self) -> &[BroadcastRecord] {
        &self.broadcasts
    }

    /// The time series so far.
    pub fn samples(&self) -> &[ViewSample] {
        &self.samples
    }

    /// Record a broken invariant.
    pub fn violate(&mut self, at: Instant, what: String) {
        self.keep(Violation { at, invariant: None, what });
    }

    /// Record a broken named invariant.
    pub fn violate_invariant(&mut self, at: Instant, invariant: Invariant, what: String) {
        let what = format!("[{invariant}] {what}");
        self.keep(Violation { at, invariant: Some(invariant), what });
    }

    /// Keep the first [`MAX_VIOLATIONS`] in full and count the rest: a
    /// broken invariant may break again at every input.
    fn keep(&mut self, v: Violation) {
        if self.violations.len() < MAX_VIOLATIONS {
            self.violations.push(v);
        } else {
            self.violations_dropped += 1;
        }
    }

    /// Violations past the first [`MAX_VIOLATIONS`], only counted.
    pub fn violations_dropped(&self) -> u64 {
        self.violations_dropped
    }

    /// What node `id` says of itself after an input; `introduced` is how
    /// many node ids were ever started.
    pub fn on_report(&mut self, now: Instant, id: u32, report: &NodeReport, introduced: u32) {
        self.now = now;
        let (broken, rose) = self.invariants.on_report(id as usize, report, introduced);
        if rose {
            self.exercised.refutations += 1;
        }
        for (invariant, what) in broken {
            self.violate_invariant(now, invariant, what);
        }
    }

    /// A partition or clog ended that really cut off traffic.
    pub fn on_cut_happened(&mut self) {
        self.exercised.partitions += 1;
    }

    /// Move the checker's clock.
    pub fn set_now(&mut self, now: Instant) {
        self.now = now;
    }

    fn set_belief(&mut self, o: usize, m: usize, new: Belief) {
        if self.beliefs.set(o, m, new) {
            self.close_departure(m);
        }
    }

    /// Change what `id` really is, moving its beliefs in or out of the counts.
    fn set_life(&mut self, id: usize, life: Life) {
        self.life[id] = life;
        let mut orphans = Vec::new();
        self.beliefs.set_running(id, life == Life::Running, &mut orphans);
        for m in orphans {
            self.close_departure(m);
        }
    }

    fn close_departure(&mut self, m: usize) {
        if matches!(self.life[m], Life::Running | Life::NotStarted) {
            return;
        }
        if let Some(i) = self.open[m].take() {
            self.departures[i].all_gone = Some(self.now);
        }
    }

    // ----- what really happens ---------------------------------------------

    /// A node process starts (first start or restart): it knows nobody yet.
    pub fn on_start(&mut self, now: Instant, id: u32) {
        self.now = now;
        let id = id as usize;
        if id >= self.n {
            return;
        }
        if let Some(i) = self.open[id].take() {
            self.departures[i].restarted = true;
        }
        if self.life[id] != Life::NotStarted {
            self.exercised.restarts += 1;
        }
        self.invariants.on_start(id);
        self.beliefs.reset_row(id);
        self.set_life(id, Life::Running);
        self.started[id] = now;
        // A fresh process remembers no broadcast: delivering one again is
        // its first delivery.
        for b in &mut self.broadcasts {
            b.delivered.remove(&(id as u32));
        }
    }

    /// A node crashes; `incarnation` is its last.
    pub fn on_crash(&mut self, now: Instant, id: u32, incarnation: u32) {
        self.exercised.crashes += 1;
        self.now = now;
        if self.life(id) == Life::Running {
            self.broadcasts_forget(id);
        }
        self.depart(now, id, Life::Crashed, DepartureKind::Crash);
        if let Some(inc) = self.old_incarnation.get_mut(id as usize) {
            *inc = Some(inc.map_or(incarnation, |i| i.max(incarnation)));
        }
    }

    /// A node starts leaving gracefully.
    pub fn on_leave(&mut self, now: Instant, id: u32) {
        self.exercised.leaves += 1;
        self.now = now;
        if self.life(id) == Life::Running {
            self.broadcasts_forget(id);
        }
        self.depart(now, id, Life::Leaving, DepartureKind::Leave);
    }

    /// A leaving node finished and stopped.
    pub fn on_left(&mut self, now: Instant, id: u32) {
        self.now = now;
        if let Some(l) = self.life.get_mut(id as usize) {
            *l = Life::Left;
        }
    }

    fn depart(&mut self, now: Instant, id: u32, life: Life, kind: DepartureKind) {
        self.now = now;
        let i = id as usize;
        if i >= self.n || !self.is_live(i) {
            return;
        }
        self.departures.push(Departure {
            node: id,
            kind,
            at: now,
            first_suspect: None,
            first_failed: None,
            all_gone: None,
            restarted: false,
            failed_instead_of_left: 0,
        });
        self.open[i] = Some(self.departures.len() - 1);
        self.set_life(i, life);
        if self.beliefs.live_believers(i) == 0 {
            self.close_departure(i);
        }
    }

    /// A partition starts or heals.
    pub fn on_partition(&mut self, now: Instant, on: bool) {
        self.now = now;
        if self.partitioned && !on {
            self.partition_grace_until = now + self.partition_grace;
        }
        self.partitioned = on;
    }

    /// A node stops receiving (`on`) or receives again; mistakes about it
    /// or by it are blamed on the clog, as on a partition.
    pub fn on_clog(&mut self, now: Instant, id: u32, on: bool) {
        self.now = now;
        if on {
            self.clogged.insert(id);
        } else if self.clogged.remove(&id) {
            self.partition_grace_until = now + self.partition_grace;
        }
    }

    /// A node sent broadcast number `k` (numbers count up from 0).
    pub fn on_broadcast_sent(&mut self, now: Instant, origin: u32) -> usize {
        self.now = now;
        let missing = (0..self.n).filter(|&o| o != origin as usize && self.is_live(o)).count() as u32;
        self.broadcasts.push(BroadcastRecord {
            sent: now,
            origin,
            delivered: BTreeSet::new(),
            duplicates: 0,
            everywhere: (missing == 0).then_some(now),
            missing,
        });
        self.broadcasts.len() - 1
    }

    /// Nodes running now that are owed `b` (delivered or not).
    pub fn broadcast_owed(&self, b: &BroadcastRecord) -> u64 {
        (0..self.n).filter(|&o| self.is_live(o) && b.owed_to(o as u32, self.started[o])).count() as u64
    }

    /// Node `id` stops (crash or leave): it is owed no broadcast it has
    /// not delivered.
    fn broadcasts_forget(&mut self, id: u32) {
        let started = self.started.get(id as usize).copied().unwrap_or(Instant::ZERO);
        let now = self.now;
        for b in &mut self.broadcasts {
            if b.owed_to(id, started) && !b.delivered.contains(&id) && b.missing > 0 {
                b.missing -= 1;
                if b.missing == 0 && b.everywhere.is_none() {
                    b.everywhere = Some(now);
                }
            }
        }
    }

    // ----- what nodes report -------------------------------------------------

    /// Whether a mistake about `m` seen at `o` is to be blamed on a
    /// partition or a clog: the two cut off from each other now, or the
    /// cut healed less than the grace ago.
    fn excused(&self, o: usize, m: usize) -> Excuse {
        if (self.partitioned && Network::side(o as u32) != Network::side(m as u32))
            || self.clogged.contains(&(m as u32))
            || self.clogged.contains(&(o as u32))
        {
            Excuse::CutOff
        } else if self.now < self.partition_grace_until {
            Excuse::AfterHeal
        } else {
            Excuse::None
        }
    }

    /// Whether a claim at `incarnation` is about the running process `m`
    /// (not a crashed predecessor).
    fn about_running(&self, m: usize, incarnation: u32) -> bool {
        self.is_live(m) && self.old_incarnation[m].is_none_or(|old| incarnation > old)
    }

    /// Take one event reported by `observer`.
    pub fn on_event(&mut self, now: Instant, observer: u32, event: &Event<NodeId>) {
        self.now = now;
        let o = observer as usize;
        if o >= self.n {
            return;
        }
        match event {
            Event::Broadcast { payload, .. } => {
                self.on_delivery(o, payload);
                return;
            }
            Event::Conflict { addr, .. } => {
                self.violate(now, format!("n{observer} reports another live process claiming {addr}"));
                return;
            }
            _ => {}
        }
        let Some(member) = event.member() else {
            return;
        };
        let m = member.addr.0 as usize;
        if m >= self.n {
            let what = format!("n{observer} reports n{m}, never a member, as {}", member.state.as_str());
            self.violate_invariant(now, Invariant::NoOutsiders, what);
            return;
        }
        let new = Belief::from_state(member.state);
        if m == o {
            if self.is_live(o) && !new.is_live() {
                let what = format!("n{observer} announces itself {}", member.state.as_str());
                self.violate_invariant(now, Invariant::SelfAlive, what);
            }
            return;
        }
        let old = self.belief(observer, m as u32);
        for (invariant, what) in
            self.invariants.on_change(now, o, m, old, member.state, member.incarnation, &member.meta)
        {
            self.violate_invariant(now, invariant, what);
        }
        match event {
            Event::Suspected(_) => self.exercised.suspicions += 1,
            Event::Failed(_) => self.exercised.deaths += 1,
            _ => {}
        }
        match event {
            Event::Suspected(_) => {
                if let Some(i) = self.open[m] {
                    let d = &mut self.departures[i];
                    d.first_suspect.get_or_insert(now);
                } else if self.is_live(o) && self.about_running(m, member.incarnation) {
                    self.mistake(o, m, member.incarnation, false);
                }
            }
            Event::Failed(_) => {
                if let Some(i) = self.open[m] {
                    let d = &mut self.departures[i];
                    d.first_failed.get_or_insert(now);
                    if d.kind == DepartureKind::Leave {
                        d.failed_instead_of_left += 1;
                    }
                } else if self.is_live(o) && self.about_running(m, member.incarnation) {
                    self.mistake(o, m, member.incarnation, true);
                }
            }
            _ => {}
        }
        self.set_belief(o, m, new);
    }

    fn mistake(&mut self, o: usize, m: usize, incarnation: u32, failed: bool) {
        let excused = self.excused(o, m);
        let slow = self.slow[m];
        let tally = if failed { &mut self.false_positives } else { &mut self.false_suspicions };
        if excused == Excuse::CutOff {
            tally.across_partition += 1;
            tally.partition_pairs.insert((o as u32, m as u32));
        } else if excused == Excuse::AfterHeal {
            tally.across_partition += 1;
            tally.after_heal += 1;
        } else {
            tally.count += 1;
            tally.nodes.insert(m as u32);
            if tally.episodes.insert((m as u32, incarnation)) && tally.examples.len() < MAX_EXAMPLES {
                let at = self.now.as_nanos() as f64 / 1e9;
                let kind = if failed { "failed" } else { "suspected" };
                let slow = if slow { " (slow)" } else { "" };
                tally.examples.push(format!("t={at:.3}s: n{o} {kind} live n{m}{slow} at incarnation {incarnation}"));
            }
            if slow {
                tally.about_slow += 1;
            }
        }
    }

    fn on_delivery(&mut self, o: usize, payload: &[u8]) {
        let Some(k) = broadcast_number(payload) else {
            self.violate(self.now, format!("n{o} delivered a broadcast nobody sent"));
            return;
        };
        let started = self.started.get(o).copied().unwrap_or(Instant::ZERO);
        let running = self.is_live(o);
        let now = self.now;
        let Some(b) = self.broadcasts.get_mut(k) else {
            return;
        };
        if !b.delivered.insert(o as u32) {
            b.duplicates += 1;
        } else if running && b.owed_to(o as u32, started) {
            b.missing = b.missing.saturating_sub(1);
            if b.missing == 0 && b.everywhere.is_none() {
                b.everywhere = Some(now);
            }
        }
        let duplicates = b.duplicates;
        if duplicates == 1 {
            let what = format!("n{o} delivered broadcast {k} twice");
            self.violate(self.now, what);
        }
    }

    /// Take a sample of the view for the time series.
    pub fn sample(&mut self, now: Instant) {
        let live = self.beliefs.live();
        let seen = (0..self.n).filter(|&o| self.is_live(o)).map(|o| self.beliefs.alive_seen(o));
        let (min, max, sum) =
            seen.fold((u32::MAX, 0, 0u64), |(min, max, sum), x| (min.min(x), max.max(x), sum + u64::from(x)));
        let introduced = self.life.iter().filter(|&&l| l != Life::NotStarted).count() as u32;
        self.samples.push(ViewSample {
            t: now.as_nanos() as f64 / 1e9,
            live,
            introduced,
            min_alive_seen: if live == 0 { 0 } else { min },
            mean_alive_seen: if live == 0 { 0.0 } else { sum as f64 / f64::from(live) },
            max_alive_seen: max,
        });
    }

    /// Check that what `observer`'s events said matches its member table.
    /// Members missing from the table (reaped tombstones) count as gone.
    pub fn check_table(&mut self, now: Instant, observer: u32, table: impl Iterator<Item = (u32, State)>) {
        let o = observer as usize;
        if o >= self.n {
            return;
        }
        let mut live_in_table = 0u32;
        let mut bad = None;
        let mut outsider = None;
        for (m, state) in table {
            let m = m as usize;
            if m >= self.n {
                outsider.get_or_insert((m, state));
                continue;
            }
            if m == o {
                continue;
            }
            let b = Belief::from_state(state);
            if b.is_live() {
                live_in_table += 1;
            }
            if self.belief(observer, m as u32) != b && bad.is_none() {
                bad = Some((m, state));
            }
        }
        let live_in_events = self.beliefs.live_in_row(o);
        if let Some((m, state)) = outsider {
            let what = format!("n{observer}'s table holds n{m}, never a member, as {}", state.as_str());
            self.violate_invariant(now, Invariant::NoOutsiders, what);
        }
        if let Some((m, state)) = bad {
            let what = format!(
                "n{observer}'s table says n{m} is {} but its events said {:?}",
                state.as_str(),
                self.belief(observer, m as u32)
            );
            self.violate(now, what);
        } else if live_in_table != live_in_events {
            let what = format!(
                "n{observer}'s table holds {live_in_table} live members but its events announced {live_in_events}"
            );
            self.violate(now, what);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swim_core::{Bytes, Member};

    fn ev(kind: fn(Member<NodeId>) -> Event<NodeId>, m: u32, state: State) -> Event<NodeId> {
        kind(Member { addr: NodeId(m), state, incarnation: 0, meta: Bytes::new() })
    }

    fn three_running() -> Checks {
        let mut c = Checks::new(3, Duration::from_secs(10));
        for id in 0..3 {
            c.on_start(Instant::ZERO, id);
        }
        c
    }

    #[test]
    fn convergence_needs_every_running_pair_alive() {
        let mut c = three_running();
        assert!(!c.converged());
        for o in 0..3 {
            for m in 0..3 {
                if o != m {
                    c.on_event(Instant::ZERO, o, &ev(Event::Joined, m, State::Alive));
                }
            }
        }
        assert!(c.converged());
        c.on_event(Instant::ZERO, 0, &ev(Event::Suspected, 1, State::Suspect));
        assert!(!c.converged());
        assert_eq!(c.false_suspicions.count, 1);
    }

    #[test]
    fn a_crash_is_detected_when_no_running_node_believes_it_live() {
        let mut c = three_running();
        for o in 0..3 {
            for m in 0..3 {
                if o != m {
                    c.on_event(Instant::ZERO, o, &ev(Event::Joined, m, State::Alive));
                }
            }
        }
        c.on_crash(Instant::from_secs(1), 2, 0);
        assert!(c.converged(), "the two survivors still see each other");
        assert_eq!(c.undetected(), vec![2]);
        c.on_event(Instant::from_secs(2), 0, &ev(Event::Suspected, 2, State::Suspect));
        c.on_event(Instant::from_secs(3), 0, &ev(Event::Failed, 2, State::Dead));
        assert_eq!(c.departures()[0].all_gone, None);
        c.on_event(Instant::from_secs(4), 1, &ev(Event::Failed, 2, State::Dead));
        let d = &c.departures()[0];
        assert_eq!(d.first_suspect, Some(Instant::from_secs(2)));
        assert_eq!(d.first_failed, Some(Instant::from_secs(3)));
        assert_eq!(d.all_gone, Some(Instant::from_secs(4)));
        assert!(c.undetected().is_empty());
        assert_eq!(c.false_positives.count, 0);
    }

    #[test]
    fn failing_a_live_node_is_a_false_positive_unless_a_partition_is_to_blame() {
        let mut c = three_running();
        c.on_event(Instant::ZERO, 0, &ev(Event::Failed, 2, State::Dead));
        assert_eq!(c.false_positives.count, 1);
        c.on_partition(Instant::ZERO, true);
        c.on_event(Instant::ZERO, 0, &ev(Event::Failed, 1, State::Dead));
        assert_eq!(c.false_positives.across_partition, 1);
        c.on_partition(Instant::from_secs(1), false);
        c.on_event(Instant::from_secs(5), 1, &ev(Event::Failed, 2, State::Dead));
        c.on_event(Instant::from_secs(20), 1, &ev(Event::Failed, 0, State::Dead));
        assert_eq!(c.false_positives.across_partition, 2);
        assert_eq!(c.false_positives.count, 2);
        assert_eq!(c.false_positives.nodes.len(), 2);
    }

    #[test]
    fn a_table_holding_an_address_never_started_breaks_no_outsiders() {
        let mut c = three_running();
        c.check_table(Instant::ZERO, 0, [(0, State::Alive), (7, State::Alive)].into_iter());
        let v = c.violations();
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].invariant, Some(Invariant::NoOutsiders));
        assert!(v[0].what.contains("n0's table holds n7, never a member"), "{}", v[0].what);
    }

    #[test]
    fn a_node_that_believes_itself_dead_breaks_an_invariant() {
        let mut c = three_running();
        c.on_event(Instant::ZERO, 1, &ev(Event::Failed, 1, State::Dead));
        assert_eq!(c.violations().len(), 1);
    }
}
