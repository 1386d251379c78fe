//! The event queue: everything that will happen, ordered by (time, sequence).
//!
//! Two things scheduled for the same instant happen in the order they were
//! scheduled, so a run is a pure function of its seed.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use swim_core::Instant;

/// Something that happens at a point of virtual time.
#[derive(Debug)]
pub enum Action {
    /// A datagram arrives at `to`.
    Deliver {
        /// Sender id.
        from: u32,
        /// Receiver id.
        to: u32,
        /// The datagram, at its own size: a join storm holds a great many
        /// in flight at once.
        payload: Box<[u8]>,
        /// Whether this is one of the two copies of a datagram the network
        /// duplicated (each draws its own latency, so either may come first).
        duplicated: bool,
    },
    /// A node's timer may be due.
    Wake {
        /// The node.
        node: u32,
    },
    /// A flooding outsider sends its next datagram.
    Flood {
        /// The outsider's id.
        outsider: u32,
    },
    /// The scenario's fault with this index in the plan fires.
    Fault(usize),
    /// Take a sample for the time series (member counts, table sizes).
    Sample,
}

#[derive(Debug)]
struct Scheduled {
    at: Instant,
    seq: u64,
    action: Action,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Scheduled {}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scheduled {
    /// Reversed, so the max-heap pops the earliest (time, sequence) first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// A min-queue of actions keyed by (time, sequence).
#[derive(Debug, Default)]
pub struct EventQueue {
    heap: BinaryHeap<Scheduled>,
    next_seq: u64,
    in_flight: InFlight,
}

/// Datagrams waiting in the queue to be delivered, now and at the most: a
/// join storm holds a great many at once, and their bytes are a share of
/// a large run's memory the nodes do not own.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct InFlight {
    /// Datagrams scheduled and not yet delivered.
    pub datagrams: u64,
    /// Their payload bytes.
    pub bytes: u64,
    /// The most datagrams waiting at once.
    pub peak_datagrams: u64,
    /// The most payload bytes waiting at once (not necessarily at the same
    /// moment as `peak_datagrams`).
    pub peak_bytes: u64,
}

impl EventQueue {
    /// An empty queue.
    pub fn new() -> Self {
        EventQueue::default()
    }

    /// Schedule `action` at `at`, after everything already scheduled at `at`.
    pub fn push(&mut self, at: Instant, action: Action) {
        let seq = self.next_seq;
        self.next_seq += 1;
        if let Action::Deliver { payload, .. } = &action {
            let f = &mut self.in_flight;
            f.datagrams += 1;
            f.bytes += payload.len() as u64;
            f.peak_datagrams = f.peak_datagrams.max(f.datagrams);
            f.peak_bytes = f.peak_bytes.max(f.bytes);
        }
        self.heap.push(Scheduled { at, seq, action });
    }

    /// When the earliest action happens.
    pub fn peek_time(&self) -> Option<Instant> {
        self.heap.peek().map(|s| s.at)
    }

    /// Take the earliest action.
    pub fn pop(&mut self) -> Option<(Instant, Action)> {
        let s = self.heap.pop()?;
        if let Action::Deliver { payload, .. } = &s.action {
            self.in_flight.datagrams -= 1;
            self.in_flight.bytes -= payload.len() as u64;
        }
        Some((s.at, s.action))
    }

    /// Datagrams in flight, now and at the most.
    pub fn in_flight(&self) -> InFlight {
        self.in_flight
    }

    /// Actions waiting.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_first_and_ties_in_scheduling_order() {
        let mut q = EventQueue::new();
        q.push(Instant::from_secs(2), Action::Wake { node: 1 });
        q.push(Instant::from_secs(1), Action::Wake { node: 2 });
        q.push(Instant::from_secs(2), Action::Wake { node: 3 });
        q.push(Instant::from_secs(1), Action::Wake { node: 4 });
        let order: Vec<u32> = std::iter::from_fn(|| q.pop())
            .map(|(_, a)| match a {
                Action::Wake { node } => node,
                _ => u32::MAX,
            })
            .collect();
        assert_eq!(order, [2, 4, 1, 3]);
        assert!(q.is_empty());
    }

    #[test]
    fn datagrams_in_flight_are_counted_with_their_peak() {
        let mut q = EventQueue::new();
        let deliver = |n: usize| Action::Deliver { from: 0, to: 1, payload: vec![0; n].into(), duplicated: false };
        q.push(Instant::from_secs(1), deliver(10));
        q.push(Instant::from_secs(2), deliver(30));
        q.push(Instant::from_secs(3), Action::Wake { node: 1 });
        assert!(q.pop().is_some());
        q.push(Instant::from_secs(4), deliver(5));
        let f = q.in_flight();
        assert_eq!((f.datagrams, f.bytes, f.peak_datagrams, f.peak_bytes), (2, 35, 2, 40));
        while q.pop().is_some() {}
        assert_eq!((q.in_flight().datagrams, q.in_flight().bytes), (0, 0));
    }
}
