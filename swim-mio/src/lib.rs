//! # swim-mio
//!
//! A blocking driver for [`swim_core`], for programs that do not use async:
//! one thread runs one [`mio::Poll`] loop over a non-blocking UDP socket,
//! whose timeout is the node's next deadline. A cloneable [`Handle`] sends
//! commands to that thread over a channel and wakes it with a
//! [`mio::Waker`]; events reach the application through a bounded channel
//! or a callback.
//!
//! ```no_run
//! use swim_mio::{Config, Event, Handle, Options};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let options = Options::new("127.0.0.1:7946".parse()?, Config::lan());
//! let (swim, events) = Handle::start(options)?;
//! swim.join(["10.0.0.2:7946", "seed.example:7946"])?;
//! for event in events.iter().take(10) {
//!     if let Event::Failed(m) = &event {
//!         eprintln!("{} failed", m.addr);
//!     }
//! }
//! swim.leave()?;
//! swim.shutdown();
//! # Ok(()) }
//! ```
//!
//! The driver holds no protocol logic and has the same semantics as
//! swim-tokio's (the two speak the same wire and can share a cluster, and
//! share swim-driver: the clock mapping, address forms, the loop's steps and
//! the types re-exported here). Its own jobs: one `mio::Poll` loop; sending and receiving (socket errors a node can survive are counted in
//! [`DriverStats`], and the node keeps running); handing events over
//! without ever waiting for the application (a full channel drops and
//! counts); and waiting out a graceful leave. Seed names are resolved by
//! [`Handle::join`] on the caller's thread, so the loop never blocks on a
//! resolver.

mod driver;
mod error;
mod handle;
mod log;
mod stats;

pub use error::{Error, StartError};
pub use handle::{Events, Handle};
pub use stats::{DriverStats, MemberCounts, Stats};
pub use swim_core::{Config, Encryption, Key, KeyError, KeyId, State};
pub use swim_driver::meta;
pub use swim_driver::{Event, Member};
pub use swim_driver::{InstalledKey, LeaveOutcome, Options, RecordOptions, RecordStatus};
