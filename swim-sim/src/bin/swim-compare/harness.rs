//! The one run every implementation goes through: a virtual clock, an event
//! queue ordered by (time, sequence), swim-sim's network model for datagrams,
//! a reliable-stream model for TCP, and the bookkeeping of who believes what
//! about whom.

use std::collections::{BTreeMap, BinaryHeap};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use cpu_time::ThreadTime;
use swim_sim::network::{Network, NetworkConfig};
use swim_sim::seed::{self, below, SimRng, Stream};

/// Virtual time in nanoseconds since the start of the run.
pub type Nanos = u64;

/// Nanoseconds in one second.
pub const SEC: Nanos = 1_000_000_000;
/// The probe interval every implementation is configured with: one
/// node-period.
pub const PERIOD: Nanos = SEC;
/// Longest the join phase may take before the steady window starts anyway.
pub const JOIN_CAP: Nanos = 120 * SEC;
/// Wait after the join converged before the steady window opens, so the
/// join's rumours have used up their retransmissions.
pub const DRAIN: Nanos = 30 * SEC;
/// Longest the crash phase runs before the crashes that are still not
/// Failed everywhere are reported as undetected.
pub const CRASH_CAP: Nanos = 150 * SEC;
/// Bytes of one TCP segment's payload.
pub const MSS: usize = 1448;
/// Delay one lost TCP segment costs before its retransmission (Linux's
/// minimum RTO); it doubles for each further loss of the same segment.
pub const RTO: Nanos = 200_000_000;
/// Delay a lost SYN or SYN-ACK costs before it is sent again (Linux's
/// initial RTO); it doubles for each further loss.
pub const SYN_RTO: Nanos = SEC;
/// How long a connect to a crashed host takes to fail (no RST comes back).
pub const CONNECT_TIMEOUT: Nanos = 10 * SEC;

/// What one node came to believe about another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Belief {
    /// Alive: joined, or refuted a suspicion.
    Up,
    /// Suspected: may still refute.
    Suspect,
    /// Failed (or left): no longer a live member.
    Down,
}

/// Something that happened on a modelled TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEvent<'a> {
    /// One frame, without its length prefix.
    Frame(&'a [u8]),
    /// The peer closed.
    Closed,
    /// The connection failed (a crashed peer).
    Failed,
}

/// A stream operation an implementation asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamOp {
    /// Open connection `conn` (the node's own id for it) to node `to`.
    Connect { conn: u64, to: u32 },
    /// Write length-prefixed frames on `conn`.
    Write { conn: u64, bytes: Vec<u8> },
    /// Close `conn`.
    Close { conn: u64 },
}

/// What one call into an implementation produced. Datagrams are copied
/// into one arena so that collecting them allocates nothing in the steady
/// state.
#[derive(Debug)]
pub struct Out<T> {
    /// Datagram bytes, back to back.
    pub arena: Vec<u8>,
    /// Each datagram: destination, start and length in `arena`.
    pub datagrams: Vec<(u32, usize, usize)>,
    /// Stream operations, in order.
    pub streams: Vec<StreamOp>,
    /// Timers to deliver back: absolute time and payload.
    pub timers: Vec<(Nanos, T)>,
    /// Beliefs that changed: subject and what the node now believes.
    pub beliefs: Vec<(u32, Belief)>,
}

impl<T> Default for Out<T> {
    fn default() -> Self {
        Out { arena: Vec::new(), datagrams: Vec::new(), streams: Vec::new(), timers: Vec::new(), beliefs: Vec::new() }
    }
}

impl<T> Out<T> {
    /// Record one datagram to `to`.
    pub fn datagram(&mut self, to: u32, bytes: &[u8]) {
        let start = self.arena.len();
        self.arena.extend_from_slice(bytes);
        self.datagrams.push((to, start, bytes.len()));
    }

