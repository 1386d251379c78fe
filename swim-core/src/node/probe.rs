//! Failure detection: the probe cycle (SWIM §3.1), indirect probes through
//! k members (SWIM §3.1, ping-req), nacks and local health (Lifeguard §IV.A),
//! and the indirect probes this node serves for others.

use rand_core::RngCore;
use smallvec::SmallVec;

use super::{Node, Pending};
use crate::addr::Address;
use crate::member::State;
use crate::relay::{Relay, RelayDue};
use crate::time::Instant;

/// The probe in flight: at most one per protocol period.
#[derive(Debug, Clone)]
pub(crate) struct Probe<A> {
    pub target: u32,
    pub addr: A,
    pub seq: u32,
    /// When the ping went out (for the round-trip time).
    pub started: Instant,
    /// When to fall back to indirect probing, if no ack by then.
    pub timeout: Instant,
    pub indirect: bool,
    pub acked: bool,
    pub expected_nacks: u32,
    pub nacks: u32,
    /// The members asked to probe `addr` for us: only they may relay its
    /// ack or send a nack under `seq`.
    pub helpers: SmallVec<[A; 4]>,
}

impl<A> Probe<A> {
    pub fn indirect_deadline(&self) -> Option<Instant> {
        (!self.acked && !self.indirect).then_some(self.timeout)
    }

    pub fn indirect_due(&self, now: Instant) -> bool {
        self.indirect_deadline().is_some_and(|d| d <= now)
    }
}

/// Probe periods between two pings to a member held dead, at the fewest
/// ([`Node::ping_a_tombstone`]).
const RECONNECT_ROUNDS: u32 = 5;

