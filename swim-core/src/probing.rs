//! Failure detection's own state: the probe cycle (SWIM §3.1), the probe in
//! flight and its indirect fallback, the pings this node sends beside the
//! probe (to a suspect, to a member held dead), the indirect probes it runs
//! for others, and the probe order that is also the roster random picks
//! draw from.
//!
//! [`Prober`] decides; the node carries out. It says which member a round
//! probes and under which sequence, which helpers to ask, what an ack or a
//! nack answers, and what a relay's timer asks for. The node sends the
//! datagrams, counts, moves local health and raises suspicions: those belong
//! to other mechanisms.

use core::time::Duration;

use rand_core::RngCore;
use smallvec::SmallVec;

use crate::addr::Address;
use crate::config::Config;
use crate::member::{Members, State};
use crate::order::{Place, ProbeOrder};
use crate::relay::{Relay, RelayDue, Relays};
use crate::suspicion::Suspicions;
use crate::time::Instant;

/// Probe periods between two pings to a member held dead, at the fewest
/// ([`Prober::ping_a_tombstone`]).
const RECONNECT_ROUNDS: u32 = 5;

/// The probe in flight: at most one per protocol period.
#[derive(Debug, Clone)]
struct Probe<A> {
    target: u32,
    addr: A,
    seq: u32,
    /// When the ping went out (for the round-trip time).
    started: Instant,
    /// When to fall back to indirect probing, if no ack by then.
    timeout: Instant,
    indirect: bool,
    acked: bool,
    expected_nacks: u32,
    nacks: u32,
    /// The members asked to probe `addr` for us: only they may relay its
    /// ack or send a nack under `seq`.
    helpers: SmallVec<[A; 4]>,
}

impl<A> Probe<A> {
    fn indirect_deadline(&self) -> Option<Instant> {
        (!self.acked && !self.indirect).then_some(self.timeout)
    }
}

/// A probe that ended its period unanswered: what the node needs to judge
/// its target and its own health.
#[derive(Debug, Clone)]
pub(crate) struct Unanswered<A> {
    /// The member probed.
    pub target: u32,
    /// The address it was probed at (the member may have been replaced).
    pub addr: A,
    /// Nacks the helpers were asked for (0 without Lifeguard or helpers).
    pub expected_nacks: u32,
    /// Nacks that came.
    pub nacks: u32,
}

/// A probe that just went indirect: ping `addr` again under `seq`, and ask
/// the helpers of [`Prober::pick_helpers`] to try too.
#[derive(Debug, Clone)]
pub(crate) struct Indirect<A> {
    /// The member probed.
    pub target: u32,
    /// Its address.
    pub addr: A,
    /// The probe's sequence, which the helpers' ping requests carry.
    pub seq: u32,
}

/// What an ack answers, by its sequence and sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AckFor<A> {
    /// The probe in flight, from its target or a helper; `rtt` on the first
    /// ack only (later ones are duplicates or other helpers' relays).
    Probe {
        /// Time since the ping went out, for the first ack.
        rtt: Option<Duration>,
    },
    /// A relay this node runs: its ack goes back to the requester, under
    /// the requester's sequence. The relay is done.
    Relay {
        /// Who asked.
        requester: A,
        /// The sequence it asked under.
        their_seq: u32,
    },
    /// None of the probing's own: `expected` when it answers this node's
    /// ping to a suspect or a member held dead (the news it carries is the
    /// point; the ack itself says nothing more).
    Other {
        /// Whether a ping beside the probe expected it.
        expected: bool,
    },
}

/// Why a ping request was not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RelaysFull;

