//! Anti-entropy: joining through seeds with backoff, full-state (push-pull)
//! exchanges and the digests that narrow them (see [`crate::digest`]), the
//! follow-ups after a join, the periodic exchange that heals partitions,
//! and the verification that holds our state back from an address until it
//! has shown it receives what is sent there.
//!
//! [`Exchanges`] owns every exchange's state and decides: which exchanges
//! to start, which answer is new, what a reply proves, when a transfer may
//! go and what its next datagram holds. The node passes in what it owns
//! (the member table, a fresh ping sequence, a random peer), sends the
//! pings and digests it is told to, and counts.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::time::Duration;

use crate::addr::Address;
use crate::config::Config;
use crate::digest::{self, BucketSet};
use crate::keymap::KeyMap;
use crate::member::Members;
use crate::pace::Pacer;
use crate::recent::RecentSet;
use crate::stats::Stats;
use crate::suspicion::Suspicions;
use crate::time::Instant;
use crate::wire::{self, Message, Writer};

/// A join still waiting for any seed to answer.
#[derive(Debug, Clone)]
struct Join {
    attempt: u32,
    next_attempt: Instant,
}

/// Full-state exchanges with random members shortly after joining: when
/// many members join at once, the first ones' replies predate the later
/// ones, and gossip alone leaves a few pairs unaware of each other until the
/// periodic exchange, which can be minutes away in a large cluster. The
/// first follow-up always happens, with the member whose reply let us in,
/// once that reply has ended; further ones a probe interval apart (with
/// that member while it finds our views unlike, else with random members),
/// until one finds the peer's view like ours and nothing new was learned
/// meanwhile.
#[derive(Debug, Clone)]
struct FollowUp<A> {
    at: Instant,
    /// Members learned since the join (or the last follow-up), by gossip or
    /// from the last follow-up's reply: a sign the view is still filling in.
    learned: u32,
    /// Follow-ups made so far.
    round: u32,
    /// The exchange the last follow-up started, and whether its peer's
    /// answer showed the same view as ours. Only that says the view is
    /// complete: an exchange lost on the way taught nothing because it
    /// never happened, and one whose state transfer was lost after digests
    /// that differed taught nothing because the state never came.
    exchange: Option<u32>,
    agreed: bool,
    /// Whether the peer's digest showed a view unlike ours. Then the state
    /// it sends is what makes the views alike, and when a datagram of it
    /// is lost, the rest may teach nothing: that answer is no agreement.
    differed: bool,
    /// Whether the last follow-up went by digest. A peer answers a digest
    /// with state only for the buckets that differ, so state under it is a
    /// difference even when its digest was lost and what arrived taught
    /// nothing (the datagram with what we lack lost too); under a
    /// full-state request the peer sends its whole table either way.
    by_digest: bool,
    /// The member whose reply to our join let us in, while follow-ups go
    /// to it: it knows every member its reply could have carried and every
    /// one that joined through it since. A random member is no such witness
    /// in a join storm: it joined about when we did, and its reply lacks
    /// what ours lacks.
    seed: Option<A>,
}

impl<A> FollowUp<A> {
    fn first(at: Instant) -> Self {
        FollowUp {
            at,
            learned: 0,
            round: 0,
            exchange: None,
            agreed: false,
            differed: false,
            by_digest: false,
            seed: None,
        }
    }

    /// The peer of the last follow-up answered under `exchange` with a view
    /// like ours (a digest that matched, or the whole state).
    fn agreed(&mut self, exchange: u32) {
        if self.exchange == Some(exchange) {
            self.agreed = true;
        }
    }

    /// The peer of the last follow-up answered under `exchange` with a
    /// digest unlike ours.
    fn differed(&mut self, exchange: u32) {
        if self.exchange == Some(exchange) {
            self.differed = true;
        }
    }

    /// Whether the last follow-up found the views alike and nothing was
    /// learned since it began.
    fn taught_nothing(&self) -> bool {
        self.learned == 0 && self.agreed && !self.differed
    }
}

/// A follow-up that came due: which one it is, and the seed to make it
/// with (if it still goes to the seed; else a random live member).
#[derive(Debug, Clone)]
pub(crate) struct FollowUpDue<A> {
    pub round: u32,
    pub seed: Option<A>,
}

/// This round's periodic exchange, until its peer answers. Under loss an
/// exchange is lost as often as any of its datagrams (about one in five at
/// 10%), and the next round is a whole interval away: a node that missed
/// a join's gossip stayed unaware of the joiner for two intervals (60 s at
/// LAN timings) after its one exchange of the round went unanswered.
#[derive(Debug, Clone)]
struct PeriodicTry {
    /// The exchange awaiting an answer.
    exchange: u32,
    /// When to try another member if none came.
    retry_at: Instant,
    /// Exchanges made this round.
    tries: u8,
}

/// Most exchanges one periodic round makes: three leave a round with no
/// answer about once in a hundred at 10% loss.
const PERIODIC_TRIES: u8 = 3;

/// Why this node asked for an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ask {
    /// To join (or rejoin) through a seed.
    Join,
    /// A follow-up of a join, or a catch-up after being declared dead.
    FollowUp,
    /// The periodic anti-entropy exchange (SWIM's, memberlist pushPull),
    /// including the one with an absent seed.
    Periodic,
}

/// Most follow-up exchanges after one join, a probe interval apart. Under
/// loss a join reply can lose a datagram and so can each exchange meant to
/// fill the gap, so they go on until a peer's digest matches ours (an
/// exchange lost on the way says nothing either way). Measured at 1,000
/// nodes and 10% loss: spaced 1, 2, 4, 4 s apart and stopped by the first
/// exchange that taught nothing, a joiner could miss a member for minutes.
const MAX_FOLLOW_UPS: u32 = 6;

