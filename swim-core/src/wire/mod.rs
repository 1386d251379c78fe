//! The wire format: one datagram carries a header, a sequence of messages and
//! a checksum. `WIRE.md` at the crate root documents it byte by byte; the
//! golden tests in `tests/wire_golden.rs` pin it.
//!
//! Decoding borrows from the datagram and allocates nothing. Every length is
//! checked against the bytes left and against a bound from
//! [`crate::Config`] before it is used, so no datagram can make a node
//! allocate past its bounds or panic.

mod buf;
mod crc;

pub use buf::{varint_len, NoRoom, Reader, Writer};
pub use crc::crc32c;

use core::fmt;

use crate::addr::Address;
use crate::member::State;

/// The only wire version this crate speaks. A datagram of another version is
/// rejected whole, so a future version can change anything after this byte.
pub const VERSION: u8 = 1;

/// Bytes of the trailing CRC-32C.
pub const CHECKSUM_LEN: usize = 4;

/// Longest cluster label (it is carried with a one-byte length).
pub const MAX_LABEL_LEN: usize = 255;

/// Why a datagram or a field could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DecodeError {
    /// A field ran past the end of the datagram.
    Truncated,
    /// A varint had more than 64 bits, or a value did not fit its field.
    VarintOverflow,
    /// A varint was encoded with more bytes than needed.
    VarintOverlong,
    /// A length prefix was larger than the configured bound.
    TooLong,
    /// An address had an unknown family byte.
    BadAddress,
    /// A message tag this version does not know.
    UnknownMessage,
    /// A field held a value outside its domain (a flag bit, a state).
    BadValue,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DecodeError::Truncated => "field runs past the end of the datagram",
            DecodeError::VarintOverflow => "integer does not fit its field",
            DecodeError::VarintOverlong => "integer encoded with superfluous bytes",
            DecodeError::TooLong => "length prefix exceeds the configured bound",
            DecodeError::BadAddress => "unknown address family",
            DecodeError::UnknownMessage => "unknown message tag",
            DecodeError::BadValue => "field value out of range",
        })
    }
}

/// Message tags. Values are part of the wire format: never renumber.
pub(crate) mod tag {
    pub const PING: u8 = 0x01;
    pub const ACK: u8 = 0x02;
    pub const NACK: u8 = 0x03;
    pub const PING_REQ: u8 = 0x04;
    pub const ALIVE: u8 = 0x10;
    pub const SUSPECT: u8 = 0x11;
    pub const DEAD: u8 = 0x12;
    pub const LEFT: u8 = 0x13;
    pub const USER: u8 = 0x20;
    pub const HELD: u8 = 0x21;
    pub const HELD_IDS: u8 = 0x22;
    pub const PUSH_PULL: u8 = 0x30;
    pub const DIGEST: u8 = 0x31;
}

/// The most buckets a digest carries, as a power of two (256 buckets, 1 KiB).
pub const MAX_DIGEST_LOG2: u8 = 8;

/// The most broadcast ids a [`Message::HeldIds`] lists (and so the most
/// recent broadcasts a node keeps for anti-entropy).
pub const MAX_HELD: usize = 64;

/// Flag bits of a push-pull header.
pub(crate) mod push_pull_flags {
    /// The sender wants the receiver's state back.
    pub const REPLY_WANTED: u8 = 0x01;
    /// The sender is joining (its seeds list named the receiver).
    pub const JOIN: u8 = 0x02;
    /// Every bit this version defines; others are rejected.
    pub const ALL: u8 = REPLY_WANTED | JOIN;
}

/// A member-state update: the unit of dissemination and of push-pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update<'a, A> {
    /// Whom the update is about.
    pub member: A,
    /// The state claimed.
    pub state: State,
    /// The incarnation the claim is made at.
    pub incarnation: u32,
    /// Alive only: the random id of the process that claims the address, so
    /// two live processes claiming one identity can be told apart.
    pub instance: u32,
    /// Alive only: the member's metadata.
    pub meta: &'a [u8],
    /// Suspect and Dead only: who made the accusation, so independent
    /// confirmations can be counted (Lifeguard §IV.B).
    pub accuser: Option<A>,
}

