//! The comparison runs of DESIGN.md, issue 14's flood and issue 17's join under loss, at full size.
//! Too slow for the default test run (seconds to a minute each in release,
//! minutes in debug); run them with
//! `cargo test --release -p swim-sim --test scale -- --ignored`.

use std::time::Duration;

use swim_sim::{CrashSpec, Report, Scenario, Simulation};

fn run(spec: swim_sim::RunSpec) -> Report {
    let mut sim = Simulation::new(spec).expect("valid config");
    sim.run();
    Report::new(&sim, Duration::ZERO)
}

/// `cargo run --release -p swim-sim -- --scenario crash --nodes 1000 --duration 600 --crash 10@300 --seed 1`
#[test]
#[ignore = "15-40 s in release, minutes in debug"]
fn a_thousand_nodes_for_ten_minutes_detect_every_crash_without_false_positives() {
    let mut spec = Scenario::Crash.spec(1);
    spec.nodes = 1000;
    spec.duration = Duration::from_secs(600);
    spec.crashes = vec![CrashSpec::new(10, 300.0)];
    let r = run(spec);
    assert!(r.invariant_violations.is_empty(), "{:#?}\n{}", r.invariant_violations, r.replay);
    assert_eq!(r.false_positives, 0);
    assert_eq!(r.crashed, 10);
    assert_eq!(r.undetected, 0);
    assert!(r.join_convergence_seconds.is_some());
}

/// DESIGN.md's accuracy row: 1,000 nodes, LAN timing, 1-5 ms, 10% loss,
/// 1% crashed, 2 minutes: no false Failed about a live node.
/// `cargo run --release -p swim-sim -- --scenario loss --nodes 1000 --duration 120 --loss 0.1 --crash 10@60 --seed 1`
#[test]
#[ignore = "15-30 s in release, minutes in debug"]
fn a_thousand_nodes_under_ten_percent_loss_declare_no_live_node_failed() {
    let mut spec = Scenario::Loss.spec(1);
    spec.nodes = 1000;
    spec.duration = Duration::from_secs(120);
    spec.crashes = vec![CrashSpec::new(10, 60.0)];
    let r = run(spec);
    assert_eq!(r.false_positives, 0, "{:?}\n{}", r.false_positive_examples, r.replay);
    assert!(r.invariant_violations.is_empty(), "{:#?}\n{}", r.invariant_violations, r.replay);
}

/// Issue 17's join under loss: 1,000 nodes through one seed at 10% loss
/// converge within 10 s (seed 3 took 183 s while follow-up exchanges
/// stopped at the first that taught nothing; seeds 1 and 7 took 14.4 and
/// 16.0 s), and the 10 crashes a minute in are all detected, no live
/// node Failed.
/// `cargo run --release -p swim-sim -- --nodes 1000 --loss 0.1 --duration 180 --crash 10@60 --seed 3`
#[test]
#[ignore = "about 15 s a seed in release, minutes in debug"]
fn a_thousand_nodes_join_within_ten_seconds_at_ten_percent_loss() {
    for seed in [1, 2, 3, 7] {
        let mut spec = Scenario::Demo.spec(seed);
        spec.nodes = 1000;
        spec.loss = 0.1;
        spec.duration = Duration::from_secs(180);
        spec.crashes = vec![CrashSpec::new(10, 60.0)];
        let r = run(spec);
        let joined = r.join_convergence_seconds.unwrap_or(f64::INFINITY);
        assert!(joined <= 10.0, "converged after {joined} s\n{}", r.replay);
        assert_eq!(r.false_positives, 0, "{:?}\n{}", r.false_positive_examples, r.replay);
        assert_eq!((r.crashed, r.undetected), (10, 0), "{}", r.replay);
        assert!(r.invariant_violations.is_empty(), "{:#?}\n{}", r.invariant_violations, r.replay);
    }
}