    fn clear(&mut self) {
        self.arena.clear();
        self.datagrams.clear();
        self.streams.clear();
        self.timers.clear();
        self.beliefs.clear();
    }
}

/// One implementation under test, holding all of its nodes. Every method
/// writes what the node produced into `out`.
pub trait Protocol {
    /// What a timer carries back to the node.
    type Timer;
    /// The implementation's settings as the run used them.
    fn settings(&self) -> serde_json::Value;
    /// Start node `id` at `now` (it knows nobody yet).
    fn start(&mut self, id: u32, now: Nanos, out: &mut Out<Self::Timer>);
    /// Node `id` joins through node `seed`.
    fn join(&mut self, id: u32, seed: u32, now: Nanos, out: &mut Out<Self::Timer>);
    /// A datagram from `from` arrived at `id`.
    fn datagram(&mut self, id: u32, now: Nanos, from: u32, data: &[u8], out: &mut Out<Self::Timer>);
    /// A timer of `id` fired.
    fn timer(&mut self, id: u32, now: Nanos, timer: Self::Timer, out: &mut Out<Self::Timer>);
    /// Something happened on connection `conn` of `id`. Only
    /// implementations that open streams receive this.
    fn stream(&mut self, id: u32, now: Nanos, conn: u64, ev: StreamEvent<'_>, out: &mut Out<Self::Timer>);
    /// The driver allocated id for the `index`th connection `id` accepted.
    fn inbound_conn(&self, index: u64) -> u64;
    /// Members other than itself that node `id` holds live (Alive or
    /// Suspect), by its own count: a cross-check of the beliefs the
    /// harness assembled from its events.
    fn live_others(&self, id: u32) -> u64;
    /// Node `id` crashed: drop its state.
    fn crash(&mut self, id: u32);
}

/// The advertised address of node `id`: 10.x.y.z:7946.
pub fn addr(id: u32) -> SocketAddr {
    let [_, a, b, c] = id.to_be_bytes();
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(10, a, b, c), 7946))
}

/// The node id of an address made by [`addr`].
pub fn id_of(addr: &SocketAddr) -> Option<u32> {
    match addr {
        SocketAddr::V4(v4) => {
            let [ten, a, b, c] = v4.ip().octets();
            (ten == 10).then(|| u32::from_be_bytes([0, a, b, c]))
        }
        SocketAddr::V6(_) => None,
    }
}

/// The run's parameters.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Nodes at the start.
    pub nodes: u32,
    /// Datagram (and TCP segment) loss, 0 to 1.
    pub loss: f64,
    /// Latency range.
    pub latency_min: Duration,
    /// Latency range.
    pub latency_max: Duration,
    /// The run's seed.
    pub seed: u64,
    /// Length of the steady window.
    pub window: Duration,
}

impl Scenario {
    /// The nodes that crash after the steady window: 1% of the nodes (at
    /// least one), never the seed node 0, drawn from the run's fault stream
    /// so every implementation crashes the same nodes.
    pub fn crash_set(&self) -> Vec<u32> {
        let count = (self.nodes / 100).max(1).min(self.nodes.saturating_sub(1));
        let mut rng = seed::rng(self.seed, Stream::Faults);
        let mut candidates: Vec<u32> = (1..self.nodes).collect();
        let mut chosen = Vec::new();
        for _ in 0..count {
            let i = below(&mut rng, candidates.len() as u64) as usize;
            chosen.push(candidates.swap_remove(i));
        }
        chosen.sort_unstable();
        chosen
    }
}

