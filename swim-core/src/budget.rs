//! Inbound flood budgets: token buckets per source and for the whole node,
//! driven by node time, checked before a datagram's checksum or tag.
//!
//! Every datagram costs units: one, more for what makes this node work or
//! send (see [`cost`]). A source spends from its own bucket and from the
//! node's; a datagram either bucket cannot pay for is refused whole before
//! anything else is done with it, and counted. Buckets refill continuously
//! at their rate up to their burst, in integer millitokens (no float).
//!
//! Sources share a fixed table of buckets, by a keyed hash of their address
//! (the key drawn from the node's RNG, so an outsider cannot aim its
//! addresses at a member's bucket): memory is fixed by Config whatever the
//! number of sources, and a source costs one lookup.

use alloc::vec::Vec;

use crate::config::Rate;
use crate::time::Instant;
use crate::wire::tag;

/// Units a datagram whose first message has tag `first` costs (`flags`:
/// the byte after the tag, for a PushPull). Replies and gossip cost 1; a
/// ping request makes this node ping (4); a digest may make it send state
/// (8); a full-state request makes it send its whole table (16).
pub(crate) fn cost(first: Option<u8>, flags: Option<u8>) -> u32 {
    match first {
        Some(tag::PING_REQ) => 4,
        Some(tag::DIGEST) => 8,
        Some(tag::PUSH_PULL) if flags.is_some_and(|f| f & crate::wire::push_pull_flags::REPLY_WANTED != 0) => 16,
        _ => 1,
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    millitokens: u64,
    last: Instant,
}

impl Bucket {
    fn refill(&mut self, now: Instant, rate: Rate) {
        let elapsed = now.saturating_duration_since(self.last).as_nanos();
        // tokens/s = millitokens/ms = millitokens per 10^6 ns.
        let gained = elapsed.saturating_mul(u128::from(rate.per_second)) / 1_000_000;
        let full = u64::from(rate.burst) * 1000;
        self.millitokens =
            u64::try_from(u128::from(self.millitokens).saturating_add(gained)).unwrap_or(u64::MAX).min(full);
        self.last = now;
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
    per_source: Rate,
    total: Rate,
    sources: Vec<Bucket>,
    all: Bucket,
    key: u64,
}

impl FloodBudget {
    pub fn new(per_source: Rate, total: Rate, slots: usize, key: u64, now: Instant) -> Self {
        let full = |r: Rate| Bucket { millitokens: u64::from(r.burst) * 1000, last: now };
        let slots = if per_source.per_second == 0 { 0 } else { slots.max(1) };
        FloodBudget { per_source, total, sources: alloc::vec![full(per_source); slots], all: full(total), key }
    }

    /// Spend `units` for a datagram from the source whose address hashes to
    /// `source_hash`; nothing is spent when either bucket cannot pay.
    pub fn charge(&mut self, now: Instant, source_hash: u64, units: u32) -> Result<(), Exhausted> {
        let cost = u64::from(units) * 1000;
        let slot = if self.sources.is_empty() {
            None
        } else {
            let h = crate::digest::finalize(source_hash ^ self.key);
            Some(((u128::from(h) * self.sources.len() as u128) >> 64) as usize)
        };
        if let Some(b) = slot.and_then(|i| self.sources.get_mut(i)) {
            b.refill(now, self.per_source);
            if b.millitokens < cost {
                return Err(Exhausted::Source);
            }
        }
        if self.total.per_second != 0 {
            self.all.refill(now, self.total);
            if self.all.millitokens < cost {
                return Err(Exhausted::Total);
            }
            self.all.millitokens -= cost;
        }
        if let Some(b) = slot.and_then(|i| self.sources.get_mut(i)) {
            b.millitokens -= cost;
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
        let mut b = FloodBudget::new(rate, Rate { per_second: 0, burst: 0 }, 64, 7, Instant::ZERO);
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
        let mut b = FloodBudget::new(
            Rate { per_second: 1000, burst: 1000 },
            Rate { per_second: 10, burst: 20 },
            16,
            1,
            Instant::ZERO,
        );
        let ok = (0..1000u64).filter(|&s| b.charge(Instant::ZERO, s, 1).is_ok()).count();
        assert_eq!(ok, 20);
        assert_eq!(b.charge(Instant::ZERO, 5, 1), Err(Exhausted::Total));
    }

    #[test]
    fn costs_follow_the_work_a_datagram_causes() {
        assert_eq!(cost(Some(tag::PING), None), 1);
        assert_eq!(cost(Some(tag::PING_REQ), None), 4);
        assert_eq!(cost(Some(tag::DIGEST), Some(1)), 8);
        assert_eq!(cost(Some(tag::PUSH_PULL), Some(1)), 16);
        assert_eq!(cost(Some(tag::PUSH_PULL), Some(0)), 1);
        assert_eq!(cost(None, None), 1);
    }
}