/// Issue 14's flood at full size, plain and sealed: 1,000 nodes, 10
/// outsiders for 70 s, 2 crashes in the middle of it.
/// `cargo run --release -p swim-sim -- --scenario crash --nodes 1000 --duration 120 --crash 2@60 --flood 10@30..100 --seed 1 [--encryption require]`
#[test]
#[ignore = "5-10 s each in release, minutes in debug"]
fn a_thousand_nodes_flooded_by_ten_outsiders_fail_nobody_and_detect_both_crashes_in_time() {
    for encryption in [swim_core::Encryption::Off, swim_core::Encryption::Require] {
        let mut spec = Scenario::Crash.spec(1);
        spec.nodes = 1000;
        spec.duration = Duration::from_secs(120);
        spec.crashes = vec![CrashSpec::new(2, 60.0)];
        spec.flood = Some(swim_sim::spec::FloodSpec {
            count: 10,
            start: Duration::from_secs(30),
            end: Duration::from_secs(100),
        });
        spec.encryption = encryption;
        let r = run(spec);
        assert!(r.invariant_violations.is_empty(), "{:#?}\n{}", r.invariant_violations, r.replay);
        assert_eq!(r.false_positives, 0, "{:?}\n{}", r.false_positive_examples, r.replay);
        assert_eq!(r.detection.all_failed_count, 2, "{}", r.replay);
        assert!(r.detection.all_failed_max.is_some_and(|t| t <= r.detection.bound), "{}", r.replay);
        let flood = r.flood.as_ref().expect("a flood");
        assert_eq!(flood.counts.sent, 10 * 70 * 20);
        assert!(r.refused.total() > 0);
    }
}

/// Issue 17's broadcast reach at full size: 5,000 nodes join through one
/// seed and 20 broadcasts go out in the middle of the join storm (at 1.5
/// s; the join converges at 3.0 s); each reaches every node, once. (The
/// run also holds a violation from before: the seed refuses a joiner's
/// datagram over its inbound budget at 1.0 s; it is not asserted on here.)
/// `cargo run --release -p swim-sim -- --scenario join --nodes 5000 --duration 60 --broadcast 20@1.5 --seed 1`
#[test]
#[ignore = "about a minute in release (43 s of CPU, 1.47 GB); far longer in debug"]
fn five_thousand_joining_nodes_each_get_every_broadcast_sent_during_the_join_storm_once() {
    let mut spec = Scenario::Join.spec(1);
    spec.nodes = 5000;
    spec.duration = Duration::from_secs(60);
    spec.broadcasts = vec![swim_sim::spec::BroadcastSpec { count: 20, at: Duration::from_secs_f64(1.5) }];
    let r = run(spec);
    // A second delivery is a violation naming the broadcast.
    let twice: Vec<_> = r.invariant_violations.iter().filter(|v| v.contains("broadcast")).collect();
    assert!(twice.is_empty(), "{twice:#?}\n{}", r.replay);
    assert_eq!(r.broadcasts.len(), 20);
    assert!(r.broadcasts.iter().all(|b| b.missing == 0 && b.duplicates == 0), "{:?}\n{}", r.broadcasts, r.replay);
    assert!(r.broadcast_all_seconds.is_some(), "{}", r.replay);
}

/// The same under 10% loss, the broadcasts earlier in the storm (0.5 s):
/// before anti-entropy every one of the 20 missed some node for good
/// (0.9967 of owed deliveries); now each reaches every node once.
/// `cargo run --release -p swim-sim -- --scenario join --nodes 5000 --duration 30 --loss 0.1 --broadcast 20@0.5 --seed 1`
#[test]
#[ignore = "about 2 minutes in release (73 s of CPU, 1.75 GB); far longer in debug"]
fn five_thousand_nodes_joining_under_ten_percent_loss_each_get_every_broadcast_once() {
    let mut spec = Scenario::Join.spec(1);
    spec.nodes = 5000;
    spec.duration = Duration::from_secs(30);
    spec.loss = 0.1;
    spec.broadcasts = vec![swim_sim::spec::BroadcastSpec { count: 20, at: Duration::from_secs_f64(0.5) }];
    let r = run(spec);
    let twice: Vec<_> = r.invariant_violations.iter().filter(|v| v.contains("broadcast")).collect();
    assert!(twice.is_empty(), "{twice:#?}\n{}", r.replay);
    assert_eq!(r.broadcast_delivery_ratio, Some(1.0), "{:?}\n{}", r.broadcasts, r.replay);
    assert!(r.broadcast_all_seconds.is_some(), "{}", r.replay);
}
