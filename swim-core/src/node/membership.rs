//! The membership life cycle around failure detection: joining through
//! seeds with backoff, full-state (push-pull) exchanges that heal
//! partitions, gossip rounds, and reaping tombstones.

use core::time::Duration;

use rand_core::RngCore;

use super::{Node, Pending};
use crate::addr::Address;
use crate::digest::{self, BucketSet};
use crate::time::Instant;

/// A join still waiting for any seed to answer.
#[derive(Debug, Clone)]
pub(crate) struct Join {
    pub attempt: u32,
    pub next_attempt: Instant,
}

/// Full-state exchanges with random members shortly after joining: when
/// many members join at once, the first ones' replies predate the later
/// ones, and gossip alone leaves a few pairs unaware of each other until the
/// periodic exchange, which can be minutes away in a large cluster. The
/// first follow-up always happens; further ones, a probe interval apart,
/// until one finds the peer's view like ours and nothing new was learned
/// meanwhile.
#[derive(Debug, Clone)]
pub(crate) struct FollowUp {
    pub at: Instant,
    /// Members learned since the join (or the last follow-up), by gossip or
    /// from the last follow-up's reply: a sign the view is still filling in.
    pub learned: u32,
    /// Follow-ups made so far.
    pub round: u32,
    /// The exchange the last follow-up started, and whether its peer's
    /// answer showed the same view as ours. Only that says the view is
    /// complete: an exchange lost on the way taught nothing because it
    /// never happened, and one whose state transfer was lost after digests
    /// that differed taught nothing because the state never came.
    pub exchange: Option<u32>,
    pub agreed: bool,
}

impl FollowUp {
    fn first(at: Instant) -> Self {
        FollowUp { at, learned: 0, round: 0, exchange: None, agreed: false }
    }

    /// The peer of the last follow-up answered under `exchange` with a view
    /// like ours (a digest that matched, or the whole state).
    fn agreed(&mut self, exchange: u32) {
        if self.exchange == Some(exchange) {
            self.agreed = true;
        }
    }
}

/// This round's periodic exchange, until its peer answers. Under loss an
/// exchange is lost as often as any of its datagrams (about one in five at
/// 10%), and the next round is a whole interval away: a node that missed
/// a join's gossip stayed unaware of the joiner for two intervals (60 s at
/// LAN timings) after its one exchange of the round went unanswered.
#[derive(Debug, Clone)]
pub(crate) struct PeriodicTry {
    /// The exchange awaiting an answer.
    pub exchange: u32,
    /// When to try another member if none came.
    pub retry_at: Instant,
    /// Exchanges made this round.
    pub tries: u8,
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

/// A full-state transfer being sent, one datagram per poll, straight from the
/// member table (no copy of the state is made).
#[derive(Debug, Clone)]
pub(crate) struct PushPullSend<A> {
    pub to: A,
    pub reply_wanted: bool,
    pub join: bool,
    pub exchange: u32,
    /// Where the transfer resumes: the first member whose address hash is
    /// at least this (the table is walked in hash order, so members learned
    /// or reaped meanwhile neither stall nor repeat it); `None` when done.
    pub cursor: Option<u64>,
    /// Only members in these buckets (answering a digest), or all.
    pub only: Option<BucketSet>,
}

/// Exchanges answered recently, so a multi-datagram request gets one reply.
pub(crate) const REPLIED_MEMORY: usize = 32;

/// Transfers a node can hold for verification without allocating: steady
/// state parks one or two at a time (an exchange from a peer we have not
/// pinged lately); only a burst, a seed answering a join storm, grows the
/// queue past this.
pub(crate) const PARKED_RESERVE: usize = 8;

/// Addresses remembered as having answered our pings.
const VERIFIED_MEMORY: usize = 4096;

/// A state transfer held until its requester answers the ping `seq`: an
/// address that asks for our whole table must first show it receives what
/// is sent there, or one spoofed datagram would send the table to a victim.
#[derive(Debug, Clone)]
pub(crate) struct Parked<A> {
    pub seq: u32,
    pub send: PushPullSend<A>,
    /// When to ping again (a ping or its answer may be lost), or give up.
    pub due: Instant,
    pub pings: u8,
}

/// Pings sent to verify one requester, a protocol period apart, before its
/// transfer is dropped a period after the last: under 10% loss a ping and
/// its answer both arrive four times in five, so three leave about one
/// transfer in a hundred to the requester's retry; and a slow requester
/// (a starved process answering a second late, as in Lifeguard's
/// experiments) is still heard.
const VERIFY_PINGS: u8 = 3;

impl<A: Address, R: RngCore> Node<A, R> {
    /// One round of contacting every seed; backoff doubles up to its cap.
    pub(super) fn join_attempt(&mut self) {
        let Some(join) = self.join.as_mut() else {
            return;
        };
        let doublings = join.attempt.saturating_sub(JOIN_STEADY_RETRIES).min(16);
        let backoff = crate::time::scale(self.config.join_retry_interval, 1u32 << doublings)
            .min(self.config.join_retry_max_interval);
        join.attempt = join.attempt.saturating_add(1);
        join.next_attempt = self.now + backoff;
        self.stats.join_attempts += 1;
        for i in 0..self.seeds.len() {
            if let Some(seed) = self.seeds.get(i).cloned() {
                self.start_push_pull(seed, Ask::Join);
            }
        }
    }

