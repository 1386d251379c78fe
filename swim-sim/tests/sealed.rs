//! Sealed runs (`--encryption`): every node seals with one shared key, and
//! the cluster behaves as a plaintext one does.

use std::time::Duration;

use swim_core::Encryption;
use swim_sim::checks::DepartureKind;
use swim_sim::{CrashSpec, Report, Scenario, Simulation};

fn sealed_run(encryption: Encryption, duplicate: f64) -> (Simulation, Report) {
    let mut spec = Scenario::Crash.spec(4);
    spec.nodes = 20;
    spec.duration = Duration::from_secs(60);
    spec.crashes = vec![CrashSpec::new(1, 20.0)];
    spec.duplicate = duplicate;
    spec.encryption = encryption;
    let mut sim = Simulation::new(spec).expect("valid config");
    sim.run();
    let report = Report::new(&sim, Duration::ZERO);
    (sim, report)
}

#[test]
fn a_sealed_cluster_converges_and_fails_a_crashed_node_everywhere_in_time() {
    let (sim, r) = sealed_run(Encryption::Require, 0.0);
    assert!(r.invariant_violations.is_empty(), "{:#?}\nreplay: {}", r.invariant_violations, r.replay);
    assert_eq!(r.encryption, "require");
    assert!(r.replay.ends_with("--encryption require"), "{}", r.replay);
    assert!(r.join_convergence_seconds.is_some());
    let crash = sim.checks().departures().iter().find(|d| d.kind == DepartureKind::Crash).expect("one crash");
    let took = crash.all_gone.expect("failed everywhere") - crash.at;
    assert!(took <= sim.detection_bound(), "{took:?}");
    assert_eq!(r.false_positives, 0);
    assert_eq!(r.refused.total(), 0, "members open each other's datagrams: {:?}", r.refused);
    let node = sim.node(1).expect("running");
    assert_eq!(node.keys().map(|(id, _)| id).collect::<Vec<_>>(), [sim.key().id()]);
}

#[test]
fn duplicate_copies_of_sealed_datagrams_are_refused_as_replays_and_nothing_else_is() {
    let (_, r) = sealed_run(Encryption::Require, 0.05);
    assert!(r.invariant_violations.is_empty(), "{:#?}\nreplay: {}", r.invariant_violations, r.replay);
    assert!(r.copies_refused_as_replays > 0);
    assert_eq!(r.refused.get("replayed"), r.copies_refused_as_replays);
    assert_eq!(r.refused.total(), r.refused.get("replayed"));
    // Plaintext has no replay window: the same duplication refuses nothing.
    let (_, plain) = sealed_run(Encryption::Off, 0.05);
    assert_eq!(plain.refused.total(), 0);
    assert_eq!(plain.copies_refused_as_replays, 0);
}

#[test]
fn sealed_runs_repeat_exactly_for_a_seed() {
    let (a, _) = sealed_run(Encryption::Seal, 0.0);
    let (b, _) = sealed_run(Encryption::Seal, 0.0);
    assert_eq!(a.trace_hash(), b.trace_hash());
}
