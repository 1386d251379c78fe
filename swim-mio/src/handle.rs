//! The application's side: a cloneable [`Handle`] that sends commands to
//! the node's thread over a channel, wakes its poller, and waits for the
//! answers.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle, ThreadId};
use std::time::Duration;

use mio::Waker;
use swim_core::{Key, KeyId};
use swim_driver::{InstalledKey, LeaveOutcome, Member, Options};

use crate::driver::{self, Sink};
use crate::error::{Error, StartError};
use crate::stats::Stats;
use crate::Event;

/// The events of a node started with [`Handle::start`]: a bounded channel
/// (`Options::event_capacity`). When it is full, newer events are dropped
/// and counted in `DriverStats::events_dropped`; the protocol never waits
/// for the application. Disconnects when the node stops.
pub type Events = Receiver<Event>;

/// What the application asks of the node's thread. Each carries a
/// one-shot reply channel (capacity one, so the driver never blocks on it).
#[derive(Debug)]
pub(crate) enum Command {
    Join { seeds: Vec<SocketAddr>, reply: SyncSender<()> },
    Leave { timeout: Duration, reply: SyncSender<LeaveOutcome> },
    Members { reply: SyncSender<Vec<Member>> },
    LocalMember { reply: SyncSender<Member> },
    SetMetadata { meta: Vec<u8>, reply: SyncSender<Result<(), Error>> },
    Broadcast { payload: Vec<u8>, reply: SyncSender<Result<(), Error>> },
    Stats { reply: SyncSender<Stats> },
    InstallKey { key: Key, reply: SyncSender<Result<KeyId, Error>> },
    UseKey { id: KeyId, reply: SyncSender<Result<(), Error>> },
    RemoveKey { id: KeyId, reply: SyncSender<Result<(), Error>> },
    Keys { reply: SyncSender<Vec<InstalledKey>> },
    Shutdown,
}

/// What every clone of a handle shares. Dropping the last clone stops the
/// node and joins its thread.
#[derive(Debug)]
struct Shared {
    commands: Sender<Command>,
    waker: Arc<Waker>,
    thread: Mutex<Option<JoinHandle<()>>>,
    thread_id: ThreadId,
    addr: SocketAddr,
    bound: SocketAddr,
    leave_timeout: Duration,
}

impl Shared {
    fn send(&self, cmd: Command) -> Result<(), Error> {
        self.commands.send(cmd).map_err(|_| Error::Stopped)?;
        // A failed wake means the poller is gone: the thread has stopped,
        // and the reply channel will say so.
        let _ = self.waker.wake();
        Ok(())
    }

