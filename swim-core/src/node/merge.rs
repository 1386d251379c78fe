//! Applying claims: the merge of updates into the member table, the
//! transitions and events they cause, suspicion timers, refutation of claims
//! about this node, and delivery of application broadcasts.

use rand_core::RngCore;

use smallvec::SmallVec;

use super::{Node, Origin, Pending};
use crate::addr::Address;
use crate::event::Event;
use crate::member::{incarnation_newer, Claim, Entry, State, Vacancy};
use crate::wire::Update;

/// Rival instances remembered as reported conflicts (oldest forgotten).
const MAX_CONFLICTS_REMEMBERED: usize = 8;

/// How a live member new to us is passed on: by how much of the cluster
/// may lack it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spread {
    /// Gossiped at full strength: news to most of the cluster.
    News,
    /// Sent once, to one peer, after all other news: most of the cluster
    /// has it, a few may not.
    EchoOnce,
    /// Not passed on: whoever told us speaks for a cluster that has it.
    NotPassedOn,
}

/// How many times this node out-bids another live process's incarnation for
/// its own address before reporting a conflict. A restarted node out-bids its
/// dead predecessor's stale claims once or twice; a live rival keeps
/// answering, and flapping forever helps nobody.
const CONFLICT_BUMPS: u32 = 3;

/// Other processes claiming this node's address with an Alive at least as
/// new as ours: the one being out-bid, and those reported as conflicts.
#[derive(Debug, Default)]
pub(super) struct Rivals {
    /// The rival instance out-bid last, and how many times in a row.
    rival: Option<(u32, u32)>,
    /// Rival instances reported (oldest first): their claims are ignored.
    conflicted: SmallVec<[u32; 2]>,
}

/// What to do about a rival's Alive claim to our address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RivalClaim {
    /// Reported already: ignore it.
    Reported,
    /// Out-bid it with a higher incarnation.
    OutBid,
    /// It kept answering: report the conflict (once) instead.
    Conflict,
}

impl Rivals {
    /// No rival yet.
    pub(super) fn new() -> Self {
        Rivals::default()
    }

    /// A claim by the rival process `instance`.
    fn claim(&mut self, instance: u32) -> RivalClaim {
        if self.conflicted.contains(&instance) {
            return RivalClaim::Reported;
        }
        let bumps = match self.rival {
            Some((rival, n)) if rival == instance => n + 1,
            _ => 1,
        };
        self.rival = Some((instance, bumps));
        if bumps <= CONFLICT_BUMPS {
            return RivalClaim::OutBid;
        }
        if self.conflicted.len() >= MAX_CONFLICTS_REMEMBERED {
            self.conflicted.remove(0);
        }
        self.conflicted.push(instance);
        RivalClaim::Conflict
    }

    /// Rival instances remembered as reported (tests bound it).
    #[cfg(test)]
    pub(super) fn reported(&self) -> usize {
        self.conflicted.len()
    }
}

impl<A: Address, R: RngCore> Node<A, R> {
    /// Merge one claim received from `from`. Claims about members new to
    /// us in the reply to our own join are not passed on: the seed's side
    /// knows them, and gossiping all N of them after every join would send
    /// each member a second copy of the table (a random peer that already
    /// has a member gains nothing from its echo; in a 1,000-node join storm
    /// 99.8% of such echoes went to peers that had it). Those in the
    /// replies to its follow-ups are re-gossiped once, after all fresher
    /// news: what a follow-up teaches is what joined after our reply began,
    /// which the early joiners lack too.
    pub(super) fn merge(&mut self, update: Update<'_, A>, from: &A, origin: Origin) {
        if update.member == self.addr {
            self.merge_about_self(&update, from, origin);
            return;
        }
        let quiet = origin == Origin::PushPullReply { quiet: true };
        let claim = Claim { incarnation: update.incarnation, state: update.state };
        let handle = match self.members.find(&update.member) {
            Ok(handle) => handle,
            Err(vacancy) => {
                let spread = if !quiet || update.member == *from {
                    Spread::News
                } else if self.exchanges.in_join_reply(from) {
                    Spread::NotPassedOn
                } else {
                    Spread::EchoOnce
                };
                self.insert_member(update, spread, vacancy);
                return;
            }
        };
        let Some(current) = self.members.get(handle).map(Entry::claim) else {
            return;
        };
        if incarnation_newer(current.incarnation, claim.incarnation) && claim.state != State::Alive {
            // A stale accusation: the sender missed a refutation. Nobody
            // else will tell it (the newer claim is old news everywhere),
            // and left alone it declares a live member dead.
            self.correct(from, &update.member, origin);
            return;
        }
        if claim.state == State::Dead && current.state.is_live() && origin != Origin::Gossip {
            self.suspect_dead_claim(handle, update, from, current);
            return;
        }
        if !claim.overrides(&current) {
            if claim == current && claim.state == State::Suspect {
                if let Some(accuser) = update.accuser {
                    self.confirm_suspicion(handle, accuser);
                }
            }
            return;
        }
        let resurrected = current.state == State::Dead && claim.state.is_live();
        self.transition(handle, update);
        if resurrected {
            self.on_resurrection(from, origin);
        }
    }

