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
