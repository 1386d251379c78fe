//! The dissemination queue: updates and broadcasts waiting to ride on
//! outgoing datagrams (SWIM §4.1, infection-style dissemination).
//!
//! Each item is sent at most `limit` times (memberlist: `retransmit_mult *
//! ceil(log10(N+1))`), least-sent first, so fresh news overtakes old news.
//! Items sit in buckets by transmit count; picking the least-sent is a pop
//! from the lowest non-empty bucket, O(1) per item sent regardless of queue
//! length. Re-queueing a member (a newer update replaces the older one)
//! bumps the slot's generation and leaves a stale bucket entry that is
//! skipped when it surfaces, instead of searching a bucket for it.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use smallvec::SmallVec;

/// What is being disseminated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item<A> {
    /// The current state of the member with this handle (encoded from the
    /// member table when sent), with the accuser of the latest suspicion
    /// confirmation, if any, and whom we heard it from (not told back).
    Member { handle: u32, accuser: Option<A>, source: Option<A> },
    /// An application broadcast, the member that broadcast it, and whom we
    /// heard it from.
    User { id: u64, origin: A, payload: Box<[u8]>, source: Option<A> },
}

/// What the encoder did with an item offered to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offer {
    /// Written into the datagram: counts as one transmission.
    Sent,
    /// The destination already has it (it told us): counts as one
    /// transmission without taking room, so an item heard from the only
    /// other member still retires.
    Known,
    /// Too large for the room left; try smaller items.
    Skip,
    /// The datagram is full: stop.
    Full,
    /// The item no longer means anything (its member is gone): drop it.
    Drop,
}

#[derive(Debug)]
struct Slot<A> {
    item: Option<Item<A>>,
    transmits: u32,
    generation: u32,
    /// The fill pass that last sent it, so one datagram carries it once.
    stamp: u32,
    /// Destinations already sent to, as a 128-bit Bloom filter (two bits per
    /// destination): a send to a member that has the item is wasted, so the
    /// item waits for another. A false positive only delays one send.
    sent_to: u128,
    /// Times it was held back for a repeated destination; past `limit` it
    /// counts such an offer as a send, so an item every reachable member has
    /// still retires.
    repeats: u32,
}

/// Most skipped items remembered per bucket while filling one datagram.
const MAX_SKIPS: usize = 32;
/// Transmit counts above this share the last bucket.
const MAX_BUCKETS: usize = 64;

#[derive(Debug)]
pub(crate) struct Dissemination<A> {
    slots: Vec<Slot<A>>,
    free: Vec<u32>,
    buckets: Vec<VecDeque<(u32, u32)>>,
    members: BTreeMap<u32, u32>,
    live: usize,
    stamp: u32,
}

impl<A: Clone> Dissemination<A> {
    pub fn new() -> Self {
        Dissemination {
            slots: Vec::new(),
            free: Vec::new(),
            buckets: Vec::new(),
            members: BTreeMap::new(),
            live: 0,
            stamp: 0,
        }
    }

    /// Items waiting to be sent.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Whether an update about this member is still being disseminated.
    pub fn has_member(&self, handle: u32) -> bool {
        self.members.contains_key(&handle)
    }

    /// Queue (or re-queue, resetting its count) the member's current state,
    /// as if already sent `head_start` times (low-priority news goes out
    /// fewer times and after fresher news). Returns how many items were
    /// evicted to stay within `max_items`.
    pub fn queue_member(
        &mut self,
        handle: u32,
        accuser: Option<A>,
        source: Option<A>,
        max_items: usize,
        head_start: u32,
    ) -> usize {
        if let Some(&id) = self.members.get(&handle) {
            if let Some(slot) = self.slots.get_mut(id as usize) {
                slot.item = Some(Item::Member { handle, accuser, source });
                slot.transmits = head_start;
                slot.sent_to = 0;
                slot.repeats = 0;
                slot.generation = slot.generation.wrapping_add(1);
                let generation = slot.generation;
                self.bucket(head_start as usize).push_back((id, generation));
                return 0;
            }
        }
        let evicted = self.make_room(max_items);
        let item = Item::Member { handle, accuser, source };
        let id = self.push(item, head_start);
        self.members.insert(handle, id);
        evicted
    }

