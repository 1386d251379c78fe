//! Member states, the merge order between claims, and the member table.
//!
//! ```text
//!            higher incarnation (refute / rejoin)
//!       +--------------------------------------------+
//!       v                                            |
//!   +-------+  probe fails /   +---------+  timer   +------+
//!   | Alive | ---------------> | Suspect | -------> | Dead |---> reaped after
//!   +-------+  Suspect heard   +---------+  expires +------+     tombstone_timeout
//!     |  ^                       |    |                ^
//!     |  +-----------------------+    +----------------+ Dead heard
//!     |   Alive at a higher incarnation (refuted)
//!     |
//!     +--- graceful leave ---> +------+ ---> reaped after tombstone_timeout
//!                              | Left |
//!                              +------+
//! ```
//!
//! Every transition is the merge of a claim (state, incarnation) into what a
//! node believes. SWIM §4.2 and memberlist order claims by incarnation first
//! and, at equal incarnation, Left > Dead > Suspect > Alive. The merge is the
//! maximum under that order, which makes it commutative, associative and
//! idempotent: nodes that hear the same claims in any order agree.
//! Incarnations compare as serial numbers ([`incarnation_newer`]), so no
//! claim is beyond refutation.

use alloc::boxed::Box;
use alloc::vec::Vec;

use crate::addr::Address;
use crate::digest;

/// What a node believes about a member.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
#[repr(u8)]
pub enum State {
    /// Answering probes, as far as anyone knows.
    Alive = 0,
    /// A probe failed; the member has until its suspicion timeout to refute.
    Suspect = 1,
    /// Declared failed. Stays as a tombstone until reaped.
    Dead = 2,
    /// Left gracefully. Stays as a tombstone until reaped.
    Left = 3,
}

impl State {
    /// Dead or Left: no longer a member, kept only as a tombstone.
    pub fn is_gone(self) -> bool {
        matches!(self, State::Dead | State::Left)
    }

    /// Alive or Suspect: counted in the cluster, probed, gossiped to.
    pub fn is_live(self) -> bool {
        !self.is_gone()
    }

    /// The lower-case name used in logs and JSON (`alive`, `suspect`, `failed`, `left`).
    pub fn as_str(self) -> &'static str {
        match self {
            State::Alive => "alive",
            State::Suspect => "suspect",
            State::Dead => "failed",
            State::Left => "left",
        }
    }
}

/// A claim about a member: a state at an incarnation.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct Claim {
    /// The member's incarnation the claim is made at.
    pub incarnation: u32,
    /// The claimed state.
    pub state: State,
}

impl Claim {
    /// Whether `self` overrides `current`: a newer incarnation wins (see
    /// [`incarnation_newer`]); at equal incarnation Left > Dead > Suspect >
    /// Alive (SWIM §4.2, memberlist).
    pub fn overrides(&self, current: &Claim) -> bool {
        if self.incarnation == current.incarnation {
            self.state > current.state
        } else {
            incarnation_newer(self.incarnation, current.incarnation)
        }
    }

    /// The merge of two claims: the one that overrides the other (`self`
    /// when neither does).
    pub fn merge(self, other: Claim) -> Claim {
        if other.overrides(&self) {
            other
        } else {
            self
        }
    }
}

/// Whether incarnation `a` is newer than `b`. Incarnations are serial
/// numbers (RFC 1982 over 32 bits): `a` is newer when `a - b`, wrapping, is
/// in `1..2^31`. So there is no largest incarnation: any claim, forged or
/// not, is out-bid by its incarnation plus one, and a member can always
/// refute. Within any span of 2^31 incarnations (a member would need two
/// billion refutations to leave one) this is the plain numeric order, and
/// the merge is a commutative, associative, idempotent maximum.
pub fn incarnation_newer(a: u32, b: u32) -> bool {
    let d = a.wrapping_sub(b);
    d != 0 && d < 1 << 31
}

