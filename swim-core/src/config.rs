//! Protocol tunables, their presets, and validation.
//!
//! The presets follow HashiCorp memberlist's `DefaultLANConfig`,
//! `DefaultWANConfig` and `DefaultLocalConfig` (memberlist `config.go`), so
//! a cluster tuned for memberlist behaves the same here. Values memberlist does
//! not have (bounds, join backoff, tombstone lifetime) are ours and say so.

use bytes::Bytes;
use core::fmt;
use core::time::Duration;

use crate::seal::Encryption;
use crate::wire::{DecodeError, NoRoom, Reader, Writer, MAX_LABEL_LEN};

/// Every tunable of a node. Start from [`Config::lan`], [`Config::wan`] or
/// [`Config::local`] and change fields; [`Config::validate`] (called by
/// [`crate::Node::new`]) rejects combinations that cannot work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Time between probes of successive members (memberlist `ProbeInterval`).
    /// Scaled up by the local health multiplier.
    pub probe_interval: Duration,
    /// How long to wait for a direct ack before asking others to probe
    /// (memberlist `ProbeTimeout`). Scaled by the local health multiplier.
    pub probe_timeout: Duration,
    /// Members asked to probe indirectly when a direct probe times out
    /// (SWIM's k; memberlist `IndirectChecks`).
    pub indirect_checks: u32,
    /// Each update is sent at most `retransmit_mult * ceil(log10(N+1))` times
    /// (memberlist `RetransmitMult`).
    pub retransmit_mult: u32,
    /// Minimum suspicion timeout is `suspicion_mult * max(1, log10(N)) *
    /// probe_interval` (memberlist `SuspicionMult`); it also sets how many
    /// independent confirmations shrink the timeout to its minimum
    /// (`suspicion_mult - 2`, Lifeguard §IV.B).
    pub suspicion_mult: u32,
    /// Maximum suspicion timeout as a multiple of the minimum (memberlist
    /// `SuspicionMaxTimeoutMult`).
    pub suspicion_max_timeout_mult: u32,
    /// Upper bound of the local health multiplier (memberlist
    /// `AwarenessMaxMultiplier`, Lifeguard §IV.A).
    pub awareness_max_multiplier: u32,
    /// Time between gossip rounds while there is something to disseminate
    /// (memberlist `GossipInterval`).
    pub gossip_interval: Duration,
    /// Members gossiped to per round (memberlist `GossipNodes`).
    pub gossip_nodes: u32,
    /// Time between full-state exchanges with a random member, scaled up with
    /// cluster size above 32 members (memberlist `PushPullInterval`). Zero
    /// turns periodic exchanges off (joins still exchange state).
    pub push_pull_interval: Duration,
    /// How long Dead and Left members stay as tombstones before they are
    /// forgotten. Ours; long enough that stale claims die out first.
    pub tombstone_timeout: Duration,
    /// Wait before a join attempt is retried: the first three retries wait
    /// this long, then it doubles per attempt. Ours.
    pub join_retry_interval: Duration,
    /// Longest wait between join attempts. Ours.
    pub join_retry_max_interval: Duration,
    /// Largest datagram sent or accepted, in bytes (memberlist
    /// `UDPBufferSize`). Piggybacked updates fill up to this budget.
    pub max_datagram_size: usize,
    /// Longest member metadata, in bytes (memberlist `MetaMaxSize`).
    pub max_metadata_len: usize,
    /// Longest application broadcast payload, in bytes.
    pub max_broadcast_len: usize,
    /// Most members (tombstones included) one node tracks. Alive claims about
    /// new members past this bound are dropped and counted.
    pub max_members: usize,
    /// Most tombstones kept; past this the oldest is reaped early.
    pub max_tombstones: usize,
    /// Most updates and broadcasts queued for dissemination; past this the
    /// most-sent one is dropped and counted.
    pub max_gossip_queue: usize,
    /// Most datagrams waiting for [`crate::Node::poll_transmit`]; past this
    /// the oldest is dropped and counted.
    pub max_pending_transmits: usize,
    /// Most events waiting for [`crate::Node::poll_event`]; past this the
    /// oldest is dropped and counted.
    pub max_pending_events: usize,
    /// Most indirect probes served for others at once.
    pub max_relays: usize,
    /// Most full-state transfers queued to be sent (bounds push-pull
    /// storms), and most held for a requester to answer its verification
    /// ping. They leave one after another, paced by `transfer_rate`; a
    /// seed answering a join storm holds, then queues, one per joiner, and
    /// a request past this bound is refused and counted (the requester
    /// retries). The default takes a 20,000-node join storm at once; a
    /// request held costs about 120 bytes and one queued 104 (7 MB with
    /// both at the bound, only while a storm or flood lasts).
    pub max_push_pull_sends: usize,
    /// Most seeds remembered by a join.
    pub max_seeds: usize,
    /// Broadcast ids remembered for deduplication; at least
    /// `broadcast_keep`, so a broadcast repaired by anti-entropy is still
    /// recognised.
    pub broadcast_dedup_window: usize,
    /// Most recent broadcasts kept for anti-entropy (at most 64; 0 turns it
    /// off): a probe compares them with the probed member's and sends it
    /// those it lacks, so a broadcast that push gossip missed a member with
    /// still reaches it. Ours (memberlist has no anti-entropy for user
    /// broadcasts).
    pub broadcast_keep: usize,
    /// How long each broadcast is kept for anti-entropy, from when this
    /// node first delivered or sent it (0 turns it off). Ours: 60 probe
    /// intervals by default, well past a join's convergence under loss.
    pub broadcast_keep_time: Duration,
    /// Cluster label: datagrams carrying another label are dropped before
    /// decoding (memberlist `Label`). At most 255 bytes. Sealed datagrams
    /// carry it in the clear, authenticated.
    pub label: Bytes,
    /// Sealing of datagrams ([`Encryption`]): `Off` (plaintext) by default.
    /// Any other value needs keys ([`crate::Node::with_keys`]).
    pub encryption: Encryption,
    /// The Lifeguard extensions: local health, nacks, and suspicion timeouts
    /// that shrink with independent confirmations. On by default; off gives
    /// plain SWIM, for comparison.
    pub lifeguard: bool,
    /// Inbound budget of each source address, in units: a datagram costs 1,
    /// 4 if it is a ping request, a digest or a full-state request (each
    /// makes this node send more than one reply; what a transfer sends is
    /// paced by `transfer_rate` instead). A datagram its source cannot pay
    /// for is refused before its checksum or tag is checked, and counted.
    /// The default (1,000 a second, bursts of 4,000) is far above what a
    /// member sends one node, even a full-state transfer of 100,000
    /// members. A rate of 0 turns it off. Ours.
    pub inbound_per_source: Rate,
    /// Inbound budget of the node, all sources together, in the same units:
    /// bounds the work any flood can cause (default 50,000 a second, bursts
    /// of 100,000). A rate of 0 turns it off. Ours.
    pub inbound_total: Rate,
    /// Buckets sources share for `inbound_per_source`, by a keyed hash of
    /// the address (8 bytes each, whatever the number of sources). Ours.
    pub inbound_source_slots: usize,
    /// Pacing of full-state transfers, in bytes: `per_second` sustained,
    /// `burst` at once after a quiet spell (at least `max_datagram_size`).
    /// A transfer's datagrams are written from the member table as they go,
    /// so waiting costs no memory; unpaced, a seed answering a join storm
    /// hands the driver its table once per joiner within milliseconds (175
    /// MB at 5,000 members), more than any socket buffer holds: a
    /// non-blocking driver loses what does not fit, a blocking one stops
    /// reading until it is out. The default, 1,250,000,000 a second (10
    /// Gbit/s) in bursts of 65,536 (under Linux's default socket send
    /// buffer), paces only such storms; set your link's rate. On a slower
    /// link a storm's joiners wait longer for the seed and ask again: in
    /// the simulator 5,000 joiners through one seed converge in 1.0 s at
    /// this default and 3.1 s at 1 Gbit/s. A rate of 0 turns pacing off.
    /// Ours (memberlist sends state over TCP, whose congestion control
    /// paces it).
    pub transfer_rate: Rate,
}

