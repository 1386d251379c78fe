//! Seed sweeps: one run per seed of a range, spread over a few threads,
//! summed up in a table (in seed order, so the same sweep prints the same
//! table) with the lowest failing seed and the command that replays it.

use std::fmt::{self, Write as _};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::expect::Expectation;
use crate::report::Report;
use crate::sim::Simulation;
use crate::spec::{ParseError, RunSpec};

/// `FIRST..LAST`: the seeds of a sweep, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedRange {
    /// The first seed.
    pub first: u64,
    /// The last seed (included).
    pub last: u64,
}

impl SeedRange {
    /// How many seeds.
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    /// Whether the range holds no seed (never: parsing refuses that).
    pub fn is_empty(&self) -> bool {
        self.last < self.first
    }
}

impl FromStr for SeedRange {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        const WANT: &str = "FIRST..LAST seeds, both included, FIRST <= LAST, e.g. 1..300";
        let (a, b) = s.split_once("..").ok_or(ParseError(WANT))?;
        let first: u64 = a.trim().parse().map_err(|_| ParseError(WANT))?;
        let last: u64 = b.trim().parse().map_err(|_| ParseError(WANT))?;
        if last < first || (first == 0 && last == u64::MAX) {
            return Err(ParseError(WANT));
        }
        Ok(SeedRange { first, last })
    }
}

impl fmt::Display for SeedRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.first, self.last)
    }
}

/// One seed's line of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepRow {
    /// The seed.
    pub seed: u64,
    /// Broken invariants (all of them, not only those listed in full).
    pub violations: u64,
    /// `--expect` conditions the run did not hold.
    pub expectations_failed: Vec<String>,
    /// Failed events about live nodes.
    pub false_failed: u64,
    /// Crash to Failed at every live node, 99th percentile, seconds.
    pub detection_p99: Option<f64>,
    /// Join convergence, seconds.
    pub convergence: Option<f64>,
    /// The first broken invariant, in words.
    pub first_violation: Option<String>,
    /// The options that replay this seed.
    pub replay_args: String,
}

impl SweepRow {
    /// Whether the seed broke an invariant or an expectation.
    pub fn failed(&self) -> bool {
        self.violations > 0 || !self.expectations_failed.is_empty()
    }

    fn of(spec: &RunSpec, sim: &Simulation, expectations: &[Expectation]) -> SweepRow {
        let report = Report::new(sim, Duration::ZERO);
        let checks = sim.checks();
        SweepRow {
            seed: spec.seed,
            violations: checks.violations().len() as u64 + checks.violations_dropped(),
            expectations_failed: expectations.iter().filter_map(|e| e.check(&report)).collect(),
            false_failed: report.false_positives,
            detection_p99: report.detection.all_failed_p99,
            convergence: report.join_convergence_seconds,
            first_violation: report.invariant_violations.first().cloned(),
            replay_args: spec.replay_args(),
        }
    }
}

/// Run `spec_of(seed)` for every seed of `seeds` on `jobs` threads (at
/// least one), checking `expectations`; `done` is called after each run.
/// The rows come back in seed order whatever the threads did.
pub fn sweep(
    seeds: SeedRange,
    jobs: usize,
    spec_of: &(dyn Fn(u64) -> RunSpec + Sync),
    expectations: &[Expectation],
    done: &(dyn Fn() + Sync),
) -> Vec<SweepRow> {
    let next = AtomicU64::new(0);
    let rows = Mutex::new(Vec::new());
    let count = seeds.len();
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1).min(count as usize) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                let spec = spec_of(seeds.first + i);
                let row = match Simulation::new(spec.clone()) {
                    Ok(mut sim) => {
                        sim.run();
                        SweepRow::of(&spec, &sim, expectations)
                    }
                    Err(e) => SweepRow {
                        seed: spec.seed,
                        violations: 1,
                        expectations_failed: Vec::new(),
                        false_failed: 0,
                        detection_p99: None,
                        convergence: None,
                        first_violation: Some(format!("invalid protocol configuration: {e}")),
                        replay_args: spec.replay_args(),
                    },
                };
                rows.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(row);
                done();
            });
        }
    });
    let mut rows = rows.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    rows.sort_by_key(|r| r.seed);
    rows
}

