//! Seed derivation: every random stream of a run comes from the run's one seed.

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// The RNG of the simulator's own draws: the network's and the faults'.
pub type SimRng = Xoshiro256PlusPlus;

/// The RNG handed to every simulated node: ChaCha, a cryptographically
/// secure generator, because a node that seals its datagrams draws its
/// nonces from it (swim-core's `Node::with_keys` asks for a `CryptoRng`).
/// Seeded from the run's seed like every other stream, so a run still
/// replays exactly: in the simulator the seed is meant to be known.
pub type NodeRng = ChaCha8Rng;

/// Which part of the simulation a random stream belongs to. Streams are
/// independent, so adding draws to one (say, the network) does not shift
/// the choices of another (say, which nodes crash).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Latency, loss, duplication.
    Network,
    /// Which nodes crash, leave, restart, are slow.
    Faults,
    /// The key every node of a sealed run holds.
    Key,
    /// The flood's outsiders: when they send, what, to whom.
    Flood,
    /// A node's own RNG: its id and how many times it was (re)started.
    Node {
        /// The node's id.
        id: u32,
        /// 0 for the first process, 1 after the first restart, ...
        generation: u32,
    },
}

/// SplitMix64's finaliser: a bijective mix of 64 bits.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The 64-bit seed of one stream of the run seeded with `seed`.
pub fn derive(seed: u64, stream: Stream) -> u64 {
    let tag = match stream {
        Stream::Network => 1,
        Stream::Faults => 2,
        Stream::Key => 4,
        Stream::Flood => 5,
        Stream::Node { id, generation } => (3 << 60) ^ (u64::from(generation) << 32) ^ u64::from(id),
    };
    mix(mix(seed) ^ mix(tag))
}

/// A seeded RNG for one stream of the run.
pub fn rng(seed: u64, stream: Stream) -> SimRng {
    SimRng::seed_from_u64(derive(seed, stream))
}

/// The RNG of node `id`'s process number `generation` (0 for the first) in
/// the run seeded with `seed`.
pub fn node_rng(seed: u64, id: u32, generation: u32) -> NodeRng {
    NodeRng::seed_from_u64(derive(seed, Stream::Node { id, generation }))
}

/// A uniformly random integer in `[0, bound)` (0 when `bound` is 0).
pub fn below(rng: &mut SimRng, bound: u64) -> u64 {
    use rand_core::RngCore;
    ((u128::from(rng.next_u64()) * u128::from(bound)) >> 64) as u64
}

/// True with probability `p` (clamped to `[0, 1]`).
pub fn chance(rng: &mut SimRng, p: f64) -> bool {
    use rand_core::RngCore;
    if p <= 0.0 {
        return false;
    }
    if p >= 1.0 {
        return true;
    }
    // 53 random bits as a float in [0, 1): exact and platform independent.
    let x = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    x < p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_and_generations_get_distinct_seeds() {
        let a = derive(7, Stream::Node { id: 1, generation: 0 });
        let b = derive(7, Stream::Node { id: 1, generation: 1 });
        let c = derive(7, Stream::Node { id: 2, generation: 0 });
        let d = derive(8, Stream::Node { id: 1, generation: 0 });
        assert!(a != b && a != c && a != d && b != c);
        assert_ne!(derive(7, Stream::Network), derive(7, Stream::Faults));
        assert_eq!(a, derive(7, Stream::Node { id: 1, generation: 0 }));
    }

    #[test]
    fn below_stays_in_range_and_chance_respects_the_extremes() {
        let mut r = rng(1, Stream::Network);
        assert!((0..1000).all(|_| below(&mut r, 10) < 10));
        assert_eq!(below(&mut r, 0), 0);
        assert!(!chance(&mut r, 0.0));
        assert!(chance(&mut r, 1.0));
    }
}
