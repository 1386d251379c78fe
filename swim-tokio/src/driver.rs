//! The node's task: one loop that owns the socket and the `swim_core::Node`,
//! waits on the socket, the node's deadline and the command channel, and
//! after every input drains the node's datagrams and events.
//!
//! Nothing here decides anything about the protocol: it moves bytes, time,
//! commands and events, and resolves seed names.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use rand_core::{OsRng, SeedableRng, TryRngCore};
use rand_xoshiro::Xoshiro256PlusPlus;
use swim_core::{Event, Node, State};
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant as TokioInstant;
use tracing::{debug, info, warn};

use crate::clock::Clock;
use crate::error::{Error, StartError};
use crate::handle::{Command, LeaveOutcome, MemberInfo};
use crate::net;
use crate::options::Options;
use crate::seed::{self, Seed};
use crate::stats::{DriverStats, MemberCounts, Stats};

/// Large enough for any UDP payload, so an oversized datagram reaches the
/// node whole and is refused (and counted) there instead of being cut.
const RECV_BUFFER: usize = 65_536;
/// Consecutive receive errors after which the loop pauses briefly, so an
/// error that does not clear cannot spin a core.
const RECV_ERROR_STREAK: u32 = 32;
const RECV_ERROR_PAUSE: Duration = Duration::from_millis(20);
/// Commands queued before senders wait.
const COMMAND_CAPACITY: usize = 64;

type SwimNode = Node<SocketAddr, Xoshiro256PlusPlus>;

/// The result of resolving the seeds of one join (or one retry round).
struct Resolved {
    generation: u64,
    addrs: Vec<SocketAddr>,
    reply: Option<oneshot::Sender<Result<usize, Error>>>,
}

/// A caller waiting in [`crate::Handle::leave`].
struct PendingLeave {
    deadline: TokioInstant,
    reply: oneshot::Sender<LeaveOutcome>,
}

/// What woke the loop.
enum Input {
    Command(Option<Command>),
    Resolved(Resolved),
    Datagram(io::Result<(usize, SocketAddr)>),
    Wake,
}

struct Driver {
    node: SwimNode,
    socket: UdpSocket,
    /// The socket's own address (its family decides address forms).
    bound: SocketAddr,
    clock: Clock,
    events: broadcast::Sender<Event<SocketAddr>>,
    out: Vec<u8>,
    stats: DriverStats,
    seeds: Vec<Seed>,
    generation: u64,
    resolving: bool,
    resolved: Vec<SocketAddr>,
    join_attempts_seen: u64,
    re_resolve_at: Option<TokioInstant>,
    resolved_tx: mpsc::UnboundedSender<Resolved>,
    leaves: Vec<PendingLeave>,
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
    let mut identity = net::canonical(options.advertise.unwrap_or(bound));
    if identity.port() == 0 {
        identity.set_port(bound.port());
    }
    if identity.ip().is_unspecified() {
        return Err(StartError::UnspecifiedAdvertise(identity));
    }
    let rng_seed = options.rng_seed.unwrap_or_else(os_seed);
    let clock = Clock::start();
    let mut node =
        Node::new(identity, options.config.clone(), Xoshiro256PlusPlus::seed_from_u64(rng_seed), clock.now())
            .map_err(StartError::Config)?;
    if !options.metadata.is_empty() {
        node.set_metadata(clock.now(), &options.metadata).map_err(StartError::Metadata)?;
    }
    info!(addr = %identity, bound = %bound, rng_seed, "swim node started");

    let (commands_tx, commands_rx) = mpsc::channel(COMMAND_CAPACITY);
    let (events, _) = broadcast::channel(options.event_capacity.max(1));
    let weak = events.downgrade();
    let (resolved_tx, resolved_rx) = mpsc::unbounded_channel();
    let driver = Driver {
        node,
        socket,
        bound,
        clock,
        events,
        out: vec![0u8; options.config.max_datagram_size],
        stats: DriverStats::default(),
        seeds: Vec::new(),
        generation: 0,
        resolving: false,
        resolved: Vec::new(),
        join_attempts_seen: 0,
        re_resolve_at: None,
        resolved_tx,
        leaves: Vec::new(),
        recv_error_streak: 0,
    };
    tokio::spawn(driver.run(commands_rx, resolved_rx));
    Ok((commands_tx, weak, identity))
}