/// Join attempts retried after `join_retry_interval` before the wait starts
/// to double: under loss a join request is lost as often as any datagram
/// (one in ten at 10%), and doubling from the first retry left one joiner
/// in a thousand waiting 15 s after four losses in a row.
const JOIN_STEADY_RETRIES: u32 = 3;

/// Retry intervals a joiner waits once its seed has pinged it (see
/// [`Exchanges::pinged_by`]): past the 20,000-node storm's 2.9 s of paced
/// tables at the default rate, so the joiners still waiting then are few.
const SEED_BUSY_RETRY: u32 = 3;

/// A full-state transfer being sent, one datagram per poll, straight from the
/// member table (no copy of the state is made).
#[derive(Debug, Clone)]
struct PushPullSend<A> {
    to: A,
    reply_wanted: bool,
    join: bool,
    exchange: u32,
    /// Where the transfer resumes: the first member whose address hash is
    /// at least this (the table is walked in hash order, so members learned
    /// or reaped meanwhile neither stall nor repeat it); `None` when done.
    cursor: Option<u64>,
    /// Only members in these buckets (answering a digest), or all.
    only: Option<BucketSet>,
}

/// Exchanges answered recently, so a multi-datagram request gets one reply.
const REPLIED_MEMORY: usize = 32;

/// Transfers a node can hold for verification without allocating: steady
/// state parks one or two at a time (an exchange from a peer we have not
/// pinged lately); only a burst, a seed answering a join storm, grows the
/// queue past this.
const PARKED_RESERVE: usize = 4;

/// Transfers queued without allocating: steady state has one or two at a
/// time; a seed answering a join storm grows the queue, and gets the memory
/// back once it has drained. Every node holds the reserve (about 80 bytes
/// a transfer), so it stays small.
const SENDS_RESERVE: usize = 4;

/// Addresses remembered as having answered our pings.
const VERIFIED_MEMORY: usize = 4096;

/// A state transfer held until its requester answers the ping `seq`: an
/// address that asks for our whole table must first show it receives what
/// is sent there, or one spoofed datagram would send the table to a victim.
#[derive(Debug, Clone)]
struct Parked<A> {
    seq: u32,
    send: PushPullSend<A>,
    /// When to ping again (a ping or its answer may be lost), or give up.
    due: Instant,
    pings: u8,
}

/// Transfers queued to be sent, oldest first, and the answers among them
/// not started yet, by requester: a request from an address whose answer
/// waits is folded into it with one lookup, not a walk of the queue (at
/// the bound, 32,768 entries each datagram: an outsider sending digests
/// from a member's address would have made every one cost that walk).
#[derive(Debug)]
struct TransferQueue<A> {
    queue: VecDeque<PushPullSend<A>>,
    /// Transfers taken off the front so far (wrapping): `queue[i]` is
    /// number `popped + i`.
    popped: u32,
    /// The number of each requester's unstarted answer, by 32 bits of its
    /// address hash (two addresses sharing them: the later one's answer is
    /// the one found, and the other's is not folded).
    waiting: KeyMap,
}

impl<A: Address> TransferQueue<A> {
    fn new(capacity: usize, secret: u64) -> Self {
        TransferQueue { queue: VecDeque::with_capacity(capacity), popped: 0, waiting: KeyMap::new(secret) }
    }

    fn len(&self) -> usize {
        self.queue.len()
    }

    fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    fn key_of(to: &A) -> u32 {
        digest::addr_hash(to) as u32
    }

    fn push(&mut self, send: PushPullSend<A>) {
        if !send.reply_wanted && send.cursor == Some(0) {
            let number = self.popped.wrapping_add(self.queue.len() as u32);
            self.waiting.insert(Self::key_of(&send.to), number);
        }
        self.queue.push_back(send);
    }

    /// The answer waiting for `to` that has not started, if any.
    fn waiting_for(&mut self, to: &A) -> Option<&mut PushPullSend<A>> {
        let number = self.waiting.get(Self::key_of(to))?;
        let i = number.wrapping_sub(self.popped) as usize;
        self.queue.get_mut(i).filter(|s| s.to == *to && !s.reply_wanted && s.cursor == Some(0))
    }

    /// No longer waiting: the front has started (or is dropped).
    fn front_leaves_waiting(&mut self) {
        let Some(front) = self.queue.front() else { return };
        let key = Self::key_of(&front.to);
        if self.waiting.get(key) == Some(self.popped) {
            self.waiting.remove(key);
        }
    }

    fn front(&self) -> Option<&PushPullSend<A>> {
        self.queue.front()
    }

    /// The oldest transfer, about to write a datagram.
    fn start_front(&mut self) -> Option<&mut PushPullSend<A>> {
        self.front_leaves_waiting();
        self.queue.front_mut()
    }

    /// Take the oldest transfer off; a join storm's queue gives its memory
    /// back once it has drained.
    fn pop_front(&mut self) {
        self.front_leaves_waiting();
        if self.queue.pop_front().is_some() {
            self.popped = self.popped.wrapping_add(1);
        }
        if self.queue.is_empty() && self.queue.capacity() > 4 * SENDS_RESERVE {
            self.queue.shrink_to(SENDS_RESERVE);
        }
    }
}

/// Transfers held for verification (dense), found by the sequence of the
/// ping that verifies their requester with one lookup, and their deadlines
/// in order. A deadline whose transfer was released or pinged again since
/// stays in the order until it comes due, at most a protocol period, and
/// is skipped then; the order is compacted should such entries outnumber
/// the held ones.
#[derive(Debug)]
struct HeldTransfers<A> {
    held: Vec<Parked<A>>,
    /// Sequence to the index in `held`.
    by_seq: KeyMap,
    /// (due, seq), in due order: each entry's due is now plus one protocol
    /// period when pushed.
    due: VecDeque<(Instant, u32)>,
}

