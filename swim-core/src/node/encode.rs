//! Encoding at poll time: the primary message, the buddy-system suspicion,
//! then piggybacked updates least-sent first until the datagram budget is
//! full; and full-state chunks straight from the member table.

use rand_core::RngCore;

use super::{Node, Pending, Transmit};
use crate::addr::Address;
use crate::dissemination::{Item, Offer};
use crate::exchange::Chunk;
use crate::member::State;
use crate::seal;
use crate::wire::{self, Message, Writer, CHECKSUM_LEN};

/// Below this many free bytes no update fits: stop offering.
const SMALLEST_UPDATE: usize = 4;

impl<A: Address, R: RngCore> Node<A, R> {
    /// Encode one pending datagram; `None` when it was dropped (no room) or
    /// had nothing to say (a gossip round whose news ran out).
    pub(super) fn encode_pending(&mut self, pending: Pending<A>, buf: &mut [u8]) -> Option<Transmit<A>> {
        let budget = buf.len().min(self.config.max_datagram_size);
        let trailer = self.trailer_len();
        let Some(space) = buf.get_mut(..budget.saturating_sub(trailer)) else {
            return self.too_small();
        };
        let mut w = Writer::new(space);
        if self.begin_datagram(&mut w, true).is_err() {
            return self.too_small();
        }
        let to = match &pending {
            Pending::Ping { to, .. }
            | Pending::Verify { to, .. }
            | Pending::Ack { to, .. }
            | Pending::Nack { to, .. }
            | Pending::PingReq { to, .. }
            | Pending::Gossip { to }
            | Pending::Correction { to, .. }
            | Pending::AckHeld { to, .. }
            | Pending::Repair { to, .. }
            | Pending::Digest { to, .. } => to.clone(),
        };
        // Our probe's ping: the one a summary of our broadcasts rides on.
        let probe_ping = matches!(&pending, Pending::Ping { seq, .. } if self.probing.is_probe_ping(&to, *seq));
        let list_held = matches!(pending, Pending::AckHeld { .. });
        let primary = match pending {
            Pending::Ping { seq, .. } => Some(Message::Ping { seq }),
            Pending::Verify { seq, .. } => {
                // Bare: an unverified address gets one small datagram.
                if (Message::Ping::<A> { seq }).encode(&mut w).is_err() {
                    return self.too_small();
                }
                let len = w.len();
                let len = self.finish_datagram(&to, buf, len, true)?;
                self.stats.sent.ping += 1;
                return Some(self.count_out(to, len));
            }
            Pending::Ack { seq, .. } | Pending::AckHeld { seq, .. } => Some(Message::Ack { seq }),
            Pending::Repair { lacking, .. } => {
                self.encode_repair(&mut w, lacking);
                None
            }
            Pending::Nack { seq, .. } => Some(Message::Nack { seq }),
            Pending::PingReq { seq, target, want_nack, .. } => Some(Message::PingReq { seq, target, want_nack }),
            Pending::Gossip { .. } => None,
            Pending::Correction { about, .. } => {
                if !self.encode_member(&mut w, &about) {
                    return None;
                }
                None
            }
            Pending::Digest { reply_wanted, exchange, log2, .. } => {
                let mut hashes = [0u8; 4 * crate::digest::MAX_BUCKETS];
                let n = crate::digest::summarize(&self.members, log2, &mut hashes);
                let m: Message<'_, A> = Message::Digest { reply_wanted, exchange, hashes: hashes.get(..n)? };
                if m.encode(&mut w).is_err() {
                    return self.too_small();
                }
                // The digest stands alone: what rides after it is not
                // state the receiver should compare against it.
                let written = w.len();
                let len = self.finish_datagram(&to, buf, written, true)?;
                self.stats.sent.push_pull += 1;
                self.stats.digests_sent += 1;
                return Some(self.count_out(to, len));
            }
        };
        if let Some(m) = &primary {
            if m.encode(&mut w).is_err() {
                return self.too_small();
            }
            // Buddy system (Lifeguard §IV.C): a suspect learns of the
            // suspicion from the very ping that probes it, and can refute.
            if let Message::Ping { .. } = m {
                let suspect = self.members.count(State::Suspect) > 0
                    && self
                        .members
                        .handle(&to)
                        .and_then(|h| self.members.get(h))
                        .is_some_and(|e| e.state == State::Suspect);
                if suspect {
                    self.encode_member(&mut w, &to);
                }
            }
            // Anti-entropy for broadcasts (see `crate::held`): before the
            // piggybacked news, so membership traffic cannot crowd it out.
            if probe_ping {
                if let Some((count, sum)) = self.held.summary() {
                    let mark = w.len();
                    if (Message::Held::<A> { count, sum }).encode(&mut w).is_err() {
                        w.truncate(mark);
                    }
                }
            }
            if list_held {
                let mut ids = [0u8; 8 * crate::held::MAX_HELD];
                // As many as fit (small datagrams): the prober then sends
                // some the pinger has, which it recognises, rather than none.
                let fit = w.remaining().saturating_sub(2) / 8 * 8;
                let n = self.held.write_ids(&mut ids).min(fit);
                let mark = w.len();
                if (Message::HeldIds::<A> { ids: ids.get(..n).unwrap_or(&[]) }).encode(&mut w).is_err() {
                    w.truncate(mark);
                }
            }
        }
        let header = self.header_len();
        self.piggyback(&mut w, &to);
        if w.len() == header {
            return None; // a gossip round whose news ran out: nothing to say
        }
        let len = w.len();
        let len = self.finish_datagram(&to, buf, len, true)?;
        let sent = &mut self.stats.sent;
        match primary {
            Some(Message::Ping { .. }) => sent.ping += 1,
            Some(Message::Ack { .. }) => sent.ack += 1,
            Some(Message::Nack { .. }) => sent.nack += 1,
            Some(Message::PingReq { .. }) => sent.ping_req += 1,
            _ => sent.gossip += 1,
        }
        Some(self.count_out(to, len))
    }

