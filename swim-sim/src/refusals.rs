//! Datagrams the nodes refused, by reason, summed over every process of a
//! run, and the requests from strangers they turned down.

use serde::ser::{Serialize, SerializeMap, Serializer};
use swim_core::{Rejections, Stats};

/// The reasons of swim-core's `Stats::rejected`, by the names its fields
/// have (and the JSON report uses), in the order they are listed.
pub const REASONS: [&str; 18] = [
    "too_short",
    "too_long",
    "bad_version",
    "wrong_cluster",
    "bad_checksum",
    "malformed",
    "too_large",
    "unknown_message",
    "from_self",
    "extra_primary",
    "plaintext_refused",
    "sealed_unexpected",
    "unknown_key",
    "bad_tag",
    "replayed",
    "unbound",
    "rate_limited",
    "rate_limited_total",
];

/// The counts of `r`, in the order of [`REASONS`].
fn counts(r: &Rejections) -> [u64; REASONS.len()] {
    [
        r.too_short,
        r.too_long,
        r.bad_version,
        r.wrong_cluster,
        r.bad_checksum,
        r.malformed,
        r.too_large,
        r.unknown_message,
        r.from_self,
        r.extra_primary,
        r.plaintext_refused,
        r.sealed_unexpected,
        r.unknown_key,
        r.bad_tag,
        r.replayed,
        r.unbound,
        r.rate_limited,
        r.rate_limited_total,
    ]
}

/// Refusals added up over nodes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refusals {
    by_reason: [u64; REASONS.len()],
    /// Refusals swim-core counts under a reason this list does not name
    /// (one added after it was written): counted here rather than lost.
    other: u64,
    /// Digests from non-members and ping requests for unknown targets
    /// (`Stats::strangers_refused`).
    pub strangers: u64,
}

impl Refusals {
    /// Add one node's counters.
    pub fn add(&mut self, stats: &Stats) {
        let c = counts(&stats.rejected);
        for (sum, x) in self.by_reason.iter_mut().zip(c) {
            *sum += x;
        }
        self.other += stats.rejected.total().saturating_sub(c.iter().sum());
        self.strangers += stats.strangers_refused;
    }

    /// Add another sum.
    pub fn merge(&mut self, other: &Refusals) {
        for (sum, x) in self.by_reason.iter_mut().zip(other.by_reason) {
            *sum += x;
        }
        self.other += other.other;
        self.strangers += other.strangers;
    }

    /// Every refused datagram, whatever the reason.
    pub fn total(&self) -> u64 {
        self.by_reason.iter().sum::<u64>() + self.other
    }

    /// The count of one reason of [`REASONS`] (0 for a name not in it).
    pub fn get(&self, reason: &str) -> u64 {
        REASONS.iter().position(|r| *r == reason).map_or(0, |i| self.by_reason[i])
    }

    /// The reasons with a count above zero, in the order of [`REASONS`]
    /// (`other` last).
    pub fn nonzero(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        REASONS.iter().copied().zip(self.by_reason).chain([("other", self.other)]).filter(|&(_, n)| n > 0)
    }
}

impl Serialize for Refusals {
    /// Every reason with its count (zeros included, so the JSON always has
    /// the same keys), then `other` and `total`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(REASONS.len() + 2))?;
        for (reason, n) in REASONS.iter().zip(self.by_reason) {
            map.serialize_entry(reason, &n)?;
        }
        map.serialize_entry("other", &self.other)?;
        map.serialize_entry("total", &self.total())?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_swim_core_counts_is_summed() {
        let mut stats = Stats::default();
        stats.rejected.bad_tag = 2;
        stats.rejected.replayed = 3;
        stats.rejected.too_short = 1;
        stats.rejected.rate_limited_total = 5;
        stats.strangers_refused = 4;
        let mut sum = Refusals::default();
        sum.add(&stats);
        sum.add(&stats);
        assert_eq!(sum.total(), 22);
        assert_eq!(sum.total(), 2 * stats.rejected.total(), "no reason is left out");
        assert_eq!(sum.get("bad_tag"), 4);
        assert_eq!(sum.strangers, 8);
        let nonzero = [("too_short", 2), ("bad_tag", 4), ("replayed", 6), ("rate_limited_total", 10)];
        assert_eq!(sum.nonzero().collect::<Vec<_>>(), nonzero);
        let json = serde_json::to_value(sum).expect("serialises");
        assert_eq!(json["replayed"], 6);
        assert_eq!(json["total"], 22);
        assert_eq!(json["malformed"], 0);
    }
}
