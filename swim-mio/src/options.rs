//! How to start a node: where to bind, what to be known as, the protocol
//! configuration and the driver's own knobs. The same fields as
//! swim-tokio's `Options`.

use std::net::SocketAddr;
use std::time::Duration;

use swim_core::Config;

/// Everything [`crate::Handle::start`] needs. Start from [`Options::new`]
/// and set fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// Where to bind the UDP socket; port 0 picks a free port.
    pub bind: SocketAddr,
    /// The address other members know this node by, when it differs from
    /// the bound one (binding `0.0.0.0` needs one). Port 0 means the bound
    /// port.
    pub advertise: Option<SocketAddr>,
    /// The protocol's tunables.
    pub config: Config,
    /// Metadata to start with (at most `config.max_metadata_len` bytes);
    /// see [`crate::meta`] for the name-and-tags form the `swim` agent uses.
    pub metadata: Vec<u8>,
    /// The RNG seed; `None` draws one from the operating system.
    pub rng_seed: Option<u64>,
    /// Events buffered in the channel of [`crate::Handle::start`]; when it
    /// is full, newer events are dropped and counted
    /// (`DriverStats::events_dropped`): the protocol never waits.
    pub event_capacity: usize,
    /// How long [`crate::Handle::leave`] waits for the Left claim to be
    /// disseminated.
    pub leave_timeout: Duration,
}

impl Options {
    /// Bind `bind` with `config`, and the defaults for everything else.
    pub fn new(bind: SocketAddr, config: Config) -> Self {
        Options {
            bind,
            advertise: None,
            config,
            metadata: Vec::new(),
            rng_seed: None,
            event_capacity: 1024,
            leave_timeout: Duration::from_secs(5),
        }
    }
}