/// One decoded message, borrowing its byte fields from the datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message<'a, A> {
    /// Are you alive? Answer with an [`Message::Ack`] of the same sequence.
    Ping {
        /// Matches the answer to the question.
        seq: u32,
    },
    /// The answer to a ping or, relayed, to a ping request.
    Ack {
        /// The sequence of the ping (or ping request) being answered.
        seq: u32,
    },
    /// From an intermediary: the target of your ping request has not answered
    /// me yet (Lifeguard §IV.A). Tells the requester its own link works.
    Nack {
        /// The sequence of the ping request.
        seq: u32,
    },
    /// Please ping `target` for me and relay its ack under `seq`.
    PingReq {
        /// The requester's sequence, echoed in the relayed ack or nack.
        seq: u32,
        /// Whom to ping.
        target: A,
        /// Whether the requester wants a nack when the target stays silent.
        want_nack: bool,
    },
    /// A member-state update.
    Update(Update<'a, A>),
    /// An application payload disseminated to every member once.
    User {
        /// Deduplicates deliveries.
        id: u64,
        /// The member that broadcast it (every relay passes it on unchanged).
        origin: A,
        /// The application's bytes.
        payload: &'a [u8],
    },
    /// A summary of the recent broadcasts the sender holds (rides on the
    /// pings of its probes): how many, and the wrapping sum of a hash of
    /// each id. A receiver whose own summary differs lists its ids in the
    /// ack ([`Message::HeldIds`]), so the prober can send what it lacks.
    Held {
        /// Broadcasts held.
        count: u8,
        /// The wrapping sum of their ids' hashes.
        sum: u64,
    },
    /// The ids of the recent broadcasts the sender holds (rides on an ack
    /// to a ping that carried a differing [`Message::Held`]).
    HeldIds {
        /// The ids, eight big-endian bytes each, at most [`MAX_HELD`].
        ids: &'a [u8],
    },
    /// A summary of the sender's member table: members are spread over
    /// `hashes.len() / 4` buckets by a hash of their address, and each
    /// bucket's 32-bit hash sums its members' (address, state, incarnation).
    /// The receiver answers with its members in the buckets that differ
    /// (and, if a reply is wanted, its own digest), so a state exchange
    /// between nodes that agree costs two small datagrams instead of the
    /// whole table both ways.
    Digest {
        /// The sender wants the receiver's digest back (the first leg).
        reply_wanted: bool,
        /// Identifies the exchange.
        exchange: u32,
        /// The bucket hashes, four big-endian bytes each; a power-of-two count.
        hashes: &'a [u8],
    },
    /// Starts one datagram of a full-state exchange; the updates after it in
    /// the same datagram are the sender's state.
    PushPull {
        /// The sender wants the receiver's state back.
        reply_wanted: bool,
        /// The sender is joining through the receiver.
        join: bool,
        /// Identifies one exchange, so a multi-datagram request gets one reply.
        exchange: u32,
    },
}

/// Bounds a decoder checks lengths against, taken from the receiver's config.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest metadata accepted.
    pub max_meta: usize,
    /// Longest user broadcast payload accepted.
    pub max_user_payload: usize,
}

impl<A> Message<'_, A> {
    /// Whether this is a primary message: one that asks or answers
    /// something (Ping, Ack, Nack, PingReq, PushPull, Digest). A datagram
    /// carries at most one, first; updates and broadcasts ride after it.
    pub fn is_primary(&self) -> bool {
        !matches!(self, Message::Update(_) | Message::User { .. } | Message::Held { .. } | Message::HeldIds { .. })
    }
}

