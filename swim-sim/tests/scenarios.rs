//! Fault scenarios with fixed seeds: crashes, partitions, slow nodes,
//! leaves, churn and broadcasts.

use std::time::Duration;

use swim_sim::checks::DepartureKind;
use swim_sim::spec::BroadcastSpec;
use swim_sim::{CrashSpec, PartitionSpec, Report, RunSpec, Scenario, Simulation};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn run(spec: RunSpec) -> (Simulation, Report) {
    let mut sim = Simulation::new(spec).expect("valid config");
    sim.run();
    let report = Report::new(&sim, Duration::ZERO);
    (sim, report)
}

fn assert_clean(r: &Report) {
    assert!(r.invariant_violations.is_empty(), "{:#?}\nreplay: {}", r.invariant_violations, r.replay);
}

#[test]
fn every_crashed_node_is_failed_at_every_live_node_within_the_configured_bound() {
    let mut spec = Scenario::Crash.spec(21);
    spec.nodes = 100;
    spec.duration = secs(120);
    spec.crashes = vec![CrashSpec::new(3, 30.0), CrashSpec::new(2, 45.5)];
    let (sim, r) = run(spec);
    assert_clean(&r);
    let bound = sim.detection_bound();
    let crashes: Vec<_> = sim.checks().departures().iter().filter(|d| d.kind == DepartureKind::Crash).collect();
    assert_eq!(crashes.len(), 5);
    for d in crashes {
        let all = d.all_gone.expect("failed everywhere");
        assert!(all - d.at <= bound, "n{} took {:?} > {bound:?}", d.node, all - d.at);
        assert!(d.first_suspect.is_some() && d.first_failed.is_some());
        assert!(d.first_suspect <= d.first_failed);
    }
    assert_eq!(r.crashed, 5);
    assert_eq!(r.undetected, 0);
    assert_eq!(r.false_positives, 0);
    assert!(r.detection.all_failed_max.is_some_and(|m| m <= bound.as_secs_f64()));
}

#[test]
fn a_partition_into_halves_heals_into_one_view_after_it_ends() {
    let mut spec = Scenario::Partition.spec(31);
    spec.nodes = 40;
    spec.partition = Some(PartitionSpec { start: secs(30), end: secs(90) });
    spec.duration = secs(240);
    let (sim, r) = run(spec);
    assert_clean(&r);
    assert!(r.partition_failures > 0, "each half declares the other failed while cut off");
    assert_eq!(r.exercised.partitions, 1);
    assert!(r.partition_failures <= 2 * 20 * 20, "at most the ordered pairs across the cut");
    // The first exchanges across the healed cut carry each side's deaths of
    // the other: suspicions to refute, not Failed events at every node.
    assert_eq!(r.failures_after_heal, 0, "members failed again after the heal");
    assert!(r.datagrams_cut > 0 && r.datagrams_lost >= r.datagrams_cut, "the cut dropped traffic");
    assert!(r.converged_at_end, "one view again long before the end");
    assert_eq!(r.liveness_seconds, Some(0.0));
    assert_eq!(r.faults_stopped_seconds, 90.0);
    // The heal takes a push-pull or a refutation round: never instant.
    let heal = r.heal_seconds.expect("healed within the run");
    assert!(heal > 0.0 && heal < 150.0, "{heal}");
    let agreement = r.agreement_seconds.expect("agreed within the run");
    assert!(agreement > 0.0 && agreement <= heal, "members known (Alive or Suspect) no later than all Alive");
    assert_eq!(sim.checks().live_count(), 40);
    assert_eq!(r.false_positives, 0);
}

/// The partition scenario as `swim-sim --scenario partition --seed 1` runs
/// it (100 nodes, cut 60..120 s). Every node's periodic exchanges used to
/// keep the phase of its first, drawn within the lone node's 30 s: at 100
/// members all of them fell in one 30 s stretch of every 90 s, and the heal
/// waited for the next stretch (31.7 s). Drawn again when the interval
/// changes, they spread over it, and the first ones across the healed cut
/// come at once.
#[test]
fn the_partition_scenario_heals_within_seconds_of_the_cut_ending() {
    let (_, r) = run(Scenario::Partition.spec(1));
    assert_clean(&r);
    assert_eq!(r.nodes, 100);
    let heal = r.heal_seconds.expect("healed within the run");
    assert!(heal < 5.0, "every live node saw every live node Alive {heal:.2} s after the heal");
    assert_eq!(r.failures_after_heal, 0);
}

#[test]
fn slow_members_that_keep_answering_do_not_hold_the_join_convergence_off() {
    let mut spec = Scenario::Slow.spec(7);
    spec.nodes = 30;
    spec.slow = 3;
    spec.duration = secs(60);
    let (_, r) = run(spec);
    assert!(r.false_suspicions_about_slow > 0, "the slow nodes are suspected again and again");
    let joined = r.join_convergence_seconds.expect("the healthy nodes all see each other Alive");
    assert!(joined < 10.0, "{joined}");
}

