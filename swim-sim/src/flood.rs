//! The flood (`--flood COUNT@START..END`): outsiders, addresses that are
//! not members of the cluster, send random members a mix of valid-looking
//! and garbage datagrams, so a run shows whether anything an outsider can
//! send hurts the cluster.
//!
//! Outsiders have the node ids just above every id the run can start
//! (initial nodes and late joiners), so no member has or learns them. Each
//! sends at [`FLOOD_MULTIPLE`] times a member's normal rate, evenly spaced
//! from a random phase; every datagram goes to a member drawn uniformly
//! from the ids started so far (crashed ones included, as an attacker's
//! list would) through the same simulated network as members' datagrams
//! (latency, loss, duplication, partitions, clogs). Every choice comes from
//! the run's flood stream, so a flood repeats exactly for a seed.
//!
//! What they send ([`FloodKind`]): Pings, Acks of nothing, ping requests
//! naming members and naming non-members, Digests of random bucket
//! hashes, bare PushPull join requests (asking for the whole table), the
//! 600-Ping datagram, datagrams with two primary messages; random bytes,
//! truncated frames, frames with a bad checksum or another cluster's
//! label. When the nodes hold keys, also forged claims sealed under a
//! wrong key, the same with the cluster key's id and a tag that cannot
//! verify, and replays of sealed datagrams captured from members (to
//! their receiver, and to another member).
//!
//! In plaintext no forged claim (Suspect, Dead or Alive about a member,
//! or an Alive about the outsider itself, which is a join) is sent:
//! without keys nothing can tell a forged claim from a true one, so an
//! outsider that makes them can always hurt the cluster. The flood shows
//! that nothing else an outsider sends can.

use std::collections::VecDeque;
use std::time::Duration;

use rand_core::RngCore as _;
use serde::ser::{SerializeMap, Serializer};
use swim_core::seal::{seal_datagram, KeyId, NONCE_LEN};
use swim_core::wire::{self, Message, Update, Writer};
use swim_core::{Address, Config, Instant, Key, NodeId, State};

use crate::seed::{self, below, SimRng, Stream};
use crate::spec::FloodSpec;

/// How many times a member's normal send rate each outsider sends at.
pub const FLOOD_MULTIPLE: u32 = 10;

/// A member's normal send rate, in datagrams per probe interval: the Ping
/// of its own probe and the Ack to the one probe of it that it receives on
/// average (every member probes one member per interval). That is the
/// steady figure measured: 2.00 to 2.02 datagrams per node per period.
/// Gossip rounds and push-pulls come on top only while there is news, and
/// are left out.
pub const NORMAL_PER_PROBE_INTERVAL: u32 = 2;

/// Sealed member datagrams kept for replays.
const CAPTURED: usize = 64;

/// The label of the wrong-cluster datagrams.
const OTHER_LABEL: &[u8] = b"another-cluster";

/// One kind of flood datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloodKind {
    /// A Ping: asks for an Ack.
    Ping,
    /// An Ack or a Nack of a random sequence: answers nothing.
    Ack,
    /// A ping request naming a random member.
    PingReqMember,
    /// A ping request naming an address that is not a member.
    PingReqStranger,
    /// A Digest of random bucket hashes, asking for a reply.
    Digest,
    /// A bare PushPull join request: asks for the whole table.
    PushPullJoin,
    /// 600 Pings in one datagram.
    ManyPings,
    /// A Ping followed by a ping request: two primary messages.
    TwoPrimaries,
    /// Random bytes of random length.
    RandomBytes,
    /// A valid Ping frame cut short.
    Truncated,
    /// A valid Ping frame with one checksum bit flipped.
    BadChecksum,
    /// A valid Ping frame under another cluster's label.
    WrongLabel,
    /// Sealed runs: a forged Dead about a member, sealed under a key the
    /// cluster does not hold.
    WrongKey,
    /// Sealed runs: the same, carrying the cluster key's id (key ids are
    /// sent in the clear), so the tag does not verify.
    ForgedTag,
    /// Sealed runs: a captured member datagram sent again to its receiver.
    Replay,
    /// Sealed runs: a captured member datagram sent to another member.
    ReplayElsewhere,
}

