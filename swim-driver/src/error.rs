//! What can go wrong starting a node, whichever driver starts it.

use std::fmt;
use std::io;
use std::net::SocketAddr;

use swim_core::{CommandError, ConfigError};

/// Why a node could not start. Nothing is left running.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    /// The protocol configuration does not validate; names the field.
    Config(ConfigError),
    /// The operating system's random generator failed: the node's RNG
    /// cannot be seeded (no fallback: nonces must not be predictable).
    Entropy(rand_core::OsError),
    /// The UDP socket could not be bound.
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's reason.
        source: io::Error,
    },
    /// The node would be known by an unspecified address (`0.0.0.0` or
    /// `[::]`), which nobody can send to: give an advertise address.
    UnspecifiedAdvertise(SocketAddr),
    /// The initial metadata is longer than `max_metadata_len`.
    Metadata(CommandError),
    /// The driver's event loop (swim-mio: the poller, its waker, the
    /// driver thread) could not be set up. swim-tokio has none of its own.
    Setup(io::Error),
    /// The recording's log file could not be created.
    Record {
        /// The log's path.
        path: std::path::PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Config(e) => write!(f, "invalid configuration: {e}"),
            StartError::Entropy(e) => write!(f, "cannot seed the node's random generator from the OS: {e}"),
            StartError::Bind { addr, source } => write!(f, "cannot bind UDP {addr}: {source}"),
            StartError::UnspecifiedAdvertise(a) => {
                write!(f, "bound to the unspecified address {a}: set an advertise address other members can reach")
            }
            StartError::Metadata(e) => write!(f, "initial metadata: {e}"),
            StartError::Setup(e) => write!(f, "cannot set up the event loop: {e}"),
            StartError::Record { path, source } => write!(f, "cannot record into {}: {source}", path.display()),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Config(e) => Some(e),
            StartError::Bind { source, .. } | StartError::Setup(source) | StartError::Record { source, .. } => {
                Some(source)
            }
            StartError::Metadata(e) => Some(e),
            StartError::Entropy(e) => Some(e),
            StartError::UnspecifiedAdvertise(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn start_errors_say_what_failed_and_why() {
        let addr: SocketAddr = "0.0.0.0:1".parse().unwrap();
        let e = StartError::Bind { addr, source: io::Error::from(io::ErrorKind::AddrInUse) };
        assert!(e.to_string().starts_with("cannot bind UDP 0.0.0.0:1: "));
        assert!(e.source().is_some());
        let e = StartError::UnspecifiedAdvertise(addr);
        assert!(e.to_string().contains("set an advertise address"));
        assert!(e.source().is_none());
    }
}
