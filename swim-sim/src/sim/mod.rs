//! The simulation: unmodified swim-core nodes on one virtual clock, fed by a
//! single event queue of datagram deliveries, node wakeups and faults.

use std::time::Duration;

use rand_core::{RngCore as _, SeedableRng as _};
use swim_core::{Config, Event, Input, Instant, Key, Node, NodeId, Outcome, Rejected, SealError, State};

mod faults;
mod liveness;
mod record;

use crate::bounds;
use crate::checks::Checks;
use crate::flood::{Flood, FloodStats};
use crate::invariants::{Limits, NodeReport};
use crate::network::{Network, NetworkConfig};
use crate::queue::{Action, EventQueue, InFlight};
use crate::refusals::Refusals;
use crate::seed::{self, NodeRng, SimRng, Stream};
use crate::spec::{Fault, FloodSpec, RunSpec};
use crate::trace::TraceHash;
use record::Recording;

/// A simulated node.
pub type SimNode = Node<NodeId, NodeRng>;

/// Longest a leaving node keeps running before it is stopped anyway.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(30);
/// Time between samples of the view (for the time series and table sizes).
const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// How often the liveness phase checks for agreement.
const LIVENESS_STEP: Duration = Duration::from_millis(100);

#[derive(Debug, Default)]
struct Slot {
    node: Option<SimNode>,
    /// The earliest wakeup in the queue for this node, if any.
    wakeup: Option<Instant>,
    /// Processes started under this id so far.
    generation: u32,
    started: Option<Instant>,
    leaving_since: Option<Instant>,
    lived: Duration,
    /// Whether an invariant about this node was already reported (one report per node).
    reported: bool,
}

/// Datagram counts of the whole run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Datagrams nodes produced.
    pub datagrams_sent: u64,
    /// Their bytes.
    pub bytes_sent: u64,
    /// Datagrams handed to a node.
    pub delivered: u64,
    /// Lost by the network's loss rate.
    pub lost: u64,
    /// Dropped by a partition.
    pub cut: u64,
    /// Addressed to a node that was not running.
    pub undeliverable: u64,
    /// Extra copies made by duplication.
    pub duplicated: u64,
    /// Of those, copies a sealing receiver refused as replays (whichever of
    /// the two came second): the replay window doing its job, not a fault.
    pub copies_refused: u64,
}

/// When the join first converged, and what it cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Convergence {
    /// When every running node first saw every running node as a member
    /// and every healthy node saw every healthy node Alive (see
    /// [`Checks::joined`]).
    pub at: Instant,
    /// Datagrams sent until then.
    pub datagrams: u64,
    /// Bytes sent until then.
    pub bytes: u64,
}

/// The state of the run when its fault phase ended, before the liveness
/// phase: what rates and the report's end-of-run figures are taken from.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseEnd {
    /// When the fault phase ended (the run's duration).
    pub at: Instant,
    /// Datagram counts until then.
    pub traffic: Traffic,
    /// Node-seconds until then.
    pub node_seconds: f64,
    /// Whether every running node saw every running node Alive.
    pub converged: bool,
    /// Crashed or left nodes some running node still believed live.
    pub undetected: u32,
    /// Since when the cluster had been settled (every running node seeing
    /// every running node as a member, no stopped node as live), if it was.
    pub settled_since: Option<Instant>,
    /// Datagrams refused until then, by reason, summed over every process.
    pub refusals: Refusals,
    /// What the flood had sent and got back until then, if there was one.
    pub flood: Option<FloodStats>,
}

