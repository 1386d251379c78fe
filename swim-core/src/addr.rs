//! Member identities: what a node is called on the wire and where datagrams go.
//!
//! swim-core is generic over the address type. Real drivers use
//! [`core::net::SocketAddr`]; the simulator uses a compact [`NodeId`]. The
//! address is the member's identity: two members are the same member exactly
//! when their addresses are equal.

use core::fmt::Debug;
use core::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use crate::wire::{DecodeError, NoRoom, Reader, Writer};

/// An address that identifies a member and can be written on the wire.
///
/// Implementations MUST encode deterministically (one value, one encoding) and
/// MUST NOT panic in `decode` on any input; `decode(encode(a)) == a` must hold.
/// `Ord` gives the member index a deterministic order without a hasher.
pub trait Address: Clone + Ord + Debug {
    /// Exact number of bytes [`Address::encode`] writes.
    fn encoded_len(&self) -> usize;
    /// Append the wire form.
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), NoRoom>;
    /// Read the wire form, checking every length.
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Which address type a recording was made with (its header says), so
    /// a log is never read as another type: 1 for [`NodeId`], 2 for
    /// `SocketAddr`; other types keep the default 0 or pick their own.
    const RECORD_KIND: u8 = 0;

    /// A fixed, well-mixed 64-bit hash of the address. It places members in
    /// the member index and in digest buckets, so it MUST be the same on
    /// every node and in every process (no random keys). The default is
    /// FNV-1a over the wire encoding followed by SplitMix64's finaliser.
    fn hash64(&self) -> u64 {
        let mut buf = [0u8; 64];
        let mut w = Writer::new(&mut buf);
        match self.encode(&mut w) {
            Ok(()) => crate::digest::mix64(w.written()),
            Err(_) => 0,
        }
    }
}

/// A small integer identity, used by the simulator where every node is a number.
///
/// Wire form: one varint.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct NodeId(pub u32);

impl Address for NodeId {
    const RECORD_KIND: u8 = 1;
    fn encoded_len(&self) -> usize {
        crate::wire::varint_len(u64::from(self.0))
    }
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), NoRoom> {
        w.varint(u64::from(self.0))
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.varint_u32().map(NodeId)
    }
    /// SplitMix64 of the id: a simulator hashes ids millions of times a
    /// second, and an integer needs no byte-wise pass.
    fn hash64(&self) -> u64 {
        crate::digest::finalize(u64::from(self.0).wrapping_add(0x9e37_79b9_7f4a_7c15))
    }
}

impl core::fmt::Display for NodeId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "n{}", self.0)
    }
}

const FAMILY_V4: u8 = 4;
const FAMILY_V6: u8 = 6;

/// Wire form: a family byte (4 or 6), the address bytes in network order, the
/// port as two big-endian bytes. IPv6 flow info and scope id are not carried:
/// they are local to the host that sees them.
impl Address for SocketAddr {
    const RECORD_KIND: u8 = 2;
    fn encoded_len(&self) -> usize {
        match self {
            SocketAddr::V4(_) => 1 + 4 + 2,
            SocketAddr::V6(_) => 1 + 16 + 2,
        }
    }

    fn encode(&self, w: &mut Writer<'_>) -> Result<(), NoRoom> {
        match self {
            SocketAddr::V4(a) => {
                w.u8(FAMILY_V4)?;
                w.put(&a.ip().octets())?;
            }
            SocketAddr::V6(a) => {
                w.u8(FAMILY_V6)?;
                w.put(&a.ip().octets())?;
            }
        }
        w.put(&self.port().to_be_bytes())
    }

    /// The default's value (FNV-1a over the wire form, then SplitMix64's
    /// finaliser), with the wire form laid out on the stack directly: a
    /// node hashes its senders' addresses several times a datagram, and
    /// the writer's bounds checks cost more than the hash.
    fn hash64(&self) -> u64 {
        let [p0, p1] = self.port().to_be_bytes();
        match self {
            SocketAddr::V4(a) => {
                let [a0, a1, a2, a3] = a.ip().octets();
                crate::digest::mix64(&[FAMILY_V4, a0, a1, a2, a3, p0, p1])
            }
            SocketAddr::V6(a) => {
                let mut b = [FAMILY_V6; 19];
                b[1..17].copy_from_slice(&a.ip().octets());
                b[17..].copy_from_slice(&[p0, p1]);
                crate::digest::mix64(&b)
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            FAMILY_V4 => {
                let ip = Ipv4Addr::from(r.array::<4>()?);
                let port = u16::from_be_bytes(r.array::<2>()?);
                Ok(SocketAddr::V4(SocketAddrV4::new(ip, port)))
            }
            FAMILY_V6 => {
                let ip = Ipv6Addr::from(r.array::<16>()?);
                let port = u16::from_be_bytes(r.array::<2>()?);
                Ok(SocketAddr::V6(SocketAddrV6::new(ip, port, 0, 0)))
            }
            _ => Err(DecodeError::BadAddress),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<A: Address + PartialEq>(a: A) {
        let mut buf = [0u8; 32];
        let mut w = Writer::new(&mut buf);
        a.encode(&mut w).unwrap();
        assert_eq!(w.len(), a.encoded_len());
        let n = w.len();
        let mut r = Reader::new(&buf[..n]);
        assert_eq!(A::decode(&mut r).unwrap(), a);
        assert!(r.is_empty());
    }

    #[test]
    fn socket_addresses_of_both_families_round_trip() {
        round_trip::<SocketAddr>("127.0.0.1:7946".parse().unwrap());
        round_trip::<SocketAddr>("[::1]:7946".parse().unwrap());
        round_trip(NodeId(0));
        round_trip(NodeId(u32::MAX));
    }

    /// The hash places members in every node's index and digest buckets,
    /// so `SocketAddr`'s own must stay the default's value over its wire
    /// form, or nodes of two builds would disagree on every bucket.
    #[test]
    fn socket_address_hash_is_the_wire_forms_hash() {
        for a in ["127.0.0.1:7946", "10.1.2.3:1", "[::1]:7946", "[2001:db8::ff00:42:8329]:65535"] {
            let a: SocketAddr = a.parse().unwrap();
            let mut buf = [0u8; 32];
            let mut w = Writer::new(&mut buf);
            a.encode(&mut w).unwrap();
            assert_eq!(a.hash64(), crate::digest::mix64(w.written()), "{a}");
        }
    }

    #[test]
    fn unknown_address_family_is_rejected() {
        assert_eq!(SocketAddr::decode(&mut Reader::new(&[5, 1, 2])), Err(DecodeError::BadAddress));
        assert_eq!(SocketAddr::decode(&mut Reader::new(&[4, 1, 2])), Err(DecodeError::Truncated));
    }
}
