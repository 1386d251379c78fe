//! What can go wrong starting a node (shared with every driver) or asking
//! it to do something.

use std::fmt;

use swim_core::{CommandError, KeyError};

pub use swim_driver::StartError;

/// Why a request to a running node failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The node's task has stopped (shut down, or every handle dropped).
    Stopped,
    /// The node refused the command; its state is unchanged.
    Rejected(CommandError),
    /// No seed answered within `Options::join_timeout`; the join goes on
    /// in the background (the node joins when one answers).
    JoinTimedOut {
        /// Join attempts left unanswered so far (rounds of contacting the
        /// seeds, or of resolving their names).
        unanswered: u32,
    },
    /// `Options::join_max_attempts` attempts went unanswered: the join
    /// stopped, and the node is a cluster of one.
    JoinGaveUp {
        /// Attempts left unanswered.
        attempts: u32,
    },
    /// A leave ended the join before a seed answered.
    JoinAborted,
    /// A key command was refused; the keyring is unchanged.
    Key(KeyError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Stopped => f.write_str("the swim node has stopped"),
            Error::Rejected(e) => write!(f, "refused: {e}"),
            Error::JoinTimedOut { unanswered } => {
                write!(f, "no seed answered in time ({unanswered} attempts unanswered); still trying")
            }
            Error::JoinGaveUp { attempts } => write!(f, "gave up joining after {attempts} unanswered attempts"),
            Error::JoinAborted => f.write_str("the join was ended by a leave before a seed answered"),
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
