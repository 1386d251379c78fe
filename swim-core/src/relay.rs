//! The indirect probes this node runs for others (SWIM §3.1 ping-req,
//! Lifeguard §IV.A nacks): each relay pings a target under this node's own
//! sequence and relays the ack, pings once more if the target is silent,
//! and sends a nack if asked.
//!
//! Relays are kept by sequence (an ack finds its relay in O(log r)) and
//! their next deadlines in order (the next one is the first entry), with
//! exactly one deadline entry per relay: an answered relay leaves no trace,
//! so a flood of ping requests whose targets answer at once cannot grow
//! anything past `max_relays`.

use alloc::collections::{BTreeMap, BTreeSet};

use crate::time::Instant;

/// An indirect probe this node runs for a requester.
#[derive(Debug, Clone)]
pub(crate) struct Relay<A> {
    pub requester: A,
    pub their_seq: u32,
    pub target: A,
    /// When to ping the target a second time if it has not answered.
    pub retry_at: Option<Instant>,
    /// When to tell the requester the target has not answered (if asked).
    pub nack_at: Option<Instant>,
    pub expires: Instant,
}

impl<A> Relay<A> {
    fn next_deadline(&self) -> Instant {
        let mut next = self.expires;
        for t in [self.nack_at, self.retry_at].into_iter().flatten() {
            next = next.min(t);
        }
        next
    }
}

/// What a relay's timer asks of the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RelayDue<A> {
    /// Ping the target again, under this sequence.
    Retry { target: A, our_seq: u32 },
    /// Tell the requester its target has not answered.
    Nack { requester: A, their_seq: u32 },
}

#[derive(Debug)]
pub(crate) struct Relays<A> {
    by_seq: BTreeMap<u32, Relay<A>>,
    deadlines: BTreeSet<(Instant, u32)>,
}

impl<A: Clone> Relays<A> {
    pub fn new() -> Self {
        Relays { by_seq: BTreeMap::new(), deadlines: BTreeSet::new() }
    }

    pub fn len(&self) -> usize {
        self.by_seq.len()
    }

    /// Start a relay that pings under `our_seq`.
    pub fn insert(&mut self, our_seq: u32, relay: Relay<A>) {
        self.take(our_seq);
        self.deadlines.insert((relay.next_deadline(), our_seq));
        self.by_seq.insert(our_seq, relay);
    }

    /// Whether a relay pings under `our_seq`.
    pub fn contains(&self, our_seq: u32) -> bool {
        self.by_seq.contains_key(&our_seq)
    }

    /// The target a relay pinging under `our_seq` waits for.
    pub fn target_of(&self, our_seq: u32) -> Option<&A> {
        self.by_seq.get(&our_seq).map(|r| &r.target)
    }

    /// The relay an ack under `our_seq` answers, removed.
    pub fn take(&mut self, our_seq: u32) -> Option<Relay<A>> {
        let relay = self.by_seq.remove(&our_seq)?;
        self.deadlines.remove(&(relay.next_deadline(), our_seq));
        Some(relay)
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|&(d, _)| d)
    }

    /// The next thing due at or before `now`; expired relays are dropped
    /// on the way. Call until `None`.
    pub fn poll_due(&mut self, now: Instant) -> Option<RelayDue<A>> {
        loop {
            let &(deadline, seq) = self.deadlines.first()?;
            if deadline > now {
                return None;
            }
            self.deadlines.remove(&(deadline, seq));
            let Some(relay) = self.by_seq.get_mut(&seq) else { continue };
            let due = if relay.retry_at.is_some_and(|t| t <= now) {
                relay.retry_at = None;
                Some(RelayDue::Retry { target: relay.target.clone(), our_seq: seq })
            } else if relay.nack_at.is_some_and(|t| t <= now) {
                relay.nack_at = None;
                Some(RelayDue::Nack { requester: relay.requester.clone(), their_seq: relay.their_seq })
            } else {
                None
            };
            if due.is_none() && relay.expires <= now {
                self.by_seq.remove(&seq);
                continue;
            }
            let next = relay.next_deadline();
            self.deadlines.insert((next, seq));
            if due.is_some() {
                return due;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay(at: u64) -> Relay<u32> {
        let ms = Instant::from_millis;
        Relay {
            requester: 1,
            their_seq: 9,
            target: 2,
            retry_at: Some(ms(at + 200)),
            nack_at: Some(ms(at + 400)),
            expires: ms(at + 1000),
        }
    }

    #[test]
    fn timers_fire_in_order_and_an_answered_relay_leaves_nothing() {
        let mut r = Relays::new();
        r.insert(10, relay(0));
        r.insert(11, relay(100));
        assert_eq!(r.next_deadline(), Some(Instant::from_millis(200)));
        assert_eq!(r.poll_due(Instant::from_millis(250)), Some(RelayDue::Retry { target: 2, our_seq: 10 }));
        assert_eq!(r.poll_due(Instant::from_millis(250)), None);
        // Relay 11's retry (300) comes before relay 10's nack (400).
        assert_eq!(r.next_deadline(), Some(Instant::from_millis(300)));
        assert!(r.take(11).is_some());
        assert_eq!(r.next_deadline(), Some(Instant::from_millis(400)));
        assert_eq!(r.poll_due(Instant::from_millis(400)), Some(RelayDue::Nack { requester: 1, their_seq: 9 }));
        assert_eq!(r.poll_due(Instant::from_millis(5000)), None);
        assert_eq!((r.len(), r.next_deadline()), (0, None));
    }

    #[test]
    fn a_flood_of_answered_relays_keeps_nothing() {
        let mut r = Relays::new();
        for seq in 0..100_000u32 {
            r.insert(seq, relay(u64::from(seq)));
            assert!(r.take(seq).is_some());
        }
        assert_eq!((r.len(), r.deadlines.len()), (0, 0));
    }
}
