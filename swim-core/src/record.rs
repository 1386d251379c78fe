//! Recordings: everything a node was fed, one step per record, in a compact,
//! versioned format (`RECORD.md` gives it byte by byte), so that a run seen
//! in production replays in the simulator byte for byte.
//!
//! A [`Recorder`] sits between a driver and its node: each input goes
//! through [`Recorder::handle`], and once the driver has drained the node's
//! outputs, [`Recorder::end_step`] closes the step with what came out (a
//! digest of the datagrams and events, their counts and the next deadline).
//! The bytes go into a `Vec<u8>` the caller writes wherever it likes (the
//! drivers: a file with rotation). [`LogReader`] reads them back; each
//! [`Step`] gives the [`Input`] to replay and the outputs to expect.
//!
//! A log never holds key material: a sealed datagram is kept as it opened
//! (key id, sender, counter and messages) or with the reason it was
//! refused, and keys are kept by id. It does hold the node's RNG seed, its
//! configuration (cluster label included) and every message it received in
//! the clear (addresses, metadata, broadcasts): see `RECORD.md`.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use rand_core::RngCore;

use crate::addr::Address;
use crate::budget::Exhausted;
use crate::config::Config;
use crate::member::State;
use crate::node::{CommandError, Input, Node, Opened, Outcome, Rejected, SealedRecord, StepOutputs};
use crate::seal::{KeyError, KeyId, SealError, SEALED_VERSION};
use crate::time::Instant;
use crate::wire::{crc32c, DecodeError, FrameError, Reader, Writer};

/// The first eight bytes of every log file.
pub const MAGIC: [u8; 8] = *b"SWIMLOG\0";
/// The layout version written after [`MAGIC`]; a reader refuses any other.
pub const FORMAT_VERSION: u16 = 1;
/// The swim-core version that writes (and replays) logs: a replay is exact
/// only under the same core, so replayers compare it with the header's.
pub const CORE_VERSION: &str = env!("CARGO_PKG_VERSION");
/// The longest record a reader accepts (kind and body): a datagram is at
/// most 65,507 bytes and a join names at most `max_seeds` addresses, so a
/// longer length can only be damage.
pub const MAX_RECORD_LEN: usize = 1 << 20;

const KIND_HEADER: u8 = 1;
const KIND_STEP: u8 = 2;
const KIND_ROTATED: u8 = 3;
const KIND_END: u8 = 4;
/// Length prefix, kind byte, CRC.
const FRAMING: usize = 4 + 1 + 4;

/// The generator a recorded node drew from, rebuilt from its 32-byte seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RngKind {
    /// `rand_chacha::ChaCha20Rng::from_seed`: the drivers'.
    ChaCha20,
    /// `rand_chacha::ChaCha8Rng::from_seed`: the simulator's.
    ChaCha8,
}

impl RngKind {
    fn code(self) -> u8 {
        match self {
            RngKind::ChaCha20 => 1,
            RngKind::ChaCha8 => 2,
        }
    }
}

/// What a log file starts with: how to rebuild the node, and where in the
/// run this file begins.
#[derive(Debug, Clone, PartialEq)]
pub struct Header<A> {
    /// The swim-core version of the recording node ([`CORE_VERSION`]).
    pub core_version: String,
    /// Who recorded, free text (`"swim-tokio 0.1.0"`).
    pub recorder: String,
    /// 0 for a run's first file, then one more per rotation.
    pub file_index: u32,
    /// The number of the first step in this file (steps count from 0).
    pub first_step: u64,
    /// [`chain`] of every step digest before this file: a replay crossing
    /// files checks it, so a missing or misplaced file is told apart.
    pub chain: u64,
    /// The node's address.
    pub identity: A,
    /// The RNG's kind.
    pub rng: RngKind,
    /// The RNG's seed.
    pub rng_seed: [u8; 32],
    /// The `now` the node was built at.
    pub start: Instant,
    /// The node's configuration.
    pub config: Config,
    /// The buffer every transmit was polled into (its size decides how much
    /// news rides in each datagram).
    pub buffer_len: u32,
    /// The keyring the node started with, by id; empty for a node without
    /// keys.
    pub key_ids: Vec<KeyId>,
}

impl<A: Address> Header<A> {
    /// The header of a first file for `node`, just built (before any input)
    /// with an `rng` of kind `rng` seeded with `rng_seed`, whose transmits
    /// are polled into buffers of `buffer_len` bytes; `recorder` says who
    /// records. Identity, configuration, start and keyring come from the
    /// node, so a recorder cannot describe another node than the one it
    /// records.
    pub fn for_node<R: RngCore>(
        node: &Node<A, R>,
        recorder: String,
        rng: RngKind,
        rng_seed: [u8; 32],
        buffer_len: u32,
    ) -> Self {
        Header {
            core_version: CORE_VERSION.into(),
            recorder,
            file_index: 0,
            first_step: 0,
            chain: 0,
            identity: node.local_addr().clone(),
            rng,
            rng_seed,
            start: node.now(),
            config: node.config().clone(),
            buffer_len,
            key_ids: node.keys().map(|(id, _)| id).collect(),
        }
    }