impl<'a, A: Address> Message<'a, A> {
    /// Decode one message.
    pub fn decode(r: &mut Reader<'a>, limits: &Limits) -> Result<Self, DecodeError> {
        let tag = r.u8()?;
        Ok(match tag {
            tag::PING => Message::Ping { seq: r.varint_u32()? },
            tag::ACK => Message::Ack { seq: r.varint_u32()? },
            tag::NACK => Message::Nack { seq: r.varint_u32()? },
            tag::PING_REQ => {
                let seq = r.varint_u32()?;
                let target = A::decode(r)?;
                let want_nack = match r.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err(DecodeError::BadValue),
                };
                Message::PingReq { seq, target, want_nack }
            }
            tag::ALIVE => {
                let member = A::decode(r)?;
                let incarnation = r.varint_u32()?;
                let instance = u32::from_be_bytes(r.array::<4>()?);
                let meta = r.bytes_with_len(limits.max_meta)?;
                Message::Update(Update { member, state: State::Alive, incarnation, instance, meta, accuser: None })
            }
            tag::SUSPECT | tag::DEAD => {
                let member = A::decode(r)?;
                let incarnation = r.varint_u32()?;
                let accuser = A::decode(r)?;
                let state = if tag == tag::SUSPECT { State::Suspect } else { State::Dead };
                Message::Update(Update { member, state, incarnation, instance: 0, meta: &[], accuser: Some(accuser) })
            }
            tag::LEFT => {
                let member = A::decode(r)?;
                let incarnation = r.varint_u32()?;
                Message::Update(Update {
                    member,
                    state: State::Left,
                    incarnation,
                    instance: 0,
                    meta: &[],
                    accuser: None,
                })
            }
            tag::USER => {
                let id = u64::from_be_bytes(r.array::<8>()?);
                let origin = A::decode(r)?;
                let payload = r.bytes_with_len(limits.max_user_payload)?;
                Message::User { id, origin, payload }
            }
            tag::HELD => {
                let count = r.u8()?;
                if usize::from(count) > MAX_HELD {
                    return Err(DecodeError::BadValue);
                }
                Message::Held { count, sum: u64::from_be_bytes(r.array::<8>()?) }
            }
            tag::HELD_IDS => {
                let count = usize::from(r.u8()?);
                if count > MAX_HELD {
                    return Err(DecodeError::BadValue);
                }
                Message::HeldIds { ids: r.take(8 * count)? }
            }
            tag::PUSH_PULL => {
                let flags = r.u8()?;
                if flags & !push_pull_flags::ALL != 0 {
                    return Err(DecodeError::BadValue);
                }
                let exchange = r.varint_u32()?;
                Message::PushPull {
                    reply_wanted: flags & push_pull_flags::REPLY_WANTED != 0,
                    join: flags & push_pull_flags::JOIN != 0,
                    exchange,
                }
            }
            tag::DIGEST => {
                let flags = r.u8()?;
                if flags & !push_pull_flags::REPLY_WANTED != 0 {
                    return Err(DecodeError::BadValue);
                }
                let exchange = r.varint_u32()?;
                let log2 = r.u8()?;
                if log2 > MAX_DIGEST_LOG2 {
                    return Err(DecodeError::BadValue);
                }
                let hashes = r.take(4usize << log2)?;
                Message::Digest { reply_wanted: flags & push_pull_flags::REPLY_WANTED != 0, exchange, hashes }
            }
            _ => return Err(DecodeError::UnknownMessage),
        })
    }

    /// Append the wire form; on [`NoRoom`] the writer may hold a partial
    /// message, which the caller truncates away.
    pub fn encode(&self, w: &mut Writer<'_>) -> Result<(), NoRoom> {
        match self {
            Message::Ping { seq } => {
                w.u8(tag::PING)?;
                w.varint(u64::from(*seq))
            }
            Message::Ack { seq } => {
                w.u8(tag::ACK)?;
                w.varint(u64::from(*seq))
            }
            Message::Nack { seq } => {
                w.u8(tag::NACK)?;
                w.varint(u64::from(*seq))
            }
            Message::PingReq { seq, target, want_nack } => {
                w.u8(tag::PING_REQ)?;
                w.varint(u64::from(*seq))?;
                target.encode(w)?;
                w.u8(u8::from(*want_nack))
            }
            Message::Update(u) => {
                encode_update(w, &u.member, u.state, u.incarnation, u.instance, u.meta, u.accuser.as_ref())
            }
            Message::User { id, origin, payload } => {
                w.u8(tag::USER)?;
                w.put(&id.to_be_bytes())?;
                origin.encode(w)?;
                w.bytes_with_len(payload)
            }
            Message::Held { count, sum } => {
                if usize::from(*count) > MAX_HELD {
                    return Err(NoRoom);
                }
                w.u8(tag::HELD)?;
                w.u8(*count)?;
                w.put(&sum.to_be_bytes())
            }
            Message::HeldIds { ids } => {
                if ids.len() % 8 != 0 || ids.len() > 8 * MAX_HELD {
                    return Err(NoRoom);
                }
                w.u8(tag::HELD_IDS)?;
                w.u8((ids.len() / 8) as u8)?;
                w.put(ids)
            }
            Message::Digest { reply_wanted, exchange, hashes } => {
                let buckets = hashes.len() / 4;
                let log2 = buckets.checked_ilog2().unwrap_or(0);
                if hashes.len() % 4 != 0 || !buckets.is_power_of_two() || log2 > u32::from(MAX_DIGEST_LOG2) {
                    return Err(NoRoom);
                }
                w.u8(tag::DIGEST)?;
                w.u8(u8::from(*reply_wanted))?;
                w.varint(u64::from(*exchange))?;
                w.u8(log2 as u8)?;
                w.put(hashes)
            }
            Message::PushPull { reply_wanted, join, exchange } => {
                w.u8(tag::PUSH_PULL)?;
                let mut flags = 0;
                if *reply_wanted {
                    flags |= push_pull_flags::REPLY_WANTED;
                }
                if *join {
                    flags |= push_pull_flags::JOIN;
                }
                w.u8(flags)?;
                w.varint(u64::from(*exchange))
            }
        }
    }
}

