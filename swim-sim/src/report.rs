//! The report of a finished run: the JSON document and the readable summary.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::checks::{BroadcastRecord, Checks, DepartureKind, Exercised};
use crate::flood::{FloodKind, FloodStats, FLOOD_MULTIPLE, NORMAL_PER_PROBE_INTERVAL};
use crate::refusals::Refusals;
use crate::sim::{PhaseEnd, Simulation};
use swim_core::wire::{Message, Update, Writer};
use swim_core::{NodeId, State};

/// Detection latencies of crashed nodes, in seconds; null where nothing crashed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Detection {
    /// Crash to first Suspected at any live node: median.
    pub first_suspect_p50: Option<f64>,
    /// 99th percentile.
    pub first_suspect_p99: Option<f64>,
    /// Maximum.
    pub first_suspect_max: Option<f64>,
    /// Crash to first Failed at any live node: median.
    pub first_failed_p50: Option<f64>,
    /// 99th percentile.
    pub first_failed_p99: Option<f64>,
    /// Maximum.
    pub first_failed_max: Option<f64>,
    /// Crash to Failed at every live node: median.
    pub all_failed_p50: Option<f64>,
    /// 99th percentile.
    pub all_failed_p99: Option<f64>,
    /// Maximum.
    pub all_failed_max: Option<f64>,
    /// First Suspected anywhere to Failed at every live node, per crash:
    /// the part of detection after someone noticed, which no node may make
    /// shorter than `suspicion_min` (the rest is the confirmations' and the
    /// Failed claim's spread): median.
    pub suspect_to_all_failed_p50: Option<f64>,
    /// 99th percentile.
    pub suspect_to_all_failed_p99: Option<f64>,
    /// Maximum.
    pub suspect_to_all_failed_max: Option<f64>,
    /// The shortest suspicion timeout at the cluster's size (memberlist's
    /// `suspicionTimeout`), in seconds.
    pub suspicion_min: f64,
    /// The bound the configuration implies for `all_failed`.
    pub bound: f64,
    /// Crashes (not undone by a restart) that were Failed at every live node.
    pub all_failed_count: u32,
    /// Crashes undone by a restart before every live node knew.
    pub restarted: u32,
}

/// Spread of one application broadcast.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BroadcastReport {
    /// When it was sent, in seconds.
    pub sent_seconds: f64,
    /// Nodes that delivered it.
    pub delivered: usize,
    /// Seconds until every node owed it had it (every node running both
    /// when it was sent and since, but its origin); null if some never did.
    pub everywhere_seconds: Option<f64>,
    /// Nodes owed it that had not delivered it at the end.
    pub missing: u32,
    /// Deliveries beyond the first at one process (must be 0).
    pub duplicates: u32,
}

/// What a flood's outsiders sent in the fault phase and what came back.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FloodReport {
    /// Outsiders sending.
    pub outsiders: u32,
    /// When they started, in seconds.
    pub start_seconds: f64,
    /// When they stopped (at the latest, the end of the fault phase).
    pub end_seconds: f64,
    /// Datagrams per second each sent: `multiple` times a member's normal
    /// rate.
    pub datagrams_per_second_each: f64,
    /// The multiple of a member's normal rate.
    pub multiple: u32,
    /// A member's normal rate, in datagrams per probe interval.
    pub normal_per_probe_interval: u32,
    /// What was sent, delivered, accepted and answered.
    #[serde(flatten)]
    pub counts: FloodStats,
}

