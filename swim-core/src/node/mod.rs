//! The node: one member's protocol state machine, composed of the member
//! table, the prober, suspicions, the dissemination queue and full-state
//! exchanges. Inputs arrive through `handle_*` and commands; outputs leave
//! through `poll_*`. See the crate docs for the run loop.

mod broadcasts;
mod encode;
mod membership;
mod merge;
mod probe;
mod step;

pub use step::{Input, Outcome, StepOutputs};

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use bytes::Bytes;
use rand_core::{CryptoRng, RngCore};
use smallvec::SmallVec;

use crate::addr::Address;
use crate::awareness::Awareness;
use crate::budget::{self, Exhausted, FloodBudget};
use crate::config::{Config, ConfigError, Problem};
use crate::digest;
use crate::dissemination::Dissemination;
use crate::event::{Event, Member};
use crate::exchange::Exchanges;
use crate::held::Held;
use crate::member::{Members, State};
use crate::probing::Prober;
use crate::replay::ReplayGuard;
use crate::seal::{self, Encryption, Key, KeyError, KeyId, Keyring, SealError};
use crate::stats::Stats;
use crate::suspicion::Suspicions;
use crate::time::{Instant, NodeClock, Step};
use crate::wire::{self, DecodeError, FrameError, Limits, Message};

use crate::tombstone::Tombstones;

/// A datagram the node wants sent: `len` bytes at the start of the buffer
/// given to [`Node::poll_transmit`], to `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit<A> {
    /// Destination.
    pub to: A,
    /// Bytes written at the start of the caller's buffer.
    pub len: usize,
}

/// Why a datagram was refused. In every case the node's state is unchanged
/// and the matching counter in [`Stats::rejected`] was incremented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejected {
    /// The frame was bad: size, version, cluster label or checksum.
    Frame(FrameError),
    /// A message inside a well-framed datagram did not decode. Nothing in the
    /// datagram was applied, not even the messages before the bad one.
    Malformed(DecodeError),
    /// The datagram claims to come from this node's own address.
    FromSelf,
    /// Refused by the sealing layer: plaintext where sealing is required,
    /// unknown key, bad tag, replay.
    Seal(SealError),
    /// Over an inbound budget (`Config::inbound_per_source`,
    /// `Config::inbound_total`): refused before anything else was checked.
    RateLimited(Exhausted),
    /// The datagram held more than one primary message (Ping, Ack, Nack,
    /// PingReq, PushPull, Digest), one that was not first, or something
    /// after a Digest. One datagram asks one thing, so it gets at most one
    /// answer.
    ExtraPrimary,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejected::Frame(e) => write!(f, "bad frame: {e}"),
            Rejected::Malformed(e) => write!(f, "malformed message: {e}"),
            Rejected::FromSelf => f.write_str("datagram from this node's own address"),
            Rejected::Seal(e) => write!(f, "{e}"),
            Rejected::RateLimited(Exhausted::Source) => f.write_str("over its source's inbound budget"),
            Rejected::RateLimited(Exhausted::Total) => f.write_str("over the node's inbound budget"),
            Rejected::ExtraPrimary => f.write_str("more than one primary message in a datagram"),
        }
    }
}

impl core::error::Error for Rejected {}

/// Why a command was refused. The node's state is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandError {
    /// Metadata longer than `Config::max_metadata_len`.
    MetadataTooLarge {
        /// Bytes given.
        len: usize,
        /// Bytes allowed.
        max: usize,
    },
    /// A broadcast longer than `Config::max_broadcast_len`.
    BroadcastTooLarge {
        /// Bytes given.
        len: usize,
        /// Bytes allowed.
        max: usize,
    },
    /// [`Node::force_leave`] named a member this node does not know.
    UnknownMember,
    /// [`Node::force_leave`] named a member that is not failed (only a
    /// member held as Dead can be forced out; a live one must leave itself).
    NotFailed {
        /// What this node believes the member is.
        state: State,
    },
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::MetadataTooLarge { len, max } => {
                write!(f, "metadata of {len} bytes exceeds max_metadata_len {max}")
            }
            CommandError::BroadcastTooLarge { len, max } => {
                write!(f, "broadcast of {len} bytes exceeds max_broadcast_len {max}")
            }
            CommandError::UnknownMember => f.write_str("no such member"),
            CommandError::NotFailed { state } => {
                write!(f, "member is {}, not failed: only a failed member can be forced to leave", state.as_str())
            }
        }
    }
}

impl core::error::Error for CommandError {}

/// A read-only view of one member, from [`Node::members`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberRef<'a, A> {
    /// The member's address.
    pub addr: &'a A,
    /// What this node believes about it.
    pub state: State,
    /// Its incarnation.
    pub incarnation: u32,
    /// Its metadata.
    pub meta: &'a [u8],
    /// Whether this is the local node itself.
    pub is_local: bool,
}

/// A datagram decided on but not yet encoded: encoding happens in
/// [`Node::poll_transmit`], into the caller's buffer, so piggybacked updates
/// are picked at the last moment and nothing is buffered per datagram.
#[derive(Debug, Clone)]
pub(crate) enum Pending<A> {
    Ping {
        to: A,
        seq: u32,
    },
    Ack {
        to: A,
        seq: u32,
    },
    Nack {
        to: A,
        seq: u32,
    },
    PingReq {
        to: A,
        seq: u32,
        target: A,
        want_nack: bool,
    },
    Gossip {
        to: A,
    },
    /// Our current claim about `about`, to a sender whose claim was stale.
    Correction {
        to: A,
        about: A,
    },
    /// A bare ping (no piggybacked news) to an address that asked for our
    /// state but has not yet shown that it receives what is sent there.
    Verify {
        to: A,
        seq: u32,
    },
    /// An ack that lists the broadcasts we hold, for a pinger whose
    /// summary of its own differed ([`crate::held`]).
    AckHeld {
        to: A,
        seq: u32,
    },
    /// The broadcasts a probed member lacks (bit `i`: the `i`th we hold).
    Repair {
        to: A,
        lacking: u64,
    },
    /// A digest of our member table (see [`crate::digest`]).
    Digest {
        to: A,
        reply_wanted: bool,
        exchange: u32,
        log2: u8,
    },
}

