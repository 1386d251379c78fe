//! Time bounds the configuration implies: how long detection and
//! re-convergence may take before the simulator calls it a violation.

use std::time::Duration;

use swim_core::Config;

/// `floor(log10(n))`, at least 1: a cluster-size factor for retransmits.
fn log10_factor(n: u32) -> u32 {
    n.max(1).ilog10().max(1)
}

/// The shortest suspicion timeout at `n` live members (memberlist
/// `suspicionTimeout`, as swim-core computes it).
pub fn suspicion_min(config: &Config, n: u32) -> Duration {
    config.suspicion_timeout(n)
}

/// The longest: `suspicion_max_timeout_mult` times the shortest with
/// Lifeguard (Lifeguard §IV.B), the shortest without.
pub fn suspicion_max(config: &Config, n: u32) -> Duration {
    let min = suspicion_min(config, n);
    if config.lifeguard {
        min.saturating_mul(config.suspicion_max_timeout_mult.max(1))
    } else {
        min
    }
}

/// How long a full-state exchange interval is at `n` members (memberlist
/// `pushPullScale`).
pub fn push_pull_interval(config: &Config, n: u32) -> Duration {
    if n <= 32 {
        return config.push_pull_interval;
    }
    let multiplier = (n - 1).ilog2() + 1 - 5 + 1;
    config.push_pull_interval.saturating_mul(multiplier)
}

/// How long after a crash every live node must have declared it Failed:
/// a few probe periods until someone suspects it, the longest suspicion
/// timeout, then the Failed claim's retransmissions, plus `extra` (the
/// slow nodes' input delay) and five seconds of slack.
pub fn detection(config: &Config, n: u32, extra: Duration) -> Duration {
    let first_suspect = config.probe_interval.saturating_mul(5).saturating_add(config.probe_timeout);
    let retransmits = config.retransmit_mult.saturating_mul(log10_factor(n.saturating_add(1)) + 1);
    let spread = config.gossip_interval.saturating_mul(retransmits.saturating_mul(2));
    [suspicion_max(config, n), spread, extra, Duration::from_secs(5)]
        .into_iter()
        .fold(first_suspect, Duration::saturating_add)
}

/// How long after the last fault every live node must agree on who is
/// live: the detection bound, plus one full-state exchange interval when a
/// partition has to be healed (only push-pull reaches members declared dead).
pub fn settle(config: &Config, n: u32, extra: Duration, partition: bool) -> Duration {
    let mut d = detection(config, n, extra);
    if partition {
        d = d.saturating_add(push_pull_interval(config, n));
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lan_suspicion_timeouts_step_with_log10_of_the_cluster() {
        let c = Config::lan();
        assert_eq!(suspicion_min(&c, 5), Duration::from_secs(4));
        assert_eq!(suspicion_min(&c, 50), Duration::from_millis(6_792));
        assert_eq!(suspicion_min(&c, 100), Duration::from_secs(8));
        assert_eq!(suspicion_max(&c, 100), Duration::from_secs(48));
        let mut plain = c.clone();
        plain.lifeguard = false;
        assert_eq!(suspicion_max(&plain, 100), Duration::from_secs(8));
        assert_eq!(push_pull_interval(&c, 100), Duration::from_secs(90));
        assert!(detection(&c, 100, Duration::ZERO) > suspicion_max(&c, 100));
    }
}