    /// A node as the recorded one started: built from the header's
    /// identity, configuration and start time with `rng` (which the caller
    /// rebuilt from [`Header::rng`] and [`Header::rng_seed`]), and, if it had
    /// keys, a replaying keyring of their ids ([`Node::replaying`]).
    pub fn node<R: RngCore + rand_core::CryptoRng>(&self, rng: R) -> Result<Node<A, R>, crate::ConfigError> {
        let mut node = if self.key_ids.is_empty() {
            Node::new(self.identity.clone(), self.config.clone(), rng, self.start)
        } else {
            Node::replaying(self.identity.clone(), self.config.clone(), rng, self.start, &self.key_ids)
        }?;
        node.record_outputs();
        Ok(node)
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.push(A::RECORD_KIND);
        put_str(out, &self.core_version);
        put_str(out, &self.recorder);
        put_varint(out, u64::from(self.file_index));
        put_varint(out, self.first_step);
        out.extend_from_slice(&self.chain.to_be_bytes());
        put_addr(out, &self.identity);
        out.push(self.rng.code());
        out.extend_from_slice(&self.rng_seed);
        put_varint(out, self.start.as_nanos());
        let mut config = [0u8; 512];
        let mut w = Writer::new(&mut config);
        // A label is at most 255 bytes and every other field a varint: 512
        // bytes always hold it.
        let _ = self.config.encode(&mut w);
        put_bytes(out, w.written());
        put_varint(out, u64::from(self.buffer_len));
        out.push(self.key_ids.len() as u8);
        for id in &self.key_ids {
            out.extend_from_slice(&id.0);
        }
    }

    /// Decode a header record's body; a body that names its writer but
    /// does not decode further is an [`LogError::UnreadableHeader`] (most
    /// likely another swim-core's layout), one that names nothing is
    /// corrupt.
    fn decode(body: &[u8], offset: u64) -> Result<Self, LogError> {
        let mut r = Reader::new(body);
        let corrupt = LogError::Corrupt { offset, what: "bad header" };
        if r.u8().map_err(|_| corrupt.clone())? != A::RECORD_KIND {
            return Err(corrupt);
        }
        let (Ok(core_version), Ok(recorder)) = (get_str(&mut r), get_str(&mut r)) else {
            return Err(corrupt);
        };
        Self::decode_rest(&mut r, core_version.clone(), recorder)
            .map_err(|_| LogError::UnreadableHeader { core_version })
    }

    fn decode_rest(r: &mut Reader<'_>, core_version: String, recorder: String) -> Result<Self, DecodeError> {
        let file_index = r.varint_u32()?;
        let first_step = r.varint()?;
        let chain = u64::from_be_bytes(r.array()?);
        let identity = A::decode(r)?;
        let rng = match r.u8()? {
            1 => RngKind::ChaCha20,
            2 => RngKind::ChaCha8,
            _ => return Err(DecodeError::BadValue),
        };
        let rng_seed = r.array()?;
        let start = Instant::from_nanos(r.varint()?);
        let config = Config::decode(&mut Reader::new(r.bytes_with_len(512)?))?;
        let buffer_len = r.varint_u32()?;
        let keys = r.u8()?;
        let mut key_ids = Vec::new();
        for _ in 0..keys.min(crate::seal::MAX_KEYS as u8 + 1) {
            key_ids.push(KeyId(r.array()?));
        }
        if usize::from(keys) > crate::seal::MAX_KEYS || !r.is_empty() {
            return Err(DecodeError::BadValue);
        }
        Ok(Header {
            core_version,
            recorder,
            file_index,
            first_step,
            chain,
            identity,
            rng,
            rng_seed,
            start,
            config,
            buffer_len,
            key_ids,
        })
    }
}

