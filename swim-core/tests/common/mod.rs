//! A small deterministic in-memory cluster for swim-core's tests: a virtual
//! clock, a queue of datagrams in flight ordered by (delivery time, sequence),
//! and switches to crash nodes or drop their traffic. The full simulator is
//! swim-sim; this is the minimum the core's own scenarios need.
#![allow(dead_code, missing_docs)]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use swim_core::record::{Header, Recorder, RngKind};
use swim_core::{Config, Event, Input, Instant, Key, Node, NodeId, Outcome, State};

/// ChaCha, a cryptographically secure generator, so nodes can hold keys.
pub type TestNode = Node<NodeId, ChaCha8Rng>;

/// A datagram in flight: (delivery time, sequence, from, to, bytes).
type InFlight = Reverse<(Instant, u64, u32, u32, Vec<u8>)>;

pub struct Cluster {
    pub nodes: BTreeMap<u32, TestNode>,
    pub now: Instant,
    pub latency: Duration,
    /// Crashed nodes: they neither send nor receive nor run timers.
    pub crashed: BTreeSet<u32>,
    /// Nodes whose every datagram, in and out, is lost.
    pub muted: BTreeSet<u32>,
    /// One-way cuts: datagrams from the first node to the second are lost.
    pub clogged: BTreeSet<(u32, u32)>,
    /// Every event, in order: (time, node, event).
    pub events: Vec<(Instant, u32, Event<NodeId>)>,
    /// Every datagram sent, in order: (time, from, to, bytes).
    pub wire: Vec<(Instant, u32, u32, Vec<u8>)>,
    /// Whether every datagram must be accepted (off where nodes that
    /// cannot open each other's datagrams are the point).
    pub strict: bool,
    /// The recorded node's log ([`Cluster::record`]).
    pub log: Vec<u8>,
    recorder: Option<(u32, Recorder<NodeId>)>,
    in_flight: BinaryHeap<InFlight>,
    seq: u64,
    seed: u64,
    buf: Vec<u8>,
}

impl Cluster {
    pub fn new(seed: u64) -> Self {
        Cluster {
            nodes: BTreeMap::new(),
            now: Instant::ZERO,
            latency: Duration::from_millis(1),
            crashed: BTreeSet::new(),
            muted: BTreeSet::new(),
            clogged: BTreeSet::new(),
            events: Vec::new(),
            wire: Vec::new(),
            strict: true,
            log: Vec::new(),
            recorder: None,
            in_flight: BinaryHeap::new(),
            seq: 0,
            seed,
            buf: vec![0; 65_536],
        }
    }

    /// `n` nodes with ids 0..n, each joining through node 0.
    pub fn joined(seed: u64, n: u32, config: Config) -> Self {
        let mut c = Cluster::new(seed);
        for id in 0..n {
            c.add(id, config.clone());
        }
        for id in 1..n {
            c.join(id, &[0]);
        }
        c
    }