/// The figures of one run.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Figures {
    /// Thread CPU time spent inside the implementation during the steady
    /// window, per live node and probe interval, in µs: the window's thread
    /// CPU time times the share of the window's wall time spent inside the
    /// implementation's calls (less the cost of reading the clock).
    pub cpu_us_per_node_period: f64,
    /// The window's whole thread CPU time per node-period, the harness's
    /// queue, network model and bookkeeping included, in µs.
    pub cpu_us_per_node_period_with_harness: f64,
    /// Datagrams sent in the steady window per node-period.
    pub datagrams_per_node_period: f64,
    /// Bytes sent in the steady window per node-period: datagram payloads,
    /// plus stream payloads (retransmissions included) where there are streams.
    pub bytes_per_node_period: f64,
    /// Of those, stream bytes per node-period (kinship only).
    pub stream_bytes_per_node_period: f64,
    /// Peak resident set of the process, in MB (10^6 bytes).
    pub peak_rss_mb: f64,
    /// When 99.99% of ordered pairs of nodes first saw each other Alive.
    pub join_9999_seconds: Option<f64>,
    /// When every node first saw every node Alive.
    pub join_convergence_seconds: Option<f64>,
    /// Datagrams sent until the join converged (or the join cap).
    pub join_datagrams: u64,
    /// Bytes sent until the join converged (or the join cap).
    pub join_bytes: u64,
    /// Ordered pairs that saw each other Alive when the steady window opened.
    pub pairs_up_at_window: u64,
    /// The same by the nodes' own member counts (Alive or Suspect).
    pub pairs_live_own_count_at_window: u64,
    /// Ordered pairs there are.
    pub pairs: u64,
    /// Crashed nodes.
    pub crashed: u32,
    /// Crashed nodes Failed at every live node before the crash phase ended.
    pub crashed_failed_everywhere: u32,
    /// Seconds from a crash until it was Failed at every live node: median
    /// over the crashed nodes (undetected ones count as the cap).
    pub all_failed_p50: Option<f64>,
    /// The same, 99th percentile.
    pub all_failed_p99: Option<f64>,
    /// Times a node declared a running node Failed, over the whole run.
    pub false_positives: u64,
    /// Times a node began to suspect a running node, over the whole run.
    pub false_suspicions: u64,
    /// When the steady window opened, in seconds.
    pub window_start_seconds: f64,
    /// When the run ended, in seconds.
    pub end_seconds: f64,
    /// Calls into the implementation timed in the window.
    pub timed_calls: u64,
    /// The share of the window's wall time spent inside those calls.
    pub share_in_calls: f64,
    /// What reading the monotonic clock twice adds to a timed call, in ns,
    /// taken off each call.
    pub clock_overhead_ns: f64,
    /// Wall time of the whole run, in seconds.
    pub wall_seconds: f64,
    /// The implementation's settings.
    pub settings: serde_json::Value,
}

enum Action<T> {
    Datagram { to: u32, from: u32, data: Vec<u8> },
    Timer { node: u32, timer: T },
    Stream { node: u32, conn: u64, what: Delivery },
    Phase(Phase),
}

enum Delivery {
    Data(Vec<u8>),
    Closed,
    Failed,
}

#[derive(Clone, Copy)]
enum Phase {
    Crash,
    End,
}

struct Queued<T> {
    at: Nanos,
    seq: u64,
    action: Action<T>,
}

impl<T> PartialEq for Queued<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl<T> Eq for Queued<T> {}
impl<T> PartialOrd for Queued<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Queued<T> {
    // Reversed: BinaryHeap is a max-heap and the earliest must come first.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// One end of a modelled TCP connection.
#[derive(Debug, Clone, Copy)]
struct End {
    peer: u32,
    peer_conn: u64,
    /// When this end may send data: the handshake is done.
    ready: Nanos,
    /// When the last segment written this way arrives: TCP delivers in order.
    last_arrival: Nanos,
}

/// Who believes whom Alive, as an N×N bitset (observer-major).
struct Beliefs {
    n: usize,
    up: Vec<u64>,
    pairs_up: u64,
}

impl Beliefs {
    fn new(n: usize) -> Self {
        Beliefs { n, up: vec![0; (n * n).div_ceil(64)], pairs_up: 0 }
    }

