//! Maps the runtime's monotonic clock onto swim-core's `Instant`.
//!
//! swim-core never reads a clock: the driver picks an epoch (when the node
//! was started) and hands the node nanoseconds since then.

use std::time::Duration;

use tokio::time::Instant as TokioInstant;

/// The driver's epoch and the conversions both ways.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    epoch: TokioInstant,
}

impl Clock {
    /// A clock whose epoch is now.
    pub(crate) fn start() -> Self {
        Clock { epoch: TokioInstant::now() }
    }

    /// The current time as the node sees it.
    pub(crate) fn now(self) -> swim_core::Instant {
        self.to_core(TokioInstant::now())
    }

    /// A runtime instant as the node sees it (saturating at both ends).
    pub(crate) fn to_core(self, t: TokioInstant) -> swim_core::Instant {
        let nanos = t.saturating_duration_since(self.epoch).as_nanos();
        swim_core::Instant::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// A node deadline as a runtime instant; far-future deadlines are
    /// clamped to a year from now so timer arithmetic cannot overflow.
    pub(crate) fn to_runtime(self, t: swim_core::Instant) -> TokioInstant {
        const FAR: Duration = Duration::from_secs(365 * 24 * 3600);
        let now = TokioInstant::now();
        let far = now + FAR;
        match self.epoch.checked_add(t.since_epoch()) {
            Some(deadline) if deadline < far => deadline,
            _ => far,
        }
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
        assert_eq!(clock.to_runtime(core), later);
        assert!(clock.to_runtime(swim_core::Instant::MAX) > TokioInstant::now());
        assert_eq!(clock.to_core(clock.epoch - Duration::from_secs(0)), swim_core::Instant::ZERO);
    }
}