/// The running digest of a run's steps: `chain(previous, digest)` folds one
/// more step's output digest in (FNV-1a over both, big-endian).
pub fn chain(previous: u64, digest: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in previous.to_be_bytes().into_iter().chain(digest.to_be_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// Writes a node's steps as log records into the caller's buffer.
#[derive(Debug)]
pub struct Recorder<A> {
    header: Header<A>,
    /// Steps closed so far.
    steps: u64,
    /// The chain of every closed step's digest.
    chain: u64,
    /// The body of the step under way (time, input, outcome), awaiting its
    /// outputs; empty when no step is open.
    open: Vec<u8>,
    file_bytes: u64,
}

impl<A: Address> Recorder<A> {
    /// A recorder for `node`, which was just built as `header` says; turns
    /// on the node's output digest. Nothing is written until
    /// [`Recorder::begin_file`].
    pub fn new<R: RngCore>(node: &mut Node<A, R>, header: Header<A>) -> Self {
        node.record_outputs();
        // Outputs from before recording began belong to no step.
        let _ = node.take_step_outputs();
        Recorder { steps: header.first_step, chain: header.chain, header, open: Vec::new(), file_bytes: 0 }
    }

    /// Start a file: the magic, the format version and the header (with
    /// this file's index, first step and chain).
    pub fn begin_file(&mut self, out: &mut Vec<u8>) {
        let before = out.len();
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
        self.header.first_step = self.steps;
        self.header.chain = self.chain;
        let mut body = Vec::new();
        self.header.encode(&mut body);
        put_record(out, KIND_HEADER, &body);
        self.file_bytes = (out.len() - before) as u64;
    }

    /// End this file with a rotation marker (the run goes on in the file
    /// with the next index, which [`Recorder::begin_file`] starts). Closes
    /// the open step first.
    pub fn end_file<R: RngCore>(&mut self, node: &mut Node<A, R>, out: &mut Vec<u8>) {
        self.end_step(node, out);
        put_record(out, KIND_ROTATED, &[]);
        self.header.file_index = self.header.file_index.saturating_add(1);
        self.file_bytes = 0;
    }

    /// End the run: close the open step and write the end marker (a log
    /// without one was cut short: the process was killed, or the recorder
    /// stopped while writing).
    pub fn finish<R: RngCore>(&mut self, node: &mut Node<A, R>, out: &mut Vec<u8>) {
        self.end_step(node, out);
        let mut body = Vec::new();
        put_varint(&mut body, self.steps);
        put_record(out, KIND_END, &body);
    }

    /// Feed `input` to `node` at `now` as one step, and keep it: a sealed
    /// datagram as it opened, or why it was refused; a key by its id. The
    /// step stays open until [`Recorder::end_step`] (or the next input)
    /// closes it with the node's outputs, so drain them first.
    pub fn handle<R: RngCore>(
        &mut self,
        node: &mut Node<A, R>,
        now: Instant,
        input: Input<'_, A>,
        out: &mut Vec<u8>,
    ) -> Outcome {
        self.end_step(node, out);
        let outcome = node.handle(now, input.clone());
        let mut body = core::mem::take(&mut self.open);
        body.clear();
        put_varint(&mut body, now.as_nanos());
        let keyed = node.keys().next().is_some();
        match input {
            Input::Datagram { from, bytes } => match (node.last_opened(), outcome) {
                (Some(o), _) => put_sealed(&mut body, from, bytes.len(), SealedRecord::Opened(o)),
                (None, Outcome::Rejected(why)) if keyed && bytes.first() == Some(&SEALED_VERSION) => {
                    put_sealed(&mut body, from, bytes.len(), SealedRecord::Refused(why));
                }
                _ => {
                    body.push(0);
                    put_addr(&mut body, from);
                    put_bytes(&mut body, bytes);
                }
            },
            Input::RecordedSealed { from, len, record } => put_sealed(&mut body, from, len, record),
            Input::Timeout => body.push(2),
            Input::Join(seeds) => {
                body.push(3);
                put_varint(&mut body, seeds.len() as u64);
                for s in seeds {
                    put_addr(&mut body, s);
                }
            }
            Input::Leave => body.push(4),
            Input::SetMetadata(meta) => {
                body.push(5);
                put_bytes(&mut body, meta);
            }
            Input::Broadcast(payload) => {
                body.push(6);
                put_bytes(&mut body, payload);
            }
            Input::ForceLeave(addr) => {
                body.push(7);
                put_addr(&mut body, addr);
            }
            Input::InstallKey(key) => {
                body.push(8);
                body.extend_from_slice(&key.id().0);
            }
            Input::InstallKeyId(id) => {
                body.push(8);
                body.extend_from_slice(&id.0);
            }
            Input::UseKey(id) => {
                body.push(9);
                body.extend_from_slice(&id.0);
            }
            Input::RemoveKey(id) => {
                body.push(10);
                body.extend_from_slice(&id.0);
            }
        }
        put_outcome(&mut body, outcome);
        self.open = body;
        outcome
    }

    /// Close the open step (if any) with the outputs `node` gave since it
    /// began: call once they are drained. Harmless when no step is open.
    pub fn end_step<R: RngCore>(&mut self, node: &mut Node<A, R>, out: &mut Vec<u8>) {
        if self.open.is_empty() {
            return;
        }
        let Some(outputs) = node.take_step_outputs() else {
            return;
        };
        let mut body = core::mem::take(&mut self.open);
        put_varint(&mut body, u64::from(outputs.datagrams));
        put_varint(&mut body, u64::from(outputs.events));
        put_varint(&mut body, outputs.deadline.map_or(0, |t| t.as_nanos().saturating_add(1)));
        body.extend_from_slice(&outputs.digest.to_be_bytes());
        let before = out.len();
        put_record(out, KIND_STEP, &body);
        self.file_bytes += (out.len() - before) as u64;
        self.steps += 1;
        self.chain = chain(self.chain, outputs.digest);
        // Keep the buffer for the next step; empty means none is open.
        body.clear();
        self.open = body;
    }

    /// Steps closed so far (from the run's start).
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Bytes written into the current file.
    pub fn file_bytes(&self) -> u64 {
        self.file_bytes
    }

    /// The current file's index.
    pub fn file_index(&self) -> u32 {
        self.header.file_index
    }
}

/// One input as the log keeps it, borrowing from the log's bytes.
#[derive(Debug, Clone, PartialEq)]
pub enum Logged<'a, A> {
    /// A datagram as it arrived (plaintext, or to a node without keys).
    Datagram {
        /// Its source.
        from: A,
        /// Its bytes.
        bytes: &'a [u8],
    },
    /// A sealed datagram, as it opened or why it was refused.
    Sealed {
        /// Its source.
        from: A,
        /// Its length on the wire.
        len: usize,
        /// What it opened to.
        record: SealedRecord<'a>,
    },
    /// [`Input::Timeout`].
    Timeout,
    /// [`Input::Join`].
    Join(Vec<A>),
    /// [`Input::Leave`].
    Leave,
    /// [`Input::SetMetadata`].
    SetMetadata(&'a [u8]),
    /// [`Input::Broadcast`].
    Broadcast(&'a [u8]),
    /// [`Input::ForceLeave`].
    ForceLeave(A),
    /// [`Input::InstallKey`], by id.
    InstallKey(KeyId),
    /// [`Input::UseKey`].
    UseKey(KeyId),
    /// [`Input::RemoveKey`].
    RemoveKey(KeyId),
}

impl<A: Address> Logged<'_, A> {
    /// The input to replay it with.
    pub fn input(&self) -> Input<'_, A> {
        match self {
            Logged::Datagram { from, bytes } => Input::Datagram { from, bytes },
            Logged::Sealed { from, len, record } => Input::RecordedSealed { from, len: *len, record: *record },
            Logged::Timeout => Input::Timeout,
            Logged::Join(seeds) => Input::Join(seeds),
            Logged::Leave => Input::Leave,
            Logged::SetMetadata(m) => Input::SetMetadata(m),
            Logged::Broadcast(p) => Input::Broadcast(p),
            Logged::ForceLeave(a) => Input::ForceLeave(a),
            Logged::InstallKey(id) => Input::InstallKeyId(*id),
            Logged::UseKey(id) => Input::UseKey(*id),
            Logged::RemoveKey(id) => Input::RemoveKey(*id),
        }
    }
}

impl<A: fmt::Debug> fmt::Display for Logged<'_, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Logged::Datagram { from, bytes } => write!(f, "datagram of {} bytes from {from:?}", bytes.len()),
            Logged::Sealed { from, len, record: SealedRecord::Opened(o) } => write!(
                f,
                "sealed datagram of {len} bytes from {from:?} (key {}, sender {:016x}, counter {}, {} bytes inside)",
                o.key,
                o.sender,
                o.counter,
                o.messages.len()
            ),
            Logged::Sealed { from, len, record: SealedRecord::Refused(why) } => {
                write!(f, "sealed datagram of {len} bytes from {from:?}, refused: {why}")
            }
            Logged::Timeout => f.write_str("timeout"),
            Logged::Join(seeds) => write!(f, "join through {seeds:?}"),
            Logged::Leave => f.write_str("leave"),
            Logged::SetMetadata(m) => write!(f, "set metadata ({} bytes)", m.len()),
            Logged::Broadcast(p) => write!(f, "broadcast ({} bytes)", p.len()),
            Logged::ForceLeave(a) => write!(f, "force-leave {a:?}"),
            Logged::InstallKey(id) => write!(f, "install key {id}"),
            Logged::UseKey(id) => write!(f, "use key {id}"),
            Logged::RemoveKey(id) => write!(f, "remove key {id}"),
        }
    }
}