    /// Set whether `observer` holds `subject` Alive; returns whether it did.
    fn set(&mut self, observer: u32, subject: u32, up: bool) -> bool {
        let bit = observer as usize * self.n + subject as usize;
        let (word, mask) = (bit / 64, 1u64 << (bit % 64));
        let was = self.up[word] & mask != 0;
        if up && !was {
            self.up[word] |= mask;
            self.pairs_up += 1;
        } else if !up && was {
            self.up[word] &= !mask;
            self.pairs_up -= 1;
        }
        was
    }
}

/// The whole run for one implementation.
pub struct Run<P: Protocol> {
    proto: P,
    scenario: Scenario,
    queue: BinaryHeap<Queued<P::Timer>>,
    seq: u64,
    now: Nanos,
    network: Network,
    net_rng: SimRng,
    out: Out<P::Timer>,
    crashed: Vec<bool>,
    conns: BTreeMap<(u32, u64), End>,
    accepted: Vec<u64>,
    beliefs: Beliefs,
    /// For each crashed node: which live observers hold it Failed, and how many.
    detected: BTreeMap<u32, (Vec<bool>, u32, Option<Nanos>)>,
    crash_at: Option<Nanos>,
    window: Option<(Nanos, Nanos)>,
    in_window: bool,
    window_done: bool,
    /// Wall time inside the implementation's calls in the window.
    in_calls: Duration,
    timed_calls: u64,
    /// Thread CPU and wall clock when the window opened, then their
    /// differences once it closed.
    window_clocks: Option<(Duration, std::time::Instant)>,
    window_cpu: Duration,
    window_wall: Duration,
    figures: Figures,
    datagrams: u64,
    bytes: u64,
    stream_bytes: u64,
    window_traffic: (u64, u64, u64),
    converged: bool,
    free: Vec<Vec<u8>>,
}

impl<P: Protocol> Run<P> {
    /// Set up the run: every node started at time zero, every node but
    /// node 0 joining through node 0.
    pub fn new(proto: P, scenario: Scenario) -> Self {
        let n = scenario.nodes as usize;
        let config = NetworkConfig {
            latency_min: scenario.latency_min,
            latency_max: scenario.latency_max,
            loss: scenario.loss,
            duplicate: 0.0,
            slow_delay: Duration::ZERO,
        };
        let mut run = Run {
            proto,
            network: Network::new(config, n),
            net_rng: seed::rng(scenario.seed, Stream::Network),
            queue: BinaryHeap::new(),
            seq: 0,
            now: 0,
            out: Out::default(),
            crashed: vec![false; n],
            conns: BTreeMap::new(),
            accepted: vec![0; n],
            beliefs: Beliefs::new(n),
            detected: BTreeMap::new(),
            crash_at: None,
            window: None,
            in_window: false,
            window_done: false,
            in_calls: Duration::ZERO,
            timed_calls: 0,
            window_clocks: None,
            window_cpu: Duration::ZERO,
            window_wall: Duration::ZERO,
            figures: Figures::default(),
            datagrams: 0,
            bytes: 0,
            stream_bytes: 0,
            window_traffic: (0, 0, 0),
            converged: false,
            free: Vec::new(),
            scenario,
        };
        run.figures.pairs = (n as u64) * (n as u64).saturating_sub(1);
        run.figures.settings = run.proto.settings();
        for id in 0..run.scenario.nodes {
            run.proto.start(id, 0, &mut run.out);
            run.route(id);
        }
        for id in 1..run.scenario.nodes {
            run.proto.join(id, 0, 0, &mut run.out);
            run.route(id);
        }
        run
    }

    fn push(&mut self, at: Nanos, action: Action<P::Timer>) {
        let seq = self.seq;
        self.seq += 1;
        self.queue.push(Queued { at: at.max(self.now), seq, action });
    }

