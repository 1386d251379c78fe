//! # swim-core
//!
//! The SWIM membership and failure-detection protocol (Das, Gupta, Motivala,
//! DSN 2002) with the Lifeguard extensions (Dadgar et al., 2018), as a pure
//! state machine: no sockets, no clock, no threads, no global randomness.
//! Time and datagrams go in; datagrams to send, membership events and the
//! next deadline come out. The same inputs and RNG seed give the same outputs
//! byte for byte, so a run can be simulated, recorded and replayed.
//!
//! ## The run loop
//!
//! All time is an input. A driver owns a socket and a timer and repeats:
//!
//! 1. feed whatever happened: [`Node::handle_datagram`] for each datagram
//!    received, [`Node::handle_timeout`] when the deadline passed, or a
//!    command ([`Node::join`], [`Node::leave`], [`Node::set_metadata`],
//!    [`Node::broadcast`]);
//! 2. drain [`Node::poll_transmit`] into the socket;
//! 3. drain [`Node::poll_event`] into the application;
//! 4. sleep until [`Node::poll_timeout`] or the next datagram.
//!
//! ```no_run
//! use core::net::SocketAddr;
//! use swim_core::{Config, Instant, Node};
//! # struct Rng(u64);
//! # impl rand_core::RngCore for Rng {
//! #     fn next_u32(&mut self) -> u32 { self.next_u64() as u32 }
//! #     fn next_u64(&mut self) -> u64 { self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1); self.0 }
//! #     fn fill_bytes(&mut self, d: &mut [u8]) { rand_core::impls::fill_bytes_via_next(self, d) }
//! # }
//! # fn now() -> Instant { Instant::ZERO }
//! # fn recv() -> Option<(SocketAddr, Vec<u8>)> { None }
//! # fn send_to(_: &[u8], _: SocketAddr) {}
//! # fn sleep_until(_: Option<Instant>) {}
//! let me: SocketAddr = "10.0.0.1:7946".parse().unwrap();
//! let seed: SocketAddr = "10.0.0.2:7946".parse().unwrap();
//! let mut node = Node::new(me, Config::lan(), Rng(42), now()).unwrap();
//! node.join(now(), &[seed]);
//! let mut buf = [0u8; 1400];
//! loop {
//!     if let Some((from, datagram)) = recv() {
//!         // Malformed datagrams are refused, counted, and change nothing.
//!         let _ = node.handle_datagram(now(), from, &datagram);
//!     }
//!     node.handle_timeout(now()); // harmless when nothing is due
//!     while let Some(tx) = node.poll_transmit(&mut buf) {
//!         send_to(&buf[..tx.len], tx.to);
//!     }
//!     while let Some(event) = node.poll_event() {
//!         println!("{event:?}");
//!     }
//!     sleep_until(node.poll_timeout());
//! }
//! ```
//!
//! ## Steps, recording and replay
//!
//! The contract every driver keeps: a *step* is one input at a time `now`
//! (a datagram with its source, a timeout, or a command: join, leave, set
//! metadata, broadcast, force-leave, a key command), then a full drain of
//! [`Node::poll_transmit`] with a buffer of one fixed size (its size decides
//! how much news rides in each datagram), then of [`Node::poll_event`],
//! before the next input. Every input is also an [`Input`], taken by
//! [`Node::handle`], so a run is the sequence of `(now, Input)` it was fed,
//! and the same sequence into a node built from the same RNG seed gives the
//! same outputs byte for byte. In production the RNG is ChaCha20 seeded
//! from the operating system (swim-driver's `SwimNode`); its seed is what a
//! recording writes down.
//!
//! [`record`] writes and reads such runs (the format is `RECORD.md`): a
//! [`record::Recorder`] keeps each step with what came out of it
//! ([`Node::take_step_outputs`]: a digest of the datagrams and events, their
//! counts and the next deadline), and a [`record::Replay`] feeds the steps
//! back and finds the first one whose outputs differ. A sealed datagram is
//! kept as it opened ([`Node::last_opened`]: key id, sender, counter and
//! messages) or with the reason it was refused, and keys by id: a node
//! built with [`Node::replaying`] takes those records
//! ([`Node::handle_recorded_sealed`]) and reproduces the outputs without
//! the keys, so a recording holds no key material.
//!
//! ## Guarantees
//!
//! - No input can make a node panic: any bytes, address, time or command order.
//! - One datagram asks one thing: at most one primary message (Ping, Ack,
//!   Nack, PingReq, PushPull, Digest), first; more is refused whole. A
//!   datagram is answered by at most one datagram to its sender, and one to
//!   an address that is not a member carries no piggybacked news. State (a
//!   join's or an exchange's) goes only to an address that has shown it
//!   receives what is sent there (it answered one of our pings, or replied
//!   under an exchange we started); any other requester first gets one bare
//!   Ping, and the state once it answers: no spoofed datagram can send the
//!   table to a victim.
//! - Acks and nacks count only from the member they were expected from, under
//!   a sequence drawn from the RNG; incarnations are serial numbers
//!   ([`incarnation_newer`]), so every claim can be refuted.
//! - Memory is bounded by [`Config`] under any flood: members, tombstones,
//!   queues, relays, replay windows.
//! - Work is bounded too: every datagram spends from its source's and the
//!   node's inbound budgets ([`Config::inbound_per_source`],
//!   [`Config::inbound_total`]), more for what makes the node work or send;
//!   one that cannot pay is refused before its checksum or tag is checked.
//!
//! ## Sealing
//!
//! With keys ([`Node::with_keys`], a cryptographically secure RNG, and
//! [`Config::encryption`] other than `Off`) every datagram is sealed with
//! XChaCha20-Poly1305 under the keyring's primary key and opened with any
//! installed key; keys rotate at runtime ([`Node::install_key`],
//! [`Node::use_key`], [`Node::remove_key`]). A datagram that does not open,
//! or that was already accepted once (a replay, see `WIRE.md`), is refused
//! and counted by reason in [`Stats::rejected`]. [`Encryption`] lists the
//! three steps of a migration without downtime.
//!
//! ## Time
//!
//! A driver passes, with every input, the current time of one monotonic
//! clock of its choosing (its epoch is its own). The node keeps its own time
//! from it, which never goes back and advances by at most a minute per input
//! (more with a long probe interval: four times the longest protocol period):
//!
//! - a `now` earlier than the previous one is counted
//!   ([`Stats::clock_regressions`]) and node time stands still;
//! - a `now` further ahead (a suspend, a stepped clock, even
//!   [`Instant::MAX`]) is counted ([`Stats::clock_jumps`]) and advances node
//!   time by the cap: the timers of that span fire once, not a suspend's
//!   worth, and later, ordinary times work as before;
//! - [`Node::poll_timeout`] is always in the driver's time, measured from the
//!   latest `now`; after [`Node::handle_timeout`] it is later than `now`
//!   (except at [`Instant::MAX`] itself, where every deadline saturates).
//! - Steady-state handling (pings, acks, probes) allocates nothing: datagrams
//!   are encoded into the caller's buffer at poll time.
//!
//! The wire format is documented byte by byte in `WIRE.md`.

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

extern crate alloc;

mod addr;
mod awareness;
mod budget;
mod config;
mod digest;
mod dissemination;
mod echo;
mod event;
mod exchange;
mod held;
mod keymap;
mod member;
mod node;
mod order;
mod pace;
mod probing;
mod recent;
pub mod record;
mod relay;
mod replay;
pub mod seal;
mod stats;
mod suspicion;
mod time;
mod tombstone;
pub mod wire;

pub use addr::{Address, NodeId};
pub use budget::Exhausted;
pub use config::{Config, ConfigError, Problem, Rate, MAX_DATAGRAM_SIZE, MIN_DATAGRAM_SIZE};
pub use event::{Event, Member};
pub use member::{incarnation_newer, Claim, State};
pub use node::{CommandError, Input, MemberRef, Node, Opened, Outcome, Rejected, SealedRecord, StepOutputs, Transmit};
pub use seal::{Encryption, Key, KeyError, KeyId, SealError};
pub use stats::{ByKind, Rejections, RoundTrips, Stats, ROUND_TRIP_BOUNDS_MICROS};
pub use time::Instant;

pub use bytes::Bytes;
pub use rand_core;