/// How a datagram's claims reached us, which decides what we re-gossip and
/// whether we correct the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Piggybacked on a probe or a gossip round.
    Gossip,
    /// Someone's full state, sent to us with a request for ours.
    PushPullRequest,
    /// The reply to our own full-state request; `quiet` unless we asked
    /// by the periodic exchange ([`Exchanges::reply_is_quiet`]).
    PushPullReply { quiet: bool },
}

/// One member's SWIM + Lifeguard protocol state machine.
///
/// `A` is the address type (see [`Address`]); `R` the random number generator
/// every random choice is drawn from, so a seeded `R` makes the node
/// deterministic.
///
/// Methods come in four groups, after quinn-proto: getters; `handle_*`
/// (inputs); commands (`join`, `leave`, `set_metadata`, `broadcast`); and
/// `poll_*` (outputs). After any input or command a driver MUST drain
/// [`Node::poll_transmit`] and [`Node::poll_event`], then sleep until
/// [`Node::poll_timeout`].
pub struct Node<A: Address, R: RngCore> {
    config: Config,
    limits: Limits,
    rng: R,
    addr: A,
    me: u32,
    instance: u32,
    /// Node time (see [`NodeClock`]): every deadline below is in it.
    now: Instant,
    clock: NodeClock,
    /// The most node time one input may advance.
    max_clock_step: Duration,
    members: Members<A>,
    awareness: Awareness,

    probing: Prober<A>,

    suspicions: Suspicions<A>,
    tombstones: Tombstones,

    gossip: Dissemination<A>,
    next_gossip: Instant,
    /// Broadcasts delivered lately, so each is delivered once.
    delivered: broadcasts::Delivered,
    /// Recent broadcasts, kept for anti-entropy.
    held: Held<A>,

    exchanges: Exchanges<A>,
    leaving: bool,
    /// Other processes claiming this node's address.
    rivals: merge::Rivals,

    /// The sender of the datagram being handled, if any: news heard from a
    /// member is not gossiped back to it.
    heard_from: Option<A>,
    /// Whether a correction already went to the sender of this datagram.
    corrected: bool,
    /// Whether our refutation already went to the accuser named in a claim
    /// about us in this datagram (one per datagram, whatever it names).
    told_accuser: bool,

    transmits: VecDeque<Pending<A>>,
    events: VecDeque<Event<A>>,
    stats: Stats,

    flood: FloodBudget,
    /// The keys, when built with them ([`Node::with_keys`]).
    keys: Option<Keyring>,
    replay: ReplayGuard,
    /// This process's id in sealed headers (random; the replay windows
    /// of receivers are kept by it).
    sender_id: u64,
    /// Where sealed datagrams are opened: allocated once, with the keys.
    open_buf: Vec<u8>,
    /// Datagrams sealed so far: each carries the next count.
    sealed_sent: u64,
    /// The digest of outputs, when recording ([`Node::record_outputs`]).
    digest: Option<step::OutputDigest>,
    /// What the last sealed datagram opened to (its messages in `open_buf`).
    opened: Option<OpenedRecord>,
}

/// The header of the last sealed datagram opened.
#[derive(Debug, Clone, Copy)]
struct OpenedRecord {
    bound: bool,
    key: KeyId,
    sender: u64,
    counter: u64,
    len: usize,
}

/// A sealed datagram as it opened: what a recorder keeps of it instead of
/// its ciphertext (see [`Node::last_opened`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened<'a> {
    /// Whether it was sealed for this node alone (all but join requests).
    pub bound: bool,
    /// The key that sealed it.
    pub key: KeyId,
    /// The sending process's id.
    pub sender: u64,
    /// The sender's datagram counter.
    pub counter: u64,
    /// The messages inside.
    pub messages: &'a [u8],
}

/// A recorded sealed datagram, for [`Node::handle_recorded_sealed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedRecord<'a> {
    /// It opened.
    Opened(Opened<'a>),
    /// It was refused, for this reason.
    Refused(Rejected),
}

impl<A: Address, R: RngCore + CryptoRng> Node<A, R> {
    /// A node that seals its datagrams (as `config.encryption` says) with
    /// the first of `keys` and opens them with any. The RNG must be a
    /// cryptographically secure one (nonces are drawn from it): in
    /// production a ChaCha generator seeded from the operating system.
    /// Fails when `config` does not validate, when `keys` is empty (or holds
    /// more than [`seal::MAX_KEYS`]), or when `config.encryption` is `Off`.
    pub fn with_keys(addr: A, config: Config, rng: R, now: Instant, keys: &[Key]) -> Result<Self, ConfigError> {
        if config.encryption == Encryption::Off {
            return Err(ConfigError { field: "encryption", problem: Problem::KeysWithoutEncryption });
        }
        let keys = Keyring::new(keys).map_err(|e| match e {
            KeyError::KeyringFull => ConfigError { field: "keys", problem: Problem::AtMost(seal::MAX_KEYS) },
            _ => ConfigError { field: "keys", problem: Problem::NeedsKeys },
        })?;
        Self::build(addr, config, rng, now, Some(keys))
    }
}