    /// Queue an application broadcast. Returns how many items were evicted.
    pub fn queue_user(&mut self, id: u64, origin: A, payload: Box<[u8]>, source: Option<A>, max_items: usize) -> usize {
        let evicted = self.make_room(max_items);
        self.push(Item::User { id, origin, payload, source }, 0);
        evicted
    }

    /// Stop disseminating anything about a member (it was reaped).
    pub fn forget_member(&mut self, handle: u32) {
        if let Some(id) = self.members.remove(&handle) {
            self.retire(id);
        }
    }

    /// Offer items, least-sent first, to `offer` until it reports the datagram
    /// full or nothing is left. Items that reach `limit` transmissions retire.
    /// `destination` is the datagram's destination hashed to two bits (see
    /// [`destination_bits`]).
    pub fn fill(&mut self, limit: u32, destination: u128, mut offer: impl FnMut(&Item<A>) -> Offer) {
        if self.live == 0 {
            self.clear_stale();
            return;
        }
        self.stamp = self.stamp.wrapping_add(1);
        let stamp = self.stamp;
        let mut t = 0;
        'buckets: while t < self.buckets.len() {
            let mut skipped: SmallVec<[(u32, u32); MAX_SKIPS]> = SmallVec::new();
            let mut full = false;
            while let Some(&(id, generation)) = self.buckets.get(t).and_then(VecDeque::front) {
                let (current, sent_this_pass, transmits, repeat) = match self.slots.get(id as usize) {
                    Some(slot) => (
                        slot.generation == generation && slot.item.is_some(),
                        slot.stamp == stamp,
                        slot.transmits,
                        destination != 0 && slot.sent_to & destination == destination,
                    ),
                    None => (false, false, 0, false),
                };
                if !current {
                    self.pop_front(t);
                    continue;
                }
                if sent_this_pass {
                    break; // re-queued by this very pass: everything behind it too
                }
                self.pop_front(t);
                if transmits >= limit {
                    self.retire(id);
                    continue;
                }
                let outcome = match self.slots.get_mut(id as usize) {
                    Some(slot) if repeat && slot.repeats < limit => {
                        slot.repeats += 1;
                        Offer::Skip
                    }
                    Some(_) if repeat => Offer::Known,
                    Some(Slot { item: Some(item), .. }) => offer(item),
                    _ => Offer::Drop,
                };
                match outcome {
                    Offer::Sent | Offer::Known => self.sent(id, generation, limit, stamp, destination),
                    Offer::Drop => self.retire(id),
                    Offer::Skip => {
                        skipped.push((id, generation));
                        if skipped.len() == MAX_SKIPS {
                            full = true;
                            break;
                        }
                    }
                    Offer::Full => {
                        skipped.push((id, generation));
                        full = true;
                        break;
                    }
                }
            }
            if let Some(bucket) = self.buckets.get_mut(t) {
                for entry in skipped.into_iter().rev() {
                    bucket.push_front(entry);
                }
            }
            if full {
                break 'buckets;
            }
            t += 1;
        }
    }

    fn sent(&mut self, id: u32, generation: u32, limit: u32, stamp: u32, destination: u128) {
        let Some(slot) = self.slots.get_mut(id as usize) else {
            return;
        };
        slot.transmits = slot.transmits.saturating_add(1);
        slot.stamp = stamp;
        slot.sent_to |= destination;
        if slot.transmits >= limit {
            self.retire(id);
        } else {
            let next = (slot.transmits as usize).min(MAX_BUCKETS - 1);
            self.bucket(next).push_back((id, generation));
        }
    }

    fn push(&mut self, item: Item<A>, head_start: u32) -> u32 {
        let slot = Slot { item: Some(item), transmits: head_start, generation: 0, stamp: 0, sent_to: 0, repeats: 0 };
        let id = match self.free.pop() {
            Some(id) => {
                let generation = self.slots.get(id as usize).map_or(0, |s| s.generation.wrapping_add(1));
                if let Some(s) = self.slots.get_mut(id as usize) {
                    *s = Slot { generation, ..slot };
                }
                id
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        let generation = self.slots.get(id as usize).map_or(0, |s| s.generation);
        self.bucket(head_start as usize).push_back((id, generation));
        self.live += 1;
        id
    }

    fn retire(&mut self, id: u32) {
        let Some(slot) = self.slots.get_mut(id as usize) else {
            return;
        };
        let Some(item) = slot.item.take() else { return };
        slot.generation = slot.generation.wrapping_add(1);
        if let Item::Member { handle, .. } = item {
            if self.members.get(&handle) == Some(&id) {
                self.members.remove(&handle);
            }
        }
        self.free.push(id);
        self.live -= 1;
    }

    /// Evict the most-sent (and, among those, oldest) items until one more fits.
    fn make_room(&mut self, max_items: usize) -> usize {
        let mut evicted = 0;
        while self.live >= max_items && self.live > 0 {
            let Some(t) = self.buckets.iter().rposition(|b| !b.is_empty()) else {
                break;
            };
            if let Some((id, generation)) = self.pop_front(t) {
                if self.slots.get(id as usize).is_some_and(|s| s.generation == generation && s.item.is_some()) {
                    self.retire(id);
                    evicted += 1;
                }
            }
        }
        evicted
    }

    fn pop_front(&mut self, t: usize) -> Option<(u32, u32)> {
        self.buckets.get_mut(t).and_then(VecDeque::pop_front)
    }

    fn bucket(&mut self, t: usize) -> &mut VecDeque<(u32, u32)> {
        let t = t.min(MAX_BUCKETS - 1);
        if self.buckets.len() <= t {
            self.buckets.resize_with(t + 1, VecDeque::new);
        }
        // The resize above guarantees the index exists.
        let last = self.buckets.len() - 1;
        let t = t.min(last);
        &mut self.buckets[t]
    }

    /// With nothing live, every bucket entry is stale: drop them in one go.
    fn clear_stale(&mut self) {
        for b in &mut self.buckets {
            b.clear();
        }
    }
}

/// A destination's two bits for [`Dissemination::fill`], from its
/// well-mixed address hash (a destination whose bits were nearly always set
/// would never be sent anything).
pub(crate) fn destination_bits(h: u64) -> u128 {
    (1u128 << (h & 127)) | (1u128 << ((h >> 7) & 127))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent_ids(d: &mut Dissemination<u32>, limit: u32, room: usize) -> Vec<u32> {
        let mut out = Vec::new();
        d.fill(limit, 0, |item| {
            if out.len() == room {
                return Offer::Full;
            }
            match item {
                Item::Member { handle, .. } => out.push(*handle),
                Item::User { id, .. } => out.push(*id as u32 + 1000),
            }
            Offer::Sent
        });
        out
    }

    #[test]
    fn least_sent_items_go_first_and_retire_at_the_limit() {
        let mut d = Dissemination::new();
        d.queue_member(1, None, None, 100, 0);
        d.queue_member(2, None, None, 100, 0);
        assert_eq!(sent_ids(&mut d, 3, 1), vec![1]);
        d.queue_member(3, None, None, 100, 0);
        // 2 and 3 have been sent 0 times, 1 once.
        assert_eq!(sent_ids(&mut d, 3, 2), vec![2, 3]);
        assert_eq!(sent_ids(&mut d, 3, 10), vec![1, 2, 3]);
        assert_eq!(sent_ids(&mut d, 3, 10), vec![1, 2, 3]);
        assert!(d.is_empty());
        assert_eq!(sent_ids(&mut d, 3, 10), Vec::<u32>::new());
    }

    #[test]
    fn an_item_waits_for_a_destination_that_lacks_it_then_retires() {
        let mut d = Dissemination::new();
        d.queue_member(1, None, None, 100, 0);
        let to = |d: &mut Dissemination<u32>, bit| {
            let mut n = 0;
            d.fill(3, bit, |_| {
                n += 1;
                Offer::Sent
            });
            n
        };
        assert_eq!(to(&mut d, 1), 1);
        assert_eq!(to(&mut d, 1), 0, "not sent twice to one destination");
        assert_eq!(to(&mut d, 2), 1, "but sent to another");
        // Only destination 1 remains: after `limit` refusals the item retires.
        for _ in 0..4 {
            assert_eq!(to(&mut d, 1), 0);
        }
        assert!(d.is_empty());
    }

    #[test]
    fn destination_bits_spread_evenly_over_small_ids() {
        // Every bit should be used by some of 1,000 small ids, none by many.
        let mut uses = [0u32; 128];
        for id in 0u32..1000 {
            let bits = destination_bits(crate::Address::hash64(&crate::NodeId(id)));
            for (i, u) in uses.iter_mut().enumerate() {
                if bits & (1 << i) != 0 {
                    *u += 1;
                }
            }
        }
        let (min, max) = (uses.iter().min().unwrap(), uses.iter().max().unwrap());
        assert!(*min >= 2 && *max <= 40, "bit use ranges {min}..{max}; expected about 16 each");
    }

    #[test]
    fn a_requeued_item_may_go_to_earlier_destinations_again() {
        let mut d: Dissemination<u32> = Dissemination::new();
        d.queue_member(1, None, None, 100, 0);
        let mut n = 0;
        d.fill(3, 1, |_| {
            n += 1;
            Offer::Sent
        });
        d.queue_member(1, None, None, 100, 0);
        d.fill(3, 1, |_| {
            n += 1;
            Offer::Sent
        });
        assert_eq!(n, 2, "newer news is news to everyone");
    }

    #[test]
    fn one_datagram_carries_an_item_once() {
        let mut d = Dissemination::new();
        d.queue_member(7, None, None, 100, 0);
        assert_eq!(sent_ids(&mut d, 10, 100), vec![7]);
    }

    #[test]
    fn a_newer_update_replaces_the_older_and_restarts_its_count() {
        let mut d = Dissemination::new();
        d.queue_member(1, None, None, 100, 0);
        sent_ids(&mut d, 2, 10);
        d.queue_member(1, Some(9), None, 100, 0);
        assert_eq!(d.len(), 1);
        assert_eq!(sent_ids(&mut d, 2, 10), vec![1]);
        assert_eq!(sent_ids(&mut d, 2, 10), vec![1]);
        assert!(!d.has_member(1));
    }

    #[test]
    fn overflow_evicts_the_most_sent() {
        let mut d = Dissemination::new();
        d.queue_member(1, None, None, 2, 0);
        sent_ids(&mut d, 5, 10);
        d.queue_member(2, None, None, 2, 0);
        assert_eq!(d.queue_member(3, None, None, 2, 0), 1);
        assert!(!d.has_member(1));
        assert_eq!(sent_ids(&mut d, 5, 10), vec![2, 3]);
    }

    #[test]
    fn skipped_items_keep_their_place() {
        let mut d = Dissemination::new();
        d.queue_user(1, 0, Box::new([0; 100]), None, 10);
        d.queue_user(2, 0, Box::new([0; 1]), None, 10);
        let mut out = Vec::new();
        d.fill(5, 0, |item| match item {
            Item::User { id, payload, .. } if payload.len() < 50 => {
                out.push(*id);
                Offer::Sent
            }
            _ => Offer::Skip,
        });
        assert_eq!(out, vec![2]);
        assert_eq!(sent_ids(&mut d, 5, 10), vec![1001, 1002]);
    }
}