/// A token bucket: refills at `per_second` units a second up to `burst`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Units added per second; 0 turns the bucket off.
    pub per_second: u32,
    /// Most units held (the largest burst accepted after a quiet spell).
    pub burst: u32,
}

impl Config {
    fn base() -> Config {
        Config {
            probe_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_millis(500),
            indirect_checks: 3,
            retransmit_mult: 4,
            suspicion_mult: 4,
            suspicion_max_timeout_mult: 6,
            awareness_max_multiplier: 8,
            gossip_interval: Duration::from_millis(200),
            gossip_nodes: 3,
            push_pull_interval: Duration::from_secs(30),
            tombstone_timeout: Duration::from_secs(300),
            join_retry_interval: Duration::from_secs(1),
            join_retry_max_interval: Duration::from_secs(30),
            max_datagram_size: 1400,
            max_metadata_len: 512,
            max_broadcast_len: 1024,
            max_members: 1 << 20,
            max_tombstones: 1 << 16,
            max_gossip_queue: 4096,
            max_pending_transmits: 4096,
            max_pending_events: 16384,
            max_relays: 256,
            max_push_pull_sends: 32768,
            max_seeds: 64,
            broadcast_dedup_window: 4096,
            broadcast_keep: 32,
            broadcast_keep_time: Duration::from_secs(60),
            label: Bytes::new(),
            encryption: Encryption::Off,
            lifeguard: true,
            inbound_per_source: Rate { per_second: 1_000, burst: 4_000 },
            inbound_total: Rate { per_second: 50_000, burst: 100_000 },
            inbound_source_slots: 256,
            transfer_rate: Rate { per_second: 1_250_000_000, burst: 65_536 },
        }
    }