/// The probing mechanism: when the next round is due, the probe in flight,
/// the pings beside it, the relays served for others, and the probe order.
#[derive(Debug)]
pub(crate) struct Prober<A> {
    order: ProbeOrder,
    probe: Option<Probe<A>>,
    next_round: Instant,
    relays: Relays<A>,
    /// The last suspect pinged outside the probe order, and that ping's sequence.
    suspect_cursor: u32,
    suspect_ping: Option<(u32, A)>,
    /// Probe periods counted toward the next ping to a member held dead.
    reconnect_rounds: u32,
    /// The last such ping, so its ack is not counted as unexpected.
    tombstone_ping: Option<(u32, A)>,
    /// `Config::max_relays`.
    max_relays: usize,
    /// When a relay pings its target again, nacks, and gives up.
    relay_retry_after: Duration,
    relay_nack_after: Duration,
    relay_lifetime: Duration,
}

impl<A: Address> Prober<A> {
    /// No probe yet; the first round is due at `first_round` (staggered by
    /// the node so nodes started together do not probe in lock-step).
    /// Relays are bounded and timed by `config`.
    pub fn new(first_round: Instant, config: &Config) -> Self {
        Prober {
            order: ProbeOrder::new(),
            probe: None,
            next_round: first_round,
            relays: Relays::new(),
            suspect_cursor: 0,
            suspect_ping: None,
            reconnect_rounds: 0,
            tombstone_ping: None,
            max_relays: config.max_relays,
            relay_retry_after: crate::time::scale(config.probe_timeout, 2) / 5,
            relay_nack_after: crate::time::scale(config.probe_timeout, 4) / 5,
            relay_lifetime: config.probe_interval,
        }
    }

    // ----- timers ----------------------------------------------------------

    /// The earliest of the next round, the fallback to indirect probing and
    /// the relays' timers: the probing's share of the node's one deadline.
    pub fn next_deadline(&self) -> Instant {
        let mut next = self.next_round;
        if let Some(d) = self.probe.as_ref().and_then(Probe::indirect_deadline) {
            next = next.min(d);
        }
        if let Some(d) = self.relays.next_deadline() {
            next = next.min(d);
        }
        next
    }

    /// Whether the next protocol period has begun.
    pub fn round_due(&self, now: Instant) -> bool {
        self.next_round <= now
    }

    /// Begin the next round at `at`: a period after this one began, or a
    /// full period after a rejoin.
    pub fn next_round_at(&mut self, at: Instant) {
        self.next_round = at;
    }

    /// Whether the probe in flight went unanswered for its timeout and has
    /// not yet gone indirect.
    pub fn indirect_due(&self, now: Instant) -> bool {
        self.probe.as_ref().and_then(Probe::indirect_deadline).is_some_and(|d| d <= now)
    }

    // ----- rounds ----------------------------------------------------------

    /// End the protocol period: the probe in flight is over. Returns it if
    /// it went unanswered, for the node to judge (and then to say when the
    /// next period begins, [`Prober::next_round_at`]: the judgement moves
    /// local health, which stretches the period).
    pub fn finish_probe(&mut self) -> Option<Unanswered<A>> {
        let probe = self.probe.take().filter(|p| !p.acked)?;
        Some(Unanswered {
            target: probe.target,
            addr: probe.addr,
            expected_nacks: probe.expected_nacks,
            nacks: probe.nacks,
        })
    }

    /// Drop the probe in flight without judging it (this node is leaving).
    pub fn abandon_probe(&mut self) {
        self.probe = None;
    }

    /// Start this period's probe: the next live member in the shuffled
    /// round-robin order (SWIM §4.3; see [`crate::order`]), under a fresh
    /// sequence. Its ping goes out now; the fallback to indirect probing is
    /// due at `now + timeout`. `None` when there is nobody to probe.
    pub fn start_probe<R: RngCore>(
        &mut self,
        now: Instant,
        timeout: Duration,
        members: &Members<A>,
        rng: &mut R,
    ) -> Option<(u32, A, u32)> {
        let target = self.order.next(|bound| random_below(rng, bound))?;
        let addr = members.get(target).map(|e| e.addr.clone())?;
        let seq = self.next_seq(rng);
        self.probe = Some(Probe {
            target,
            addr: addr.clone(),
            seq,
            started: now,
            timeout: now + timeout,
            indirect: false,
            acked: false,
            expected_nacks: 0,
            nacks: 0,
            helpers: SmallVec::new(),
        });
        Some((target, addr, seq))
    }

