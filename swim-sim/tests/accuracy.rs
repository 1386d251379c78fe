//! Accuracy under loss: no live node is declared failed, and the cluster converges.

use std::time::Duration;

use swim_sim::{CrashSpec, LatencyRange, PartitionSpec, Profile, Report, Scenario, Simulation};

#[test]
fn a_hundred_nodes_under_five_percent_loss_for_ten_minutes_have_no_false_positives() {
    for seed in [1, 2] {
        let mut spec = Scenario::Loss.spec(seed);
        spec.nodes = 100;
        spec.loss = 0.05;
        spec.duration = Duration::from_secs(600);
        let replay = spec.replay_command();
        let mut sim = Simulation::new(spec).expect("valid config");
        sim.run();
        let r = Report::new(&sim, Duration::ZERO);
        assert_eq!(r.false_positives, 0, "{:?}\n{replay}", r.false_positive_examples);
        assert!(r.membership_convergence_seconds.is_some(), "{replay}");
        assert!(r.join_convergence_seconds.is_some(), "{replay}");
        assert!(r.invariant_violations.is_empty(), "{:?}\n{replay}", r.invariant_violations);
    }
}

/// Five of 50 nodes handle every datagram late, for five minutes at 1% loss:
/// they are suspected over and over and refute each time, and none of them
/// (nor any healthy node) may be declared Failed. The seeds are among those
/// that failed a slow member before suspicions at a newer incarnation got a
/// window of their own and suspects that speak were told first-hand (at
/// 2,500 ms, seeds 41 and 46 gave 98 and 141 Failed events).
/// `swim-sim --nodes 50 --slow 5 --slow-delay 2500 --loss 0.01 --duration 300 --crash none --seed 41`
#[test]
fn members_that_answer_late_but_keep_refuting_are_never_declared_failed() {
    for seed in [41, 46] {
        let mut spec = Scenario::Demo.spec(seed);
        spec.nodes = 50;
        spec.slow = 5;
        spec.slow_delay = Duration::from_millis(2500);
        spec.loss = 0.01;
        spec.duration = Duration::from_secs(300);
        spec.crashes = Vec::new();
        let replay = spec.replay_command();
        let mut sim = Simulation::new(spec).expect("valid config");
        sim.run();
        let r = Report::new(&sim, Duration::ZERO);
        assert_eq!(r.false_positives, 0, "{:?}\n{replay}", r.false_positive_examples);
        assert!(r.false_suspicions_about_slow > 0, "the slow nodes were never even suspected: {replay}");
        assert!(r.invariant_violations.is_empty(), "{:?}\n{replay}", r.invariant_violations);
    }
}

/// At 10% loss a join reply can lose a datagram, and so can the exchanges
/// meant to fill the gap, and so can a join request: 200 nodes joining
/// through one seed converge within 10 s all the same (seed 7 took 19.1 s
/// while follow-up exchanges stopped at the first one that taught nothing
/// and join retries doubled from the first).
/// `swim-sim --nodes 200 --loss 0.1 --duration 40 --crash none --seed 7`
#[test]
fn two_hundred_nodes_join_within_ten_seconds_at_ten_percent_loss() {
    for seed in [7, 16] {
        let mut spec = Scenario::Demo.spec(seed);
        spec.nodes = 200;
        spec.loss = 0.1;
        spec.duration = Duration::from_secs(40);
        spec.crashes = Vec::new();
        let replay = spec.replay_command();
        let mut sim = Simulation::new(spec).expect("valid config");
        sim.run();
        let r = Report::new(&sim, Duration::ZERO);
        let joined = r.join_convergence_seconds.unwrap_or(f64::INFINITY);
        assert!(joined <= 10.0, "converged after {joined} s\n{replay}");
        assert!(r.invariant_violations.is_empty(), "{:?}\n{replay}", r.invariant_violations);
    }
}

