//! The node's task: one loop that owns the socket and the `swim_core::Node`,
//! waits on the socket, the node's deadline and the command channel, and
//! after every input drains the node's datagrams and events.
//!
//! Nothing here decides anything about the protocol: it moves bytes, time,
//! commands and events, and resolves seed names.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use swim_core::Event;
use swim_driver::node::{is_unreachable, is_unreachable_on_receive};
use swim_driver::{DriverNode, LeaveOutcome, Options, PendingLeaves};
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant as TokioInstant;
use tracing::{debug, info, warn};

use crate::error::{Error, StartError};
use crate::handle::Command;
use crate::seed::{self, Seed};
use crate::stats::{DriverStats, Stats};

/// Large enough for any UDP payload, so an oversized datagram reaches the
/// node whole and is refused (and counted) there instead of being cut.
const RECV_BUFFER: usize = 65_536;
/// Consecutive receive errors after which the loop pauses briefly, so an
/// error that does not clear cannot spin a core.
const RECV_ERROR_STREAK: u32 = 32;
const RECV_ERROR_PAUSE: Duration = Duration::from_millis(20);
/// Commands queued before senders wait.
const COMMAND_CAPACITY: usize = 64;

/// The result of resolving the seeds of one join (or one retry round).
struct Resolved {
    generation: u64,
    addrs: Vec<SocketAddr>,
}

/// Where the current join stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Joining {
    /// No join under way: joined, never asked, given up, or left.
    Idle,
    /// Resolving the seeds' names before the node's first attempt.
    Resolving {
        /// Resolution rounds that found no address.
        failures: u32,
    },
    /// The node is contacting its seeds.
    Contacting {
        /// The node's `join_attempts` counter before this join's first attempt.
        base: u64,
        /// Resolution rounds that found no address.
        failures: u32,
        /// Unanswered attempts already logged.
        warned: u32,
    },
}

/// A caller of `Handle::join` waiting for the node to join.
struct JoinWaiter {
    deadline: Option<TokioInstant>,
    reply: oneshot::Sender<Result<usize, Error>>,
}

/// What woke the loop.
enum Input {
    Command(Option<Command>),
    Resolved(Resolved),
    Datagram(io::Result<(usize, SocketAddr)>),
    Wake,
}

struct Driver {
    node: DriverNode,
    socket: UdpSocket,
    events: broadcast::Sender<Event<SocketAddr>>,
    stats: DriverStats,
    seeds: Vec<Seed>,
    generation: u64,
    resolving: bool,
    resolved: Vec<SocketAddr>,
    join_attempts_seen: u64,
    re_resolve_at: Option<TokioInstant>,
    resolved_tx: mpsc::UnboundedSender<Resolved>,
    joining: Joining,
    join_waiters: Vec<JoinWaiter>,
    join_timeout: Option<Duration>,
    join_max_attempts: Option<u32>,
    /// Callers waiting in [`crate::Handle::leave`].
    leaves: PendingLeaves<oneshot::Sender<LeaveOutcome>>,
    recv_error_streak: u32,
}

/// Bind, build the node and spawn its task.
pub(crate) async fn spawn(
    options: Options,
) -> Result<(mpsc::Sender<Command>, broadcast::WeakSender<Event<SocketAddr>>, SocketAddr), StartError> {
    options.config.validate().map_err(StartError::Config)?;
    let socket =
        UdpSocket::bind(options.bind).await.map_err(|source| StartError::Bind { addr: options.bind, source })?;
    let bound = socket.local_addr().map_err(|source| StartError::Bind { addr: options.bind, source })?;
    let node = DriverNode::start(&options, bound)?;
    let identity = node.identity();
    let seed = node.rng_seed();
    // A seed drawn from the OS predicts the node's probe sequence numbers
    // and nonces: not for logs shipped at the default level.
    if seed.given().is_some() {
        info!(addr = %identity, bound = %bound, rng_seed = %seed, "swim node started");
    } else {
        info!(addr = %identity, bound = %bound, "swim node started");
        debug!(rng_seed = %seed, "node RNG seeded from the OS");
    }

    let (commands_tx, commands_rx) = mpsc::channel(COMMAND_CAPACITY);
    let (events, _) = broadcast::channel(options.event_capacity.max(1));
    let weak = events.downgrade();
    let (resolved_tx, resolved_rx) = mpsc::unbounded_channel();
    let driver = Driver {
        node,
        socket,
        events,
        stats: DriverStats::default(),
        seeds: Vec::new(),
        generation: 0,
        resolving: false,
        resolved: Vec::new(),
        join_attempts_seen: 0,
        re_resolve_at: None,
        resolved_tx,
        joining: Joining::Idle,
        join_waiters: Vec::new(),
        join_timeout: options.join_timeout,
        join_max_attempts: options.join_max_attempts,
        leaves: PendingLeaves::default(),
        recv_error_streak: 0,
    };
    tokio::spawn(driver.run(commands_rx, resolved_rx));
    Ok((commands_tx, weak, identity))
}