/// A whole simulated cluster.
#[derive(Debug)]
pub struct Simulation {
    spec: RunSpec,
    config: Config,
    plan: Vec<(Duration, Fault)>,
    slots: Vec<Slot>,
    queue: EventQueue,
    network: Network,
    net_rng: SimRng,
    fault_rng: SimRng,
    checks: Checks,
    trace: TraceHash,
    buf: Vec<u8>,
    now: Instant,
    end: Instant,
    next_id: u32,
    traffic: Traffic,
    convergence: Option<Convergence>,
    membership: Option<Convergence>,
    last_disturbance: Instant,
    settled_since: Option<Instant>,
    healed_at: Option<Instant>,
    heal: Option<Duration>,
    peak_members: u32,
    peak_gossip: usize,
    /// (items queued, nodes running) at the sample with the highest mean.
    peak_gossip_mean: (usize, usize),
    /// Node ids started at least once.
    introduced: u32,
    /// Events drained from a node, checked before they are fed on.
    events: Vec<Event<NodeId>>,
    /// Traffic cut off when the partition or clog started.
    cut_at_start: u64,
    phase_end: Option<PhaseEnd>,
    liveness: Option<Duration>,
    finished: bool,
    /// The key every node holds when the run seals (see [`Simulation::key`]).
    key: Key,
    /// Refusals counted by processes that have stopped.
    retired: Refusals,
    /// The flooding outsiders, if the run has a flood.
    flood: Option<Flood>,
    /// The recorded node's log, if one is recorded.
    recording: Option<Recording>,
    #[cfg(test)]
    pub(crate) tamper: Option<Tamper>,
}

impl Simulation {
    /// Set up the run `spec` describes: every initial node started at time
    /// zero and joining through node 0. Fails when the protocol
    /// configuration does not validate.
    pub fn new(spec: RunSpec) -> Result<Self, swim_core::ConfigError> {
        Self::with_config(spec.config(), spec)
    }

    /// Like [`Simulation::new`] with a protocol configuration of the
    /// caller's choosing instead of the spec's profile.
    pub fn with_config(config: Config, spec: RunSpec) -> Result<Self, swim_core::ConfigError> {
        Self::build(config, spec, None)
    }

    /// Like [`Simulation::new`], recording node `id`'s first process (built
    /// at its start, generation 1) with swim-core's recorder from the
    /// instant it is built until it stops: its log is
    /// [`Simulation::recorded_log`]. A crashed process's log has no end
    /// record; one that left, or ran to the end of the run
    /// ([`Simulation::finish`]), ends with one.
    pub fn recording(spec: RunSpec, id: u32) -> Result<Self, swim_core::ConfigError> {
        Self::build(spec.config(), spec, Some(id))
    }

