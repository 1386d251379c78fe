//! The Prometheus text exposition of a node's [`Stats`].

use std::fmt::Write;

use crate::Stats;

/// Render `stats` in the Prometheus text format (version 0.0.4).
pub fn render(stats: &Stats) -> String {
    let mut out = String::with_capacity(4096);
    let c = &stats.core;
    let m = &stats.members;
    family(
        &mut out,
        "swim_members",
        "gauge",
        "Members this node knows, by state, itself included.",
        &[
            ("state=\"alive\"", u64::from(m.alive)),
            ("state=\"suspect\"", u64::from(m.suspect)),
            ("state=\"failed\"", u64::from(m.failed)),
            ("state=\"left\"", u64::from(m.left)),
        ],
    );
    let counters: [(&str, &str, u64); 20] = [
        ("swim_datagrams_received_total", "Datagrams received.", c.datagrams_in),
        ("swim_datagrams_sent_total", "Datagrams produced for sending.", c.datagrams_out),
        ("swim_bytes_received_total", "Bytes received.", c.bytes_in),
        ("swim_bytes_sent_total", "Bytes produced for sending.", c.bytes_out),
        ("swim_probes_total", "Probes started.", c.probes),
        ("swim_indirect_probes_total", "Probes that fell back to indirect probing.", c.indirect_probes),
        ("swim_probe_failures_total", "Probes that ended without an ack.", c.probe_failures),
        ("swim_missed_nacks_total", "Nacks expected but not received.", c.missed_nacks),
        ("swim_suspicions_total", "Members this node started suspecting.", c.suspicions),
        ("swim_refutations_total", "Times this node refuted a suspicion of itself.", c.refutations),
        ("swim_failures_total", "Members this node saw declared failed.", c.failures),
        ("swim_push_pulls_total", "Full-state exchanges started.", c.push_pulls),
        ("swim_join_attempts_total", "Join attempts.", c.join_attempts),
        ("swim_updates_sent_total", "Piggybacked updates sent.", c.updates_sent),
        ("swim_updates_received_total", "Piggybacked updates received.", c.updates_received),
        ("swim_broadcasts_delivered_total", "Application broadcasts delivered.", c.broadcasts_delivered),
        ("swim_gossip_dropped_total", "Updates evicted from a full dissemination queue.", c.gossip_dropped),
        ("swim_send_errors_total", "Sends that failed at the socket.", stats.driver.send_errors),
        ("swim_receive_errors_total", "Receives that failed at the socket.", stats.driver.receive_errors),
        ("swim_events_total", "Membership events published.", stats.driver.events_published),
    ];
    for (name, help, value) in counters {
        family(&mut out, name, "counter", help, &[("", value)]);
    }
    let r = &c.rejected;
    family(
        &mut out,
        "swim_decode_errors_total",
        "counter",
        "Datagrams refused, by reason; none changed the node's state.",
        &[
            ("reason=\"too_short\"", r.too_short),
            ("reason=\"too_long\"", r.too_long),
            ("reason=\"bad_version\"", r.bad_version),
            ("reason=\"wrong_cluster\"", r.wrong_cluster),
            ("reason=\"bad_checksum\"", r.bad_checksum),
            ("reason=\"malformed\"", r.malformed),
            ("reason=\"too_large\"", r.too_large),
            ("reason=\"unknown_message\"", r.unknown_message),
            ("reason=\"from_self\"", r.from_self),
        ],
    );
    family(
        &mut out,
        "swim_local_health",
        "gauge",
        "Local health score; 0 is healthy (Lifeguard).",
        &[("", u64::from(stats.local_health))],
    );
    out
}

/// One metric family: HELP, TYPE and its samples.
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(&str, u64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_has_help_type_and_samples() {
        let mut stats = Stats::default();
        stats.members.alive = 3;
        stats.core.rejected.bad_checksum = 2;
        let text = render(&stats);
        assert!(text.contains("swim_members{state=\"alive\"} 3\n"));
        assert!(text.contains("swim_decode_errors_total{reason=\"bad_checksum\"} 2\n"));
        assert!(text.contains("# TYPE swim_decode_errors_total counter\n"));
        assert!(text.contains("swim_local_health 0\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = line.rsplit_once(' ').unwrap();
            assert!(name.starts_with("swim_"), "{line}");
            value.parse::<u64>().unwrap();
        }
    }
}
