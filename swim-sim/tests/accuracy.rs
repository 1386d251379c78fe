//! Accuracy under loss: no live node is declared failed, and the cluster converges.

use std::time::Duration;

use swim_sim::{Report, Scenario, Simulation};

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
