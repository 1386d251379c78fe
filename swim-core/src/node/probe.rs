//! Failure detection at the node: routing the probe cycle, acks, nacks and
//! ping requests to the [`Prober`](crate::probing::Prober), and carrying out
//! what it decides: the datagrams, the counters, local health (Lifeguard
//! §IV.A) and the suspicions an unanswered probe raises.

use rand_core::RngCore;

use super::{Node, Pending};
use crate::addr::Address;
use crate::member::State;
use crate::probing::AckFor;
use crate::relay::RelayDue;

impl<A: Address, R: RngCore> Node<A, R> {
    /// Start of a protocol period: judge the last probe, probe the next
    /// member, and ping a suspect and a member held dead beside it.
    pub(super) fn probe_tick(&mut self) {
        let now = self.now;
        if let Some(unanswered) = self.probing.finish_probe() {
            self.probe_failed(unanswered);
        }
        self.probing.next_round_at(now + self.awareness.scale(self.config.probe_interval));
        if self.leaving {
            return;
        }
        self.maybe_rejoin();
        let timeout = self.awareness.scale(self.config.probe_timeout);
        let Some((target, to, seq)) = self.probing.start_probe(now, timeout, &self.members, &mut self.rng) else {
            return;
        };
        self.stats.probes += 1;
        self.queue_transmit(Pending::Ping { to, seq });
        if let Some((to, seq)) = self.probing.ping_a_suspect(target, &self.suspicions, &self.members, &mut self.rng) {
            self.queue_transmit(Pending::Ping { to, seq });
        }
        if let Some((to, seq)) = self.probing.ping_a_tombstone(&self.members, &mut self.rng) {
            self.queue_transmit(Pending::Ping { to, seq });
        }
    }

    /// The direct ping went unanswered for the probe timeout: ask k others to
    /// try (SWIM §3.1), and ping once more directly.
    pub(super) fn probe_indirectly(&mut self) {
        let Some(probe) = self.probing.go_indirect() else {
            return;
        };
        self.stats.indirect_probes += 1;
        let want_nack = self.config.lifeguard;
        let k = self.config.indirect_checks as usize;
        let helpers = self.probing.pick_helpers(k, probe.target, &self.members, &mut self.rng);
        for helper in &helpers {
            let target = probe.addr.clone();
            self.queue_transmit(Pending::PingReq { to: helper.clone(), seq: probe.seq, target, want_nack });
        }
        self.probing.helpers_asked(helpers, want_nack);
        self.queue_transmit(Pending::Ping { to: probe.addr, seq: probe.seq });
    }

    /// End of a protocol period with the probe unanswered: its target
    /// becomes suspect.
    fn probe_failed(&mut self, probe: crate::probing::Unanswered<A>) {
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

    /// An ack: to our probe (health improves, the sender is verified), to a
    /// relay (passed back to its requester), to a verification ping, or to
    /// a ping beside the probe; anything else is counted as unexpected.
    pub(super) fn on_ack(&mut self, from: &A, seq: u32) {
        match self.probing.on_ack(self.now, from, seq) {
            AckFor::Probe { rtt } => {
                if let Some(rtt) = rtt {
                    self.stats.probe_round_trips.record(rtt);
                    self.apply_health(-1);
                }
                // Answered under our unpredictable sequence: the target, or
                // a helper we asked, receives what is sent to its address.
                self.verified_by(from);
            }
            AckFor::Relay { requester, their_seq } => {
                self.queue_transmit(Pending::Ack { to: requester, seq: their_seq });
            }
            AckFor::Other { expected } => {
                if !self.on_verify_ack(from, seq) && !expected {
                    self.stats.unexpected_acks += 1;
                }
            }
        }
    }

    /// A nack counts only from a helper of the probe in flight.
    pub(super) fn on_nack(&mut self, from: &A, seq: u32) {
        if !self.probing.on_nack(from, seq) {
            self.stats.unexpected_acks += 1;
        }
    }

    /// Serve a ping request (see
    /// [`Prober::start_relay`](crate::probing::Prober::start_relay)): a
    /// request about this node is answered at once; only members are
    /// pinged on request.
    pub(super) fn on_ping_req(&mut self, requester: &A, their_seq: u32, target: A, want_nack: bool) {
        if target == self.addr {
            self.queue_transmit(Pending::Ack { to: requester.clone(), seq: their_seq });
            return;
        }
        // Even one held dead: the requester may know better. A ping request
        // must not make this node ping an address of the sender's choosing.
        if self.members.handle(&target).is_none() {
            self.stats.strangers_refused += 1;
            return;
        }
        let now = self.now;
        match self.probing.start_relay(now, (requester, their_seq), target.clone(), want_nack, &mut self.rng) {
            Ok(our_seq) => self.queue_transmit(Pending::Ping { to: target, seq: our_seq }),
            Err(_) => self.stats.relays_refused += 1,
        }
    }

    /// Send what the relays' timers ask for: a second ping, or a nack.
    pub(super) fn relay_timeouts(&mut self) {
        while let Some(due) = self.probing.poll_relay(self.now) {
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
