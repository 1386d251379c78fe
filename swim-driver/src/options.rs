//! How to start a node: where to bind, what to be known as, the protocol
//! configuration and the driver's own knobs. Every driver takes the same
//! fields.

use std::net::SocketAddr;
use std::time::Duration;

use swim_core::{Config, Key};

use crate::record::RecordOptions;

/// Everything a driver's `Handle::start` needs. Start from
/// [`Options::new`] and set fields.
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
    /// The RNG seed, expanded to the 32 bytes of a ChaCha20 seed; `None`
    /// draws 32 bytes from the operating system (production: nonces and
    /// probe sequence numbers must be unpredictable). Drivers log a given
    /// seed at start, and one drawn from the OS at debug level only.
    pub rng_seed: Option<u64>,
    /// The keyring: the first key seals, every key opens. Needs
    /// `config.encryption` other than `Off`, which needs at least one key.
    /// `Debug` shows key ids only.
    pub keys: Vec<Key>,
    /// Events buffered for the application. The protocol never waits for
    /// it: swim-tokio's subscribers further behind than this miss the
    /// oldest and are told how many (tokio's `Lagged`); swim-mio's channel,
    /// when full, drops newer events and counts them.
    pub event_capacity: usize,
    /// How long a driver's `Handle::leave` waits for the Left claim to be
    /// disseminated.
    pub leave_timeout: Duration,
    /// How long swim-tokio's `Handle::join` waits for a seed to answer
    /// before it returns a timeout error (the join goes on); `None` waits
    /// as long as it takes.
    pub join_timeout: Option<Duration>,
    /// Join attempts (rounds of contacting every seed, or of resolving
    /// their names) left unanswered after which swim-tokio's join gives up
    /// and stops trying; `None` never gives up.
    pub join_max_attempts: Option<u32>,
    /// Record every input of the node into log files (`swim-core/RECORD.md`)
    /// that `swim-sim replay` replays byte for byte; `None` records nothing.
    pub record: Option<RecordOptions>,
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
            keys: Vec::new(),
            event_capacity: 1024,
            leave_timeout: Duration::from_secs(5),
            join_timeout: Some(Duration::from_secs(30)),
            join_max_attempts: None,
            record: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_options_take_the_defaults() {
        let o = Options::new("127.0.0.1:0".parse().unwrap(), Config::lan());
        assert_eq!((o.advertise, o.metadata.len(), o.rng_seed), (None, 0, None));
        assert_eq!((o.event_capacity, o.leave_timeout), (1024, Duration::from_secs(5)));
    }
}
