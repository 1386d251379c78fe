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
use swim_driver::node::{is_unreachable, is_unreachable_on_receive};
use swim_driver::{DriverNode, LeaveOutcome, Options, PendingLeaves};

use crate::error::{Error, StartError};
use crate::handle::Command;
use crate::log::{log_debug, log_warn};
use crate::stats::{DriverStats, Stats};
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

struct Driver {
    node: DriverNode,
    socket: UdpSocket,
    poll: Poll,
    commands: Receiver<Command>,
    sink: Sink,
    recv_buf: Vec<u8>,
    stats: DriverStats,
    /// Callers waiting in [`crate::Handle::leave`].
    leaves: PendingLeaves<SyncSender<LeaveOutcome>>,
    /// Reading stopped before the socket was drained: read again then.
    read_again_at: Option<StdInstant>,
    recv_error_streak: u32,
}

/// Bind, build the node and start its thread.
pub(crate) fn spawn(options: Options, sink: Sink) -> Result<Started, StartError> {
    options.config.validate().map_err(StartError::Config)?;
    let mut socket = UdpSocket::bind(options.bind).map_err(|source| StartError::Bind { addr: options.bind, source })?;
    let bound = socket.local_addr().map_err(|source| StartError::Bind { addr: options.bind, source })?;
    let identity = swim_driver::addr::identity(options.advertise, bound).map_err(StartError::UnspecifiedAdvertise)?;
    let poll = Poll::new().map_err(StartError::Setup)?;
    poll.registry().register(&mut socket, SOCKET, Interest::READABLE).map_err(StartError::Setup)?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(StartError::Setup)?);

    let node = DriverNode::start(&options, bound)?;
    log_debug!("swim node {identity} started on {bound}, rng seed {}", node.rng_seed());

    let (commands_tx, commands) = mpsc::channel();
    let driver = Driver {
        node,
        socket,
        poll,
        commands,
        sink,
        recv_buf: vec![0u8; RECV_BUFFER],
        stats: DriverStats::default(),
        leaves: PendingLeaves::default(),
        read_again_at: None,
        recv_error_streak: 0,
    };
    let thread = thread::Builder::new()
        .name(format!("swim-mio {identity}"))
        .spawn(move || driver.run())
        .map_err(StartError::Setup)?;
    Ok(Started { commands: commands_tx, waker, thread, identity, bound })
}

impl Driver {
    fn run(mut self) {
        let mut events = MioEvents::with_capacity(8);
        // Starting was a step (the initial metadata): drain it first.
        self.after_input();
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
            if self.node.timeout_due() {
                self.node.handle_timeout();
                self.after_input();
            }
            self.settle_leaves();
            if let Some(why) = self.node.take_record_stop() {
                log_warn!("recording stopped: {why}");
            }
        }
        let addr = self.node.identity();
        // Dropping the driver closes the socket before the thread ends, so
        // whoever joins the thread can rebind the port at once.
        drop(self);
        log_debug!("swim node {addr} stopped");
    }

    /// How long the poller may wait: until the node's deadline, a leave's
    /// timeout or a deferred read, whichever is first.
    fn next_wait(&self) -> Option<Duration> {
        let now = self.node.now();
        let node = self.node.poll_timeout().map(|t| self.node.clock().wait_until(now, t));
        let std_now = StdInstant::now();
        let others = self.leaves.next_deadline().into_iter().chain(self.read_again_at).min();
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
                    if let (from, Err(why)) = self.node.handle_datagram(from, &self.recv_buf[..len]) {
                        log_debug!("datagram of {len} bytes from {from} refused: {why}");
                    }
                    self.after_input();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.stats.receive_errors += 1;
                    self.recv_error_streak += 1;
                    if is_unreachable_on_receive(&e) {
                        log_debug!("receive failed: {e}");
                    } else {
                        log_warn!("receive failed: {e}");
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
        match cmd {
            Command::Join { seeds, reply } => {
                self.node.join(&seeds);
                let _ = reply.send(());
            }
            Command::Leave { timeout, reply } => {
                self.node.leave();
                self.leaves.push(StdInstant::now() + timeout, reply);
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
            Command::Stats { reply } => {
                let _ = reply.send(self.snapshot());
            }
            Command::InstallKey { key, reply } => {
                let _ = reply.send(self.node.install_key(&key).map_err(Error::Key));
            }
            Command::UseKey { id, reply } => {
                let _ = reply.send(self.node.use_key(id).map_err(Error::Key));
            }
            Command::RemoveKey { id, reply } => {
                let _ = reply.send(self.node.remove_key(id).map_err(Error::Key));
            }
            Command::Keys { reply } => {
                let _ = reply.send(self.node.keys());
            }
            // Handled by `on_commands`, which stops the loop.
            Command::Shutdown => {}
        }
        self.after_input();
    }

    fn snapshot(&self) -> Stats {
        self.node.snapshot(self.stats)
    }

    /// Drain the node's outputs: datagrams into the socket, events to the
    /// application.
    fn after_input(&mut self) {
        while let Some(tx) = self.node.poll_transmit() {
            match self.socket.send_to(tx.payload, tx.to) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.stats.send_would_block += 1,
                Err(e) => {
                    self.stats.send_errors += 1;
                    if is_unreachable(&e) {
                        log_debug!("send to {} failed: {e}", tx.member);
                    } else {
                        log_warn!("send to {} failed: {e}", tx.member);
                    }
                }
            }
        }
        let (stats, sink) = (&mut self.stats, &mut self.sink);
        self.node.drain_events(|event| match sink {
            Sink::Channel(tx) => match tx.try_send(event) {
                Ok(()) => stats.events_published += 1,
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => stats.events_dropped += 1,
            },
            Sink::Callback(f) => {
                f(event);
                stats.events_published += 1;
            }
        });
    }

    fn settle_leaves(&mut self) {
        let complete = self.node.node().leave_complete();
        self.leaves.settle(complete, StdInstant::now(), |reply, outcome| {
            let _ = reply.send(outcome);
        });
    }
}
