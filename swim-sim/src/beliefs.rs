//! Who believes what about whom: a dense observer-by-member table of one
//! byte per pair, learnt from the events each node reports, with running
//! counts so convergence and detection are known in O(1) after every event.
//! Only a node starting or stopping costs O(N).

use swim_core::State;

use crate::nibbles::Nibbles;

/// What an observer believes about a member, as learnt from its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Belief {
    /// No event about the member yet (or the observer restarted).
    Unknown = 0,
    /// Alive.
    Alive = 1,
    /// Suspect.
    Suspect = 2,
    /// Declared failed.
    Dead = 3,
    /// Left.
    Left = 4,
}

impl Belief {
    fn from_code(c: u8) -> Belief {
        match c {
            1 => Belief::Alive,
            2 => Belief::Suspect,
            3 => Belief::Dead,
            4 => Belief::Left,
            _ => Belief::Unknown,
        }
    }

    /// The belief a member's state stands for.
    pub fn from_state(s: State) -> Belief {
        match s {
            State::Alive => Belief::Alive,
            State::Suspect => Belief::Suspect,
            State::Dead => Belief::Dead,
            State::Left => Belief::Left,
        }
    }

    /// Alive or Suspect: counted in the cluster.
    pub fn is_live(self) -> bool {
        matches!(self, Belief::Alive | Belief::Suspect)
    }
}

/// The table. Only running observers count; a member is counted in the
/// pair totals only while it runs too.
#[derive(Debug)]
pub struct Beliefs {
    n: usize,
    /// A belief code per (observer, member), half a byte each.
    cells: Nibbles,
    running: Vec<bool>,
    live: u32,
    /// Per member: running observers (not itself) believing it Alive or Suspect.
    live_believers: Vec<u32>,
    /// Per member: running observers believing it Alive.
    alive_believers: Vec<u32>,
    /// Per observer: members (not itself) it believes Alive.
    alive_seen: Vec<u32>,
    /// (running observer, running member) pairs believed Alive.
    alive_pairs: u64,
    /// (running observer, running member) pairs believed Alive or Suspect.
    live_pairs: u64,
    /// Slow nodes: their views, and views of them, may hold suspicions for
    /// as long as they are slow without the cluster being unsettled.
    slow: Vec<bool>,
    /// Running nodes that are not slow.
    healthy: u32,
    /// Per member: running healthy observers believing it Alive.
    healthy_alive_believers: Vec<u32>,
    /// (running healthy observer, running healthy member) pairs believed Alive.
    healthy_alive_pairs: u64,
    /// Members not running that some running node believes live: crashed or
    /// departed nodes not yet detected everywhere.
    ghosts: u32,
}

impl Beliefs {
    /// A table for `n` node ids, none running.
    pub fn new(n: usize) -> Self {
        Beliefs {
            n,
            cells: Nibbles::new(n * n),
            running: vec![false; n],
            live: 0,
            live_believers: vec![0; n],
            alive_believers: vec![0; n],
            alive_seen: vec![0; n],
            alive_pairs: 0,
            live_pairs: 0,
            slow: vec![false; n],
            healthy: 0,
            healthy_alive_believers: vec![0; n],
            healthy_alive_pairs: 0,
            ghosts: 0,
        }
    }

    /// Node ids.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether the table has no node id.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// What `o` believes about `m`.
    pub fn get(&self, o: usize, m: usize) -> Belief {
        if o >= self.n || m >= self.n {
            return Belief::Unknown;
        }
        Belief::from_code(self.cells.get(o * self.n + m))
    }

    /// Whether `id` counts as running.
    pub fn is_running(&self, id: usize) -> bool {
        self.running.get(id).copied().unwrap_or(false)
    }

    /// Running nodes.
    pub fn live(&self) -> u32 {
        self.live
    }

    /// Running observers (not `m`) that believe `m` Alive or Suspect.
    pub fn live_believers(&self, m: usize) -> u32 {
        self.live_believers.get(m).copied().unwrap_or(0)
    }

    /// Members (itself included) that `o` believes Alive.
    pub fn alive_seen(&self, o: usize) -> u32 {
        self.alive_seen.get(o).copied().unwrap_or(0) + 1
    }

