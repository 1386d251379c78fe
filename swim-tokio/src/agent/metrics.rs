//! The Prometheus text exposition of a node's [`Stats`], of its keyring
//! (ids only) and of the agent's process (resident memory, CPU seconds,
//! open file descriptors, in the standard `process_*` names).

use std::fmt::Write;

use swim_core::{Encryption, RoundTrips, ROUND_TRIP_BOUNDS_MICROS};

use crate::{InstalledKey, Stats};

/// How the node's datagrams are sealed, for the exposition.
#[derive(Debug, Clone, Copy)]
pub struct Keyring<'a> {
    /// The encryption mode.
    pub encryption: Encryption,
    /// The installed keys by id.
    pub keys: &'a [InstalledKey],
}

impl Keyring<'_> {
    /// A node without keys.
    pub const PLAINTEXT: Keyring<'static> = Keyring { encryption: Encryption::Off, keys: &[] };
}

/// What the agent's process uses, read from the operating system.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessStats {
    /// Resident memory, bytes (Linux: `VmRSS` of `/proc/self/status`).
    pub resident_memory_bytes: Option<u64>,
    /// User and system CPU time, seconds.
    pub cpu_seconds: Option<f64>,
    /// Open file descriptors (Linux: the entries of `/proc/self/fd`).
    pub open_fds: Option<u64>,
}

impl ProcessStats {
    /// Read them now; what this platform cannot tell stays `None` and is
    /// left out of the exposition.
    pub fn read() -> ProcessStats {
        let resident_memory_bytes = std::fs::read_to_string("/proc/self/status").ok().and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        });
        let open_fds = std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as u64);
        let cpu_seconds = cpu_time::ProcessTime::try_now().ok().map(|t| t.as_duration().as_secs_f64());
        ProcessStats { resident_memory_bytes, cpu_seconds, open_fds }
    }
}

