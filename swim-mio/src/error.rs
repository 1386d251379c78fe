//! What can go wrong starting a node or asking it to do something.

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
    /// The poller, its waker or the driver thread could not be set up.
    Setup(io::Error),
}

impl From<swim_driver::NodeError> for StartError {
    fn from(e: swim_driver::NodeError) -> Self {
        match e {
            swim_driver::NodeError::Config(e) => StartError::Config(e),
            swim_driver::NodeError::UnspecifiedAdvertise(a) => StartError::UnspecifiedAdvertise(a),
            swim_driver::NodeError::Metadata(e) => StartError::Metadata(e),
        }
    }
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Config(e) => write!(f, "invalid configuration: {e}"),
            StartError::Bind { addr, source } => write!(f, "cannot bind UDP {addr}: {source}"),
            StartError::UnspecifiedAdvertise(a) => {
                write!(f, "bound to the unspecified address {a}: set an advertise address other members can reach")
            }
            StartError::Metadata(e) => write!(f, "initial metadata: {e}"),
            StartError::Setup(e) => write!(f, "cannot set up the event loop: {e}"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Config(e) => Some(e),
            StartError::Bind { source, .. } | StartError::Setup(source) => Some(source),
            StartError::Metadata(e) => Some(e),
            StartError::UnspecifiedAdvertise(_) => None,
        }
    }
}

/// Why a request to a running node failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The node's thread has stopped (shut down, or every handle dropped).
    Stopped,
    /// The node refused the command; its state is unchanged.
    Rejected(CommandError),
    /// Seeds were given but none resolved to an address this node can
    /// reach. Nothing was started: call [`crate::Handle::join`] again.
    NoSeedResolved,
    /// Called from the node's own thread (an event callback), where waiting
    /// for the node's answer would wait forever.
    FromDriverThread,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Stopped => f.write_str("the swim node has stopped"),
            Error::Rejected(e) => write!(f, "refused: {e}"),
            Error::NoSeedResolved => f.write_str("no seed resolved to a reachable address"),
            Error::FromDriverThread => {
                f.write_str("called from the node's own thread, where it cannot wait for itself")
            }
        }
    }
}

impl std::error::Error for Error {}

impl From<CommandError> for Error {
    fn from(e: CommandError) -> Self {
        Error::Rejected(e)
    }
}