/// One recorded step.
#[derive(Debug, Clone, PartialEq)]
pub struct Step<'a, A> {
    /// Its number in the run (from 0).
    pub index: u64,
    /// The `now` it was fed at.
    pub at: Instant,
    /// What it was fed.
    pub input: Logged<'a, A>,
    /// What the input came to.
    pub outcome: Outcome,
    /// What came out.
    pub outputs: StepOutputs,
}

/// A record of a log file after its header.
#[derive(Debug, Clone, PartialEq)]
pub enum Record<'a, A> {
    /// A step.
    Step(Step<'a, A>),
    /// The file ends here and the run goes on in the next file.
    Rotated,
    /// The run ended here, after this many steps in all.
    End {
        /// Steps in the whole run.
        steps: u64,
    },
}

/// Why a log could not be read (past what was read).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogError {
    /// The bytes do not start with [`MAGIC`]: not a swim log.
    NotALog,
    /// A log of another layout version.
    FormatVersion {
        /// The file's.
        found: u16,
    },
    /// The header was recorded for another address type (for instance a
    /// `SocketAddr` node read as a `NodeId` one).
    AddressKind {
        /// The file's.
        found: u8,
        /// The reader's.
        expected: u8,
    },
    /// The file ends inside a record: it was cut (a process killed while
    /// writing, a copy stopped short). Everything before it is intact.
    Cut {
        /// Byte offset of the cut record.
        offset: u64,
    },
    /// The header's checksum is right and it names the swim-core version
    /// that wrote it, but the rest does not decode under this one: another
    /// version's (or build's) layout, its configuration's say.
    UnreadableHeader {
        /// The version the header names.
        core_version: String,
    },
    /// A record is damaged: its checksum, length or contents are wrong.
    Corrupt {
        /// Byte offset of the damaged record.
        offset: u64,
        /// What is wrong.
        what: &'static str,
    },
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogError::NotALog => f.write_str("not a swim log (it does not start with the log magic)"),
            LogError::FormatVersion { found } => {
                write!(f, "log format version {found}; this swim-core {CORE_VERSION} reads version {FORMAT_VERSION}")
            }
            LogError::AddressKind { found, expected } => {
                write!(f, "log records addresses of kind {found}, the reader expected kind {expected}")
            }
            LogError::UnreadableHeader { core_version } if core_version == CORE_VERSION => write!(
                f,
                "the header does not decode, though its checksum is right: another build of swim-core {core_version} \
                 wrote it, with another header or configuration layout"
            ),
            LogError::UnreadableHeader { core_version } => write!(
                f,
                "recorded by swim-core {core_version}, whose header this swim-core {CORE_VERSION} cannot read: replay it \
                 with the version that recorded it"
            ),
            LogError::Cut { offset } => write!(f, "the log is cut inside the record at byte {offset}"),
            LogError::Corrupt { offset, what } => write!(f, "the record at byte {offset} is corrupt: {what}"),
        }
    }
}