/// Render `stats`, `keyring` and `process` in the Prometheus text format
/// (version 0.0.4).
pub fn render(stats: &Stats, keyring: &Keyring<'_>, process: &ProcessStats) -> String {
    let mut out = String::with_capacity(8192);
    let _ = writeln!(out, "# HELP swim_build_info The agent's version; always 1.");
    let _ = writeln!(out, "# TYPE swim_build_info gauge");
    let _ = writeln!(out, "swim_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));
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
    let counters: [(&str, &str, u64); 25] = [
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
        ("swim_push_pulls_refused_total", "Full-state exchanges refused: too many queued.", c.push_pull_refused),
        (
            "swim_push_pulls_folded_total",
            "Requests answered by a transfer already queued for the requester and not started.",
            c.push_pull_folded,
        ),
        ("swim_members_refused_total", "Members not added: the member table is full.", c.members_refused),
        ("swim_unexpected_acks_total", "Acks that matched no probe.", c.unexpected_acks),
        ("swim_join_attempts_total", "Join attempts.", c.join_attempts),
        ("swim_updates_sent_total", "Piggybacked updates sent.", c.updates_sent),
        ("swim_updates_received_total", "Piggybacked updates received.", c.updates_received),
        ("swim_broadcasts_delivered_total", "Application broadcasts delivered.", c.broadcasts_delivered),
        (
            "swim_broadcasts_repaired_total",
            "Broadcasts sent to a probed member that lacked them (anti-entropy).",
            c.broadcasts_repaired,
        ),
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
            ("reason=\"extra_primary\"", r.extra_primary),
            ("reason=\"plaintext_refused\"", r.plaintext_refused),
            ("reason=\"sealed_unexpected\"", r.sealed_unexpected),
            ("reason=\"unknown_key\"", r.unknown_key),
            ("reason=\"bad_tag\"", r.bad_tag),
            ("reason=\"replayed\"", r.replayed),
            ("reason=\"unbound\"", r.unbound),
            ("reason=\"rate_limited\"", r.rate_limited),
            ("reason=\"rate_limited_total\"", r.rate_limited_total),
        ],
    );
    let _ =
        writeln!(out, "# HELP swim_encryption_info How datagrams are sealed (off, accept, seal, require); always 1.");
    let _ = writeln!(out, "# TYPE swim_encryption_info gauge");
    let _ = writeln!(out, "swim_encryption_info{{mode=\"{}\"}} 1", keyring.encryption.as_str());
    family(
        &mut out,
        "swim_keys",
        "gauge",
        "Keys installed in the keyring (every one opens datagrams).",
        &[("", keyring.keys.len() as u64)],
    );
    if let Some(primary) = keyring.keys.iter().find(|k| k.primary) {
        let _ =
            writeln!(out, "# HELP swim_primary_key_info The id of the key that seals this node's datagrams; always 1.");
        let _ = writeln!(out, "# TYPE swim_primary_key_info gauge");
        let _ = writeln!(out, "swim_primary_key_info{{id=\"{}\"}} 1", primary.id);
    }
    family(
        &mut out,
        "swim_local_health",
        "gauge",
        "Local health score; 0 is healthy (Lifeguard).",
        &[("", u64::from(stats.local_health))],
    );
    family(
        &mut out,
        "swim_incarnation",
        "gauge",
        "This node's own incarnation; it grows with each refutation and metadata change.",
        &[("", u64::from(stats.incarnation))],
    );
    for (name, help, by) in [
        ("swim_messages_received_total", "Protocol messages received, by kind.", &c.received),
        ("swim_messages_sent_total", "Protocol messages sent, by kind.", &c.sent),
    ] {
        family(
            &mut out,
            name,
            "counter",
            help,
            &[
                ("kind=\"ping\"", by.ping),
                ("kind=\"ack\"", by.ack),
                ("kind=\"nack\"", by.nack),
                ("kind=\"ping_req\"", by.ping_req),
                ("kind=\"gossip\"", by.gossip),
                ("kind=\"push_pull\"", by.push_pull),
            ],
        );
    }
    round_trips(&mut out, &c.probe_round_trips);
    if let Some(bytes) = process.resident_memory_bytes {
        family(&mut out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", &[("", bytes)]);
    }
    if let Some(secs) = process.cpu_seconds {
        let _ = writeln!(out, "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.");
        let _ = writeln!(out, "# TYPE process_cpu_seconds_total counter");
        let _ = writeln!(out, "process_cpu_seconds_total {secs}");
    }
    if let Some(fds) = process.open_fds {
        family(&mut out, "process_open_fds", "gauge", "Number of open file descriptors.", &[("", fds)]);
    }
    out
}

/// The probe round-trip histogram, in seconds as Prometheus names it:
/// buckets cumulative, as the format wants, where the core counts each
/// bucket on its own.
fn round_trips(out: &mut String, rt: &RoundTrips) {
    let name = "swim_probe_rtt_seconds";
    let _ = writeln!(out, "# HELP {name} Round-trip times of this node's probes, ping to ack (direct or relayed).");
    let _ = writeln!(out, "# TYPE {name} histogram");
    let mut cumulative = 0u64;
    for (bound, count) in ROUND_TRIP_BOUNDS_MICROS.iter().zip(rt.counts) {
        cumulative += count;
        let _ = writeln!(out, "{name}_bucket{{le=\"{}\"}} {cumulative}", *bound as f64 / 1e6);
    }
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", rt.count());
    let _ = writeln!(out, "{name}_sum {}", rt.sum_micros as f64 / 1e6);
    let _ = writeln!(out, "{name}_count {}", rt.count());
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
        let process = ProcessStats { resident_memory_bytes: Some(2048), cpu_seconds: Some(0.25), open_fds: Some(9) };
        let text = render(&stats, &Keyring::PLAINTEXT, &process);
        assert!(text.contains("swim_members{state=\"alive\"} 3\n"));
        assert!(text.contains("process_resident_memory_bytes 2048\n"));
        assert!(text.contains("process_cpu_seconds_total 0.25\n"));
        assert!(text.contains("swim_build_info{version=\""));
        assert!(text.contains("swim_decode_errors_total{reason=\"bad_checksum\"} 2\n"));
        assert!(text.contains("# TYPE swim_decode_errors_total counter\n"));
        assert!(text.contains("swim_local_health 0\n"));
        assert!(text.contains("# TYPE swim_probe_rtt_seconds histogram\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = line.rsplit_once(' ').unwrap();
            assert!(name.starts_with("swim_") || name.starts_with("process_"), "{line}");
            // Only histogram buckets carry `le`; theirs is a number or +Inf.
            if let Some((_, le)) = name.split_once("le=\"") {
                let le = le.trim_end_matches("\"}");
                assert!(le == "+Inf" || le.parse::<f64>().is_ok(), "{line}");
            }
            value.parse::<f64>().unwrap();
        }
        // The process is read from the system here.
        let own = ProcessStats::read();
        if cfg!(target_os = "linux") {
            assert!(own.resident_memory_bytes.is_some_and(|b| b > 0) && own.open_fds.is_some_and(|n| n >= 3));
        }
    }

    #[test]
    fn every_refusal_reason_is_a_sample_and_the_keyring_shows_ids_only() {
        let mut stats = Stats::default();
        // Fails to compile when the core counts a reason this does not list.
        macro_rules! every_reason {
            ($($reason:ident),*) => {{
                let swim_core::Rejections { $($reason),* } = &mut stats.core.rejected;
                [$($reason),*]
            }};
        }
        let all = every_reason!(
            too_short,
            too_long,
            bad_version,
            wrong_cluster,
            bad_checksum,
            malformed,
            too_large,
            unknown_message,
            from_self,
            extra_primary,
            plaintext_refused,
            sealed_unexpected,
            unknown_key,
            bad_tag,
            replayed,
            unbound,
            rate_limited,
            rate_limited_total
        );
        let reasons = all.len();
        for (i, count) in all.into_iter().enumerate() {
            *count = 1 << i;
        }
        let key = swim_core::Key::from_bytes([3; 32]);
        let keys = [
            InstalledKey { id: key.id(), primary: true },
            InstalledKey { id: swim_core::KeyId([0; 4]), primary: false },
        ];
        let keyring = Keyring { encryption: Encryption::Require, keys: &keys };
        let text = render(&stats, &keyring, &ProcessStats::default());
        let samples: Vec<u64> = text
            .lines()
            .filter_map(|l| l.strip_prefix("swim_decode_errors_total{reason=\""))
            .map(|l| l.rsplit_once(' ').unwrap().1.parse().unwrap())
            .collect();
        assert_eq!(samples.len(), reasons);
        assert_eq!(samples.iter().sum::<u64>(), stats.core.rejected.total());
        assert!(text.contains("swim_decode_errors_total{reason=\"bad_tag\"} 8192\n"), "{text}");
        assert!(text.contains("swim_decode_errors_total{reason=\"replayed\"} 16384\n"), "{text}");
        assert!(text.contains("swim_encryption_info{mode=\"require\"} 1\n"));
        assert!(text.contains("swim_keys 2\n"));
        assert!(text.contains(&format!("swim_primary_key_info{{id=\"{}\"}} 1\n", key.id())));
        let plain = render(&Stats::default(), &Keyring::PLAINTEXT, &ProcessStats::default());
        assert!(plain.contains("swim_keys 0\n") && !plain.contains("swim_primary_key_info"));
    }

    #[test]
    fn round_trips_are_a_cumulative_histogram_in_seconds() {
        let mut stats = Stats::default();
        let rt = &mut stats.core.probe_round_trips;
        rt.record(std::time::Duration::from_micros(100));
        rt.record(std::time::Duration::from_micros(300));
        rt.record(std::time::Duration::from_micros(500));
        rt.record(std::time::Duration::from_secs(10));
        let text = render(&stats, &Keyring::PLAINTEXT, &ProcessStats::default());
        for want in [
            "swim_probe_rtt_seconds_bucket{le=\"0.000128\"} 1\n",
            "swim_probe_rtt_seconds_bucket{le=\"0.000256\"} 1\n",
            "swim_probe_rtt_seconds_bucket{le=\"0.000512\"} 3\n",
            "swim_probe_rtt_seconds_bucket{le=\"4.194304\"} 3\n",
            "swim_probe_rtt_seconds_bucket{le=\"+Inf\"} 4\n",
            "swim_probe_rtt_seconds_sum 10.0009\n",
            "swim_probe_rtt_seconds_count 4\n",
        ] {
            assert!(text.contains(want), "no `{want}` in\n{text}");
        }
        let buckets = text.lines().filter(|l| l.starts_with("swim_probe_rtt_seconds_bucket")).count();
        assert_eq!(buckets, ROUND_TRIP_BOUNDS_MICROS.len() + 1);
    }
}
