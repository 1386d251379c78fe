//! The node's thread: one `mio::Poll` loop over the UDP socket and a waker,
//! whose timeout is the node's next deadline. After every input it drains
//! the node's datagrams into the socket and its events to the application.
//!
//! Nothing here decides anything about the protocol: it moves bytes, time,
//! commands and events.

use std::io;
use std::net::SocketAddr;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant as StdInstant};

use mio::net::UdpSocket;
use mio::{Events as MioEvents, Interest, Poll, Token, Waker};
use rand_core::{OsRng, SeedableRng, TryRngCore};
use rand_xoshiro::Xoshiro256PlusPlus;
use swim_core::{Node, State};

use crate::clock::Clock;
use crate::error::{Error, StartError};
use crate::handle::{Command, LeaveOutcome, MemberInfo};
use crate::log::{log_debug, log_warn};
use crate::net;
use crate::options::Options;
use crate::stats::{DriverStats, MemberCounts, Stats};
use crate::Event;

const SOCKET: Token = Token(0);
const WAKER: Token = Token(1);
/// Large enough for any UDP payload, so an oversized datagram reaches the
/// node whole and is refused (and counted) there instead of being cut.
const RECV_BUFFER: usize = 65_536;
/// Datagrams handled per turn of the loop before timers get a turn, so a
/// flood cannot starve probing.
const RECV_BATCH: usize = 256;
/// Consecutive receive errors after which the loop pauses reading briefly,
/// so an error that does not clear cannot spin a core.
const RECV_ERROR_STREAK: u32 = 32;
const ERROR_PAUSE: Duration = Duration::from_millis(20);

type SwimNode = Node<SocketAddr, Xoshiro256PlusPlus>;

/// Where events go.
pub(crate) enum Sink {
    /// A bounded channel; full means dropped and counted.
    Channel(SyncSender<Event>),
    /// A callback on the node's thread.
    Callback(Box<dyn FnMut(Event) + Send>),
}

/// What [`spawn`] hands back to the [`crate::Handle`].
pub(crate) struct Started {
    pub(crate) commands: Sender<Command>,
    pub(crate) waker: Arc<Waker>,
    pub(crate) thread: JoinHandle<()>,
    pub(crate) identity: SocketAddr,
    pub(crate) bound: SocketAddr,
}

/// A caller waiting in [`crate::Handle::leave`].
struct PendingLeave {
    deadline: StdInstant,
    reply: SyncSender<LeaveOutcome>,
}

struct Driver {
    node: SwimNode,
    socket: UdpSocket,
    /// The socket's own address (its family decides address forms).
    bound: SocketAddr,
    poll: Poll,
    clock: Clock,
    commands: Receiver<Command>,
    sink: Sink,
    out: Vec<u8>,
    recv_buf: Vec<u8>,
    stats: DriverStats,
    leaves: Vec<PendingLeave>,
    /// Reading stopped before the socket was drained: read again then.
    read_again_at: Option<StdInstant>,
    recv_error_streak: u32,
}

/// Bind, build the node and start its thread.
pub(crate) fn spawn(options: Options, sink: Sink) -> Result<Started, StartError> {
    options.config.validate().map_err(StartError::Config)?;
    let mut socket = UdpSocket::bind(options.bind).map_err(|source| StartError::Bind { addr: options.bind, source })?;
    let bound = socket.local_addr().map_err(|source| StartError::Bind { addr: options.bind, source })?;
    let mut identity = net::canonical(options.advertise.unwrap_or(bound));
    if identity.port() == 0 {
        identity.set_port(bound.port());
    }
    if identity.ip().is_unspecified() {
        return Err(StartError::UnspecifiedAdvertise(identity));
    }
    let poll = Poll::new().map_err(StartError::Setup)?;
    poll.registry().register(&mut socket, SOCKET, Interest::READABLE).map_err(StartError::Setup)?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(StartError::Setup)?);

    let rng_seed = options.rng_seed.unwrap_or_else(os_seed);
    let clock = Clock::start();
    let mut node =
        Node::new(identity, options.config.clone(), Xoshiro256PlusPlus::seed_from_u64(rng_seed), clock.now())
            .map_err(StartError::Config)?;
    if !options.metadata.is_empty() {
        node.set_metadata(clock.now(), &options.metadata).map_err(StartError::Metadata)?;
    }
    log_debug!("swim node {identity} started on {bound}, rng seed {rng_seed}");

    let (commands_tx, commands) = mpsc::channel();
    let driver = Driver {
        node,
        socket,
        bound,
        poll,
        clock,
        commands,
        sink,
        out: vec![0u8; options.config.max_datagram_size],
        recv_buf: vec![0u8; RECV_BUFFER],
        stats: DriverStats::default(),
        leaves: Vec::new(),
        read_again_at: None,
        recv_error_streak: 0,
    };
    let thread = thread::Builder::new()
        .name(format!("swim-mio {identity}"))
        .spawn(move || driver.run())
        .map_err(StartError::Setup)?;
    Ok(Started { commands: commands_tx, waker, thread, identity, bound })
}

/// A seed for the node's RNG from the operating system, or from the clock
/// if the OS cannot provide one.
fn os_seed() -> u64 {
    OsRng.try_next_u64().unwrap_or_else(|_| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id())
    })
}

