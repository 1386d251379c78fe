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
//!
//! Application broadcasts have buckets of their own and are offered before
//! member news, within a share of each datagram the encoder sets: a join
//! storm's thousands of member updates, all fresher than a broadcast sent
//! once, would otherwise keep it waiting (and evict it when the queue
//! fills), as memberlist's users see at a few thousand members. Eviction
//! spares broadcasts while they are a quarter of the queue or less.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::echo::{EchoQueue, Visit};
use crate::member::grow_gently;

/// What is being disseminated, as the encoder is offered it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Item<'a, A> {
    /// The current state of the member with this handle (encoded from the
    /// member table when sent), with the handle of the accuser of the latest
    /// suspicion confirmation, if any, and of the member we heard it from
    /// (not told back).
    Member { handle: u32, accuser: Option<u32>, source: Option<u32> },
    /// An application broadcast: its id, the member that broadcast it, its
    /// bytes, and whom we heard it from.
    User { id: u64, origin: &'a A, payload: &'a [u8], source: Option<&'a A> },
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

/// No slot, no handle.
const NONE: u32 = u32::MAX;

/// One queued item: 44 bytes, whatever the address type (member items name
/// members by handle; broadcasts keep their bytes in a side list).
#[derive(Debug, Clone)]
struct Slot {
    /// The member's handle, or the index into `users`.
    subject: u32,
    accuser: u32,
    source: u32,
    /// Destinations already sent to, as a 128-bit Bloom filter (two bits per
    /// destination): a send to a member that has the item is wasted, so the
    /// item waits for another. A false positive only delays one send.
    sent_to: [u32; 4],
    /// The neighbours in its transmit-count bucket.
    prev: u32,
    next: u32,
    transmits: u8,
    /// Times it was held back for a repeated destination; past `limit` it
    /// counts such an offer as a send, so an item every reachable member has
    /// still retires.
    repeats: u8,
    user: bool,
    live: bool,
    /// The fill pass that last sent it, so one datagram carries it once.
    stamp: u16,
}

#[derive(Debug)]
struct UserItem<A> {
    id: u64,
    origin: A,
    payload: Box<[u8]>,
    source: Option<A>,
}

/// Most skipped items per bucket while filling one datagram.
const MAX_SKIPS: usize = 32;
/// Transmit counts above this share the last bucket.
const MAX_BUCKETS: usize = 64;
/// Slab sizes below this are never compacted.
const MIN_COMPACT: usize = 64;

/// The queue. Items sit in buckets by transmit count, each a doubly linked
/// list through the slab in queueing order; picking the least-sent is the
/// head of the lowest non-empty bucket, O(1) per item sent, and re-queueing
/// a member (a newer update replaces the older one) unlinks its slot in
/// O(1): no stale entries linger anywhere. The slab is compacted when a
/// quarter or less of it is in use, so the memory a join burst took is
/// given back once its news has been sent.
#[derive(Debug)]
pub(crate) struct Dissemination<A> {
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// (head, tail) per transmit count: member news.
    buckets: Vec<(u32, u32)>,
    /// The same for application broadcasts.
    user_buckets: Vec<(u32, u32)>,
    /// Broadcasts queued.
    users_live: usize,
    /// Member handle -> slot.
    members: BTreeMap<u32, u32>,
    users: Vec<Option<UserItem<A>>>,
    free_users: Vec<u32>,
    live: usize,
    stamp: u16,
    /// Members to send once each, after all other news: (handle, source),
    /// in runs of consecutive handles, since one follow-up's reply can
    /// queue hundreds.
    echo: EchoQueue,
}

impl<A: Clone> Dissemination<A> {
    pub fn new() -> Self {
        Dissemination {
            slots: Vec::new(),
            free: Vec::new(),
            buckets: Vec::new(),
            user_buckets: Vec::new(),
            users_live: 0,
            members: BTreeMap::new(),
            users: Vec::new(),
            free_users: Vec::new(),
            live: 0,
            stamp: 0,
            echo: EchoQueue::new(),
        }
    }

    /// Items waiting to be sent.
    pub fn len(&self) -> usize {
        self.live + self.echo.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queue a member's state to be sent once, after all other news (a
    /// member learned from a join's follow-up: the cluster mostly knows it,
    /// but when many join at once this one echo helps the early joiners
    /// learn of late ones). Returns how many items were evicted.
    pub fn queue_echo(&mut self, handle: u32, source: Option<u32>, max_items: usize) -> usize {
        if self.members.contains_key(&handle) {
            return 0;
        }
        let evicted = self.make_room(max_items);
        self.echo.push_back(handle, source.unwrap_or(NONE));
        evicted
    }

    /// Slab slots held, used or free (for bound checks in tests).
    #[cfg(test)]
    pub fn slots_held(&self) -> usize {
        self.slots.len()
    }

    /// Whether an update about this member is still being disseminated.
    pub fn has_member(&self, handle: u32) -> bool {
        self.members.contains_key(&handle)
    }

    /// Queue (or re-queue, resetting its count) the member's current state,
    /// as if already sent `head_start` times (low-priority news goes out
    /// fewer times and after fresher news). `accuser` and `source` are
    /// member handles. Returns how many items were evicted to stay within
    /// `max_items`.
    pub fn queue_member(
        &mut self,
        handle: u32,
        accuser: Option<u32>,
        source: Option<u32>,
        max_items: usize,
        head_start: u32,
    ) -> usize {
        let head_start = head_start.min(u32::from(u8::MAX)) as u8;
        if let Some(&id) = self.members.get(&handle) {
            self.unlink(id);
            if let Some(slot) = self.slots.get_mut(id as usize) {
                slot.accuser = accuser.unwrap_or(NONE);
                slot.source = source.unwrap_or(NONE);
                slot.transmits = head_start;
                slot.sent_to = [0; 4];
                slot.repeats = 0;
                slot.stamp = self.stamp.wrapping_sub(1);
            }
            self.link_tail(id, usize::from(head_start));
            return 0;
        }
        let evicted = self.make_room(max_items);
        let id = self.push(handle, accuser.unwrap_or(NONE), source.unwrap_or(NONE), false, head_start);
        self.members.insert(handle, id);
        self.maybe_compact();
        evicted
    }

    /// Queue an application broadcast. Returns how many items were evicted.
    pub fn queue_user(&mut self, id: u64, origin: A, payload: Box<[u8]>, source: Option<A>, max_items: usize) -> usize {
        let evicted = self.make_room(max_items);
        let item = Some(UserItem { id, origin, payload, source });
        let index = match self.free_users.pop() {
            Some(i) => {
                if let Some(u) = self.users.get_mut(i as usize) {
                    *u = item;
                }
                i
            }
            None => {
                self.users.push(item);
                (self.users.len() - 1) as u32
            }
        };
        self.push(index, NONE, NONE, true, 0);
        self.maybe_compact();
        evicted
    }

    /// Stop disseminating anything about a member (it was reaped).
    pub fn forget_member(&mut self, handle: u32) {
        if let Some(&id) = self.members.get(&handle) {
            self.retire(id);
            self.maybe_compact();
        }
        if !self.echo.is_empty() {
            self.echo.remove_handle(handle);
        }
    }

    /// Whether member news (not only broadcasts) is waiting.
    pub fn has_member_news(&self) -> bool {
        self.live > self.users_live || !self.echo.is_empty()
    }

    /// Offer items to `offer` until it reports the datagram full or nothing
    /// is left: broadcasts first, least-sent first (a `Full` for a broadcast
    /// ends only their turn: the encoder caps their share), then member
    /// news least-sent first, then the echoes. Items that reach `limit`
    /// transmissions retire. `destination` is the datagram's destination
    /// hashed to two bits (see [`destination_bits`]).
    pub fn fill(&mut self, limit: u32, destination: u128, mut offer: impl FnMut(Item<'_, A>) -> Offer) {
        if self.is_empty() {
            return;
        }
        self.stamp = self.stamp.wrapping_add(1);
        if self.users_live > 0 {
            self.fill_buckets(true, limit, destination, &mut offer);
        }
        let done = self.fill_buckets(false, limit, destination, &mut offer);
        self.maybe_compact();
        if done {
            self.fill_echo(&mut offer);
        }
    }

    /// Offer one kind's items, least-sent first; true when every bucket was
    /// walked (the datagram did not fill).
    fn fill_buckets(
        &mut self,
        users: bool,
        limit: u32,
        destination: u128,
        offer: &mut impl FnMut(Item<'_, A>) -> Offer,
    ) -> bool {
        let stamp = self.stamp;
        let dest = bloom_words(destination);
        let limit_u8 = limit.min(u32::from(u8::MAX)) as u8;
        let mut t = 0;
        while t < self.buckets_of(users).len() {
            let mut cur = self.buckets_of(users).get(t).map_or(NONE, |b| b.0);
            let mut skips = 0;
            while let Some(slot) = self.slots.get(cur as usize) {
                let next = slot.next;
                if slot.stamp == stamp {
                    break; // moved here by this very pass: everything behind it too
                }
                if u32::from(slot.transmits) >= limit {
                    self.retire(cur);
                    cur = next;
                    continue;
                }
                let repeat = destination != 0 && slot.sent_to.iter().zip(dest).all(|(s, d)| s & d == d);
                let outcome = if repeat && slot.repeats < limit_u8 {
                    if let Some(s) = self.slots.get_mut(cur as usize) {
                        s.repeats += 1;
                    }
                    Offer::Skip
                } else if repeat {
                    Offer::Known
                } else {
                    match self.item(slot) {
                        Some(item) => offer(item),
                        None => Offer::Drop,
                    }
                };
                match outcome {
                    Offer::Sent | Offer::Known => self.sent(cur, limit, stamp, dest),
                    Offer::Drop => self.retire(cur),
                    Offer::Skip => {
                        skips += 1;
                        if skips == MAX_SKIPS {
                            return false;
                        }
                    }
                    Offer::Full => return false,
                }
                cur = next;
            }
            t += 1;
        }
        true
    }

    fn buckets_of(&self, users: bool) -> &Vec<(u32, u32)> {
        if users {
            &self.user_buckets
        } else {
            &self.buckets
        }
    }

    fn buckets_of_mut(&mut self, users: bool) -> &mut Vec<(u32, u32)> {
        if users {
            &mut self.user_buckets
        } else {
            &mut self.buckets
        }
    }

    /// Offer the echoes, oldest first, once each.
    fn fill_echo(&mut self, offer: &mut impl FnMut(Item<'_, A>) -> Offer) {
        let mut skips = 0;
        let members = &self.members;
        self.echo.walk(|handle, source| {
            if members.contains_key(&handle) {
                return Visit::Remove; // queued as news since: sent as that
            }
            let source = (source != NONE).then_some(source);
            match offer(Item::Member { handle, accuser: None, source }) {
                Offer::Sent | Offer::Known | Offer::Drop => Visit::Remove,
                Offer::Skip => {
                    skips += 1;
                    if skips == MAX_SKIPS {
                        Visit::Stop
                    } else {
                        Visit::Keep
                    }
                }
                Offer::Full => Visit::Stop,
            }
        });
    }

    fn item<'s>(&'s self, slot: &Slot) -> Option<Item<'s, A>> {
        let some = |h: u32| (h != NONE).then_some(h);
        if !slot.user {
            return Some(Item::Member { handle: slot.subject, accuser: some(slot.accuser), source: some(slot.source) });
        }
        let u = self.users.get(slot.subject as usize)?.as_ref()?;
        Some(Item::User { id: u.id, origin: &u.origin, payload: &u.payload, source: u.source.as_ref() })
    }

    fn sent(&mut self, id: u32, limit: u32, stamp: u16, dest: [u32; 4]) {
        // Out of its bucket first: the bucket is found by the old count.
        self.unlink(id);
        let Some(slot) = self.slots.get_mut(id as usize) else {
            return;
        };
        slot.transmits = slot.transmits.saturating_add(1);
        slot.stamp = stamp;
        for (s, d) in slot.sent_to.iter_mut().zip(dest) {
            *s |= d;
        }
        let transmits = slot.transmits;
        // Linked again even when it retires, so `retire` unlinks it cleanly.
        self.link_tail(id, usize::from(transmits));
        if u32::from(transmits) >= limit {
            self.retire(id);
        }
    }

    fn push(&mut self, subject: u32, accuser: u32, source: u32, user: bool, head_start: u8) -> u32 {
        let slot = Slot {
            subject,
            accuser,
            source,
            sent_to: [0; 4],
            prev: NONE,
            next: NONE,
            transmits: head_start,
            repeats: 0,
            user,
            live: true,
            stamp: self.stamp.wrapping_sub(1),
        };
        let id = match self.free.pop() {
            Some(id) => {
                if let Some(s) = self.slots.get_mut(id as usize) {
                    *s = slot;
                }
                id
            }
            None => {
                grow_gently(&mut self.slots);
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        self.link_tail(id, usize::from(head_start));
        self.live += 1;
        if user {
            self.users_live += 1;
        }
        id
    }

    fn retire(&mut self, id: u32) {
        let Some(slot) = self.slots.get(id as usize).filter(|s| s.live) else {
            return;
        };
        let (subject, user) = (slot.subject, slot.user);
        self.unlink(id);
        if let Some(s) = self.slots.get_mut(id as usize) {
            s.live = false;
        }
        if user {
            self.users_live -= 1;
            if let Some(u) = self.users.get_mut(subject as usize) {
                *u = None;
                self.free_users.push(subject);
            }
        } else if self.members.get(&subject) == Some(&id) {
            self.members.remove(&subject);
        }
        self.free.push(id);
        self.live -= 1;
    }

    /// Compact when a quarter or less of the slab is in use. Called at the
    /// end of every public mutation, never inside [`Dissemination::fill`]'s
    /// walk (compaction renumbers slots).
    fn maybe_compact(&mut self) {
        if self.slots.len() > MIN_COMPACT && 4 * self.live <= self.slots.len() {
            self.compact();
        }
    }

    /// Evict until one more item fits: the oldest echoes first (the least
    /// valuable news), then the most-sent (and among those the oldest)
    /// member news, sparing broadcasts while they hold a quarter of the
    /// queue or less; then the most-sent broadcasts.
    fn make_room(&mut self, max_items: usize) -> usize {
        let mut evicted = 0;
        while self.len() >= max_items && !self.is_empty() {
            if self.echo.pop_front().is_none() {
                let most_sent = |b: &Vec<(u32, u32)>| b.iter().rev().map(|b| b.0).find(|&h| h != NONE);
                let member = most_sent(&self.buckets);
                let user = most_sent(&self.user_buckets);
                let victim = if self.users_live > max_items / 4 { user.or(member) } else { member.or(user) };
                let Some(head) = victim else {
                    break;
                };
                self.retire(head);
            }
            evicted += 1;
        }
        evicted
    }

    fn link_tail(&mut self, id: u32, t: usize) {
        let t = t.min(MAX_BUCKETS - 1);
        let users = self.slots.get(id as usize).is_some_and(|s| s.user);
        let buckets = self.buckets_of_mut(users);
        if buckets.len() <= t {
            // Every count reserved at once: news reaching a count no news
            // reached before must not allocate in steady state.
            buckets.reserve_exact(MAX_BUCKETS.saturating_sub(buckets.len()));
            buckets.resize(t + 1, (NONE, NONE));
        }
        let Some(&(head, tail)) = buckets.get(t) else { return };
        if let Some(s) = self.slots.get_mut(id as usize) {
            s.prev = tail;
            s.next = NONE;
        }
        match self.slots.get_mut(tail as usize) {
            Some(last) => last.next = id,
            None => debug_assert_eq!(head, NONE),
        }
        if let Some(b) = self.buckets_of_mut(users).get_mut(t) {
            *b = (if head == NONE { id } else { head }, id);
        }
    }

    fn unlink(&mut self, id: u32) {
        let Some(s) = self.slots.get(id as usize) else { return };
        let (prev, next, users) = (s.prev, s.next, s.user);
        let t = usize::from(s.transmits).min(MAX_BUCKETS - 1);
        match self.slots.get_mut(prev as usize) {
            Some(p) => p.next = next,
            None => {
                if let Some(b) = self.buckets_of_mut(users).get_mut(t) {
                    b.0 = next;
                }
            }
        }
        match self.slots.get_mut(next as usize) {
            Some(n) => n.prev = prev,
            None => {
                if let Some(b) = self.buckets_of_mut(users).get_mut(t) {
                    b.1 = prev;
                }
            }
        }
        if let Some(s) = self.slots.get_mut(id as usize) {
            s.prev = NONE;
            s.next = NONE;
        }
    }

    /// Lay the live items out densely again, in bucket order (which keeps
    /// every list's order), and give the rest of the memory back.
    fn compact(&mut self) {
        let mut slots = Vec::with_capacity(self.live + self.live / 4);
        let buckets = self.relaid(false, &mut slots);
        let user_buckets = self.relaid(true, &mut slots);
        self.slots = slots;
        self.buckets = buckets;
        self.user_buckets = user_buckets;
        self.free = Vec::new();
        if self.users.iter().all(Option::is_none) {
            self.users = Vec::new();
            self.free_users = Vec::new();
        }
    }

    /// One kind's lists copied densely onto the end of `slots`; their new
    /// (head, tail) per count.
    fn relaid(&mut self, users: bool, slots: &mut Vec<Slot>) -> Vec<(u32, u32)> {
        let old = core::mem::take(self.buckets_of_mut(users));
        let mut buckets = Vec::with_capacity(old.len());
        for &(head, _) in &old {
            let first = slots.len() as u32;
            let mut cur = head;
            while let Some(s) = self.slots.get(cur as usize) {
                let mut s = s.clone();
                cur = s.next;
                let id = slots.len() as u32;
                s.prev = if id == first { NONE } else { id - 1 };
                s.next = NONE;
                if let Some(p) = slots.last_mut().filter(|_| id != first) {
                    let p: &mut Slot = p;
                    p.next = id;
                }
                if !s.user {
                    self.members.insert(s.subject, id);
                }
                slots.push(s);
            }
            let last = slots.len() as u32;
            buckets.push(if last == first { (NONE, NONE) } else { (first, last - 1) });
        }
        buckets
    }
}

fn bloom_words(bits: u128) -> [u32; 4] {
    [bits as u32, (bits >> 32) as u32, (bits >> 64) as u32, (bits >> 96) as u32]
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
                Item::Member { handle, .. } => out.push(handle),
                Item::User { id, .. } => out.push(id as u32 + 1000),
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
                out.push(id);
                Offer::Sent
            }
            _ => Offer::Skip,
        });
        assert_eq!(out, vec![2]);
        assert_eq!(sent_ids(&mut d, 5, 10), vec![1001, 1002]);
    }
}

#[cfg(test)]
mod starvation_tests {
    use super::*;

    #[test]
    fn a_broadcast_goes_before_a_join_storm_s_fresher_member_news() {
        let mut d: Dissemination<u32> = Dissemination::new();
        d.queue_user(1, 0, Box::new([0; 8]), None, 1000);
        // Sent once, then a storm of news never sent.
        d.fill(5, 0, |_| Offer::Sent);
        for h in 0..500 {
            d.queue_member(h, None, None, 1000, 0);
        }
        let mut first = None;
        d.fill(5, 0, |item| {
            first.get_or_insert(matches!(item, Item::User { .. }));
            Offer::Full
        });
        assert_eq!(first, Some(true), "the broadcast is offered first");
    }

    #[test]
    fn a_full_queue_evicts_member_news_before_a_few_broadcasts() {
        let mut d: Dissemination<u32> = Dissemination::new();
        d.queue_user(1, 0, Box::new([0; 8]), None, 100);
        d.fill(5, 0, |_| Offer::Sent); // the most-sent item now
        for h in 0..300 {
            d.queue_member(h, None, None, 100, 0);
        }
        assert_eq!(d.len(), 100);
        assert_eq!(d.users_live, 1, "the broadcast survived 300 newer member updates");
        // Past a quarter of the queue, broadcasts go first.
        for id in 2..100 {
            d.queue_user(id, 0, Box::new([0; 8]), None, 100);
        }
        assert_eq!(d.users_live, 26);
    }

    #[test]
    fn a_broadcast_s_turn_ending_leaves_the_rest_of_the_datagram_to_member_news() {
        let mut d: Dissemination<u32> = Dissemination::new();
        d.queue_user(1, 0, Box::new([0; 8]), None, 100);
        d.queue_user(2, 0, Box::new([0; 8]), None, 100);
        d.queue_member(7, None, None, 100, 0);
        let mut sent = Vec::new();
        d.fill(5, 0, |item| match item {
            Item::User { id: 2, .. } => Offer::Full, // the encoder's cap
            Item::User { id, .. } => {
                sent.push(id as u32 + 1000);
                Offer::Sent
            }
            Item::Member { handle, .. } => {
                sent.push(handle);
                Offer::Sent
            }
        });
        assert_eq!(sent, vec![1001, 7]);
    }
}

#[cfg(test)]
mod bound_tests {
    use super::*;

    fn drain(d: &mut Dissemination<u32>, limit: u32) {
        for _ in 0..10_000 {
            if d.is_empty() {
                break;
            }
            d.fill(limit, 0, |_| Offer::Sent);
        }
    }

    #[test]
    fn a_join_burst_s_memory_is_given_back_once_its_news_is_sent() {
        let mut d: Dissemination<u32> = Dissemination::new();
        for h in 0..5_000 {
            d.queue_member(h, None, None, 10_000, 0);
        }
        assert_eq!(d.len(), 5_000);
        drain(&mut d, 3);
        assert!(d.is_empty());
        assert!(d.slots_held() <= MIN_COMPACT, "{} slots held after the burst", d.slots_held());
    }

    #[test]
    fn requeueing_one_member_endlessly_holds_one_slot() {
        let mut d: Dissemination<u32> = Dissemination::new();
        for round in 0..10_000u32 {
            d.queue_member(7, Some(round % 5), None, 100, round % 3);
            if round % 7 == 0 {
                d.fill(4, u128::from(round), |_| Offer::Sent);
            }
            assert!(d.len() <= 1);
            assert!(d.slots_held() <= 1, "{} slots for one member", d.slots_held());
        }
    }

    #[test]
    fn a_join_bursts_queue_grows_by_an_eighth_not_by_doubling() {
        let mut d: Dissemination<u32> = Dissemination::new();
        for h in 0..5_000 {
            d.queue_member(h, None, None, 10_000, 0);
        }
        let held = d.slots.capacity();
        assert!(held <= 5_000 + 5_000 / 8 + 8, "{held} slots held for 5,000 items");
    }

    #[test]
    fn compaction_keeps_every_queued_item_and_its_order() {
        let mut d: Dissemination<u32> = Dissemination::new();
        for h in 0..400 {
            d.queue_member(h, None, None, 10_000, 0);
        }
        // Retire most of them (compacting), keep every tenth.
        for h in (0..400).filter(|h| h % 10 != 0) {
            d.forget_member(h);
        }
        assert!(d.slots_held() < 400);
        let mut order = Vec::new();
        d.fill(5, 0, |item| {
            if let Item::Member { handle, .. } = item {
                order.push(handle);
            }
            Offer::Sent
        });
        assert_eq!(order, (0..400).filter(|h| h % 10 == 0).collect::<Vec<_>>());
        for h in (0..400).filter(|h| h % 10 == 0) {
            assert!(d.has_member(h));
        }
    }
}

#[cfg(test)]
mod echo_tests {
    use super::*;

    fn offered(d: &mut Dissemination<u32>) -> Vec<u32> {
        let mut out = Vec::new();
        d.fill(4, 0, |item| {
            if let Item::Member { handle, .. } = item {
                out.push(handle);
            }
            Offer::Sent
        });
        out
    }

    #[test]
    fn echoes_go_once_each_after_all_other_news() {
        let mut d: Dissemination<u32> = Dissemination::new();
        d.queue_echo(1, None, 100);
        d.queue_echo(2, None, 100);
        d.queue_member(9, None, None, 100, 0);
        assert_eq!(d.len(), 3);
        assert_eq!(offered(&mut d), vec![9, 1, 2]);
        assert_eq!(offered(&mut d), vec![9], "echoes went once");
        // An echo of a member that has news since is sent as that news.
        d.queue_echo(5, None, 100);
        d.queue_member(5, None, None, 100, 0);
        assert_eq!(offered(&mut d), vec![5, 9], "fresh news goes first");
    }

    #[test]
    fn echoes_count_against_the_bound_and_go_first_when_full() {
        let mut d: Dissemination<u32> = Dissemination::new();
        for h in 0..10 {
            d.queue_echo(h, None, 4);
        }
        assert_eq!(d.len(), 4);
        assert_eq!(d.queue_member(50, None, None, 4, 0), 1, "the oldest echo made room");
        assert_eq!(d.len(), 4);
        assert_eq!(offered(&mut d), vec![50, 7, 8, 9]);
        d.forget_member(50);
        assert!(d.is_empty());
    }
}
