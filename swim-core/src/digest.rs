//! Member-table digests: a compact summary two nodes compare to find which
//! parts of their tables differ, so a periodic state exchange sends only
//! those parts (DESIGN.md: push-pull "sends what differs once tables are
//! large").
//!
//! Members are spread over a power-of-two number of buckets by a hash of
//! their address; a bucket's hash is the wrapping sum of its members'
//! record hashes (address, state, incarnation), so it does not depend on
//! the order members were learned in. Metadata is not hashed: a metadata
//! change always comes with a higher incarnation.

use crate::addr::Address;
use crate::member::{Members, State};
pub(crate) use crate::wire::MAX_DIGEST_LOG2;

/// The most buckets a digest has.
pub(crate) const MAX_BUCKETS: usize = 1 << MAX_DIGEST_LOG2;

/// Tables this small are exchanged whole: one datagram either way. Above
/// it a whole table takes a datagram or more each way, and two nodes that
/// agree (the usual case) exchange two digests of 16 to 32 bytes instead.
pub(crate) const MIN_MEMBERS: usize = 32;

/// FNV-1a over `bytes`, then SplitMix64's finaliser for avalanche (FNV alone
/// mixes the high bits of short inputs poorly). Deterministic everywhere.
pub(crate) fn mix64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    finalize(h)
}

pub(crate) fn finalize(mut h: u64) -> u64 {
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// An address's hash ([`Address::hash64`]).
pub(crate) fn addr_hash<A: Address>(addr: &A) -> u64 {
    addr.hash64()
}

/// Buckets for a table of `members`: about 8 members a bucket, a power of
/// two, at most [`MAX_BUCKETS`].
pub(crate) fn bucket_log2(members: usize) -> u8 {
    let want = (members / 8).max(1).next_power_of_two();
    (want.trailing_zeros() as u8).min(MAX_DIGEST_LOG2)
}

/// Which bucket a member with this address hash falls in: the hash's top
/// `log2` bits, so the buckets of a coarser digest are unions of adjacent
/// finer ones and each is one run of the member index.
pub(crate) fn bucket(addr_hash: u64, log2: u8) -> usize {
    match log2 {
        0 => 0,
        l => (addr_hash >> (64 - u32::from(l.min(MAX_DIGEST_LOG2)))) as usize,
    }
}

/// A member's contribution to its bucket's sum.
pub(crate) fn record_hash(addr_hash: u64, incarnation: u32, state: State) -> u32 {
    let state = match state {
        State::Alive => 0u64,
        State::Suspect => 1,
        State::Dead => 2,
        State::Left => 3,
    };
    (finalize(addr_hash ^ (u64::from(incarnation) << 2 | state)) >> 32) as u32
}

/// The bucket hashes of a table, written as the wire carries them: the
/// table's finest sums (kept current with every claim) folded to `2^log2`
/// buckets. O(buckets), whatever the table's size.
pub(crate) fn summarize<A: Address>(members: &Members<A>, log2: u8, out: &mut [u8; 4 * MAX_BUCKETS]) -> usize {
    let log2 = log2.min(MAX_DIGEST_LOG2);
    let shift = MAX_DIGEST_LOG2 - log2;
    let mut sums = [0u32; MAX_BUCKETS];
    for (i, fine) in members.bucket_sums().iter().enumerate() {
        if let Some(sum) = sums.get_mut(i >> shift) {
            *sum = sum.wrapping_add(*fine);
        }
    }
    let n = 1usize << log2;
    for (chunk, sum) in out.chunks_exact_mut(4).zip(sums.iter()).take(n) {
        chunk.copy_from_slice(&sum.to_be_bytes());
    }
    4 * n
}

/// Buckets whose hash differs between our table and a peer's digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct BucketSet {
    pub log2: u8,
    bits: [u64; MAX_BUCKETS / 64],
}

impl BucketSet {
    /// Compare our table with a digest (`theirs`: 4 bytes a bucket).
    pub fn differing<A: Address>(members: &Members<A>, theirs: &[u8]) -> BucketSet {
        let n = theirs.len() / 4;
        let log2 = n.checked_ilog2().unwrap_or(0).min(u32::from(MAX_DIGEST_LOG2)) as u8;
        let mut ours = [0u8; 4 * MAX_BUCKETS];
        summarize(members, log2, &mut ours);
        let mut set = BucketSet { log2, bits: [0; MAX_BUCKETS / 64] };
        for (i, (a, b)) in ours.chunks_exact(4).zip(theirs.chunks_exact(4)).enumerate() {
            if a != b {
                if let Some(word) = set.bits.get_mut(i / 64) {
                    *word |= 1 << (i % 64);
                }
            }
        }
        set
    }

    pub fn is_empty(&self) -> bool {
        self.bits.iter().all(|&w| w == 0)
    }

    fn has(&self, i: usize) -> bool {
        self.bits.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    /// The buckets of both sets, when they are of one bucket size (`None`
    /// when not: then the union is the whole table).
    pub fn union(&self, other: &BucketSet) -> Option<BucketSet> {
        if self.log2 != other.log2 {
            return None;
        }
        let mut set = *self;
        for (a, b) in set.bits.iter_mut().zip(other.bits.iter()) {
            *a |= b;
        }
        Some(set)
    }

    /// Whether a member with this address hash belongs to a differing bucket.
    pub fn contains_hash(&self, addr_hash: u64) -> bool {
        self.has(bucket(addr_hash, self.log2))
    }

    /// Whether a member with this address belongs to a differing bucket.
    #[cfg(test)]
    pub fn contains<A: Address>(&self, addr: &A) -> bool {
        self.contains_hash(addr_hash(addr))
    }

    /// The smallest hash at or after `from` that falls in a differing
    /// bucket, or `None` when no differing bucket is left.
    pub fn next_bucket_start(&self, from: u64) -> Option<u64> {
        let n = 1usize << self.log2;
        let first = bucket(from, self.log2);
        if self.has(first) {
            return Some(from);
        }
        let next = (first + 1..n).find(|&i| self.has(i))?;
        Some(match self.log2 {
            0 => 0,
            l => (next as u64) << (64 - u32::from(l)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::NodeId;

    fn table(n: u32, bump: Option<u32>) -> Members<NodeId> {
        let mut m = Members::new();
        for id in 0..n {
            let incarnation = if Some(id) == bump { 1 } else { 0 };
            m.insert(NodeId(id), incarnation, 0, State::Alive, &[]);
        }
        m
    }

    #[test]
    fn equal_tables_have_equal_digests_whatever_the_insertion_order() {
        let a = table(500, None);
        let mut b = Members::new();
        for id in (0..500).rev() {
            b.insert(NodeId(id), 0, 9, State::Alive, &[]);
        }
        let log2 = bucket_log2(a.len());
        assert_eq!(log2, 6);
        let mut digest = [0u8; 4 * MAX_BUCKETS];
        let n = summarize(&a, log2, &mut digest);
        assert!(BucketSet::differing(&b, &digest[..n]).is_empty());
    }

    #[test]
    fn one_changed_member_marks_exactly_its_bucket() {
        let a = table(500, None);
        let b = table(500, Some(77));
        let mut digest = [0u8; 4 * MAX_BUCKETS];
        let n = summarize(&a, bucket_log2(500), &mut digest);
        let diff = BucketSet::differing(&b, &digest[..n]);
        assert!(diff.contains(&NodeId(77)));
        let marked = (0..500).filter(|&id| diff.contains(&NodeId(id))).count();
        assert!(marked < 30, "{marked} members fall in the differing bucket (about 8 expected)");
    }
}