impl<A: Address, R: RngCore> fmt::Debug for Node<A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("addr", &self.addr)
            .field("incarnation", &self.incarnation())
            .field("members", &self.members.len())
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// Mixed into the flood budget's secret to key the hash of addresses that
/// answered our pings (two uses, one random draw: the draws a node makes
/// stay as they were).
const VERIFIED_KEY_MIX: u64 = 0x7665_7269_6669_6564;

impl<A: Address, R: RngCore> Node<A, R> {
    /// A node that is, so far, a cluster of one. Call [`Node::join`] to
    /// contact others. Fails only when `config` does not validate.
    pub fn new(addr: A, config: Config, rng: R, now: Instant) -> Result<Self, ConfigError> {
        if config.encryption != Encryption::Off {
            return Err(ConfigError { field: "encryption", problem: Problem::NeedsKeys });
        }
        Self::build(addr, config, rng, now, None)
    }

    fn build(addr: A, config: Config, mut rng: R, now: Instant, keys: Option<Keyring>) -> Result<Self, ConfigError> {
        config.validate()?;
        let instance = rng.next_u32();
        // Exchange numbers start at random: a restarted process must not
        // repeat its predecessor's, or peers that remember answering those
        // ignore its first requests.
        let first_exchange = rng.next_u32();
        let sender_id = rng.next_u64();
        let flood_key = rng.next_u64();
        let mut members = Members::new();
        let me = members.insert(addr.clone(), 0, instance, State::Alive, &[]);
        let limits = Limits { max_meta: config.max_metadata_len, max_user_payload: config.max_broadcast_len };
        let awareness = Awareness::new(config.awareness_max_multiplier, config.lifeguard);
        let mut node = Node {
            limits,
            addr,
            me,
            instance,
            now,
            clock: NodeClock::new(now),
            max_clock_step: max_clock_step(&config),
            members,
            awareness,
            probing: Prober::new(now, &config),
            suspicions: Suspicions::new(&config),
            tombstones: Tombstones::new(),
            gossip: Dissemination::new(),
            next_gossip: now,
            delivered: broadcasts::Delivered::new(config.broadcast_dedup_window),
            held: Held::new(),
            exchanges: Exchanges::new(first_exchange, digest::finalize(flood_key ^ VERIFIED_KEY_MIX), &config),
            leaving: false,
            rivals: merge::Rivals::new(),
            heard_from: None,
            corrected: false,
            told_accuser: false,
            transmits: VecDeque::with_capacity(KEPT_CAPACITY),
            events: VecDeque::new(),
            stats: Stats::default(),
            open_buf: if keys.is_some() { alloc::vec![0; config.max_datagram_size] } else { Vec::new() },
            replay: ReplayGuard::new(config.max_members.saturating_add(REPLAY_STRANGERS)),
            sender_id,
            flood: FloodBudget::new(
                config.inbound_per_source,
                config.inbound_total,
                config.inbound_source_slots,
                flood_key,
            ),
            keys,
            sealed_sent: 0,
            digest: None,
            opened: None,
            config,
            rng,
        };
        // Stagger the periodic timers so nodes started together do not probe
        // and exchange state in lock-step (memberlist does the same).
        let first_round = now + node.jitter(node.config.probe_interval);
        node.probing.next_round_at(first_round);
        node.next_gossip = now + node.jitter(node.config.gossip_interval);
        let every = node.exchanges.periodic_interval(node.members.live());
        let first_periodic = now + node.jitter(every);
        node.exchanges.first_periodic(every, first_periodic);
        Ok(node)
    }

    // ----- getters -------------------------------------------------------

    /// This node's own address.
    pub fn local_addr(&self) -> &A {
        &self.addr
    }

    /// This node's current incarnation.
    pub fn incarnation(&self) -> u32 {
        self.members.get(self.me).map_or(0, |e| e.incarnation)
    }

    /// This node as the cluster sees it.
    pub fn local_member(&self) -> Member<A> {
        self.snapshot(self.me)
    }

    /// The random id of this process, carried in its Alive claims.
    pub fn instance(&self) -> u32 {
        self.instance
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Counters about this node.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The `now` of the latest input, in the driver's time.
    pub fn now(&self) -> Instant {
        self.clock.driver_now()
    }

    /// The local health score (0 is healthy; Lifeguard §IV.A).
    pub fn local_health(&self) -> u32 {
        self.awareness.score()
    }

    /// Every member this node knows, itself and tombstones included, in a
    /// deterministic order.
    pub fn members(&self) -> impl Iterator<Item = MemberRef<'_, A>> + '_ {
        self.members.iter().map(move |(h, e)| MemberRef {
            addr: &e.addr,
            state: e.state,
            incarnation: e.incarnation,
            meta: self.members.meta(h),
            is_local: h == self.me,
        })
    }

    /// One member by address.
    pub fn member(&self, addr: &A) -> Option<MemberRef<'_, A>> {
        let h = self.members.handle(addr)?;
        let e = self.members.get(h)?;
        Some(MemberRef {
            addr: &e.addr,
            state: e.state,
            incarnation: e.incarnation,
            meta: self.members.meta(h),
            is_local: h == self.me,
        })
    }

    /// Members in `state`, this node included.
    pub fn count(&self, state: State) -> u32 {
        self.members.count(state)
    }

    /// Alive and Suspect members, this node included.
    pub fn live_members(&self) -> u32 {
        self.members.live()
    }

    /// Whether a join is still trying to reach its seeds.
    pub fn is_joining(&self) -> bool {
        self.exchanges.is_joining()
    }