impl core::error::Error for LogError {}

/// The address kind a log file's header names ([`Address::RECORD_KIND`]),
/// so a tool can pick the reader's address type before reading.
pub fn address_kind(bytes: &[u8]) -> Result<u8, LogError> {
    let (kind, body, _) = first_record(bytes)?;
    if kind != KIND_HEADER {
        return Err(LogError::Corrupt { offset: PREAMBLE as u64, what: "the first record is not a header" });
    }
    body.first().copied().ok_or(LogError::Corrupt { offset: PREAMBLE as u64, what: "empty header" })
}

const PREAMBLE: usize = MAGIC.len() + 2;

fn first_record(bytes: &[u8]) -> Result<Framed<'_>, LogError> {
    if bytes.len() < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC {
        return Err(LogError::NotALog);
    }
    let Some(v) = bytes.get(MAGIC.len()..PREAMBLE) else {
        return Err(LogError::Cut { offset: MAGIC.len() as u64 });
    };
    let found = u16::from_be_bytes([v[0], v[1]]);
    if found != FORMAT_VERSION {
        return Err(LogError::FormatVersion { found });
    }
    match frame(bytes, PREAMBLE)? {
        Some(r) => Ok(r),
        None => Err(LogError::Cut { offset: PREAMBLE as u64 }),
    }
}

/// A record read: its kind, its body and the offset after it.
type Framed<'a> = (u8, &'a [u8], usize);

/// The record at `at`; `None` at the end of the bytes.
fn frame(bytes: &[u8], at: usize) -> Result<Option<Framed<'_>>, LogError> {
    let offset = at as u64;
    let rest = bytes.get(at..).unwrap_or(&[]);
    if rest.is_empty() {
        return Ok(None);
    }
    let Some(len) = rest.get(..4) else {
        return Err(LogError::Cut { offset });
    };
    let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
    if len == 0 || len > MAX_RECORD_LEN {
        return Err(LogError::Corrupt { offset, what: "impossible record length" });
    }
    let Some(record) = rest.get(4..4 + len + 4) else {
        return Err(LogError::Cut { offset });
    };
    let (content, crc) = record.split_at(len);
    if crc32c(content) != u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]) {
        return Err(LogError::Corrupt { offset, what: "checksum mismatch" });
    }
    Ok(Some((content[0], &content[1..], at + 4 + len + 4)))
}

/// Reads one log file: its header, then its records in order.
#[derive(Debug)]
pub struct LogReader<'a, A> {
    bytes: &'a [u8],
    pos: usize,
    next_step: u64,
    done: bool,
    _addr: core::marker::PhantomData<A>,
}

impl<'a, A: Address> LogReader<'a, A> {
    /// Read the header of the log file `bytes`.
    pub fn open(bytes: &'a [u8]) -> Result<(Header<A>, Self), LogError> {
        let (kind, body, next) = first_record(bytes)?;
        let offset = PREAMBLE as u64;
        if kind != KIND_HEADER {
            return Err(LogError::Corrupt { offset, what: "the first record is not a header" });
        }
        if let Some(&found) = body.first().filter(|&&k| k != A::RECORD_KIND) {
            return Err(LogError::AddressKind { found, expected: A::RECORD_KIND });
        }
        let header = Header::decode(body, offset)?;
        let reader =
            LogReader { bytes, pos: next, next_step: header.first_step, done: false, _addr: core::marker::PhantomData };
        Ok((header, reader))
    }

    /// The byte offset of the next record.
    pub fn offset(&self) -> u64 {
        self.pos as u64
    }

    /// The next record; `None` after the last one (or after an error).
    #[allow(clippy::should_implement_trait)] // records borrow the reader's bytes
    pub fn next(&mut self) -> Option<Result<Record<'a, A>, LogError>> {
        if self.done {
            return None;
        }
        let offset = self.pos as u64;
        let record = match frame(self.bytes, self.pos) {
            Ok(Some(r)) => r,
            Ok(None) => {
                self.done = true;
                return None;
            }
            Err(e) => {
                self.done = true;
                return Some(Err(e));
            }
        };
        let (kind, body, next) = record;
        self.pos = next;
        let corrupt = |what| LogError::Corrupt { offset, what };
        let result = match kind {
            KIND_STEP => {
                let step = decode_step(body, self.next_step).map_err(|_| corrupt("bad step"));
                self.next_step += 1;
                step.map(Record::Step)
            }
            KIND_ROTATED if body.is_empty() => Ok(Record::Rotated),
            KIND_END => {
                let mut r = Reader::new(body);
                match r.varint() {
                    Ok(steps) if r.is_empty() => Ok(Record::End { steps }),
                    _ => Err(corrupt("bad end record")),
                }
            }
            _ => Err(corrupt("unknown record kind")),
        };
        if result.is_err() || matches!(result, Ok(Record::Rotated | Record::End { .. })) {
            self.done = true;
        }
        Some(result)
    }
}

