//! # swim-sim
//!
//! A deterministic simulator for swim-core: thousands of unmodified nodes in
//! one process, on one virtual clock, over a modelled network with
//! injected faults, checked as the run goes.
//!
//! - One event queue ordered by (time, sequence) holds every datagram in
//!   flight, every node wakeup and every scheduled fault ([`queue`]).
//! - The network draws each datagram's latency, loss and duplication and
//!   applies partitions and slow receivers ([`network`]).
//! - Every random choice derives from the run's one seed ([`seed`]): the
//!   same [`RunSpec`] gives the same events and the same trace hash on
//!   every machine ([`trace`]).
//! - [`checks`] keeps who believes what about whom, from the nodes'
//!   events, against the truth, and records false positives, detection
//!   times, convergence and broken invariants; [`invariants`] holds the
//!   named safety invariants checked at every state change.
//! - A run may seal every datagram (`RunSpec::encryption`, one key at
//!   every node), and outsiders may flood the members ([`flood`]); what
//!   the nodes refused is summed by reason ([`refusals`]).
//! - [`Report`] sums a run up as JSON and as text; [`plot`] draws it;
//!   [`sweep`] runs a range of seeds and tables them.
//! - One node may be recorded with swim-core's recorder
//!   ([`Simulation::recording`]), and [`replay`] replays a log, the
//!   simulator's or a driver's, checking every step's outputs.
//!
//! ```
//! use swim_sim::{Report, Scenario, Simulation};
//!
//! let mut spec = Scenario::Join.spec(7);
//! spec.nodes = 20;
//! spec.duration = std::time::Duration::from_secs(20);
//! let mut sim = Simulation::new(spec).expect("valid config");
//! sim.run();
//! let report = Report::new(&sim, std::time::Duration::ZERO);
//! assert!(report.join_convergence_seconds.is_some());
//! assert!(report.invariant_violations.is_empty());
//! ```

pub mod beliefs;
pub mod bounds;
pub mod checks;
pub mod expect;
pub mod flood;
pub mod invariants;
pub mod network;
pub mod nibbles;
pub mod plot;
pub mod queue;
pub mod refusals;
pub mod replay;
pub mod report;
pub mod seed;
pub mod sim;
pub mod spec;
pub mod sweep;
pub mod trace;

pub use report::Report;
pub use sim::Simulation;
pub use spec::{CrashSpec, EncryptionMode, LatencyRange, PartitionSpec, Profile, RunSpec, Scenario, SpecError};
