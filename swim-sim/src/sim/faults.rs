//! Faults and commands applied to the cluster: crashes, restarts, late
//! joins, leaves, partitions and broadcasts, on random nodes drawn from the
//! run's fault stream.

use swim_core::{Encryption, Input, Node, NodeId};

use super::{Recording, SimNode, Simulation};
use crate::checks::{broadcast_payload, Life};
use crate::seed;
use crate::spec::Fault;

impl Simulation {
    /// Start a process under `id` (fresh RNG per generation), joining
    /// through `seed` (and n0) if given.
    pub(super) fn start(&mut self, id: u32, seed: Option<u32>) {
        let now = self.now;
        let Some(slot) = self.slots.get_mut(id as usize) else {
            return;
        };
        let rng = seed::node_rng(self.spec.seed, id, slot.generation);
        // A recorder writes the generator's seed down; the node takes the generator.
        let rng_seed = rng.get_seed();
        if slot.generation == 0 {
            self.introduced += 1;
        }
        slot.generation += 1;
        // The configuration was validated in `with_config`, and a sealing
        // configuration gets its one key.
        let node = if self.config.encryption == Encryption::Off {
            Node::new(NodeId(id), self.config.clone(), rng, now)
        } else {
            Node::with_keys(NodeId(id), self.config.clone(), rng, now, core::slice::from_ref(&self.key))
        };
        let Ok(mut node) = node else {
            return;
        };
        if let Some(r) = self.recording.as_mut() {
            r.started(id, &mut node, rng_seed, self.buf.len());
        }
        if let Some(s) = seed {
            // Through the member picked and through n0, the cluster's own
            // seed (never crashed nor made to leave), as a deployment lists
            // its seeds: through the pick alone, a node whose only seed
            // crashed before answering it (across a partition, say) could
            // never join, whatever the protocol did.
            let seeds = [NodeId(s), NodeId(0)];
            let seeds = if s == 0 { &seeds[..1] } else { &seeds[..] };
            Recording::feed(self.recording.as_mut(), id, &mut node, now, Input::Join(seeds));
        }
        slot.node = Some(node);
        slot.started = Some(now);
        slot.leaving_since = None;
        slot.wakeup = None;
        self.checks.on_start(now, id);
        self.after_input(id);
    }

    /// A partition or clog ends: count it as exercised if it cut anything off.
    pub(super) fn count_cut(&mut self) {
        if self.traffic.cut > self.cut_at_start {
            self.checks.on_cut_happened();
        }
        self.cut_at_start = self.traffic.cut;
    }

    /// Stop a process: it handles nothing more; datagrams to it are dropped.
    pub(super) fn stop(&mut self, id: u32) -> Option<SimNode> {
        let now = self.now;
        let slot = self.slots.get_mut(id as usize)?;
        if let Some(t) = slot.started.take() {
            slot.lived += now - t;
        }
        slot.wakeup = None;
        slot.leaving_since = None;
        let node = slot.node.take();
        if let Some(r) = self.recording.as_mut() {
            r.stopped(id);
        }
        if let Some(node) = &node {
            self.retired.add(node.stats());
        }
        node
    }

    /// Up to `k` of `candidates`, chosen at random (a partial Fisher-Yates shuffle).
    pub(super) fn pick(&mut self, mut candidates: Vec<u32>, k: u32) -> Vec<u32> {
        let k = (k as usize).min(candidates.len());
        for i in 0..k {
            let j = i + seed::below(&mut self.fault_rng, (candidates.len() - i) as u64) as usize;
            candidates.swap(i, j);
        }
        candidates.truncate(k);
        candidates
    }

    fn running(&self, except_seed: bool) -> Vec<u32> {
        (0..self.slots.len() as u32)
            .filter(|&id| !(except_seed && id == 0))
            .filter(|&id| self.checks.life(id) == Life::Running)
            .collect()
    }

    pub(super) fn apply(&mut self, fault: Fault) {
        let now = self.now;
        if fault.disturbs() {
            self.last_disturbance = now;
        }
        match fault {
            Fault::Crash(k) => {
                let victims = self.running(true);
                for id in self.pick(victims, k) {
                    if let Some(node) = self.stop(id) {
                        self.checks.on_crash(now, id, node.incarnation());
                    }
                }
            }
            Fault::Restart(k) => {
                let crashed: Vec<u32> =
                    (0..self.slots.len() as u32).filter(|&id| self.checks.life(id) == Life::Crashed).collect();
                for id in self.pick(crashed, k) {
                    let seed = self.pick(self.running(false), 1).first().copied();
                    self.start(id, seed);
                }
            }
            Fault::Join(k) => {
                for _ in 0..k {
                    if self.next_id as usize >= self.slots.len() {
                        break;
                    }
                    let id = self.next_id;
                    self.next_id += 1;
                    let seed = self.pick(self.running(false), 1).first().copied();
                    self.start(id, seed);
                }
            }
            Fault::Leave(k) => {
                let leavers = self.running(true);
                for id in self.pick(leavers, k) {
                    if let Some(slot) = self.slots.get_mut(id as usize) {
                        if let Some(node) = slot.node.as_mut() {
                            Recording::feed(self.recording.as_mut(), id, node, now, Input::Leave);
                            slot.leaving_since = Some(now);
                        }
                    }
                    self.checks.on_leave(now, id);
                    self.after_input(id);
                }
            }
            Fault::ClogStart(k) => {
                self.cut_at_start = self.traffic.cut;
                let victims = self.running(true);
                for id in self.pick(victims, k) {
                    self.network.set_clogged(id, true);
                    self.checks.on_clog(now, id, true);
                }
            }
            Fault::ClogEnd => {
                self.count_cut();
                for id in 0..self.slots.len() as u32 {
                    self.network.set_clogged(id, false);
                    self.checks.on_clog(now, id, false);
                }
            }
            Fault::PartitionStart | Fault::PartitionEnd => {
                let on = fault == Fault::PartitionStart;
                if on {
                    self.healed_at = None;
                    self.heal = None;
                    self.cut_at_start = self.traffic.cut;
                } else if self.network.is_partitioned() {
                    self.healed_at = Some(now);
                    self.count_cut();
                }
                self.network.set_partitioned(on);
                self.checks.on_partition(now, on);
            }
            Fault::Broadcast(count) => {
                for _ in 0..count {
                    let Some(origin) = self.pick(self.running(false), 1).first().copied() else {
                        return;
                    };
                    let k = self.checks.on_broadcast_sent(now, origin);
                    if let Some(node) = self.slots[origin as usize].node.as_mut() {
                        // The payload is far below every preset's max_broadcast_len.
                        let payload = broadcast_payload(k);
                        Recording::feed(self.recording.as_mut(), origin, node, now, Input::Broadcast(&payload));
                    }
                    self.after_input(origin);
                }
            }
        }
    }
}