/// One member as a node stores it: 16 bytes with a [`crate::NodeId`]
/// address, since every node holds one per member. What only some members
/// have lives elsewhere: metadata in the table's side arena (this entry holds
/// a 24-bit reference), a running suspicion or a queued update in the
/// mechanisms that own them, keyed by handle.
///
/// Fields are read freely but written only through [`Members`], which keeps
/// the counts, the index and the digest sums in step with every change.
#[derive(Debug, Clone)]
pub(crate) struct Entry<A> {
    pub addr: A,
    pub incarnation: u32,
    /// The process instance that last claimed Alive for this address.
    pub instance: u32,
    pub state: State,
    /// 0: no metadata; [`VACANT`]: a free slot; else 1 + an arena index.
    meta: [u8; 3],
}

/// The `meta` reference of a free slab slot.
const VACANT: u32 = 0x00ff_ffff;
/// Most members with metadata at once (24-bit references, one value reserved).
const MAX_META_ENTRIES: u32 = VACANT - 1;

impl<A> Entry<A> {
    pub fn claim(&self) -> Claim {
        Claim { incarnation: self.incarnation, state: self.state }
    }

    fn meta_ref(&self) -> u32 {
        u32::from_le_bytes([self.meta[0], self.meta[1], self.meta[2], 0])
    }

    fn set_meta_ref(&mut self, r: u32) {
        let [a, b, c, _] = r.to_le_bytes();
        self.meta = [a, b, c];
    }

    fn is_vacant(&self) -> bool {
        self.meta_ref() == VACANT
    }
}

/// No handle in an index slot.
const EMPTY: u32 = u32::MAX;
/// The index never has fewer home slots than this.
const MIN_INDEX_HOMES: usize = 16;
/// Room for slots past the last home slot (runs there spill over the end).
const INDEX_SPILL: usize = 8;
/// Handle bits of a fresh index.
const MIN_HANDLE_BITS: u32 = 8;

/// Where a member absent from the table goes in its index, from
/// [`Members::find`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Vacancy {
    hash: u64,
    at: usize,
    /// The table's size then: a vacancy found before a change is walked
    /// for again.
    len: usize,
    homes: usize,
}

/// The member table: a slab of entries addressed by dense `u32` handles, a
/// hash index from address to handle, the metadata arena, counts by state
/// and the digest's bucket sums.
///
/// The index is open addressing with linear probing, kept sorted by the
/// 64-bit address hash ([`crate::digest::addr_hash`], fixed and
/// deterministic): an entry sits at or after its home slot (the hash
/// scaled to the number of home slots, which keeps hash order) and never
/// wraps around, so lookups stop at the first larger hash,
/// and the members of one digest bucket (also the hash's top bits) are one
/// contiguous run of slots: a state transfer walks exactly the members it
/// sends. The index stores handles only and rehashes from the slab; it grows
/// by a quarter when more than seven eighths full, so it costs 4.6 to 5.7
/// bytes a member. Every node holds one, so a byte a member is most of a
/// large simulation's margin: grown past four fifths instead, it cost 6.2
/// B a member at 5,000 members (the peak RSS of 5,000 nodes 32 MB more)
/// and about 2% less wall time there; an earlier cachegrind count of a
/// 1,500-node join storm gave the fuller index 17% more instructions.
///
/// Handles of removed members are reused; side tables check that a handle
/// still names the member they meant before acting on it.
#[derive(Debug)]
pub(crate) struct Members<A> {
    slots: Vec<Entry<A>>,
    free: Vec<u32>,
    /// Index slots: `EMPTY`, or a handle in the low `handle_bits` bits
    /// and the top bits of the member's hash above it (its tag).
    index: Vec<u32>,
    /// Home slots: `index[..homes]`, and past them the spill-over.
    homes: usize,
    /// Bits of an index slot that hold the handle: grown (the index
    /// rewritten) when a handle would not fit, so the tag is as wide as
    /// the table's size allows (19 bits at 5,000 members, 17 at 20,000).
    handle_bits: u32,
    len: usize,
    metas: Vec<Option<Box<[u8]>>>,
    free_metas: Vec<u32>,
    counts: [u32; 4],
    /// Wrapping sums of record hashes per finest digest bucket.
    sums: [u32; digest::MAX_BUCKETS],
}