impl<A: Address> HeldTransfers<A> {
    fn new(secret: u64) -> Self {
        HeldTransfers {
            held: Vec::with_capacity(PARKED_RESERVE),
            by_seq: KeyMap::new(secret),
            due: VecDeque::with_capacity(PARKED_RESERVE),
        }
    }

    fn len(&self) -> usize {
        self.held.len()
    }

    fn index_of(&self, seq: u32) -> Option<usize> {
        self.by_seq.get(seq).map(|i| i as usize)
    }

    /// Hold `parked`; false (and nothing held) when its sequence is held
    /// already.
    fn hold(&mut self, parked: Parked<A>) -> bool {
        if self.index_of(parked.seq).is_some() {
            return false;
        }
        self.due.push_back((parked.due, parked.seq));
        self.by_seq.insert(parked.seq, self.held.len() as u32);
        self.held.push(parked);
        if self.due.len() > 2 * self.held.len() + PARKED_RESERVE {
            let (held, by_seq) = (&self.held, &self.by_seq);
            self.due
                .retain(|&(due, seq)| by_seq.get(seq).and_then(|i| held.get(i as usize)).is_some_and(|p| p.due == due));
        }
        true
    }

    /// The earliest deadline (perhaps of an entry to skip: waking for it
    /// early costs one look).
    fn next_due(&self) -> Option<Instant> {
        self.due.front().map(|(due, _)| *due)
    }

    /// The next held transfer due at or before `now`, taken out.
    fn pop_due(&mut self, now: Instant) -> Option<Parked<A>> {
        while let Some(&(due, seq)) = self.due.front().filter(|(due, _)| *due <= now) {
            self.due.pop_front();
            let live = self.index_of(seq).and_then(|i| self.held.get(i)).is_some_and(|p| p.due == due);
            if live {
                return self.take(seq);
            }
        }
        self.shrink();
        None
    }

    /// The transfer held for the ping `seq` to `from`, taken out.
    fn release(&mut self, from: &A, seq: u32) -> Option<Parked<A>> {
        let i = self.index_of(seq)?;
        if self.held.get(i).is_some_and(|p| p.send.to == *from) {
            return self.take(seq);
        }
        None
    }

    fn take(&mut self, seq: u32) -> Option<Parked<A>> {
        let i = self.by_seq.remove(seq)? as usize;
        if i >= self.held.len() {
            return None;
        }
        let parked = self.held.swap_remove(i);
        if let Some(moved) = self.held.get(i) {
            self.by_seq.insert(moved.seq, i as u32);
        }
        self.shrink();
        Some(parked)
    }

    /// After a storm, the memory goes back.
    fn shrink(&mut self) {
        if self.held.is_empty() && self.held.capacity() > 4 * PARKED_RESERVE {
            self.held = Vec::with_capacity(PARKED_RESERVE);
        }
        if self.held.is_empty() && self.due.capacity() > 4 * PARKED_RESERVE {
            self.due.clear();
            self.due.shrink_to(PARKED_RESERVE);
        }
    }
}

/// Pings sent to verify one requester, a protocol period apart, before its
/// transfer is dropped a period after the last: under 10% loss a ping and
/// its answer both arrive four times in five, so three leave about one
/// transfer in a hundred to the requester's retry; and a slow requester
/// (a starved process answering a second late, as in Lifeguard's
/// experiments) is still heard.
const VERIFY_PINGS: u8 = 3;

/// A digest the node is to send (see [`crate::digest`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SendDigest<A> {
    /// Its receiver.
    pub to: A,
    /// Whether it asks for the receiver's digest back (the first leg).
    pub reply_wanted: bool,
    /// The exchange it belongs to.
    pub exchange: u32,
    /// Buckets: `1 << log2`.
    pub log2: u8,
}

/// A bare ping the node is to send to `to` under `seq`, to verify an
/// address before our state goes to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VerifyPing<A> {
    /// The address to verify.
    pub to: A,
    /// The ping's sequence; its ack goes to [`Exchanges::on_verify_ack`].
    pub seq: u32,
}

/// What a peer's digest earns: our digest back (on the first leg), and
/// perhaps a ping to verify it before our differing members go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DigestAnswer<A> {
    /// Our digest, to send first.
    pub digest: Option<SendDigest<A>>,
    /// A verification ping, to send after it.
    pub verify: Option<VerifyPing<A>>,
}

/// One datagram of the oldest transfer, as [`Exchanges::write_transfer`]
/// wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Chunk<A> {
    /// Not even the header fitted.
    TooSmall,
    /// Nothing (more) in the wanted buckets: the caller drops the transfer.
    Empty,
    /// Members written, to go to `to`; a finished transfer is dropped already.
    Wrote {
        /// The transfer's receiver.
        to: A,
    },
}

/// Every exchange this node runs or answers, its join, and the seeds.
#[derive(Debug)]
pub(crate) struct Exchanges<A> {
    seeds: Vec<A>,
    join: Option<Join>,
    follow_up: Option<FollowUp<A>>,
    periodic_try: Option<PeriodicTry>,
    next_push_pull: Instant,
    /// The interval the last periodic exchange was scheduled with.
    push_pull_every: Duration,
    periodic_rounds: u32,
    push_pull_sends: TransferQueue<A>,
    /// Addresses that answered one of our pings lately (oldest first):
    /// state goes to them at once.
    verified: RecentSet<A>,
    /// Exchanges this node asked for lately, by whom (oldest first).
    asked: VecDeque<(A, u32, Ask)>,
    /// State transfers held until their requester answers a ping.
    parked: HeldTransfers<A>,
    next_exchange: u32,
    /// The last exchange started with a digest.
    last_digest_exchange: Option<u32>,
    replied: VecDeque<(A, u32)>,
    /// What the exchanges take from the configuration.
    limits: ExchangeLimits,
    /// Paces the transfers' datagrams (`Config::transfer_rate`).
    pace: Pacer,
}