    /// A local-area network: memberlist `DefaultLANConfig` (1 s probe
    /// interval, 500 ms probe timeout, 3 indirect checks, retransmit mult 4,
    /// suspicion mult 4, max timeout mult 6, gossip to 3 every 200 ms,
    /// push-pull every 30 s, 1400-byte datagrams).
    pub fn lan() -> Config {
        Config::base()
    }

    /// A wide-area network: memberlist `DefaultWANConfig` (5 s probe interval,
    /// 3 s probe timeout, suspicion mult 6, gossip to 4 every 500 ms,
    /// push-pull every 60 s).
    pub fn wan() -> Config {
        Config {
            probe_interval: Duration::from_secs(5),
            probe_timeout: Duration::from_secs(3),
            suspicion_mult: 6,
            gossip_interval: Duration::from_millis(500),
            gossip_nodes: 4,
            push_pull_interval: Duration::from_secs(60),
            tombstone_timeout: Duration::from_secs(600),
            broadcast_keep_time: Duration::from_secs(300),
            ..Config::base()
        }
    }

    /// One host or loopback: memberlist `DefaultLocalConfig` (1 s probe
    /// interval, 200 ms probe timeout, 1 indirect check, retransmit mult 2,
    /// suspicion mult 3, gossip every 100 ms, push-pull every 15 s).
    pub fn local() -> Config {
        Config {
            probe_timeout: Duration::from_millis(200),
            indirect_checks: 1,
            retransmit_mult: 2,
            suspicion_mult: 3,
            gossip_interval: Duration::from_millis(100),
            push_pull_interval: Duration::from_secs(15),
            tombstone_timeout: Duration::from_secs(60),
            join_retry_interval: Duration::from_millis(200),
            join_retry_max_interval: Duration::from_secs(5),
            ..Config::base()
        }
    }

    /// The shortest suspicion timeout with `live_members` in the cluster:
    /// memberlist's `suspicionTimeout`, `suspicion_mult * max(1,
    /// log10(n)) * probe_interval`, with the log to the thousandth exactly
    /// as memberlist truncates it (12 s at 1,000 LAN members, 11.98 s at
    /// 990, 6.792 s at 50). With Lifeguard a suspicion starts at
    /// `suspicion_max_timeout_mult` times this and shrinks towards it.
    pub fn suspicion_timeout(&self, live_members: u32) -> Duration {
        crate::suspicion::suspicion_timeout(self.suspicion_mult, live_members, self.probe_interval)
    }