    fn build(config: Config, spec: RunSpec, record: Option<u32>) -> Result<Self, swim_core::ConfigError> {
        config.validate()?;
        let plan = spec.plan();
        let ids = spec.ids();
        let network_config = NetworkConfig {
            latency_min: spec.latency.min,
            latency_max: spec.latency.max,
            loss: spec.loss,
            duplicate: spec.duplicate,
            slow_delay: spec.slow_delay,
        };
        let cut_off = spec.partition.is_some() || spec.clog.is_some();
        let grace = bounds::settle(&config, spec.nodes, network_config.slow_delay, cut_off);
        let mut sim = Simulation {
            buf: vec![0; config.max_datagram_size],
            network: Network::new(network_config, ids as usize),
            net_rng: seed::rng(spec.seed, Stream::Network),
            fault_rng: seed::rng(spec.seed, Stream::Faults),
            checks: Checks::with_limits(ids as usize, grace, Limits::of(&config)),
            slots: (0..ids).map(|_| Slot::default()).collect(),
            queue: EventQueue::new(),
            trace: TraceHash::default(),
            now: Instant::ZERO,
            end: Instant::ZERO + spec.duration,
            next_id: spec.nodes,
            traffic: Traffic::default(),
            convergence: None,
            membership: None,
            last_disturbance: Instant::ZERO,
            settled_since: None,
            healed_at: None,
            heal: None,
            peak_members: 0,
            peak_gossip: 0,
            peak_gossip_mean: (0, 1),
            introduced: 0,
            events: Vec::new(),
            cut_at_start: 0,
            #[cfg(test)]
            tamper: None,
            phase_end: None,
            liveness: None,
            finished: false,
            key: cluster_key(spec.seed),
            retired: Refusals::default(),
            flood: None,
            recording: record.map(Recording::new),
            config,
            plan,
            spec,
        };
        // Slow nodes: random, never the seed.
        let candidates: Vec<u32> = (1..sim.spec.nodes).collect();
        for id in sim.pick(candidates, sim.spec.slow) {
            sim.network.set_slow(id, true);
            sim.checks.set_slow(id);
        }
        for id in 0..sim.spec.nodes {
            sim.start(id, None);
        }
        let seeds = [NodeId(0)];
        for id in 1..sim.spec.nodes {
            if let Some(node) = sim.slots[id as usize].node.as_mut() {
                Recording::feed(sim.recording.as_mut(), id, node, Instant::ZERO, Input::Join(&seeds));
            }
            sim.after_input(id);
        }
        for (i, (at, _)) in sim.plan.iter().enumerate() {
            sim.queue.push(Instant::ZERO + *at, Action::Fault(i));
        }
        if let Some(spec) = sim.spec.flood.filter(|f| f.count > 0) {
            // Outsiders take the ids above every id the run can start, and
            // stop at the end of the fault phase at the latest.
            let spec = FloodSpec { end: spec.end.min(sim.spec.duration), ..spec };
            let mut flood = Flood::new(spec, ids, &sim.config, sim.spec.seed, &sim.key);
            for (at, outsider) in flood.first_sends() {
                sim.queue.push(at, Action::Flood { outsider });
            }
            sim.flood = Some(flood);
        }
        sim.queue.push(Instant::ZERO, Action::Sample);
        Ok(sim)
    }

    // ----- getters ---------------------------------------------------------

    /// The parameters of the run.
    pub fn spec(&self) -> &RunSpec {
        &self.spec
    }

    /// The protocol configuration every node runs.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The virtual time reached.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// When the run ends.
    pub fn end(&self) -> Instant {
        self.end
    }

    /// The online checker: beliefs, detection, mistakes, violations.
    pub fn checks(&self) -> &Checks {
        &self.checks
    }

    /// A running node, by id.
    pub fn node(&self, id: u32) -> Option<&SimNode> {
        self.slots.get(id as usize)?.node.as_ref()
    }

    /// Whether a node is slow.
    pub fn is_slow(&self, id: u32) -> bool {
        self.network.is_slow(id)
    }

    /// The key every node holds when the run seals (drawn from the seed).
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// Datagrams refused so far, by reason, summed over every process that
    /// ran (stopped ones included).
    pub fn refusals(&self) -> Refusals {
        let mut sum = self.retired;
        for node in self.slots.iter().filter_map(|s| s.node.as_ref()) {
            sum.add(node.stats());
        }
        sum
    }

    /// The recorded node's log so far ([`Simulation::recording`]); `None`
    /// when no node is recorded.
    pub fn recorded_log(&self) -> Option<&[u8]> {
        self.recording.as_ref().map(Recording::log)
    }

    /// The flood, if the run has one: its outsiders and what they sent.
    pub fn flood(&self) -> Option<&Flood> {
        self.flood.as_ref()
    }

    /// The run's datagram counts (members' datagrams to members; a flood's
    /// are counted apart, in [`Simulation::flood`]).
    pub fn traffic(&self) -> Traffic {
        self.traffic
    }

    /// When the join first converged: every running node saw every running
    /// node as a member and every healthy node every healthy node Alive.
    pub fn convergence(&self) -> Option<Convergence> {
        self.convergence
    }

    /// When every running node first saw every running node as a member
    /// (Alive or Suspect).
    pub fn membership(&self) -> Option<Convergence> {
        self.membership
    }

    /// The trace hash so far.
    pub fn trace_hash(&self) -> TraceHash {
        self.trace
    }

    /// The largest member table (tombstones included) any node held.
    pub fn peak_members(&self) -> u32 {
        self.peak_members
    }