/// A seed for the node's RNG from the operating system, or from the clock
/// if the OS cannot provide one.
fn os_seed() -> u64 {
    OsRng.try_next_u64().unwrap_or_else(|_| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id())
    })
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
                    let from = net::canonical(from);
                    if let Err(why) = self.node.handle_datagram(self.clock.now(), from, &buf[..len]) {
                        debug!(%from, len, %why, "datagram refused");
                    }
                }
                Input::Datagram(Err(e)) => self.on_recv_error(e).await,
                Input::Wake => self.node.handle_timeout(self.clock.now()),
            }
            self.flush().await;
            self.publish_events();
            self.settle_leaves();
            self.maybe_re_resolve();
        }
        let addr = *self.node.local_addr();
        // Close the socket before answering, so a caller of shutdown can
        // rebind the port at once.
        drop(self);
        info!(%addr, "swim node stopped");
        if let Some(reply) = stopped_by {
            let _ = reply.send(());
        }
    }

    /// The earliest of the node's deadline, a leave's timeout and a seed
    /// re-resolution.
    fn next_wake(&self) -> Option<TokioInstant> {
        let node = self.node.poll_timeout().map(|t| self.clock.to_runtime(t));
        let leave = self.leaves.iter().map(|l| l.deadline).min();
        [node, leave, self.re_resolve_at].into_iter().flatten().min()
    }

    fn on_command(&mut self, cmd: Command) {
        let now = self.clock.now();
        match cmd {
            Command::Join { seeds, reply } => {
                self.generation += 1;
                self.seeds = seeds;
                self.resolved.clear();
                self.re_resolve_at = None;
                if self.seeds.is_empty() {
                    self.node.join(now, &[]);
                    let _ = reply.send(Ok(0));
                } else {
                    self.start_resolution(Some(reply));
                }
            }
            Command::Leave { timeout, reply } => {
                self.seeds.clear();
                self.generation += 1;
                self.re_resolve_at = None;
                self.node.leave(now);
                self.leaves.push(PendingLeave { deadline: TokioInstant::now() + timeout, reply });
            }
            Command::Members { reply } => {
                let members = self
                    .node
                    .members()
                    .map(|m| MemberInfo {
                        addr: *m.addr,
                        state: m.state,
                        incarnation: m.incarnation,
                        meta: swim_core::Bytes::copy_from_slice(m.meta),
                        is_local: m.is_local,
                    })
                    .collect();
                let _ = reply.send(members);
            }
            Command::LocalMember { reply } => {
                let m = self.node.local_member();
                let _ = reply.send(MemberInfo {
                    addr: m.addr,
                    state: m.state,
                    incarnation: m.incarnation,
                    meta: m.meta,
                    is_local: true,
                });
            }
            Command::SetMetadata { meta, reply } => {
                let _ = reply.send(self.node.set_metadata(now, &meta).map_err(Error::from));
            }
            Command::Broadcast { payload, reply } => {
                let _ = reply.send(self.node.broadcast(now, &payload).map_err(Error::from));
            }
            Command::Stats { reply } => {
                let _ = reply.send(self.snapshot());
            }
            // Handled by the loop, which must stop.
            Command::Shutdown { reply } => {
                let _ = reply.send(());
            }
        }
    }

    fn snapshot(&self) -> Stats {
        Stats {
            core: self.node.stats().clone(),
            driver: self.stats,
            members: MemberCounts {
                alive: self.node.count(State::Alive),
                suspect: self.node.count(State::Suspect),
                failed: self.node.count(State::Dead),
                left: self.node.count(State::Left),
            },
            local_health: self.node.local_health(),
        }
    }

    /// Resolve the seeds in a task of their own, so a slow resolver never
    /// holds up the protocol; the answer comes back as `Input::Resolved`.
    fn start_resolution(&mut self, reply: Option<oneshot::Sender<Result<usize, Error>>>) {
        self.resolving = true;
        self.re_resolve_at = None;
        self.stats.seed_resolutions += 1;
        let seeds = self.seeds.clone();
        let generation = self.generation;
        let bound = self.bound;
        let tx = self.resolved_tx.clone();
        tokio::spawn(async move {
            let addrs = seed::resolve(&seeds, bound).await;
            let _ = tx.send(Resolved { generation, addrs, reply });
        });
    }

    fn on_resolved(&mut self, r: Resolved) {
        if r.generation != self.generation {
            // A newer join or a leave replaced this one.
            if let Some(reply) = r.reply {
                let _ = reply.send(Ok(r.addrs.len()));
            }
            return;
        }
        self.resolving = false;
        if r.addrs.is_empty() {
            warn!(seeds = ?self.seeds, "no seed resolved; retrying");
            self.re_resolve_at = Some(TokioInstant::now() + self.node.config().join_retry_interval);
            if let Some(reply) = r.reply {
                let _ = reply.send(Err(Error::NoSeedResolved));
            }
            return;
        }
        let fresh = r.reply.is_some();
        if fresh || r.addrs != self.resolved {
            if !fresh {
                info!(seeds = ?r.addrs, "seed addresses changed; joining through them");
            }
            self.resolved = r.addrs;
            self.node.join(self.clock.now(), &self.resolved);
            self.join_attempts_seen = self.node.stats().join_attempts;
        }
        if let Some(reply) = r.reply {
            let _ = reply.send(Ok(self.resolved.len()));
        }
    }

    /// Re-resolve named seeds when the node starts another round of join
    /// attempts, or when none resolved last time and the retry is due.
    fn maybe_re_resolve(&mut self) {
        if self.resolving || !self.seeds.iter().any(|s| matches!(s, Seed::Name(_))) {
            return;
        }
        let attempts = self.node.stats().join_attempts;
        let new_round = self.node.is_joining() && attempts > self.join_attempts_seen;
        let retry_due = self.re_resolve_at.is_some_and(|t| t <= TokioInstant::now());
        if new_round || retry_due {
            self.join_attempts_seen = attempts;
            self.start_resolution(None);
        }
    }

    /// Send every datagram the node has ready.
    async fn flush(&mut self) {
        while let Some(tx) = self.node.poll_transmit(&mut self.out) {
            let to = net::for_socket(self.bound, tx.to);
            if let Err(e) = self.socket.send_to(&self.out[..tx.len], to).await {
                self.stats.send_errors += 1;
                match e.kind() {
                    io::ErrorKind::ConnectionRefused
                    | io::ErrorKind::HostUnreachable
                    | io::ErrorKind::NetworkUnreachable => {
                        debug!(to = %tx.to, error = %e, "send failed");
                    }
                    _ => warn!(to = %tx.to, error = %e, "send failed"),
                }
            }
        }
    }

    /// Hand every event to the subscribers; with none, it is dropped.
    fn publish_events(&mut self) {
        while let Some(event) = self.node.poll_event() {
            debug!(event = event.name(), member = ?event.member().map(|m| m.addr), "event");
            self.stats.events_published += 1;
            let _ = self.events.send(event);
        }
    }

    fn settle_leaves(&mut self) {
        if self.leaves.is_empty() {
            return;
        }
        if self.node.leave_complete() {
            for l in self.leaves.drain(..) {
                let _ = l.reply.send(LeaveOutcome::Disseminated);
            }
            return;
        }
        let now = TokioInstant::now();
        let (due, waiting): (Vec<_>, Vec<_>) = self.leaves.drain(..).partition(|l| l.deadline <= now);
        self.leaves = waiting;
        for l in due {
            let _ = l.reply.send(LeaveOutcome::TimedOut);
        }
    }

    async fn on_recv_error(&mut self, e: io::Error) {
        self.stats.receive_errors += 1;
        self.recv_error_streak += 1;
        match e.kind() {
            // An ICMP error for an earlier send, reported on this socket.
            io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable => debug!(error = %e, "receive failed"),
            _ => warn!(error = %e, "receive failed"),
        }
        if self.recv_error_streak >= RECV_ERROR_STREAK {
            tokio::time::sleep(RECV_ERROR_PAUSE).await;
        }
    }
}