    /// Run to the end and return the figures (without peak RSS, which the
    /// caller reads once the run is dropped or done).
    pub fn run(mut self) -> Figures {
        // The join phase ends at convergence or at the cap; the window
        // and the crash are scheduled from there (see `on_converged`).
        self.push(JOIN_CAP, Action::Phase(Phase::Crash));
        while let Some(q) = self.queue.pop() {
            self.now = q.at;
            self.enter_window_if_due();
            match q.action {
                Action::Datagram { to, from, data } => {
                    if !self.crashed[to as usize] {
                        self.timed(|p, out| p.datagram(to, q.at, from, &data, out));
                        self.route(to);
                    }
                    self.free.push(data);
                }
                Action::Timer { node, timer } => {
                    if !self.crashed[node as usize] {
                        self.timed(|p, out| p.timer(node, q.at, timer, out));
                        self.route(node);
                    }
                }
                Action::Stream { node, conn, what } => {
                    if !self.crashed[node as usize] {
                        self.deliver_stream(node, conn, what);
                    }
                }
                Action::Phase(Phase::Crash) => self.phase_crash_or_window(),
                Action::Phase(Phase::End) => break,
            }
            // Every crash Failed everywhere: nothing more to measure.
            if self.crash_at.is_some() && self.detected.values().all(|d| d.2.is_some()) {
                break;
            }
        }
        self.finish()
    }

    /// The first `Phase::Crash` marks the end of the join phase if the join
    /// never converged; it then schedules the window like convergence does.
    /// Once the window is scheduled, `Phase::Crash` at its end crashes nodes.
    fn phase_crash_or_window(&mut self) {
        match self.window {
            None => self.open_window_schedule(),
            Some((_, end)) if self.now >= end && self.crash_at.is_none() => self.crash_nodes(),
            Some(_) => {}
        }
    }

    fn open_window_schedule(&mut self) {
        if self.window.is_some() {
            return;
        }
        self.figures.join_datagrams = self.datagrams;
        self.figures.join_bytes = self.bytes;
        let start = self.now.div_ceil(SEC) * SEC + DRAIN;
        let end = start + self.scenario.window.as_nanos() as Nanos;
        self.window = Some((start, end));
        self.figures.window_start_seconds = start as f64 / SEC as f64;
        self.push(end, Action::Phase(Phase::Crash));
    }

    fn enter_window_if_due(&mut self) {
        let Some((start, end)) = self.window else { return };
        if !self.in_window && !self.window_done && self.now >= start && self.now < end {
            self.in_window = true;
            self.window_traffic = (self.datagrams, self.bytes, self.stream_bytes);
            self.figures.pairs_up_at_window = self.beliefs.pairs_up;
            self.figures.pairs_live_own_count_at_window =
                (0..self.scenario.nodes).map(|id| self.proto.live_others(id)).sum();
            self.window_clocks = Some((ThreadTime::now().as_duration(), std::time::Instant::now()));
        } else if self.in_window && self.now >= end {
            self.in_window = false;
            self.window_done = true;
            if let Some((cpu, wall)) = self.window_clocks.take() {
                self.window_cpu = ThreadTime::now().as_duration().saturating_sub(cpu);
                self.window_wall = wall.elapsed();
            }
            let (d, b, s) = self.window_traffic;
            self.window_traffic = (self.datagrams - d, self.bytes - b, self.stream_bytes - s);
        }
    }

    fn crash_nodes(&mut self) {
        self.crash_at = Some(self.now);
        let victims = self.scenario.crash_set();
        self.figures.crashed = victims.len() as u32;
        for &v in &victims {
            self.crashed[v as usize] = true;
            self.proto.crash(v);
        }
        let n = self.scenario.nodes as usize;
        for &v in &victims {
            let live = (0..n).filter(|&o| !self.crashed[o]).count() as u32;
            self.detected.insert(v, (vec![false; n], live, None));
        }
        // Open connections with a crashed node fail at the live end.
        let broken: Vec<(u32, u64)> = self
            .conns
            .iter()
            .filter(|(&(node, _), end)| !self.crashed[node as usize] && self.crashed[end.peer as usize])
            .map(|(&k, _)| k)
            .collect();
        for (node, conn) in broken {
            self.conns.remove(&(node, conn));
            self.push(self.now + CONNECT_TIMEOUT, Action::Stream { node, conn, what: Delivery::Failed });
        }
        self.push(self.now + CRASH_CAP, Action::Phase(Phase::End));
    }

