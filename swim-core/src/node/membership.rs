//! The membership life cycle around failure detection, at the node: routing
//! joins and full-state exchanges to [`Exchanges`](crate::exchange::Exchanges)
//! and sending what they decide, gossip rounds, and reaping tombstones.

use rand_core::RngCore;

use super::{Node, Pending};
use crate::addr::Address;
use crate::exchange::{Ask, SendDigest, VerifyPing};

impl<A: Address, R: RngCore> Node<A, R> {
    /// One round of contacting every seed (see
    /// [`Exchanges::join_attempt`](crate::exchange::Exchanges::join_attempt)).
    pub(super) fn join_attempt(&mut self) {
        self.exchanges.join_attempt(self.now, &mut self.stats);
    }

    /// With every other member gone, go back to the seeds (if any).
    pub(super) fn maybe_rejoin(&mut self) {
        self.exchanges.maybe_rejoin(self.now, self.members.live(), &mut self.stats);
    }

    /// After merging a push-pull datagram: answer a request once per
    /// exchange; a reply means our join got through.
    pub(super) fn on_push_pull(&mut self, from: &A, reply_wanted: bool, exchange: u32) {
        let next_seq = || self.probing.next_seq(&mut self.rng);
        let verify = self.exchanges.on_push_pull(self.now, (from, reply_wanted, exchange), &mut self.stats, next_seq);
        if let Some(ping) = verify {
            self.send_verify(ping);
        }
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
        let next_seq = || self.probing.next_seq(&mut self.rng);
        let request = (from, reply_wanted, exchange);
        let answer = self.exchanges.on_digest(self.now, request, (&self.members, hashes), &mut self.stats, next_seq);
        if let Some(digest) = answer.digest {
            self.send_digest(digest);
        }
        if let Some(ping) = answer.verify {
            self.send_verify(ping);
        }
    }

    /// `from` answered our ping: state asked of us goes to it at once.
    pub(super) fn verified_by(&mut self, from: &A) {
        self.exchanges.verified(from);
    }

    /// Ping again the requesters whose answer is overdue.
    pub(super) fn parked_timeouts(&mut self) {
        while let Some(ping) = self.exchanges.poll_parked(self.now, &mut self.stats) {
            self.send_verify(ping);
        }
    }

    /// The answer to a verification ping releases the state it held; false
    /// when the ack answers none.
    pub(super) fn on_verify_ack(&mut self, from: &A, seq: u32) -> bool {
        self.exchanges.on_verify_ack(from, seq, &mut self.stats)
    }

    fn send_verify(&mut self, VerifyPing { to, seq }: VerifyPing<A>) {
        self.queue_transmit(Pending::Verify { to, seq });
    }

    fn send_digest(&mut self, SendDigest { to, reply_wanted, exchange, log2 }: SendDigest<A>) {
        self.queue_transmit(Pending::Digest { to, reply_wanted, exchange, log2 });
    }

    /// A periodic or follow-up exchange with `to` (see
    /// [`Exchanges::start_exchange`](crate::exchange::Exchanges::start_exchange));
    /// the exchange started, if any.
    fn start_exchange(&mut self, to: A, ask: Ask) -> Option<u32> {
        let (exchange, digest) = self.exchanges.start_exchange(to, ask, self.members.len(), &mut self.stats)?;
        if let Some(digest) = digest {
            self.send_digest(digest);
        }
        Some(exchange)
    }

    /// Start an exchange with a random member (live only, or tombstones
    /// too); the exchange started, if any.
    fn exchange_with_random_member(&mut self, allow_dead: bool, ask: Ask) -> Option<u32> {
        let peers = self.random_peers(1, None, allow_dead);
        let to = peers.first().and_then(|&h| self.members.get(h)).map(|e| e.addr.clone())?;
        self.start_exchange(to, ask)
    }

    /// Exchange state with a random member, tombstones included: a member we
    /// declared dead across a partition may be alive, and the exchange lets
    /// both sides refute and merge (SWIM's anti-entropy, memberlist pushPull).
    pub(super) fn periodic_push_pull(&mut self) {
        let interval = self.exchanges.periodic_interval(self.members.live());
        let rng = &mut self.rng;
        let jitter = |d| super::jitter(rng, d);
        let members = &self.members;
        let me = self.me;
        let is_live = |a: &A| super::is_live_member(members, me, a);
        if self.exchanges.periodic_round(self.now, interval, jitter, self.leaving, is_live, &mut self.stats) {
            self.periodic_exchange(0);
        }
    }

    /// One exchange of the periodic round (the first with any member,
    /// tombstones included; retries with live members only), watched for an
    /// answer.
    fn periodic_exchange(&mut self, tries: u8) {
        if let Some(exchange) = self.exchange_with_random_member(tries == 0, Ask::Periodic) {
            self.exchanges.watch_periodic(self.now, exchange, tries);
        }
    }

    /// The periodic exchange went unanswered: try another member.
    pub(super) fn periodic_retry(&mut self) {
        if let Some(tries) = self.exchanges.periodic_retry(self.leaving) {
            self.periodic_exchange(tries);
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
        if !self.exchanges.may_catch_up() || self.leaving || !known {
            return;
        }
        self.start_exchange(from.clone(), Ask::FollowUp);
        self.exchanges.caught_up(self.now);
    }

    /// The next follow-up of a join (or a catch-up), if still wanted.
    pub(super) fn join_follow_up(&mut self) {
        let Some(due) = self.exchanges.follow_up_round(self.leaving) else {
            return;
        };
        // A seed that is no longer a live member is left for random ones.
        let seed = due.seed.filter(|seed| self.is_live_member(seed));
        let exchange = match seed.clone() {
            Some(seed) => self.start_exchange(seed, Ask::FollowUp),
            None => self.exchange_with_random_member(false, Ask::FollowUp),
        };
        self.exchanges.followed_up(self.now, due.round, exchange, seed);
    }

    /// Gossip to a few random members while there is news (SWIM §4.1);
    /// none while joining. Until its seed's reply comes, a joiner knows the
    /// seed and whoever pinged or gossiped to it meanwhile, so its gossip
    /// all lands there: in a 20,000-node join storm the joiners waiting for
    /// their tables sent the seed 20,000 gossip datagrams a second, each
    /// telling it what it knew, and spent their own Alive's transmissions on
    /// it. Once the reply has come, the news goes to random members.
    pub(super) fn gossip_tick(&mut self) {
        self.next_gossip = self.now + self.config.gossip_interval;
        if self.gossip.is_empty() || self.exchanges.is_joining() {
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