    /// Check that the settings can work together; the error names the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        use Problem::*;
        let err = |field, problem| Err(ConfigError { field, problem });
        let durations = [
            ("probe_interval", self.probe_interval),
            ("probe_timeout", self.probe_timeout),
            ("gossip_interval", self.gossip_interval),
            ("tombstone_timeout", self.tombstone_timeout),
            ("join_retry_interval", self.join_retry_interval),
        ];
        for (field, d) in durations {
            if d.is_zero() {
                return err(field, MustBePositive);
            }
        }
        if self.probe_timeout >= self.probe_interval {
            return err("probe_timeout", MustBeBelow("probe_interval"));
        }
        if self.join_retry_max_interval < self.join_retry_interval {
            return err("join_retry_max_interval", MustNotBeBelow("join_retry_interval"));
        }
        let counts = [
            ("retransmit_mult", self.retransmit_mult as usize),
            ("suspicion_mult", self.suspicion_mult as usize),
            ("suspicion_max_timeout_mult", self.suspicion_max_timeout_mult as usize),
            ("awareness_max_multiplier", self.awareness_max_multiplier as usize),
            ("gossip_nodes", self.gossip_nodes as usize),
            ("max_members", self.max_members),
            ("max_tombstones", self.max_tombstones),
            ("max_gossip_queue", self.max_gossip_queue),
            ("max_pending_transmits", self.max_pending_transmits),
            ("max_pending_events", self.max_pending_events),
            ("max_relays", self.max_relays),
            ("max_push_pull_sends", self.max_push_pull_sends),
            ("max_seeds", self.max_seeds),
            ("broadcast_dedup_window", self.broadcast_dedup_window),
        ];
        for (field, n) in counts {
            if n == 0 {
                return err(field, MustBePositive);
            }
        }
        for (field, rate) in
            [("inbound_per_source.burst", self.inbound_per_source), ("inbound_total.burst", self.inbound_total)]
        {
            if rate.per_second != 0 && rate.burst < crate::budget::MOST_COSTLY_DATAGRAM {
                return err(field, AtLeast(crate::budget::MOST_COSTLY_DATAGRAM as usize));
            }
        }
        if self.transfer_rate.per_second != 0 && (self.transfer_rate.burst as usize) < self.max_datagram_size {
            return err("transfer_rate.burst", MustNotBeBelow("max_datagram_size"));
        }
        if self.inbound_source_slots == 0 {
            return err("inbound_source_slots", MustBePositive);
        }
        if self.inbound_source_slots > 1 << 16 {
            return err("inbound_source_slots", AtMost(1 << 16));
        }
        if self.indirect_checks > 16 {
            return err("indirect_checks", AtMost(16));
        }
        if self.gossip_nodes > 16 {
            return err("gossip_nodes", AtMost(16));
        }
        if self.awareness_max_multiplier > 64 {
            return err("awareness_max_multiplier", AtMost(64));
        }
        if self.broadcast_keep > crate::wire::MAX_HELD {
            return err("broadcast_keep", AtMost(crate::wire::MAX_HELD));
        }
        if self.broadcast_dedup_window < self.broadcast_keep {
            return err("broadcast_dedup_window", MustNotBeBelow("broadcast_keep"));
        }
        if self.label.len() > MAX_LABEL_LEN {
            return err("label", AtMost(MAX_LABEL_LEN));
        }
        if self.max_datagram_size < MIN_DATAGRAM_SIZE {
            return err("max_datagram_size", AtLeast(MIN_DATAGRAM_SIZE));
        }
        if self.max_datagram_size > MAX_DATAGRAM_SIZE {
            return err("max_datagram_size", AtMost(MAX_DATAGRAM_SIZE));
        }
        // The largest single update (an Alive with full metadata, or a
        // broadcast) must fit one datagram beside a primary message,
        // otherwise it could never be sent.
        let sealing = if self.encryption == Encryption::Off { 0 } else { crate::seal::SEAL_OVERHEAD };
        let room = self
            .max_datagram_size
            .saturating_sub(crate::wire::frame_overhead(&self.label) + sealing + WORST_CASE_PRIMARY);
        if self.max_metadata_len + WORST_CASE_UPDATE_OVERHEAD > room {
            return err("max_metadata_len", DoesNotFit("max_datagram_size"));
        }
        if self.max_broadcast_len + WORST_CASE_UPDATE_OVERHEAD > room {
            return err("max_broadcast_len", DoesNotFit("max_datagram_size"));
        }
        Ok(())
    }
}