    /// Ours, beyond SWIM: each period, ping one member this node suspects
    /// (round-robin over running suspicions; the ping carries the suspicion,
    /// as the buddy system does). A live suspect refutes, or, if it already
    /// refuted and we missed it under loss, answers with a correction;
    /// either way it tells us first-hand. Without this, a node that missed
    /// a refutation holds its suspicion to expiry and declares a live member
    /// dead. Returns where to ping and under which sequence, if anywhere
    /// (`probed`, this period's target, is pinged already).
    pub fn ping_a_suspect<R: RngCore>(
        &mut self,
        probed: u32,
        suspicions: &Suspicions<A>,
        members: &Members<A>,
        rng: &mut R,
    ) -> Option<(A, u32)> {
        if suspicions.is_empty() {
            return None;
        }
        let handle = suspicions.next_after(self.suspect_cursor)?;
        self.suspect_cursor = handle;
        if handle == probed {
            return None;
        }
        let to = members.get(handle).filter(|e| e.state == State::Suspect).map(|e| e.addr.clone())?;
        let seq = self.next_seq(rng);
        self.suspect_ping = Some((seq, to.clone()));
        Some((to, seq))
    }

    /// Ours, beyond SWIM (Serf reconnects to failed members on a timer for
    /// the same reason): every few periods, ping one member held dead,
    /// picked at random. Across a healed partition each side holds the
    /// other dead, and nobody probes or gossips to a member held dead: only
    /// a periodic exchange that happened to pick one could cross, and in a
    /// small cluster now and then none did within a minute. A member held
    /// dead that is in fact running holds us dead too; it answers by
    /// telling us so (a member held dead that speaks is told it is dead),
    /// and we refute and catch up with it. Every `max(5, n / 4)` periods,
    /// so a crashed member's address gets a few pings a second from the
    /// whole cluster, whatever its size, until its tombstone is reaped.
    /// Called once a period; returns where to ping and under which
    /// sequence, when this period is one.
    pub fn ping_a_tombstone<R: RngCore>(&mut self, members: &Members<A>, rng: &mut R) -> Option<(A, u32)> {
        self.reconnect_rounds = self.reconnect_rounds.wrapping_add(1);
        let every = RECONNECT_ROUNDS.max(members.live() / 4);
        if self.reconnect_rounds % every != 0 {
            return None;
        }
        let live = self.order.roster_len(false);
        let dead = self.order.roster_len(true) - live;
        if dead == 0 {
            return None;
        }
        // The dead roster may hold stale entries: a few draws, as picks do.
        for _ in 0..4 {
            let i = live + random_below(rng, dead as u32) as usize;
            let Some(to) = self.order.nth(i, true).and_then(|h| members.get(h)).map(|e| e.addr.clone()) else {
                continue;
            };
            let seq = self.next_seq(rng);
            self.tombstone_ping = Some((seq, to.clone()));
            return Some((to, seq));
        }
        None
    }

    /// The direct ping went unanswered for the probe timeout: the probe goes
    /// indirect (SWIM §3.1). The node pings the target once more directly,
    /// since under loss a second direct attempt is as likely to get through
    /// as an indirect path, and asks the helpers [`Prober::pick_helpers`]
    /// gives. `None` when no probe is in flight.
    pub fn go_indirect(&mut self) -> Option<Indirect<A>> {
        let probe = self.probe.as_mut()?;
        probe.indirect = true;
        Some(Indirect { target: probe.target, addr: probe.addr.clone(), seq: probe.seq })
    }