/// Everything measured in one run. Field names are the JSON report's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The built-in scenario.
    pub scenario: String,
    /// Nodes at the start.
    pub nodes: u32,
    /// The run's seed.
    pub seed: u64,
    /// Protocol profile (`lan`, `wan`, `local`).
    pub profile: String,
    /// Lifeguard on or off.
    pub lifeguard: bool,
    /// Datagram loss probability.
    pub loss: f64,
    /// Probability a datagram is delivered twice.
    pub duplicate: f64,
    /// One-way latency range, milliseconds.
    pub latency_ms: [f64; 2],
    /// Slow nodes.
    pub slow: u32,
    /// How late slow nodes handle their datagrams, milliseconds.
    pub slow_delay_ms: f64,
    /// The partition's start and end in seconds, if there was one.
    pub partition: Option<[f64; 2]>,
    /// How every node treated sealing: `off` (plaintext), `accept`, `seal`
    /// or `require` (one key shared by every node).
    pub encryption: String,
    /// Simulated time.
    pub simulated_seconds: f64,
    /// Wall-clock time the run took.
    pub wall_seconds: f64,
    /// Seconds until every node first saw every node as a member and every
    /// healthy (not slow) node saw every healthy node Alive; null if never.
    pub join_convergence_seconds: Option<f64>,
    /// Datagrams sent (by all nodes) until then.
    pub messages_to_converge: Option<u64>,
    /// Bytes sent until then.
    pub bytes_to_converge: Option<u64>,
    /// The least a join could send: every node receives every other node's
    /// member record once, N × (N − 1) encoded records.
    pub join_lower_bound_bytes: u64,
    /// `bytes_to_converge` over that lower bound (the join's overhead).
    pub join_bytes_over_lower_bound: Option<f64>,
    /// Seconds until every node first saw every node as a member (Alive
    /// or Suspect): the join's convergence when loss keeps some suspicion
    /// running at all times; null if never.
    pub membership_convergence_seconds: Option<f64>,
    /// Datagrams sent until then.
    pub messages_to_membership: Option<u64>,
    /// Whether every live node saw every live node Alive at the end.
    pub converged_at_end: bool,
    /// Seconds the liveness phase (faults off) took until every live node
    /// agreed on who is live; null if not within the bound.
    pub liveness_seconds: Option<f64>,
    /// When the faults stopped, in seconds from the start: the last fault
    /// that disturbs membership, or the end of the fault phase when a fault
    /// lasts all of it (loss, duplication, slow nodes).
    pub faults_stopped_seconds: f64,
    /// Seconds from then until every live node saw every live node as a
    /// member and no departed node as live, for good; null if never.
    pub agreement_seconds: Option<f64>,
    /// Seconds from the partition's end until every live node saw every
    /// live node Alive; null without a partition, or if that never held.
    pub heal_seconds: Option<f64>,
    /// Nodes crashed.
    pub crashed: u32,
    /// How fast crashes were detected.
    pub detection: Detection,
    /// Crashed or left nodes some live node still believes live at the end.
    pub undetected: u32,
    /// Nodes that left gracefully.
    pub left: u32,
    /// Failed events about leaving nodes (they should be Left).
    pub left_seen_as_failed: u32,
    /// Failed events about live nodes (a partition's doing excepted).
    pub false_positives: u64,
    /// Distinct live nodes so declared.
    pub false_positive_nodes: u32,
    /// Distinct (member, incarnation) Failed claims behind `false_positives`.
    pub false_positive_episodes: u32,
    /// Of `false_positives`, those about slow nodes.
    pub false_positives_about_slow: u64,
    /// The first few false positive claims, in words.
    pub false_positive_examples: Vec<String>,
    /// Suspected events about live nodes (a partition's doing excepted).
    pub false_suspicions: u64,
    /// Distinct live nodes so suspected.
    pub false_suspicion_nodes: u32,
    /// Distinct (member, incarnation) suspicions behind `false_suspicions`.
    pub false_suspicion_episodes: u32,
    /// Of `false_suspicions`, those about slow nodes.
    pub false_suspicions_about_slow: u64,
    /// Distinct (observer, member) pairs where the observer declared a live
    /// member Failed while the two were cut off by a partition or a clog:
    /// at most the pairs across the cut.
    pub partition_failures: u64,
    /// Failed events about live nodes excused by a partition or a clog:
    /// across the cut while in force, or any within the settle time after
    /// it healed.
    pub partition_failure_events: u64,
    /// Of those, the events after the cut healed (claims made across the
    /// cut still spreading).
    pub failures_after_heal: u64,
    /// Application broadcasts and their spread.
    pub broadcasts: Vec<BroadcastReport>,
    /// The longest time, over every broadcast, from its send until every
    /// node owed it had delivered it; null when some broadcast missed a
    /// node (or none was sent).
    pub broadcast_all_seconds: Option<f64>,
    /// Deliveries made over deliveries owed (each broadcast to every node
    /// running when it was sent and still running at the end, but its
    /// origin); null when none was owed.
    pub broadcast_delivery_ratio: Option<f64>,
    /// Datagrams sent by all nodes.
    pub datagrams_sent: u64,
    /// Bytes sent by all nodes.
    pub bytes_sent: u64,
    /// Datagrams the network did not deliver: lost at the loss rate or cut
    /// off by a partition or a clog.
    pub datagrams_lost: u64,
    /// Of those, cut off by a partition or a clog.
    pub datagrams_cut: u64,
    /// Datagrams sent per node per simulated second.
    pub datagrams_per_node_per_second: f64,
    /// Bytes sent per node per simulated second.
    pub bytes_per_node_per_second: f64,
    /// The largest member table (tombstones included) any node held.
    pub peak_member_table: u32,
    /// The longest dissemination queue any node held at a once-a-second
    /// sample (at most the configuration's `max_gossip_queue`).
    pub peak_gossip_queue: usize,
    /// The highest mean of the nodes' gossip queues at a sample.
    pub peak_gossip_queue_mean: f64,
    /// The most datagrams in the network at once (sent, not yet delivered
    /// or lost): held by the simulator, not the nodes.
    pub peak_datagrams_in_flight: u64,
    /// The most payload bytes in the network at once.
    pub peak_bytes_in_flight: u64,
    /// Datagrams the nodes refused in the fault phase, by reason (the
    /// fields of swim-core's `Stats::rejected`, plus `other` and `total`),
    /// summed over every process that ran.
    pub refused: Refusals,
    /// Digests from non-members and ping requests for unknown targets the
    /// nodes turned down in the fault phase, summed likewise.
    pub strangers_refused: u64,
    /// Duplicate copies (from `--duplicate`) that a sealing receiver
    /// refused as replays; counted in `refused.replayed` too.
    pub copies_refused_as_replays: u64,
    /// The flood, if the run had one; its datagrams, and the members'
    /// answers to outsiders, are not in the member traffic figures above.
    pub flood: Option<FloodReport>,
    /// Simulated node-seconds (every process's running time, added up).
    pub node_seconds: f64,
    /// Simulator speed: simulated node-seconds per wall second.
    pub node_seconds_per_wall_second: f64,
    /// Wall microseconds per simulated node-second: the protocol's CPU cost
    /// per node per second of its time, the simulator's own work included.
    pub wall_micros_per_node_second: f64,
    /// Hex FNV-1a hash over every delivered datagram and every event, in order.
    pub trace_hash: String,
    /// How much failure handling the run exercised: a run that held every
    /// invariant because nothing happened shows zeros here.
    pub exercised: Exercised,
    /// Invariants broken, with the simulated time (at most 100 listed).
    pub invariant_violations: Vec<String>,
    /// Expectations given with `--expect` that the run did not hold.
    pub expectations_failed: Vec<String>,
    /// The command that replays this run.
    pub replay: String,
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn stats(mut v: Vec<f64>) -> [Option<f64>; 3] {
    v.sort_by(f64::total_cmp);
    [percentile(&v, 50.0), percentile(&v, 99.0), v.last().copied()]
}