fn decode_step<A: Address>(body: &[u8], index: u64) -> Result<Step<'_, A>, DecodeError> {
    let mut r = Reader::new(body);
    let at = Instant::from_nanos(r.varint()?);
    let input = match r.u8()? {
        0 => Logged::Datagram { from: A::decode(&mut r)?, bytes: get_bytes(&mut r)? },
        1 => {
            let from = A::decode(&mut r)?;
            let len = usize::try_from(r.varint()?).map_err(|_| DecodeError::VarintOverflow)?;
            let record = match r.u8()? {
                0 => SealedRecord::Opened(Opened {
                    bound: get_bool(&mut r)?,
                    key: KeyId(r.array()?),
                    sender: u64::from_be_bytes(r.array()?),
                    counter: u64::from_be_bytes(r.array()?),
                    messages: get_bytes(&mut r)?,
                }),
                1 => SealedRecord::Refused(get_rejected(&mut r)?),
                _ => return Err(DecodeError::BadValue),
            };
            Logged::Sealed { from, len, record }
        }
        2 => Logged::Timeout,
        3 => {
            let n = r.varint()?;
            // Each address takes at least a byte: a count past the rest is damage.
            if n > r.remaining() as u64 {
                return Err(DecodeError::Truncated);
            }
            let mut seeds = Vec::with_capacity(n as usize);
            for _ in 0..n {
                seeds.push(A::decode(&mut r)?);
            }
            Logged::Join(seeds)
        }
        4 => Logged::Leave,
        5 => Logged::SetMetadata(get_bytes(&mut r)?),
        6 => Logged::Broadcast(get_bytes(&mut r)?),
        7 => Logged::ForceLeave(A::decode(&mut r)?),
        8 => Logged::InstallKey(KeyId(r.array()?)),
        9 => Logged::UseKey(KeyId(r.array()?)),
        10 => Logged::RemoveKey(KeyId(r.array()?)),
        _ => return Err(DecodeError::UnknownMessage),
    };
    let outcome = get_outcome(&mut r)?;
    let datagrams = r.varint_u32()?;
    let events = r.varint_u32()?;
    let deadline = match r.varint()? {
        0 => None,
        t => Some(Instant::from_nanos(t - 1)),
    };
    let digest = u64::from_be_bytes(r.array()?);
    if !r.is_empty() {
        return Err(DecodeError::BadValue);
    }
    Ok(Step { index, at, input, outcome, outputs: StepOutputs { digest, datagrams, events, deadline } })
}

// ----- encodings -----------------------------------------------------------

fn put_record(out: &mut Vec<u8>, kind: u8, body: &[u8]) {
    let start = out.len();
    out.extend_from_slice(&((body.len() + 1) as u32).to_be_bytes());
    out.push(kind);
    out.extend_from_slice(body);
    let crc = crc32c(&out[start + 4..]);
    out.extend_from_slice(&crc.to_be_bytes());
    debug_assert!(out.len() - start == body.len() + FRAMING);
}

fn put_varint(out: &mut Vec<u8>, value: u64) {
    let mut buf = [0u8; 10];
    let mut w = Writer::new(&mut buf);
    let _ = w.varint(value);
    out.extend_from_slice(w.written());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_bytes(out, s.as_bytes());
}

fn put_addr<A: Address>(out: &mut Vec<u8>, addr: &A) {
    let mut buf = [0u8; 300];
    let mut w = Writer::new(&mut buf);
    let _ = addr.encode(&mut w);
    out.extend_from_slice(w.written());
}

fn put_sealed<A: Address>(out: &mut Vec<u8>, from: &A, len: usize, record: SealedRecord<'_>) {
    out.push(1);
    put_addr(out, from);
    put_varint(out, len as u64);
    match record {
        SealedRecord::Opened(o) => {
            out.push(0);
            out.push(u8::from(o.bound));
            out.extend_from_slice(&o.key.0);
            out.extend_from_slice(&o.sender.to_be_bytes());
            out.extend_from_slice(&o.counter.to_be_bytes());
            put_bytes(out, o.messages);
        }
        SealedRecord::Refused(why) => {
            out.push(1);
            put_rejected(out, why);
        }
    }
}

fn get_bytes<'a>(r: &mut Reader<'a>) -> Result<&'a [u8], DecodeError> {
    r.bytes_with_len(MAX_RECORD_LEN)
}

fn get_str(r: &mut Reader<'_>) -> Result<String, DecodeError> {
    let bytes = r.bytes_with_len(255)?;
    core::str::from_utf8(bytes).map(String::from).map_err(|_| DecodeError::BadValue)
}

fn get_bool(r: &mut Reader<'_>) -> Result<bool, DecodeError> {
    match r.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(DecodeError::BadValue),
    }
}