async fn sleep_until(deadline: Option<TokioInstant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

impl Driver {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>, mut resolved: mpsc::UnboundedReceiver<Resolved>) {
        let mut buf = vec![0u8; RECV_BUFFER];
        let mut stopped_by = None;
        // Starting was a step (the initial metadata): drain it before the
        // first input.
        self.flush().await;
        self.publish_events();
        loop {
            let wake = self.next_wake();
            let input = tokio::select! {
                cmd = commands.recv() => Input::Command(cmd),
                Some(r) = resolved.recv() => Input::Resolved(r),
                res = self.socket.recv_from(&mut buf) => Input::Datagram(res),
                () = sleep_until(wake) => Input::Wake,
            };
            match input {
                Input::Command(None) => break,
                Input::Command(Some(Command::Shutdown { reply })) => {
                    stopped_by = Some(reply);
                    break;
                }
                Input::Command(Some(cmd)) => self.on_command(cmd),
                Input::Resolved(r) => self.on_resolved(r),
                Input::Datagram(Ok((len, from))) => {
                    self.recv_error_streak = 0;
                    if let (from, Err(why)) = self.node.handle_datagram(from, &buf[..len]) {
                        debug!(%from, len, %why, "datagram refused");
                    }
                }
                Input::Datagram(Err(e)) => self.on_recv_error(e).await,
                Input::Wake => self.node.handle_timeout(),
            }
            self.flush().await;
            self.publish_events();
            self.settle_leaves();
            if self.watch_join() {
                // It gave up the join: an input of its own, drained too.
                self.flush().await;
                self.publish_events();
            }
            self.maybe_re_resolve();
            if let Some(why) = self.node.take_record_stop() {
                warn!(%why, "recording stopped");
            }
        }
        let addr = self.node.identity();
        if let Some(status) = self.node.record_status() {
            info!(path = %status.path.display(), steps = status.steps, files = status.files, bytes = status.bytes, "recording closed");
        }
        // Close the socket before answering, so a caller of shutdown can
        // rebind the port at once.
        drop(self);
        info!(%addr, "swim node stopped");
        if let Some(reply) = stopped_by {
            let _ = reply.send(());
        }
    }

    /// The earliest of the node's deadline, a leave's timeout, a join's
    /// timeout and a seed re-resolution.
    fn next_wake(&self) -> Option<TokioInstant> {
        let node = self.node.poll_timeout().map(|t| self.node.clock().to_std(t));
        let leave = self.leaves.next_deadline();
        let waits = [node, leave].into_iter().flatten().map(TokioInstant::from_std);
        let joins = self.join_waiters.iter().filter_map(|w| w.deadline);
        waits.chain(self.re_resolve_at).chain(joins).min()
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Join { seeds, reply } => {
                self.generation += 1;
                self.seeds = seeds;
                self.resolved.clear();
                self.re_resolve_at = None;
                if self.seeds.is_empty() {
                    self.node.join(&[]);
                    self.joining = Joining::Idle;
                    let _ = reply.send(Ok(self.node.node().live_members() as usize));
                } else {
                    if self.joining == Joining::Idle {
                        self.joining = Joining::Resolving { failures: 0 };
                    }
                    let deadline = self.join_timeout.map(|t| TokioInstant::now() + t);
                    self.join_waiters.push(JoinWaiter { deadline, reply });
                    self.start_resolution();
                }
            }
            Command::Leave { timeout, reply } => {
                self.seeds.clear();
                self.generation += 1;
                self.re_resolve_at = None;
                self.end_join(Err(Error::JoinAborted));
                self.node.leave();
                self.leaves.push(std::time::Instant::now() + timeout, reply);
            }
            Command::Members { reply } => {
                let _ = reply.send(self.node.members());
            }
            Command::LocalMember { reply } => {
                let _ = reply.send(self.node.local_member());
            }
            Command::SetMetadata { meta, reply } => {
                let _ = reply.send(self.node.set_metadata(&meta).map_err(Error::from));
            }
            Command::Broadcast { payload, reply } => {
                let _ = reply.send(self.node.broadcast(&payload).map_err(Error::from));
            }
            Command::ForceLeave { addr, reply } => {
                let addr = swim_driver::addr::canonical(addr);
                let _ = reply.send(self.node.force_leave(&addr).map_err(Error::from));
            }
            Command::Stats { reply } => {
                let _ = reply.send(self.snapshot());
            }
            Command::InstallKey { key, reply } => {
                let installed = self.node.install_key(&key).map_err(Error::Key);
                if let Ok(id) = installed {
                    info!(key = %id, "key installed");
                }
                let _ = reply.send(installed);
            }
            Command::UseKey { id, reply } => {
                let used = self.node.use_key(id).map_err(Error::Key);
                if used.is_ok() {
                    info!(key = %id, "key now primary: it seals every datagram");
                }
                let _ = reply.send(used);
            }
            Command::RemoveKey { id, reply } => {
                let removed = self.node.remove_key(id).map_err(Error::Key);
                if removed.is_ok() {
                    info!(key = %id, "key removed");
                }
                let _ = reply.send(removed);
            }
            Command::Keys { reply } => {
                let _ = reply.send(self.node.keys());
            }
            // Handled by the loop, which must stop.
            Command::Shutdown { reply } => {
                let _ = reply.send(());
            }
        }
    }

    fn snapshot(&self) -> Stats {
        self.node.snapshot(self.stats)
    }

    /// Resolve the seeds in a task of their own, so a slow resolver never
    /// holds up the protocol; the answer comes back as `Input::Resolved`.
    fn start_resolution(&mut self) {
        self.resolving = true;
        self.re_resolve_at = None;
        self.stats.seed_resolutions += 1;
        let seeds = self.seeds.clone();
        let generation = self.generation;
        let bound = self.node.bound();
        let tx = self.resolved_tx.clone();
        tokio::spawn(async move {
            let addrs = seed::resolve(&seeds, bound).await;
            let _ = tx.send(Resolved { generation, addrs });
        });
    }

    fn on_resolved(&mut self, r: Resolved) {
        if r.generation != self.generation {
            // A newer join or a leave replaced this one.
            return;
        }
        self.resolving = false;
        if r.addrs.is_empty() {
            warn!(seeds = ?self.seeds, "no seed resolved to a reachable address; retrying");
            self.re_resolve_at = Some(TokioInstant::now() + self.node.node().config().join_retry_interval);
            match &mut self.joining {
                Joining::Resolving { failures } | Joining::Contacting { failures, .. } => *failures += 1,
                Joining::Idle => {}
            }
            return;
        }
        let first = matches!(self.joining, Joining::Resolving { .. });
        if first || r.addrs != self.resolved {
            if !first {
                info!(seeds = ?r.addrs, "seed addresses changed; joining through them");
            }
            self.resolved = r.addrs;
            if let Joining::Resolving { failures } = self.joining {
                let base = self.node.node().stats().join_attempts;
                self.joining = Joining::Contacting { base, failures, warned: 0 };
            }
            self.node.join(&self.resolved);
            self.join_attempts_seen = self.node.node().stats().join_attempts;
        }
    }

    /// Follow the join: log each attempt left unanswered with the seeds
    /// tried, answer the callers once the node has joined (a seed answered),
    /// time callers out, and give up after `join_max_attempts`. Returns
    /// whether it fed the node an input (giving up).
    fn watch_join(&mut self) -> bool {
        let node = self.node.node();
        let attempts = node.stats().join_attempts;
        if self.joining == Joining::Idle && node.is_joining() {
            // The node lost every other member and went back to its seeds.
            info!(seeds = ?self.resolved, "no other member left; joining again through the seeds");
            self.joining = Joining::Contacting { base: attempts.saturating_sub(1), failures: 0, warned: 0 };
        }
        let unanswered = match self.joining {
            Joining::Idle => 0,
            Joining::Resolving { failures } => failures,
            Joining::Contacting { .. } if !node.is_joining() => {
                let members = node.live_members() as usize;
                info!(members, "joined: {members} members");
                self.end_join(Ok(members));
                return false;
            }
            Joining::Contacting { base, failures, ref mut warned } => {
                // The attempt under way is not unanswered yet.
                let unanswered = (attempts.saturating_sub(base).saturating_sub(1) as u32).saturating_add(failures);
                if unanswered > *warned {
                    *warned = unanswered;
                    warn!(seeds = ?self.resolved, attempt = unanswered, "no answer to the join from the seeds; retrying");
                }
                unanswered
            }
        };
        if self.join_max_attempts.is_some_and(|max| unanswered >= max) {
            warn!(seeds = ?self.seeds, attempts = unanswered, "giving up the join");
            self.node.join(&[]);
            self.seeds.clear();
            self.generation += 1;
            self.re_resolve_at = None;
            self.end_join(Err(Error::JoinGaveUp { attempts: unanswered }));
            return true;
        }
        let now = TokioInstant::now();
        let (due, waiting): (Vec<_>, Vec<_>) =
            self.join_waiters.drain(..).partition(|w| w.deadline.is_some_and(|d| d <= now));
        self.join_waiters = waiting;
        for w in due {
            let _ = w.reply.send(Err(Error::JoinTimedOut { unanswered }));
        }
        false
    }

    /// The join is over: answer every waiting caller with `outcome`.
    fn end_join(&mut self, outcome: Result<usize, Error>) {
        self.joining = Joining::Idle;
        for w in self.join_waiters.drain(..) {
            let _ = w.reply.send(outcome.clone());
        }
    }

    /// Re-resolve named seeds when the node starts another round of join
    /// attempts, or when none resolved last time and the retry is due.
    fn maybe_re_resolve(&mut self) {
        if self.resolving || !self.seeds.iter().any(|s| matches!(s, Seed::Name(_))) {
            return;
        }
        let attempts = self.node.node().stats().join_attempts;
        let new_round = self.node.node().is_joining() && attempts > self.join_attempts_seen;
        let retry_due = self.re_resolve_at.is_some_and(|t| t <= TokioInstant::now());
        if new_round || retry_due {
            self.join_attempts_seen = attempts;
            self.start_resolution();
        }
    }

    /// Send every datagram the node has ready.
    async fn flush(&mut self) {
        while let Some(tx) = self.node.poll_transmit() {
            if let Err(e) = self.socket.send_to(tx.payload, tx.to).await {
                self.stats.send_errors += 1;
                if is_unreachable(&e) {
                    debug!(to = %tx.member, error = %e, "send failed");
                } else {
                    warn!(to = %tx.member, error = %e, "send failed");
                }
            }
        }
    }

    /// Hand every event to the subscribers; with none, it is dropped.
    fn publish_events(&mut self) {
        let (stats, events) = (&mut self.stats, &self.events);
        self.node.drain_events(|event| {
            debug!(event = event.name(), member = ?event.member().map(|m| m.addr), "event");
            stats.events_published += 1;
            let _ = events.send(event);
        });
    }

    fn settle_leaves(&mut self) {
        let complete = self.node.node().leave_complete();
        self.leaves.settle(complete, std::time::Instant::now(), |reply, outcome| {
            let _ = reply.send(outcome);
        });
    }

    async fn on_recv_error(&mut self, e: io::Error) {
        self.stats.receive_errors += 1;
        self.recv_error_streak += 1;
        if is_unreachable_on_receive(&e) {
            debug!(error = %e, "receive failed");
        } else {
            warn!(error = %e, "receive failed");
        }
        if self.recv_error_streak >= RECV_ERROR_STREAK {
            tokio::time::sleep(RECV_ERROR_PAUSE).await;
        }
    }
}