    /// Whether [`Node::leave`] was called and the Left claim has since been
    /// sent its full retransmit count (or there is nobody left to tell).
    pub fn leave_complete(&self) -> bool {
        self.leaving && (!self.gossip.has_member(self.me) || self.members.live() == 0)
    }

    /// Updates and broadcasts waiting to be piggybacked.
    pub fn gossip_backlog(&self) -> usize {
        self.gossip.len()
    }

    // ----- inputs --------------------------------------------------------

    /// Handle one received datagram.
    ///
    /// The whole datagram is checked (budget, frame, label, checksum or tag,
    /// every message) before any of it is applied: a bad datagram returns
    /// [`Rejected`], bumps a counter and changes nothing else. A driver MUST
    /// pass the datagram's real source address as `from` and MUST NOT retry
    /// rejected datagrams.
    pub fn handle_datagram(&mut self, now: Instant, from: A, datagram: &[u8]) -> Result<(), Rejected> {
        self.advance(now);
        self.opened = None;
        let source = self.admit(&from, datagram.len(), wire::peek_primary(datagram))?;
        if datagram.first() == Some(&seal::SEALED_VERSION) {
            // Opened into the node's own buffer, taken out for the call so
            // the messages can borrow it while the node changes.
            let mut opened = core::mem::take(&mut self.open_buf);
            let result = self.open_sealed(datagram, &mut opened).and_then(|record| {
                self.opened = Some(record);
                self.handle_opened(source, from, opened.get(..record.len).unwrap_or(&[]), record.bound)
            });
            self.open_buf = opened;
            return result;
        }
        if !self.config.encryption.accepts_plaintext() {
            return Err(self.refuse(Rejected::Seal(SealError::Plaintext)));
        }
        match wire::open_frame(datagram, &self.config.label, self.config.max_datagram_size) {
            Ok(body) => self.handle_body(from, body),
            Err(e) => Err(self.refuse(Rejected::Frame(e))),
        }
    }