    /// With every other member gone, go back to the seeds (if any): a node
    /// cut off long enough to have declared everyone dead finds its way back.
    pub(super) fn maybe_rejoin(&mut self) {
        if self.join.is_none() && !self.seeds.is_empty() && self.members.live() <= 1 {
            self.join = Some(Join { attempt: 0, next_attempt: self.now });
            self.join_attempt();
        }
    }

    /// Ask `to` for a full-state exchange; the exchange started, if any
    /// (none while the transfers in flight are at their bound).
    pub(super) fn start_push_pull(&mut self, to: A, ask: Ask) -> Option<u32> {
        if self.push_pull_sends.len() >= self.config.max_push_pull_sends {
            self.stats.push_pull_refused += 1;
            return None;
        }
        self.next_exchange = self.next_exchange.wrapping_add(1);
        self.stats.push_pulls += 1;
        self.remember_asked(&to, self.next_exchange, ask);
        self.push_pull_sends.push_back(PushPullSend {
            to,
            reply_wanted: true,
            join: ask == Ask::Join,
            exchange: self.next_exchange,
            cursor: Some(0),
            only: None,
        });
        Some(self.next_exchange)
    }

    /// After merging a push-pull datagram: answer a request once per
    /// exchange; a reply means our join got through.
    pub(super) fn on_push_pull(&mut self, from: &A, reply_wanted: bool, exchange: u32) {
        if !reply_wanted {
            self.answered_us(from, exchange);
            if let Some(f) = self.follow_up.as_mut() {
                f.agreed(exchange);
            }
            if self.join.take().is_some() {
                self.follow_up = Some(FollowUp::first(self.now + self.config.probe_interval));
            }
            return;
        }
        if !self.first_request(from, exchange) {
            return;
        }
        self.send_state(from, exchange, None);
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
    /// that want no reply, within the bound on concurrent transfers.
    fn send_state(&mut self, to: &A, exchange: u32, only: Option<BucketSet>) {
        let send = PushPullSend { to: to.clone(), reply_wanted: false, join: false, exchange, cursor: Some(0), only };
        if !self.verified.contains(to) {
            if self.parked.iter().any(|p| p.send.to == *to && p.send.exchange == exchange) {
                return; // asked again while held: the pings are under way
            }
            // Held: one bare ping goes out now, the state once it is answered.
            // As many as datagrams may wait to be sent: a seed answering a
            // join storm holds one per joiner for a round trip.
            if self.parked.len() >= self.config.max_pending_transmits {
                self.parked.pop_front();
                self.stats.push_pull_refused += 1;
            }
            let seq = self.next_seq();
            self.stats.state_verifications += 1;
            let due = self.now + self.config.probe_interval;
            self.parked.push_back(Parked { seq, send, due, pings: 1 });
            self.queue_transmit(Pending::Verify { to: to.clone(), seq });
            return;
        }
        if self.push_pull_sends.len() >= self.config.max_push_pull_sends {
            self.stats.push_pull_refused += 1;
            return;
        }
        self.push_pull_sends.push_back(send);
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

    /// A reply under an exchange we asked `from` for: it is verified.
    fn answered_us(&mut self, from: &A, exchange: u32) {
        if self.asked.iter().any(|(a, e, _)| a == from && *e == exchange) {
            self.verified_by(from);
            if self.periodic_try.as_ref().is_some_and(|t| t.exchange == exchange) {
                self.periodic_try = None;
            }
        }
    }

    /// Whether the members new to us in `from`'s reply under `exchange` go
    /// out as one echo each rather than as news: they do after our join or
    /// its follow-ups (the rest of the cluster knows them), and for a reply
    /// we cannot place; after a periodic exchange they are news to our
    /// whole side (a partition that outlasted the tombstones, the reply of
    /// an absent seed), and one echo, to one peer, leaves the rest of our
    /// side not knowing them until its own periodic exchanges.
    pub(super) fn reply_is_quiet(&self, from: &A, exchange: u32) -> bool {
        !self.asked.iter().any(|(a, e, ask)| a == from && *e == exchange && *ask == Ask::Periodic)
    }

    /// `from` answered our ping: remember it, and send any state it asked for.
    pub(super) fn verified_by(&mut self, from: &A) {
        if !self.verified.contains(from) {
            if self.verified.len() >= VERIFIED_MEMORY {
                self.verified.pop_front();
            }
            self.verified.push_back(from.clone());
        }
    }

    /// Ping again the requesters whose answer is overdue; drop those
    /// pinged [`VERIFY_PINGS`] times. Entries are in due order (each retry
    /// goes to the back), so this looks at the front only.
    pub(super) fn parked_timeouts(&mut self) {
        while self.parked.front().is_some_and(|p| p.due <= self.now) {
            let Some(mut p) = self.parked.pop_front() else { break };
            if p.pings >= VERIFY_PINGS {
                self.stats.push_pull_refused += 1;
                continue;
            }
            p.pings += 1;
            p.due = self.now + self.config.probe_interval;
            self.queue_transmit(Pending::Verify { to: p.send.to.clone(), seq: p.seq });
            self.parked.push_back(p);
        }
    }

    /// When the oldest held transfer's requester is next due a ping.
    pub(super) fn next_parked_due(&self) -> Option<Instant> {
        self.parked.front().map(|p| p.due)
    }

    /// The answer to a verification ping: release the state it held.
    pub(super) fn on_verify_ack(&mut self, from: &A, seq: u32) -> bool {
        let Some(i) = self.parked.iter().position(|p| p.seq == seq && p.send.to == *from) else {
            return false;
        };
        let Some(parked) = self.parked.remove(i) else { return false };
        self.verified_by(from);
        if self.push_pull_sends.len() >= self.config.max_push_pull_sends {
            self.stats.push_pull_refused += 1;
        } else {
            self.push_pull_sends.push_back(parked.send);
        }
        true
    }

    /// A periodic or follow-up exchange: the whole table when it is small,
    /// else a digest first so only what differs is sent. The exchange
    /// started, if any.
    pub(super) fn start_exchange(&mut self, to: A, ask: Ask) -> Option<u32> {
        if self.members.len() <= digest::MIN_MEMBERS {
            return self.start_push_pull(to, ask);
        }
        self.next_exchange = self.next_exchange.wrapping_add(1);
        self.stats.push_pulls += 1;
        self.remember_asked(&to, self.next_exchange, ask);
        let log2 = digest::bucket_log2(self.members.len());
        self.queue_transmit(Pending::Digest { to, reply_wanted: true, exchange: self.next_exchange, log2 });
        Some(self.next_exchange)
    }

    /// Start an exchange with a random member (live only, or tombstones
    /// too); the exchange started, if any.
    fn exchange_with_random_member(&mut self, allow_dead: bool, ask: Ask) -> Option<u32> {
        let peers = self.random_peers(1, None, allow_dead);
        let to = peers.first().and_then(|&h| self.members.get(h)).map(|e| e.addr.clone())?;
        self.start_exchange(to, ask)
    }

    /// A peer's digest: send our members in the buckets that differ and, on
    /// the first leg, our own digest so the peer sends us what we lack.
    pub(super) fn on_digest(&mut self, from: &A, reply_wanted: bool, exchange: u32, hashes: &[u8]) {
        // Only members exchange digests (a stranger joins with a full
        // PushPull): a stranger's digest of zeros would otherwise buy the
        // whole table with one small datagram.
        if !self.is_live_member(from) {
            self.stats.strangers_refused += 1;
            return;
        }
        if reply_wanted && !self.first_request(from, exchange) {
            return;
        }
        if !reply_wanted {
            self.answered_us(from, exchange);
        }
        let differing = BucketSet::differing(&self.members, hashes);
        if !reply_wanted && differing.is_empty() {
            if let Some(f) = self.follow_up.as_mut() {
                f.agreed(exchange);
            }
        }
        if reply_wanted {
            let log2 = differing.log2;
            self.queue_transmit(Pending::Digest { to: from.clone(), reply_wanted: false, exchange, log2 });
        }
        if !differing.is_empty() {
            self.send_state(from, exchange, Some(differing));
        }
    }

    /// Exchange state with a random member, tombstones included: a member we
    /// declared dead across a partition may be alive, and the exchange lets
    /// both sides refute and merge (SWIM's anti-entropy, memberlist pushPull).
    pub(super) fn periodic_push_pull(&mut self) {
        // The interval grows with the cluster. Nodes that started together
        // drew their first exchange within the small cluster's interval, and
        // kept to that fraction of every larger one: at 100 members all
        // exchanges fell in one 30 s stretch of each 90 s, and a partition
        // that healed outside it waited for the next (30 s at 100 nodes).
        // When the interval changes, the next exchange is drawn again within
        // it, so the cluster's exchanges spread evenly over time; no gap is
        // ever longer than the interval.
        let interval = self.push_pull_interval();
        let next = if interval == self.push_pull_every { interval } else { self.jitter(interval) };
        self.push_pull_every = interval;
        self.next_push_pull = self.now + next;
        if self.leaving {
            return;
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
            self.exchange_absent_seeds();
        }
        self.periodic_try = None;
        self.periodic_exchange(0);
    }

    /// One exchange of the periodic round, watched for an answer. The
    /// first with any member, tombstones included (after a partition the
    /// other side is all tombstones, and one exchange across heals more
    /// than a ping to one of them: 1,000 nodes split in halves saw each
    /// other 5.3 s after the heal, 19.0 s with live members only); the
    /// retries with live members only, since a member held dead that did
    /// not answer most likely crashed, and two crashes in a cluster of six
    /// took the round's exchange two times in five.
    fn periodic_exchange(&mut self, tries: u8) {
        if let Some(exchange) = self.exchange_with_random_member(tries == 0, Ask::Periodic) {
            // Long enough for a slow peer to answer (Lifeguard's starved
            // processes answer a second or more late), short enough that
            // every try falls within the round.
            let wait = crate::time::scale(self.config.probe_interval, 2)
                .min(self.push_pull_every / u32::from(PERIODIC_TRIES + 1));
            let retry_at = self.now + wait;
            self.periodic_try = Some(PeriodicTry { exchange, retry_at, tries: tries + 1 });
        }
    }

    /// The periodic exchange went unanswered: try another member, up to
    /// [`PERIODIC_TRIES`] a round.
    pub(super) fn periodic_retry(&mut self) {
        let Some(t) = self.periodic_try.take() else { return };
        if t.tries < PERIODIC_TRIES && !self.leaving {
            self.periodic_exchange(t.tries);
        }
    }

    /// When the periodic exchange in flight is due another try, if any.
    pub(super) fn next_periodic_retry(&self) -> Option<Instant> {
        self.periodic_try.as_ref().map(|t| t.retry_at)
    }

    /// Start an exchange with every seed that is not a live member in our
    /// view.
    fn exchange_absent_seeds(&mut self) {
        for i in 0..self.seeds.len() {
            let Some(seed) = self.seeds.get(i) else { break };
            if !self.is_live_member(seed) {
                let seed = seed.clone();
                self.start_push_pull(seed, Ask::Periodic);
            }
        }
    }

    /// We were declared dead: the cluster went on without us (we were cut
    /// off, or too slow to answer), and what it learned meanwhile, deaths
    /// above all, was gossiped while we could not hear it; its
    /// retransmissions are spent. Exchange with the member that told us,
    /// which holds that news, then follow up as after a join until a peer's
    /// view matches ours. Waiting for the periodic exchange instead leaves
    /// us probing members long gone, and a node that was slow is unhealthy
    /// and probes them slowly. One catch-up at a time; a claim that needs a
    /// refutation comes at most once per incarnation we take.
    pub(super) fn catch_up(&mut self, from: &A) {
        // The teller must be a member (live, or held dead and now speaking:
        // across a healed partition that is how the first one talks).
        let known = self.members.handle(from).is_some_and(|h| h != self.me);
        if self.follow_up.is_some() || self.join.is_some() || self.leaving || !known {
            return;
        }
        self.start_exchange(from.clone(), Ask::FollowUp);
        self.follow_up = Some(FollowUp::first(self.now + self.config.probe_interval));
    }

    pub(super) fn join_follow_up(&mut self) {
        let Some(follow_up) = self.follow_up.take() else {
            return;
        };
        let taught_nothing = follow_up.learned == 0 && follow_up.agreed;
        if (follow_up.round > 0 && taught_nothing) || self.leaving {
            return;
        }
        let exchange = self.exchange_with_random_member(false, Ask::FollowUp);
        let round = follow_up.round + 1;
        if round < MAX_FOLLOW_UPS {
            let at = self.now + self.config.probe_interval;
            self.follow_up = Some(FollowUp { at, learned: 0, round, exchange, agreed: false });
        }
    }

    /// memberlist `pushPullScale`: above 32 members the interval grows with
    /// log2 of the cluster size, so total exchange traffic stays bounded.
    pub(super) fn push_pull_interval(&self) -> Duration {
        let n = self.members.live();
        let base = self.config.push_pull_interval;
        if n <= 32 {
            return base;
        }
        let multiplier = (n - 1).ilog2() + 1 - 5 + 1;
        crate::time::scale(base, multiplier)
    }

    /// Gossip to a few random members while there is news (SWIM §4.1).
    pub(super) fn gossip_tick(&mut self) {
        self.next_gossip = self.now + self.config.gossip_interval;
        if self.gossip.is_empty() {
            return;
        }
        let targets = self.random_peers(self.config.gossip_nodes as usize, None, false);
        for h in targets {
            if let Some(to) = self.members.get(h).map(|e| e.addr.clone()) {
                self.queue_transmit(Pending::Gossip { to });
            }
        }
    }

    /// Keep a member just declared gone as a tombstone for
    /// `tombstone_timeout`; past `max_tombstones`, the one due first goes
    /// early (counted).
    pub(super) fn schedule_tombstone(&mut self, handle: u32) {
        if self.members.get(handle).is_none() || handle == self.me {
            return;
        }
        self.tombstones.cancel(handle);
        while self.tombstones.len() >= self.config.max_tombstones {
            match self.tombstones.pop_earliest() {
                Some(oldest) => self.reap(oldest, true),
                None => break,
            }
        }
        self.tombstones.schedule(handle, self.now + self.config.tombstone_timeout);
    }

    /// Forget a member whose tombstone came due (or was evicted), if it is
    /// still gone.
    fn reap(&mut self, handle: u32, early: bool) {
        let gone = self.members.get(handle).is_some_and(|e| e.state.is_gone());
        if gone && handle != self.me {
            if early {
                self.stats.tombstones_evicted += 1;
            }
            self.members.remove(handle);
            self.place(handle);
            self.gossip.forget_member(handle);
            self.suspicions.remove(handle);
        }
    }

    /// Forget the members whose tombstones have come due.
    pub(super) fn reap_tombstones(&mut self) {
        while let Some(handle) = self.tombstones.pop_due(self.now) {
            self.reap(handle, false);
        }
    }
}