fn put_rejected(out: &mut Vec<u8>, why: Rejected) {
    match why {
        Rejected::Frame(e) => {
            out.push(1);
            match e {
                FrameError::TooShort => out.push(0),
                FrameError::TooLong => out.push(1),
                FrameError::UnsupportedVersion(v) => out.extend_from_slice(&[2, v]),
                FrameError::WrongCluster => out.push(3),
                FrameError::BadChecksum => out.push(4),
            }
        }
        Rejected::Malformed(e) => out.extend_from_slice(&[2, decode_error_code(e)]),
        Rejected::FromSelf => out.push(3),
        Rejected::Seal(e) => {
            out.push(4);
            match e {
                SealError::Plaintext => out.push(0),
                SealError::NoKeys => out.push(1),
                SealError::UnknownKey(id) => {
                    out.push(2);
                    out.extend_from_slice(&id.0);
                }
                SealError::BadTag => out.push(3),
                SealError::Replayed => out.push(4),
                SealError::Unbound => out.push(5),
            }
        }
        Rejected::RateLimited(Exhausted::Source) => out.extend_from_slice(&[5, 0]),
        Rejected::RateLimited(Exhausted::Total) => out.extend_from_slice(&[5, 1]),
        Rejected::ExtraPrimary => out.push(6),
    }
}

const DECODE_ERRORS: [DecodeError; 7] = [
    DecodeError::Truncated,
    DecodeError::VarintOverflow,
    DecodeError::VarintOverlong,
    DecodeError::TooLong,
    DecodeError::BadAddress,
    DecodeError::UnknownMessage,
    DecodeError::BadValue,
];

fn decode_error_code(e: DecodeError) -> u8 {
    DECODE_ERRORS.iter().position(|&d| d == e).unwrap_or(0) as u8
}

fn get_rejected(r: &mut Reader<'_>) -> Result<Rejected, DecodeError> {
    Ok(match r.u8()? {
        1 => Rejected::Frame(match r.u8()? {
            0 => FrameError::TooShort,
            1 => FrameError::TooLong,
            2 => FrameError::UnsupportedVersion(r.u8()?),
            3 => FrameError::WrongCluster,
            4 => FrameError::BadChecksum,
            _ => return Err(DecodeError::BadValue),
        }),
        2 => Rejected::Malformed(*DECODE_ERRORS.get(usize::from(r.u8()?)).ok_or(DecodeError::BadValue)?),
        3 => Rejected::FromSelf,
        4 => Rejected::Seal(match r.u8()? {
            0 => SealError::Plaintext,
            1 => SealError::NoKeys,
            2 => SealError::UnknownKey(KeyId(r.array()?)),
            3 => SealError::BadTag,
            4 => SealError::Replayed,
            5 => SealError::Unbound,
            _ => return Err(DecodeError::BadValue),
        }),
        5 => Rejected::RateLimited(match r.u8()? {
            0 => Exhausted::Source,
            1 => Exhausted::Total,
            _ => return Err(DecodeError::BadValue),
        }),
        6 => Rejected::ExtraPrimary,
        _ => return Err(DecodeError::BadValue),
    })
}

fn put_outcome(out: &mut Vec<u8>, outcome: Outcome) {
    match outcome {
        Outcome::Done => out.push(0),
        Outcome::Installed(id) => {
            out.push(1);
            out.extend_from_slice(&id.0);
        }
        Outcome::Rejected(why) => {
            out.push(2);
            put_rejected(out, why);
        }
        Outcome::Command(e) => {
            out.push(3);
            match e {
                CommandError::MetadataTooLarge { len, max } => {
                    out.push(0);
                    put_varint(out, len as u64);
                    put_varint(out, max as u64);
                }
                CommandError::BroadcastTooLarge { len, max } => {
                    out.push(1);
                    put_varint(out, len as u64);
                    put_varint(out, max as u64);
                }
                CommandError::UnknownMember => out.push(2),
                CommandError::NotFailed { state } => out.extend_from_slice(&[3, state as u8]),
            }
        }
        Outcome::Key(e) => {
            out.push(4);
            match e {
                KeyError::UnknownKey(id) => {
                    out.push(0);
                    out.extend_from_slice(&id.0);
                }
                KeyError::PrimaryKey(id) => {
                    out.push(1);
                    out.extend_from_slice(&id.0);
                }
                KeyError::KeyringFull => out.push(2),
                KeyError::NoKeyring => out.push(3),
                KeyError::ReplayKeyring => out.push(4),
                KeyError::NotReplaying => out.push(5),
            }
        }
    }
}

fn get_outcome(r: &mut Reader<'_>) -> Result<Outcome, DecodeError> {
    let usize_of = |v: u64| usize::try_from(v).map_err(|_| DecodeError::VarintOverflow);
    Ok(match r.u8()? {
        0 => Outcome::Done,
        1 => Outcome::Installed(KeyId(r.array()?)),
        2 => Outcome::Rejected(get_rejected(r)?),
        3 => Outcome::Command(match r.u8()? {
            0 => CommandError::MetadataTooLarge { len: usize_of(r.varint()?)?, max: usize_of(r.varint()?)? },
            1 => CommandError::BroadcastTooLarge { len: usize_of(r.varint()?)?, max: usize_of(r.varint()?)? },
            2 => CommandError::UnknownMember,
            3 => CommandError::NotFailed {
                state: match r.u8()? {
                    0 => State::Alive,
                    1 => State::Suspect,
                    2 => State::Dead,
                    3 => State::Left,
                    _ => return Err(DecodeError::BadValue),
                },
            },
            _ => return Err(DecodeError::BadValue),
        }),
        4 => Outcome::Key(match r.u8()? {
            0 => KeyError::UnknownKey(KeyId(r.array()?)),
            1 => KeyError::PrimaryKey(KeyId(r.array()?)),
            2 => KeyError::KeyringFull,
            3 => KeyError::NoKeyring,
            4 => KeyError::ReplayKeyring,
            5 => KeyError::NotReplaying,
            _ => return Err(DecodeError::BadValue),
        }),
        _ => return Err(DecodeError::BadValue),
    })
}

