//! Each named invariant catches a planted bug: a test-only faulty node
//! ([`Tamper`]) corrupts what one node reports, and the run must name the
//! invariant it breaks. The same runs untampered hold every invariant.

use std::time::Duration;

use swim_core::{Bytes, Event, Instant, Member, NodeId, State};

use super::{Simulation, Tamper, TamperFn};
use crate::invariants::{Invariant, NodeReport};
use crate::spec::{CrashSpec, RunSpec, Scenario};

/// A small run with a crash (so Suspected and Failed events happen).
fn crash_spec() -> RunSpec {
    let mut spec = Scenario::Crash.spec(11);
    spec.nodes = 8;
    spec.duration = Duration::from_secs(40);
    spec.crashes = vec![CrashSpec::new(1, 10.0)];
    spec
}

/// The named invariants `spec` breaks with `tamper` planted.
fn broken(spec: RunSpec, tamper: impl TamperFn + 'static) -> Vec<Invariant> {
    let mut sim = Simulation::new(spec).expect("valid config");
    sim.tamper = Some(Tamper(Box::new(tamper)));
    sim.run();
    let mut names: Vec<Invariant> = sim.checks().violations().iter().filter_map(|v| v.invariant).collect();
    names.dedup();
    names
}

/// Rewrite every event that `pick` selects into the events `rewrite`
/// makes of it, at one observer only (n1).
fn rewrite_events(
    pick: fn(&Event<NodeId>) -> bool,
    rewrite: fn(&Member<NodeId>) -> Vec<Event<NodeId>>,
) -> impl TamperFn {
    move |_, id, _, events| {
        if id != 1 {
            return;
        }
        let mut out = Vec::new();
        for e in events.drain(..) {
            match e.member() {
                Some(m) if pick(&e) => out.extend(rewrite(m)),
                _ => out.push(e),
            }
        }
        *events = out;
    }
}

fn with(m: &Member<NodeId>, state: State, incarnation: u32) -> Member<NodeId> {
    Member { state, incarnation, ..m.clone() }
}

#[test]
fn the_untampered_runs_hold_every_invariant_and_exercise_suspicion_and_death() {
    let mut sim = Simulation::new(crash_spec()).expect("valid config");
    sim.run();
    assert!(sim.checks().violations().is_empty(), "{:?}", sim.checks().violations());
    let e = sim.checks().exercised;
    assert!(e.suspicions > 0 && e.deaths > 0 && e.crashes == 1, "{e:?}");
}

#[test]
fn a_view_whose_incarnation_goes_down_breaks_incarnation_monotonic() {
    let tamper = rewrite_events(
        |e| matches!(e, Event::Suspected(_)),
        |m| vec![Event::Suspected(with(m, State::Suspect, m.incarnation + 5)), Event::Suspected(m.clone())],
    );
    assert!(broken(crash_spec(), tamper).contains(&Invariant::IncarnationMonotonic));
}

/// Broken invariants when n1 follows each Failed it reports with `then`
/// about the same member at the same incarnation.
fn after_each_failed(then: fn(Member<NodeId>) -> Event<NodeId>, state: State) -> Vec<Invariant> {
    let tamper = move |_: Instant, id: u32, _: &mut NodeReport, events: &mut Vec<Event<NodeId>>| {
        if id != 1 {
            return;
        }
        let mut out = Vec::new();
        for e in events.drain(..) {
            let extra = match &e {
                Event::Failed(m) => Some(then(with(m, state, m.incarnation))),
                _ => None,
            };
            out.push(e);
            out.extend(extra);
        }
        *events = out;
    };
    broken(crash_spec(), tamper)
}

#[test]
fn a_failed_member_back_alive_at_the_same_incarnation_breaks_no_resurrection() {
    assert!(after_each_failed(Event::Alive, State::Alive).contains(&Invariant::NoResurrection));
}

#[test]
fn dead_then_suspect_at_one_incarnation_breaks_legal_transition() {
    assert_eq!(after_each_failed(Event::Suspected, State::Suspect), [Invariant::LegalTransition]);
}