/// Crashes right after a join, under 10% loss, are Failed everywhere as
/// fast as crashes in steady state. Detection is the time until some
/// member first probes the crashed one and suspects it, then memberlist's
/// suspicion wait for the cluster's size and the spread of the Failed
/// claim. The first part is the probe schedule's: with every member probing
/// one member a period, the crashed one is first probed after about a
/// second on average, an exponential tail (5.3 s for one of these 30
/// crashes), so it is bounded loosely. From the first suspicion on, every
/// crash is Failed everywhere within the wait plus 2 s (at 1,000 nodes and
/// 10% loss, seeds 1, 2, 3, 7: p99 12.65-12.70 s for a 12 s wait), and as
/// fast after the join as in steady state. Before the follow-up exchanges
/// kept going until a peer's digest matched, a node could still be
/// learning members after the join "converged", and detection right after
/// a join lagged steady state by 2.5-4.5 s at 1,000 nodes.
/// `swim-sim --nodes 200 --loss 0.1 --duration 70 --crash 5@6 --seed 1`
#[test]
fn crashes_right_after_a_join_under_loss_are_failed_as_fast_as_in_steady_state() {
    for seed in [1, 2, 3] {
        let mut worst = [0.0f64; 2];
        for (i, at) in [6, 45].into_iter().enumerate() {
            let mut spec = Scenario::Demo.spec(seed);
            spec.nodes = 200;
            spec.loss = 0.1;
            spec.duration = Duration::from_secs(70);
            spec.crashes = vec![CrashSpec { count: 5, at: Duration::from_secs(at) }];
            let replay = spec.replay_command();
            let wait = spec.config().suspicion_timeout(200).as_secs_f64();
            let mut sim = Simulation::new(spec).expect("valid config");
            sim.run();
            let r = Report::new(&sim, Duration::ZERO);
            let d = &r.detection;
            assert_eq!(d.all_failed_count, 5, "every crash Failed everywhere\n{replay}");
            let first = d.first_suspect_max.expect("crashes were suspected");
            assert!(first <= 8.0, "first suspected {first:.2} s after the crash\n{replay}");
            // Past the first suspicion, only the wait and the spread of the
            // confirmations and the Failed claim are left: at least the
            // wait, and at most 2 s more (issue 17's target).
            assert_eq!(d.suspicion_min, wait);
            let noticed = (d.suspect_to_all_failed_p50.unwrap_or(0.0), d.suspect_to_all_failed_max.unwrap_or(f64::MAX));
            assert!(noticed.0 >= wait, "Failed everywhere {:.2} s after the first suspicion\n{replay}", noticed.0);
            assert!(noticed.1 <= wait + 2.0, "{:.2} s from first suspicion, the wait {wait:.2} s\n{replay}", noticed.1);
            assert_eq!(r.false_positives, 0, "{replay}");
            worst[i] = noticed.1;
        }
        assert!(worst[0] <= worst[1] + 1.0, "after the join {:.2} s, in steady state {:.2} s", worst[0], worst[1]);
    }
}

/// A node restarted or added during a partition joins through one running
/// member picked at random; when that member crashed for good before the
/// join got across, the node stayed alone forever (it heard nothing: no
/// protocol could do better with a dead seed) and the liveness phase failed
/// with "n0 not seen live", since the lone node sees nobody. Nodes now join
/// through the pick and through n0, as a deployment lists its seeds. These
/// are the fuzzer's inputs (`fuzz/artifacts-found/sim/late-joiner-whose-seed-crashed-across-a-partition`,
/// `restart-whose-seed-crashed-across-a-partition`, `long-partition-with-churn`):
/// n5 joined through n3 at 85 s, n3 crashed at 90 s; n10 through n1 at 105
/// s, n1 crashed at 110 s; all inside the partition.
#[test]
fn a_node_whose_seed_crashed_before_answering_still_joins_through_the_cluster_seed() {
    let runs = [
        Run {
            scenario: Scenario::Churn,
            seed: 10344644714436413951,
            nodes: 3,
            duration: 153,
            lan: true,
            loss: 0.17,
            duplicate: 0.02,
            latency: (3, 19),
            slow: 1,
            crashes: &[(2, 61)],
            partition: (61, 122),
            lifeguard: true,
        },
        Run {
            scenario: Scenario::Churn,
            seed: 216353102037516291,
            nodes: 8,
            duration: 174,
            lan: false,
            loss: 0.03,
            duplicate: 0.03,
            latency: (1, 4),
            slow: 1,
            crashes: &[(1, 58), (1, 41)],
            partition: (81, 148),
            lifeguard: false,
        },
        Run {
            scenario: Scenario::Churn,
            seed: 270518565470211,
            nodes: 6,
            duration: 138,
            lan: false,
            loss: 0.02,
            duplicate: 0.0,
            latency: (5, 5),
            slow: 0,
            crashes: &[],
            partition: (4, 104),
            lifeguard: true,
        },
    ];
    runs.iter().for_each(Run::settles);
}

