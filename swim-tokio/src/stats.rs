//! A snapshot of everything a running node counts: the core's counters,
//! the driver's own (socket errors, lagging subscribers) and member counts.

/// Counters kept by the driver, beside the core's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DriverStats {
    /// Sends that failed (refused, unreachable, ...); the node kept going.
    pub send_errors: u64,
    /// Receives that failed transiently; the node kept going.
    pub receive_errors: u64,
    /// Events published to subscribers.
    pub events_published: u64,
    /// Seed resolutions started (the join's and each retry round's).
    pub seed_resolutions: u64,
}

pub use swim_driver::MemberCounts;

/// Everything a running node counts, taken at one moment.
pub type Stats = swim_driver::Stats<DriverStats>;