    /// The longest dissemination queue any node held at a sample (updates
    /// and broadcasts waiting to be piggybacked; at most
    /// `Config::max_gossip_queue`): in a join storm every node queues each
    /// joiner it learns of by gossip.
    pub fn peak_gossip(&self) -> usize {
        self.peak_gossip
    }

    /// The highest mean dissemination queue over the running nodes at a
    /// sample: what the queues cost the whole simulation at their worst
    /// (a few nodes may hold full queues while most hold a few items).
    pub fn peak_gossip_mean(&self) -> f64 {
        let (queued, running) = self.peak_gossip_mean;
        queued as f64 / running.max(1) as f64
    }

    /// Datagrams in the network, now and at the most.
    pub fn in_flight(&self) -> InFlight {
        self.queue.in_flight()
    }

    /// Violations found past the first hundred, which are not kept in full.
    pub fn violations_dropped(&self) -> u64 {
        self.checks.violations_dropped()
    }

    /// Simulated node-seconds: how long each process ran, added up.
    pub fn node_seconds(&self) -> f64 {
        self.slots
            .iter()
            .map(|s| {
                let running = s.started.map_or(Duration::ZERO, |t| self.now - t);
                (s.lived + running).as_secs_f64()
            })
            .sum()
    }

    /// The state when the fault phase ended (after [`Simulation::finish`]).
    pub fn phase_end(&self) -> Option<&PhaseEnd> {
        self.phase_end.as_ref()
    }

    /// How long the liveness phase took to reach agreement (after
    /// [`Simulation::finish`]); `None` if it never did within the bound.
    pub fn liveness(&self) -> Option<Duration> {
        self.liveness
    }

    /// When the last fault that disturbs membership happened.
    pub fn last_disturbance(&self) -> Instant {
        self.last_disturbance
    }

    /// When the partition healed (its end, or the end of the fault phase
    /// if it was still in force), if there was one.
    pub fn healed_at(&self) -> Option<Instant> {
        self.healed_at
    }

    /// How long after the partition healed every running node first saw
    /// every running node Alive; `None` if it never did (or no partition).
    pub fn heal(&self) -> Option<Duration> {
        self.heal
    }

    /// Since when the cluster has been settled without a break (see
    /// [`Checks::settled`]), if it is now.
    pub fn settled_since(&self) -> Option<Instant> {
        self.settled_since
    }

    /// When the faults stopped: the last fault that disturbs membership,
    /// or the end of the fault phase for faults that last the whole phase
    /// (loss, duplication, slow nodes) or a partition still in force then.
    pub fn faults_stopped(&self) -> Instant {
        let s = &self.spec;
        let whole_phase = s.loss > 0.0 || s.duplicate > 0.0 || s.slow > 0;
        let end = self.phase_end.as_ref().map_or(self.end, |p| p.at);
        if whole_phase || self.healed_at.is_some_and(|h| h >= end) {
            end
        } else {
            self.last_disturbance.min(end)
        }
    }

    /// How long after the faults stopped the cluster settled for good: the
    /// start of the settled stretch the fault phase ended in, or the
    /// liveness phase's agreement; `None` if neither (after
    /// [`Simulation::finish`]).
    pub fn agreement(&self) -> Option<Duration> {
        let end = self.phase_end.as_ref()?;
        let stopped = self.faults_stopped();
        match end.settled_since {
            Some(t) => Some(t.max(stopped) - stopped),
            None => self.liveness.map(|l| (end.at + l) - stopped),
        }
    }

    /// How long after a crash every live node must have failed it.
    pub fn detection_bound(&self) -> Duration {
        let extra = if self.spec.slow > 0 { self.network.config().slow_delay } else { Duration::ZERO };
        bounds::detection(&self.config, self.spec.nodes, extra)
    }

