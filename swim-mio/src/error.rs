//! What can go wrong starting a node (shared with every driver) or asking
//! it to do something.

use std::fmt;

use swim_core::{CommandError, KeyError};

pub use swim_driver::StartError;

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
    /// A key command was refused; the keyring is unchanged.
    Key(KeyError),
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
            Error::Key(e) => write!(f, "key refused: {e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<CommandError> for Error {
    fn from(e: CommandError) -> Self {
        Error::Rejected(e)
    }
}
