//! The network model: per-datagram latency, loss, duplication, partitions
//! and slow receivers. It decides when (and whether) each datagram arrives;
//! reordering follows from drawing each datagram's latency independently.

use std::time::Duration;

use crate::seed::{below, chance, SimRng};

/// How the network treats datagrams.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkConfig {
    /// Shortest one-way latency.
    pub latency_min: Duration,
    /// Longest one-way latency; each datagram draws uniformly in between.
    pub latency_max: Duration,
    /// Probability a datagram is lost.
    pub loss: f64,
    /// Probability a delivered datagram arrives twice (the copy draws its own latency).
    pub duplicate: f64,
    /// Extra time before a slow node handles a datagram sent to it: its
    /// inputs are handled late while its timers fire on time, as in
    /// Lifeguard's experiments with starved processes (Lifeguard §V).
    pub slow_delay: Duration,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            latency_min: Duration::from_millis(1),
            latency_max: Duration::from_millis(5),
            loss: 0.0,
            duplicate: 0.0,
            slow_delay: Duration::from_millis(1500),
        }
    }
}

/// The network's state: its configuration plus the faults in force.
#[derive(Debug, Clone)]
pub struct Network {
    config: NetworkConfig,
    /// Whether the halves (even ids, odd ids) are cut off from each other.
    partitioned: bool,
    slow: Vec<bool>,
    clogged: Vec<bool>,
}

impl Network {
    /// A healthy network between `ids` node ids.
    pub fn new(config: NetworkConfig, ids: usize) -> Self {
        Network { config, partitioned: false, slow: vec![false; ids], clogged: vec![false; ids] }
    }

    /// The configuration.
    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    /// Cut the cluster in two halves (even ids, odd ids), or heal the cut.
    pub fn set_partitioned(&mut self, on: bool) {
        self.partitioned = on;
    }

    /// Whether a partition is in force.
    pub fn is_partitioned(&self) -> bool {
        self.partitioned
    }

    /// Stop every fault: no loss, no duplication, no partition, no slow
    /// node. Latency stays. The liveness phase runs on this network.
    pub fn calm(&mut self) {
        self.config.loss = 0.0;
        self.config.duplicate = 0.0;
        self.partitioned = false;
        self.slow.iter_mut().for_each(|s| *s = false);
        self.clogged.iter_mut().for_each(|c| *c = false);
    }

    /// Stop a node receiving (it still sends), or let it receive again.
    pub fn set_clogged(&mut self, id: u32, clogged: bool) {
        if let Some(c) = self.clogged.get_mut(id as usize) {
            *c = clogged;
        }
    }

    /// Whether some node is clogged.
    pub fn is_clogged(&self) -> bool {
        self.clogged.iter().any(|&c| c)
    }

    /// Make a node slow (its inputs are handled late).
    pub fn set_slow(&mut self, id: u32, slow: bool) {
        if let Some(s) = self.slow.get_mut(id as usize) {
            *s = slow;
        }
    }

    /// Whether a node is slow.
    pub fn is_slow(&self, id: u32) -> bool {
        self.slow.get(id as usize).copied().unwrap_or(false)
    }

    /// Which half of a partition a node is in.
    pub fn side(id: u32) -> u32 {
        id % 2
    }

    /// Whether a datagram from `from` to `to` is cut off by a partition
    /// or a clog of the receiver now.
    pub fn blocked(&self, from: u32, to: u32) -> bool {
        (self.partitioned && Network::side(from) != Network::side(to))
            || self.clogged.get(to as usize).copied().unwrap_or(false)
    }

    /// The delays after which copies of one datagram arrive: none when
    /// lost, two when duplicated.
    pub fn fate(&self, rng: &mut SimRng, to: u32) -> [Option<Duration>; 2] {
        if chance(rng, self.config.loss) {
            return [None, None];
        }
        let first = Some(self.delay(rng, to));
        let second = if chance(rng, self.config.duplicate) { Some(self.delay(rng, to)) } else { None };
        [first, second]
    }

    fn delay(&self, rng: &mut SimRng, to: u32) -> Duration {
        let min = self.config.latency_min;
        let max = self.config.latency_max.max(min);
        let span = u64::try_from((max - min).as_nanos()).unwrap_or(u64::MAX);
        let mut d = min + Duration::from_nanos(below(rng, span.saturating_add(1)));
        if self.is_slow(to) {
            d += self.config.slow_delay;
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::{rng, Stream};

    #[test]
    fn latency_stays_in_range_and_slow_receivers_get_it_late() {
        let config = NetworkConfig {
            latency_min: Duration::from_millis(2),
            latency_max: Duration::from_millis(4),
            ..NetworkConfig::default()
        };
        let mut net = Network::new(config, 4);
        net.set_slow(3, true);
        let mut r = rng(1, Stream::Network);
        for _ in 0..1000 {
            let [Some(d), None] = net.fate(&mut r, 1) else {
                panic!("no loss or duplication configured");
            };
            assert!(d >= Duration::from_millis(2) && d <= Duration::from_millis(4));
        }
        let [Some(d), _] = net.fate(&mut r, 3) else {
            panic!("lost");
        };
        assert!(d >= Duration::from_millis(1502));
    }

    #[test]
    fn a_partition_cuts_only_across_halves() {
        let mut net = Network::new(NetworkConfig::default(), 4);
        assert!(!net.blocked(0, 1));
        net.set_partitioned(true);
        assert!(net.blocked(0, 1));
        assert!(!net.blocked(0, 2));
        net.set_partitioned(false);
        assert!(!net.blocked(0, 1));
    }

    #[test]
    fn total_loss_delivers_nothing() {
        let config = NetworkConfig { loss: 1.0, ..NetworkConfig::default() };
        let net = Network::new(config, 2);
        let mut r = rng(1, Stream::Network);
        assert_eq!(net.fate(&mut r, 1), [None, None]);
    }
}