impl<A: Address> Members<A> {
    pub fn new() -> Self {
        Members {
            slots: Vec::new(),
            free: Vec::new(),
            index: empty_index(MIN_INDEX_HOMES),
            homes: MIN_INDEX_HOMES,
            handle_bits: MIN_HANDLE_BITS,
            len: 0,
            metas: Vec::new(),
            free_metas: Vec::new(),
            counts: [0; 4],
            sums: [0; digest::MAX_BUCKETS],
        }
    }

    /// Members in the table, tombstones included.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Members in `state`.
    pub fn count(&self, state: State) -> u32 {
        self.counts.get(state as usize).copied().unwrap_or(0)
    }

    /// Alive and Suspect members, this node included.
    pub fn live(&self) -> u32 {
        self.count(State::Alive) + self.count(State::Suspect)
    }

    pub fn handle(&self, addr: &A) -> Option<u32> {
        self.place_in_index(digest::addr_hash(addr), addr).ok()
    }

    pub fn get(&self, handle: u32) -> Option<&Entry<A>> {
        self.slots.get(handle as usize).filter(|e| !e.is_vacant())
    }

    /// A member's metadata (empty when it has none).
    pub fn meta(&self, handle: u32) -> &[u8] {
        let Some(e) = self.get(handle) else { return &[] };
        match e.meta_ref().checked_sub(1) {
            Some(i) => self.metas.get(i as usize).and_then(Option::as_deref).unwrap_or(&[]),
            None => &[],
        }
    }

    /// Add a member (or return the handle it already has). One walk of the
    /// index both finds an existing entry and the place for a new one: a
    /// join storm inserts every member at every node, and a second walk
    /// (each step reads a slab entry, mostly a cache miss) was a tenth of
    /// a large simulation's time.
    pub fn insert(&mut self, addr: A, incarnation: u32, instance: u32, state: State, meta: &[u8]) -> u32 {
        let hash = digest::addr_hash(&addr);
        self.grow_index_for_one_more();
        match self.place_in_index(hash, &addr) {
            Ok(existing) => existing,
            Err(at) => self.insert_at(at, hash, addr, (incarnation, instance, state), meta),
        }
    }

    /// The member's handle, or where it would go: a merge looks a member
    /// up and, when it is new, adds it with
    /// [`Members::insert_vacant`] without walking the index again (in a
    /// join storm every member is new at every node).
    pub fn find(&self, addr: &A) -> Result<u32, Vacancy> {
        let hash = digest::addr_hash(addr);
        self.place_in_index(hash, addr).map_err(|at| Vacancy { hash, at, len: self.len, homes: self.homes })
    }

    /// Add a member [`Members::find`] found absent, where it found room:
    /// the index is walked again only if it must grow first (or the table
    /// changed in between, which callers avoid).
    pub fn insert_vacant(
        &mut self,
        vacancy: Vacancy,
        addr: A,
        (incarnation, instance, state): (u32, u32, State),
        meta: &[u8],
    ) -> u32 {
        let grew = self.grow_index_for_one_more();
        let at = if grew || vacancy.len != self.len || vacancy.homes != self.homes {
            match self.place_in_index(vacancy.hash, &addr) {
                Ok(existing) => return existing,
                Err(at) => at,
            }
        } else {
            vacancy.at
        };
        self.insert_at(at, vacancy.hash, addr, (incarnation, instance, state), meta)
    }

    /// Grow the index if one more member would fill it past seven eighths;
    /// whether it grew.
    fn grow_index_for_one_more(&mut self) -> bool {
        let grow = 8 * (self.len + 1) > 7 * self.homes;
        if grow {
            self.rebuild_index(self.homes + self.homes / 4);
        }
        grow
    }