    /// Every running node believes every other running node Alive.
    pub fn converged(&self) -> bool {
        let l = u64::from(self.live);
        self.alive_pairs == l * l.saturating_sub(1)
    }

    /// Every running node believes every other running node Alive or Suspect.
    pub fn members_known(&self) -> bool {
        let l = u64::from(self.live);
        self.live_pairs == l * l.saturating_sub(1)
    }

    /// Every running healthy (not slow) node believes every other running
    /// healthy node Alive.
    pub fn healthy_converged(&self) -> bool {
        let h = u64::from(self.healthy);
        self.healthy_alive_pairs == h * h.saturating_sub(1)
    }

    /// Members not running (crashed, leaving, left) that some running node
    /// still believes live.
    pub fn ghosts(&self) -> u32 {
        self.ghosts
    }

    /// Mark `id` slow. Only before it first runs.
    pub fn set_slow(&mut self, id: usize) {
        if id < self.n && !self.running[id] {
            self.slow[id] = true;
        }
    }

    /// Live believers in `o`'s row, for checking it against a member table.
    pub fn live_in_row(&self, o: usize) -> u32 {
        if o >= self.n {
            return 0;
        }
        let row = o * self.n;
        (0..self.n).filter(|&m| m != o && Belief::from_code(self.cells.get(row + m)).is_live()).count() as u32
    }

    /// Record that `o` now believes `new` about `m`. Returns true when
    /// that took away `m`'s last running believer.
    pub fn set(&mut self, o: usize, m: usize, new: Belief) -> bool {
        if o >= self.n || m >= self.n {
            return false;
        }
        let cell = o * self.n + m;
        let old = Belief::from_code(self.cells.get(cell));
        if old == new {
            return false;
        }
        self.cells.set(cell, new as u8);
        if o == m || !self.running[o] {
            return false;
        }
        let lost = self.count(o, m, old, false);
        self.count(o, m, new, true);
        lost && self.live_believers[m] == 0
    }

    /// Forget everything `id` believed (a fresh process); it believes
    /// itself Alive. Only while it is not running.
    pub fn reset_row(&mut self, id: usize) {
        if id >= self.n || self.running[id] {
            return;
        }
        self.cells.fill(id * self.n..(id + 1) * self.n, Belief::Unknown as u8);
        self.cells.set(id * self.n + id, Belief::Alive as u8);
    }

    /// Start or stop counting `id`. Members that lost their last running
    /// believer are appended to `orphans`.
    pub fn set_running(&mut self, id: usize, running: bool, orphans: &mut Vec<usize>) {
        if id >= self.n || self.running[id] == running {
            return;
        }
        if !running {
            for m in (0..self.n).filter(|&m| m != id) {
                let b = Belief::from_code(self.cells.get(id * self.n + m));
                if self.count(id, m, b, false) && self.live_believers[m] == 0 {
                    orphans.push(m);
                }
            }
            self.alive_pairs = self.alive_pairs.saturating_sub(u64::from(self.alive_believers[id]));
            self.live_pairs = self.live_pairs.saturating_sub(u64::from(self.live_believers[id]));
            if !self.slow[id] {
                let pairs = u64::from(self.healthy_alive_believers[id]);
                self.healthy_alive_pairs = self.healthy_alive_pairs.saturating_sub(pairs);
                self.healthy -= 1;
            }
            self.live -= 1;
            self.running[id] = false;
            if self.live_believers[id] > 0 {
                self.ghosts += 1;
            }
        } else {
            if self.live_believers[id] > 0 {
                self.ghosts -= 1;
            }
            self.running[id] = true;
            self.live += 1;
            self.alive_pairs += u64::from(self.alive_believers[id]);
            self.live_pairs += u64::from(self.live_believers[id]);
            if !self.slow[id] {
                self.healthy += 1;
                self.healthy_alive_pairs += u64::from(self.healthy_alive_believers[id]);
            }
            for m in (0..self.n).filter(|&m| m != id) {
                let b = Belief::from_code(self.cells.get(id * self.n + m));
                self.count(id, m, b, true);
            }
        }
    }

