//! # swim-driver
//!
//! The parts of a [`swim_core`] driver that do not depend on its runtime,
//! shared by swim-tokio (async) and swim-mio (one blocking `mio::Poll`
//! loop) so the two behave alike and name members alike: a mixed cluster
//! works because both canonicalise addresses, map time, encode metadata
//! and drain the node the same way.
//!
//! - [`addr`]: canonical and socket address forms on dual-stack sockets,
//!   the node's identity, seed resolution with the system resolver.
//! - [`clock`]: `std::time::Instant` to and from [`swim_core::Instant`].
//! - [`node`]: the loop's steps: start the node, feed it, drain its
//!   datagrams and events, snapshot its counters.
//! - [`member`], [`stats`], [`options`], [`error`]: the types both
//!   drivers' handles answer with, start from and fail to start with;
//!   [`Member`] is the one member type of events and member lists.
//! - [`meta`]: the name-and-tags metadata convention of the `swim` agent.
//! - [`record`]: recording a node's inputs into rotated log files.
//!
//! No async runtime, no poller: sockets, channels, timers and logging stay
//! in the drivers.

pub mod addr;
pub mod clock;
pub mod error;
pub mod member;
pub mod meta;
pub mod node;
pub mod options;
pub mod record;
pub mod stats;

pub use clock::Clock;
pub use error::StartError;
pub use member::{LeaveOutcome, PendingLeaves};
pub use node::{DriverNode, InstalledKey, Outgoing, RngSeed, SwimNode};
pub use options::Options;
pub use record::{RecordOptions, RecordStatus};
pub use stats::{MemberCounts, Stats};

/// A membership event about members known by their socket address.
pub type Event = swim_core::Event<std::net::SocketAddr>;
/// A member known by its socket address, as events and member lists
/// (`Handle::members`) report it: one type for both.
pub type Member = swim_core::Member<std::net::SocketAddr>;