/// The configuration the exchanges follow, copied once.
#[derive(Debug, Clone, Copy)]
struct ExchangeLimits {
    /// `Config::push_pull_interval`: the periodic exchange's base interval
    /// (zero: none).
    push_pull_interval: Duration,
    probe_interval: Duration,
    /// `Config::probe_timeout`: how long after a join reply's first
    /// datagram the rest of it has arrived or been lost.
    probe_timeout: Duration,
    join_retry_interval: Duration,
    join_retry_max_interval: Duration,
    max_push_pull_sends: usize,
    /// Transfers held for verification, at most (`max_push_pull_sends`).
    max_parked: usize,
    max_seeds: usize,
}

impl<A: Address> Exchanges<A> {
    /// No exchange yet. Exchange numbers start at `first_exchange`, drawn at
    /// random: a restarted process must not repeat its predecessor's, or
    /// peers that remember answering those ignore its first requests.
    pub fn new(first_exchange: u32, verified_key: u64, config: &Config) -> Self {
        Exchanges {
            seeds: Vec::new(),
            join: None,
            follow_up: None,
            periodic_try: None,
            next_push_pull: Instant::ZERO,
            push_pull_every: Duration::ZERO,
            periodic_rounds: 0,
            push_pull_sends: TransferQueue::new(
                config.max_push_pull_sends.min(SENDS_RESERVE),
                digest::finalize(verified_key ^ 0x7472_616e_7366_6572),
            ),
            verified: RecentSet::new(VERIFIED_MEMORY, verified_key),
            asked: VecDeque::with_capacity(REPLIED_MEMORY),
            parked: HeldTransfers::new(digest::finalize(verified_key ^ 0x6865_6c64)),
            next_exchange: first_exchange,
            last_digest_exchange: None,
            replied: VecDeque::with_capacity(REPLIED_MEMORY),
            limits: ExchangeLimits {
                push_pull_interval: config.push_pull_interval,
                probe_interval: config.probe_interval,
                probe_timeout: config.probe_timeout,
                join_retry_interval: config.join_retry_interval,
                join_retry_max_interval: config.join_retry_max_interval,
                max_push_pull_sends: config.max_push_pull_sends,
                max_parked: config.max_push_pull_sends,
                max_seeds: config.max_seeds,
            },
            pace: Pacer::new(config.transfer_rate, config.max_datagram_size),
        }
    }

    /// Schedule the first periodic exchange at `at`, for the interval
    /// `every` ([`Exchanges::periodic_interval`]; the node staggers `at`
    /// within it so nodes started together do not exchange in lock-step).
    pub fn first_periodic(&mut self, every: Duration, at: Instant) {
        self.push_pull_every = every;
        self.next_push_pull = at;
    }

    /// memberlist `pushPullScale`: above 32 members the interval grows with
    /// log2 of the cluster size, so total exchange traffic stays bounded.
    pub fn periodic_interval(&self, live_members: u32) -> Duration {
        let n = live_members;
        let base = self.limits.push_pull_interval;
        if n <= 32 {
            return base;
        }
        let multiplier = (n - 1).ilog2() + 1 - 5 + 1;
        crate::time::scale(base, multiplier)
    }

    // ----- timers ----------------------------------------------------------

    /// The earliest of the exchanges' timers: the periodic exchange (if
    /// configured), the next join attempt, the next follow-up, the periodic
    /// round's retry, the next verification ping.
    pub fn next_deadline(&self) -> Option<Instant> {
        let periodic = (!self.limits.push_pull_interval.is_zero()).then_some(self.next_push_pull);
        let timers = [
            periodic,
            self.join.as_ref().map(|j| j.next_attempt),
            self.follow_up.as_ref().map(|f| f.at),
            self.periodic_try.as_ref().map(|t| t.retry_at),
            self.parked.next_due(),
        ];
        timers.into_iter().flatten().min()
    }

    /// Whether the periodic exchange is due (never when not configured).
    pub fn periodic_due(&self, now: Instant) -> bool {
        !self.limits.push_pull_interval.is_zero() && self.next_push_pull <= now
    }

    /// Whether the next join attempt is due.
    pub fn join_due(&self, now: Instant) -> bool {
        self.join.as_ref().is_some_and(|j| j.next_attempt <= now)
    }

    /// Whether the next follow-up is due.
    pub fn follow_up_due(&self, now: Instant) -> bool {
        self.follow_up.as_ref().is_some_and(|f| f.at <= now)
    }

    /// Whether the periodic exchange in flight is due another try.
    pub fn retry_due(&self, now: Instant) -> bool {
        self.periodic_try.as_ref().is_some_and(|t| t.retry_at <= now)
    }

    // ----- joining ---------------------------------------------------------

    /// Whether a join is still trying to reach its seeds.
    pub fn is_joining(&self) -> bool {
        self.join.is_some()
    }

    /// Take `seeds` as the seeds (without `me` or repeats, at most
    /// `max_seeds`) and start joining through them now: true when there are
    /// any, and the node then makes the first attempt
    /// ([`Exchanges::join_attempt`]).
    pub fn join(&mut self, now: Instant, seeds: &[A], me: &A) -> bool {
        self.seeds.clear();
        for seed in seeds {
            if seed != me && !self.seeds.contains(seed) && self.seeds.len() < self.limits.max_seeds {
                self.seeds.push(seed.clone());
            }
        }
        if self.seeds.is_empty() {
            self.join = None;
            false
        } else {
            self.join = Some(Join { attempt: 0, next_attempt: now });
            true
        }
    }