    /// A member we held dead is alive: a partition healed, or a member
    /// declared dead while slow refuted. Either way our view was wrong and
    /// gossip is putting it right, and gossip is best-effort: after a heal
    /// every member of the other side refutes at once, the queues overflow
    /// with the news, and a node or two miss one refutation and hold a live
    /// member dead until the periodic exchange (150 s at 400 members; 11 of
    /// 40 seeds of a 400-node split took over 10 s to agree, up to 77 s).
    /// Catch up as a node told it was dead does: the follow-ups go on while
    /// resurrections keep arriving and end with an exchange after the burst.
    /// Only for gossip: a resurrection in an exchange's state is that
    /// exchange doing the catching up.
    fn on_resurrection(&mut self, from: &A, origin: Origin) {
        if !self.exchanges.learned() && origin == Origin::Gossip {
            self.catch_up(from);
        }
    }

    /// A full-state exchange says Dead about a member we hold live: suspect
    /// it instead, with the shortest timeout (memberlist's mergeState does
    /// the same). The sender's side may have declared it across a partition
    /// just healed, where it could not refute; gossiped, the suspicion
    /// reaches it and it refutes in a round trip, while a member that is
    /// really gone is Failed a suspicion timeout later. Declaring it Dead at
    /// once would fail every member of our side at every node the exchange
    /// reaches. The sender, whose own suspicion of it ran out, confirms
    /// ours; ours runs its shortest wait.
    fn suspect_dead_claim(&mut self, handle: u32, update: Update<'_, A>, from: &A, current: Claim) {
        let suspect = Claim { incarnation: update.incarnation, state: State::Suspect };
        if suspect.overrides(&current) {
            let accuser = update.accuser.clone().unwrap_or_else(|| from.clone());
            self.transition(handle, Update { state: State::Suspect, accuser: Some(accuser), ..update });
            self.suspicions.shorten_to_min(handle);
        } else if suspect == current {
            self.confirm_suspicion(handle, from.clone());
        }
    }

    /// A member we did not know. Only live claims create one: Dead or Left
    /// about a stranger tells us nothing worth a table entry.
    fn insert_member(&mut self, update: Update<'_, A>, spread: Spread, vacancy: Vacancy) {
        if !update.state.is_live() {
            return;
        }
        if self.members.len() >= self.config.max_members {
            self.stats.members_refused += 1;
            return;
        }
        let claim = (update.incarnation, update.instance, State::Alive);
        let handle = self.members.insert_vacant(vacancy, update.member, claim, update.meta);
        self.place(handle);
        self.emit(Event::Joined(self.snapshot(handle)));
        self.exchanges.learned();
        if update.state == State::Suspect {
            let accuser = update.accuser.unwrap_or_else(|| self.addr.clone());
            self.become_suspect(handle, update.incarnation, accuser);
        } else {
            match spread {
                Spread::News => self.queue_gossip(handle, None),
                Spread::EchoOnce => {
                    let source = self.heard_from.as_ref().and_then(|a| self.members.handle(a));
                    let dropped = self.gossip.queue_echo(handle, source, self.config.max_gossip_queue);
                    self.stats.gossip_dropped += dropped as u64;
                }
                Spread::NotPassedOn => {}
            }
        }
    }