impl Driver {
    fn run(mut self) {
        let mut events = MioEvents::with_capacity(8);
        loop {
            let wait = self.next_wait();
            let mut readable = false;
            match self.poll.poll(&mut events, wait) {
                Ok(()) => readable = events.iter().any(|e| e.token() == SOCKET),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // A poller that keeps failing must not spin a core.
                    self.stats.poll_errors += 1;
                    log_warn!("poll failed: {e}");
                    thread::sleep(ERROR_PAUSE);
                }
            }
            if self.read_again_at.is_some_and(|t| t <= StdInstant::now()) {
                readable = true;
            }
            if readable {
                self.receive();
            }
            if !self.on_commands() {
                break;
            }
            let now = self.clock.now();
            if self.node.poll_timeout().is_some_and(|t| t <= now) {
                self.node.handle_timeout(now);
                self.after_input();
            }
            self.settle_leaves();
        }
        let addr = *self.node.local_addr();
        // Dropping the driver closes the socket before the thread ends, so
        // whoever joins the thread can rebind the port at once.
        drop(self);
        log_debug!("swim node {addr} stopped");
    }

    /// How long the poller may wait: until the node's deadline, a leave's
    /// timeout or a deferred read, whichever is first.
    fn next_wait(&self) -> Option<Duration> {
        let now = self.clock.now();
        let node = self.node.poll_timeout().map(|t| self.clock.wait_until(now, t));
        let std_now = StdInstant::now();
        let others = self.leaves.iter().map(|l| l.deadline).chain(self.read_again_at).min();
        let others = others.map(|t| t.saturating_duration_since(std_now));
        [node, others].into_iter().flatten().min()
    }

    /// Read datagrams until the socket would block (mio's readiness is
    /// edge-triggered), at most a batch per turn.
    fn receive(&mut self) {
        self.read_again_at = None;
        for _ in 0..RECV_BATCH {
            match self.socket.recv_from(&mut self.recv_buf) {
                Ok((len, from)) => {
                    self.recv_error_streak = 0;
                    let from = net::canonical(from);
                    if let Err(why) = self.node.handle_datagram(self.clock.now(), from, &self.recv_buf[..len]) {
                        log_debug!("datagram of {len} bytes from {from} refused: {why}");
                    }
                    self.after_input();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.stats.receive_errors += 1;
                    self.recv_error_streak += 1;
                    match e.kind() {
                        // An ICMP error for an earlier send, reported on this socket.
                        io::ErrorKind::ConnectionRefused
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::HostUnreachable
                        | io::ErrorKind::NetworkUnreachable => log_debug!("receive failed: {e}"),
                        _ => log_warn!("receive failed: {e}"),
                    }
                    if self.recv_error_streak >= RECV_ERROR_STREAK {
                        self.recv_error_streak = 0;
                        self.read_again_at = Some(StdInstant::now() + ERROR_PAUSE);
                        return;
                    }
                }
            }
        }
        // A full batch: the socket may hold more; read again right after
        // the timers had their turn.
        self.read_again_at = Some(StdInstant::now());
    }

    /// Handle every queued command. Returns false when the loop must stop.
    fn on_commands(&mut self) -> bool {
        loop {
            match self.commands.try_recv() {
                Ok(Command::Shutdown) | Err(TryRecvError::Disconnected) => return false,
                Ok(cmd) => self.on_command(cmd),
                Err(TryRecvError::Empty) => return true,
            }
        }
    }

    fn on_command(&mut self, cmd: Command) {
        let now = self.clock.now();
        match cmd {
            Command::Join { seeds, reply } => {
                self.node.join(now, &seeds);
                let _ = reply.send(());
            }
            Command::Leave { timeout, reply } => {
                self.node.leave(now);
                self.leaves.push(PendingLeave { deadline: StdInstant::now() + timeout, reply });
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
            // Handled by `on_commands`, which stops the loop.
            Command::Shutdown => {}
        }
        self.after_input();
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

    /// Drain the node's outputs: datagrams into the socket, events to the
    /// application.
    fn after_input(&mut self) {
        while let Some(tx) = self.node.poll_transmit(&mut self.out) {
            let to = net::for_socket(self.bound, tx.to);
            match self.socket.send_to(&self.out[..tx.len], to) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.stats.send_would_block += 1,
                Err(e) => {
                    self.stats.send_errors += 1;
                    match e.kind() {
                        io::ErrorKind::ConnectionRefused
                        | io::ErrorKind::HostUnreachable
                        | io::ErrorKind::NetworkUnreachable => log_debug!("send to {} failed: {e}", tx.to),
                        _ => log_warn!("send to {} failed: {e}", tx.to),
                    }
                }
            }
        }
        while let Some(event) = self.node.poll_event() {
            match &mut self.sink {
                Sink::Channel(tx) => match tx.try_send(event) {
                    Ok(()) => self.stats.events_published += 1,
                    Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => self.stats.events_dropped += 1,
                },
                Sink::Callback(f) => {
                    f(event);
                    self.stats.events_published += 1;
                }
            }
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
        let now = StdInstant::now();
        let (due, waiting): (Vec<_>, Vec<_>) = self.leaves.drain(..).partition(|l| l.deadline <= now);
        self.leaves = waiting;
        for l in due {
            let _ = l.reply.send(LeaveOutcome::TimedOut);
        }
    }
}
