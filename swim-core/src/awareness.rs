//! Local health (Lifeguard §IV.A, memberlist `awareness.go`).
//!
//! A node that misses acks and nacks is more likely slow itself than
//! surrounded by failures. Its health score rises on such evidence and falls
//! on successful probes; probe interval and timeout are stretched by
//! `score + 1`, so a struggling node accuses others more slowly.

use core::time::Duration;

/// The local health score, in `0..max_multiplier`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Awareness {
    score: u32,
    max_multiplier: u32,
    enabled: bool,
}

impl Awareness {
    pub fn new(max_multiplier: u32, enabled: bool) -> Self {
        Awareness { score: 0, max_multiplier: max_multiplier.max(1), enabled }
    }

    /// Move the score by `delta`, clamped to `0..max_multiplier`.
    pub fn apply(&mut self, delta: i32) {
        if !self.enabled {
            return;
        }
        let top = self.max_multiplier - 1;
        self.score = self.score.saturating_add_signed(delta).min(top);
    }

    /// The current score: 0 is healthy.
    pub fn score(&self) -> u32 {
        self.score
    }

    /// `d * (score + 1)`.
    pub fn scale(&self, d: Duration) -> Duration {
        crate::time::scale(d, self.score + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_stays_within_bounds_and_scales_timeouts() {
        let mut a = Awareness::new(8, true);
        a.apply(-1);
        assert_eq!(a.score(), 0);
        a.apply(3);
        assert_eq!(a.scale(Duration::from_millis(500)), Duration::from_secs(2));
        a.apply(100);
        assert_eq!(a.score(), 7);
        a.apply(-2);
        assert_eq!(a.score(), 5);
    }

    #[test]
    fn disabled_awareness_never_scales() {
        let mut a = Awareness::new(8, false);
        a.apply(5);
        assert_eq!(a.scale(Duration::from_secs(1)), Duration::from_secs(1));
    }
}