impl Report {
    /// Build the report of `sim` (call [`Simulation::finish`] first), which
    /// took `wall` of real time.
    pub fn new(sim: &Simulation, wall: Duration) -> Report {
        let spec = sim.spec();
        let checks = sim.checks();
        let crashes: Vec<_> = checks.departures().iter().filter(|d| d.kind == DepartureKind::Crash).collect();
        let since = |t: Option<swim_core::Instant>, at: swim_core::Instant| t.map(|t| (t - at).as_secs_f64());
        let suspect: Vec<f64> =
            crashes.iter().filter_map(|d| since(d.first_suspect.or(d.first_failed), d.at)).collect();
        let failed: Vec<f64> = crashes.iter().filter_map(|d| since(d.first_failed, d.at)).collect();
        let all: Vec<f64> = crashes.iter().filter(|d| !d.restarted).filter_map(|d| since(d.all_gone, d.at)).collect();
        let all_count = all.len() as u32;
        let noticed: Vec<f64> = crashes
            .iter()
            .filter(|d| !d.restarted)
            .filter_map(|d| Some((d.all_gone? - d.first_suspect.or(d.first_failed)?).as_secs_f64()))
            .collect();
        let [n50, n99, nmax] = stats(noticed);
        let [s50, s99, smax] = stats(suspect);
        let [f50, f99, fmax] = stats(failed);
        let [a50, a99, amax] = stats(all);
        let detection = Detection {
            first_suspect_p50: s50,
            first_suspect_p99: s99,
            first_suspect_max: smax,
            first_failed_p50: f50,
            first_failed_p99: f99,
            first_failed_max: fmax,
            all_failed_p50: a50,
            all_failed_p99: a99,
            all_failed_max: amax,
            suspect_to_all_failed_p50: n50,
            suspect_to_all_failed_p99: n99,
            suspect_to_all_failed_max: nmax,
            suspicion_min: crate::bounds::suspicion_min(sim.config(), spec.nodes).as_secs_f64(),
            bound: sim.detection_bound().as_secs_f64(),
            all_failed_count: all_count,
            restarted: crashes.iter().filter(|d| d.restarted).count() as u32,
        };
        let leaves = checks.departures().iter().filter(|d| d.kind == DepartureKind::Leave);
        let end = sim.phase_end().cloned().unwrap_or(PhaseEnd {
            at: sim.now(),
            traffic: sim.traffic(),
            node_seconds: sim.node_seconds(),
            converged: checks.converged(),
            undetected: checks.undetected().len() as u32,
            settled_since: sim.settled_since(),
            refusals: sim.refusals(),
            flood: sim.flood().map(|f| f.stats),
        });
        let traffic = end.traffic;
        let node_seconds = end.node_seconds;
        let per_node = |x: u64| {
            if node_seconds > 0.0 {
                x as f64 / node_seconds
            } else {
                0.0
            }
        };
        let wall_seconds = wall.as_secs_f64();
        let convergence = sim.convergence();
        let membership = sim.membership();
        let secs = |t: swim_core::Instant| t.as_nanos() as f64 / 1e9;
        let fp = &checks.false_positives;
        let fs = &checks.false_suspicions;
        let mut violations: Vec<String> = checks
            .violations()
            .iter()
            .take(100)
            .map(|v| format!("t={:.3}s: {}", v.at.as_nanos() as f64 / 1e9, v.what))
            .collect();
        if sim.violations_dropped() > 0 {
            violations.push(format!("... and {} more", sim.violations_dropped()));
        }
        Report {
            scenario: spec.scenario.name().to_owned(),
            nodes: spec.nodes,
            seed: spec.seed,
            profile: spec.profile.name().to_owned(),
            lifeguard: spec.lifeguard,
            loss: spec.loss,
            duplicate: spec.duplicate,
            latency_ms: [spec.latency.min.as_secs_f64() * 1e3, spec.latency.max.as_secs_f64() * 1e3],
            slow: spec.slow,
            slow_delay_ms: spec.slow_delay.as_secs_f64() * 1e3,
            partition: spec.partition.map(|p| [p.start.as_secs_f64(), p.end.as_secs_f64()]),
            encryption: spec.encryption.as_str().to_owned(),
            simulated_seconds: secs(end.at),
            wall_seconds,
            join_convergence_seconds: convergence.map(|c| secs(c.at)),
            messages_to_converge: convergence.map(|c| c.datagrams),
            bytes_to_converge: convergence.map(|c| c.bytes),
            join_lower_bound_bytes: join_lower_bound(sim),
            join_bytes_over_lower_bound: convergence.map(|c| c.bytes as f64 / join_lower_bound(sim).max(1) as f64),
            membership_convergence_seconds: membership.map(|c| secs(c.at)),
            messages_to_membership: membership.map(|c| c.datagrams),
            converged_at_end: end.converged,
            liveness_seconds: sim.liveness().map(|d| d.as_secs_f64()),
            faults_stopped_seconds: secs(sim.faults_stopped()),
            agreement_seconds: sim.agreement().map(|d| d.as_secs_f64()),
            heal_seconds: sim.heal().map(|d| d.as_secs_f64()),
            crashed: crashes.len() as u32,
            detection,
            undetected: end.undetected,
            left: leaves.clone().count() as u32,
            left_seen_as_failed: leaves.map(|d| d.failed_instead_of_left).sum(),
            false_positives: fp.count,
            false_positive_nodes: fp.nodes.len() as u32,
            false_positive_episodes: fp.episodes.len() as u32,
            false_positives_about_slow: fp.about_slow,
            false_positive_examples: fp.examples.clone(),
            false_suspicions: fs.count,
            false_suspicion_nodes: fs.nodes.len() as u32,
            false_suspicion_episodes: fs.episodes.len() as u32,
            false_suspicions_about_slow: fs.about_slow,
            partition_failures: fp.partition_pairs.len() as u64,
            partition_failure_events: fp.across_partition,
            failures_after_heal: fp.after_heal,
            broadcasts: checks
                .broadcasts()
                .iter()
                .map(|b| BroadcastReport {
                    sent_seconds: b.sent.as_nanos() as f64 / 1e9,
                    delivered: b.delivered.len(),
                    everywhere_seconds: b.everywhere.map(|t| (t - b.sent).as_secs_f64()),
                    missing: b.missing,
                    duplicates: b.duplicates,
                })
                .collect(),
            broadcast_all_seconds: broadcast_all(checks.broadcasts()),
            broadcast_delivery_ratio: delivery_ratio(checks),
            datagrams_sent: traffic.datagrams_sent,
            bytes_sent: traffic.bytes_sent,
            datagrams_lost: traffic.lost + traffic.cut,
            datagrams_cut: traffic.cut,
            datagrams_per_node_per_second: per_node(traffic.datagrams_sent),
            bytes_per_node_per_second: per_node(traffic.bytes_sent),
            peak_member_table: sim.peak_members(),
            peak_gossip_queue: sim.peak_gossip(),
            peak_gossip_queue_mean: sim.peak_gossip_mean(),
            peak_datagrams_in_flight: sim.in_flight().peak_datagrams,
            peak_bytes_in_flight: sim.in_flight().peak_bytes,
            refused: end.refusals,
            strangers_refused: end.refusals.strangers,
            copies_refused_as_replays: traffic.copies_refused,
            flood: sim.flood().zip(end.flood).map(|(f, stats)| FloodReport {
                outsiders: f.spec().count,
                start_seconds: f.spec().start.as_secs_f64(),
                end_seconds: f.spec().end.as_secs_f64(),
                datagrams_per_second_each: f.rate(),
                multiple: FLOOD_MULTIPLE,
                normal_per_probe_interval: NORMAL_PER_PROBE_INTERVAL,
                counts: stats,
            }),
            node_seconds,
            node_seconds_per_wall_second: if wall_seconds > 0.0 { node_seconds / wall_seconds } else { 0.0 },
            wall_micros_per_node_second: if node_seconds > 0.0 { wall_seconds * 1e6 / node_seconds } else { 0.0 },
            trace_hash: sim.trace_hash().hex(),
            exercised: checks.exercised,
            invariant_violations: violations,
            expectations_failed: Vec::new(),
            replay: spec.replay_command(),
        }
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // Serialising plain numbers, strings and vectors cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The heal line of the summary, when there was a partition.
    fn heal_after(&self) -> Option<String> {
        self.partition?;
        Some(match self.heal_seconds {
            Some(t) => format!("after the partition healed, every live node saw every live node Alive in {t:.2} s"),
            None => "after the partition healed, live nodes never all saw each other Alive".to_owned(),
        })
    }

    /// The readable summary the CLI prints.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let opt = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.2} s"));
        let _ = write!(
            s,
            "scenario {} | {} nodes | profile {} | lifeguard {} | loss {:.1}% | latency {}..{} ms | {} slow",
            self.scenario,
            self.nodes,
            self.profile,
            if self.lifeguard { "on" } else { "off" },
            self.loss * 100.0,
            self.latency_ms[0],
            self.latency_ms[1],
            self.slow
        );
        if self.encryption != "off" {
            let _ = write!(s, " | sealed: encryption {}, one key at every node", self.encryption);
        }
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "simulated {:.0} s in {:.2} s wall ({:.0} node-seconds per second, {:.1} µs per node-second)",
            self.simulated_seconds,
            self.wall_seconds,
            self.node_seconds_per_wall_second,
            self.wall_micros_per_node_second
        );
        match self.join_convergence_seconds {
            Some(t) => {
                let _ = writeln!(
                    s,
                    "join converged after {t:.2} s: {} datagrams, {} bytes ({:.2}x the lower bound of {} bytes)",
                    self.messages_to_converge.unwrap_or(0),
                    self.bytes_to_converge.unwrap_or(0),
                    self.join_bytes_over_lower_bound.unwrap_or(0.0),
                    self.join_lower_bound_bytes
                );
            }
            None => {
                let _ = writeln!(s, "join never converged");
            }
        }
        if let Some(t) = self.membership_convergence_seconds {
            let _ = writeln!(
                s,
                "every node knew every node (Alive or Suspect) after {t:.2} s: {} datagrams",
                self.messages_to_membership.unwrap_or(0)
            );
        }
        let _ = writeln!(
            s,
            "converged at the end: {}; after the faults stopped at {:.0} s, agreement in {}",
            if self.converged_at_end { "yes" } else { "no" },
            self.faults_stopped_seconds,
            opt(self.agreement_seconds)
        );
        let d = &self.detection;
        let _ = writeln!(s, "crashed {} nodes; detection (p50 / p99 / max):", self.crashed);
        let _ = writeln!(
            s,
            "  first suspected  {} / {} / {}",
            opt(d.first_suspect_p50),
            opt(d.first_suspect_p99),
            opt(d.first_suspect_max)
        );
        let _ = writeln!(
            s,
            "  first failed     {} / {} / {}",
            opt(d.first_failed_p50),
            opt(d.first_failed_p99),
            opt(d.first_failed_max)
        );
        let _ = writeln!(
            s,
            "  failed at all    {} / {} / {}   (bound {:.1} s)",
            opt(d.all_failed_p50),
            opt(d.all_failed_p99),
            opt(d.all_failed_max),
            d.bound
        );
        let _ = writeln!(
            s,
            "  suspected to failed at all {} / {} / {}   (the suspicion wait alone {:.1} s)",
            opt(d.suspect_to_all_failed_p50),
            opt(d.suspect_to_all_failed_p99),
            opt(d.suspect_to_all_failed_max),
            d.suspicion_min
        );
        let _ = writeln!(s, "  undetected at the end: {}", self.undetected);
        if self.left > 0 {
            let _ =
                writeln!(s, "left gracefully: {} (seen as failed instead: {})", self.left, self.left_seen_as_failed);
        }
        let _ = writeln!(
            s,
            "false positives: {} Failed events ({} claims) about {} live nodes",
            self.false_positives, self.false_positive_episodes, self.false_positive_nodes,
        );
        for e in &self.false_positive_examples {
            let _ = writeln!(s, "  {e}");
        }
        let _ = writeln!(
            s,
            "false suspicions: {} Suspected events ({} claims) about {} live nodes",
            self.false_suspicions, self.false_suspicion_episodes, self.false_suspicion_nodes,
        );
        if self.slow > 0 {
            let _ = writeln!(
                s,
                "  of which about the {} slow nodes: {} Failed, {} Suspected",
                self.slow, self.false_positives_about_slow, self.false_suspicions_about_slow
            );
        }
        if self.partition_failure_events > 0 {
            let _ = writeln!(
                s,
                "Failed about live nodes cut off by a partition or clog: {} pairs ({} events, {} after the heal)",
                self.partition_failures, self.partition_failure_events, self.failures_after_heal
            );
        }
        if let Some(h) = self.heal_after() {
            let _ = writeln!(s, "{h}");
        }
        if self.broadcasts.len() <= 3 {
            for b in &self.broadcasts {
                let _ = writeln!(
                    s,
                    "broadcast at {:.0} s reached {} nodes, everywhere after {}",
                    b.sent_seconds,
                    b.delivered,
                    opt(b.everywhere_seconds)
                );
            }
        }
        if let Some(ratio) = self.broadcast_delivery_ratio {
            let missed = self.broadcasts.iter().filter(|b| b.missing > 0).count();
            let duplicates: u32 = self.broadcasts.iter().map(|b| b.duplicates).sum();
            let _ = writeln!(
                s,
                "broadcasts: {} sent, {:.4} of owed deliveries made, {} missed some node, {} duplicate deliveries; \
                 all delivered everywhere after {}",
                self.broadcasts.len(),
                ratio,
                missed,
                duplicates,
                opt(self.broadcast_all_seconds)
            );
        }
        let _ = writeln!(
            s,
            "traffic per node: {:.2} datagrams/s, {:.0} bytes/s; peak member table {}, gossip queue {} \
             (mean at most {:.1}); at most {} datagrams ({:.1} MB) in flight at once",
            self.datagrams_per_node_per_second,
            self.bytes_per_node_per_second,
            self.peak_member_table,
            self.peak_gossip_queue,
            self.peak_gossip_queue_mean,
            self.peak_datagrams_in_flight,
            self.peak_bytes_in_flight as f64 / 1e6
        );
        if let Some(f) = &self.flood {
            let _ = writeln!(
                s,
                "flood: {} outsiders from {:.0} s to {:.0} s, {:.1} datagrams/s each ({}x a member's {} per probe interval): \
                 {} sent ({} bytes), {} delivered ({} accepted), {} lost; members answered outsiders with {} datagrams ({} bytes)",
                f.outsiders,
                f.start_seconds,
                f.end_seconds,
                f.datagrams_per_second_each,
                f.multiple,
                f.normal_per_probe_interval,
                f.counts.sent,
                f.counts.bytes,
                f.counts.delivered,
                f.counts.accepted,
                f.counts.lost + f.counts.cut,
                f.counts.replies,
                f.counts.reply_bytes
            );
            let kinds: Vec<String> = FloodKind::ALL
                .iter()
                .zip(f.counts.by_kind)
                .filter(|(_, n)| *n > 0)
                .map(|(k, n)| format!("{} {n}", k.name()))
                .collect();
            let _ = writeln!(s, "  sent by kind: {}", kinds.join(", "));
        }
        if self.refused.total() > 0 || self.flood.is_some() {
            let reasons: Vec<String> = self.refused.nonzero().map(|(r, n)| format!("{r} {n}")).collect();
            let _ = write!(
                s,
                "refused by the nodes: {} datagrams ({}); {} requests from strangers",
                self.refused.total(),
                if reasons.is_empty() { "none".to_owned() } else { reasons.join(", ") },
                self.strangers_refused
            );
            if self.copies_refused_as_replays > 0 {
                let _ = write!(s, "; {} replays were the network's duplicate copies", self.copies_refused_as_replays);
            }
            let _ = writeln!(s);
        }
        let e = &self.exercised;
        let _ = write!(
            s,
            "exercised: {} suspicions, {} deaths, {} refutations, {} leaves, {} crashes, {} restarts, {} partitions",
            e.suspicions, e.deaths, e.refutations, e.leaves, e.crashes, e.restarts, e.partitions
        );
        let _ = writeln!(s, "{}", if e.nothing() { " (no failure handling was exercised)" } else { "" });
        let _ = writeln!(s, "trace hash {}", self.trace_hash);
        if self.invariant_violations.is_empty() {
            let _ = writeln!(s, "invariants: all held");
        } else {
            let _ = writeln!(s, "INVARIANT VIOLATIONS: {}", self.invariant_violations.len());
            for v in &self.invariant_violations {
                let _ = writeln!(s, "  {v}");
            }
        }
        for e in &self.expectations_failed {
            let _ = writeln!(s, "NOT AS EXPECTED: {e}");
        }
        if !self.invariant_violations.is_empty() || !self.expectations_failed.is_empty() {
            let _ = writeln!(s, "replay: {}", self.replay);
        }
        s
    }
}

