//! Expectations a run is asked to hold (`--expect`), beyond the invariants
//! every run checks: a run that does not hold one exits non-zero.

use std::fmt;
use std::str::FromStr;

use crate::report::Report;
use crate::spec::ParseError;

/// Something the caller expects of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expectation {
    /// The join converged: every live node saw every live node Alive.
    Converged,
    /// No Failed event about a live node.
    NoFalsePositives,
    /// No Suspected event about a live node.
    NoFalseSuspicions,
    /// Every crashed node was Failed at every live node.
    Detected,
}

impl Expectation {
    /// Every expectation, by its option value.
    pub const ALL: [(&'static str, Expectation); 4] = [
        ("converged", Expectation::Converged),
        ("no-false-positives", Expectation::NoFalsePositives),
        ("no-false-suspicions", Expectation::NoFalseSuspicions),
        ("detected", Expectation::Detected),
    ];

    /// Why `report` does not hold it, or `None` when it does.
    pub fn check(self, report: &Report) -> Option<String> {
        match self {
            Expectation::Converged if report.join_convergence_seconds.is_none() => {
                Some("expected the join to converge; it never did".to_owned())
            }
            Expectation::NoFalsePositives if report.false_positives > 0 => Some(format!(
                "expected no false positive; {} Failed events about {} live nodes",
                report.false_positives, report.false_positive_nodes
            )),
            Expectation::NoFalseSuspicions if report.false_suspicions > 0 => Some(format!(
                "expected no false suspicion; {} Suspected events about {} live nodes",
                report.false_suspicions, report.false_suspicion_nodes
            )),
            Expectation::Detected
                if report.undetected > 0
                    || report.detection.all_failed_count + report.detection.restarted < report.crashed =>
            {
                Some(format!(
                    "expected every crash detected everywhere; {} of {} were, {} departed nodes still believed live",
                    report.detection.all_failed_count, report.crashed, report.undetected
                ))
            }
            _ => None,
        }
    }
}

impl FromStr for Expectation {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Expectation::ALL
            .iter()
            .find(|(name, _)| *name == s)
            .map(|(_, e)| *e)
            .ok_or(ParseError("one of converged, no-false-positives, no-false-suspicions, detected"))
    }
}

impl fmt::Display for Expectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = Expectation::ALL.iter().find(|(_, e)| e == self).map_or("?", |(n, _)| n);
        f.write_str(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_print_back() {
        for (name, e) in Expectation::ALL {
            assert_eq!(name.parse::<Expectation>(), Ok(e));
            assert_eq!(e.to_string(), name);
        }
        assert!("sometimes".parse::<Expectation>().is_err());
    }
}
