//! Counters a node keeps about itself, read with [`crate::Node::stats`].
//!
//! Plain integers, updated in place: reading them costs nothing and a driver
//! turns them into whatever metrics format it serves.

use crate::wire::{DecodeError, FrameError};

/// Datagram counts by primary message kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ByKind {
    /// Pings.
    pub ping: u64,
    /// Acks (direct and relayed).
    pub ack: u64,
    /// Nacks.
    pub nack: u64,
    /// Ping requests (indirect probes).
    pub ping_req: u64,
    /// Datagrams carrying only gossip.
    pub gossip: u64,
    /// Full-state (push-pull) datagrams.
    pub push_pull: u64,
}

/// Rejected datagrams by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rejections {
    /// Shorter than a header and checksum.
    pub too_short: u64,
    /// Longer than `max_datagram_size`.
    pub too_long: u64,
    /// Wrong wire version.
    pub bad_version: u64,
    /// Another cluster's label.
    pub wrong_cluster: u64,
    /// Checksum mismatch.
    pub bad_checksum: u64,
    /// A message that did not decode (truncated, bad varint, bad value...).
    pub malformed: u64,
    /// A length prefix past a configured bound.
    pub too_large: u64,
    /// An unknown message tag.
    pub unknown_message: u64,
    /// Claimed to come from this node's own address.
    pub from_self: u64,
    /// More than one primary message, a primary message after the first,
    /// or anything after a Digest.
    pub extra_primary: u64,
    /// Plaintext, and this node requires sealing.
    pub plaintext_refused: u64,
    /// Sealed, and this node has no keys.
    pub sealed_unexpected: u64,
    /// Sealed under a key this node does not hold.
    pub unknown_key: u64,
    /// The authentication tag did not verify.
    pub bad_tag: u64,
    /// A sealed datagram already accepted once (a replay).
    pub replayed: u64,
    /// Sealed for no receiver in particular, and not a join request.
    pub unbound: u64,
    /// Over its source's inbound budget (`Config::inbound_per_source`).
    pub rate_limited: u64,
    /// Over the node's inbound budget (`Config::inbound_total`).
    pub rate_limited_total: u64,
}

impl Rejections {
    /// Every rejection, whatever its reason.
    pub fn total(&self) -> u64 {
        self.too_short
            + self.too_long
            + self.bad_version
            + self.wrong_cluster
            + self.bad_checksum
            + self.malformed
            + self.too_large
            + self.unknown_message
            + self.from_self
            + self.extra_primary
            + self.plaintext_refused
            + self.sealed_unexpected
            + self.unknown_key
            + self.bad_tag
            + self.replayed
            + self.unbound
            + self.rate_limited
            + self.rate_limited_total
    }

    /// Count one refusal under its reason.
    pub(crate) fn count(&mut self, r: crate::node::Rejected) {
        use crate::node::Rejected;
        use crate::seal::SealError;
        match r {
            Rejected::Frame(e) => self.count_frame(e),
            Rejected::Malformed(e) => self.count_decode(e),
            Rejected::FromSelf => self.from_self += 1,
            Rejected::ExtraPrimary => self.extra_primary += 1,
            Rejected::Seal(SealError::Plaintext) => self.plaintext_refused += 1,
            Rejected::Seal(SealError::NoKeys) => self.sealed_unexpected += 1,
            Rejected::Seal(SealError::UnknownKey(_)) => self.unknown_key += 1,
            Rejected::Seal(SealError::BadTag) => self.bad_tag += 1,
            Rejected::Seal(SealError::Replayed) => self.replayed += 1,
            Rejected::Seal(SealError::Unbound) => self.unbound += 1,
            Rejected::RateLimited(crate::Exhausted::Source) => self.rate_limited += 1,
            Rejected::RateLimited(crate::Exhausted::Total) => self.rate_limited_total += 1,
        }
    }

    fn count_frame(&mut self, e: FrameError) {
        let c = match e {
            FrameError::TooShort => &mut self.too_short,
            FrameError::TooLong => &mut self.too_long,
            FrameError::UnsupportedVersion(_) => &mut self.bad_version,
            FrameError::WrongCluster => &mut self.wrong_cluster,
            FrameError::BadChecksum => &mut self.bad_checksum,
        };
        *c += 1;
    }

    fn count_decode(&mut self, e: DecodeError) {
        let c = match e {
            DecodeError::TooLong => &mut self.too_large,
            DecodeError::UnknownMessage => &mut self.unknown_message,
            _ => &mut self.malformed,
        };
        *c += 1;
    }
}

/// Upper bounds, in microseconds, of the probe round-trip histogram's
/// buckets ([`RoundTrips::counts`] has one more, for anything slower):
/// powers of two from 128 µs to about 4.2 s.
pub const ROUND_TRIP_BOUNDS_MICROS: [u64; 16] = [
    128, 256, 512, 1_024, 2_048, 4_096, 8_192, 16_384, 32_768, 65_536, 131_072, 262_144, 524_288, 1_048_576, 2_097_152,
    4_194_304,
];

