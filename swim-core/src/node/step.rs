//! The step: one input at a time, then a full drain of outputs. Every input
//! a node takes is an [`Input`], so a run is a sequence of `(now, Input)`
//! that reproduces it; and the node can fold what it outputs into a digest,
//! so a replay can check, step by step, that it produced the same.

use rand_core::RngCore;

use super::{CommandError, Node, Rejected, SealedRecord};
use crate::addr::Address;
use crate::seal::{Key, KeyError, KeyId};
use crate::time::Instant;

/// One input to a node, as [`Node::handle`] takes it: a datagram, a timer,
/// or a command. Each variant does what the method of the same name does.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Input<'a, A> {
    /// [`Node::handle_datagram`].
    Datagram {
        /// The datagram's source.
        from: &'a A,
        /// Its bytes.
        bytes: &'a [u8],
    },
    /// [`Node::handle_timeout`].
    Timeout,
    /// [`Node::join`].
    Join(&'a [A]),
    /// [`Node::leave`].
    Leave,
    /// [`Node::set_metadata`].
    SetMetadata(&'a [u8]),
    /// [`Node::broadcast`].
    Broadcast(&'a [u8]),
    /// [`Node::force_leave`].
    ForceLeave(&'a A),
    /// [`Node::install_key`].
    InstallKey(&'a Key),
    /// [`Node::use_key`].
    UseKey(KeyId),
    /// [`Node::remove_key`].
    RemoveKey(KeyId),
    /// [`Node::install_key_id`] (a replay's record of [`Input::InstallKey`]).
    InstallKeyId(KeyId),
    /// [`Node::handle_recorded_sealed`] (a replay's record of a sealed
    /// [`Input::Datagram`]).
    RecordedSealed {
        /// The datagram's source.
        from: &'a A,
        /// Its length on the wire.
        len: usize,
        /// What it opened to, or why it was refused.
        record: SealedRecord<'a>,
    },
}

/// What an input came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Taken.
    Done,
    /// A key was installed (or was already).
    Installed(KeyId),
    /// A datagram was refused.
    Rejected(Rejected),
    /// A command was refused.
    Command(CommandError),
    /// A key command was refused.
    Key(KeyError),
}

impl<A: Address, R: RngCore> Node<A, R> {
    /// Take one input at `now`. A driver then drains
    /// [`Node::poll_transmit`] (with a buffer of one fixed size: the size
    /// decides how much news rides in each datagram) and
    /// [`Node::poll_event`], and sleeps until [`Node::poll_timeout`]: the
    /// same inputs at the same times, drained the same way, give the same
    /// outputs byte for byte.
    pub fn handle(&mut self, now: Instant, input: Input<'_, A>) -> Outcome {
        let done = |r: Result<(), CommandError>| r.map_or_else(Outcome::Command, |()| Outcome::Done);
        let key = |r: Result<(), KeyError>| r.map_or_else(Outcome::Key, |()| Outcome::Done);
        match input {
            Input::Datagram { from, bytes } => {
                self.handle_datagram(now, from.clone(), bytes).map_or_else(Outcome::Rejected, |()| Outcome::Done)
            }
            Input::Timeout => {
                self.handle_timeout(now);
                Outcome::Done
            }
            Input::Join(seeds) => {
                self.join(now, seeds);
                Outcome::Done
            }
            Input::Leave => {
                self.leave(now);
                Outcome::Done
            }
            Input::SetMetadata(meta) => done(self.set_metadata(now, meta)),
            Input::Broadcast(payload) => done(self.broadcast(now, payload)),
            Input::ForceLeave(addr) => done(self.force_leave(now, addr)),
            Input::InstallKey(k) => self.install_key(now, k).map_or_else(Outcome::Key, Outcome::Installed),
            Input::UseKey(id) => key(self.use_key(now, id)),
            Input::RemoveKey(id) => key(self.remove_key(now, id)),
            Input::InstallKeyId(id) => self.install_key_id(now, id).map_or_else(Outcome::Key, Outcome::Installed),
            Input::RecordedSealed { from, len, record } => self
                .handle_recorded_sealed(now, from.clone(), len, record)
                .map_or_else(Outcome::Rejected, |()| Outcome::Done),
        }
    }

    /// Fold what the node outputs into a digest from now on (a recorder or
    /// a replay turns this on; it costs nothing otherwise): every datagram
    /// polled (its destination and its bytes, a sealed one as it was before
    /// sealing: its header, nonce included, and its messages) and every
    /// event polled (its canonical encoding, [`crate::Event::encode`]).
    pub fn record_outputs(&mut self) {
        if self.digest.is_none() {
            self.digest = Some(OutputDigest::new());
        }
    }

    /// What the node output since the last call (or since
    /// [`Node::record_outputs`]): the digest of those datagrams and events
    /// and of the deadline [`Node::poll_timeout`] gives now, with their
    /// counts and that deadline; `None` when not recording. Take it after
    /// each step's drain: equal outputs, step by step, mean equal runs.
    pub fn take_step_outputs(&mut self) -> Option<StepOutputs> {
        let deadline = self.poll_timeout();
        let d = self.digest.as_mut()?;
        match deadline {
            Some(t) => d.fnv.write(&t.as_nanos().to_be_bytes()),
            None => d.fnv.write(&[0xff]),
        }
        let outputs = StepOutputs { digest: d.fnv.finish(), datagrams: d.datagrams, events: d.events, deadline };
        *d = OutputDigest::new();
        Some(outputs)
    }

    pub(super) fn digest_datagram(&mut self, to: &A, bytes: &[u8]) {
        if let Some(d) = self.digest.as_mut() {
            d.datagrams = d.datagrams.saturating_add(1);
            let mut buf = [0u8; 64];
            let mut w = crate::wire::Writer::new(&mut buf);
            if to.encode(&mut w).is_ok() {
                d.fnv.write(&[0x01]);
                d.fnv.write(w.written());
            }
            d.fnv.write(&(bytes.len() as u32).to_be_bytes());
            d.fnv.write(bytes);
        }
    }

    pub(super) fn digest_event(&mut self, event: &crate::event::Event<A>) {
        if let Some(d) = self.digest.as_mut() {
            d.events = d.events.saturating_add(1);
            d.fnv.write(&[0x02]);
            event.walk(&mut |bytes| d.fnv.write(bytes));
        }
    }
}

/// What a node output in one step ([`Node::take_step_outputs`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepOutputs {
    /// FNV-1a of every datagram (destination and bytes) and event polled,
    /// then of the next deadline.
    pub digest: u64,
    /// Datagrams polled.
    pub datagrams: u32,
    /// Events polled.
    pub events: u32,
    /// [`Node::poll_timeout`] after the drain.
    pub deadline: Option<Instant>,
}

/// The outputs of the step under way.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OutputDigest {
    fnv: Fnv,
    datagrams: u32,
    events: u32,
}

impl OutputDigest {
    fn new() -> Self {
        OutputDigest { fnv: Fnv::new(), datagrams: 0, events: 0 }
    }
}

/// FNV-1a, 64 bits: a digest to tell outputs apart, not a defence against
/// anyone (a log is checked against the node that wrote it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}