    fn rng(&self, id: u32) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(self.seed.wrapping_mul(1_000_003).wrapping_add(u64::from(id)))
    }

    pub fn add(&mut self, id: u32, config: Config) {
        let node = Node::new(NodeId(id), config, self.rng(id), self.now).expect("valid config");
        self.nodes.insert(id, node);
    }

    /// A node that seals (as `config.encryption` says) with `keys`.
    pub fn add_keyed(&mut self, id: u32, config: Config, keys: &[Key]) {
        let node = Node::with_keys(NodeId(id), config, self.rng(id), self.now, keys).expect("valid config");
        self.nodes.insert(id, node);
    }

    /// Record node `id` (just added, before any input) into [`Cluster::log`].
    pub fn record(&mut self, id: u32) {
        let rng_seed = self.rng(id).get_seed();
        let buffer_len = self.buf.len() as u32;
        let node = self.nodes.get_mut(&id).expect("node exists");
        let header = Header::for_node(node, "swim-core tests".into(), RngKind::ChaCha8, rng_seed, buffer_len);
        let mut recorder = Recorder::new(node, header);
        recorder.begin_file(&mut self.log);
        self.recorder = Some((id, recorder));
    }

    /// The recorder and its node, to rotate or finish the log.
    pub fn recorder(&mut self) -> Option<(&mut Recorder<NodeId>, &mut TestNode, &mut Vec<u8>)> {
        let (id, r) = self.recorder.as_mut()?;
        Some((r, self.nodes.get_mut(id)?, &mut self.log))
    }

    /// Feed one input to node `id` (through its recorder, if recorded) and
    /// drain its outputs.
    pub fn input(&mut self, id: u32, input: Input<'_, NodeId>) -> Outcome {
        let now = self.now;
        let Some(node) = self.nodes.get_mut(&id) else {
            return Outcome::Done;
        };
        let outcome = match self.recorder.as_mut() {
            Some((rid, r)) if *rid == id => r.handle(node, now, input, &mut self.log),
            _ => node.handle(now, input),
        };
        self.drain(id);
        outcome
    }

    pub fn node(&mut self, id: u32) -> &mut TestNode {
        self.nodes.get_mut(&id).expect("node exists")
    }

    pub fn join(&mut self, id: u32, seeds: &[u32]) {
        let seeds: Vec<NodeId> = seeds.iter().map(|&s| NodeId(s)).collect();
        self.input(id, Input::Join(&seeds));
    }

    /// Give a node's outputs to the network and the event log.
    pub fn drain(&mut self, id: u32) {
        let now = self.now;
        let latency = self.latency;
        let Some(node) = self.nodes.get_mut(&id) else {
            return;
        };
        while let Some(tx) = node.poll_transmit(&mut self.buf) {
            let bytes = self.buf[..tx.len].to_vec();
            self.wire.push((now, id, tx.to.0, bytes.clone()));
            self.seq += 1;
            self.in_flight.push(Reverse((now + latency, self.seq, id, tx.to.0, bytes)));
        }
        while let Some(ev) = node.poll_event() {
            self.events.push((now, id, ev));
        }
        if let Some((_, r)) = self.recorder.as_mut().filter(|(rid, _)| *rid == id) {
            r.end_step(node, &mut self.log);
        }
    }

    fn next_wakeup(&self) -> Option<Instant> {
        let timers =
            self.nodes.iter().filter(|(id, _)| !self.crashed.contains(id)).filter_map(|(_, n)| n.poll_timeout()).min();
        let packets = self.in_flight.peek().map(|Reverse((t, ..))| *t);
        match (timers, packets) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Advance to the next thing that happens, handle it, drain outputs.
    pub fn step(&mut self, limit: Instant) -> bool {
        let Some(next) = self.next_wakeup() else {
            return false;
        };
        if next > limit {
            self.now = limit;
            return false;
        }
        self.now = self.now.max(next);
        let now = self.now;
        while let Some(Reverse((t, ..))) = self.in_flight.peek() {
            if *t > now {
                break;
            }
            let Reverse((_, _, from, to, bytes)) = self.in_flight.pop().unwrap();
            let lost = self.muted.contains(&from)
                || self.muted.contains(&to)
                || self.crashed.contains(&to)
                || self.clogged.contains(&(from, to));
            if lost {
                continue;
            }
            if self.nodes.contains_key(&to) {
                let verdict = self.input(to, Input::Datagram { from: &NodeId(from), bytes: &bytes });
                if self.strict {
                    assert_eq!(verdict, Outcome::Done, "well-formed datagram");
                }
            }
        }
        let due: Vec<u32> = self
            .nodes
            .iter()
            .filter(|(id, n)| !self.crashed.contains(id) && n.poll_timeout().is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.input(id, Input::Timeout);
            let next = self.node(id).poll_timeout();
            assert!(next.is_none_or(|t| t > now), "node {id} asks to be woken in the past after handle_timeout");
        }
        true
    }

    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.step(end) {}
        self.now = end;
    }

    /// Run until `done` holds (checked after every step) or `max` passes.
    pub fn run_until(&mut self, max: Duration, mut done: impl FnMut(&Cluster) -> bool) -> bool {
        let end = self.now + max;
        loop {
            if done(self) {
                return true;
            }
            if !self.step(end) {
                return done(self);
            }
        }
    }

    /// What `observer` believes about `member`.
    pub fn view(&self, observer: u32, member: u32) -> Option<State> {
        self.nodes.get(&observer)?.member(&NodeId(member)).map(|m| m.state)
    }

    /// Every running node sees every running node as Alive.
    pub fn converged(&self) -> bool {
        let live: Vec<u32> = self.nodes.keys().copied().filter(|id| !self.crashed.contains(id)).collect();
        live.iter().all(|&a| live.iter().all(|&b| self.view(a, b) == Some(State::Alive)))
    }

    pub fn events_at(&self, node: u32) -> impl Iterator<Item = &Event<NodeId>> {
        self.events.iter().filter(move |(_, n, _)| *n == node).map(|(_, _, e)| e)
    }

    /// A hash of every datagram sent, in order, for determinism checks.
    pub fn wire_hash(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for (t, from, to, bytes) in &self.wire {
            for b in t.as_nanos().to_le_bytes().iter().chain(&from.to_le_bytes()).chain(&to.to_le_bytes()).chain(bytes)
            {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x100_0000_01b3);
            }
        }
        h
    }
}