fn slow_run(seed: u64, lifeguard: bool) -> Report {
    let mut spec = Scenario::Slow.spec(seed);
    spec.nodes = 50;
    spec.slow = 3;
    spec.duration = secs(120);
    spec.lifeguard = lifeguard;
    run(spec).1
}

/// Lifeguard's point (Lifeguard §IV.A, §V): a slow node must not drag
/// healthy members into suspicion. Its inputs are handled 1.5 s late, past
/// the 1 s probe period, so under plain SWIM every probe it makes fails and
/// it accuses healthy members; Lifeguard's local health stretches its probe
/// timeout until the late acks count. The slow nodes themselves are
/// suspected either way: their acks really are too late.
#[test]
fn with_slow_nodes_lifeguard_raises_fewer_false_alarms_than_plain_swim() {
    for seed in [1, 2, 3] {
        let on = slow_run(seed, true);
        let off = slow_run(seed, false);
        let context = format!("seed {seed}\n{}\n{}", on.replay, off.replay);
        let healthy_suspicions = |r: &Report| r.false_suspicions - r.false_suspicions_about_slow;
        let healthy_failures = |r: &Report| r.false_positives - r.false_positives_about_slow;
        assert!(
            on.false_suspicion_episodes < off.false_suspicion_episodes,
            "{context}: lifeguard {} suspicions vs plain {}",
            on.false_suspicion_episodes,
            off.false_suspicion_episodes
        );
        assert!(on.false_suspicions < off.false_suspicions, "{context}");
        assert!(healthy_suspicions(&on) * 10 < healthy_suspicions(&off), "{context}");
        assert!(healthy_failures(&on) <= healthy_failures(&off), "{context}");
    }
}

#[test]
fn a_graceful_leave_is_seen_as_left_not_failed() {
    let mut spec = Scenario::Leave.spec(41);
    spec.nodes = 40;
    spec.duration = secs(90);
    let (sim, r) = run(spec);
    assert_clean(&r);
    assert_eq!(r.left, 5);
    assert_eq!(r.left_seen_as_failed, 0);
    assert_eq!(r.false_positives, 0);
    for d in sim.checks().departures() {
        assert!(d.all_gone.is_some(), "n{} still believed live", d.node);
    }
    assert_eq!(sim.checks().live_count(), 35);
}

#[test]
fn under_churn_restarted_and_late_nodes_rejoin_and_the_cluster_agrees_afterwards() {
    let mut spec = Scenario::Churn.spec(51);
    spec.nodes = 40;
    spec.duration = secs(150);
    let (sim, r) = run(spec.clone());
    assert_clean(&r);
    assert!(r.crashed >= 10);
    assert!(r.liveness_seconds.is_some());
    let late = spec.ids() - spec.nodes;
    assert!(late > 0);
    assert!((spec.nodes..spec.ids()).all(|id| sim.node(id).is_some()), "every late joiner runs");
}

#[test]
fn a_broadcast_reaches_every_live_node_exactly_once() {
    let mut spec = Scenario::Demo.spec(61);
    spec.nodes = 60;
    spec.duration = secs(120);
    spec.loss = 0.0;
    let (_, r) = run(spec);
    assert_eq!(r.broadcasts.len(), 1);
    let b = &r.broadcasts[0];
    assert!(b.everywhere_seconds.is_some());
    // 60 nodes, 3 crashed, 1 left, minus the origin.
    assert_eq!(b.delivered, 55);
}

/// Under 10% loss, broadcasts sent while 300 nodes are still joining (a
/// node not yet known to the others misses every push) and after it: the
/// probes' anti-entropy brings every one to every node, once. Before it,
/// the first three missed 3 nodes for good (0.9967 of owed deliveries).
/// `cargo run --release -p swim-sim -- --scenario loss --nodes 300 --duration 40 --seed 1 --broadcast 3@1 --broadcast 3@5 --broadcast 3@10`
#[test]
fn under_ten_percent_loss_every_broadcast_reaches_every_node_once_even_during_the_join() {
    let mut spec = Scenario::Loss.spec(1);
    spec.duration = secs(40);
    spec.broadcasts = [1, 5, 10].map(|at| BroadcastSpec { count: 3, at: secs(at) }).to_vec();
    let (_, r) = run(spec);
    assert_clean(&r);
    assert_eq!(r.broadcasts.len(), 9);
    for b in &r.broadcasts {
        assert_eq!((b.missing, b.duplicates), (0, 0), "{b:?}\nreplay: {}", r.replay);
    }
    assert_eq!(r.broadcast_delivery_ratio, Some(1.0));
    let all = r.broadcast_all_seconds.expect("every broadcast everywhere");
    // The first ones wait for the join to converge (up to 10 s under this
    // loss), then a few probe periods.
    assert!(all <= 20.0, "{all} s\nreplay: {}", r.replay);
}