/// Append one member-state update. The node encodes straight from its member
/// table through this, so no [`Update`] value is built per datagram.
pub(crate) fn encode_update<A: Address>(
    w: &mut Writer<'_>,
    member: &A,
    state: State,
    incarnation: u32,
    instance: u32,
    meta: &[u8],
    accuser: Option<&A>,
) -> Result<(), NoRoom> {
    let accuser = accuser.unwrap_or(member);
    match state {
        State::Alive => {
            w.u8(tag::ALIVE)?;
            member.encode(w)?;
            w.varint(u64::from(incarnation))?;
            w.put(&instance.to_be_bytes())?;
            w.bytes_with_len(meta)
        }
        State::Suspect | State::Dead => {
            w.u8(if state == State::Suspect { tag::SUSPECT } else { tag::DEAD })?;
            member.encode(w)?;
            w.varint(u64::from(incarnation))?;
            accuser.encode(w)
        }
        State::Left => {
            w.u8(tag::LEFT)?;
            member.encode(w)?;
            w.varint(u64::from(incarnation))
        }
    }
}

/// Why a whole datagram was refused before any message was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FrameError {
    /// Shorter than a header and a checksum.
    TooShort,
    /// Longer than the configured datagram size.
    TooLong,
    /// A wire version this node does not speak.
    UnsupportedVersion(u8),
    /// Carries another cluster's label (checked before anything else is read).
    WrongCluster,
    /// The checksum does not match: corrupted in flight, or not ours.
    BadChecksum,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooShort => f.write_str("datagram shorter than header and checksum"),
            FrameError::TooLong => f.write_str("datagram longer than the configured maximum"),
            FrameError::UnsupportedVersion(v) => write!(f, "unsupported wire version {v}"),
            FrameError::WrongCluster => f.write_str("datagram carries another cluster's label"),
            FrameError::BadChecksum => f.write_str("checksum mismatch"),
        }
    }
}

