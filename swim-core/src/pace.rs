//! Pacing of full-state transfers (`Config::transfer_rate`).
//!
//! A seed answering a join storm owes every joiner its whole table: at
//! 5,000 members, about 35 KB each and 175 MB in all within a second. Sent
//! as fast as the driver polls, that burst overflows any socket's send
//! buffer (a non-blocking driver loses what does not fit; a blocking one
//! stops reading its socket until the burst is out, and its members'
//! pings go unanswered meanwhile). Transfers are written from the member
//! table as they go (a cursor, no copy), so pacing them costs nothing to
//! hold: [`crate::Node::poll_transmit`] stops offering transfer datagrams
//! while the pacer has no room, and [`crate::Node::poll_timeout`] says
//! when it will.
//!
//! The pacer is a virtual-finish-time bucket (GCRA): `finish` is when the
//! bytes sent so far would have left at the rate. A datagram of up to
//! `max` bytes may go while that leaves at most `burst` bytes queued ahead
//! of the rate, so after a quiet spell a burst goes at once and sustained
//! sending settles at the rate. One instant of state, integer nanoseconds.

use core::time::Duration;

use crate::config::Rate;
use crate::time::Instant;

/// The transfers' pacer.
#[derive(Debug, Clone)]
pub(crate) struct Pacer {
    /// Bytes per second; 0: no pacing.
    per_second: u64,
    /// How far ahead of now `finish` may be and a full datagram still go:
    /// the burst less one largest datagram, at the rate.
    slack: Duration,
    /// When everything sent so far would have left at the rate.
    finish: Instant,
}

impl Pacer {
    /// A pacer at `rate` (bytes a second, burst in bytes) for datagrams of
    /// at most `max_datagram` bytes. Config validation keeps the burst at
    /// least one datagram.
    pub fn new(rate: Rate, max_datagram: usize) -> Self {
        let per_second = u64::from(rate.per_second);
        let room = u64::from(rate.burst).saturating_sub(max_datagram as u64);
        Pacer { per_second, slack: time_for(room, per_second), finish: Instant::ZERO }
    }

    /// Whether a datagram may go at `now`.
    pub fn ready(&self, now: Instant) -> bool {
        self.per_second == 0 || self.finish <= now.saturating_add(self.slack)
    }

    /// When a datagram may go next, if not at `now`.
    pub fn ready_at(&self, now: Instant) -> Option<Instant> {
        if self.ready(now) {
            return None;
        }
        // `finish - slack > now` here, so the subtraction does not clamp.
        Some(self.finish.saturating_sub(self.slack))
    }

    /// `bytes` went at `now`.
    pub fn sent(&mut self, now: Instant, bytes: usize) {
        if self.per_second == 0 {
            return;
        }
        self.finish = self.finish.max(now).saturating_add(time_for(bytes as u64, self.per_second));
    }
}

/// How long `units` (bytes here, budget units in [`crate::budget`]) take at
/// `per_second`, rounded up (zero when the rate is 0).
pub(crate) fn time_for(units: u64, per_second: u64) -> Duration {
    if per_second == 0 {
        return Duration::ZERO;
    }
    let nanos = (u128::from(units) * 1_000_000_000).div_ceil(u128::from(per_second));
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u32 = 1_000_000;

    #[test]
    fn a_burst_goes_at_once_then_the_rate_holds() {
        // 1 MB/s, bursts of 10 KB, 1 KB datagrams.
        let mut p = Pacer::new(Rate { per_second: MB, burst: 10_000 }, 1_000);
        let t = Instant::from_secs(5);
        let mut sent = 0;
        while p.ready(t) {
            p.sent(t, 1_000);
            sent += 1;
        }
        assert_eq!(sent, 10, "the burst, no more");
        // Each further kilobyte waits a millisecond.
        let next = p.ready_at(t).expect("paced");
        assert_eq!(next, t + Duration::from_millis(1));
        assert!(!p.ready(next.saturating_sub(Duration::from_nanos(1))));
        assert!(p.ready(next));
        // Sustained: from then to a second after the burst, 999 ms at the rate.
        let mut now = next;
        let mut bytes = 0u64;
        while now < t + Duration::from_secs(1) {
            while p.ready(now) {
                p.sent(now, 1_000);
                bytes += 1_000;
            }
            now = p.ready_at(now).expect("paced");
        }
        assert!((999_000..=1_000_000).contains(&bytes), "{bytes}");
    }

    #[test]
    fn a_quiet_spell_gives_back_the_burst_and_no_more() {
        let mut p = Pacer::new(Rate { per_second: MB, burst: 4_000 }, 1_000);
        let t = Instant::from_secs(1);
        for _ in 0..4 {
            assert!(p.ready(t));
            p.sent(t, 1_000);
        }
        assert!(!p.ready(t));
        let later = t + Duration::from_secs(60);
        let n = core::iter::from_fn(|| p.ready(later).then(|| p.sent(later, 1_000))).take(100).count();
        assert_eq!(n, 4);
    }

    #[test]
    fn a_zero_rate_never_paces() {
        let mut p = Pacer::new(Rate { per_second: 0, burst: 0 }, 1_400);
        for _ in 0..10_000 {
            assert!(p.ready(Instant::ZERO));
            p.sent(Instant::ZERO, 1_400);
        }
        assert_eq!(p.ready_at(Instant::ZERO), None);
    }

    #[test]
    fn the_end_of_time_does_not_overflow() {
        let mut p = Pacer::new(Rate { per_second: 1, burst: 1_400 }, 1_400);
        p.sent(Instant::MAX, usize::MAX);
        assert!(p.ready(Instant::MAX));
        assert_eq!(p.ready_at(Instant::MAX), None);
    }
}