    /// Apply a claim that overrides what we believed.
    fn transition(&mut self, handle: u32, update: Update<'_, A>) {
        let Some(old) = self.members.get(handle).map(|e| e.state) else {
            return;
        };
        match update.state {
            State::Alive => {
                self.members.set_incarnation(handle, update.incarnation);
                self.members.set_instance(handle, update.instance);
                let meta_changed = self.members.set_meta(handle, update.meta);
                self.set_state(handle, State::Alive);
                match old {
                    State::Alive if meta_changed => self.emit(Event::Updated(self.snapshot(handle))),
                    State::Alive => {}
                    State::Suspect => {
                        self.suspicions.remove(handle);
                        self.emit(Event::Alive(self.snapshot(handle)));
                    }
                    State::Dead | State::Left => self.emit(Event::Joined(self.snapshot(handle))),
                }
                self.queue_gossip(handle, None);
            }
            State::Suspect => {
                let accuser = update.accuser.unwrap_or_else(|| self.addr.clone());
                match old {
                    State::Suspect => {
                        // A suspicion at a higher incarnation than ours
                        // means the member refuted the one we hold (its
                        // refutation was overtaken on the way here: a newer
                        // update replaces an older one in every queue). The
                        // old timer is evidence against an incarnation the
                        // member has since outlived; counting this claim as
                        // a confirmation of it would fail a member that
                        // keeps refuting. So it is refuted here too, and the
                        // new suspicion gets its own full window.
                        self.suspicions.remove(handle);
                        self.members.set_incarnation(handle, update.incarnation);
                        self.set_state(handle, State::Alive);
                        self.emit(Event::Alive(self.snapshot(handle)));
                        self.become_suspect(handle, update.incarnation, accuser);
                    }
                    State::Alive => self.become_suspect(handle, update.incarnation, accuser),
                    State::Dead | State::Left => {
                        self.members.set_incarnation(handle, update.incarnation);
                        self.set_state(handle, State::Alive);
                        self.emit(Event::Joined(self.snapshot(handle)));
                        self.become_suspect(handle, update.incarnation, accuser);
                    }
                }
            }
            State::Dead | State::Left => {
                self.members.set_incarnation(handle, update.incarnation);
                let accuser = update.accuser;
                self.declare_gone(handle, update.state, accuser);
            }
        }
    }

    /// Alive -> Suspect, with a Lifeguard suspicion timer.
    pub(super) fn become_suspect(&mut self, handle: u32, incarnation: u32, accuser: A) {
        if self.members.get(handle).is_none() {
            return;
        }
        self.members.set_incarnation(handle, incarnation);
        self.set_state(handle, State::Suspect);
        self.stats.suspicions += 1;
        self.suspicions.start(handle, self.now, self.members.live(), accuser.clone());
        self.emit(Event::Suspected(self.snapshot(handle)));
        self.queue_gossip(handle, Some(accuser));
    }

    /// An independent confirmation shortens the suspicion (Lifeguard §IV.B)
    /// and is re-gossiped so others can count it too.
    pub(super) fn confirm_suspicion(&mut self, handle: u32, accuser: A) {
        if self.suspicions.confirm(handle, &accuser) {
            self.queue_gossip(handle, Some(accuser));
        }
    }

    /// Expired suspicions become Dead (SWIM §4.2).
    pub(super) fn suspicion_timeouts(&mut self) {
        while let Some(handle) = self.suspicions.pop_expired(self.now) {
            if self.members.get(handle).is_some_and(|e| e.state == State::Suspect) {
                let accuser = self.addr.clone();
                self.declare_gone(handle, State::Dead, Some(accuser));
            }
        }
    }

    /// Mark a member Dead or Left, keep it as a tombstone, tell the app and
    /// the cluster.
    pub(super) fn declare_gone(&mut self, handle: u32, state: State, accuser: Option<A>) {
        let Some(old) = self.members.get(handle).map(|e| e.state) else {
            return;
        };
        self.set_state(handle, state);
        self.suspicions.remove(handle);
        if old.is_live() {
            if state == State::Dead {
                self.stats.failures += 1;
                self.emit(Event::Failed(self.snapshot(handle)));
            } else {
                self.emit(Event::Left(self.snapshot(handle)));
            }
        } else if old != state && state == State::Left {
            self.emit(Event::Left(self.snapshot(handle)));
        }
        self.schedule_tombstone(handle);
        self.queue_gossip(handle, accuser);
    }

    /// Claims about this node: refute suspicion and death (SWIM §4.2), go
    /// above a previous instance's incarnation after a restart, and report a
    /// live rival claiming our address instead of flapping with it.
    fn merge_about_self(&mut self, update: &Update<'_, A>, from: &A, origin: Origin) {
        let mine = self.incarnation();
        if incarnation_newer(mine, update.incarnation) {
            if update.state != State::Alive && !self.leaving {
                let me = self.addr.clone();
                self.correct(from, &me, origin);
                self.tell_accuser(update.accuser.as_ref(), from, origin);
                if update.state == State::Dead {
                    // Refuted already, but the sender had us dead: the
                    // news it gathered meanwhile may not have reached us.
                    self.catch_up(from);
                }
            }
            return;
        }
        match update.state {
            State::Alive => {
                if update.instance == self.instance {
                    return;
                }
                match self.rivals.claim(update.instance) {
                    RivalClaim::Reported => return,
                    RivalClaim::OutBid => {}
                    RivalClaim::Conflict => {
                        self.stats.conflicts += 1;
                        self.emit(Event::Conflict {
                            addr: self.addr.clone(),
                            other_instance: update.instance,
                            incarnation: update.incarnation,
                        });
                        return;
                    }
                }
                self.set_own_incarnation(update.incarnation.wrapping_add(1));
                self.queue_gossip(self.me, None);
            }
            State::Suspect | State::Dead | State::Left => {
                if self.leaving {
                    return;
                }
                self.stats.refutations += 1;
                // Lifeguard §IV.A: being suspected is a sign our own
                // messages are getting lost.
                self.apply_health(1);
                self.set_own_incarnation(update.incarnation.wrapping_add(1));
                self.queue_gossip(self.me, None);
                // The accuser hears the refutation first-hand: gossip may
                // miss it, and then it would declare us dead.
                let me = self.addr.clone();
                self.correct(from, &me, origin);
                self.tell_accuser(update.accuser.as_ref(), from, origin);
                if update.state == State::Dead {
                    self.catch_up(from);
                }
            }
        }
    }