    /// `from` pinged us. A seed that pings a joiner has its request (the
    /// ping verifies the joiner before the table goes), so the table waits
    /// behind others' in the seed's queue, and asking again a second later
    /// only costs the seed: in a 20,000-node join storm the 15,000 joiners
    /// whose tables were still queued at 1 s asked again at once, over the
    /// seed's inbound budget. The next attempt then waits
    /// [`SEED_BUSY_RETRY`] retry intervals from now; a request or table
    /// lost on the way still gets its retry, later.
    pub fn pinged_by(&mut self, now: Instant, from: &A) {
        let Some(join) = self.join.as_mut() else { return };
        if self.seeds.contains(from) {
            let later = now + crate::time::scale(self.limits.join_retry_interval, SEED_BUSY_RETRY);
            join.next_attempt = join.next_attempt.max(later.min(now + self.limits.join_retry_max_interval));
        }
    }

    /// Stop joining (this node is leaving).
    pub fn stop_joining(&mut self) {
        self.join = None;
    }

    /// One round of contacting every seed; backoff doubles up to its cap.
    pub fn join_attempt(&mut self, now: Instant, stats: &mut Stats) {
        let Some(join) = self.join.as_mut() else {
            return;
        };
        let doublings = join.attempt.saturating_sub(JOIN_STEADY_RETRIES).min(16);
        let backoff = crate::time::scale(self.limits.join_retry_interval, 1u32 << doublings)
            .min(self.limits.join_retry_max_interval);
        join.attempt = join.attempt.saturating_add(1);
        join.next_attempt = now + backoff;
        stats.join_attempts += 1;
        for i in 0..self.seeds.len() {
            if let Some(seed) = self.seeds.get(i).cloned() {
                self.start_push_pull(seed, Ask::Join, stats);
            }
        }
    }

    /// With every other member gone (`live_members` counts this node), go
    /// back to the seeds (if any): a node cut off long enough to have
    /// declared everyone dead finds its way back.
    pub fn maybe_rejoin(&mut self, now: Instant, live_members: u32, stats: &mut Stats) {
        if self.join.is_none() && !self.seeds.is_empty() && live_members <= 1 {
            self.join = Some(Join { attempt: 0, next_attempt: now });
            self.join_attempt(now, stats);
        }
    }

    // ----- starting exchanges ----------------------------------------------

    /// Ask `to` for a full-state exchange; the exchange started, if any
    /// (none while the transfers in flight are at their bound).
    fn start_push_pull(&mut self, to: A, ask: Ask, stats: &mut Stats) -> Option<u32> {
        if self.push_pull_sends.len() >= self.limits.max_push_pull_sends {
            stats.push_pull_refused += 1;
            return None;
        }
        self.next_exchange = self.next_exchange.wrapping_add(1);
        stats.push_pulls += 1;
        self.remember_asked(&to, self.next_exchange, ask);
        self.push_pull_sends.push(PushPullSend {
            to,
            reply_wanted: true,
            join: ask == Ask::Join,
            exchange: self.next_exchange,
            cursor: Some(0),
            only: None,
        });
        Some(self.next_exchange)
    }

    /// A periodic or follow-up exchange with `to`: the whole table when it
    /// is small (`table_len` members), else a digest first, returned for
    /// the node to send, so only what differs is sent. The exchange
    /// started, if any.
    pub fn start_exchange(
        &mut self,
        to: A,
        ask: Ask,
        table_len: usize,
        stats: &mut Stats,
    ) -> Option<(u32, Option<SendDigest<A>>)> {
        if table_len <= digest::MIN_MEMBERS {
            return self.start_push_pull(to, ask, stats).map(|e| (e, None));
        }
        self.next_exchange = self.next_exchange.wrapping_add(1);
        stats.push_pulls += 1;
        self.remember_asked(&to, self.next_exchange, ask);
        let log2 = digest::bucket_log2(table_len);
        let exchange = self.next_exchange;
        self.last_digest_exchange = Some(exchange);
        Some((exchange, Some(SendDigest { to, reply_wanted: true, exchange, log2 })))
    }

    /// Remember an exchange we asked `to` for: an answer naming it proves
    /// the answerer receives what is sent to its address (exchange numbers
    /// start at random; an outsider cannot see them).
    fn remember_asked(&mut self, to: &A, exchange: u32, ask: Ask) {
        if self.asked.len() >= REPLIED_MEMORY {
            self.asked.pop_front();
        }
        self.asked.push_back((to.clone(), exchange, ask));
    }

    // ----- the periodic round ----------------------------------------------