    /// What the last [`Node::handle_datagram`] opened, if it was a sealed
    /// datagram that authenticated: the key id, the sender's process id and
    /// counter, and the messages, for a recorder (which must not keep the
    /// ciphertext's key). Valid until the next input.
    pub fn last_opened(&self) -> Option<Opened<'_>> {
        let record = self.opened?;
        Some(Opened {
            bound: record.bound,
            key: record.key,
            sender: record.sender,
            counter: record.counter,
            messages: self.open_buf.get(..record.len)?,
        })
    }

    /// Replay one sealed datagram as a recorder saw it ([`Node::last_opened`],
    /// or the refusal): the node does what it did with the real one, on the
    /// state it read (budgets, replay windows, every message), without the
    /// key. For a node built with [`Node::replaying`].
    pub fn handle_recorded_sealed(
        &mut self,
        now: Instant,
        from: A,
        datagram_len: usize,
        record: SealedRecord<'_>,
    ) -> Result<(), Rejected> {
        self.advance(now);
        self.opened = None;
        let source = self.admit(&from, datagram_len, (None, None))?;
        match record {
            SealedRecord::Refused(why) => Err(self.refuse(why)),
            SealedRecord::Opened(o) => {
                if !self.replay.allows(o.sender, o.counter) {
                    return Err(self.refuse(Rejected::Seal(SealError::Replayed)));
                }
                self.replay.accept(o.sender, o.counter);
                self.handle_opened(source, from, o.messages, o.bound)
            }
        }
    }

    /// What every datagram goes through first: counted in, not from this
    /// node, within the budgets (`first`: the primary's tag and the byte
    /// after, when readable), within the size. Returns the source's hash.
    fn admit(&mut self, from: &A, len: usize, (first, flags): (Option<u8>, Option<u8>)) -> Result<u64, Rejected> {
        self.stats.datagrams_in += 1;
        self.stats.bytes_in += len as u64;
        if *from == self.addr {
            return Err(self.refuse(Rejected::FromSelf));
        }
        let source = from.hash64();
        self.spend(source, budget::cost(first, flags))?;
        if len > self.config.max_datagram_size {
            return Err(self.refuse(Rejected::Frame(FrameError::TooLong)));
        }
        Ok(source)
    }

    /// Count a refusal; hand it back.
    fn refuse(&mut self, why: Rejected) -> Rejected {
        self.stats.rejected.count(why);
        why
    }

    /// Pay for a datagram from the source hashing to `source`.
    fn spend(&mut self, source: u64, units: u32) -> Result<(), Rejected> {
        match self.flood.charge(self.now, source, units) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.refuse(Rejected::RateLimited(e))),
        }
    }

    /// Check a sealed datagram's label, key, freshness and tag, and open it
    /// into `out`.
    fn open_sealed(&mut self, datagram: &[u8], out: &mut [u8]) -> Result<OpenedRecord, Rejected> {
        let Some(keys) = self.keys.as_ref().filter(|_| self.config.encryption != Encryption::Off) else {
            return Err(self.refuse(Rejected::Seal(SealError::NoKeys)));
        };
        let sealed = match seal::parse_sealed(datagram, &self.config.label) {
            Ok(sealed) => sealed,
            Err(e) => return Err(self.refuse(Rejected::Frame(e))),
        };
        if !keys.holds(sealed.key) {
            return Err(self.refuse(Rejected::Seal(SealError::UnknownKey(sealed.key))));
        }
        if !self.replay.allows(sealed.sender, sealed.counter) {
            return Err(self.refuse(Rejected::Seal(SealError::Replayed)));
        }
        let mut me = [0u8; seal::MAX_BOUND_ADDRESS_LEN];
        let mut w = wire::Writer::new(&mut me);
        let me = if self.addr.encode(&mut w).is_ok() { w.written() } else { &[] };
        if let Err(e) = keys.open(&sealed, me, out) {
            return Err(self.refuse(Rejected::Seal(e)));
        }
        self.replay.accept(sealed.sender, sealed.counter);
        let len = sealed.ciphertext.len();
        Ok(OpenedRecord { bound: sealed.bound, key: sealed.key, sender: sealed.sender, counter: sealed.counter, len })
    }

    /// An opened sealed datagram: what it asks is known now, so the rest of
    /// its cost is paid, then its messages are handled. One sealed for no
    /// receiver must be a join request.
    fn handle_opened(&mut self, source: u64, from: A, body: &[u8], bound: bool) -> Result<(), Rejected> {
        let join_request = body.first() == Some(&wire::tag::PUSH_PULL)
            && body.get(1).is_some_and(|f| f & wire::push_pull_flags::JOIN != 0);
        if !bound && !join_request {
            return Err(self.refuse(Rejected::Seal(SealError::Unbound)));
        }
        let extra = budget::cost(body.first().copied(), body.get(1).copied()) - 1;
        if extra > 0 {
            self.spend(source, extra)?;
        }
        self.handle_body(from, body)
    }

    /// Check every message of an opened datagram, then apply them all.
    fn handle_body(&mut self, from: A, body: &[u8]) -> Result<(), Rejected> {
        let mut digest_first = false;
        for (i, message) in wire::messages::<A>(body, self.limits).enumerate() {
            let message = match message {
                Ok(m) => m,
                Err(e) => return Err(self.refuse(Rejected::Malformed(e))),
            };
            if i > 0 && (digest_first || message.is_primary()) {
                return Err(self.refuse(Rejected::ExtraPrimary));
            }
            digest_first = matches!(message, Message::Digest { .. });
        }
        let mut push_pull = None;
        let mut repair = broadcasts::Repair::default();
        self.heard_from = Some(from.clone());
        self.corrected = false;
        self.told_accuser = false;
        for (i, message) in wire::messages::<A>(body, self.limits).flatten().enumerate() {
            if i == 0 {
                self.count_received(&message);
                repair = self.repair_context(&from, &message);
            }
            match message {
                Message::Ping { seq } => {
                    self.exchanges.pinged_by(self.now, &from);
                    self.queue_transmit(Pending::Ack { to: from.clone(), seq });
                }
                Message::Ack { seq } => self.on_ack(&from, seq),
                Message::Nack { seq } => self.on_nack(&from, seq),
                Message::PingReq { seq, target, want_nack } => self.on_ping_req(&from, seq, target, want_nack),
                Message::Update(update) => {
                    self.stats.updates_received += 1;
                    let origin = match push_pull {
                        None => Origin::Gossip,
                        Some((true, _, _)) => Origin::PushPullRequest,
                        Some((false, _, exchange)) => {
                            Origin::PushPullReply { quiet: self.exchanges.reply_is_quiet(&from, exchange) }
                        }
                    };
                    self.merge(update, &from, origin);
                }
                Message::User { id, origin, payload } => self.on_user_broadcast(id, origin, payload),
                Message::Held { count, sum } => repair.on_held(&self.held, count, sum),
                Message::HeldIds { ids } => repair.on_held_ids(&self.held, ids),
                Message::PushPull { reply_wanted, join, exchange } => {
                    if i == 0 {
                        push_pull = Some((reply_wanted, join, exchange));
                    }
                }
                Message::Digest { reply_wanted, exchange, hashes } => {
                    self.on_digest(&from, reply_wanted, exchange, hashes);
                }
            }
        }
        self.heard_from = None;
        self.finish_repair(&from, repair);
        if push_pull.is_none() {
            self.correct_the_sender(&from);
        }
        if let Some((reply_wanted, _join, exchange)) = push_pull {
            self.on_push_pull(&from, reply_wanted, exchange);
        }
        Ok(())
    }

    /// Handle every timer that is due at `now`. Spurious calls (nothing due)
    /// are harmless. After it returns, [`Node::poll_timeout`] is `None` or
    /// strictly later than `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
        let now = self.now;
        if self.probing.round_due(now) {
            self.probe_tick();
        }
        if self.probing.indirect_due(now) {
            self.probe_indirectly();
        }
        self.relay_timeouts();
        self.parked_timeouts();
        self.suspicion_timeouts();
        self.reap_tombstones();
        self.held.expire(now);
        if self.next_gossip <= now {
            self.gossip_tick();
        }
        if self.exchanges.periodic_due(now) {
            self.periodic_push_pull();
        }
        if self.exchanges.join_due(now) {
            self.join_attempt();
        }
        if self.exchanges.follow_up_due(now) {
            self.join_follow_up();
        }
        if self.exchanges.retry_due(now) {
            self.periodic_retry();
        }
    }

    // ----- commands ------------------------------------------------------

    /// Join a cluster through `seeds` (addresses of existing members; this
    /// node's own address is ignored). Retries with backoff until one
    /// answers, and again later if every other member is lost. With no
    /// seeds the node starts a new cluster. After a [`Node::leave`], joins
    /// again with a higher incarnation.
    pub fn join(&mut self, now: Instant, seeds: &[A]) {
        self.advance(now);
        if self.leaving {
            self.leaving = false;
            let inc = self.incarnation().wrapping_add(1);
            self.members.set_incarnation(self.me, inc);
            self.members.set_state(self.me, State::Alive);
            self.probing.next_round_at(self.now + self.config.probe_interval);
        }
        let joining = self.exchanges.join(self.now, seeds, &self.addr);
        // Announce ourselves: the seeds' replies tell us the cluster, and
        // our Alive, piggybacked, tells the cluster about us.
        self.queue_gossip(self.me, None);
        if joining {
            self.join_attempt();
        }
    }

    /// Leave gracefully: disseminate Left and stop probing. Keep driving the
    /// node until [`Node::leave_complete`] (or a timeout of the driver's
    /// choosing) so the Left claim reaches the cluster.
    pub fn leave(&mut self, now: Instant) {
        self.advance(now);
        if self.leaving {
            return;
        }
        self.leaving = true;
        self.exchanges.stop_joining();
        self.probing.abandon_probe();
        self.members.set_state(self.me, State::Left);
        self.queue_gossip(self.me, None);
    }

    /// Replace this node's metadata and tell the cluster (an Alive at a
    /// higher incarnation; others report [`Event::Updated`]).
    pub fn set_metadata(&mut self, now: Instant, meta: &[u8]) -> Result<(), CommandError> {
        self.advance(now);
        if meta.len() > self.config.max_metadata_len {
            return Err(CommandError::MetadataTooLarge { len: meta.len(), max: self.config.max_metadata_len });
        }
        if !self.members.set_meta(self.me, meta) {
            return Ok(());
        }
        self.members.set_incarnation(self.me, self.incarnation().wrapping_add(1));
        self.queue_gossip(self.me, None);
        Ok(())
    }

    /// Disseminate an application payload to every member; each delivers it
    /// once as [`Event::Broadcast`]. This node does not deliver it to itself.
    /// It is pushed on piggybacked gossip (ahead of member news, within
    /// half of each datagram while member news waits) and kept, at every
    /// node that has it, for `Config::broadcast_keep_time`, during which
    /// each probe sends the probed member the kept broadcasts it lacks:
    /// a member every push missed still gets it, once, and so does a member
    /// that joins within that time.
    pub fn broadcast(&mut self, now: Instant, payload: &[u8]) -> Result<(), CommandError> {
        self.advance(now);
        if payload.len() > self.config.max_broadcast_len {
            return Err(CommandError::BroadcastTooLarge { len: payload.len(), max: self.config.max_broadcast_len });
        }
        let id = self.rng.next_u64();
        self.delivered.first_time(id);
        let origin = self.addr.clone();
        self.keep_broadcast(id, &origin, payload);
        let dropped = self.gossip.queue_user(id, origin, payload.into(), None, self.config.max_gossip_queue);
        self.stats.gossip_dropped += dropped as u64;
        Ok(())
    }

    /// Mark a member this node holds as failed (Dead) as Left at the same
    /// incarnation, and disseminate that: every member then reports it as
    /// [`Event::Left`] and reaps it after `tombstone_timeout` like any member
    /// that left (Serf's `force-leave`). A live member cannot be forced out:
    /// it would refute. A failed member that is in fact alive still comes
    /// back by refuting with a higher incarnation.
    pub fn force_leave(&mut self, now: Instant, addr: &A) -> Result<(), CommandError> {
        self.advance(now);
        let handle = self.members.handle(addr).ok_or(CommandError::UnknownMember)?;
        let state = self.members.get(handle).map_or(State::Left, |e| e.state);
        if state != State::Dead || handle == self.me {
            return Err(CommandError::NotFailed { state });
        }
        self.declare_gone(handle, State::Left, None);
        Ok(())
    }

    /// A node that replays a sealed node's recording: the same as one built
    /// with [`Node::with_keys`] with those keys (the same RNG seed gives the
    /// same choices, nonces included), but holding only their ids. It takes
    /// sealed datagrams as recorded ([`Node::handle_recorded_sealed`]) and
    /// its datagrams are digested as the real ones were and carry zeros
    /// where the real ones carried ciphertext: they are for checking, never
    /// for a network.
    pub fn replaying(addr: A, config: Config, rng: R, now: Instant, key_ids: &[KeyId]) -> Result<Self, ConfigError> {
        if config.encryption == Encryption::Off {
            return Err(ConfigError { field: "encryption", problem: Problem::KeysWithoutEncryption });
        }
        let keys = Keyring::replaying(key_ids).map_err(|e| match e {
            KeyError::KeyringFull => ConfigError { field: "keys", problem: Problem::AtMost(seal::MAX_KEYS) },
            _ => ConfigError { field: "keys", problem: Problem::NeedsKeys },
        })?;
        Self::build(addr, config, rng, now, Some(keys))
    }

    /// In a replaying node ([`Node::replaying`]): the recorded installation
    /// of the key `id`.
    pub fn install_key_id(&mut self, now: Instant, id: KeyId) -> Result<KeyId, KeyError> {
        self.advance(now);
        self.keys.as_mut().ok_or(KeyError::NoKeyring)?.install_id(id)
    }

    /// Add a key to the keyring (it opens datagrams at once; it seals only
    /// once made primary with [`Node::use_key`]). Installing a key already
    /// held does nothing. Returns its id.
    pub fn install_key(&mut self, now: Instant, key: &Key) -> Result<KeyId, KeyError> {
        self.advance(now);
        self.keys.as_mut().ok_or(KeyError::NoKeyring)?.install(key)
    }

    /// Seal with the installed key `id` from now on.
    pub fn use_key(&mut self, now: Instant, id: KeyId) -> Result<(), KeyError> {
        self.advance(now);
        self.keys.as_mut().ok_or(KeyError::NoKeyring)?.use_key(id)
    }

    /// Remove the installed key `id` (not the primary one).
    pub fn remove_key(&mut self, now: Instant, id: KeyId) -> Result<(), KeyError> {
        self.advance(now);
        self.keys.as_mut().ok_or(KeyError::NoKeyring)?.remove(id)
    }

    /// The installed keys' ids, each with whether it is the primary one
    /// (none for a node built without keys).
    pub fn keys(&self) -> impl Iterator<Item = (KeyId, bool)> + '_ {
        let primary = self.keys.as_ref().map(Keyring::primary);
        self.keys.iter().flat_map(Keyring::ids).map(move |id| (id, Some(id) == primary))
    }

    // ----- outputs -------------------------------------------------------

    /// Encode the next datagram to send into `buf` and say where it goes.
    ///
    /// `buf` SHOULD be at least `Config::max_datagram_size` bytes; datagrams
    /// never exceed that, and a smaller buffer gets fewer piggybacked
    /// updates (or, when too small for the message itself, the datagram is
    /// dropped and counted in `Stats::buffer_too_small`). Call until `None`.
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<Transmit<A>> {
        while let Some(pending) = self.transmits.pop_front() {
            if let Some(t) = self.encode_pending(pending, buf) {
                return Some(t);
            }
        }
        // Transfers go after everything else, as fast as the pacer lets
        // them (`Config::transfer_rate`); what it holds back waits for the
        // deadline `poll_timeout` reports.
        while self.exchanges.transfer_ready(self.now) {
            if let Some(t) = self.encode_push_pull(buf) {
                self.exchanges.transfer_sent(self.now, t.len);
                return Some(t);
            }
            self.exchanges.drop_transfer();
        }
        give_back(&mut self.transmits, KEPT_CAPACITY);
        None
    }

    /// The next event for the application, oldest first.
    pub fn poll_event(&mut self) -> Option<Event<A>> {
        let event = self.events.pop_front();
        match &event {
            Some(e) => self.digest_event(e),
            None => give_back(&mut self.events, 0),
        }
        event
    }

    /// When [`Node::handle_timeout`] should next be called. `None` means no
    /// timer is armed. A value at or before the current time means "now":
    /// it can follow an input that made a timer due (a suspicion confirmed
    /// to expiry, news to gossip), never a `handle_timeout` call.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next = self.probing.next_deadline();
        if !self.gossip.is_empty() {
            next = next.min(self.next_gossip);
        }
        if let Some(at) = self.exchanges.next_deadline() {
            next = next.min(at);
        }
        if let Some(at) = self.exchanges.pace_deadline(self.now) {
            next = next.min(at);
        }
        if let Some(deadline) = self.suspicions.next_deadline() {
            next = next.min(deadline);
        }
        if let Some(due) = self.tombstones.next_due() {
            next = next.min(due);
        }
        Some(self.clock.in_driver_time(next))
    }

    // ----- shared helpers --------------------------------------------------

    /// Take a new `now` (see [`NodeClock`]).
    fn advance(&mut self, now: Instant) {
        match self.clock.advance(now, self.max_clock_step) {
            Step::Forward => {}
            Step::Backward => self.stats.clock_regressions += 1,
            Step::Jump => self.stats.clock_jumps += 1,
        }
        self.now = self.clock.now();
    }

    fn queue_transmit(&mut self, pending: Pending<A>) {
        if self.transmits.len() >= self.config.max_pending_transmits {
            self.transmits.pop_front();
            self.stats.transmits_dropped += 1;
        }
        self.transmits.push_back(pending);
    }

    fn emit(&mut self, event: Event<A>) {
        if self.events.len() >= self.config.max_pending_events {
            self.events.pop_front();
            self.stats.events_dropped += 1;
        }
        self.events.push_back(event);
    }

    fn queue_gossip(&mut self, handle: u32, accuser: Option<A>) {
        self.queue_gossip_with(handle, accuser, 0);
    }

    /// Queue with a head start: see [`Dissemination::queue_member`]. The
    /// accuser and the sender are named by handle (members we do not know
    /// are not named: the encoder then names the suspicion's accuser, and
    /// the news may go back to its sender).
    fn queue_gossip_with(&mut self, handle: u32, accuser: Option<A>, head_start: u32) {
        let source = self.heard_from.as_ref().and_then(|a| self.members.handle(a));
        let accuser = accuser.and_then(|a| self.members.handle(&a));
        let max = self.config.max_gossip_queue;
        let dropped = self.gossip.queue_member(handle, accuser, source, max, head_start);
        self.stats.gossip_dropped += dropped as u64;
    }

    fn snapshot(&self, handle: u32) -> Member<A> {
        match self.members.get(handle) {
            Some(e) => Member {
                addr: e.addr.clone(),
                state: e.state,
                incarnation: e.incarnation,
                meta: Bytes::copy_from_slice(self.members.meta(handle)),
            },
            None => Member { addr: self.addr.clone(), state: State::Dead, incarnation: 0, meta: Bytes::new() },
        }
    }

    fn apply_health(&mut self, delta: i32) {
        self.awareness.apply(delta);
        self.stats.local_health = self.awareness.score();
    }

    /// A uniformly random duration in `[0, d)`.
    fn jitter(&mut self, d: Duration) -> Duration {
        jitter(&mut self.rng, d)
    }

    /// Change a member's state in the table and its place in the probe
    /// order together: the order holds exactly the live members.
    fn set_state(&mut self, handle: u32, state: State) {
        self.members.set_state(handle, state);
        if state.is_live() {
            self.tombstones.cancel(handle);
        }
        self.place(handle);
    }

    /// Put a member where its state says in the probe order (after it was
    /// inserted, changed state, or was reaped).
    fn place(&mut self, handle: u32) {
        let state = self.members.get(handle).filter(|_| handle != self.me).map(|e| e.state);
        self.probing.place(handle, state, &mut self.rng);
    }

    /// Up to `want` distinct random live members other than this node and
    /// `exclude` (and members held dead too, if `allow_dead`): see
    /// [`Prober::random_peers`].
    fn random_peers(&mut self, want: usize, exclude: Option<u32>, allow_dead: bool) -> SmallVec<[u32; 16]> {
        self.probing.random_peers(want, exclude, allow_dead, &mut self.rng)
    }

    /// Whether `addr` is another member this node holds as live.
    fn is_live_member(&self, addr: &A) -> bool {
        is_live_member(&self.members, self.me, addr)
    }

    fn count_received(&mut self, first: &Message<'_, A>) {
        let k = &mut self.stats.received;
        match first {
            Message::Ping { .. } => k.ping += 1,
            Message::Ack { .. } => k.ack += 1,
            Message::Nack { .. } => k.nack += 1,
            Message::PingReq { .. } => k.ping_req += 1,
            Message::PushPull { .. } | Message::Digest { .. } => k.push_pull += 1,
            Message::Update(_) | Message::User { .. } | Message::Held { .. } | Message::HeldIds { .. } => k.gossip += 1,
        }
    }
}