/// Version of [`Config::encode`]'s layout: bumped whenever a field is added,
/// removed or reordered.
pub const CONFIG_ENCODING_VERSION: u8 = 3;

impl Config {
    /// A canonical encoding of every field, for logs that must rebuild the
    /// node exactly (a recording's header): the layout version, then each
    /// field in declaration order: durations as varint nanoseconds, counts
    /// as varints, the label with a varint length, `encryption` as a byte
    /// (0 off, 1 accept, 2 seal, 3 require), `lifeguard` as 0 or 1, each
    /// [`Rate`] as two varints (per second, burst).
    pub fn encode(&self, w: &mut Writer<'_>) -> Result<(), NoRoom> {
        w.u8(CONFIG_ENCODING_VERSION)?;
        w.varint(crate::time::duration_nanos(self.probe_interval))?;
        w.varint(crate::time::duration_nanos(self.probe_timeout))?;
        w.varint(u64::from(self.indirect_checks))?;
        w.varint(u64::from(self.retransmit_mult))?;
        w.varint(u64::from(self.suspicion_mult))?;
        w.varint(u64::from(self.suspicion_max_timeout_mult))?;
        w.varint(u64::from(self.awareness_max_multiplier))?;
        w.varint(crate::time::duration_nanos(self.gossip_interval))?;
        w.varint(u64::from(self.gossip_nodes))?;
        w.varint(crate::time::duration_nanos(self.push_pull_interval))?;
        w.varint(crate::time::duration_nanos(self.tombstone_timeout))?;
        w.varint(crate::time::duration_nanos(self.join_retry_interval))?;
        w.varint(crate::time::duration_nanos(self.join_retry_max_interval))?;
        w.varint(self.max_datagram_size as u64)?;
        w.varint(self.max_metadata_len as u64)?;
        w.varint(self.max_broadcast_len as u64)?;
        w.varint(self.max_members as u64)?;
        w.varint(self.max_tombstones as u64)?;
        w.varint(self.max_gossip_queue as u64)?;
        w.varint(self.max_pending_transmits as u64)?;
        w.varint(self.max_pending_events as u64)?;
        w.varint(self.max_relays as u64)?;
        w.varint(self.max_push_pull_sends as u64)?;
        w.varint(self.max_seeds as u64)?;
        w.varint(self.broadcast_dedup_window as u64)?;
        w.varint(self.broadcast_keep as u64)?;
        w.varint(crate::time::duration_nanos(self.broadcast_keep_time))?;
        w.bytes_with_len(&self.label)?;
        w.u8(self.encryption as u8)?;
        w.u8(u8::from(self.lifeguard))?;
        w.varint(u64::from(self.inbound_per_source.per_second))?;
        w.varint(u64::from(self.inbound_per_source.burst))?;
        w.varint(u64::from(self.inbound_total.per_second))?;
        w.varint(u64::from(self.inbound_total.burst))?;
        w.varint(self.inbound_source_slots as u64)?;
        w.varint(u64::from(self.transfer_rate.per_second))?;
        w.varint(u64::from(self.transfer_rate.burst))?;
        Ok(())
    }

