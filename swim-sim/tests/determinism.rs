//! A run is a pure function of its seed.

use std::time::Duration;

use swim_sim::{Report, Scenario, Simulation};

fn run(seed: u64) -> Report {
    let mut spec = Scenario::Demo.spec(seed);
    spec.nodes = 40;
    spec.duration = Duration::from_secs(120);
    let mut sim = Simulation::new(spec).expect("valid config");
    sim.run();
    Report::new(&sim, Duration::ZERO)
}

#[test]
fn the_same_seed_gives_the_same_trace_hash_and_different_seeds_differ() {
    let a = run(11);
    let b = run(11);
    let c = run(12);
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_eq!(a, b, "the whole report repeats, not just the hash");
    assert_ne!(a.trace_hash, c.trace_hash);
}

#[test]
fn running_in_slices_gives_the_same_run_as_running_at_once() {
    let mut spec = Scenario::Demo.spec(5);
    spec.nodes = 30;
    spec.duration = Duration::from_secs(100);
    let mut whole = Simulation::new(spec.clone()).expect("valid config");
    whole.run();
    let mut sliced = Simulation::new(spec).expect("valid config");
    let mut t = swim_core::Instant::ZERO;
    while sliced.run_until(t) {
        t = t + Duration::from_millis(700);
    }
    sliced.finish();
    assert_eq!(whole.trace_hash(), sliced.trace_hash());
}