/// Check a datagram's header, label and checksum; return the message bytes.
pub fn open_frame<'a>(datagram: &'a [u8], label: &[u8], max_len: usize) -> Result<&'a [u8], FrameError> {
    if datagram.len() > max_len {
        return Err(FrameError::TooLong);
    }
    let body_len = datagram.len().checked_sub(CHECKSUM_LEN).ok_or(FrameError::TooShort)?;
    let (body, checksum) = datagram.split_at(body_len);
    let mut r = Reader::new(body);
    let version = r.u8().map_err(|_| FrameError::TooShort)?;
    if version != VERSION {
        return Err(FrameError::UnsupportedVersion(version));
    }
    let label_len = r.u8().map_err(|_| FrameError::TooShort)?;
    let their_label = r.take(usize::from(label_len)).map_err(|_| FrameError::TooShort)?;
    if their_label != label {
        return Err(FrameError::WrongCluster);
    }
    let expected = u32::from_be_bytes(checksum.try_into().map_err(|_| FrameError::TooShort)?);
    if crc32c(body) != expected {
        return Err(FrameError::BadChecksum);
    }
    Ok(r.take(r.remaining()).unwrap_or(&[]))
}

/// The tag of a plaintext datagram's first message and the byte after it,
/// read without checking anything (for the flood budget, which must be
/// cheaper than the checksum); `None` for a sealed or short datagram.
pub fn peek_primary(datagram: &[u8]) -> (Option<u8>, Option<u8>) {
    if datagram.first() != Some(&VERSION) {
        return (None, None);
    }
    let at = 2 + usize::from(datagram.get(1).copied().unwrap_or(0));
    (datagram.get(at).copied(), datagram.get(at + 1).copied())
}

/// Bytes a frame adds around its messages for a given label.
pub fn frame_overhead(label: &[u8]) -> usize {
    2 + label.len() + CHECKSUM_LEN
}

/// Write the header; messages follow, then [`seal_frame`].
pub fn begin_frame(w: &mut Writer<'_>, label: &[u8]) -> Result<(), NoRoom> {
    let label_len = u8::try_from(label.len()).map_err(|_| NoRoom)?;
    w.u8(VERSION)?;
    w.u8(label_len)?;
    w.put(label)
}

/// Append the checksum over everything written; returns the datagram length.
pub fn seal_frame(w: &mut Writer<'_>) -> Result<usize, NoRoom> {
    let crc = crc32c(w.written());
    w.put(&crc.to_be_bytes())?;
    Ok(w.len())
}

/// Decode every message of a frame body, stopping at the first error.
pub fn messages<'a, A: Address>(body: &'a [u8], limits: Limits) -> Messages<'a, A> {
    Messages { reader: Reader::new(body), limits, failed: false, _addr: core::marker::PhantomData }
}

/// Iterator over the messages of a frame body; see [`messages`].
#[derive(Debug)]
pub struct Messages<'a, A> {
    reader: Reader<'a>,
    limits: Limits,
    failed: bool,
    _addr: core::marker::PhantomData<A>,
}

impl<'a, A: Address> Iterator for Messages<'a, A> {
    type Item = Result<Message<'a, A>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.reader.is_empty() {
            return None;
        }
        let result = Message::decode(&mut self.reader, &self.limits);
        self.failed = result.is_err();
        Some(result)
    }
}

/// Encode a whole datagram from messages (tests, tools and fuzzers; the node
/// itself encodes incrementally into the caller's buffer).
pub fn encode_datagram<A: Address>(buf: &mut [u8], label: &[u8], msgs: &[Message<'_, A>]) -> Result<usize, NoRoom> {
    let mut w = Writer::new(buf);
    begin_frame(&mut w, label)?;
    for m in msgs {
        m.encode(&mut w)?;
    }
    seal_frame(&mut w)
}

/// Append the checksum over `buf[..len]` at `buf[len..]`; returns the
/// datagram length, or `None` when the buffer has no room for it.
pub fn seal_in_place(buf: &mut [u8], len: usize) -> Option<usize> {
    let crc = crc32c(buf.get(..len)?);
    let end = len.checked_add(CHECKSUM_LEN)?;
    buf.get_mut(len..end)?.copy_from_slice(&crc.to_be_bytes());
    Some(end)
}
