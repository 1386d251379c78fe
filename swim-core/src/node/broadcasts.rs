//! Anti-entropy for broadcasts, at the node: what a datagram's held-broadcast
//! messages ask for, and the one answer each earns (see [`crate::held`]).
//!
//! A ping carrying a summary that differs from ours gets our ids on its ack
//! (only a live member's: the list rides where piggybacked news would). An
//! ack listing ids earns a repair (the broadcasts its sender lacks) only
//! when it answers the probe this node has in flight, the first time: the
//! sender has then shown it receives what is sent to its address, so no
//! spoofed datagram can direct broadcasts at a victim, and one probe earns
//! at most one repair.

use alloc::collections::{BTreeSet, VecDeque};

use rand_core::RngCore;

use super::{Node, Pending};
use crate::addr::Address;
use crate::held::Held;
use crate::wire::Message;

/// How far back in the transmit queue the ack to the datagram being handled
/// is looked for: it was queued by that datagram's first message, and only
/// a correction can have been queued after it.
const ACK_LOOKBACK: usize = 4;

/// The broadcast ids delivered lately (the last `broadcast_dedup_window`),
/// so each broadcast is delivered once however often it arrives.
#[derive(Debug)]
pub(super) struct Delivered {
    ids: BTreeSet<u64>,
    /// The same ids, oldest first, to forget the oldest.
    order: VecDeque<u64>,
    window: usize,
}

impl Delivered {
    /// Nothing delivered yet; remembers the last `window` ids.
    pub fn new(window: usize) -> Self {
        Delivered { ids: BTreeSet::new(), order: VecDeque::new(), window }
    }

    /// Record a broadcast id; false if it was already seen.
    pub fn first_time(&mut self, id: u64) -> bool {
        if !self.ids.insert(id) {
            return false;
        }
        self.order.push_back(id);
        while self.order.len() > self.window {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
        true
    }
}

/// What one datagram's held-broadcast messages asked for.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Repair {
    /// The datagram is a ping with this sequence.
    ping: Option<u32>,
    /// The datagram is the first ack to our probe in flight.
    probe_ack: bool,
    /// The pinger's summary differs from ours: our ack lists our ids.
    list_ours: bool,
    /// The broadcasts the acking member lacks (bit `i`: our `i`th).
    lacking: u64,
}

impl Repair {
    /// A [`Message::Held`] summary.
    pub fn on_held<A>(&mut self, held: &Held<A>, count: u8, sum: u64) {
        if self.ping.is_some() && !held.same_as(count, sum) {
            self.list_ours = true;
        }
    }

    /// A [`Message::HeldIds`] list.
    pub fn on_held_ids<A>(&mut self, held: &Held<A>, ids: &[u8]) {
        if self.probe_ack {
            self.lacking = held.lacking(ids);
        }
    }
}

impl<A: Address, R: RngCore> Node<A, R> {
    /// What the datagram whose first message is `first` may earn, read
    /// before that message is handled (an ack marks the probe acked).
    pub(super) fn repair_context(&self, from: &A, first: &Message<'_, A>) -> Repair {
        match *first {
            Message::Ping { seq } => Repair { ping: Some(seq), ..Repair::default() },
            Message::Ack { seq } => {
                Repair { probe_ack: self.probing.is_first_probe_ack(from, seq), ..Repair::default() }
            }
            _ => Repair::default(),
        }
    }

    /// After a datagram's messages: upgrade the ack to a differing pinger
    /// to one listing our ids, or send a probed member what it lacks.
    pub(super) fn finish_repair(&mut self, from: &A, repair: Repair) {
        if let Some(seq) = repair.ping.filter(|_| repair.list_ours && self.is_live_member(from)) {
            let len = self.transmits.len();
            let found = (len.saturating_sub(ACK_LOOKBACK)..len).rev().find(
                |&i| matches!(self.transmits.get(i), Some(Pending::Ack { to, seq: s }) if to == from && *s == seq),
            );
            if let Some(slot) = found.and_then(|i| self.transmits.get_mut(i)) {
                *slot = Pending::AckHeld { to: from.clone(), seq };
            }
        }
        if repair.lacking != 0 {
            self.queue_transmit(Pending::Repair { to: from.clone(), lacking: repair.lacking });
        }
    }

    /// Keep a broadcast this node just sent or first delivered, for
    /// anti-entropy, for `broadcast_keep_time`.
    pub(super) fn keep_broadcast(&mut self, id: u64, origin: &A, payload: &[u8]) {
        if self.config.broadcast_keep_time.is_zero() {
            return;
        }
        let until = self.now + self.config.broadcast_keep_time;
        self.held.insert(id, origin.clone(), payload, until, self.config.broadcast_keep);
    }
}