    /// Read [`Config::encode`]'s form. The result is not validated: call
    /// [`Config::validate`] (a node does when built).
    pub fn decode(r: &mut Reader<'_>) -> Result<Config, DecodeError> {
        let version = r.u8()?;
        if !(2..=CONFIG_ENCODING_VERSION).contains(&version) {
            return Err(DecodeError::BadValue);
        }
        Ok(Config {
            probe_interval: Duration::from_nanos(r.varint()?),
            probe_timeout: Duration::from_nanos(r.varint()?),
            indirect_checks: r.varint_u32()?,
            retransmit_mult: r.varint_u32()?,
            suspicion_mult: r.varint_u32()?,
            suspicion_max_timeout_mult: r.varint_u32()?,
            awareness_max_multiplier: r.varint_u32()?,
            gossip_interval: Duration::from_nanos(r.varint()?),
            gossip_nodes: r.varint_u32()?,
            push_pull_interval: Duration::from_nanos(r.varint()?),
            tombstone_timeout: Duration::from_nanos(r.varint()?),
            join_retry_interval: Duration::from_nanos(r.varint()?),
            join_retry_max_interval: Duration::from_nanos(r.varint()?),
            max_datagram_size: usize::try_from(r.varint()?).map_err(|_| DecodeError::VarintOverflow)?,
            max_metadata_len: usize::try_from(r.varint()?).map_err(|_| DecodeError::VarintOverflow)?,
            max_broadcast_len: usize::try_from(r.varint()?).map_err(|_| DecodeError::VarintOverflow)?,
            max_members: usize::try_from(r.varint()?).map_err(|_| DecodeError::VarintOverflow)?,
            max_tombstones: usize::try_from(r.varint()?).map_err(|_| DecodeError::VarintOverflow)?,
            max_gossip_queue: usize::try_from(r.varint()?).map_err(|_| DecodeError::VarintOverflow)?,
            max_pending_transmits: usize::try_from(r.varint()?).map_err(|_| DecodeError::VarintOverflow)?,
            max_pending_events: usize::try_from(r.varint()?).map_err(|_| DecodeError::VarintOverflow)?,
            max_relays: usize::try_from(r.varint()?).map_err(|_| DecodeError::VarintOverflow)?,
            max_push_pull_sends: usize::try_from(r.varint()?).map_err(|_| DecodeError::VarintOverflow)?,
            max_seeds: usize::try_from(r.varint()?).map_err(|_| DecodeError::VarintOverflow)?,
            broadcast_dedup_window: usize::try_from(r.varint()?).map_err(|_| DecodeError::VarintOverflow)?,
            broadcast_keep: usize::try_from(r.varint()?).map_err(|_| DecodeError::VarintOverflow)?,
            broadcast_keep_time: Duration::from_nanos(r.varint()?),
            label: Bytes::copy_from_slice(r.bytes_with_len(MAX_LABEL_LEN)?),
            encryption: match r.u8()? {
                0 => Encryption::Off,
                1 => Encryption::Accept,
                2 => Encryption::Seal,
                3 => Encryption::Require,
                _ => return Err(DecodeError::BadValue),
            },
            lifeguard: match r.u8()? {
                0 => false,
                1 => true,
                _ => return Err(DecodeError::BadValue),
            },
            inbound_per_source: Rate { per_second: r.varint_u32()?, burst: r.varint_u32()? },
            inbound_total: Rate { per_second: r.varint_u32()?, burst: r.varint_u32()? },
            inbound_source_slots: usize::try_from(r.varint()?).map_err(|_| DecodeError::VarintOverflow)?,
            transfer_rate: if version >= 3 {
                Rate { per_second: r.varint_u32()?, burst: r.varint_u32()? }
            } else {
                // Version 2 predates pacing: its nodes sent transfers unpaced.
                Rate { per_second: 0, burst: 0 }
            },
        })
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::lan()
    }
}

/// Smallest `max_datagram_size` accepted: room for a header, a primary
/// message and a few updates.
pub const MIN_DATAGRAM_SIZE: usize = 256;
/// Largest `max_datagram_size` accepted: a UDP payload over IPv4.
pub const MAX_DATAGRAM_SIZE: usize = 65_507;
/// Bytes a primary message can take (a ping request to an IPv6 target).
const WORST_CASE_PRIMARY: usize = 1 + 5 + 19 + 1;
/// Bytes an update adds around its metadata or payload (tag, IPv6 address,
/// incarnation, instance, length prefix; or tag, id, length prefix).
const WORST_CASE_UPDATE_OVERHEAD: usize = 1 + 19 + 5 + 4 + 5;

/// A setting that cannot work, naming the field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The field, as named in [`Config`] (and in the agent's config file).
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: Problem,
}

