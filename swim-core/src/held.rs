//! Recent broadcasts kept for anti-entropy: push gossip alone can miss a
//! member for good (every copy lost, or the member not yet known to the
//! senders), so each node keeps its most recent broadcasts for a while and
//! its probes compare them with the probed member's.
//!
//! A prober's ping carries a summary of what it holds (a count and the
//! wrapping sum of a hash of each id, which does not depend on the order
//! broadcasts arrived in); a probed member whose summary differs lists its
//! ids in the ack; the prober, the ack having matched its probe, sends the
//! member what it lacks in one datagram. Every node is probed about once
//! per protocol period, so a member missing a broadcast most others hold
//! gets it within a few periods, whatever the loss.
//!
//! Bounded by `Config::broadcast_keep` (how many, at most
//! [`MAX_HELD`]) and `Config::broadcast_keep_time` (how long, from when
//! this node first delivered or sent each); the oldest goes first.

use alloc::boxed::Box;
use alloc::collections::VecDeque;

use crate::digest::finalize;
use crate::time::Instant;
pub(crate) use crate::wire::MAX_HELD;

/// One broadcast kept.
#[derive(Debug)]
struct Kept<A> {
    id: u64,
    origin: A,
    payload: Box<[u8]>,
    /// When it is dropped.
    until: Instant,
}

/// The broadcasts kept, oldest first.
#[derive(Debug)]
pub(crate) struct Held<A> {
    kept: VecDeque<Kept<A>>,
    /// The wrapping sum of [`id_hash`] over `kept`.
    sum: u64,
}

/// An id's contribution to the summary: mixed, so ids an attacker picks
/// cannot cancel out a real one's.
fn id_hash(id: u64) -> u64 {
    finalize(id ^ 0x9e37_79b9_7f4a_7c15)
}

impl<A> Held<A> {
    pub fn new() -> Self {
        Held { kept: VecDeque::new(), sum: 0 }
    }

    /// Broadcasts held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.kept.len()
    }

    /// Keep a broadcast this node has just delivered or sent (never one it
    /// had already: the caller deduplicates first), until `until`; past
    /// `keep` (at most [`MAX_HELD`]) the oldest goes. `keep` 0 keeps none.
    pub fn insert(&mut self, id: u64, origin: A, payload: &[u8], until: Instant, keep: usize) {
        let keep = keep.min(MAX_HELD);
        if keep == 0 {
            return;
        }
        while self.kept.len() >= keep {
            self.pop_oldest();
        }
        self.sum = self.sum.wrapping_add(id_hash(id));
        self.kept.push_back(Kept { id, origin, payload: payload.into(), until });
    }

    fn pop_oldest(&mut self) {
        if let Some(k) = self.kept.pop_front() {
            self.sum = self.sum.wrapping_sub(id_hash(k.id));
        }
        if self.kept.is_empty() {
            // A burst's memory goes back once it has expired.
            self.kept = VecDeque::new();
        }
    }

    /// Drop what is due by `now`. Entries are kept in insertion order and
    /// every one is kept equally long, so this looks at the front only.
    pub fn expire(&mut self, now: Instant) {
        while self.kept.front().is_some_and(|k| k.until <= now) {
            self.pop_oldest();
        }
    }

    /// The summary a ping carries ([`crate::wire::Message::Held`]): how
    /// many are held and the sum of their ids' hashes; `None` when none is.
    pub fn summary(&self) -> Option<(u8, u64)> {
        (!self.kept.is_empty()).then_some((self.kept.len() as u8, self.sum))
    }

    /// Whether a peer's summary is the same as ours (none is held on
    /// either side, or the same count and sum).
    pub fn same_as(&self, count: u8, sum: u64) -> bool {
        self.summary().unwrap_or((0, 0)) == (count, sum)
    }

    /// Our ids as [`crate::wire::Message::HeldIds`] carries them, in `out`
    /// (eight big-endian bytes each); the bytes written.
    pub fn write_ids(&self, out: &mut [u8; 8 * MAX_HELD]) -> usize {
        let mut n = 0;
        for (k, chunk) in self.kept.iter().zip(out.chunks_exact_mut(8)) {
            chunk.copy_from_slice(&k.id.to_be_bytes());
            n += 8;
        }
        n
    }

    /// Which of ours a peer listing `ids` (eight bytes each, at most
    /// [`MAX_HELD`]) lacks, as a bit per position in our list.
    /// O(held x listed), both bounded by [`MAX_HELD`].
    pub fn lacking(&self, ids: &[u8]) -> u64 {
        let mut mask = 0u64;
        for (i, k) in self.kept.iter().enumerate().take(MAX_HELD) {
            let listed = ids.chunks_exact(8).take(MAX_HELD).any(|c| c == k.id.to_be_bytes());
            if !listed {
                mask |= 1 << i;
            }
        }
        mask
    }

    /// The broadcast at position `i` of our list: id, origin, payload.
    pub fn get(&self, i: usize) -> Option<(u64, &A, &[u8])> {
        self.kept.get(i).map(|k| (k.id, &k.origin, &k.payload[..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::time::Duration;

    fn at(s: u64) -> Instant {
        Instant::ZERO + Duration::from_secs(s)
    }

    #[test]
    fn summaries_agree_whatever_the_order_broadcasts_arrived_in() {
        let (mut a, mut b) = (Held::new(), Held::new());
        for id in [1u64, 2, 3] {
            a.insert(id, 0u32, b"x", at(10), 8);
        }
        for id in [3u64, 1, 2] {
            b.insert(id, 0u32, b"x", at(10), 8);
        }
        let (count, sum) = a.summary().unwrap();
        assert!(b.same_as(count, sum));
        b.insert(4, 0, b"y", at(10), 8);
        assert!(!b.same_as(count, sum));
        assert!(Held::<u32>::new().same_as(0, 0), "nothing held on either side");
    }

    #[test]
    fn what_a_peer_lacks_is_what_its_list_leaves_out() {
        let mut a = Held::new();
        for id in [10u64, 20, 30] {
            a.insert(id, 0u32, b"x", at(10), 8);
        }
        let mut theirs = [0u8; 8 * MAX_HELD];
        let mut b = Held::new();
        b.insert(20, 0u32, b"x", at(10), 8);
        let n = b.write_ids(&mut theirs);
        assert_eq!(a.lacking(&theirs[..n]), 0b101);
        assert_eq!(a.lacking(&[]), 0b111);
        assert_eq!(a.get(2).map(|(id, _, p)| (id, p.len())), Some((30, 1)));
    }

    #[test]
    fn the_oldest_goes_past_the_bound_and_everything_expires() {
        let mut a = Held::new();
        for id in 0..100u64 {
            a.insert(id, 0u32, b"x", at(10 + id), 4);
            assert!(a.len() <= 4);
        }
        assert_eq!(a.get(0).map(|k| k.0), Some(96));
        a.expire(at(106));
        assert_eq!(a.len(), 3);
        a.expire(at(1000));
        assert_eq!(a.summary(), None);
        a.insert(1, 0, b"x", at(10), 0);
        assert_eq!(a.len(), 0, "keep 0 keeps none");
        for id in 0..100u64 {
            a.insert(id, 0u32, b"x", at(10), 1000);
        }
        assert_eq!(a.len(), MAX_HELD);
    }
}
