//! Maps the OS monotonic clock onto swim-core's `Instant`.
//!
//! swim-core never reads a clock: the driver picks an epoch (when the node
//! was started) and hands the node nanoseconds since then.

use std::time::{Duration, Instant as StdInstant};

/// Longest single wait of a loop, and how far into the future a deadline
/// is converted at most, so far-future deadlines cannot overflow a
/// poller's or a timer's arithmetic.
pub const LONGEST_WAIT: Duration = Duration::from_secs(3600);

/// How far ahead [`Clock::to_std`] converts a deadline at most.
const FAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// The driver's epoch and the conversions both ways.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    epoch: StdInstant,
}

impl Clock {
    /// A clock whose epoch is now.
    pub fn start() -> Self {
        Clock { epoch: StdInstant::now() }
    }

    /// The current time as the node sees it.
    pub fn now(self) -> swim_core::Instant {
        self.to_core(StdInstant::now())
    }

    /// An OS instant as the node sees it (saturating at both ends).
    pub fn to_core(self, t: StdInstant) -> swim_core::Instant {
        let nanos = t.saturating_duration_since(self.epoch).as_nanos();
        swim_core::Instant::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// A node deadline as an OS instant; far-future deadlines are clamped
    /// to a year from now so timer arithmetic cannot overflow.
    pub fn to_std(self, t: swim_core::Instant) -> StdInstant {
        let far = StdInstant::now() + FAR;
        match self.epoch.checked_add(t.since_epoch()) {
            Some(deadline) if deadline < far => deadline,
            _ => far,
        }
    }

    /// How long to wait from `now` until the node's deadline `t` (zero when
    /// it is due), capped at [`LONGEST_WAIT`].
    pub fn wait_until(self, now: swim_core::Instant, t: swim_core::Instant) -> Duration {
        t.saturating_duration_since(now).min(LONGEST_WAIT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_round_trip_and_saturate() {
        let clock = Clock::start();
        let later = clock.epoch + Duration::from_millis(1500);
        let core = clock.to_core(later);
        assert_eq!(core, swim_core::Instant::from_millis(1500));
        assert_eq!(clock.to_std(core), later);
        assert!(clock.to_std(swim_core::Instant::MAX) > StdInstant::now());
        assert_eq!(clock.to_core(clock.epoch), swim_core::Instant::ZERO);
    }

    #[test]
    fn waits_are_zero_when_due_and_capped() {
        let clock = Clock::start();
        let now = swim_core::Instant::from_secs(5);
        assert_eq!(clock.wait_until(now, swim_core::Instant::from_secs(4)), Duration::ZERO);
        assert_eq!(clock.wait_until(now, swim_core::Instant::from_secs(6)), Duration::from_secs(1));
        assert_eq!(clock.wait_until(now, swim_core::Instant::MAX), LONGEST_WAIT);
    }
}