/// Round-trip times of this node's own probes (ping sent until its ack,
/// direct or relayed, arrived), as a fixed-bucket histogram: no allocation,
/// and a driver can export it as it is (a Prometheus histogram, say).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoundTrips {
    /// Probes answered within each bound of [`ROUND_TRIP_BOUNDS_MICROS`]
    /// (not cumulative), and in the last slot those slower than all bounds.
    pub counts: [u64; ROUND_TRIP_BOUNDS_MICROS.len() + 1],
    /// Sum of all recorded round trips, in microseconds.
    pub sum_micros: u64,
}

impl RoundTrips {
    /// Count one round trip.
    pub fn record(&mut self, rtt: core::time::Duration) {
        let micros = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX);
        let i = ROUND_TRIP_BOUNDS_MICROS.iter().position(|&b| micros <= b).unwrap_or(ROUND_TRIP_BOUNDS_MICROS.len());
        if let Some(c) = self.counts.get_mut(i) {
            *c += 1;
        }
        self.sum_micros = self.sum_micros.saturating_add(micros);
    }

    /// Round trips recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// Everything a node counts. Counters only grow, except the gauges noted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams handed to the node.
    pub datagrams_in: u64,
    /// Datagrams produced by the node.
    pub datagrams_out: u64,
    /// Bytes handed to the node.
    pub bytes_in: u64,
    /// Bytes produced by the node.
    pub bytes_out: u64,
    /// Accepted datagrams by primary kind.
    pub received: ByKind,
    /// Produced datagrams by primary kind.
    pub sent: ByKind,
    /// Datagrams refused, by reason; state was not changed by any of them.
    pub rejected: Rejections,
    /// Probes started.
    pub probes: u64,
    /// Probes that fell back to indirect probing.
    pub indirect_probes: u64,
    /// Probes that ended without an ack.
    pub probe_failures: u64,
    /// Nacks expected but not received by the end of a probe.
    pub missed_nacks: u64,
    /// Members this node started suspecting (from any source).
    pub suspicions: u64,
    /// Times this node refuted a claim that it was suspect, dead or left.
    pub refutations: u64,
    /// Members this node saw declared dead.
    pub failures: u64,
    /// Acks and nacks that matched nothing outstanding.
    pub unexpected_acks: u64,
    /// Piggybacked updates sent.
    pub updates_sent: u64,
    /// Piggybacked updates received.
    pub updates_received: u64,
    /// Application broadcasts delivered to this node's application.
    pub broadcasts_delivered: u64,
    /// Broadcasts sent to a probed member that lacked them (anti-entropy:
    /// its ack listed the broadcasts it holds).
    pub broadcasts_repaired: u64,
    /// Digests from non-members and ping requests for targets this node
    /// does not know, refused: only members exchange digests, and a
    /// node pings only members on request.
    pub strangers_refused: u64,
    /// State transfers held until their requester answered a ping (an
    /// address that had not lately answered one of ours).
    pub state_verifications: u64,
    /// `now` values earlier than the previous one (node time stood still).
    pub clock_regressions: u64,
    /// `now` values further ahead of the previous one than the node lets
    /// one input advance its time (a suspend, a stepped clock).
    pub clock_jumps: u64,
    /// Updates or broadcasts evicted from a full dissemination queue.
    pub gossip_dropped: u64,
    /// Datagrams dropped from a full transmit queue.
    pub transmits_dropped: u64,
    /// Events dropped from a full event queue.
    pub events_dropped: u64,
    /// New members refused because the member table was full.
    pub members_refused: u64,
    /// Ping requests refused because `max_relays` were in progress.
    pub relays_refused: u64,
    /// Full-state requests and digests refused because `max_push_pull_sends`
    /// transfers were queued or held for verification, or whose requester
    /// never answered its verification pings.
    pub push_pull_refused: u64,
    /// Requests answered by a transfer already queued for the requester and
    /// not started (a joiner asking again while its answer waits, digests
    /// arriving faster than their answers leave).
    pub push_pull_folded: u64,
    /// Tombstones reaped before their time because `max_tombstones` was reached.
    pub tombstones_evicted: u64,
    /// Transmits skipped because the caller's buffer was too small.
    pub buffer_too_small: u64,
    /// Full-state exchanges started by this node (joins and periodic).
    pub push_pulls: u64,
    /// Digests sent (each leg of a digest exchange counts one).
    pub digests_sent: u64,
    /// Join attempts (one per round of seeds).
    pub join_attempts: u64,
    /// Corrections sent to members whose accusation was at an outdated
    /// incarnation (they missed a refutation).
    pub corrections: u64,
    /// Conflicts: another live process claiming this node's address.
    pub conflicts: u64,
    /// Gauge: the local health score (0 is healthy; Lifeguard §IV.A).
    pub local_health: u32,
    /// Round-trip times of answered probes.
    pub probe_round_trips: RoundTrips,
}