    /// The periodic exchange came due: schedule the next, and unless
    /// `leaving`, start this round. True when the node is then to exchange
    /// with a random member (tombstones included) and watch it
    /// ([`Exchanges::watch_periodic`]).
    ///
    /// The interval grows with the cluster (`interval`, from
    /// [`Exchanges::periodic_interval`]). Nodes that started together drew
    /// their first exchange within the small cluster's interval, and kept
    /// to that fraction of every larger one: at 100 members all exchanges
    /// fell in one 30 s stretch of each 90 s, and a partition that healed
    /// outside it waited for the next (30 s at 100 nodes). When the
    /// interval changes, the next exchange is drawn again within it
    /// (`jitter`: a uniform draw below its argument), so the cluster's
    /// exchanges spread evenly over time; no gap is ever longer than the
    /// interval.
    pub fn periodic_round(
        &mut self,
        now: Instant,
        interval: Duration,
        jitter: impl FnOnce(Duration) -> Duration,
        leaving: bool,
        is_live_member: impl Fn(&A) -> bool,
        stats: &mut Stats,
    ) -> bool {
        let next = if interval == self.push_pull_every { interval } else { jitter(interval) };
        self.push_pull_every = interval;
        self.next_push_pull = now + next;
        if leaving {
            return false;
        }
        // Every other round, the seeds we do not hold as live, if any:
        // after a partition that outlasted the tombstones, the two sides
        // have forgotten each other and the seeds are the only way back
        // (memberlist leaves this to operators re-joining by hand). All of
        // them, as a join asks every seed: one picked at random was, for a
        // node whose seeds were a crashed member and the cluster's first
        // node, the crashed one twice running, and it stayed cut off for
        // over a minute. Seeds are the operator's list, at most
        // `max_seeds`, and each costs one exchange per two rounds. Besides
        // the exchange with a live member, not instead of it: a seed that
        // is gone for good would otherwise take every other round.
        self.periodic_rounds = self.periodic_rounds.wrapping_add(1);
        if self.periodic_rounds % 2 == 0 {
            for i in 0..self.seeds.len() {
                let Some(seed) = self.seeds.get(i) else { break };
                if !is_live_member(seed) {
                    let seed = seed.clone();
                    self.start_push_pull(seed, Ask::Periodic, stats);
                }
            }
        }
        self.periodic_try = None;
        true
    }

    /// The periodic round's exchange number `tries + 1` started as
    /// `exchange`: watch it for an answer, and try another member if none
    /// comes in time. The first try is with any member, tombstones included
    /// (after a partition the other side is all tombstones, and one
    /// exchange across heals more than a ping to one of them: 1,000 nodes
    /// split in halves saw each other 5.3 s after the heal, 19.0 s with
    /// live members only); the retries with live members only, since a
    /// member held dead that did not answer most likely crashed, and two
    /// crashes in a cluster of six took the round's exchange two times in
    /// five.
    pub fn watch_periodic(&mut self, now: Instant, exchange: u32, tries: u8) {
        // Long enough for a slow peer to answer (Lifeguard's starved
        // processes answer a second or more late), short enough that
        // every try falls within the round.
        let wait =
            crate::time::scale(self.limits.probe_interval, 2).min(self.push_pull_every / u32::from(PERIODIC_TRIES + 1));
        self.periodic_try = Some(PeriodicTry { exchange, retry_at: now + wait, tries: tries + 1 });
    }

    /// The periodic exchange went unanswered: the tries made so far, when
    /// the node is to try another member (up to [`PERIODIC_TRIES`] a round,
    /// and not while `leaving`).
    pub fn periodic_retry(&mut self, leaving: bool) -> Option<u8> {
        let t = self.periodic_try.take()?;
        (t.tries < PERIODIC_TRIES && !leaving).then_some(t.tries)
    }

    // ----- follow-ups ------------------------------------------------------

    /// The follow-up came due: the round it is and whom to make it with,
    /// when the node is to make it (an exchange with the seed if it is
    /// still a live member, else with a random live member; then
    /// [`Exchanges::followed_up`]). Follow-ups stop once one taught
    /// nothing, and while `leaving`. The seed is asked first, and again
    /// while its last answer showed a view unlike ours: it has verified us
    /// (a random member holds its state until we answer its ping, a round
    /// trip more to lose under loss, and six such exchanges lost in a row
    /// left a node of a thousand lacking 51 members for 10 s at 10% loss).
    pub fn follow_up_round(&mut self, leaving: bool) -> Option<FollowUpDue<A>> {
        let follow_up = self.follow_up.take()?;
        if (follow_up.round > 0 && follow_up.taught_nothing()) || leaving {
            return None;
        }
        let stay = follow_up.round == 0 || follow_up.differed;
        Some(FollowUpDue { round: follow_up.round, seed: follow_up.seed.filter(|_| stay) })
    }

    /// Follow-up `round` started `exchange` (if any), with `seed` if it went
    /// to the seed: schedule the next, up to [`MAX_FOLLOW_UPS`]. Once a
    /// follow-up goes to a random member, the rest do too.
    pub fn followed_up(&mut self, now: Instant, round: u32, exchange: Option<u32>, seed: Option<A>) {
        let round = round + 1;
        if round < MAX_FOLLOW_UPS {
            let at = now + self.limits.probe_interval;
            let by_digest = exchange.is_some() && exchange == self.last_digest_exchange;
            self.follow_up = Some(FollowUp { at, round, exchange, seed, by_digest, ..FollowUp::first(at) });
        }
    }

    /// Whether a full-state reply from `from` arriving now is part of the
    /// reply to our join: its first datagram (we are still joining), or a
    /// later one from the seed that answered, before the first follow-up.
    pub fn in_join_reply(&self, from: &A) -> bool {
        self.join.is_some() || self.follow_up.as_ref().is_some_and(|f| f.round == 0 && f.seed.as_ref() == Some(from))
    }

    /// Whether this node may catch up with a member that told it news it
    /// missed (see the node's `catch_up`): one catch-up at a time, and none
    /// while joining.
    pub fn may_catch_up(&self) -> bool {
        self.follow_up.is_none() && self.join.is_none()
    }

    /// A catch-up exchange started: follow it up as after a join.
    pub fn caught_up(&mut self, now: Instant) {
        self.follow_up = Some(FollowUp::first(now + self.limits.probe_interval));
    }