    /// Call into the implementation, timing the call in the steady window.
    fn timed(&mut self, f: impl FnOnce(&mut P, &mut Out<P::Timer>)) {
        if self.in_window {
            let t0 = std::time::Instant::now();
            f(&mut self.proto, &mut self.out);
            self.in_calls += t0.elapsed();
            self.timed_calls += 1;
        } else {
            f(&mut self.proto, &mut self.out);
        }
    }

    fn deliver_stream(&mut self, node: u32, conn: u64, what: Delivery) {
        match what {
            Delivery::Data(bytes) => {
                // The write is one or more frames, each behind a 4-byte
                // big-endian length.
                let now = self.now;
                let mut rest = &bytes[..];
                while let Some((prefix, tail)) = rest.split_first_chunk::<4>() {
                    let len = (u32::from_be_bytes(*prefix) as usize).min(tail.len());
                    let (frame, next) = tail.split_at(len);
                    self.timed(|p, out| p.stream(node, now, conn, StreamEvent::Frame(frame), out));
                    rest = next;
                }
            }
            Delivery::Closed => {
                self.conns.remove(&(node, conn));
                let now = self.now;
                self.timed(|p, out| p.stream(node, now, conn, StreamEvent::Closed, out));
            }
            Delivery::Failed => {
                self.conns.remove(&(node, conn));
                let now = self.now;
                self.timed(|p, out| p.stream(node, now, conn, StreamEvent::Failed, out));
            }
        }
        self.route(node);
    }

    /// One trip of one segment of `seg` payload bytes to `to`: a latency
    /// draw, and for each lost transmission a retransmit delay starting at
    /// `rto` and doubling. Counts the bytes of every transmission.
    fn trip(&mut self, to: u32, seg: usize, rto: Nanos) -> Nanos {
        let mut delay = 0;
        let mut rto = rto;
        loop {
            self.stream_bytes += seg as u64;
            self.bytes += seg as u64;
            match self.network.fate(&mut self.net_rng, to)[0] {
                Some(latency) => return delay + latency.as_nanos() as Nanos,
                None => {
                    delay += rto;
                    rto = rto.saturating_mul(2);
                }
            }
        }
    }

    /// When `len` bytes written at `start` reach `to`: each segment makes
    /// its own trip, and the write is there when its last segment is.
    fn stream_arrival(&mut self, to: u32, len: usize, start: Nanos) -> Nanos {
        let segments = len.div_ceil(MSS).max(1);
        let mut latest = start;
        for s in 0..segments {
            let seg = if s + 1 == segments { len - s * MSS } else { MSS };
            latest = latest.max(start + self.trip(to, seg, RTO));
        }
        latest
    }

    /// Take what node `id` produced and put it on the network and the queue.
    fn route(&mut self, id: u32) {
        let mut out = std::mem::take(&mut self.out);
        for &(to, start, len) in &out.datagrams {
            self.datagrams += 1;
            self.bytes += len as u64;
            if to as usize >= self.crashed.len() {
                continue;
            }
            if let Some(latency) = self.network.fate(&mut self.net_rng, to)[0] {
                let mut data = self.free.pop().unwrap_or_default();
                data.clear();
                data.extend_from_slice(&out.arena[start..start + len]);
                self.push(self.now + latency.as_nanos() as Nanos, Action::Datagram { to, from: id, data });
            }
        }
        for op in out.streams.drain(..) {
            self.stream_op(id, op);
        }
        for (at, timer) in out.timers.drain(..) {
            self.push(at, Action::Timer { node: id, timer });
        }
        for &(subject, belief) in &out.beliefs {
            self.observe(id, subject, belief);
        }
        out.clear();
        self.out = out;
    }