    fn stop(&self) {
        let _ = self.send(Command::Shutdown);
        if thread::current().id() == self.thread_id {
            // Called from an event callback: the loop stops when it returns.
            return;
        }
        let handle = self.thread.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(handle) = handle {
            // A panic in the driver thread has already been reported by
            // the panic hook; there is nothing more to do with it here.
            let _ = handle.join();
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A cloneable handle to a running node. The node runs on its own thread
/// until [`Handle::shutdown`] is called or every handle is dropped; either
/// way the thread is joined and the UDP port is released before that
/// returns.
///
/// Every method but [`Handle::local_addr`] waits for the node's thread to
/// answer, which takes one turn of its loop. An event callback runs on that
/// thread and MUST NOT call them: they return [`Error::FromDriverThread`]
/// there instead of waiting for themselves.
#[derive(Debug, Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

impl Handle {
    /// Bind the socket and start the node's thread. The node is a cluster
    /// of one until [`Handle::join`]. Events arrive on the returned
    /// bounded channel.
    pub fn start(options: Options) -> Result<(Handle, Events), StartError> {
        let (tx, rx) = mpsc::sync_channel(options.event_capacity.max(1));
        let handle = Self::start_with(options, Sink::Channel(tx))?;
        Ok((handle, rx))
    }

    /// Like [`Handle::start`], with events handed to `on_event` on the
    /// node's own thread, in order. The callback MUST return promptly (the
    /// protocol waits while it runs); this handle's waiting methods called
    /// from it return [`Error::FromDriverThread`]. A callback that keeps a
    /// clone of the handle keeps the node running until
    /// [`Handle::shutdown`] is called.
    pub fn start_with_callback(
        options: Options,
        on_event: impl FnMut(Event) + Send + 'static,
    ) -> Result<Handle, StartError> {
        Self::start_with(options, Sink::Callback(Box::new(on_event)))
    }

    fn start_with(options: Options, sink: Sink) -> Result<Handle, StartError> {
        let leave_timeout = options.leave_timeout;
        let started = driver::spawn(options, sink)?;
        let thread_id = started.thread.thread().id();
        Ok(Handle {
            shared: Arc::new(Shared {
                commands: started.commands,
                waker: started.waker,
                thread: Mutex::new(Some(started.thread)),
                thread_id,
                addr: started.identity,
                bound: started.bound,
                leave_timeout,
            }),
        })
    }

    /// The address this node is known by: its identity in the cluster.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// Whether the node's thread has stopped.
    pub fn is_stopped(&self) -> bool {
        let thread = self.shared.thread.lock().unwrap_or_else(PoisonError::into_inner);
        thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    fn ask<T>(&self, make: impl FnOnce(SyncSender<T>) -> Command) -> Result<T, Error> {
        if thread::current().id() == self.shared.thread_id {
            return Err(Error::FromDriverThread);
        }
        let (tx, rx) = mpsc::sync_channel(1);
        self.shared.send(make(tx))?;
        rx.recv().map_err(|_| Error::Stopped)
    }

    /// Join a cluster through `seeds`: addresses, or `host:port` names
    /// resolved now, on the calling thread, with the system resolver.
    /// Returns how many seed addresses were found once the join has
    /// started (not once it has succeeded: watch the events or
    /// [`Handle::members`]); the node retries them with backoff. No seeds
    /// starts a new cluster.
    pub fn join<S: ToSocketAddrs>(&self, seeds: impl IntoIterator<Item = S>) -> Result<usize, Error> {
        let (given, seeds) = swim_driver::addr::resolve(seeds, self.shared.bound);
        if given > 0 && seeds.is_empty() {
            return Err(Error::NoSeedResolved);
        }
        let n = seeds.len();
        self.ask(|reply| Command::Join { seeds, reply })?;
        Ok(n)
    }

    /// Leave gracefully, waiting up to `Options::leave_timeout` for the
    /// Left claim to be disseminated. The node keeps running (and
    /// answering) until shut down; a later [`Handle::join`] rejoins.
    pub fn leave(&self) -> Result<LeaveOutcome, Error> {
        self.leave_within(self.shared.leave_timeout)
    }

    /// [`Handle::leave`] with an explicit timeout.
    pub fn leave_within(&self, timeout: Duration) -> Result<LeaveOutcome, Error> {
        self.ask(|reply| Command::Leave { timeout, reply })
    }

    /// Every member this node knows, itself and tombstones included.
    pub fn members(&self) -> Result<Vec<Member>, Error> {
        self.ask(|reply| Command::Members { reply })
    }

    /// This node as the cluster sees it.
    pub fn local_member(&self) -> Result<Member, Error> {
        self.ask(|reply| Command::LocalMember { reply })
    }

    /// Replace this node's metadata and tell the cluster (others see
    /// `Event::Updated`).
    pub fn set_metadata(&self, meta: impl Into<Vec<u8>>) -> Result<(), Error> {
        let meta = meta.into();
        self.ask(|reply| Command::SetMetadata { meta, reply })?
    }

    /// Disseminate an application payload; every other member gets it once
    /// as `Event::Broadcast`.
    pub fn broadcast(&self, payload: impl Into<Vec<u8>>) -> Result<(), Error> {
        let payload = payload.into();
        self.ask(|reply| Command::Broadcast { payload, reply })?
    }

    /// The node's counters, taken now.
    pub fn stats(&self) -> Result<Stats, Error> {
        self.ask(|reply| Command::Stats { reply })
    }

    /// Add `key` to the keyring: from now on this node opens datagrams
    /// sealed with it (installing a key already there is a no-op). A
    /// rotation: install the new key at every member, then
    /// [`Handle::use_key`] it at every member, then [`Handle::remove_key`]
    /// the old one at every member. Refused ([`Error::Key`]) on a node
    /// started without keys or with a full keyring; the keyring is then
    /// unchanged.
    pub fn install_key(&self, key: Key) -> Result<KeyId, Error> {
        self.ask(|reply| Command::InstallKey { key, reply })?
    }

    /// Seal with the installed key `id` from now on. Refused for a key
    /// that is not installed.
    pub fn use_key(&self, id: KeyId) -> Result<(), Error> {
        self.ask(|reply| Command::UseKey { id, reply })?
    }

    /// Remove the installed key `id`. Refused for the primary key (make
    /// another one primary first) and for a key that is not installed.
    pub fn remove_key(&self, id: KeyId) -> Result<(), Error> {
        self.ask(|reply| Command::RemoveKey { id, reply })?
    }

    /// The keyring's key ids, each with whether it is the primary one;
    /// empty for a node started without keys.
    pub fn keys(&self) -> Result<Vec<InstalledKey>, Error> {
        self.ask(|reply| Command::Keys { reply })
    }

    /// Stop the node (without leaving: call [`Handle::leave`] first to
    /// leave gracefully) and wait until its thread has ended and the
    /// socket is closed. Other handles get [`Error::Stopped`] from then on.
    /// From an event callback it only asks the loop to stop.
    pub fn shutdown(&self) {
        self.shared.stop();
    }
}