    fn insert_at(
        &mut self,
        at: usize,
        hash: u64,
        addr: A,
        (incarnation, instance, state): (u32, u32, State),
        meta: &[u8],
    ) -> u32 {
        let entry = Entry { addr, incarnation, instance, state, meta: [0; 3] };
        let handle = match self.free.pop() {
            Some(h) => {
                if let Some(slot) = self.slots.get_mut(h as usize) {
                    *slot = entry;
                }
                h
            }
            None => {
                grow_gently(&mut self.slots);
                self.slots.push(entry);
                (self.slots.len() - 1) as u32
            }
        };
        self.len += 1;
        self.bump(state, 1);
        self.add_to_sums(hash, incarnation, state, 1);
        if handle >= self.handle_mask() {
            self.widen_handles(handle);
        }
        self.index_insert_at(at, self.slot_value(handle, hash));
        self.set_meta(handle, meta);
        handle
    }

    pub fn remove(&mut self, handle: u32) {
        let Some(e) = self.get(handle) else { return };
        let (hash, incarnation, state) = (digest::addr_hash(&e.addr), e.incarnation, e.state);
        self.set_meta(handle, &[]);
        self.index_remove(hash, handle);
        self.add_to_sums(hash, incarnation, state, -1);
        self.bump(state, -1);
        if let Some(e) = self.slots.get_mut(handle as usize) {
            e.set_meta_ref(VACANT);
        }
        self.len -= 1;
        self.free.push(handle);
        self.shrink_after_burst();
    }

    /// Change a member's state, keeping counts and digest sums right.
    pub fn set_state(&mut self, handle: u32, state: State) {
        self.set_claim(handle, None, Some(state));
    }

    /// Change a member's incarnation.
    pub fn set_incarnation(&mut self, handle: u32, incarnation: u32) {
        self.set_claim(handle, Some(incarnation), None);
    }

    /// Change the process instance that claims a member's address.
    pub fn set_instance(&mut self, handle: u32, instance: u32) {
        if let Some(e) = self.slots.get_mut(handle as usize).filter(|e| !e.is_vacant()) {
            e.instance = instance;
        }
    }

    fn set_claim(&mut self, handle: u32, incarnation: Option<u32>, state: Option<State>) {
        let Some(e) = self.get(handle) else { return };
        let (hash, old_inc, old_state) = (digest::addr_hash(&e.addr), e.incarnation, e.state);
        let (inc, st) = (incarnation.unwrap_or(old_inc), state.unwrap_or(old_state));
        if (inc, st) == (old_inc, old_state) {
            return;
        }
        self.add_to_sums(hash, old_inc, old_state, -1);
        self.add_to_sums(hash, inc, st, 1);
        self.bump(old_state, -1);
        self.bump(st, 1);
        if let Some(e) = self.slots.get_mut(handle as usize) {
            e.incarnation = inc;
            e.state = st;
        }
    }

    /// Replace a member's metadata, allocating only when it changed; false
    /// when it was already that. Refused (false) only when the arena is full.
    pub fn set_meta(&mut self, handle: u32, meta: &[u8]) -> bool {
        if self.get(handle).is_none() || self.meta(handle) == meta {
            return false;
        }
        let old = self.get(handle).map_or(0, Entry::meta_ref);
        if let Some(i) = old.checked_sub(1) {
            if let Some(slot) = self.metas.get_mut(i as usize) {
                *slot = None;
                self.free_metas.push(i);
            }
        }
        let new = if meta.is_empty() {
            0
        } else {
            let i = match self.free_metas.pop() {
                Some(i) => i,
                None if (self.metas.len() as u32) < MAX_META_ENTRIES => {
                    self.metas.push(None);
                    (self.metas.len() - 1) as u32
                }
                None => return false,
            };
            if let Some(slot) = self.metas.get_mut(i as usize) {
                *slot = Some(meta.into());
            }
            i + 1
        };
        if let Some(e) = self.slots.get_mut(handle as usize) {
            e.set_meta_ref(new);
        }
        true
    }

    fn bump(&mut self, state: State, delta: i32) {
        if let Some(c) = self.counts.get_mut(state as usize) {
            *c = c.saturating_add_signed(delta);
        }
    }

    fn add_to_sums(&mut self, hash: u64, incarnation: u32, state: State, sign: i32) {
        let r = digest::record_hash(hash, incarnation, state);
        if let Some(sum) = self.sums.get_mut(digest::bucket(hash, digest::MAX_DIGEST_LOG2)) {
            *sum = if sign > 0 { sum.wrapping_add(r) } else { sum.wrapping_sub(r) };
        }
    }