/// The most one input may advance node time: well above the longest gap
/// between a node's own timers (a probe period stretched by the worst local
/// health), so only a suspend or a broken clock is capped.
fn max_clock_step(config: &Config) -> Duration {
    let longest = crate::time::scale(config.probe_interval, config.awareness_max_multiplier.max(1));
    crate::time::scale(longest, 4).max(Duration::from_secs(60))
}

/// A uniformly random duration in `[0, d)`, by Lemire's multiply-shift:
/// unbiased enough for protocol choices and free of division.
fn jitter<R: RngCore>(rng: &mut R, d: Duration) -> Duration {
    let nanos = crate::time::duration_nanos(d);
    if nanos == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(((u128::from(rng.next_u64()) * u128::from(nanos)) >> 64) as u64)
}

/// Whether `addr` is a member other than this node (`me`) held as live.
fn is_live_member<A: Address>(members: &Members<A>, me: u32, addr: &A) -> bool {
    members.handle(addr).is_some_and(|h| h != me && members.get(h).is_some_and(|e| e.state.is_live()))
}

/// Replay windows kept beyond one per member (restarted processes and
/// joiners not yet members, say).
const REPLAY_STRANGERS: usize = 64;

/// Transmit-queue capacity kept when the drained queue shrinks: enough for
/// steady state, so polling there allocates nothing.
const KEPT_CAPACITY: usize = 16;