impl FloodKind {
    /// Every kind, in the order the report lists them.
    pub const ALL: [FloodKind; 16] = [
        FloodKind::Ping,
        FloodKind::Ack,
        FloodKind::PingReqMember,
        FloodKind::PingReqStranger,
        FloodKind::Digest,
        FloodKind::PushPullJoin,
        FloodKind::ManyPings,
        FloodKind::TwoPrimaries,
        FloodKind::RandomBytes,
        FloodKind::Truncated,
        FloodKind::BadChecksum,
        FloodKind::WrongLabel,
        FloodKind::WrongKey,
        FloodKind::ForgedTag,
        FloodKind::Replay,
        FloodKind::ReplayElsewhere,
    ];

    /// Kinds sent in every run: the plaintext ones.
    const PLAINTEXT: usize = 12;

    /// The name the report uses.
    pub fn name(self) -> &'static str {
        match self {
            FloodKind::Ping => "ping",
            FloodKind::Ack => "ack",
            FloodKind::PingReqMember => "ping_req_member",
            FloodKind::PingReqStranger => "ping_req_stranger",
            FloodKind::Digest => "digest",
            FloodKind::PushPullJoin => "push_pull_join",
            FloodKind::ManyPings => "many_pings",
            FloodKind::TwoPrimaries => "two_primaries",
            FloodKind::RandomBytes => "random_bytes",
            FloodKind::Truncated => "truncated",
            FloodKind::BadChecksum => "bad_checksum",
            FloodKind::WrongLabel => "wrong_label",
            FloodKind::WrongKey => "wrong_key",
            FloodKind::ForgedTag => "forged_tag",
            FloodKind::Replay => "replay",
            FloodKind::ReplayElsewhere => "replay_elsewhere",
        }
    }
}

/// What a flood sent and what came back. Field names are the JSON report's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct FloodStats {
    /// Datagrams the outsiders sent.
    pub sent: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Of those, handed to a running member.
    pub delivered: u64,
    /// Of those, accepted by the member (not refused): valid-looking
    /// plaintext where plaintext is accepted, and sealed datagrams the
    /// member had not seen (a replay of a datagram sent to another member).
    pub accepted: u64,
    /// Lost at the network's loss rate.
    pub lost: u64,
    /// Cut off by a partition or a clog.
    pub cut: u64,
    /// Addressed to a member that was not running.
    pub undeliverable: u64,
    /// Sent, by kind (in the order of [`FloodKind::ALL`]; an object keyed
    /// by kind name in JSON).
    #[serde(serialize_with = "by_kind_names")]
    pub by_kind: [u64; FloodKind::ALL.len()],
    /// Datagrams members sent to outsiders (answers: acks, full-state
    /// transfers...): what the flood got back.
    pub replies: u64,
    /// Their bytes.
    pub reply_bytes: u64,
}

impl FloodStats {
    /// How many of one kind were sent.
    pub fn sent_of(&self, kind: FloodKind) -> u64 {
        FloodKind::ALL.iter().position(|k| *k == kind).map_or(0, |i| self.by_kind[i])
    }
}

/// Counts by kind as a JSON object keyed by kind name.
fn by_kind_names<S: Serializer>(counts: &[u64; FloodKind::ALL.len()], s: S) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(FloodKind::ALL.len()))?;
    for (kind, n) in FloodKind::ALL.iter().zip(counts) {
        map.serialize_entry(kind.name(), n)?;
    }
    map.end()
}

/// The flooding outsiders of a run.
#[derive(Debug)]
pub struct Flood {
    spec: FloodSpec,
    first: u32,
    interval: Duration,
    rng: SimRng,
    label: Vec<u8>,
    max_len: usize,
    sealed: bool,
    wrong_key: Key,
    cluster_key: KeyId,
    captured: VecDeque<(u32, Vec<u8>)>,
    scratch: Vec<u8>,
    /// What was sent and what came back.
    pub stats: FloodStats,
}