    /// The digest's finest bucket sums, kept up to date with every change.
    pub fn bucket_sums(&self) -> &[u32; digest::MAX_BUCKETS] {
        &self.sums
    }

    /// Every member with its handle, in handle order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &Entry<A>)> + '_ {
        self.slots.iter().enumerate().filter(|(_, e)| !e.is_vacant()).map(|(h, e)| (h as u32, e))
    }

    /// The first member, in address-hash order, whose hash is at least
    /// `from` and (if `only` is given) falls in one of its buckets, with that
    /// hash. Costs the slots walked: a transfer of k members from a bucket
    /// set costs O(k) plus the buckets skipped.
    pub fn next_in_hash_order(&self, mut from: u64, only: Option<&digest::BucketSet>) -> Option<(u32, u64)> {
        loop {
            if let Some(set) = only {
                from = set.next_bucket_start(from)?;
            }
            let mut i = self.home(from);
            let from_tag = self.tag(from);
            let found = loop {
                let &raw = self.index.get(i)?;
                // A smaller tag is a smaller hash: skipped unread.
                if raw != EMPTY && self.tag_of(raw) >= from_tag {
                    let handle = raw & self.handle_mask();
                    let hash = self.slots.get(handle as usize).map_or(0, |e| digest::addr_hash(&e.addr));
                    if hash >= from {
                        break (handle, hash);
                    }
                }
                i += 1;
            };
            match only {
                Some(set) if !set.contains_hash(found.1) => from = found.1,
                _ => return Some(found),
            }
        }
    }

    fn home(&self, hash: u64) -> usize {
        ((u128::from(hash) * self.homes as u128) >> 64) as usize
    }

    fn hash_at(&self, slot: usize) -> Option<u64> {
        let &raw = self.index.get(slot)?;
        let h = raw & self.handle_mask();
        self.slots.get(h as usize).filter(|_| raw != EMPTY).map(|e| digest::addr_hash(&e.addr))
    }

    fn handle_mask(&self) -> u32 {
        u32::MAX.checked_shr(32 - self.handle_bits).unwrap_or(0)
    }

    /// The top bits of `hash` an index slot keeps beside the handle: in
    /// hash order like the hashes, so a slot of another tag is passed (or
    /// ends a walk) without reading its member from the slab, the cache
    /// miss that made most of a join's cost at 20,000 members.
    fn tag(&self, hash: u64) -> u32 {
        hash.checked_shr(32 + self.handle_bits).unwrap_or(0) as u32
    }

    fn tag_of(&self, raw: u32) -> u32 {
        raw.checked_shr(self.handle_bits).unwrap_or(0)
    }

    /// An index slot for `handle` (below the mask, so never `EMPTY`).
    fn slot_value(&self, handle: u32, hash: u64) -> u32 {
        self.tag(hash).checked_shl(self.handle_bits).unwrap_or(0) | handle
    }

    /// Make room for `handle` in the index's slots: more handle bits, every
    /// slot's tag a bit shorter (an O(n) pass each time the slab doubles).
    fn widen_handles(&mut self, handle: u32) {
        let old_mask = self.handle_mask();
        while handle >= self.handle_mask() && self.handle_bits < 32 {
            self.handle_bits += 1;
        }
        for i in 0..self.index.len() {
            let Some(&raw) = self.index.get(i) else { break };
            if raw == EMPTY {
                continue;
            }
            let h = raw & old_mask;
            let hash = self.slots.get(h as usize).map_or(0, |e| digest::addr_hash(&e.addr));
            let value = self.slot_value(h, hash);
            if let Some(slot) = self.index.get_mut(i) {
                *slot = value;
            }
        }
    }

    /// Where a member with this address and hash sits in the index
    /// (`Ok(handle)`), or the slot a new one goes in (`Err(slot)`): after
    /// every entry of a smaller or equal hash.
    fn place_in_index(&self, hash: u64, addr: &A) -> Result<u32, usize> {
        let tag = self.tag(hash);
        let mask = self.handle_mask();
        let mut i = self.home(hash);
        while let Some(&raw) = self.index.get(i) {
            if raw == EMPTY {
                break;
            }
            let t = self.tag_of(raw);
            if t > tag {
                break;
            }
            if t == tag {
                let handle = raw & mask;
                let Some(e) = self.slots.get(handle as usize) else { break };
                // Equal addresses hash alike: a hit needs no second hash.
                if e.addr == *addr {
                    return Ok(handle);
                }
                if digest::addr_hash(&e.addr) > hash {
                    break;
                }
            }
            i += 1;
        }
        Err(i)
    }

    /// Put the slot value `value` at index slot `i` (from
    /// [`Members::place_in_index`]).
    fn index_insert_at(&mut self, i: usize, value: u32) {
        // Shift the run at `i` one slot right, growing past the end if the
        // run reaches it (entries never wrap around).
        let mut end = i;
        while self.index.get(end).is_some_and(|&h| h != EMPTY) {
            end += 1;
        }
        if end == self.index.len() {
            grow_gently(&mut self.index);
            self.index.push(EMPTY);
        }
        if let Some(run) = self.index.get_mut(i..=end) {
            run.rotate_right(1);
            run[0] = value;
        }
    }

    fn index_remove(&mut self, hash: u64, handle: u32) {
        let value = self.slot_value(handle, hash);
        let mut i = self.home(hash);
        while self.index.get(i).is_some_and(|&raw| raw != value) {
            i += 1;
        }
        if i >= self.index.len() {
            return;
        }
        // Backward-shift deletion: pull displaced successors one slot back.
        let mut j = i + 1;
        while let Some(h) = self.hash_at(j) {
            if self.home(h) >= j {
                break;
            }
            j += 1;
        }
        if let Some(run) = self.index.get_mut(i..j) {
            run.rotate_left(1);
            if let Some(last) = run.last_mut() {
                *last = EMPTY;
            }
        }
        // Trailing overflow slots that emptied are given back.
        while self.index.len() > self.homes && self.index.last() == Some(&EMPTY) {
            self.index.pop();
        }
    }

    /// Lay the index out again at `homes` home slots, in one sorted pass.
    fn rebuild_index(&mut self, homes: usize) {
        let old = core::mem::take(&mut self.index);
        self.homes = homes.max(MIN_INDEX_HOMES);
        let mut index = empty_index(self.homes);
        let mut next = 0usize;
        for raw in old.into_iter().filter(|&raw| raw != EMPTY) {
            // Slots keep their values: the tag depends on the hash alone.
            let hash = self.slots.get((raw & self.handle_mask()) as usize).map_or(0, |e| digest::addr_hash(&e.addr));
            let at = self.home(hash).max(next);
            while index.len() <= at {
                grow_gently(&mut index);
                index.push(EMPTY);
            }
            if let Some(slot) = index.get_mut(at) {
                *slot = raw;
            }
            next = at + 1;
        }
        self.index = index;
    }

    /// After a burst (many members reaped), give index memory back: it
    /// halves below an eighth full (it grows above seven eighths, so a table
    /// that hovers at one size never rebuilds back and forth). Slab slots
    /// stay, on the free list, for the next members.
    fn shrink_after_burst(&mut self) {
        if self.homes > MIN_INDEX_HOMES && 8 * self.len < self.homes {
            self.rebuild_index(self.homes / 2);
        }
    }
}