    /// How long the liveness phase may take to reach agreement.
    pub fn settle_bound(&self) -> Duration {
        // Faults are off in the liveness phase, but a partition or a false
        // Failed may have to be undone, and only a full-state exchange
        // reaches members some nodes hold dead.
        bounds::settle(&self.config, self.spec.nodes, Duration::ZERO, true)
    }

    // ----- running ---------------------------------------------------------

    /// Handle everything due up to `until` (at most the run's end).
    /// Returns whether the run has more to do.
    pub fn run_until(&mut self, until: Instant) -> bool {
        let until = until.min(self.end);
        while let Some(at) = self.queue.peek_time() {
            if at > until {
                break;
            }
            let Some((at, action)) = self.queue.pop() else {
                break;
            };
            self.now = self.now.max(at);
            self.checks.set_now(self.now);
            self.handle(action);
            let reached =
                Convergence { at: self.now, datagrams: self.traffic.datagrams_sent, bytes: self.traffic.bytes_sent };
            if self.membership.is_none() && self.checks.members_known() {
                self.membership = Some(reached);
            }
            if self.convergence.is_none() && self.checks.joined() {
                self.convergence = Some(reached);
            }
            self.track_agreement();
        }
        self.now = self.now.max(until);
        self.now < self.end
    }

    /// Run the fault phase, then the liveness phase and the end-of-run
    /// checks ([`Simulation::finish`]).
    pub fn run(&mut self) {
        self.finish();
    }

    /// After each step: whether the cluster is settled, and whether it has
    /// healed from the partition.
    fn track_agreement(&mut self) {
        if !self.checks.settled() {
            self.settled_since = None;
        } else if self.settled_since.is_none() {
            self.settled_since = Some(self.now);
        }
        if let Some(healed) = self.healed_at {
            if self.heal.is_none() && self.checks.converged() {
                self.heal = Some(self.now - healed);
            }
        }
    }

    fn handle(&mut self, action: Action) {
        match action {
            Action::Deliver { from, to, payload, duplicated } => {
                self.deliver(from, to, &payload, duplicated);
            }
            Action::Wake { node } => self.wake(node),
            Action::Flood { outsider } => self.flood_send(outsider),
            Action::Fault(i) => {
                if let Some(&(_, fault)) = self.plan.get(i) {
                    self.apply(fault);
                }
            }
            Action::Sample => self.sample(),
        }
    }

    /// An outsider sends its next datagram, and schedules the one after.
    fn flood_send(&mut self, outsider: u32) {
        let now = self.now;
        let Some(flood) = self.flood.as_mut() else {
            return;
        };
        if let Some(next) = flood.next_send(now) {
            self.queue.push(next, Action::Flood { outsider });
        }
        let mut payload = Vec::new();
        let Some(to) = flood.datagram(self.next_id, &mut payload) else {
            return;
        };
        let payload: Box<[u8]> = payload.into();
        flood.stats.sent += 1;
        flood.stats.bytes += payload.len() as u64;
        let [first, second] = self.network.fate(&mut self.net_rng, to);
        if first.is_none() {
            flood.stats.lost += 1;
        }
        let duplicated = second.is_some();
        if let Some(delay) = second {
            let copy = payload.clone();
            self.queue.push(now + delay, Action::Deliver { from: outsider, to, payload: copy, duplicated });
        }
        if let Some(delay) = first {
            self.queue.push(now + delay, Action::Deliver { from: outsider, to, payload, duplicated });
        }
    }

