//! How a graceful leave ends, and the leaves waiting for their answer.
//! (Members, in events and snapshots alike, are [`crate::Member`].)

use std::time::Instant as StdInstant;

/// How a graceful leave ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaveOutcome {
    /// The Left claim was sent its full retransmit count (or nobody was
    /// left to tell).
    Disseminated,
    /// The timeout passed first; the claim went out at least partly.
    TimedOut,
}

/// Callers waiting for a leave to be disseminated, each with its deadline
/// and its reply channel `R`.
#[derive(Debug)]
pub struct PendingLeaves<R> {
    waiting: Vec<(StdInstant, R)>,
}

impl<R> Default for PendingLeaves<R> {
    fn default() -> Self {
        PendingLeaves { waiting: Vec::new() }
    }
}

impl<R> PendingLeaves<R> {
    /// Wait until `deadline` at the latest, then answer through `reply`.
    pub fn push(&mut self, deadline: StdInstant, reply: R) {
        self.waiting.push((deadline, reply));
    }

    /// The earliest deadline of a waiting caller.
    pub fn next_deadline(&self) -> Option<StdInstant> {
        self.waiting.iter().map(|(d, _)| *d).min()
    }

    /// Answer the callers that are done: all of them when the leave is
    /// `complete` (disseminated), else those whose deadline is not after
    /// `now` (timed out). `answer` hands an outcome to a reply channel.
    pub fn settle(&mut self, complete: bool, now: StdInstant, mut answer: impl FnMut(R, LeaveOutcome)) {
        if self.waiting.is_empty() {
            return;
        }
        if complete {
            for (_, reply) in self.waiting.drain(..) {
                answer(reply, LeaveOutcome::Disseminated);
            }
            return;
        }
        let (due, waiting): (Vec<_>, Vec<_>) = self.waiting.drain(..).partition(|(d, _)| *d <= now);
        self.waiting = waiting;
        for (_, reply) in due {
            answer(reply, LeaveOutcome::TimedOut);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn leaves_time_out_at_their_deadline_or_all_end_when_disseminated() {
        let t0 = StdInstant::now();
        let mut leaves = PendingLeaves::default();
        leaves.push(t0 + Duration::from_secs(2), 'b');
        leaves.push(t0 + Duration::from_secs(1), 'a');
        assert_eq!(leaves.next_deadline(), Some(t0 + Duration::from_secs(1)));
        let mut answers = Vec::new();
        leaves.settle(false, t0 + Duration::from_secs(1), |r, o| answers.push((r, o)));
        assert_eq!(answers, [('a', LeaveOutcome::TimedOut)]);
        leaves.settle(true, t0, |r, o| answers.push((r, o)));
        assert_eq!(answers[1], ('b', LeaveOutcome::Disseminated));
        assert_eq!(leaves.next_deadline(), None);
    }
}
