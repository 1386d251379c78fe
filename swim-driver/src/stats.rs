//! A snapshot of everything a running node counts: the core's counters,
//! the driver's own (each driver has its own set) and member counts.

use swim_core::State;

/// Members by state, this node included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemberCounts {
    /// Alive.
    pub alive: u32,
    /// Suspect.
    pub suspect: u32,
    /// Failed (dead), kept as tombstones.
    pub failed: u32,
    /// Left, kept as tombstones.
    pub left: u32,
}

impl MemberCounts {
    /// The count for one state.
    pub fn get(&self, state: State) -> u32 {
        match state {
            State::Alive => self.alive,
            State::Suspect => self.suspect,
            State::Dead => self.failed,
            State::Left => self.left,
        }
    }
}

/// Everything a running node counts, taken at one moment; `D` is the
/// driver's own counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats<D> {
    /// The protocol's counters.
    pub core: swim_core::Stats,
    /// The driver's counters.
    pub driver: D,
    /// Members by state.
    pub members: MemberCounts,
    /// The local health score (0 is healthy; Lifeguard §IV.A).
    pub local_health: u32,
    /// This node's own incarnation: it grows each time the node refutes a
    /// suspicion or changes its metadata.
    pub incarnation: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_read_by_state() {
        let counts = MemberCounts { alive: 4, suspect: 3, failed: 2, left: 1 };
        assert_eq!(counts.get(State::Alive), 4);
        assert_eq!(counts.get(State::Suspect), 3);
        assert_eq!(counts.get(State::Dead), 2);
        assert_eq!(counts.get(State::Left), 1);
    }
}
