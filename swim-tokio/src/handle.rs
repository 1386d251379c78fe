//! The application's side: a cloneable [`Handle`] that sends commands to
//! the node's task and waits for the answers.

use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use swim_core::{Event, Key, KeyId};
use swim_driver::{InstalledKey, LeaveOutcome, Member, Options};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;

use crate::error::{Error, StartError};
use crate::seed::Seed;
use crate::stats::Stats;

/// The node's events as a [`Stream`](tokio_stream::Stream): each item is
/// an event, or [`Lagged`] when this subscriber fell more than
/// `Options::event_capacity` events behind and the oldest were skipped; the
/// stream goes on after a lag (the protocol never waits for a slow
/// subscriber). It ends when the node stops.
///
/// ```no_run
/// use swim_tokio::StreamExt;
/// # async fn run(swim: swim_tokio::Handle) -> Result<(), swim_tokio::Error> {
/// let mut events = swim.subscribe()?;
/// while let Some(item) = events.next().await {
///     match item {
///         Ok(event) => println!("{}", event.name()),
///         Err(lag) => eprintln!("{lag}"),
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Events {
    inner: BroadcastStream<Event<SocketAddr>>,
}

/// Events skipped because a subscriber fell behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lagged {
    /// How many.
    pub skipped: u64,
}

impl fmt::Display for Lagged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fell behind: {} events skipped", self.skipped)
    }
}

impl std::error::Error for Lagged {}

impl tokio_stream::Stream for Events {
    type Item = Result<Event<SocketAddr>, Lagged>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.inner)
            .poll_next(cx)
            .map(|item| item.map(|r| r.map_err(|BroadcastStreamRecvError::Lagged(skipped)| Lagged { skipped })))
    }
}

/// What the application asks of the node's task.
#[derive(Debug)]
pub(crate) enum Command {
    Join { seeds: Vec<Seed>, reply: oneshot::Sender<Result<usize, Error>> },
    Leave { timeout: Duration, reply: oneshot::Sender<LeaveOutcome> },
    Members { reply: oneshot::Sender<Vec<Member>> },
    LocalMember { reply: oneshot::Sender<Member> },
    SetMetadata { meta: Vec<u8>, reply: oneshot::Sender<Result<(), Error>> },
    Broadcast { payload: Vec<u8>, reply: oneshot::Sender<Result<(), Error>> },
    ForceLeave { addr: SocketAddr, reply: oneshot::Sender<Result<(), Error>> },
    Stats { reply: oneshot::Sender<Stats> },
    InstallKey { key: Key, reply: oneshot::Sender<Result<KeyId, Error>> },
    UseKey { id: KeyId, reply: oneshot::Sender<Result<(), Error>> },
    RemoveKey { id: KeyId, reply: oneshot::Sender<Result<(), Error>> },
    Keys { reply: oneshot::Sender<Vec<InstalledKey>> },
    Shutdown { reply: oneshot::Sender<()> },
}

/// A cloneable handle to a running node. The node runs in its own task
/// until [`Handle::shutdown`] is called or every handle is dropped; either
/// way the task ends and the UDP port is released.
#[derive(Debug, Clone)]
pub struct Handle {
    commands: mpsc::Sender<Command>,
    events: broadcast::WeakSender<Event<SocketAddr>>,
    addr: SocketAddr,
    leave_timeout: Duration,
}

impl Handle {
    /// Bind the socket and start the node's task on the current tokio
    /// runtime. The node is a cluster of one until [`Handle::join`].
    pub async fn start(options: Options) -> Result<Handle, StartError> {
        let leave_timeout = options.leave_timeout;
        let (commands, events, addr) = crate::driver::spawn(options).await?;
        Ok(Handle { commands, events, addr, leave_timeout })
    }

