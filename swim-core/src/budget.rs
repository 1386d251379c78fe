//! Inbound flood budgets: token buckets per source and for the whole node,
//! driven by node time, checked before a datagram's checksum or tag.
//!
//! Every datagram costs units: one, more for what makes this node work or
//! send (see [`cost`]). A source spends from its own bucket and from the
//! node's; a datagram either bucket cannot pay for is refused whole before
//! anything else is done with it, and counted. Buckets refill continuously
//! at their rate up to their burst, in integer nanoseconds (no float).
//!
//! Sources share a fixed table of buckets (eight bytes each), by a keyed
//! hash of their address (the key drawn from the node's RNG, so an outsider
//! cannot aim its addresses at a member's bucket): memory is fixed by Config whatever the
//! number of sources, and a source costs one lookup.

use alloc::vec::Vec;
use core::time::Duration;

use crate::config::Rate;
use crate::pace::time_for;
use crate::time::Instant;
use crate::wire::tag;

/// Units a datagram whose first message has tag `first` costs (`flags`:
/// the byte after the tag, for a PushPull). Replies and gossip cost 1; a
/// request that makes this node send more than one reply costs 4: a ping
/// request (a ping to a third party, then the ack back), a digest (a
/// digest back, then state), a full-state request (a verification ping,
/// then the table). What a transfer sends is paced by `transfer_rate` and
/// queued within `max_push_pull_sends`, so its units count the work of
/// taking the request, not the table: at 16 units a full-state request
/// (and 8 a digest), a seed's burst took 6,250 joiners of a 10,000-node
/// join storm, the refused ones retried behind the others' follow-ups,
/// and the join took 80 s (0.74 s at 2 units; 4 keeps a 20,000-node storm
/// inside the default burst).
pub(crate) fn cost(first: Option<u8>, flags: Option<u8>) -> u32 {
    match first {
        Some(tag::PING_REQ | tag::DIGEST) => REQUEST,
        Some(tag::PUSH_PULL) if flags.is_some_and(|f| f & crate::wire::push_pull_flags::REPLY_WANTED != 0) => REQUEST,
        _ => 1,
    }
}

/// Units of a request that makes this node send more than one reply.
const REQUEST: u32 = 4;

/// The largest cost of one datagram: a burst below it would refuse every
/// such datagram.
pub(crate) const MOST_COSTLY_DATAGRAM: u32 = REQUEST;

/// One token bucket, as the instant it would be full again (a generic
/// cell rate algorithm: one timestamp, no token count, exact in integer
/// nanoseconds). A datagram of `cost` units goes when, added to what is
/// still owed, it owes no more than the burst; a bucket never charged, or
/// idle for a burst's time, is full. Eight bytes, so the table of sources
/// costs 2 KB a node at the default 256 slots.
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    full_at: Instant,
}

/// A rate in the form the buckets use: nanoseconds per unit and the
/// burst's duration at that rate (what the bucket holds, as time).
#[derive(Debug, Clone, Copy)]
struct Pace {
    unit: Duration,
    burst: Duration,
}

impl Pace {
    /// `None` when the rate is 0 (the bucket is off).
    fn of(rate: Rate) -> Option<Pace> {
        if rate.per_second == 0 {
            return None;
        }
        let per_second = u64::from(rate.per_second);
        Some(Pace { unit: time_for(1, per_second), burst: time_for(u64::from(rate.burst), per_second) })
    }
}

impl Bucket {
    /// Whether `cost` units fit at `now`, and the bucket's state if they
    /// are spent.
    fn spend(self, now: Instant, pace: Pace, units: u32) -> Option<Bucket> {
        let owed = self.full_at.max(now).saturating_add(pace.unit.saturating_mul(units));
        (owed.saturating_duration_since(now) <= pace.burst).then_some(Bucket { full_at: owed })
    }
}

/// Which budget refused a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exhausted {
    /// The sender's own bucket.
    Source,
    /// The node's bucket for all sources.
    Total,
}

#[derive(Debug)]
pub(crate) struct FloodBudget {
    per_source: Option<Pace>,
    total: Option<Pace>,
    sources: Vec<Bucket>,
    all: Bucket,
    key: u64,
}

impl FloodBudget {
    pub fn new(per_source: Rate, total: Rate, slots: usize, key: u64) -> Self {
        let per_source = Pace::of(per_source);
        let slots = if per_source.is_none() { 0 } else { slots.max(1) };
        FloodBudget {
            per_source,
            total: Pace::of(total),
            sources: alloc::vec![Bucket::default(); slots],
            all: Bucket::default(),
            key,
        }
    }