impl<A: Address, R: RngCore> Node<A, R> {
    /// Start of a protocol period: judge the last probe, probe the next member.
    pub(super) fn probe_tick(&mut self) {
        let now = self.now;
        self.finish_probe();
        self.next_probe = now + self.awareness.scale(self.config.probe_interval);
        if self.leaving {
            return;
        }
        self.maybe_rejoin();
        let Some(target) = self.next_probe_target() else {
            return;
        };
        let Some(addr) = self.members.get(target).map(|e| e.addr.clone()) else {
            return;
        };
        let seq = self.next_seq();
        self.stats.probes += 1;
        self.probe = Some(Probe {
            target,
            addr: addr.clone(),
            seq,
            started: now,
            timeout: now + self.awareness.scale(self.config.probe_timeout),
            indirect: false,
            acked: false,
            expected_nacks: 0,
            nacks: 0,
            helpers: SmallVec::new(),
        });
        self.queue_transmit(Pending::Ping { to: addr, seq });
        self.ping_a_suspect(target);
        self.ping_a_tombstone();
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
    fn ping_a_tombstone(&mut self) {
        self.reconnect_rounds = self.reconnect_rounds.wrapping_add(1);
        let every = RECONNECT_ROUNDS.max(self.members.live() / 4);
        if self.reconnect_rounds % every != 0 {
            return;
        }
        let live = self.order.roster_len(false);
        let dead = self.order.roster_len(true) - live;
        if dead == 0 {
            return;
        }
        // The dead roster may hold stale entries: a few draws, as picks do.
        for _ in 0..4 {
            let i = live + self.random_below(dead as u32) as usize;
            let Some(to) = self.order.nth(i, true).and_then(|h| self.members.get(h)).map(|e| e.addr.clone()) else {
                continue;
            };
            let seq = self.next_seq();
            self.tombstone_ping = Some((seq, to.clone()));
            self.queue_transmit(Pending::Ping { to, seq });
            return;
        }
    }

    /// Ours, beyond SWIM: each period, ping one member this node suspects
    /// (round-robin over running suspicions; the ping carries the suspicion,
    /// as the buddy system does). A live suspect refutes, or, if it already
    /// refuted and we missed it under loss, answers with a correction;
    /// either way it tells us first-hand. Without this, a node that missed
    /// a refutation holds its suspicion to expiry and declares a live member
    /// dead.
    fn ping_a_suspect(&mut self, probed: u32) {
        if self.suspicions.is_empty() {
            return;
        }
        let Some(handle) = self.suspicions.next_after(self.suspect_cursor) else { return };
        self.suspect_cursor = handle;
        if handle == probed {
            return;
        }
        let Some(to) = self.members.get(handle).filter(|e| e.state == State::Suspect).map(|e| e.addr.clone()) else {
            return;
        };
        let seq = self.next_seq();
        self.suspect_ping = Some((seq, to.clone()));
        self.queue_transmit(Pending::Ping { to, seq });
    }

    /// The direct ping went unanswered for the probe timeout: ask k others to
    /// try (SWIM §3.1), and ping once more directly, since under loss a second
    /// direct attempt is as likely to get through as an indirect path.
    pub(super) fn probe_indirectly(&mut self) {
        let Some(probe) = self.probe.as_mut() else {
            return;
        };
        probe.indirect = true;
        let (target, seq, addr) = (probe.target, probe.seq, probe.addr.clone());
        self.stats.indirect_probes += 1;
        let want_nack = self.config.lifeguard;
        let picked = self.random_peers(self.config.indirect_checks as usize, Some(target), false);
        let helpers: SmallVec<[A; 4]> =
            picked.iter().filter_map(|&h| self.members.get(h).map(|e| e.addr.clone())).collect();
        for helper in &helpers {
            self.queue_transmit(Pending::PingReq { to: helper.clone(), seq, target: addr.clone(), want_nack });
        }
        if let Some(p) = self.probe.as_mut() {
            p.expected_nacks = if want_nack { helpers.len() as u32 } else { 0 };
            p.helpers = helpers;
        }
        self.queue_transmit(Pending::Ping { to: addr, seq });
    }

    /// End of a protocol period: an unanswered probe makes its target suspect.
    fn finish_probe(&mut self) {
        let Some(probe) = self.probe.take() else {
            return;
        };
        if probe.acked {
            return;
        }
        self.stats.probe_failures += 1;
        // Lifeguard §IV.A: missing nacks mean our own links are lossy, so
        // each one raises local health; with no helpers, the failure itself does.
        let delta = if probe.expected_nacks > 0 {
            let missed = probe.expected_nacks.saturating_sub(probe.nacks);
            self.stats.missed_nacks += u64::from(missed);
            missed
        } else {
            1
        };
        self.apply_health(delta as i32);
        let Some(entry) = self.members.get(probe.target) else {
            return;
        };
        if entry.addr != probe.addr || !entry.state.is_live() {
            return;
        }
        let accuser = self.addr.clone();
        self.suspect(probe.target, accuser);
    }

    /// The next live member in the shuffled round-robin order (SWIM §4.3;
    /// see [`crate::order`]).
    fn next_probe_target(&mut self) -> Option<u32> {
        let rng = &mut self.rng;
        self.order.next(|bound| super::random_below(rng, bound))
    }

    /// A fresh, unpredictable probe sequence: an outsider cannot guess the
    /// sequence of a ping in flight, so it cannot answer it for the target.
    /// It avoids those in use (a few draws: a collision is a one in 2^32
    /// event, and a degenerate RNG must not hang the node).
    pub(super) fn next_seq(&mut self) -> u32 {
        let mut seq = self.rng.next_u32();
        for _ in 0..4 {
            if !self.relays.contains(seq) && self.probe.as_ref().is_none_or(|p| p.seq != seq) {
                break;
            }
            seq = self.rng.next_u32();
        }
        seq
    }

    /// An ack counts only from whom it was expected: the probed member, or
    /// a helper relaying for it; a relay's ack only from its target.
    pub(super) fn on_ack(&mut self, from: &A, seq: u32) {
        if let Some(p) = self.probe.as_mut() {
            if p.seq == seq && (p.addr == *from || p.helpers.contains(from)) {
                if !p.acked {
                    p.acked = true;
                    let rtt = self.now.saturating_duration_since(p.started);
                    self.stats.probe_round_trips.record(rtt);
                    self.apply_health(-1);
                }
                // Answered under our unpredictable sequence: the target, or
                // a helper we asked, receives what is sent to its address.
                self.verified_by(from);
                return;
            }
        }
        if self.relays.target_of(seq) == Some(from) {
            if let Some(relay) = self.relays.take(seq) {
                self.queue_transmit(Pending::Ack { to: relay.requester, seq: relay.their_seq });
            }
            return;
        }
        if self.on_verify_ack(from, seq) {
            return;
        }
        if self.tombstone_ping.as_ref().is_some_and(|(s, to)| *s == seq && to == from) {
            // Running after all: its correction (we are dead to it too)
            // rides on this ack, and the catch-up follows from that.
            return;
        }
        if self.suspect_ping.as_ref().is_some_and(|(s, to)| *s == seq && to == from) {
            // Alive, but only a higher incarnation clears a suspicion: the
            // suspect's refutation (or correction) rides on this ack.
            return;
        }
        self.stats.unexpected_acks += 1;
    }

    /// A nack counts only from a helper of the probe in flight.
    pub(super) fn on_nack(&mut self, from: &A, seq: u32) {
        match self.probe.as_mut() {
            Some(p) if p.seq == seq && p.helpers.contains(from) => p.nacks = p.nacks.saturating_add(1),
            _ => self.stats.unexpected_acks += 1,
        }
    }

    /// Serve a ping request: ping the target under our own sequence and
    /// relay its ack (SWIM §3.1); nack at 80% of the probe timeout if asked
    /// (memberlist's choice) so the requester learns its link to us works.
    /// Ours: ping the target once more at 40% if it has not answered. Under
    /// loss the target-and-back leg fails most often (two hops of four), and
    /// one retry there cuts false suspicions about live members severalfold
    /// for one extra datagram on the rare indirect path.
    pub(super) fn on_ping_req(&mut self, requester: &A, their_seq: u32, target: A, want_nack: bool) {
        if target == self.addr {
            self.queue_transmit(Pending::Ack { to: requester.clone(), seq: their_seq });
            return;
        }
        // Only members are pinged on request (even one held dead: the
        // requester may know better): a ping request must not make this
        // node ping an address of the sender's choosing.
        if self.members.handle(&target).is_none() {
            self.stats.strangers_refused += 1;
            return;
        }
        if self.relays.len() >= self.config.max_relays {
            self.stats.relays_refused += 1;
            return;
        }
        let now = self.now;
        let our_seq = self.next_seq();
        let nack_after = crate::time::scale(self.config.probe_timeout, 4) / 5;
        let retry_after = crate::time::scale(self.config.probe_timeout, 2) / 5;
        self.relays.insert(
            our_seq,
            Relay {
                requester: requester.clone(),
                their_seq,
                target: target.clone(),
                retry_at: Some(now + retry_after),
                nack_at: want_nack.then(|| now + nack_after),
                expires: now + self.config.probe_interval,
            },
        );
        self.queue_transmit(Pending::Ping { to: target, seq: our_seq });
    }

    pub(super) fn relay_timeouts(&mut self) {
        while let Some(due) = self.relays.poll_due(self.now) {
            match due {
                RelayDue::Retry { target, our_seq } => self.queue_transmit(Pending::Ping { to: target, seq: our_seq }),
                RelayDue::Nack { requester, their_seq } => {
                    self.queue_transmit(Pending::Nack { to: requester, seq: their_seq })
                }
            }
        }
    }

    /// Mark a live member suspect on this node's own evidence, or confirm a
    /// suspicion already running.
    pub(super) fn suspect(&mut self, handle: u32, accuser: A) {
        let Some(entry) = self.members.get(handle) else {
            return;
        };
        match entry.state {
            State::Alive => {
                let incarnation = entry.incarnation;
                self.become_suspect(handle, incarnation, accuser);
            }
            State::Suspect => self.confirm_suspicion(handle, accuser),
            State::Dead | State::Left => {}
        }
    }
}
