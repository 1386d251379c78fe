//! The end of a run: the liveness phase (faults off, the cluster must
//! agree on who is live) and the end-of-run checks.

use std::time::Duration;

use swim_core::Instant;

use super::{PhaseEnd, Simulation, LIVENESS_STEP};
use crate::checks::Life;

impl Simulation {
    /// End the fault phase and run the liveness phase: faults stop (no
    /// loss, no partition, no slow node), and every running node must
    /// agree on who is live within the settle bound the configuration
    /// implies. Then check each node's table against its events, and every
    /// crash detected within its bound. Idempotent.
    pub fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.run_until(self.end);
        self.phase_end = Some(PhaseEnd {
            at: self.now,
            traffic: self.traffic,
            node_seconds: self.node_seconds(),
            converged: self.checks.converged(),
            undetected: self.checks.undetected().len() as u32,
            settled_since: self.settled_since,
            refusals: self.refusals(),
            flood: self.flood.as_ref().map(|f| f.stats),
        });
        self.liveness_phase();
        self.end_checks();
        self.finish_recording();
    }

    fn liveness_phase(&mut self) {
        let start = self.now;
        let settle = self.settle_bound();
        if self.network.is_partitioned() {
            self.healed_at = Some(start);
        }
        if self.network.is_partitioned() || self.network.is_clogged() {
            self.count_cut();
        }
        self.network.calm();
        if self.network.is_partitioned() || self.spec.partition.is_some() {
            self.checks.on_partition(start, false);
        }
        for id in 0..self.slots.len() as u32 {
            self.checks.on_clog(start, id, false);
        }
        self.end = start + settle;
        loop {
            if self.checks.agreed() {
                self.liveness = Some(self.now - start);
                break;
            }
            if self.now >= self.end {
                let unseen = self.checks.unseen();
                let undetected = self.checks.undetected();
                let mut what = format!("no agreement {:.1} s after faults stopped:", settle.as_secs_f64());
                if let Some(&(m, k)) = unseen.first() {
                    what += &format!(" {} live nodes not seen live everywhere (n{m} by {k} nodes);", unseen.len());
                }
                if let Some(m) = undetected.first() {
                    what += &format!(" {} departed nodes still believed live (n{m});", undetected.len());
                }
                self.checks.violate(self.now, what);
                break;
            }
            let next = self.now + LIVENESS_STEP;
            self.run_until(next);
        }
    }

    fn end_checks(&mut self) {
        let now = self.now;
        for id in 0..self.slots.len() as u32 {
            if self.checks.life(id) != Life::Running {
                continue;
            }
            if let Some(node) = self.slots[id as usize].node.as_ref() {
                let table = node.members().map(|m| (m.addr.0, m.state));
                self.checks.check_table(now, id, table);
            }
        }
        let bound = self.detection_bound();
        let late: Vec<(u32, Option<Duration>)> = self
            .checks
            .departures()
            .iter()
            .filter(|d| !d.restarted)
            .filter_map(|d| match d.all_gone {
                Some(t) if t - d.at > bound => Some((d.node, Some(t - d.at))),
                None if now - d.at >= bound => Some((d.node, None)),
                _ => None,
            })
            .collect();
        for (node, took) in late {
            let what = match took {
                Some(t) => format!(
                    "n{node} took {:.1} s to be gone at every live node, over the bound of {:.1} s",
                    t.as_secs_f64(),
                    bound.as_secs_f64()
                ),
                None => format!(
                    "n{node} is still live at some node {:.1} s after it went, over the bound of {:.1} s",
                    (now - self.departure_time(node)).as_secs_f64(),
                    bound.as_secs_f64()
                ),
            };
            self.checks.violate(now, what);
        }
    }

    /// The run is over: a recorded process still running stops cleanly,
    /// and its log gets its end record.
    fn finish_recording(&mut self) {
        let Some(recording) = self.recording.as_mut() else {
            return;
        };
        let id = recording.id();
        if let Some(node) = self.slots.get_mut(id as usize).and_then(|s| s.node.as_mut()) {
            recording.finish(id, node);
        }
    }

    fn departure_time(&self, node: u32) -> Instant {
        self.checks.departures().iter().rev().find(|d| d.node == node).map_or(Instant::ZERO, |d| d.at)
    }
}
