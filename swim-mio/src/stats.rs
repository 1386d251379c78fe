//! A snapshot of everything a running node counts: the core's counters,
//! the driver's own (socket errors, dropped events) and member counts.
//! The same shape as swim-tokio's, with the counters a blocking loop has.

/// Counters kept by the driver, beside the core's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DriverStats {
    /// Sends that failed (refused, unreachable, ...); the node kept going.
    pub send_errors: u64,
    /// Sends dropped because the socket's send buffer was full (UDP may
    /// lose datagrams anyway; the protocol retries what matters).
    pub send_would_block: u64,
    /// Receives that failed transiently; the node kept going.
    pub receive_errors: u64,
    /// Waits of the poller that failed (other than by a signal).
    pub poll_errors: u64,
    /// Events handed to the application (channel or callback).
    pub events_published: u64,
    /// Events dropped because the application's channel was full or closed.
    pub events_dropped: u64,
}

pub use swim_driver::MemberCounts;

/// Everything a running node counts, taken at one moment.
pub type Stats = swim_driver::Stats<DriverStats>;