/// What is wrong with a setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    /// Zero where only a positive value works.
    MustBePositive,
    /// Must be strictly below the named field.
    MustBeBelow(&'static str),
    /// Must not be below the named field.
    MustNotBeBelow(&'static str),
    /// Larger than the bound given.
    AtMost(usize),
    /// Smaller than the bound given.
    AtLeast(usize),
    /// Too large to fit in the named field's budget.
    DoesNotFit(&'static str),
    /// Needs encryption keys ([`crate::Node::with_keys`]).
    NeedsKeys,
    /// Keys were given but encryption is `off`.
    KeysWithoutEncryption,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.field)?;
        match self.problem {
            Problem::MustBePositive => f.write_str("must be greater than zero"),
            Problem::MustBeBelow(other) => write!(f, "must be less than {other}"),
            Problem::MustNotBeBelow(other) => write!(f, "must not be less than {other}"),
            Problem::AtMost(n) => write!(f, "must be at most {n}"),
            Problem::AtLeast(n) => write!(f, "must be at least {n}"),
            Problem::DoesNotFit(other) => write!(f, "too large to fit in one datagram of {other}"),
            Problem::NeedsKeys => f.write_str("accept, seal and require need at least one key"),
            Problem::KeysWithoutEncryption => {
                f.write_str("keys were given but encryption is off: set it to accept, seal or require")
            }
        }
    }
}