    /// Send our refutation straight to the member named as the accuser in
    /// a claim about us, when that is not the sender: an accusation usually
    /// reaches us second-hand, and the accuser's suspicion runs from when it
    /// made it, so waiting for gossip to carry the refutation back is what
    /// loses the race for a member whose inputs are handled late. Only a
    /// member is told (an outsider cannot aim our datagrams with a forged
    /// accuser), and at most one per datagram.
    fn tell_accuser(&mut self, accuser: Option<&A>, from: &A, origin: Origin) {
        let Some(accuser) = accuser else { return };
        if origin != Origin::Gossip || self.told_accuser || accuser == from || *accuser == self.addr {
            return;
        }
        if self.members.handle(accuser).is_none() {
            return;
        }
        self.told_accuser = true;
        self.stats.corrections += 1;
        let me = self.addr.clone();
        self.queue_transmit(Pending::Correction { to: accuser.clone(), about: me });
    }

    /// A member we hold as dead or suspect just sent us a datagram: it is
    /// running. One lookup of the sender serves both cases.
    ///
    /// Dead: tell it first-hand that it is declared dead, so it refutes
    /// (memberlist gossips to the recently dead for the same reason; this
    /// reaches a member even when nobody else is left to gossip to it).
    ///
    /// Suspect: maybe it never heard that it is suspected, or its
    /// refutation never reached us (gossip spreads it to nearly everyone
    /// within a second, and then stops; the few it missed hold the
    /// suspicion to expiry). Tell it first-hand, as the buddy system does
    /// with pings (Lifeguard §IV.C): it refutes, or answers that it already
    /// has, and the answer comes straight back. Once per probe interval per
    /// suspect.
    pub(super) fn correct_the_sender(&mut self, from: &A) {
        // Every datagram comes here; in a quiet cluster nobody is either,
        // and the sender's index slot and entry stay out of the cache.
        if self.members.count(State::Dead) == 0 && self.members.count(State::Suspect) == 0 {
            return;
        }
        let Some(handle) = self.members.handle(from) else { return };
        match self.members.get(handle).map(|e| e.state) {
            Some(State::Dead) => self.correct(from, from, Origin::Gossip),
            Some(State::Suspect) if !self.corrected && self.suspicions.tell(handle, self.now) => {
                self.correct(from, from, Origin::Gossip);
            }
            _ => {}
        }
    }

    /// Send our current claim about `about` to a sender whose claim was
    /// stale, once per datagram. Full-state exchanges need no correction:
    /// our own state goes back (or already went) in the exchange.
    pub(super) fn correct(&mut self, to: &A, about: &A, origin: Origin) {
        if origin != Origin::Gossip || self.corrected {
            return;
        }
        self.corrected = true;
        self.stats.corrections += 1;
        self.queue_transmit(Pending::Correction { to: to.clone(), about: about.clone() });
    }

    /// Out-bid a claim about this node that is not older than our own
    /// incarnation: `incarnation` is that claim's plus one. It is taken as
    /// it is: measured from our old incarnation it may be half the number
    /// space ahead, which serial comparison calls neither newer nor older,
    /// yet it is newer than the claim, and that is what must win.
    fn set_own_incarnation(&mut self, incarnation: u32) {
        self.members.set_incarnation(self.me, incarnation);
    }

    /// Deliver a broadcast once and pass it on.
    pub(super) fn on_user_broadcast(&mut self, id: u64, origin: A, payload: &[u8]) {
        if !self.delivered.first_time(id) {
            return;
        }
        self.stats.broadcasts_delivered += 1;
        self.keep_broadcast(id, &origin, payload);
        self.emit(Event::Broadcast { from: origin.clone(), payload: bytes::Bytes::copy_from_slice(payload) });
        let source = self.heard_from.clone();
        let max = self.config.max_gossip_queue;
        let dropped = self.gossip.queue_user(id, origin, payload.into(), source, max);
        self.stats.gossip_dropped += dropped as u64;
    }
}