    /// The address this node is known by: its identity in the cluster.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether the node's task has stopped.
    pub fn is_stopped(&self) -> bool {
        self.commands.is_closed()
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, Error> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).await.map_err(|_| Error::Stopped)?;
        rx.await.map_err(|_| Error::Stopped)
    }

    /// Join a cluster through `seeds` (addresses or `host:port` names),
    /// and wait until the node has joined: a seed answered with its member
    /// list. Returns the live members then, this node included.
    ///
    /// Names are resolved now and again on each of the node's retry rounds
    /// (one that does not resolve is retried, not an error); when the
    /// addresses change, the join restarts with the new ones. Each attempt
    /// left unanswered is logged as a warning. Fails with
    /// [`Error::JoinTimedOut`] after `Options::join_timeout` (the join goes
    /// on), [`Error::JoinGaveUp`] after `Options::join_max_attempts`
    /// unanswered attempts (the join stops), or [`Error::JoinAborted`] when
    /// a leave ends it. No seeds starts a new cluster: `Ok(1)`.
    pub async fn join<S: Into<Seed>>(&self, seeds: impl IntoIterator<Item = S>) -> Result<usize, Error> {
        let seeds: Vec<Seed> = seeds.into_iter().map(Into::into).collect();
        self.ask(|reply| Command::Join { seeds, reply }).await?
    }

    /// Leave gracefully, waiting up to `Options::leave_timeout` for the
    /// Left claim to be disseminated. The task keeps running (and answering)
    /// until shut down; a later [`Handle::join`] rejoins.
    pub async fn leave(&self) -> Result<LeaveOutcome, Error> {
        self.leave_within(self.leave_timeout).await
    }

    /// [`Handle::leave`] with an explicit timeout.
    pub async fn leave_within(&self, timeout: Duration) -> Result<LeaveOutcome, Error> {
        self.ask(|reply| Command::Leave { timeout, reply }).await
    }

    /// Every member this node knows, itself and tombstones included.
    pub async fn members(&self) -> Result<Vec<Member>, Error> {
        self.ask(|reply| Command::Members { reply }).await
    }

    /// This node as the cluster sees it.
    pub async fn local_member(&self) -> Result<Member, Error> {
        self.ask(|reply| Command::LocalMember { reply }).await
    }

    /// Replace this node's metadata and tell the cluster (others see
    /// `Event::Updated`).
    pub async fn set_metadata(&self, meta: impl Into<Vec<u8>>) -> Result<(), Error> {
        let meta = meta.into();
        self.ask(|reply| Command::SetMetadata { meta, reply }).await?
    }

    /// Disseminate an application payload; every other member gets it
    /// once as `Event::Broadcast`.
    pub async fn broadcast(&self, payload: impl Into<Vec<u8>>) -> Result<(), Error> {
        let payload = payload.into();
        self.ask(|reply| Command::Broadcast { payload, reply }).await?
    }

    /// Mark a member this node holds as failed as left, and tell the
    /// cluster: every member reports it left and forgets it after
    /// `tombstone_timeout` (Serf's force-leave). Refused
    /// ([`Error::Rejected`]) for an unknown member or one that is not
    /// failed; the state is then unchanged.
    pub async fn force_leave(&self, addr: SocketAddr) -> Result<(), Error> {
        self.ask(|reply| Command::ForceLeave { addr, reply }).await?
    }

    /// The node's counters, taken now.
    pub async fn stats(&self) -> Result<Stats, Error> {
        self.ask(|reply| Command::Stats { reply }).await
    }

    /// Add `key` to the keyring: from now on this node opens datagrams
    /// sealed with it (installing a key already there is a no-op). The
    /// first of the three steps of a rotation: install the new key at
    /// every member, then [`Handle::use_key`] it at every member, then
    /// [`Handle::remove_key`] the old one at every member. Refused
    /// ([`Error::Key`]) on a node started without keys or with a full
    /// keyring; the keyring is then unchanged.
    pub async fn install_key(&self, key: Key) -> Result<KeyId, Error> {
        self.ask(|reply| Command::InstallKey { key, reply }).await?
    }

    /// Seal with the installed key `id` from now on. Refused for a key
    /// that is not installed.
    pub async fn use_key(&self, id: KeyId) -> Result<(), Error> {
        self.ask(|reply| Command::UseKey { id, reply }).await?
    }

    /// Remove the installed key `id`. Refused for the primary key (make
    /// another one primary first) and for a key that is not installed.
    pub async fn remove_key(&self, id: KeyId) -> Result<(), Error> {
        self.ask(|reply| Command::RemoveKey { id, reply }).await?
    }

    /// The keyring's key ids, each with whether it is the primary one;
    /// empty for a node started without keys.
    pub async fn keys(&self) -> Result<Vec<InstalledKey>, Error> {
        self.ask(|reply| Command::Keys { reply }).await
    }

    /// Events from now on.
    pub fn subscribe(&self) -> Result<Events, Error> {
        let rx = self.events.upgrade().map(|tx| tx.subscribe()).ok_or(Error::Stopped)?;
        Ok(Events { inner: BroadcastStream::new(rx) })
    }

    /// Stop the node's task (without leaving: call [`Handle::leave`] first
    /// to leave gracefully) and wait until the socket is closed. Other
    /// handles get [`Error::Stopped`] from then on.
    pub async fn shutdown(self) {
        let _ = self.ask(|reply| Command::Shutdown { reply }).await;
    }
}