    /// Up to `k` random live members other than `target` to probe it for
    /// us, by address.
    pub fn pick_helpers<R: RngCore>(
        &self,
        k: usize,
        target: u32,
        members: &Members<A>,
        rng: &mut R,
    ) -> SmallVec<[A; 4]> {
        let picked = self.random_peers(k, Some(target), false, rng);
        picked.iter().filter_map(|&h| members.get(h).map(|e| e.addr.clone())).collect()
    }

    /// The helpers were asked: only they may relay the target's ack or nack
    /// the probe, and with `want_nack` each owes a nack if the target is
    /// silent (Lifeguard §IV.A).
    pub fn helpers_asked(&mut self, helpers: SmallVec<[A; 4]>, want_nack: bool) {
        if let Some(p) = self.probe.as_mut() {
            p.expected_nacks = if want_nack { helpers.len() as u32 } else { 0 };
            p.helpers = helpers;
        }
    }

    // ----- answers ---------------------------------------------------------

    /// What an ack under `seq` from `from` answers. An ack counts only from
    /// whom it was expected: the probed member, or a helper relaying for
    /// it; a relay's ack only from its target.
    pub fn on_ack(&mut self, now: Instant, from: &A, seq: u32) -> AckFor<A> {
        if let Some(p) = self.probe.as_mut() {
            if p.seq == seq && (p.addr == *from || p.helpers.contains(from)) {
                let rtt = (!p.acked).then(|| now.saturating_duration_since(p.started));
                p.acked = true;
                return AckFor::Probe { rtt };
            }
        }
        if self.relays.target_of(seq) == Some(from) {
            if let Some(relay) = self.relays.take(seq) {
                return AckFor::Relay { requester: relay.requester, their_seq: relay.their_seq };
            }
        }
        let ours = |ping: &Option<(u32, A)>| ping.as_ref().is_some_and(|(s, to)| *s == seq && to == from);
        // A member held dead running after all: its correction (we are dead
        // to it too) rides on this ack, and the catch-up follows from that.
        // A suspect alive: only a higher incarnation clears a suspicion, and
        // its refutation (or correction) rides on this ack.
        AckFor::Other { expected: ours(&self.tombstone_ping) || ours(&self.suspect_ping) }
    }

    /// Whether `from`'s ack under `seq` would be the first to answer the
    /// probe in flight from its target (read before the ack is handled).
    pub fn is_first_probe_ack(&self, from: &A, seq: u32) -> bool {
        self.probe.as_ref().is_some_and(|p| p.seq == seq && p.addr == *from && !p.acked)
    }

    /// Whether a ping to `to` under `seq` is this period's probe (the one a
    /// summary of our broadcasts rides on).
    pub fn is_probe_ping(&self, to: &A, seq: u32) -> bool {
        self.probe.as_ref().is_some_and(|p| p.seq == seq && p.addr == *to)
    }

    /// A nack under `seq` from `from`; false when it was not expected (it
    /// counts only from a helper of the probe in flight).
    pub fn on_nack(&mut self, from: &A, seq: u32) -> bool {
        match self.probe.as_mut() {
            Some(p) if p.seq == seq && p.helpers.contains(from) => {
                p.nacks = p.nacks.saturating_add(1);
                true
            }
            _ => false,
        }
    }

    // ----- relays ----------------------------------------------------------

    /// Serve a ping request: the node pings `target` under the sequence
    /// returned and relays its ack (SWIM §3.1); nack at 80% of the probe
    /// timeout if asked (memberlist's choice) so the requester learns its
    /// link to us works. Ours: ping the target once more at 40% if it has
    /// not answered. Under loss the target-and-back leg fails most often
    /// (two hops of four), and one retry there cuts false suspicions about
    /// live members severalfold for one extra datagram on the rare indirect
    /// path. Refused past `Config::max_relays`.
    pub fn start_relay<R: RngCore>(
        &mut self,
        now: Instant,
        (requester, their_seq): (&A, u32),
        target: A,
        want_nack: bool,
        rng: &mut R,
    ) -> Result<u32, RelaysFull> {
        if self.relays.len() >= self.max_relays {
            return Err(RelaysFull);
        }
        let our_seq = self.next_seq(rng);
        self.relays.insert(
            our_seq,
            Relay {
                requester: requester.clone(),
                their_seq,
                target,
                retry_at: Some(now + self.relay_retry_after),
                nack_at: want_nack.then(|| now + self.relay_nack_after),
                expires: now + self.relay_lifetime,
            },
        );
        Ok(our_seq)
    }