    fn stream_op(&mut self, id: u32, op: StreamOp) {
        match op {
            StreamOp::Connect { conn, to } => {
                if to as usize >= self.crashed.len() || self.crashed[to as usize] {
                    self.push(self.now + CONNECT_TIMEOUT, Action::Stream { node: id, conn, what: Delivery::Failed });
                    return;
                }
                let index = self.accepted[to as usize];
                self.accepted[to as usize] += 1;
                let peer_conn = self.proto.inbound_conn(index);
                // The handshake: SYN there, SYN-ACK back; the connector's
                // data follows it (the final ACK travels with the data).
                let syn = self.now + self.trip(to, 0, SYN_RTO);
                let done = syn + self.trip(id, 0, SYN_RTO);
                self.conns.insert((id, conn), End { peer: to, peer_conn, ready: done, last_arrival: 0 });
                self.conns.insert((to, peer_conn), End { peer: id, peer_conn: conn, ready: syn, last_arrival: 0 });
            }
            StreamOp::Write { conn, bytes } => {
                let Some(end) = self.conns.get(&(id, conn)).copied() else { return };
                // Writes arrive in order, none before the previous one.
                let start = self.now.max(end.ready);
                let arrival = self.stream_arrival(end.peer, bytes.len(), start).max(end.last_arrival);
                if let Some(e) = self.conns.get_mut(&(id, conn)) {
                    e.last_arrival = arrival;
                }
                self.push(arrival, Action::Stream { node: end.peer, conn: end.peer_conn, what: Delivery::Data(bytes) });
            }
            StreamOp::Close { conn } => {
                let Some(end) = self.conns.remove(&(id, conn)) else { return };
                let start = self.now.max(end.ready);
                let arrival = self.stream_arrival(end.peer, 0, start).max(end.last_arrival);
                self.push(arrival, Action::Stream { node: end.peer, conn: end.peer_conn, what: Delivery::Closed });
            }
        }
    }

    fn observe(&mut self, observer: u32, subject: u32, belief: Belief) {
        if subject == observer || subject as usize >= self.crashed.len() {
            return;
        }
        let running = !self.crashed[subject as usize];
        match belief {
            Belief::Up => {
                self.beliefs.set(observer, subject, true);
                if !self.converged && self.beliefs.pairs_up == self.figures.pairs {
                    self.converged = true;
                    self.figures.join_convergence_seconds = Some(self.now as f64 / SEC as f64);
                    self.open_window_schedule();
                }
                if self.figures.join_9999_seconds.is_none()
                    && self.beliefs.pairs_up * 10_000 >= self.figures.pairs * 9_999
                {
                    self.figures.join_9999_seconds = Some(self.now as f64 / SEC as f64);
                }
            }
            Belief::Suspect => {
                if running {
                    self.figures.false_suspicions += 1;
                }
            }
            Belief::Down => {
                self.beliefs.set(observer, subject, false);
                if running {
                    self.figures.false_positives += 1;
                } else if let Some((seen, left, done)) = self.detected.get_mut(&subject) {
                    if !seen[observer as usize] {
                        seen[observer as usize] = true;
                        *left -= 1;
                        if *left == 0 {
                            *done = Some(self.now);
                        }
                    }
                }
            }
        }
    }