    fn deliver(&mut self, from: u32, to: u32, payload: &[u8], duplicated: bool) {
        let now = self.now;
        let flood = self.flood.as_mut().filter(|f| f.is_outsider(from));
        if self.network.blocked(from, to) {
            match flood {
                Some(f) => f.stats.cut += 1,
                None => self.traffic.cut += 1,
            }
            return;
        }
        let Some(node) = self.slots.get_mut(to as usize).and_then(|s| s.node.as_mut()) else {
            match flood {
                Some(f) => f.stats.undeliverable += 1,
                None => self.traffic.undeliverable += 1,
            }
            return;
        };
        self.trace.datagram(now, from, to, payload);
        let input = Input::Datagram { from: &NodeId(from), bytes: payload };
        let result = match Recording::feed(self.recording.as_mut(), to, node, now, input) {
            Outcome::Rejected(e) => Err(e),
            _ => Ok(()),
        };
        if let Some(f) = flood {
            // Refusing what an outsider sends is the point; what it costs
            // and what it changes show in the counters and the checks.
            f.stats.delivered += 1;
            f.stats.accepted += u64::from(result.is_ok());
            self.after_input(to);
            return;
        }
        self.traffic.delivered += 1;
        match result {
            Ok(()) => {
                if let Some(f) = self.flood.as_mut() {
                    f.capture(now, to, payload);
                }
            }
            Err(Rejected::Seal(SealError::Replayed)) if duplicated => self.traffic.copies_refused += 1,
            Err(e) => {
                let what = format!("n{to} rejected a datagram from n{from}: {e}");
                self.violate_once(to, what);
            }
        }
        self.after_input(to);
    }

    fn wake(&mut self, id: u32) {
        let now = self.now;
        let Some(slot) = self.slots.get_mut(id as usize) else {
            return;
        };
        if slot.wakeup != Some(now) {
            return; // stale: an earlier wakeup replaced it and was handled
        }
        slot.wakeup = None;
        let Some(node) = slot.node.as_mut() else {
            return;
        };
        Recording::feed(self.recording.as_mut(), id, node, now, Input::Timeout);
        let next = node.poll_timeout();
        if next.is_some_and(|t| t <= now) {
            self.violate_once(id, format!("n{id} asks to be woken at or before now after handle_timeout"));
        }
        self.after_input(id);
    }

    fn violate_once(&mut self, id: u32, what: String) {
        if let Some(slot) = self.slots.get_mut(id as usize) {
            if slot.reported {
                return;
            }
            slot.reported = true;
        }
        self.checks.violate(self.now, what);
    }

    /// Drain a node's outputs after an input: datagrams onto the network,
    /// events into the checker and the trace, and its next wakeup.
    fn after_input(&mut self, id: u32) {
        let now = self.now;
        let Some(slot) = self.slots.get_mut(id as usize) else {
            return;
        };
        let Some(node) = slot.node.as_mut() else {
            return;
        };
        while let Some(tx) = node.poll_transmit(&mut self.buf) {
            let bytes = &self.buf[..tx.len];
            if let Some(f) = self.flood.as_mut().filter(|f| f.is_outsider(tx.to.0)) {
                // Answers to outsiders go nowhere; they are what the flood
                // got back, counted apart from the members' own traffic.
                f.stats.replies += 1;
                f.stats.reply_bytes += tx.len as u64;
                continue;
            }
            self.traffic.datagrams_sent += 1;
            self.traffic.bytes_sent += tx.len as u64;
            let to = tx.to.0;
            let [first, second] = self.network.fate(&mut self.net_rng, to);
            if first.is_none() {
                self.traffic.lost += 1;
            }
            let duplicated = second.is_some();
            for delay in [first, second].into_iter().flatten() {
                let payload = bytes.into();
                self.queue.push(now + delay, Action::Deliver { from: id, to, payload, duplicated });
            }
            if second.is_some() {
                self.traffic.duplicated += 1;
            }
        }
        #[cfg_attr(not(test), allow(unused_mut))]
        let mut report = NodeReport::of(node, id, slot.leaving_since.is_some());
        self.events.clear();
        self.events.extend(std::iter::from_fn(|| node.poll_event()));
        #[cfg(test)]
        if let Some(tamper) = self.tamper.as_mut() {
            (tamper.0)(now, id, &mut report, &mut self.events);
        }
        self.checks.on_report(now, id, &report, self.introduced);
        for event in &self.events {
            hash_event(&mut self.trace, now, id, event);
            self.checks.on_event(now, id, event);
        }
        if let Some(r) = self.recording.as_mut() {
            r.drained(id, node);
        }
        if let Some(t) = node.poll_timeout() {
            let t = t.max(now);
            if slot.wakeup.is_none_or(|w| t < w) {
                slot.wakeup = Some(t);
                self.queue.push(t, Action::Wake { node: id });
            }
        }
        if let Some(since) = slot.leaving_since {
            if node.leave_complete() || now - since >= LEAVE_TIMEOUT {
                if let Some(r) = self.recording.as_mut() {
                    r.finish(id, node);
                }
                self.stop(id);
                self.checks.on_left(now, id);
            }
        }
    }