    /// Add or remove one running observer's belief about `m` (not itself)
    /// in the running counts. Returns whether it was a live belief.
    fn count(&mut self, o: usize, m: usize, b: Belief, add: bool) -> bool {
        let member_running = self.running[m];
        if b.is_live() {
            let before = self.live_believers[m];
            step(&mut self.live_believers[m], add);
            if member_running {
                step(&mut self.live_pairs, add);
            } else if (before == 0) != (self.live_believers[m] == 0) {
                step(&mut self.ghosts, before == 0);
            }
        }
        if b == Belief::Alive {
            step(&mut self.alive_believers[m], add);
            step(&mut self.alive_seen[o], add);
            if member_running {
                step(&mut self.alive_pairs, add);
            }
            if !self.slow[o] {
                step(&mut self.healthy_alive_believers[m], add);
                if member_running && !self.slow[m] {
                    step(&mut self.healthy_alive_pairs, add);
                }
            }
        }
        b.is_live()
    }
}

/// One up or one down, never below zero.
fn step<T: Copy + Into<u64> + TryFrom<u64>>(v: &mut T, add: bool) {
    let x: u64 = (*v).into();
    let y = if add { x.saturating_add(1) } else { x.saturating_sub(1) };
    if let Ok(y) = T::try_from(y) {
        *v = y;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three running nodes knowing nothing yet, `slow` marked slow first.
    fn three_running(slow: Option<usize>) -> (Beliefs, Vec<usize>) {
        let mut b = Beliefs::new(3);
        let mut orphans = Vec::new();
        if let Some(id) = slow {
            b.set_slow(id);
        }
        for id in 0..3 {
            b.reset_row(id);
            b.set_running(id, true, &mut orphans);
        }
        (b, orphans)
    }

    #[test]
    fn counts_follow_beliefs_and_running_nodes() {
        let (mut b, mut orphans) = three_running(None);
        assert!(!b.converged());
        for o in 0..3 {
            for m in (0..3).filter(|&m| m != o) {
                b.set(o, m, Belief::Alive);
            }
        }
        assert!(b.converged() && b.members_known());
        b.set(0, 1, Belief::Suspect);
        assert!(!b.converged() && b.members_known());
        assert_eq!(b.live_believers(1), 2);
        assert_eq!(b.alive_seen(0), 2);
        b.set_running(2, false, &mut orphans);
        assert!(orphans.is_empty());
        assert_eq!(b.live_believers(2), 2, "the others still believe the stopped node live");
        assert!(!b.set(0, 2, Belief::Dead));
        assert!(b.set(1, 2, Belief::Dead), "the last believer let go");
        b.set(0, 1, Belief::Alive);
        assert!(b.converged());
        assert_eq!(b.live_in_row(0), 1);
    }

    #[test]
    fn a_stopped_node_believed_live_is_a_ghost_until_the_last_believer_lets_go() {
        let (mut b, mut orphans) = three_running(None);
        b.set(0, 2, Belief::Alive);
        b.set(1, 2, Belief::Suspect);
        assert_eq!(b.ghosts(), 0);
        b.set_running(2, false, &mut orphans);
        assert_eq!(b.ghosts(), 1);
        b.set(0, 2, Belief::Dead);
        assert_eq!(b.ghosts(), 1);
        b.set(1, 2, Belief::Dead);
        assert_eq!(b.ghosts(), 0);
        b.set(1, 2, Belief::Alive);
        assert_eq!(b.ghosts(), 1, "believed live again");
        b.set_running(2, true, &mut orphans);
        assert_eq!(b.ghosts(), 0, "running again: no ghost");
    }

    #[test]
    fn views_of_and_by_slow_nodes_do_not_count_for_healthy_convergence() {
        let (mut b, _) = three_running(Some(2));
        b.set(0, 1, Belief::Alive);
        assert!(!b.healthy_converged());
        b.set(1, 0, Belief::Alive);
        assert!(b.healthy_converged(), "only the two healthy nodes' views of each other count");
        assert!(!b.converged());
        b.set(1, 0, Belief::Suspect);
        assert!(!b.healthy_converged());
    }
}