#[test]
fn left_then_suspect_breaks_legal_transition() {
    let mut spec = Scenario::Leave.spec(12);
    spec.nodes = 8;
    spec.duration = Duration::from_secs(80);
    let tamper = rewrite_events(
        |e| matches!(e, Event::Left(_)),
        |m| vec![Event::Left(m.clone()), Event::Suspected(with(m, State::Suspect, m.incarnation + 1))],
    );
    assert!(broken(spec, tamper).contains(&Invariant::LegalTransition));
}

#[test]
fn two_metadata_values_for_one_incarnation_break_one_metadata_per_incarnation() {
    let tamper = rewrite_events(
        |e| matches!(e, Event::Joined(_)),
        |m| vec![Event::Joined(Member { meta: Bytes::from_static(b"forged"), ..m.clone() })],
    );
    assert_eq!(broken(crash_spec(), tamper), [Invariant::OneMetadataPerIncarnation]);
}

#[test]
fn an_own_incarnation_that_goes_down_breaks_own_incarnation_monotonic() {
    let tamper = |now: Instant, id: u32, r: &mut NodeReport, _: &mut Vec<Event<NodeId>>| {
        if id == 2 && now < Instant::from_secs(5) {
            r.incarnation += 7;
        }
    };
    assert_eq!(broken(crash_spec(), tamper), [Invariant::OwnIncarnationMonotonic]);
}

#[test]
fn a_node_that_believes_itself_failed_breaks_self_alive() {
    let tamper = |now: Instant, id: u32, r: &mut NodeReport, _: &mut Vec<Event<NodeId>>| {
        if id == 3 && now > Instant::from_secs(20) {
            r.self_state = Some(State::Dead);
        }
    };
    assert_eq!(broken(crash_spec(), tamper), [Invariant::SelfAlive]);
}

#[test]
fn knowing_more_members_than_were_introduced_breaks_known_within_introduced() {
    let tamper = |_: Instant, id: u32, r: &mut NodeReport, _: &mut Vec<Event<NodeId>>| {
        if id == 4 {
            r.known = 9;
        }
    };
    assert_eq!(broken(crash_spec(), tamper), [Invariant::KnownWithinIntroduced]);
}

#[test]
fn a_queue_over_its_bound_breaks_queues_bounded() {
    let max = crash_spec().config().max_gossip_queue;
    let tamper = move |_: Instant, id: u32, r: &mut NodeReport, _: &mut Vec<Event<NodeId>>| {
        if id == 5 {
            r.gossip_backlog = max + 1;
        }
    };
    assert_eq!(broken(crash_spec(), tamper), [Invariant::QueuesBounded]);
}

#[test]
fn a_node_that_announces_an_outsider_breaks_no_outsiders() {
    let mut spec = crash_spec();
    spec.flood = Some(crate::spec::FloodSpec { count: 2, start: Duration::from_secs(5), end: Duration::from_secs(20) });
    let tamper = rewrite_events(
        |e| matches!(e, Event::Joined(_)),
        |m| vec![Event::Joined(m.clone()), Event::Joined(Member { addr: NodeId(8), ..m.clone() })],
    );
    assert_eq!(broken(spec.clone(), tamper), [Invariant::NoOutsiders]);
    let mut sim = Simulation::new(spec).expect("valid config");
    sim.run();
    assert!(sim.checks().violations().is_empty(), "untampered: {:?}", sim.checks().violations());
    assert_eq!(sim.flood().map(|f| f.outsiders()), Some(8..10), "outsiders take the ids above the members'");
}

#[test]
fn the_peaks_of_gossip_queues_and_datagrams_in_flight_are_kept() {
    let mut spec = Scenario::Join.spec(3);
    spec.nodes = 40;
    let mut sim = Simulation::new(spec).expect("valid config");
    sim.run();
    // Forty joiners' news is gossiped; a join storm puts datagrams in flight.
    let gossip = sim.peak_gossip();
    assert!(gossip > 0 && gossip <= sim.config().max_gossip_queue, "{gossip}");
    let mean = sim.peak_gossip_mean();
    assert!(mean > 0.0 && mean <= gossip as f64, "mean {mean}, longest {gossip}");
    let flight = sim.in_flight();
    assert!(flight.peak_datagrams > 1 && flight.peak_bytes >= flight.peak_datagrams, "{flight:?}");
    assert_eq!((flight.datagrams, flight.bytes), (0, 0), "the run delivered or dropped every datagram");
}