/// The least any join of every node could send: each node must receive
/// every other node's member record (Alive, incarnation 0, its metadata)
/// once, so N × (N − 1) records.
fn join_lower_bound(sim: &Simulation) -> u64 {
    let n = sim.spec().nodes;
    let mut records = 0u64;
    let mut buf = [0u8; 2048];
    for id in 0..n {
        let meta = sim.node(id).map(|node| node.local_member().meta).unwrap_or_default();
        let record: Message<'_, NodeId> = Message::Update(Update {
            member: NodeId(id),
            state: State::Alive,
            incarnation: 0,
            instance: 0,
            meta: &meta,
            accuser: None,
        });
        let mut w = Writer::new(&mut buf);
        if record.encode(&mut w).is_ok() {
            records += w.len() as u64;
        }
    }
    records * u64::from(n.saturating_sub(1))
}

/// The longest time from a broadcast's send until every node owed it had
/// it; `None` when some broadcast never got there, or none was sent.
fn broadcast_all(broadcasts: &[BroadcastRecord]) -> Option<f64> {
    let mut longest: Option<f64> = None;
    for b in broadcasts {
        let took = (b.everywhere? - b.sent).as_secs_f64();
        longest = Some(longest.map_or(took, |l| l.max(took)));
    }
    longest
}

/// Deliveries made over deliveries owed, at the end of the run.
fn delivery_ratio(checks: &Checks) -> Option<f64> {
    let (mut made, mut owed) = (0u64, 0u64);
    for b in checks.broadcasts() {
        let missing = u64::from(b.missing);
        // Owed and made: what is owed at the end, less what is missing.
        let owed_now = checks.broadcast_owed(b);
        owed += owed_now;
        made += owed_now.saturating_sub(missing);
    }
    (owed > 0).then(|| made as f64 / owed as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&[3.0], 99.0), Some(3.0));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