/// A drained queue that a burst (a join's thousand events, a flood of
/// transmits) grew past four times `keep` (and 16) gives its memory back
/// down to `keep`; below that nothing is done, so steady-state polling
/// allocates nothing. Events are rare in steady state and every node of a
/// large simulation holds a queue, so they keep nothing.
fn give_back<T>(queue: &mut VecDeque<T>, keep: usize) {
    if queue.is_empty() && queue.capacity() > (4 * keep).max(16) {
        queue.shrink_to(keep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::NodeId;
    use crate::wire::{encode_datagram, Update};

    struct Counter(u64);
    impl RngCore for Counter {
        fn next_u32(&mut self) -> u32 {
            self.next_u64() as u32
        }
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 11
        }
        fn fill_bytes(&mut self, dst: &mut [u8]) {
            rand_core::impls::fill_bytes_via_next(self, dst)
        }
    }

    fn claim(state: State, incarnation: u32) -> Message<'static, NodeId> {
        let accuser = (state != State::Alive).then_some(NodeId(2));
        Message::Update(Update { member: NodeId(1), state, incarnation, instance: 7, meta: &[], accuser })
    }

    #[test]
    fn a_member_made_to_flap_cannot_grow_internal_queues() {
        let mut config = Config::lan();
        config.max_tombstones = 16;
        let mut node = Node::new(NodeId(0), config, Counter(1), Instant::ZERO).unwrap();
        let mut buf = [0u8; 256];
        for inc in 0..2_000u32 {
            let msgs = [claim(State::Alive, 2 * inc), claim(State::Suspect, 2 * inc), claim(State::Dead, 2 * inc + 1)];
            let len = encode_datagram(&mut buf, &[], &msgs).unwrap();
            node.handle_datagram(Instant::from_millis(u64::from(inc)), NodeId(2), &buf[..len]).unwrap();
            while node.poll_event().is_some() {}
            assert!(node.tombstones.len() <= 16, "tombstone queue at {}", node.tombstones.len());
            assert!(node.suspicions.len() <= 1 && node.suspicions.deadline_entries() == node.suspicions.len());
            assert!(node.gossip.len() <= node.members.len());
            assert!(node.probing.ordered() <= node.members.len());
        }
        assert_eq!(node.member(&NodeId(1)).map(|m| m.state), Some(State::Dead));
    }

    #[test]
    fn endless_rival_claims_to_our_address_stay_bounded() {
        let mut node = Node::new(NodeId(0), Config::lan(), Counter(2), Instant::ZERO).unwrap();
        let mut buf = [0u8; 256];
        for instance in 1..200u32 {
            for _ in 0..5 {
                let inc = node.incarnation();
                let m = Message::Update(Update {
                    member: NodeId(0),
                    state: State::Alive,
                    incarnation: inc,
                    instance,
                    meta: &[],
                    accuser: None,
                });
                let len = encode_datagram(&mut buf, &[], &[m]).unwrap();
                node.handle_datagram(Instant::ZERO, NodeId(3), &buf[..len]).unwrap();
            }
            assert!(node.rivals.reported() <= MAX_CONFLICTS_REMEMBERED_FOR_TEST);
        }
        assert!(node.stats().conflicts >= 100);
    }

    const MAX_CONFLICTS_REMEMBERED_FOR_TEST: usize = 8;
}
