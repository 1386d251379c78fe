//! `--flood`: outsiders sending a mix of valid-looking and garbage
//! datagrams change nothing the checkers can see: no false Failed, every
//! crash detected in time, no outsider ever taken for a member, and the
//! refusals counted.

use std::time::Duration;

use swim_core::Encryption;
use swim_sim::checks::DepartureKind;
use swim_sim::flood::FloodKind;
use swim_sim::spec::FloodSpec;
use swim_sim::{CrashSpec, Report, Scenario, Simulation};

fn flooded(encryption: Encryption, seed: u64) -> (Simulation, Report) {
    let mut spec = Scenario::Crash.spec(seed);
    spec.nodes = 20;
    spec.duration = Duration::from_secs(80);
    spec.crashes = vec![CrashSpec::new(2, 30.0)];
    spec.flood = Some(FloodSpec { count: 2, start: Duration::from_secs(10), end: Duration::from_secs(70) });
    spec.encryption = encryption;
    let mut sim = Simulation::new(spec).expect("valid config");
    sim.run();
    let report = Report::new(&sim, Duration::ZERO);
    (sim, report)
}

/// What every flooded run must hold: the cluster behaves as without the
/// flood, and the flood really happened.
fn assert_unhurt(sim: &Simulation, r: &Report) {
    assert!(r.invariant_violations.is_empty(), "{:#?}\nreplay: {}", r.invariant_violations, r.replay);
    assert_eq!(r.false_positives, 0, "{:?}", r.false_positive_examples);
    let bound = sim.detection_bound();
    let crashes: Vec<_> = sim.checks().departures().iter().filter(|d| d.kind == DepartureKind::Crash).collect();
    assert_eq!(crashes.len(), 2);
    for d in crashes {
        let took = d.all_gone.expect("failed everywhere") - d.at;
        assert!(took <= bound, "n{} took {took:?}, over {bound:?}", d.node);
    }
    let flood = sim.flood().expect("a flood");
    for outsider in flood.outsiders() {
        for id in 0..r.nodes {
            let known = sim.node(id).and_then(|n| n.member(&swim_core::NodeId(outsider))).is_some();
            assert!(!known, "n{id} holds outsider n{outsider}");
        }
    }
    let f = &r.flood.as_ref().expect("the report has the flood").counts;
    // 2 outsiders x 60 s x 20 datagrams/s (10x a member's 2 per 1 s probe interval).
    assert_eq!(f.sent, 2 * 60 * 20);
    assert_eq!(r.flood.as_ref().map(|f| f.datagrams_per_second_each), Some(20.0));
    assert!(f.delivered > f.sent * 9 / 10, "{f:?}");
    // Members refuse nothing from each other here, so every refusal is the
    // flood's: each delivered datagram is refused and counted by reason, or
    // accepted.
    assert_eq!(r.refused.total() + f.accepted, f.delivered, "{:?}", r.refused);
}

#[test]
fn a_plaintext_flood_fails_nobody_delays_no_detection_and_makes_no_member() {
    let (sim, r) = flooded(Encryption::Off, 8);
    assert_unhurt(&sim, &r);
    let f = &r.flood.as_ref().expect("a flood").counts;
    assert_eq!(f.by_kind[FloodKind::ALL.len() - 4..], [0; 4], "no sealed kinds without keys");
    for reason in ["extra_primary", "bad_checksum", "wrong_cluster", "too_short"] {
        assert!(r.refused.get(reason) > 0, "{reason}: {:?}", r.refused);
    }
    assert!(r.strangers_refused > 0, "digests and ping requests for strangers turned down");
    // A Ping or a join request earns an answer, but no datagram more than
    // a bounded one: 600 Pings in one datagram get none.
    assert!(f.replies > 0 && f.replies < f.sent, "{f:?}");
}

#[test]
fn a_flood_against_a_sealed_cluster_is_refused_for_its_key_its_tag_or_as_a_replay() {
    let (sim, r) = flooded(Encryption::Require, 9);
    assert_unhurt(&sim, &r);
    let f = &r.flood.as_ref().expect("a flood").counts;
    for kind in [FloodKind::WrongKey, FloodKind::ForgedTag, FloodKind::Replay] {
        assert!(f.by_kind[FloodKind::ALL.iter().position(|k| *k == kind).unwrap()] > 0, "{kind:?}");
    }
    for reason in ["plaintext_refused", "unknown_key", "bad_tag", "replayed"] {
        assert!(r.refused.get(reason) > 0, "{reason}: {:?}", r.refused);
    }
    assert_eq!(r.strangers_refused, 0, "no plaintext request is even opened");
}

#[test]
fn a_flood_repeats_exactly_for_a_seed_and_stays_out_of_the_member_figures() {
    let (a, ra) = flooded(Encryption::Off, 8);
    let (b, _) = flooded(Encryption::Off, 8);
    assert_eq!(a.trace_hash(), b.trace_hash());
    assert_eq!(a.flood().map(|f| f.stats), b.flood().map(|f| f.stats));
    let mut spec = a.spec().clone();
    spec.flood = None;
    let mut calm = Simulation::new(spec).expect("valid config");
    calm.run();
    let rc = Report::new(&calm, Duration::ZERO);
    // Members' own traffic moves (each ping request for a member, a ninth
    // of the flood, makes the asked member ping it and the member ack: at
    // seed 8, 168 of them and about 600 more datagrams between members, a
    // quarter of the flood's 2,400, give or take the random stream's
    // shift), but the flood's datagrams are not in it.
    let f = ra.flood.as_ref().expect("a flood");
    assert!(
        ra.datagrams_sent < rc.datagrams_sent + f.counts.sent / 3,
        "{} vs {}",
        ra.datagrams_sent,
        rc.datagrams_sent
    );
    assert!(rc.flood.is_none() && rc.refused.total() == 0);
}