    /// Spend `units` for a datagram from the source whose address hashes to
    /// `source_hash`; nothing is spent when either bucket cannot pay.
    pub fn charge(&mut self, now: Instant, source_hash: u64, units: u32) -> Result<(), Exhausted> {
        let slot = if self.sources.is_empty() {
            None
        } else {
            let h = crate::digest::finalize(source_hash ^ self.key);
            Some(((u128::from(h) * self.sources.len() as u128) >> 64) as usize)
        };
        let source = match (slot.and_then(|i| self.sources.get(i)), self.per_source) {
            (Some(b), Some(pace)) => Some(b.spend(now, pace, units).ok_or(Exhausted::Source)?),
            _ => None,
        };
        if let Some(pace) = self.total {
            self.all = self.all.spend(now, pace, units).ok_or(Exhausted::Total)?;
        }
        if let (Some(spent), Some(b)) = (source, slot.and_then(|i| self.sources.get_mut(i))) {
            *b = spent;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::time::Duration;

    #[test]
    fn a_source_gets_its_burst_then_its_rate() {
        let rate = Rate { per_second: 100, burst: 10 };
        let mut b = FloodBudget::new(rate, Rate { per_second: 0, burst: 0 }, 64, 7);
        let t = Instant::from_secs(1);
        assert!((0..10).all(|_| b.charge(t, 42, 1).is_ok()));
        assert_eq!(b.charge(t, 42, 1), Err(Exhausted::Source));
        // Another source has its own bucket.
        assert!(b.charge(t, 4242, 1).is_ok() || b.charge(t, 4243, 1).is_ok());
        // 100 per second: one more every 10 ms, not before.
        assert_eq!(b.charge(t + Duration::from_millis(9), 42, 1), Err(Exhausted::Source));
        assert!(b.charge(t + Duration::from_millis(10), 42, 1).is_ok());
        // A costly datagram needs its whole cost at once.
        assert_eq!(b.charge(t + Duration::from_millis(50), 42, 8), Err(Exhausted::Source));
        assert!(b.charge(t + Duration::from_millis(90), 42, 8).is_ok());
    }

    #[test]
    fn the_total_bounds_all_sources_together() {
        let mut b = FloodBudget::new(Rate { per_second: 1000, burst: 1000 }, Rate { per_second: 10, burst: 20 }, 16, 1);
        let ok = (0..1000u64).filter(|&s| b.charge(Instant::ZERO, s, 1).is_ok()).count();
        assert_eq!(ok, 20);
        assert_eq!(b.charge(Instant::ZERO, 5, 1), Err(Exhausted::Total));
    }

    #[test]
    fn an_idle_bucket_holds_its_burst_and_no_more_and_extremes_do_not_overflow() {
        assert_eq!(size_of::<Bucket>(), 8, "every node holds inbound_source_slots of them");
        let rate = Rate { per_second: 1000, burst: 50 };
        let mut b = FloodBudget::new(rate, Rate { per_second: 0, burst: 0 }, 1, 3);
        let later = Instant::from_secs(3600);
        assert_eq!((0..100).filter(|_| b.charge(later, 1, 1).is_ok()).count(), 50);
        // Half a burst's time later, half a burst.
        let half = later + Duration::from_millis(25);
        assert_eq!((0..100).filter(|_| b.charge(half, 1, 1).is_ok()).count(), 25);
        let most = Rate { per_second: u32::MAX, burst: u32::MAX };
        let mut b = FloodBudget::new(most, most, 4, 9);
        assert!(b.charge(Instant::MAX, 7, u32::MAX).is_ok());
        let least = Rate { per_second: 1, burst: MOST_COSTLY_DATAGRAM };
        let mut b = FloodBudget::new(least, least, 4, 9);
        assert!(b.charge(Instant::ZERO, 7, 4).is_ok());
        assert_eq!(b.charge(Instant::from_secs(3), 7, 4), Err(Exhausted::Source));
        assert!(b.charge(Instant::from_secs(4), 7, 4).is_ok());
    }

    #[test]
    fn costs_follow_the_work_a_datagram_causes() {
        assert_eq!(cost(Some(tag::PING), None), 1);
        assert_eq!(cost(Some(tag::PING_REQ), None), 4);
        assert_eq!(cost(Some(tag::DIGEST), Some(1)), 4);
        assert_eq!(cost(Some(tag::PUSH_PULL), Some(1)), 4);
        assert_eq!(cost(Some(tag::PUSH_PULL), Some(0)), 1);
        assert_eq!(cost(None, None), 1);
    }
}
