//! The core's notion of time: a monotonic instant chosen by the driver.
//!
//! swim-core never reads a clock. A driver picks an epoch (process start, the
//! simulator's zero) and hands the core `Instant`s measured from it. All
//! arithmetic saturates, so no input time can make the core panic.

use core::fmt;
use core::ops::{Add, Sub};
use core::time::Duration;

/// A point in time, in nanoseconds since an epoch the driver chooses.
///
/// Only differences between instants of one driver mean anything. Arithmetic
/// saturates at the ends of the range instead of panicking.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(u64);

impl Instant {
    /// The driver's epoch.
    pub const ZERO: Instant = Instant(0);
    /// The latest representable instant (about 584 years after the epoch).
    pub const MAX: Instant = Instant(u64::MAX);

    /// An instant `nanos` nanoseconds after the epoch.
    pub const fn from_nanos(nanos: u64) -> Self {
        Instant(nanos)
    }

    /// An instant `micros` microseconds after the epoch (saturating).
    pub const fn from_micros(micros: u64) -> Self {
        Instant(micros.saturating_mul(1_000))
    }

    /// An instant `millis` milliseconds after the epoch (saturating).
    pub const fn from_millis(millis: u64) -> Self {
        Instant(millis.saturating_mul(1_000_000))
    }

    /// An instant `secs` seconds after the epoch (saturating).
    pub const fn from_secs(secs: u64) -> Self {
        Instant(secs.saturating_mul(1_000_000_000))
    }

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// The time elapsed since the epoch.
    pub const fn since_epoch(self) -> Duration {
        Duration::from_nanos(self.0)
    }

    /// `self - earlier`, or zero when `earlier` is later than `self`.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// `self + d`, clamped to [`Instant::MAX`].
    pub fn saturating_add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(duration_nanos(d)))
    }

    /// `self - d`, clamped to [`Instant::ZERO`].
    pub fn saturating_sub(self, d: Duration) -> Instant {
        Instant(self.0.saturating_sub(duration_nanos(d)))
    }
}

/// The node's own time, kept from the driver's: it never goes back, and
/// advances by at most `max_step` per input. A driver's clock may be
/// stepped back, jump ahead after a suspend, or be handed `Instant::MAX` by
/// a bug; the node then neither freezes (a `now` at the end of time would
/// leave every later time "in the past") nor fires a whole suspend's worth
/// of timers at once. Deadlines are kept in node time and handed back in
/// the driver's, measured from the driver's latest `now`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NodeClock {
    node: Instant,
    driver: Instant,
}

/// How one `now` moved the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Forward by no more than the cap (or not at all).
    Forward,
    /// The driver's time went back: node time stood still.
    Backward,
    /// Forward by more than the cap: node time moved by the cap.
    Jump,
}

impl NodeClock {
    pub fn new(now: Instant) -> Self {
        NodeClock { node: now, driver: now }
    }

    /// Node time.
    pub fn now(&self) -> Instant {
        self.node
    }

    /// The driver's latest `now`.
    pub fn driver_now(&self) -> Instant {
        self.driver
    }

    pub fn advance(&mut self, driver_now: Instant, max_step: Duration) -> Step {
        if driver_now < self.driver {
            self.driver = driver_now;
            return Step::Backward;
        }
        let elapsed = driver_now - self.driver;
        self.driver = driver_now;
        if elapsed > max_step {
            self.node = self.node + max_step;
            Step::Jump
        } else {
            self.node = self.node + elapsed;
            Step::Forward
        }
    }

    /// A node-time deadline in the driver's time.
    pub fn in_driver_time(&self, t: Instant) -> Instant {
        if t >= self.node {
            self.driver + (t - self.node)
        } else {
            self.driver.saturating_sub(self.node - t)
        }
    }
}

/// A duration in whole nanoseconds, saturating at `u64::MAX`.
pub(crate) fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// `d * factor`, saturating instead of panicking.
pub(crate) fn scale(d: Duration, factor: u32) -> Duration {
    Duration::from_nanos(duration_nanos(d).saturating_mul(u64::from(factor)))
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        self.saturating_add(d)
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0 / 1_000_000_000;
        let nanos = self.0 % 1_000_000_000;
        write!(f, "T+{secs}.{nanos:09}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_panicking() {
        assert_eq!(Instant::MAX + Duration::from_secs(1), Instant::MAX);
        assert_eq!(Instant::ZERO.saturating_sub(Duration::from_secs(1)), Instant::ZERO);
        assert_eq!(Instant::ZERO - Instant::from_secs(3), Duration::ZERO);
        assert_eq!(Instant::from_secs(3) - Instant::from_secs(1), Duration::from_secs(2));
        assert_eq!(Instant::ZERO + Duration::MAX, Instant::MAX);
        assert_eq!(scale(Duration::MAX, 8), Duration::from_nanos(u64::MAX));
    }

    #[test]
    fn the_node_clock_survives_jumps_and_regressions() {
        let cap = Duration::from_secs(60);
        let mut c = NodeClock::new(Instant::from_secs(10));
        assert_eq!(c.advance(Instant::from_secs(11), cap), Step::Forward);
        assert_eq!(c.now(), Instant::from_secs(11));
        assert_eq!(c.advance(Instant::MAX, cap), Step::Jump);
        assert_eq!(c.now(), Instant::from_secs(71));
        assert_eq!(c.in_driver_time(Instant::from_secs(72)), Instant::MAX);
        assert_eq!(c.advance(Instant::from_secs(12), cap), Step::Backward);
        assert_eq!(c.now(), Instant::from_secs(71));
        assert_eq!(c.in_driver_time(Instant::from_secs(72)), Instant::from_secs(13));
        assert_eq!(c.in_driver_time(Instant::from_secs(70)), Instant::from_secs(11));
        assert_eq!(c.advance(Instant::from_secs(14), cap), Step::Forward);
        assert_eq!(c.now(), Instant::from_secs(73));
    }

    #[test]
    fn debug_shows_seconds_since_epoch() {
        assert_eq!(format!("{:?}", Instant::from_millis(1500)), "T+1.500000000s");
    }
}
