//! A dense table of 4-bit cells, two to a byte: the checker's tables hold a
//! cell per (observer, member) pair, N² of them, and at 20,000 nodes every
//! half byte a pair is 200 MB.

/// `len` cells of 4 bits, all zero to start with.
#[derive(Debug, Clone)]
pub struct Nibbles {
    bytes: Vec<u8>,
    len: usize,
}

impl Nibbles {
    /// `len` zero cells.
    pub fn new(len: usize) -> Self {
        Nibbles { bytes: vec![0; len.div_ceil(2)], len }
    }

    /// Cells.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no cells.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Cell `i` (0..16); 0 past the end.
    pub fn get(&self, i: usize) -> u8 {
        match self.bytes.get(i / 2) {
            Some(&b) if i < self.len => (b >> (4 * (i % 2))) & 0xf,
            _ => 0,
        }
    }

    /// Set cell `i` to the low 4 bits of `v` (nothing past the end).
    pub fn set(&mut self, i: usize, v: u8) {
        if i >= self.len {
            return;
        }
        if let Some(b) = self.bytes.get_mut(i / 2) {
            let shift = 4 * (i % 2);
            *b = (*b & !(0xf << shift)) | ((v & 0xf) << shift);
        }
    }

    /// Set every cell of `range` to `v`.
    pub fn fill(&mut self, range: std::ops::Range<usize>, v: u8) {
        for i in range {
            self.set(i, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_independent_half_bytes() {
        let mut t = Nibbles::new(5);
        assert_eq!(t.bytes.len(), 3);
        t.set(0, 15);
        t.set(1, 3);
        t.set(4, 9);
        t.set(5, 1); // past the end: ignored
        assert_eq!((0..6).map(|i| t.get(i)).collect::<Vec<_>>(), [15, 3, 0, 0, 9, 0]);
        t.set(0, 0x12);
        assert_eq!((t.get(0), t.get(1)), (2, 3), "only the low 4 bits, and only its own cell");
        t.fill(1..4, 7);
        assert_eq!((0..5).map(|i| t.get(i)).collect::<Vec<_>>(), [2, 7, 7, 7, 9]);
    }
}