/// The sweep's table, its verdict, and for the lowest failing seed the
/// command that replays it: `program` (how the simulator was invoked)
/// followed by the seed's options and `suffix` (e.g. the expectations).
pub fn table(seeds: SeedRange, rows: &[SweepRow], program: &str, suffix: &str) -> String {
    let mut s = String::new();
    let secs = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.2} s"));
    let w = rows.iter().map(|r| r.seed.to_string().len()).max().unwrap_or(0).max(4);
    let _ = writeln!(
        s,
        "{:>w$}  {:>10}  {:>12}  {:>13}  {:>11}",
        "seed", "violations", "false Failed", "detection p99", "convergence"
    );
    for r in rows {
        let mark = if r.failed() { "  FAILED" } else { "" };
        let _ = writeln!(
            s,
            "{:>w$}  {:>10}  {:>12}  {:>13}  {:>11}{mark}",
            r.seed,
            r.violations,
            r.false_failed,
            secs(r.detection_p99),
            secs(r.convergence)
        );
    }
    let failing: Vec<&SweepRow> = rows.iter().filter(|r| r.failed()).collect();
    let false_failed = rows.iter().filter(|r| r.false_failed > 0).count();
    let _ = writeln!(
        s,
        "swept {} seeds ({seeds}): {} failing, {} with a false Failed",
        rows.len(),
        failing.len(),
        false_failed
    );
    if let Some(r) = failing.first() {
        let why = r.first_violation.clone().or_else(|| r.expectations_failed.first().cloned()).unwrap_or_default();
        let _ = writeln!(s, "lowest failing seed: {} ({why})", r.seed);
        let _ = writeln!(s, "replay: {program} {}{suffix}", r.replay_args);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{CrashSpec, Scenario};

    #[test]
    fn seed_ranges_include_both_ends_and_refuse_the_wrong_order() {
        let r: SeedRange = "3..5".parse().expect("valid");
        assert_eq!((r.first, r.last, r.len()), (3, 5, 3));
        assert_eq!(r.to_string(), "3..5");
        assert!("5..3".parse::<SeedRange>().is_err());
        assert!("5".parse::<SeedRange>().is_err());
    }

    fn small(seed: u64) -> RunSpec {
        let mut spec = Scenario::Crash.spec(seed);
        spec.nodes = 6;
        spec.duration = Duration::from_secs(30);
        spec.crashes = vec![CrashSpec::new(1, 10.0)];
        spec
    }

    #[test]
    fn a_sweep_gives_the_same_table_on_one_thread_or_three() {
        let seeds: SeedRange = "1..6".parse().expect("valid");
        let one = sweep(seeds, 1, &small, &[], &|| {});
        let three = sweep(seeds, 3, &small, &[], &|| {});
        assert_eq!(one, three);
        assert_eq!(one.iter().map(|r| r.seed).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6]);
        let t = table(seeds, &one, "swim-sim", "");
        assert!(t.contains("swept 6 seeds (1..6): 0 failing"), "{t}");
        assert!(!t.contains("lowest failing seed"));
    }

    #[test]
    fn the_lowest_failing_seed_is_named_with_its_replay_command() {
        let seeds: SeedRange = "1..4".parse().expect("valid");
        let mut rows = sweep(seeds, 2, &small, &[], &|| {});
        // Plant a failure at seeds 3 and 4: the table must name 3.
        for r in rows.iter_mut().filter(|r| r.seed >= 3) {
            r.violations = 2;
            r.first_violation = Some("t=1.000s: [self-alive] n1 believes itself dead".to_owned());
        }
        let t = table(seeds, &rows, "./swim-sim", " --expect converged");
        assert!(t.contains("lowest failing seed: 3 (t=1.000s: [self-alive]"), "{t}");
        assert!(t.contains("replay: ./swim-sim --scenario crash --seed 3 --nodes 6"), "{t}");
        assert!(t.trim_end().ends_with("--expect converged"), "{t}");
    }
}