/// An index of `homes` empty home slots, with room to spill over.
fn empty_index(homes: usize) -> Vec<u32> {
    let mut index = Vec::with_capacity(homes + INDEX_SPILL);
    index.resize(homes, EMPTY);
    index
}

/// Grow a vector by about an eighth rather than doubling, when it is full:
/// for the structures that hold a slot per member on every node, doubling
/// leaves up to half of each unused.
pub(crate) fn grow_gently<T>(v: &mut Vec<T>) {
    if v.len() == v.capacity() {
        v.reserve_exact((v.len() / 8).max(8));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::NodeId;

    fn insert(m: &mut Members<NodeId>, id: u32, state: State) -> u32 {
        m.insert(NodeId(id), 0, 0, state, &[])
    }

    #[test]
    fn higher_incarnation_wins_then_state_rank() {
        let c = |incarnation, state| Claim { incarnation, state };
        assert!(c(2, State::Alive).overrides(&c(1, State::Dead)));
        assert!(c(1, State::Suspect).overrides(&c(1, State::Alive)));
        assert!(c(1, State::Dead).overrides(&c(1, State::Suspect)));
        assert!(c(1, State::Left).overrides(&c(1, State::Dead)));
        assert!(!c(1, State::Alive).overrides(&c(1, State::Alive)));
        assert!(!c(0, State::Left).overrides(&c(1, State::Alive)));
    }

    #[test]
    fn removed_handles_are_reused_and_counts_follow_states() {
        let mut m = Members::new();
        let a = insert(&mut m, 1, State::Alive);
        let b = insert(&mut m, 2, State::Alive);
        assert_eq!(insert(&mut m, 1, State::Dead), a, "an address has one handle");
        assert_eq!(m.live(), 2);
        m.set_state(b, State::Dead);
        assert_eq!((m.live(), m.count(State::Dead)), (1, 1));
        m.remove(b);
        assert_eq!(m.count(State::Dead), 0);
        assert_eq!(insert(&mut m, 3, State::Alive), b);
        assert_eq!(m.handle(&NodeId(3)), Some(b));
        assert_eq!(m.handle(&NodeId(2)), None);
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn a_member_entry_fits_the_memory_budget() {
        std::println!(
            "entry sizes: NodeId {} B, SocketAddr {} B",
            size_of::<Entry<NodeId>>(),
            size_of::<Entry<core::net::SocketAddr>>()
        );
        // 32 bytes a member all-in: the entry, its index slot (4.6 to
        // 5.7 B at the index's load), its probe-order slot (4 B, an
        // eighth more at most while stale entries wait) and marks (half a byte).
        assert!(size_of::<Entry<NodeId>>() <= 16);
        assert!(size_of::<Entry<core::net::SocketAddr>>() <= 48);
    }

    #[test]
    fn the_index_and_slab_cost_what_their_loads_say_at_every_size() {
        let mut m = Members::new();
        let mut n = 0;
        for target in [100, 1_000, 2_000, 5_000, 20_000] {
            while n < target {
                insert(&mut m, n, State::Alive);
                n += 1;
            }
            let index = 4 * m.index.capacity();
            let slab = size_of::<Entry<NodeId>>() * m.slots.capacity();
            // Grown by a quarter past seven eighths full: at most 5.72 B a
            // member, give or take the spill room.
            assert!(index as f64 <= 5.72 * f64::from(n) + 4.0 * 16.0, "{index} B of index for {n} members");
            assert!(slab as f64 <= 16.0 * 1.125 * f64::from(n) + 16.0 * 8.0, "{slab} B of slab for {n} members");
        }
    }

    /// A deterministic stream for the model tests.
    fn lcg(x: &mut u64) -> u32 {
        *x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (*x >> 33) as u32
    }

    #[test]
    fn the_index_agrees_with_a_model_through_inserts_and_removes() {
        let mut m = Members::new();
        let mut model = std::collections::BTreeMap::new();
        let mut x = 7u64;
        for step in 0..20_000 {
            let id = lcg(&mut x) % 3_000;
            if lcg(&mut x) % 3 == 0 {
                if let Some(h) = model.remove(&id) {
                    m.remove(h);
                }
            } else {
                let h = insert(&mut m, id, State::Alive);
                assert_eq!(*model.entry(id).or_insert(h), h);
            }
            if step % 997 == 0 {
                for id in 0..3_000 {
                    assert_eq!(m.handle(&NodeId(id)), model.get(&id).copied(), "id {id} at step {step}");
                }
            }
        }
        assert_eq!(m.len(), model.len());
        assert!(m.handle_bits > MIN_HANDLE_BITS + 2, "the slots were rewritten as handles grew");
        // Emptied, the index gives its memory back.
        for (_, h) in core::mem::take(&mut model) {
            m.remove(h);
        }
        assert_eq!(m.len(), 0);
        assert!(m.index.len() <= 2 * MIN_INDEX_HOMES, "index of {} slots", m.index.len());
    }

    /// An address whose hash only has eight values, so most members share
    /// their hash with others and the index's runs of equal hashes are long.
    #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
    struct Crowded(u32);

    impl Address for Crowded {
        fn encoded_len(&self) -> usize {
            NodeId(self.0).encoded_len()
        }
        fn encode(&self, w: &mut crate::wire::Writer<'_>) -> Result<(), crate::wire::NoRoom> {
            NodeId(self.0).encode(w)
        }
        fn decode(r: &mut crate::wire::Reader<'_>) -> Result<Self, crate::wire::DecodeError> {
            NodeId::decode(r).map(|n| Crowded(n.0))
        }
        fn hash64(&self) -> u64 {
            u64::from(self.0 % 8) << 61
        }
    }

    #[test]
    fn members_sharing_a_hash_are_told_apart_by_address() {
        let mut m = Members::new();
        let mut model = std::collections::BTreeMap::new();
        let mut x = 11u64;
        for _ in 0..4_000 {
            let id = lcg(&mut x) % 200;
            if lcg(&mut x) % 4 == 0 {
                if let Some(h) = model.remove(&id) {
                    m.remove(h);
                }
            } else {
                let h = m.insert(Crowded(id), 0, 0, State::Alive, &[]);
                assert_eq!(*model.entry(id).or_insert(h), h, "a second insert of {id} made a second member");
            }
        }
        for id in 0..200 {
            assert_eq!(m.handle(&Crowded(id)), model.get(&id).copied(), "id {id}");
        }
        assert_eq!(m.len(), model.len());
    }

    #[test]
    fn hash_order_visits_every_member_once_and_bucket_sums_stay_exact() {
        let mut m = Members::new();
        let mut x = 3u64;
        for id in 0..2_000 {
            let h = insert(&mut m, id, State::Alive);
            if lcg(&mut x) % 4 == 0 {
                m.set_incarnation(h, lcg(&mut x) % 10);
                m.set_state(h, State::Suspect);
            }
            if lcg(&mut x) % 5 == 0 {
                m.remove(h);
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut from = 0u64;
        let mut last = None;
        while let Some((h, hash)) = m.next_in_hash_order(from, None) {
            assert!(last < Some(hash), "hash order");
            assert!(seen.insert(h), "handle {h} visited twice");
            last = Some(hash);
            match hash.checked_add(1) {
                Some(f) => from = f,
                None => break,
            }
        }
        assert_eq!(seen.len(), m.len());
        let mut sums = [0u32; digest::MAX_BUCKETS];
        for (_, e) in m.iter() {
            let hash = digest::addr_hash(&e.addr);
            let b = digest::bucket(hash, digest::MAX_DIGEST_LOG2);
            sums[b] = sums[b].wrapping_add(digest::record_hash(hash, e.incarnation, e.state));
        }
        assert_eq!(&sums, m.bucket_sums(), "incremental sums equal a full recount");
    }

    #[test]
    fn metadata_lives_in_the_arena_and_slots_are_reused() {
        let mut m = Members::new();
        let a = m.insert(NodeId(1), 0, 0, State::Alive, b"role=web");
        let b = insert(&mut m, 2, State::Alive);
        assert_eq!(m.meta(a), b"role=web");
        assert_eq!(m.meta(b), b"");
        assert!(!m.set_meta(a, b"role=web"), "unchanged");
        assert!(m.set_meta(b, b"x"));
        m.remove(a);
        assert_eq!(m.metas.iter().filter(|x| x.is_some()).count(), 1, "a removed member's metadata is freed");
        let c = m.insert(NodeId(3), 0, 0, State::Alive, b"y");
        assert_eq!((m.meta(b), m.meta(c)), (&b"x"[..], &b"y"[..]));
        assert_eq!(m.metas.len(), 2, "the freed arena slot was reused");
    }
}