    /// The next relay timer due at or before `now`, and what it asks for.
    /// Call until `None`.
    pub fn poll_relay(&mut self, now: Instant) -> Option<RelayDue<A>> {
        self.relays.poll_due(now)
    }

    // ----- sequences and picks ---------------------------------------------

    /// A fresh, unpredictable probe sequence: an outsider cannot guess the
    /// sequence of a ping in flight, so it cannot answer it for the target.
    /// It avoids those in use (a few draws: a collision is a one in 2^32
    /// event, and a degenerate RNG must not hang the node).
    pub fn next_seq<R: RngCore>(&self, rng: &mut R) -> u32 {
        let mut seq = rng.next_u32();
        for _ in 0..4 {
            if !self.relays.contains(seq) && self.probe.as_ref().is_none_or(|p| p.seq != seq) {
                break;
            }
            seq = rng.next_u32();
        }
        seq
    }

    /// Put a member where its state says in the probe order: live members
    /// are probed and picked, those held dead picked by exchanges that want
    /// tombstones. `state` is `None` for this node itself and for a member
    /// no longer in the table.
    pub fn place<R: RngCore>(&mut self, handle: u32, state: Option<State>, rng: &mut R) {
        let place = match state {
            Some(State::Alive | State::Suspect) => Place::Live,
            Some(State::Dead) => Place::Dead,
            Some(State::Left) | None => Place::Neither,
        };
        if self.order.place_of(handle) != place {
            let random = if place == Place::Live { rng.next_u32() } else { 0 };
            self.order.set(handle, place, random);
        }
    }

    /// Up to `want` distinct random live members other than this node and
    /// `exclude` (and members held dead too, if `allow_dead`), drawn
    /// uniformly from the probe order's rosters: O(want), whatever the
    /// table's size.
    pub fn random_peers<R: RngCore>(
        &self,
        want: usize,
        exclude: Option<u32>,
        allow_dead: bool,
        rng: &mut R,
    ) -> SmallVec<[u32; 16]> {
        let mut picked: SmallVec<[u32; 16]> = SmallVec::new();
        let total = self.order.roster_len(allow_dead);
        let members = self.order.live_len() + if allow_dead { self.order.dead_len() } else { 0 };
        let excluded = exclude.is_some_and(|h| match self.order.place_of(h) {
            Place::Live => true,
            Place::Dead => allow_dead,
            Place::Neither => false,
        });
        let eligible = members - usize::from(excluded);
        let want = want.min(eligible).min(16);
        let mut attempts = 4 * want + 16;
        while picked.len() < want && attempts > 0 {
            attempts -= 1;
            let i = random_below(rng, total as u32) as usize;
            let Some(h) = self.order.nth(i, allow_dead) else { continue };
            if Some(h) != exclude && !picked.contains(&h) {
                picked.push(h);
            }
        }
        picked
    }

    /// Members the probe order holds, live and dead (tests bound it by the
    /// table's size).
    #[cfg(test)]
    pub fn ordered(&self) -> usize {
        self.order.live_len() + self.order.dead_len()
    }
}

/// A uniform draw below `bound` by Lemire's multiply-shift: unbiased enough
/// for protocol choices and free of division.
fn random_below<R: RngCore>(rng: &mut R, bound: u32) -> u32 {
    ((u64::from(rng.next_u32()) * u64::from(bound)) >> 32) as u32
}