impl Flood {
    /// The flood `spec` asks for, its outsiders numbered from `first`,
    /// against nodes running `config` (sealed ones holding `cluster_key`),
    /// its draws from `seed`'s flood stream.
    pub fn new(spec: FloodSpec, first: u32, config: &Config, seed: u64, cluster_key: &Key) -> Self {
        let mut rng = seed::rng(seed, Stream::Flood);
        let mut wrong = [0u8; 32];
        rng.fill_bytes(&mut wrong);
        let per_second = f64::from(FLOOD_MULTIPLE * NORMAL_PER_PROBE_INTERVAL);
        Flood {
            spec,
            first,
            interval: config.probe_interval.div_f64(per_second).max(Duration::from_micros(1)),
            rng,
            label: config.label.to_vec(),
            max_len: config.max_datagram_size,
            sealed: config.encryption != swim_core::Encryption::Off,
            wrong_key: Key::from_bytes(wrong),
            cluster_key: cluster_key.id(),
            captured: VecDeque::with_capacity(CAPTURED),
            scratch: vec![0; config.max_datagram_size],
            stats: FloodStats::default(),
        }
    }

    /// The flood's parameters.
    pub fn spec(&self) -> &FloodSpec {
        &self.spec
    }

    /// Time between two datagrams of one outsider.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Datagrams per second each outsider sends.
    pub fn rate(&self) -> f64 {
        1.0 / self.interval.as_secs_f64()
    }

    /// The outsiders' ids.
    pub fn outsiders(&self) -> std::ops::Range<u32> {
        self.first..self.first.saturating_add(self.spec.count)
    }

    /// Whether `id` is one of the outsiders.
    pub fn is_outsider(&self, id: u32) -> bool {
        self.outsiders().contains(&id)
    }

    /// When each outsider sends first: a random phase within one interval
    /// after the start.
    pub fn first_sends(&mut self) -> Vec<(Instant, u32)> {
        let span = u64::try_from(self.interval.as_nanos()).unwrap_or(u64::MAX);
        self.outsiders()
            .map(|id| (Instant::ZERO + self.spec.start + Duration::from_nanos(below(&mut self.rng, span)), id))
            .collect()
    }

    /// When an outsider that sent at `at` sends next, if before the end.
    pub fn next_send(&self, at: Instant) -> Option<Instant> {
        let next = at + self.interval;
        (next < Instant::ZERO + self.spec.end).then_some(next)
    }

    /// Remember a sealed datagram a member accepted from member `from`
    /// (now at `to`), for replays: only in sealed runs, only while the
    /// flood is on.
    pub fn capture(&mut self, now: Instant, to: u32, datagram: &[u8]) {
        let on = now >= Instant::ZERO + self.spec.start && now < Instant::ZERO + self.spec.end;
        if !self.sealed || !on || datagram.first() != Some(&swim_core::seal::SEALED_VERSION) {
            return;
        }
        let mut slot = if self.captured.len() >= CAPTURED {
            self.captured.pop_front().map(|(_, b)| b).unwrap_or_default()
        } else {
            Vec::new()
        };
        slot.clear();
        slot.extend_from_slice(datagram);
        self.captured.push_back((to, slot));
    }

    /// One outsider's next datagram, written into `out`, to a member drawn
    /// among the ids `0..members`; returns the member, and counts the kind.
    pub fn datagram(&mut self, members: u32, out: &mut Vec<u8>) -> Option<u32> {
        if members == 0 {
            return None;
        }
        let kinds = if self.sealed { FloodKind::ALL.len() } else { FloodKind::PLAINTEXT };
        let i = below(&mut self.rng, kinds as u64) as usize;
        let kind = FloodKind::ALL[i];
        let mut to = below(&mut self.rng, u64::from(members)) as u32;
        out.clear();
        out.resize(self.max_len, 0);
        let len = match kind {
            FloodKind::Replay | FloodKind::ReplayElsewhere if !self.captured.is_empty() => {
                let k = below(&mut self.rng, self.captured.len() as u64) as usize;
                let (receiver, bytes) = &self.captured[k];
                if kind == FloodKind::Replay {
                    to = *receiver;
                } else if to == *receiver {
                    to = (to + 1) % members;
                }
                out[..bytes.len()].copy_from_slice(bytes);
                Some(bytes.len())
            }
            // Nothing captured yet: a forged claim under a wrong key instead.
            FloodKind::Replay | FloodKind::ReplayElsewhere => self.forged(to, members, out, false),
            FloodKind::WrongKey => self.forged(to, members, out, false),
            FloodKind::ForgedTag => self.forged(to, members, out, true),
            _ => self.plaintext(kind, to, members, out),
        };
        let len = len?;
        out.truncate(len);
        self.stats.by_kind[i] += 1;
        Some(to)
    }