impl core::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(c: &Config) -> ([u8; 512], usize) {
        let mut buf = [0u8; 512];
        let mut w = Writer::new(&mut buf);
        c.encode(&mut w).unwrap();
        let n = w.len();
        (buf, n)
    }

    #[test]
    fn the_canonical_encoding_round_trips_and_refuses_what_is_not_it() {
        let mut custom = Config::wan();
        custom.label = Bytes::from_static(b"prod-eu");
        custom.encryption = Encryption::Seal;
        custom.lifeguard = false;
        custom.inbound_total = Rate { per_second: 7, burst: 99 };
        custom.transfer_rate = Rate { per_second: 1_000_000, burst: 3_000 };
        for c in [Config::lan(), Config::local(), custom] {
            let (buf, n) = encoded(&c);
            let mut r = Reader::new(&buf[..n]);
            assert_eq!(Config::decode(&mut r).unwrap(), c);
            assert!(r.is_empty());
            for cut in 0..n {
                assert!(Config::decode(&mut Reader::new(&buf[..cut])).is_err(), "cut at {cut} decoded");
            }
            let mut other = buf;
            other[0] = CONFIG_ENCODING_VERSION + 1;
            assert!(Config::decode(&mut Reader::new(&other[..n])).is_err());
        }
    }

    #[test]
    fn a_version_2_encoding_is_read_as_unpaced() {
        // Version 2 ended at inbound_source_slots: a recording made before
        // pacing replays with the transfers its node sent unpaced.
        let c = Config::lan();
        let (buf, n) = encoded(&c);
        let tail = {
            let mut t = [0u8; 16];
            let mut w = Writer::new(&mut t);
            w.varint(u64::from(c.transfer_rate.per_second)).unwrap();
            w.varint(u64::from(c.transfer_rate.burst)).unwrap();
            w.len()
        };
        let mut old = buf;
        old[0] = 2;
        let mut r = Reader::new(&old[..n - tail]);
        let decoded = Config::decode(&mut r).unwrap();
        assert!(r.is_empty());
        assert_eq!(decoded, Config { transfer_rate: Rate { per_second: 0, burst: 0 }, ..c });
        old[0] = 1;
        assert!(Config::decode(&mut Reader::new(&old[..n - tail])).is_err());
    }

    /// One preset's protocol values, in memberlist's terms.
    #[derive(Debug, PartialEq, Eq)]
    struct Preset {
        probe_interval_ms: u128,
        probe_timeout_ms: u128,
        indirect_checks: u32,
        retransmit_mult: u32,
        suspicion_mult: u32,
        suspicion_max_timeout_mult: u32,
        awareness_max_multiplier: u32,
        gossip_nodes: u32,
        gossip_interval_ms: u128,
        push_pull_interval_ms: u128,
        udp_buffer_size: usize,
    }

    fn preset(c: &Config) -> Preset {
        Preset {
            probe_interval_ms: c.probe_interval.as_millis(),
            probe_timeout_ms: c.probe_timeout.as_millis(),
            indirect_checks: c.indirect_checks,
            retransmit_mult: c.retransmit_mult,
            suspicion_mult: c.suspicion_mult,
            suspicion_max_timeout_mult: c.suspicion_max_timeout_mult,
            awareness_max_multiplier: c.awareness_max_multiplier,
            gossip_nodes: c.gossip_nodes,
            gossip_interval_ms: c.gossip_interval.as_millis(),
            push_pull_interval_ms: c.push_pull_interval.as_millis(),
            udp_buffer_size: c.max_datagram_size,
        }
    }

    /// The values of memberlist's `DefaultLANConfig`, `DefaultWANConfig`
    /// (LAN with TCPTimeout, SuspicionMult 6, PushPullInterval 60 s,
    /// ProbeTimeout 3 s, ProbeInterval 5 s, GossipNodes 4, GossipInterval
    /// 500 ms) and `DefaultLocalConfig` (LAN with IndirectChecks 1,
    /// RetransmitMult 2, SuspicionMult 3, PushPullInterval 15 s,
    /// ProbeTimeout 200 ms, GossipInterval 100 ms), read from its config.go.
    /// Settings memberlist has and swim-core does not (TCP timeouts, gossip
    /// to the dead, compression) are not compared.
    #[test]
    fn the_presets_are_memberlists() {
        let lan = Preset {
            probe_interval_ms: 1_000,
            probe_timeout_ms: 500,
            indirect_checks: 3,
            retransmit_mult: 4,
            suspicion_mult: 4,
            suspicion_max_timeout_mult: 6,
            awareness_max_multiplier: 8,
            gossip_nodes: 3,
            gossip_interval_ms: 200,
            push_pull_interval_ms: 30_000,
            udp_buffer_size: 1_400,
        };
        let wan = Preset {
            probe_interval_ms: 5_000,
            probe_timeout_ms: 3_000,
            suspicion_mult: 6,
            gossip_nodes: 4,
            gossip_interval_ms: 500,
            push_pull_interval_ms: 60_000,
            ..preset(&Config::lan())
        };
        let local = Preset {
            indirect_checks: 1,
            retransmit_mult: 2,
            suspicion_mult: 3,
            probe_timeout_ms: 200,
            gossip_interval_ms: 100,
            push_pull_interval_ms: 15_000,
            ..preset(&Config::lan())
        };
        assert_eq!(preset(&Config::lan()), lan);
        assert_eq!(preset(&Config::wan()), wan);
        assert_eq!(preset(&Config::local()), local);
    }

    #[test]
    fn every_preset_is_valid() {
        for c in [Config::lan(), Config::wan(), Config::local()] {
            c.validate().unwrap();
        }
    }

    #[test]
    fn nonsense_is_rejected_with_the_field_named() {
        let mut c = Config::lan();
        c.probe_interval = Duration::ZERO;
        assert_eq!(c.validate().unwrap_err().field, "probe_interval");

        let mut c = Config::lan();
        c.probe_timeout = c.probe_interval;
        let e = c.validate().unwrap_err();
        assert_eq!(e, ConfigError { field: "probe_timeout", problem: Problem::MustBeBelow("probe_interval") });
        assert_eq!(e.to_string(), "probe_timeout: must be less than probe_interval");

        let mut c = Config::lan();
        c.max_members = 0;
        assert_eq!(c.validate().unwrap_err().field, "max_members");

        let mut c = Config::lan();
        c.max_metadata_len = 1400;
        assert_eq!(c.validate().unwrap_err().field, "max_metadata_len");

        let mut c = Config::lan();
        c.label = Bytes::from(vec![b'x'; 256]);
        assert_eq!(c.validate().unwrap_err().field, "label");

        // A pacing burst below one datagram would never let one go.
        let mut c = Config::lan();
        c.transfer_rate.burst = 1_399;
        let e = c.validate().unwrap_err();
        assert_eq!(e.to_string(), "transfer_rate.burst: must not be less than max_datagram_size");
        c.transfer_rate.per_second = 0;
        assert!(c.validate().is_ok(), "no pacing, no burst needed");
    }
}