    fn finish(mut self) -> Figures {
        if self.in_window {
            // The run stopped inside the window (it cannot, as the crash
            // comes at its end, but keep the figures whole if it did).
            let (d, b, s) = self.window_traffic;
            self.window_traffic = (self.datagrams - d, self.bytes - b, self.stream_bytes - s);
        }
        let f = &mut self.figures;
        f.end_seconds = self.now as f64 / SEC as f64;
        let live = self.scenario.nodes as f64;
        let node_periods = live * (self.scenario.window.as_nanos() as Nanos / PERIOD) as f64;
        let overhead = clock_overhead();
        f.clock_overhead_ns = overhead.as_nanos() as f64;
        let in_calls = self.in_calls.saturating_sub(overhead * u32::try_from(self.timed_calls).unwrap_or(u32::MAX));
        f.timed_calls = self.timed_calls;
        // Preemption by other processes stretches the wall time inside
        // and outside the calls alike, so the share is unbiased; thread CPU
        // time itself is read only twice, as each read is a system call
        // that costs more than many of the calls measured.
        let share = if self.window_wall.is_zero() {
            0.0
        } else {
            (in_calls.as_secs_f64() / self.window_wall.as_secs_f64()).min(1.0)
        };
        f.share_in_calls = share;
        f.cpu_us_per_node_period = self.window_cpu.as_secs_f64() * share * 1e6 / node_periods;
        f.cpu_us_per_node_period_with_harness = self.window_cpu.as_secs_f64() * 1e6 / node_periods;
        let (d, b, s) = self.window_traffic;
        f.datagrams_per_node_period = d as f64 / node_periods;
        f.bytes_per_node_period = b as f64 / node_periods;
        f.stream_bytes_per_node_period = s as f64 / node_periods;
        if let Some(at) = self.crash_at {
            let mut times: Vec<Nanos> = self.detected.values().map(|d| d.2.map_or(CRASH_CAP, |t| t - at)).collect();
            times.sort_unstable();
            f.crashed_failed_everywhere = self.detected.values().filter(|d| d.2.is_some()).count() as u32;
            f.all_failed_p50 = percentile(&times, 50);
            f.all_failed_p99 = percentile(&times, 99);
        }
        self.figures
    }
}

/// The nearest-rank percentile `p` of sorted `times`, in seconds.
fn percentile(times: &[Nanos], p: usize) -> Option<f64> {
    if times.is_empty() {
        return None;
    }
    let rank = (times.len() * p).div_ceil(100).max(1);
    Some(times[rank - 1] as f64 / SEC as f64)
}

/// What the two clock reads around a timed call add to it: the median of
/// many back-to-back pairs.
fn clock_overhead() -> Duration {
    let mut samples: Vec<Duration> = (0..10_001)
        .map(|_| {
            let a = std::time::Instant::now();
            a.elapsed()
        })
        .collect();
    samples.sort_unstable();
    samples[samples.len() / 2]
}

/// The one wakeup of each node of an implementation that reports a single
/// next deadline (swim-core, kinship-core): a timer is queued only when
/// the deadline moves earlier than the one already queued, and a timer
/// that is no longer the node's deadline is ignored when it fires.
#[derive(Debug, Default)]
pub struct Wakes {
    queued: Vec<Option<Nanos>>,
}

impl Wakes {
    /// Room for `n` nodes.
    pub fn new(n: usize) -> Self {
        Wakes { queued: vec![None; n] }
    }

    /// After an input: queue a wakeup at `deadline` unless one at or before
    /// it is queued already.
    pub fn arm(&mut self, id: u32, deadline: Option<Nanos>, out: &mut Out<Nanos>) {
        let Some(at) = deadline else { return };
        let slot = &mut self.queued[id as usize];
        if slot.is_none_or(|q| at < q) {
            *slot = Some(at);
            out.timers.push((at, at));
        }
    }

    /// Whether the timer for `at` is the node's current wakeup (and so
    /// the node must be woken); it is then no longer queued.
    pub fn fire(&mut self, id: u32, at: Nanos) -> bool {
        let slot = &mut self.queued[id as usize];
        if *slot == Some(at) {
            *slot = None;
            true
        } else {
            false
        }
    }
}
