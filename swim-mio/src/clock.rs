//! Maps the OS monotonic clock onto swim-core's `Instant`.
//!
//! swim-core never reads a clock: the driver picks an epoch (when the node
//! was started) and hands the node nanoseconds since then.

use std::time::{Duration, Instant as StdInstant};

/// Longest single wait of the loop, so far-future deadlines cannot overflow
/// the poller's timeout arithmetic.
const LONGEST_WAIT: Duration = Duration::from_secs(3600);

/// The driver's epoch and the conversions both ways.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    epoch: StdInstant,
}

impl Clock {
    /// A clock whose epoch is now.
    pub(crate) fn start() -> Self {
        Clock { epoch: StdInstant::now() }
    }

    /// The current time as the node sees it.
    pub(crate) fn now(self) -> swim_core::Instant {
        self.to_core(StdInstant::now())
    }

    /// An OS instant as the node sees it (saturating at both ends).
    pub(crate) fn to_core(self, t: StdInstant) -> swim_core::Instant {
        let nanos = t.saturating_duration_since(self.epoch).as_nanos();
        swim_core::Instant::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// How long to wait from `now` until the node's deadline `t` (zero when
    /// it is due), capped at an hour.
    pub(crate) fn wait_until(self, now: swim_core::Instant, t: swim_core::Instant) -> Duration {
        t.saturating_duration_since(now).min(LONGEST_WAIT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_saturate_and_waits_are_capped() {
        let clock = Clock::start();
        let later = clock.epoch + Duration::from_millis(1500);
        assert_eq!(clock.to_core(later), swim_core::Instant::from_millis(1500));
        assert_eq!(clock.to_core(clock.epoch), swim_core::Instant::ZERO);
        let now = swim_core::Instant::from_secs(5);
        assert_eq!(clock.wait_until(now, swim_core::Instant::from_secs(4)), Duration::ZERO);
        assert_eq!(clock.wait_until(now, swim_core::Instant::from_secs(6)), Duration::from_secs(1));
        assert_eq!(clock.wait_until(now, swim_core::Instant::MAX), LONGEST_WAIT);
    }
}