    fn seq(&mut self) -> u32 {
        self.rng.next_u32()
    }

    fn plaintext(&mut self, kind: FloodKind, to: u32, members: u32, out: &mut [u8]) -> Option<usize> {
        let label = self.label.clone();
        let ping = |seq| -> Message<'static, NodeId> { Message::Ping { seq } };
        let frame =
            |out: &mut [u8], label: &[u8], msgs: &[Message<'_, NodeId>]| wire::encode_datagram(out, label, msgs).ok();
        match kind {
            FloodKind::Ping => frame(out, &label, &[ping(self.seq())]),
            FloodKind::Ack => {
                let seq = self.seq();
                let m = if seq % 2 == 0 { Message::Ack { seq } } else { Message::Nack { seq } };
                frame(out, &label, &[m])
            }
            FloodKind::PingReqMember | FloodKind::PingReqStranger | FloodKind::TwoPrimaries => {
                let target = if kind == FloodKind::PingReqStranger {
                    // Above every member and every outsider.
                    NodeId(self.outsiders().end.saturating_add(self.rng.next_u32() % 1_000_000))
                } else {
                    NodeId((to + 1 + below(&mut self.rng, u64::from(members.max(2) - 1)) as u32) % members)
                };
                let req = Message::PingReq { seq: self.seq(), target, want_nack: self.seq() % 2 == 0 };
                if kind == FloodKind::TwoPrimaries {
                    frame(out, &label, &[ping(self.seq()), req])
                } else {
                    frame(out, &label, &[req])
                }
            }
            FloodKind::Digest => {
                let log2 = below(&mut self.rng, 5) as usize;
                let mut hashes = vec![0u8; 4 << log2];
                self.rng.fill_bytes(&mut hashes);
                let digest = Message::Digest { reply_wanted: true, exchange: self.seq(), hashes: &hashes };
                frame(out, &label, &[digest])
            }
            FloodKind::PushPullJoin => {
                frame(out, &label, &[Message::PushPull { reply_wanted: true, join: true, exchange: self.seq() }])
            }
            FloodKind::ManyPings => {
                // Sequences below 128 take one byte: 600 Pings fit in 1,200 bytes.
                let pings: Vec<Message<'_, NodeId>> = (0..600).map(|_| ping(self.seq() % 128)).collect();
                frame(out, &label, &pings)
            }
            FloodKind::RandomBytes => {
                let len = 1 + below(&mut self.rng, out.len() as u64) as usize;
                self.rng.fill_bytes(&mut out[..len]);
                Some(len)
            }
            FloodKind::Truncated => {
                let len = frame(out, &label, &[ping(self.seq())])?;
                Some(below(&mut self.rng, len as u64) as usize)
            }
            FloodKind::BadChecksum => {
                let len = frame(out, &label, &[ping(self.seq())])?;
                out[len - 1 - below(&mut self.rng, 4) as usize] ^= 1 << below(&mut self.rng, 8);
                Some(len)
            }
            FloodKind::WrongLabel => frame(out, OTHER_LABEL, &[ping(self.seq())]),
            FloodKind::WrongKey | FloodKind::ForgedTag | FloodKind::Replay | FloodKind::ReplayElsewhere => None,
        }
    }

    /// A forged Dead about a random member (not `to`), sealed under the
    /// wrong key; with `cluster_id`, relabelled with the cluster key's id.
    fn forged(&mut self, to: u32, members: u32, out: &mut [u8], cluster_id: bool) -> Option<usize> {
        let victim = (to + 1 + below(&mut self.rng, u64::from(members.max(2) - 1)) as u32) % members.max(1);
        let dead = Message::Update(Update {
            member: NodeId(victim),
            state: State::Dead,
            incarnation: self.rng.next_u32(),
            instance: 0,
            meta: &[],
            accuser: Some(NodeId(self.first)),
        });
        let mut w = Writer::new(&mut self.scratch);
        dead.encode(&mut w).ok()?;
        let body_len = w.len();
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill_bytes(&mut nonce);
        let (sender, counter) = (self.rng.next_u64(), 1 + u64::from(self.rng.next_u32()));
        let body = &self.scratch[..body_len];
        // Sealed for its receiver, as a member's would be.
        let mut receiver = [0u8; 8];
        let mut rw = Writer::new(&mut receiver);
        NodeId(to).encode(&mut rw).ok()?;
        let receiver = rw.written();
        let len = seal_datagram(out, &self.label, &self.wrong_key, Some(receiver), sender, counter, &nonce, body)?;
        if cluster_id {
            // The key id follows the version byte, the label length, the
            // label and the flags byte.
            let at = 3 + self.label.len();
            out.get_mut(at..at + 4)?.copy_from_slice(&self.cluster_key.0);
        }
        Some(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swim_core::{Encryption, Node, Rejected, SealError};

    fn flood(encryption: Encryption) -> Flood {
        let config = Config { encryption, ..Config::lan() };
        let spec = FloodSpec { count: 2, start: Duration::from_secs(1), end: Duration::from_secs(3) };
        Flood::new(spec, 10, &config, 7, &Key::from_bytes([9; 32]))
    }

    #[test]
    fn outsiders_send_at_ten_times_a_members_two_datagrams_per_probe_interval() {
        let mut f = flood(Encryption::Off);
        assert_eq!(f.interval(), Duration::from_millis(50), "LAN: 1 s probe interval, 20 datagrams a second");
        assert_eq!(f.outsiders(), 10..12);
        let firsts = f.first_sends();
        assert_eq!(firsts.len(), 2);
        for (at, id) in firsts {
            assert!(f.is_outsider(id));
            assert!(at >= Instant::from_secs(1) && at < Instant::from_secs(1) + f.interval());
        }
        assert_eq!(f.next_send(Instant::from_secs(2)), Some(Instant::from_secs(2) + f.interval()));
        assert_eq!(f.next_send(Instant::from_millis(2_950)), None);
    }

    #[test]
    fn a_plaintext_flood_sends_every_plaintext_kind_and_no_sealed_one_and_makes_no_member() {
        let mut f = flood(Encryption::Off);
        let mut node = Node::new(NodeId(0), Config::lan(), seed::node_rng(1, 0, 0), Instant::ZERO).unwrap();
        let mut buf = Vec::new();
        for i in 0..2_000u64 {
            let to = f.datagram(5, &mut buf).expect("a datagram");
            assert!(to < 5);
            let _ = node.handle_datagram(Instant::from_millis(i), NodeId(10), &buf);
        }
        for kind in &FloodKind::ALL[FloodKind::PLAINTEXT..] {
            assert_eq!(f.stats.sent_of(*kind), 0, "{kind:?}");
        }
        for kind in &FloodKind::ALL[..FloodKind::PLAINTEXT] {
            assert!(f.stats.sent_of(*kind) > 100, "{kind:?}");
        }
        let r = node.stats().rejected;
        assert!(r.extra_primary > 0 && r.bad_checksum > 0 && r.wrong_cluster > 0 && r.too_short > 0, "{r:?}");
        assert!(node.stats().strangers_refused > 0);
        assert_eq!(node.live_members(), 1, "no outsider became a member");
    }

    #[test]
    fn sealed_forgeries_are_refused_for_their_key_or_their_tag() {
        let mut f = flood(Encryption::Require);
        let config = Config { encryption: Encryption::Require, ..Config::lan() };
        let rng = seed::node_rng(1, 0, 0);
        let mut node = Node::with_keys(NodeId(0), config, rng, Instant::ZERO, &[Key::from_bytes([9; 32])]).unwrap();
        let mut out = vec![0; 1400];
        let len = f.forged(0, 5, &mut out, false).expect("fits");
        let e = node.handle_datagram(Instant::ZERO, NodeId(10), &out[..len]);
        assert!(matches!(e, Err(Rejected::Seal(SealError::UnknownKey(_)))), "{e:?}");
        let len = f.forged(0, 5, &mut out, true).expect("fits");
        let e = node.handle_datagram(Instant::ZERO, NodeId(10), &out[..len]);
        assert_eq!(e, Err(Rejected::Seal(SealError::BadTag)));
    }
}