/// Two ways a node went on missing the cluster's news after a partition,
/// both found by the sim fuzz target.
///
/// A partition that outlasts the tombstones (9..92 s, 6 nodes, local
/// timings): each half forgets the other, and only the absent-seed
/// exchange joins them again. Its reply taught the requester the other
/// half, but members new to us in a reply went out as one echo each (right
/// after a join, where everyone else knows them), so the rest of its half
/// heard of only some of them: n5 never saw n2 or n4 in the 29 s allowed.
/// `swim-sim --scenario join --seed 18446743707197702159 --nodes 6 --duration 94 --profile local --loss 0.03 --duplicate 0.03 --latency 4..27 --slow 1 --slow-delay 1500 --crash none --partition 9..92 --no-lifeguard`
///
/// A slow node (n3) cut off by a short partition while three nodes crash:
/// the others declared it dead and, while it could not hear them, the
/// crashes; their Failed claims were spent by the time it was back, and
/// as a slow, unhealthy node it probes every eight seconds or so, so it
/// took 49 s to see the last crash (bound 30.5 s). A node told that it was
/// declared dead now catches up with an exchange: 5.4 s.
/// `swim-sim --scenario crash --seed 2 --nodes 6 --duration 90 --profile local --loss 0.05 --duplicate 0 --latency 0..0 --slow 1 --slow-delay 1500 --crash 2@80 --crash 1@80 --partition 80..85`
#[test]
fn a_node_back_from_a_partition_learns_what_it_missed() {
    let runs = [
        Run {
            scenario: Scenario::Join,
            seed: 18446743707197702159,
            nodes: 6,
            duration: 94,
            lan: false,
            loss: 0.03,
            duplicate: 0.03,
            latency: (4, 27),
            slow: 1,
            crashes: &[],
            partition: (9, 92),
            lifeguard: false,
        },
        Run {
            scenario: Scenario::Crash,
            seed: 2,
            nodes: 6,
            duration: 90,
            lan: false,
            loss: 0.05,
            duplicate: 0.0,
            latency: (0, 0),
            slow: 1,
            crashes: &[(2, 80), (1, 80)],
            partition: (80, 85),
            lifeguard: true,
        },
    ];
    runs.iter().for_each(Run::settles);
}

/// A fixed-seed run, as swim-sim's options give it (times in seconds,
/// latency in milliseconds, crash waves as (count, at)).
struct Run {
    scenario: Scenario,
    seed: u64,
    nodes: u32,
    duration: u64,
    lan: bool,
    loss: f64,
    duplicate: f64,
    latency: (u64, u64),
    slow: u32,
    crashes: &'static [(u32, u64)],
    partition: (u64, u64),
    lifeguard: bool,
}

impl Run {
    fn spec(&self) -> swim_sim::RunSpec {
        let secs = Duration::from_secs;
        let mut spec = self.scenario.spec(self.seed);
        spec.nodes = self.nodes;
        spec.duration = secs(self.duration);
        spec.profile = if self.lan { Profile::Lan } else { Profile::Local };
        spec.loss = self.loss;
        spec.duplicate = self.duplicate;
        spec.latency =
            LatencyRange { min: Duration::from_millis(self.latency.0), max: Duration::from_millis(self.latency.1) };
        spec.slow = self.slow;
        spec.slow_delay = Duration::from_millis(1500);
        spec.crashes = self.crashes.iter().map(|&(count, at)| CrashSpec { count, at: secs(at) }).collect();
        spec.partition = Some(PartitionSpec { start: secs(self.partition.0), end: secs(self.partition.1) });
        spec.lifeguard = self.lifeguard;
        spec
    }

    /// Run it: every live node sees every live node within the settle
    /// bound, and no invariant breaks.
    fn settles(&self) {
        let spec = self.spec();
        let replay = spec.replay_command();
        let mut sim = Simulation::new(spec).expect("valid config");
        sim.run();
        assert!(sim.checks().unseen().is_empty(), "unseen {:?}\n{replay}", sim.checks().unseen());
        let r = Report::new(&sim, Duration::ZERO);
        assert!(r.liveness_seconds.is_some(), "{replay}");
        assert!(r.invariant_violations.is_empty(), "{:?}\n{replay}", r.invariant_violations);
    }
}