    fn sample(&mut self) {
        let now = self.now;
        self.checks.sample(now);
        let (mut running, mut queued) = (0usize, 0usize);
        for slot in &self.slots {
            if let Some(node) = &slot.node {
                let size = node.live_members() + node.count(State::Dead) + node.count(State::Left);
                self.peak_members = self.peak_members.max(size);
                self.peak_gossip = self.peak_gossip.max(node.gossip_backlog());
                running += 1;
                queued += node.gossip_backlog();
            }
        }
        let (best, of) = self.peak_gossip_mean;
        if running > 0 && queued * of > best * running {
            self.peak_gossip_mean = (queued, running);
        }
        let next = now + SAMPLE_EVERY;
        if next <= self.end {
            self.queue.push(next, Action::Sample);
        }
    }
}

impl NodeReport {
    /// What `node` (id `id`) says of itself now.
    fn of(node: &SimNode, id: u32, leaving: bool) -> Self {
        let me = node.member(&NodeId(id)).map(|m| m.state);
        let gone = node.count(State::Dead) + node.count(State::Left);
        let own_tomb = u32::from(matches!(me, Some(State::Dead | State::Left)));
        NodeReport {
            incarnation: node.incarnation(),
            self_state: me,
            leaving,
            known: node.live_members() + gone,
            tombstones: gone - own_tomb,
            gossip_backlog: node.gossip_backlog(),
            tombstones_evicted: node.stats().tombstones_evicted,
        }
    }
}

/// A test-only faulty node: corrupts what a node reports (its own report
/// and its events) before the checks see it, so each checker can be shown
/// to catch a planted bug.
#[cfg(test)]
pub(crate) struct Tamper(pub Box<dyn TamperFn>);

/// What a [`Tamper`] does after each input: given the time, the node's id,
/// its report and its events, change them.
#[cfg(test)]
pub(crate) trait TamperFn: FnMut(Instant, u32, &mut NodeReport, &mut Vec<Event<NodeId>>) {}

#[cfg(test)]
impl<F: FnMut(Instant, u32, &mut NodeReport, &mut Vec<Event<NodeId>>)> TamperFn for F {}

#[cfg(test)]
impl std::fmt::Debug for Tamper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tamper")
    }
}

#[cfg(test)]
mod tests;

/// The key of a sealed run seeded with `seed`: known to every node, drawn
/// from its own stream so it does not shift any other draw.
fn cluster_key(seed: u64) -> Key {
    let mut bytes = [0u8; 32];
    NodeRng::seed_from_u64(seed::derive(seed, Stream::Key)).fill_bytes(&mut bytes);
    Key::from_bytes(bytes)
}

/// Feed one event into the trace hash.
fn hash_event(trace: &mut TraceHash, at: Instant, node: u32, event: &Event<NodeId>) {
    trace.bytes(b"E");
    trace.u64(at.as_nanos());
    trace.u64(u64::from(node));
    trace.bytes(event.name().as_bytes());
    if let Some(m) = event.member() {
        trace.u64(u64::from(m.addr.0));
        trace.u64(u64::from(m.incarnation));
        trace.bytes(m.state.as_str().as_bytes());
        trace.bytes(&m.meta);
    }
    if let Event::Broadcast { payload, .. } = event {
        trace.bytes(payload);
    }
}