    /// A member new to us (or back from the dead) was learned: counted
    /// against the follow-ups, if they are running. Returns whether they
    /// are.
    pub fn learned(&mut self) -> bool {
        match self.follow_up.as_mut() {
            Some(f) => {
                f.learned += 1;
                true
            }
            None => false,
        }
    }

    // ----- answers ---------------------------------------------------------

    /// After merging a push-pull datagram: answer a request once per
    /// exchange; a reply means our join got through. The verification ping
    /// to send, if our answer is held for one (`next_seq` gives its
    /// sequence).
    pub fn on_push_pull(
        &mut self,
        now: Instant,
        (from, reply_wanted, exchange): (&A, bool, u32),
        stats: &mut Stats,
        next_seq: impl FnOnce() -> u32,
    ) -> Option<VerifyPing<A>> {
        if !reply_wanted {
            self.answered_us(from, exchange);
            if let Some(f) = self.follow_up.as_mut() {
                if f.by_digest {
                    f.differed(exchange);
                } else {
                    f.agreed(exchange);
                }
            }
            if self.join.take().is_some() {
                // A probe timeout on, the reply has ended (its datagrams go
                // back to back), lost datagrams and all, and the seed has
                // heard from whoever joined meanwhile.
                let first = FollowUp::first(now + self.limits.probe_timeout);
                self.follow_up = Some(FollowUp { seed: Some(from.clone()), ..first });
            }
            return None;
        }
        if !self.first_request(from, exchange) {
            return None;
        }
        self.send_state(now, from, exchange, None, stats, next_seq)
    }

    /// A member's digest (`hashes`, compared against our table; the node
    /// refuses strangers' before this): our members in the buckets that
    /// differ go to it and, on the first leg, our own digest so the peer
    /// sends us what we lack.
    pub fn on_digest(
        &mut self,
        now: Instant,
        (from, reply_wanted, exchange): (&A, bool, u32),
        (members, hashes): (&Members<A>, &[u8]),
        stats: &mut Stats,
        next_seq: impl FnOnce() -> u32,
    ) -> DigestAnswer<A> {
        let mut answer = DigestAnswer { digest: None, verify: None };
        if reply_wanted && !self.first_request(from, exchange) {
            return answer;
        }
        if !reply_wanted {
            self.answered_us(from, exchange);
        }
        let differing = BucketSet::differing(members, hashes);
        if !reply_wanted {
            if let Some(f) = self.follow_up.as_mut() {
                if differing.is_empty() {
                    f.agreed(exchange);
                } else {
                    f.differed(exchange);
                }
            }
        }
        if reply_wanted {
            let log2 = differing.log2;
            answer.digest = Some(SendDigest { to: from.clone(), reply_wanted: false, exchange, log2 });
        }
        if !differing.is_empty() {
            answer.verify = self.send_state(now, from, exchange, Some(differing), stats, next_seq);
        }
        answer
    }

    /// Whether this (sender, exchange) is new; remembers it. A request that
    /// spans several datagrams, or is duplicated, gets one answer.
    fn first_request(&mut self, from: &A, exchange: u32) -> bool {
        if self.replied.iter().any(|(a, e)| a == from && *e == exchange) {
            return false;
        }
        if self.replied.len() >= REPLIED_MEMORY {
            self.replied.pop_front();
        }
        self.replied.push_back((from.clone(), exchange));
        true
    }

    /// Send our members (all, or those in `only`) as push-pull datagrams
    /// that want no reply, within the bound on concurrent transfers; to an
    /// address not verified lately, only once it answers the ping returned.
    fn send_state(
        &mut self,
        now: Instant,
        to: &A,
        exchange: u32,
        only: Option<BucketSet>,
        stats: &mut Stats,
        next_seq: impl FnOnce() -> u32,
    ) -> Option<VerifyPing<A>> {
        let send = PushPullSend { to: to.clone(), reply_wanted: false, join: false, exchange, cursor: Some(0), only };
        if !self.verified.contains(to) {
            // Held: one bare ping goes out now, the state once it is answered.
            // A seed answering a join storm holds one per joiner for a round
            // trip; past the bound the request is refused (its sender asks
            // again), so what is held keeps the pings already sent. A
            // request asked again while held (the replied memory missed it)
            // is held again, and its answers fold into one when released.
            if self.parked.len() >= self.limits.max_parked {
                stats.push_pull_refused += 1;
                return None;
            }
            let seq = next_seq();
            stats.state_verifications += 1;
            let due = now + self.limits.probe_interval;
            if !self.parked.hold(Parked { seq, send, due, pings: 1 }) {
                stats.push_pull_refused += 1;
            }
            return Some(VerifyPing { to: to.clone(), seq });
        }
        self.queue_transfer(send, stats);
        None
    }

    /// Queue a transfer behind the others, within the bound. An answer to
    /// an address already waiting for one that has not started is folded
    /// into it (under the newer exchange), the buckets of both in one: a
    /// joiner whose answer waits behind a join storm's asks again, and one
    /// table answers both; and however many digests arrive from an address
    /// (its own, or spoofed ones), it has at most one answer waiting.
    fn queue_transfer(&mut self, send: PushPullSend<A>, stats: &mut Stats) {
        if !send.reply_wanted {
            if let Some(waiting) = self.push_pull_sends.waiting_for(&send.to) {
                waiting.exchange = send.exchange;
                waiting.only = match (waiting.only, send.only) {
                    (Some(a), Some(b)) => a.union(&b),
                    _ => None,
                };
                stats.push_pull_folded += 1;
                return;
            }
        }
        if self.push_pull_sends.len() >= self.limits.max_push_pull_sends {
            stats.push_pull_refused += 1;
            return;
        }
        self.push_pull_sends.push(send);
    }

