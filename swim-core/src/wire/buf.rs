//! Bounds-checked cursors over datagram bytes: every read and write checks the
//! bytes left first, so no input and no buffer size can make the codec panic.

use super::DecodeError;

/// Reads fields from a received datagram. Every accessor checks the bytes left.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.bytes.len()
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        let (&first, rest) = self.bytes.split_first().ok_or(DecodeError::Truncated)?;
        self.bytes = rest;
        Ok(first)
    }

    /// `len` bytes, borrowed from the datagram.
    pub fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        if len > self.bytes.len() {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(head)
    }

    /// A fixed-size array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// A LEB128 varint of at most 64 bits; overlong encodings are rejected so
    /// that every value has exactly one encoding (golden tests rely on it).
    pub fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value: u64 = 0;
        for i in 0..10u32 {
            let byte = self.u8()?;
            let low = u64::from(byte & 0x7f);
            if i == 9 && low > 1 {
                return Err(DecodeError::VarintOverflow);
            }
            value |= low << (7 * i);
            if byte & 0x80 == 0 {
                if i > 0 && byte == 0 {
                    return Err(DecodeError::VarintOverlong);
                }
                return Ok(value);
            }
        }
        Err(DecodeError::VarintOverflow)
    }

    /// A varint that must fit in 32 bits.
    pub fn varint_u32(&mut self) -> Result<u32, DecodeError> {
        u32::try_from(self.varint()?).map_err(|_| DecodeError::VarintOverflow)
    }

    /// A varint length prefix followed by that many bytes, refused when the
    /// length exceeds `max` before anything is borrowed.
    pub fn bytes_with_len(&mut self, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = self.varint()?;
        let len = usize::try_from(len).map_err(|_| DecodeError::TooLong)?;
        if len > max {
            return Err(DecodeError::TooLong);
        }
        self.take(len)
    }
}

/// Writes fields into a caller-supplied buffer; fails instead of overrunning.
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
}

/// The buffer had no room for a field. Nothing past the last complete field is
/// meaningful; callers roll back with [`Writer::truncate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoRoom;

impl<'a> Writer<'a> {
    /// A writer that fills `buf` from its start.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Writer { buf, len: 0 }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes still free.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.len)
    }

    /// Forget everything written after `len` (to undo a field that did not fit).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// The bytes written so far.
    pub fn written(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    /// Append raw bytes.
    pub fn put(&mut self, bytes: &[u8]) -> Result<(), NoRoom> {
        let end = self.len.checked_add(bytes.len()).ok_or(NoRoom)?;
        let dst = self.buf.get_mut(self.len..end).ok_or(NoRoom)?;
        dst.copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }

    /// Append one byte.
    pub fn u8(&mut self, byte: u8) -> Result<(), NoRoom> {
        self.put(&[byte])
    }

    /// Append a LEB128 varint.
    pub fn varint(&mut self, mut value: u64) -> Result<(), NoRoom> {
        let mut tmp = [0u8; 10];
        let mut n = 0;
        for slot in tmp.iter_mut() {
            let low = (value & 0x7f) as u8;
            value >>= 7;
            n += 1;
            if value == 0 {
                *slot = low;
                break;
            }
            *slot = low | 0x80;
        }
        self.put(tmp.get(..n).unwrap_or(&[]))
    }

    /// Append a varint length prefix and the bytes.
    pub fn bytes_with_len(&mut self, bytes: &[u8]) -> Result<(), NoRoom> {
        self.varint(bytes.len() as u64)?;
        self.put(bytes)
    }
}

/// How many bytes [`Writer::varint`] uses for `value`.
pub fn varint_len(value: u64) -> usize {
    let bits = 64 - value.leading_zeros() as usize;
    bits.div_ceil(7).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_every_width() {
        for value in [0u64, 1, 127, 128, 300, 16_383, 16_384, u32::MAX as u64, u64::MAX] {
            let mut buf = [0u8; 10];
            let mut w = Writer::new(&mut buf);
            w.varint(value).unwrap();
            assert_eq!(w.len(), varint_len(value));
            let n = w.len();
            let mut r = Reader::new(&buf[..n]);
            assert_eq!(r.varint().unwrap(), value);
            assert!(r.is_empty());
        }
    }

    #[test]
    fn overlong_and_overflowing_varints_are_rejected() {
        assert_eq!(Reader::new(&[0x80, 0x00]).varint(), Err(DecodeError::VarintOverlong));
        let eleven = [0xff; 11];
        assert_eq!(Reader::new(&eleven).varint(), Err(DecodeError::VarintOverflow));
        let too_big = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(Reader::new(&too_big).varint(), Err(DecodeError::VarintOverflow));
        assert_eq!(Reader::new(&[0x80]).varint(), Err(DecodeError::Truncated));
    }

    #[test]
    fn a_length_prefix_past_the_bound_is_refused_before_reading() {
        let mut buf = [0u8; 8];
        let mut w = Writer::new(&mut buf);
        w.bytes_with_len(&[1, 2, 3]).unwrap();
        let n = w.len();
        assert_eq!(Reader::new(&buf[..n]).bytes_with_len(2), Err(DecodeError::TooLong));
        assert_eq!(Reader::new(&buf[..n]).bytes_with_len(3).unwrap(), &[1, 2, 3]);
        assert_eq!(Reader::new(&buf[..2]).bytes_with_len(3), Err(DecodeError::Truncated));
    }

    #[test]
    fn a_full_writer_refuses_instead_of_overrunning() {
        let mut buf = [0u8; 2];
        let mut w = Writer::new(&mut buf);
        assert_eq!(w.put(&[1, 2, 3]), Err(NoRoom));
        w.put(&[1]).unwrap();
        assert_eq!(w.varint(300), Err(NoRoom));
        assert_eq!(w.len(), 1);
    }
}
