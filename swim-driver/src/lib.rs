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
//! - [`member`], [`stats`], [`options`]: the types both drivers' handles
//!   answer with and start from.
//! - [`meta`]: the name-and-tags metadata convention of the `swim` agent.
//!
//! No async runtime, no poller: sockets, channels, timers and logging stay
//! in the drivers.

pub mod addr;
pub mod clock;
pub mod member;
pub mod meta;
pub mod node;
pub mod options;
pub mod stats;

pub use clock::Clock;
pub use member::{LeaveOutcome, MemberInfo, PendingLeaves};
pub use node::{DriverNode, NodeError, Outgoing, SwimNode};
pub use options::Options;
pub use stats::{MemberCounts, Stats};