    /// A reply under an exchange we asked `from` for: it is verified.
    fn answered_us(&mut self, from: &A, exchange: u32) {
        if self.asked.iter().any(|(a, e, _)| a == from && *e == exchange) {
            self.verified(from);
            if self.periodic_try.as_ref().is_some_and(|t| t.exchange == exchange) {
                self.periodic_try = None;
            }
        }
    }

    /// Whether the members new to us in `from`'s reply under `exchange` go
    /// out quietly (not at all, or as one echo each) rather than as news:
    /// they do after our join or its follow-ups (the rest of the cluster
    /// knows them), and for a reply we cannot place; after a periodic
    /// exchange they are news to our whole side (a partition that outlasted
    /// the tombstones, the reply of an absent seed), and one echo, to one
    /// peer, leaves the rest of our side not knowing them until its own
    /// periodic exchanges.
    pub fn reply_is_quiet(&self, from: &A, exchange: u32) -> bool {
        !self.asked.iter().any(|(a, e, ask)| a == from && *e == exchange && *ask == Ask::Periodic)
    }

    /// `from` answered one of our pings: state asked of us goes to it at
    /// once from now on.
    pub fn verified(&mut self, from: &A) {
        self.verified.insert(from);
    }

    /// The next verification ping due at or before `now` (a requester whose
    /// answer is overdue); requesters pinged [`VERIFY_PINGS`] times are
    /// dropped on the way. Entries are in due order (each retry goes to the
    /// back), so this looks at the front only. Call until `None`.
    pub fn poll_parked(&mut self, now: Instant, stats: &mut Stats) -> Option<VerifyPing<A>> {
        while let Some(mut p) = self.parked.pop_due(now) {
            if p.pings >= VERIFY_PINGS {
                stats.push_pull_refused += 1;
                continue;
            }
            p.pings += 1;
            p.due = now + self.limits.probe_interval;
            let ping = VerifyPing { to: p.send.to.clone(), seq: p.seq };
            self.parked.hold(p);
            return Some(ping);
        }
        None
    }

    /// An ack that may answer a verification ping: release the state it
    /// held. False when it answers none.
    pub fn on_verify_ack(&mut self, from: &A, seq: u32, stats: &mut Stats) -> bool {
        let Some(parked) = self.parked.release(from, seq) else {
            return false;
        };
        self.verified(from);
        self.queue_transfer(parked.send, stats);
        true
    }

    // ----- transfers -------------------------------------------------------

    /// Whether a full-state transfer waits to be sent.
    pub fn has_transfer(&self) -> bool {
        !self.push_pull_sends.is_empty()
    }

    /// Whether a transfer's next datagram may go at `now`: one waits, and
    /// the pacer has room.
    pub fn transfer_ready(&self, now: Instant) -> bool {
        self.has_transfer() && self.pace.ready(now)
    }

    /// A transfer datagram of `bytes` went at `now`.
    pub fn transfer_sent(&mut self, now: Instant, bytes: usize) {
        self.pace.sent(now, bytes);
    }

    /// When a waiting transfer may go on, if the pacer holds it at `now`.
    pub fn pace_deadline(&self, now: Instant) -> Option<Instant> {
        self.pace.ready_at(now).filter(|_| self.has_transfer())
    }

    /// Whether the oldest transfer's datagrams are sealed for their
    /// receiver alone: all but a join request, which goes to a seed by an
    /// address that may not be the seed's identity. `None` with none.
    pub fn transfer_bound(&self) -> Option<bool> {
        self.push_pull_sends.front().map(|s| !s.join)
    }

    /// Give up the oldest transfer (its datagram could not be made).
    pub fn drop_transfer(&mut self) {
        self.pop_transfer();
    }

    /// The oldest transfer is done (or given up). A join storm's queue gives
    /// its memory back once it has drained.
    fn pop_transfer(&mut self) {
        self.push_pull_sends.pop_front();
    }

    /// Write the next datagram of the oldest transfer into `w`: its header,
    /// then members walking the table in address-hash order from the
    /// transfer's cursor (only the differing buckets' runs, when answering
    /// a digest), each naming its suspicion's accuser (else `me`), until
    /// the datagram is full. A finished transfer is dropped.
    pub fn write_transfer(
        &mut self,
        w: &mut Writer<'_>,
        members: &Members<A>,
        suspicions: &Suspicions<A>,
        me: &A,
    ) -> Option<Chunk<A>> {
        let send = self.push_pull_sends.start_front()?;
        let header: Message<'_, A> =
            Message::PushPull { reply_wanted: send.reply_wanted, join: send.join, exchange: send.exchange };
        if header.encode(w).is_err() {
            return Some(Chunk::TooSmall);
        }
        let mut wrote_any = false;
        while let Some(from) = send.cursor {
            let Some((handle, hash)) = members.next_in_hash_order(from, send.only.as_ref()) else {
                send.cursor = None;
                break;
            };
            let Some(e) = members.get(handle) else {
                send.cursor = hash.checked_add(1);
                continue;
            };
            let mark = w.len();
            let accuser = suspicions.accuser_or(handle, me);
            let meta = members.meta(handle);
            if wire::encode_update(w, &e.addr, e.state, e.incarnation, e.instance, meta, Some(accuser)).is_err() {
                w.truncate(mark);
                if wrote_any {
                    break; // the datagram is full: resume here next time
                }
                // Cannot happen with a validated config (one update always
                // fits); skip rather than loop forever.
            } else {
                wrote_any = true;
            }
            send.cursor = hash.checked_add(1);
        }
        let to = send.to.clone();
        let done = send.cursor.is_none();
        if !wrote_any {
            return Some(Chunk::Empty);
        }
        if done {
            self.pop_transfer();
        }
        Some(Chunk::Wrote { to })
    }
}