#[test]
fn the_report_has_every_documented_json_field() {
    let mut spec = Scenario::Crash.spec(71);
    spec.nodes = 20;
    spec.duration = secs(60);
    spec.crashes = vec![CrashSpec::new(1, 20.0)];
    let (_, r) = run(spec);
    let json: serde_json::Value = serde_json::from_str(&r.to_json()).expect("valid JSON");
    for field in [
        "nodes",
        "seed",
        "simulated_seconds",
        "wall_seconds",
        "join_convergence_seconds",
        "crashed",
        "detection",
        "undetected",
        "false_positives",
        "false_positive_nodes",
        "datagrams_per_node_per_second",
        "bytes_per_node_per_second",
        "messages_to_converge",
        "trace_hash",
        "invariant_violations",
        "faults_stopped_seconds",
        "agreement_seconds",
        "heal_seconds",
        "partition_failures",
        "partition_failure_events",
        "failures_after_heal",
        "datagrams_lost",
        "datagrams_cut",
        "exercised",
        "broadcast_all_seconds",
        "broadcast_delivery_ratio",
    ] {
        assert!(json.get(field).is_some(), "missing {field}");
    }
    for field in [
        "first_suspect_p50",
        "first_suspect_p99",
        "first_suspect_max",
        "first_failed_p50",
        "first_failed_p99",
        "first_failed_max",
        "all_failed_p50",
        "all_failed_p99",
        "all_failed_max",
    ] {
        assert!(json["detection"][field].is_number(), "detection.{field}");
    }
    assert_eq!(json["crashed"], 1);
    assert_eq!(json["exercised"]["crashes"], 1);
    assert!(json["exercised"]["deaths"].as_u64().is_some_and(|d| d > 0), "the crash was Failed");
    assert_eq!(json["trace_hash"].as_str().map(str::len), Some(16));
}

#[test]
fn without_crashes_detection_is_null_and_the_report_says_nothing_was_exercised() {
    let mut spec = Scenario::Join.spec(81);
    spec.nodes = 10;
    spec.duration = secs(20);
    let (_, r) = run(spec);
    assert!(r.exercised.nothing(), "{:?}", r.exercised);
    assert!(r.summary().contains("(no failure handling was exercised)"));
    let json: serde_json::Value = serde_json::from_str(&r.to_json()).expect("valid JSON");
    assert!(json["detection"]["all_failed_p50"].is_null());
    assert!(json["join_convergence_seconds"].is_number());
}

#[test]
fn the_plot_draws_the_member_counts_and_the_detection_histogram() {
    let mut spec = Scenario::Crash.spec(91);
    spec.nodes = 20;
    spec.duration = secs(60);
    spec.crashes = vec![CrashSpec::new(2, 20.0)];
    let (sim, _) = run(spec);
    let svg = swim_sim::plot::svg(&sim).expect("drawn");
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    for text in ["members not seen Alive, per observer", "simulated seconds", "most not seen", "2 crashes", "crashes"] {
        assert!(svg.contains(text), "no {text}");
    }
    assert!(!svg.contains("partition in force"), "no fault window to shade");
}

#[test]
fn the_plot_shades_the_partition_and_leaves_the_histogram_out_when_nothing_crashed() {
    let mut spec = Scenario::Partition.spec(92);
    spec.nodes = 10;
    spec.duration = secs(60);
    spec.partition = Some(PartitionSpec { start: secs(20), end: secs(30) });
    let (sim, _) = run(spec);
    let svg = swim_sim::plot::svg(&sim).expect("drawn");
    assert!(svg.contains("partition in force"));
    assert!(svg.contains("nothing crashed: no detection histogram"));
    assert!(!svg.contains("crash to Failed"));
}

#[test]
fn a_node_that_cannot_receive_is_failed_and_rejoins_once_the_clog_clears() {
    let mut spec = Scenario::Join.spec(101);
    spec.nodes = 40;
    spec.duration = secs(150);
    spec.clog = Some(swim_sim::spec::ClogSpec { count: 2, start: secs(30), end: secs(60) });
    let (sim, r) = run(spec);
    assert_clean(&r);
    assert!(r.partition_failures > 0, "the clogged nodes are declared failed while clogged");
    assert_eq!(r.false_positives, 0);
    assert!(r.converged_at_end, "they are back long before the end");
    assert_eq!(sim.checks().live_count(), 40);
}

#[test]
fn the_report_measures_a_join_against_its_lower_bound() {
    let mut spec = Scenario::Join.spec(3);
    spec.nodes = 10;
    spec.duration = secs(20);
    let (_, r) = run(spec);
    // Ten members without metadata: one Alive record is 8 bytes (tag, id,
    // incarnation, 4-byte instance, metadata length), each node must get 9.
    assert_eq!(r.join_lower_bound_bytes, 10 * 9 * 8);
    let bytes = r.bytes_to_converge.expect("the join converged");
    let ratio = r.join_bytes_over_lower_bound.expect("a ratio");
    assert!((ratio - bytes as f64 / 720.0).abs() < 1e-9);
    assert!(ratio > 1.0, "no join sends less than its lower bound ({ratio})");
}