    /// Our current claim about `addr`; false if unknown or it did not fit.
    fn encode_member(&self, w: &mut Writer<'_>, addr: &A) -> bool {
        let Some(h) = self.members.handle(addr) else { return false };
        let Some(e) = self.members.get(h) else { return false };
        let mark = w.len();
        let accuser = self.suspicions.accuser_or(h, &self.addr);
        let meta = self.members.meta(h);
        if wire::encode_update(w, &e.addr, e.state, e.incarnation, e.instance, meta, Some(accuser)).is_err() {
            w.truncate(mark);
            return false;
        }
        true
    }

    /// The broadcasts a probed member lacks (bit `i` of `lacking`: the
    /// `i`th we hold), as many as fit; the rest wait for the next probe.
    fn encode_repair(&mut self, w: &mut Writer<'_>, lacking: u64) {
        for i in 0..crate::held::MAX_HELD {
            if lacking & (1 << i) == 0 {
                continue;
            }
            let Some((id, origin, payload)) = self.held.get(i) else { break };
            let mark = w.len();
            let m: Message<'_, A> = Message::User { id, origin: origin.clone(), payload };
            if m.encode(w).is_err() {
                w.truncate(mark);
                break;
            }
            self.stats.broadcasts_repaired += 1;
        }
    }

    /// Fill the rest of the datagram from the dissemination queue.
    fn piggyback(&mut self, w: &mut Writer<'_>, to: &A) {
        if self.gossip.is_empty() {
            return; // the steady state: nothing to hash or look up
        }
        // News goes to members only: an answer to a stranger (a spoofed
        // source, say) stays as small as the question.
        if !self.is_live_member(to) {
            return;
        }
        let limit = self.retransmit_limit();
        let members = &self.members;
        let suspicions = &self.suspicions;
        let addr = &self.addr;
        let mut sent = 0u64;
        let destination = crate::dissemination::destination_bits(to.hash64());
        let to_handle = members.handle(to);
        // Broadcasts go first, but while member news waits they take at
        // most half of the room: neither kind can starve the other.
        let user_room = if self.gossip.has_member_news() { w.remaining() / 2 } else { w.remaining() };
        let mut user_bytes = 0;
        self.gossip.fill(limit, destination, |item| {
            if w.remaining() < SMALLEST_UPDATE {
                return Offer::Full;
            }
            let mark = w.len();
            let is_user = matches!(item, Item::User { .. });
            if is_user && user_bytes >= user_room {
                return Offer::Full; // ends the broadcasts' turn only
            }
            let result = match item {
                Item::Member { handle, accuser, source } => {
                    let Some(e) = members.get(handle) else {
                        return Offer::Drop;
                    };
                    // Not back to whoever told us. (A member does hear
                    // claims about itself: it must, to refute suspicion or
                    // to notice another process claiming its address.)
                    if source.is_some() && source == to_handle {
                        return Offer::Known;
                    }
                    let named = accuser.and_then(|h| members.get(h)).map(|a| &a.addr);
                    let accuser = named.unwrap_or_else(|| suspicions.accuser_or(handle, addr));
                    let meta = members.meta(handle);
                    wire::encode_update(w, &e.addr, e.state, e.incarnation, e.instance, meta, Some(accuser))
                }
                Item::User { id, origin, payload, source } => {
                    if source == Some(to) {
                        return Offer::Known;
                    }
                    let m: Message<'_, A> = Message::User { id, origin: origin.clone(), payload };
                    m.encode(w)
                }
            };
            match result {
                Ok(()) => {
                    sent += 1;
                    if is_user {
                        user_bytes += w.len() - mark;
                    }
                    Offer::Sent
                }
                Err(_) => {
                    w.truncate(mark);
                    Offer::Skip
                }
            }
        });
        self.stats.updates_sent += sent;
    }

