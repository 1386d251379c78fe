//! # swim-tokio
//!
//! An async driver for [`swim_core`]: one tokio task owns a UDP socket and a
//! [`swim_core::Node`], feeds it datagrams, timeouts and commands, and sends
//! what it polls out. A cloneable [`Handle`] talks to the task.
//!
//! ```no_run
//! use swim_tokio::{Handle, Options, StreamExt};
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let options = Options::new("127.0.0.1:7946".parse()?, swim_tokio::Config::lan());
//! let swim = Handle::start(options).await?;
//! let mut events = swim.subscribe()?;
//! // Resolves once a seed answered: the node has joined.
//! let members = swim.join(["10.0.0.2:7946", "seed.example:7946"]).await?;
//! println!("joined: {members} members");
//! while let Some(item) = events.next().await {
//!     match item {
//!         Ok(event) => println!("{} {:?}", event.name(), event.member().map(|m| m.addr)),
//!         Err(lag) => eprintln!("{lag}"), // the stream goes on
//!     }
//! }
//! swim.leave().await?;
//! swim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! The driver holds no protocol logic; what does not depend on tokio (the
//! clock mapping, address forms, the loop's steps, the types re-exported
//! here) is swim-driver's, shared with swim-mio. Its own jobs are: waiting
//! on tokio's socket, timers and channels, sending and receiving (socket
//! errors a node can survive are logged with `tracing`, counted in
//! [`DriverStats`], and the node keeps running), resolving seed names (again
//! on each of the node's join retry rounds), publishing events through a
//! bounded broadcast channel (a slow subscriber lags, the protocol never
//! waits), and waiting out a graceful leave.
//!
//! With [`Options::keys`] (and `Config::encryption` other than `Off`) the
//! node seals every datagram under the first key and opens with every key;
//! [`Handle::install_key`], [`Handle::use_key`] and [`Handle::remove_key`]
//! rotate them at runtime. The node's RNG is ChaCha20, seeded with 32 bytes
//! from the OS (its nonces must never repeat).
//!
//! Member names and tags in the form the `swim` agent shows them are read
//! and written with [`meta::NameTags`]. With the default `agent` feature
//! the crate also holds the `swim` agent binary's parts in [`agent`].

mod driver;
mod error;
mod handle;
pub mod meta;
mod seed;
mod stats;

#[cfg(feature = "agent")]
pub mod agent;

pub use error::{Error, StartError};
pub use handle::{Events, Handle, Lagged};
pub use seed::Seed;
pub use stats::{DriverStats, MemberCounts, Stats};
pub use swim_core::{Config, Encryption, Key, KeyError, KeyId, State};
pub use swim_driver::{Event, Member};
pub use swim_driver::{InstalledKey, LeaveOutcome, Options, RecordOptions, RecordStatus};
/// To read [`Events`]: `events.next().await`.
pub use tokio_stream::{Stream, StreamExt};