// ----- replay --------------------------------------------------------------

/// A node replaying a log: each [`Step`] fed as recorded and drained with
/// the recorded buffer size, its outputs compared with the recorded ones.
#[derive(Debug)]
pub struct Replay<A: Address, R: RngCore> {
    node: Node<A, R>,
    buf: Vec<u8>,
    header: Header<A>,
    steps: u64,
    chain: u64,
}

/// Where a replay parted from its recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    /// The step's number.
    pub step: u64,
    /// The recorded outcome and the replay's, when they differ.
    pub outcome: Option<(Outcome, Outcome)>,
    /// The recorded outputs and the replay's.
    pub outputs: (StepOutputs, StepOutputs),
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (rec, got) = &self.outputs;
        write!(f, "step {} diverged:", self.step)?;
        if let Some((r, g)) = &self.outcome {
            write!(f, " the input came to {g:?}, recorded {r:?};")?;
        }
        if rec.datagrams != got.datagrams {
            write!(f, " {} datagrams out, recorded {};", got.datagrams, rec.datagrams)?;
        }
        if rec.events != got.events {
            write!(f, " {} events out, recorded {};", got.events, rec.events)?;
        }
        if rec.deadline != got.deadline {
            write!(f, " next deadline {:?}, recorded {:?};", got.deadline, rec.deadline)?;
        }
        write!(f, " output digest {:016x}, recorded {:016x}", got.digest, rec.digest)
    }
}

/// Why the next file of a rotated log does not continue the replay.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContinuityError {
    /// It is not the next file of the run (index, first step or chain).
    NotNext {
        /// The index expected.
        expected_index: u32,
        /// The step expected first.
        expected_step: u64,
        /// The file's index.
        index: u32,
        /// The file's first step.
        step: u64,
    },
    /// It continues another node's run (identity, seed or configuration).
    OtherRun,
}

impl fmt::Display for ContinuityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContinuityError::NotNext { expected_index, expected_step, index, step } => write!(
                f,
                "file {index} (from step {step}) does not follow: expected file {expected_index} from step {expected_step}, with the same chain"
            ),
            ContinuityError::OtherRun => f.write_str("the file belongs to another node's run"),
        }
    }
}

impl<A: Address, R: RngCore + rand_core::CryptoRng> Replay<A, R> {
    /// Rebuild the node the first file's `header` describes, with `rng`
    /// rebuilt from its seed. Fails when the header's configuration does
    /// not validate.
    pub fn new(header: &Header<A>, rng: R) -> Result<Self, crate::ConfigError> {
        let node = header.node(rng)?;
        let buf = alloc::vec![0u8; header.buffer_len as usize];
        Ok(Replay { node, buf, header: header.clone(), steps: header.first_step, chain: header.chain })
    }
}

impl<A: Address, R: RngCore> Replay<A, R> {
    /// Feed one recorded step and drain it; `on_event` sees every event.
    /// Returns where it parted from the recording, if it did.
    pub fn step(&mut self, step: &Step<'_, A>, mut on_event: impl FnMut(&crate::Event<A>)) -> Result<(), Divergence> {
        let outcome = self.node.handle(step.at, step.input.input());
        while self.node.poll_transmit(&mut self.buf).is_some() {}
        while let Some(e) = self.node.poll_event() {
            on_event(&e);
        }
        let outputs =
            self.node.take_step_outputs().unwrap_or(StepOutputs { digest: 0, datagrams: 0, events: 0, deadline: None });
        self.steps += 1;
        self.chain = chain(self.chain, outputs.digest);
        let outcome = (outcome != step.outcome).then_some((step.outcome, outcome));
        if outcome.is_some() || outputs != step.outputs {
            return Err(Divergence { step: step.index, outcome, outputs: (step.outputs, outputs) });
        }
        Ok(())
    }

    /// Check that `next`, the header of another file, continues this run
    /// where it stands.
    pub fn next_file(&mut self, next: &Header<A>) -> Result<(), ContinuityError> {
        let same_run = next.identity == self.header.identity
            && next.rng_seed == self.header.rng_seed
            && next.config == self.header.config
            && next.start == self.header.start;
        if !same_run {
            return Err(ContinuityError::OtherRun);
        }
        let expected_index = self.header.file_index.saturating_add(1);
        if next.file_index != expected_index || next.first_step != self.steps || next.chain != self.chain {
            return Err(ContinuityError::NotNext {
                expected_index,
                expected_step: self.steps,
                index: next.file_index,
                step: next.first_step,
            });
        }
        self.header.file_index = expected_index;
        Ok(())
    }

    /// The replaying node.
    pub fn node(&self) -> &Node<A, R> {
        &self.node
    }

    /// Steps replayed (from the run's start).
    pub fn steps(&self) -> u64 {
        self.steps
    }
}