    /// memberlist `retransmitLimit`, `mult * ceil(log10(n + 1))`, raised in
    /// small clusters to `min(n - 1, 2 * mult)`: below ten members the
    /// formula allows `mult` sends, too few for news to reach everyone when
    /// several members learn it at once (each thinks the others know).
    pub(super) fn retransmit_limit(&self) -> u32 {
        let n = self.members.live();
        let digits = n.checked_ilog10().map_or(1, |l| l + 1);
        let mult = self.config.retransmit_mult;
        let floor = n.saturating_sub(1).min(mult.saturating_mul(2));
        mult.saturating_mul(digits).max(floor)
    }

    /// The next datagram of the oldest full-state transfer (see
    /// [`Exchanges::write_transfer`](crate::exchange::Exchanges::write_transfer)).
    /// On `None` the caller drops the transfer, so polling always makes
    /// progress.
    pub(super) fn encode_push_pull(&mut self, buf: &mut [u8]) -> Option<Transmit<A>> {
        let budget = buf.len().min(self.config.max_datagram_size);
        let trailer = self.trailer_len();
        let space = buf.get_mut(..budget.saturating_sub(trailer))?;
        let mut w = Writer::new(space);
        let bound = self.exchanges.transfer_bound()?;
        if self.begin_datagram(&mut w, bound).is_err() {
            return self.too_small();
        }
        let to = match self.exchanges.write_transfer(&mut w, &self.members, &self.suspicions, &self.addr)? {
            Chunk::TooSmall => return self.too_small(),
            Chunk::Empty => return None,
            Chunk::Wrote { to } => to,
        };
        let len = w.len();
        let len = self.finish_datagram(&to, buf, len, bound)?;
        self.stats.sent.push_pull += 1;
        Some(self.count_out(to, len))
    }

    /// The keys to seal with, if this node seals.
    fn sealing(&self) -> Option<&seal::Keyring> {
        self.keys.as_ref().filter(|_| self.config.encryption.seals())
    }

    /// Bytes before the messages.
    fn header_len(&self) -> usize {
        match self.sealing() {
            Some(_) => seal::sealed_header_len(&self.config.label),
            None => wire::frame_overhead(&self.config.label) - CHECKSUM_LEN,
        }
    }

    /// Bytes after the messages: the tag, or the checksum.
    fn trailer_len(&self) -> usize {
        if self.sealing().is_some() {
            seal::TAG_LEN
        } else {
            CHECKSUM_LEN
        }
    }

    /// Write the header of the next datagram: sealed under the primary key
    /// with a fresh nonce and the next counter (`bound`: for its receiver
    /// alone), or plaintext.
    fn begin_datagram(&mut self, w: &mut Writer<'_>, bound: bool) -> Result<(), wire::NoRoom> {
        let Some(primary) = self.sealing().map(|k| k.primary()) else {
            return wire::begin_frame(w, &self.config.label);
        };
        let mut nonce = [0u8; seal::NONCE_LEN];
        self.rng.fill_bytes(&mut nonce);
        self.sealed_sent += 1;
        seal::write_header(w, &self.config.label, bound, primary, self.sender_id, self.sealed_sent, &nonce)
    }

    /// Seal (or checksum) the `len` bytes written for `to`; the datagram's
    /// length. A recording node digests the bytes first, so a replay
    /// without the keys digests the same.
    fn finish_datagram(&mut self, to: &A, buf: &mut [u8], len: usize, bound: bool) -> Option<usize> {
        self.digest_datagram(to, buf.get(..len)?);
        let header_len = self.header_len();
        match self.sealing() {
            Some(keys) => {
                let mut addr = [0u8; seal::MAX_BOUND_ADDRESS_LEN];
                let mut w = Writer::new(&mut addr);
                to.encode(&mut w).ok()?;
                let receiver = bound.then_some(w.written());
                seal::finish(keys, buf, header_len, len, receiver)
            }
            None => wire::seal_in_place(buf, len),
        }
    }

    fn count_out(&mut self, to: A, len: usize) -> Transmit<A> {
        self.stats.datagrams_out += 1;
        self.stats.bytes_out += len as u64;
        Transmit { to, len }
    }

    fn too_small(&mut self) -> Option<Transmit<A>> {
        self.stats.buffer_too_small += 1;
        None
    }
}
