//! What to run: the resolved parameters of one simulation, the built-in
//! scenarios that supply their defaults, and the timed fault plan.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use swim_core::{Config, Encryption};

/// A protocol timing preset of swim-core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// [`Config::lan`].
    Lan,
    /// [`Config::wan`].
    Wan,
    /// [`Config::local`].
    Local,
}

impl Profile {
    /// The preset's configuration.
    pub fn config(self) -> Config {
        match self {
            Profile::Lan => Config::lan(),
            Profile::Wan => Config::wan(),
            Profile::Local => Config::local(),
        }
    }

    /// The option value naming it.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Lan => "lan",
            Profile::Wan => "wan",
            Profile::Local => "local",
        }
    }
}

/// A built-in scenario: a story of faults, and defaults for every option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// The default run: 300 nodes join through one seed under 1% loss, three
    /// crash, one leaves, one broadcast.
    Demo,
    /// Nodes join through one seed; nothing else happens.
    Join,
    /// After the join, 1% of the nodes crash at once.
    Crash,
    /// Steady state under 10% loss.
    Loss,
    /// The cluster is cut in halves for a minute, then healed.
    Partition,
    /// A few nodes handle their inputs late (Lifeguard's slow-node experiment).
    Slow,
    /// Every few seconds a node crashes, a crashed one restarts, now and then a new one joins.
    Churn,
    /// After the join, a few nodes leave gracefully.
    Leave,
}

impl Scenario {
    /// Every scenario, in the order the help text lists them.
    pub const ALL: [Scenario; 8] = [
        Scenario::Demo,
        Scenario::Join,
        Scenario::Crash,
        Scenario::Loss,
        Scenario::Partition,
        Scenario::Slow,
        Scenario::Churn,
        Scenario::Leave,
    ];

    /// The option value naming it.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Demo => "demo",
            Scenario::Join => "join",
            Scenario::Crash => "crash",
            Scenario::Loss => "loss",
            Scenario::Partition => "partition",
            Scenario::Slow => "slow",
            Scenario::Churn => "churn",
            Scenario::Leave => "leave",
        }
    }

    /// The scenario's full set of parameters for `seed`; options given on
    /// the command line then replace single fields.
    pub fn spec(self, seed: u64) -> RunSpec {
        let base = RunSpec {
            scenario: self,
            seed,
            nodes: 100,
            duration: Duration::from_secs(120),
            profile: Profile::Lan,
            loss: 0.0,
            duplicate: 0.0,
            latency: LatencyRange::default(),
            crashes: Vec::new(),
            partition: None,
            clog: None,
            slow: 0,
            slow_delay: Duration::from_millis(1500),
            lifeguard: true,
            encryption: Encryption::Off,
            flood: None,
            broadcasts: Vec::new(),
        };
        match self {
            Scenario::Demo => RunSpec {
                nodes: 300,
                duration: Duration::from_secs(180),
                loss: 0.01,
                crashes: vec![CrashSpec::new(3, 60.0)],
                ..base
            },
            Scenario::Join => RunSpec { duration: Duration::from_secs(60), ..base },
            Scenario::Crash => RunSpec {
                nodes: 300,
                duration: Duration::from_secs(150),
                crashes: vec![CrashSpec::new(3, 60.0)],
                ..base
            },
            Scenario::Loss => RunSpec { nodes: 300, duration: Duration::from_secs(180), loss: 0.10, ..base },
            Scenario::Partition => RunSpec {
                duration: Duration::from_secs(300),
                partition: Some(PartitionSpec { start: Duration::from_secs(60), end: Duration::from_secs(120) }),
                ..base
            },
            Scenario::Slow => RunSpec { duration: Duration::from_secs(300), slow: 5, ..base },
            Scenario::Churn => RunSpec { nodes: 200, duration: Duration::from_secs(300), ..base },
            Scenario::Leave => base,
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A value that does not parse, with what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub &'static str);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expected {}", self.0)
    }
}

impl std::error::Error for ParseError {}

impl FromStr for Scenario {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Scenario::ALL
            .into_iter()
            .find(|sc| sc.name() == s)
            .ok_or(ParseError("one of demo, join, crash, loss, partition, slow, churn, leave"))
    }
}

impl FromStr for Profile {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s {
            "lan" => Ok(Profile::Lan),
            "wan" => Ok(Profile::Wan),
            "local" => Ok(Profile::Local),
            _ => Err(ParseError("one of lan, wan, local")),
        }
    }
}

fn seconds(s: &str) -> Option<Duration> {
    let v: f64 = s.trim().parse().ok()?;
    (0.0..1e9).contains(&v).then(|| Duration::from_secs_f64(v))
}

/// A time written back in seconds, exactly as it would be parsed again.
fn secs_text(d: Duration) -> String {
    format!("{}", d.as_secs_f64())
}

/// `COUNT@SECONDS`: crash that many random live nodes at that time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrashSpec {
    /// Nodes to crash.
    pub count: u32,
    /// When, from the start of the run.
    pub at: Duration,
}

impl CrashSpec {
    /// `count` crashes at `secs` seconds.
    pub fn new(count: u32, secs: f64) -> Self {
        CrashSpec { count, at: Duration::from_secs_f64(secs) }
    }
}

impl FromStr for CrashSpec {
    type Err = ParseError;
    /// `COUNT@SECONDS`, or `none` (no crash, to override a scenario's).
    fn from_str(s: &str) -> Result<Self, ParseError> {
        const WANT: &str = "COUNT@SECONDS, e.g. 3@60, or none";
        if s == "none" {
            return Ok(CrashSpec::new(0, 0.0));
        }
        let (count, at) = count_at(s, WANT)?;
        Ok(CrashSpec { count, at })
    }
}

/// `COUNT@SECONDS`, as `--crash` and `--broadcast` take it; `want` is what
/// the option expects, for the error.
fn count_at(s: &str, want: &'static str) -> Result<(u32, Duration), ParseError> {
    let (count, at) = s.split_once('@').ok_or(ParseError(want))?;
    Ok((count.trim().parse().map_err(|_| ParseError(want))?, seconds(at).ok_or(ParseError(want))?))
}

impl fmt::Display for CrashSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.count, secs_text(self.at))
    }
}

/// `COUNT@SECONDS`: that many application broadcasts at that time, each
/// from a random live node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BroadcastSpec {
    /// Broadcasts sent.
    pub count: u32,
    /// When, from the start of the run.
    pub at: Duration,
}

impl FromStr for BroadcastSpec {
    type Err = ParseError;
    /// `COUNT@SECONDS`.
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let (count, at) = count_at(s, "COUNT@SECONDS, e.g. 20@60")?;
        Ok(BroadcastSpec { count, at })
    }
}

impl fmt::Display for BroadcastSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        CrashSpec { count: self.count, at: self.at }.fmt(f)
    }
}

/// `SECONDS..SECONDS`: the halves are cut off from each other in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionSpec {
    /// When the cut starts.
    pub start: Duration,
    /// When it heals.
    pub end: Duration,
}

/// An optional partition: `SECONDS..SECONDS` or `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaybePartition(pub Option<PartitionSpec>);

impl FromStr for MaybePartition {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        const WANT: &str = "START..END in seconds, e.g. 60..120, or none";
        if s == "none" {
            return Ok(MaybePartition(None));
        }
        let (a, b) = s.split_once("..").ok_or(ParseError(WANT))?;
        let (start, end) = (seconds(a).ok_or(ParseError(WANT))?, seconds(b).ok_or(ParseError(WANT))?);
        if end < start {
            return Err(ParseError(WANT));
        }
        Ok(MaybePartition(Some(PartitionSpec { start, end })))
    }
}

/// `COUNT@START..END`: that many random nodes stop receiving (they still
/// send) from START to END seconds: a one-way clog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClogSpec {
    /// Nodes clogged.
    pub count: u32,
    /// When the clog starts.
    pub start: Duration,
    /// When it clears.
    pub end: Duration,
}

/// An optional clog: `COUNT@START..END` or `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaybeClog(pub Option<ClogSpec>);

/// `COUNT@START..END` (or `none`): a count and a window, as `--clog` and
/// `--flood` take them; `want` is what the option expects, for the error.
fn count_window(s: &str, want: &'static str) -> Result<Option<(u32, PartitionSpec)>, ParseError> {
    if s == "none" {
        return Ok(None);
    }
    let (count, window) = s.split_once('@').ok_or(ParseError(want))?;
    let count = count.trim().parse().map_err(|_| ParseError(want))?;
    let MaybePartition(Some(w)) = window.parse().map_err(|_| ParseError(want))? else {
        return Err(ParseError(want));
    };
    Ok(Some((count, w)))
}

impl FromStr for MaybeClog {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let clog = count_window(s, "COUNT@START..END, e.g. 2@60..90, or none")?;
        Ok(MaybeClog(clog.map(|(count, w)| ClogSpec { count, start: w.start, end: w.end })))
    }
}

/// `COUNT@START..END`: that many outsiders (addresses that are not
/// members) flood random members from START to END seconds (see
/// [`crate::flood`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloodSpec {
    /// Outsiders sending.
    pub count: u32,
    /// When they start.
    pub start: Duration,
    /// When they stop (at the latest, the end of the fault phase).
    pub end: Duration,
}

/// An optional flood: `COUNT@START..END` or `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaybeFlood(pub Option<FloodSpec>);

impl FromStr for MaybeFlood {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let flood = count_window(s, "COUNT@START..END in seconds, e.g. 10@30..90, or none")?;
        Ok(MaybeFlood(flood.map(|(count, w)| FloodSpec { count, start: w.start, end: w.end })))
    }
}

/// `off`, `accept`, `seal` or `require`: how every node treats sealing
/// (swim-core's `Config::encryption`; every node but `off` holds the one
/// key of the run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncryptionMode(pub Encryption);

impl FromStr for EncryptionMode {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        [Encryption::Off, Encryption::Accept, Encryption::Seal, Encryption::Require]
            .into_iter()
            .find(|e| e.as_str() == s)
            .map(EncryptionMode)
            .ok_or(ParseError("one of off, accept, seal, require"))
    }
}

/// `MIN_MS..MAX_MS`: one-way latency drawn uniformly in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatencyRange {
    /// Shortest.
    pub min: Duration,
    /// Longest.
    pub max: Duration,
}

impl Default for LatencyRange {
    /// 1-5 ms, the LAN of DESIGN.md's comparison table.
    fn default() -> Self {
        LatencyRange { min: Duration::from_millis(1), max: Duration::from_millis(5) }
    }
}

impl FromStr for LatencyRange {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        const WANT: &str = "MIN_MS..MAX_MS, e.g. 1..5";
        let (a, b) = s.split_once("..").ok_or(ParseError(WANT))?;
        let ms = |x: &str| seconds(x).map(|d| d / 1000).ok_or(ParseError(WANT));
        // The order is checked by `RunSpec::validate`, with a message that says so.
        Ok(LatencyRange { min: ms(a)?, max: ms(b)? })
    }
}

impl fmt::Display for LatencyRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        write!(f, "{}..{}", ms(self.min), ms(self.max))
    }
}

/// Every parameter of one run. Together with the seed it fixes the run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSpec {
    /// The story of faults beyond what the fields below say.
    pub scenario: Scenario,
    /// The seed every random choice derives from.
    pub seed: u64,
    /// Nodes at the start (late joiners and restarts come on top).
    pub nodes: u32,
    /// Simulated time to run.
    pub duration: Duration,
    /// Protocol timing preset.
    pub profile: Profile,
    /// Probability that a datagram is lost.
    pub loss: f64,
    /// Probability that a delivered datagram arrives twice.
    pub duplicate: f64,
    /// One-way latency range.
    pub latency: LatencyRange,
    /// Crashes of random live nodes.
    pub crashes: Vec<CrashSpec>,
    /// A cut between the two halves.
    pub partition: Option<PartitionSpec>,
    /// Nodes that cannot receive for a while.
    pub clog: Option<ClogSpec>,
    /// Nodes that handle their inputs late, for the whole run.
    pub slow: u32,
    /// How late a slow node handles each datagram sent to it.
    pub slow_delay: Duration,
    /// The Lifeguard extensions on (the default) or off.
    pub lifeguard: bool,
    /// How every node treats sealing: `Off` (plaintext, the default), or
    /// `Accept`, `Seal`, `Require` with one key shared by every node.
    pub encryption: Encryption,
    /// Outsiders flooding the members for a while.
    pub flood: Option<FloodSpec>,
    /// Application broadcasts from random live nodes, beyond the scenario's.
    pub broadcasts: Vec<BroadcastSpec>,
}

/// The most nodes a run may have: the checker keeps a few bytes per
/// (observer, member) pair, and DESIGN's largest aim is 20,000 nodes in one
/// process.
pub const MAX_NODES: u32 = 20_000;

/// The most outsiders a `--flood` may have.
pub const MAX_FLOODERS: u32 = 1_000;

/// The most broadcasts one `--broadcast` may send: the checker keeps the
/// set of nodes that delivered each one.
pub const MAX_BROADCASTS: u32 = 10_000;

/// A run parameter the simulator refuses before doing any work, naming the
/// option and what it allows.
#[derive(Debug, Clone, PartialEq)]
pub enum SpecError {
    /// `--nodes` outside `1..=MAX_NODES`.
    Nodes(u32),
    /// `--loss` or `--duplicate` not a probability.
    Probability {
        /// The option.
        option: &'static str,
        /// The value given.
        value: f64,
    },
    /// `--latency` with its maximum below its minimum.
    LatencyOrder(LatencyRange),
    /// More crashes in all `--crash` options than nodes that may crash (all
    /// but node 0, the seed).
    CrashCount {
        /// Crashes asked for, all options added up.
        total: u64,
        /// Nodes that may crash.
        max: u32,
    },
    /// A `--crash` time after the end of the run.
    CrashTime {
        /// When the crash was asked for.
        at: Duration,
        /// The run's duration.
        duration: Duration,
    },
    /// `--slow` above the nodes that may be slow (all but node 0).
    SlowCount {
        /// Slow nodes asked for.
        count: u32,
        /// Nodes that may be slow.
        max: u32,
    },
    /// `--clog` with more nodes than may be clogged (all but node 0).
    ClogCount {
        /// Clogged nodes asked for.
        count: u32,
        /// Nodes that may be clogged.
        max: u32,
    },
    /// `--flood` with more outsiders than [`MAX_FLOODERS`].
    FloodCount(u32),
    /// A `--broadcast` COUNT outside `1..=MAX_BROADCASTS`.
    BroadcastCount(u32),
    /// A `--broadcast` time after the end of the run.
    BroadcastTime {
        /// When the broadcasts were asked for.
        at: Duration,
        /// The run's duration.
        duration: Duration,
    },
    /// A `--partition`, `--clog` or `--flood` window that starts after the run ends.
    Window {
        /// The option.
        option: &'static str,
        /// When the window starts.
        start: Duration,
        /// The run's duration.
        duration: Duration,
    },
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = |d: &Duration| d.as_secs_f64();
        match self {
            SpecError::Nodes(n) => write!(f, "--nodes {n}: must be within 1..={MAX_NODES}"),
            SpecError::Probability { option, value } => {
                write!(f, "--{option} {value}: must be a probability within 0.0..=1.0")
            }
            SpecError::LatencyOrder(l) => write!(f, "--latency {l}: MAX_MS must be at least MIN_MS"),
            SpecError::CrashCount { total, max } => write!(
                f,
                "--crash: {total} crashes in all, but at most {max} nodes may crash (every node but node 0, the seed)"
            ),
            SpecError::CrashTime { at, duration } => {
                write!(f, "--crash at {} s: must be within 0..={} s (the --duration)", s(at), s(duration))
            }
            SpecError::SlowCount { count, max } => {
                write!(f, "--slow {count}: must be within 0..={max} (every node but node 0, the seed)")
            }
            SpecError::ClogCount { count, max } => {
                write!(f, "--clog {count}@..: COUNT must be within 0..={max} (every node but node 0, the seed)")
            }
            SpecError::FloodCount(count) => {
                write!(f, "--flood {count}@..: COUNT must be within 0..={MAX_FLOODERS}")
            }
            SpecError::BroadcastCount(count) => {
                write!(f, "--broadcast {count}@..: COUNT must be within 1..={MAX_BROADCASTS}")
            }
            SpecError::BroadcastTime { at, duration } => {
                write!(f, "--broadcast at {} s: must be within 0..={} s (the --duration)", s(at), s(duration))
            }
            SpecError::Window { option, start, duration } => write!(
                f,
                "--{option} starting at {} s: START must be within 0..={} s (the --duration)",
                s(start),
                s(duration)
            ),
        }
    }
}

impl std::error::Error for SpecError {}

/// How a replay command starts when the simulator is run through cargo.
pub const CARGO_RUN: &str = "cargo run --release -p swim-sim --";

/// One timed fault or command of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Crash this many random live nodes (never node 0, the seed).
    Crash(u32),
    /// Restart this many crashed nodes (same id, fresh process).
    Restart(u32),
    /// Start this many new nodes that join through a live node (and node 0).
    Join(u32),
    /// This many random live nodes leave gracefully.
    Leave(u32),
    /// Cut the halves off from each other.
    PartitionStart,
    /// This many random live nodes stop receiving.
    ClogStart(u32),
    /// Clogged nodes receive again.
    ClogEnd,
    /// Heal the cut.
    PartitionEnd,
    /// This many random live nodes (drawn anew for each) broadcast an
    /// application payload.
    Broadcast(u32),
}

impl Fault {
    /// Whether the fault disturbs membership (a broadcast does not).
    pub fn disturbs(self) -> bool {
        !matches!(self, Fault::Broadcast(_))
    }
}

impl RunSpec {
    /// The protocol configuration every node runs.
    pub fn config(&self) -> Config {
        let mut c = self.profile.config();
        c.lifeguard = self.lifeguard;
        c.encryption = self.encryption;
        c
    }

    /// Check every parameter against what the simulator can run: a run
    /// that would silently do something else (crash fewer nodes than asked,
    /// crash after the end) is refused before any work.
    pub fn validate(&self) -> Result<(), SpecError> {
        if !(1..=MAX_NODES).contains(&self.nodes) {
            return Err(SpecError::Nodes(self.nodes));
        }
        for (option, value) in [("loss", self.loss), ("duplicate", self.duplicate)] {
            if !(0.0..=1.0).contains(&value) {
                return Err(SpecError::Probability { option, value });
            }
        }
        if self.latency.max < self.latency.min {
            return Err(SpecError::LatencyOrder(self.latency));
        }
        let others = self.nodes - 1;
        let total: u64 = self.crashes.iter().map(|c| u64::from(c.count)).sum();
        if total > u64::from(others) {
            return Err(SpecError::CrashCount { total, max: others });
        }
        if let Some(c) = self.crashes.iter().find(|c| c.count > 0 && c.at > self.duration) {
            return Err(SpecError::CrashTime { at: c.at, duration: self.duration });
        }
        if self.slow > others {
            return Err(SpecError::SlowCount { count: self.slow, max: others });
        }
        if let Some(c) = self.clog.filter(|c| c.count > 0) {
            if c.count > others {
                return Err(SpecError::ClogCount { count: c.count, max: others });
            }
            if c.start > self.duration {
                return Err(SpecError::Window { option: "clog", start: c.start, duration: self.duration });
            }
        }
        if let Some(fl) = self.flood.filter(|fl| fl.count > 0) {
            if fl.count > MAX_FLOODERS {
                return Err(SpecError::FloodCount(fl.count));
            }
            if fl.start > self.duration {
                return Err(SpecError::Window { option: "flood", start: fl.start, duration: self.duration });
            }
        }
        if let Some(p) = self.partition.filter(|p| p.start > self.duration) {
            return Err(SpecError::Window { option: "partition", start: p.start, duration: self.duration });
        }
        for b in &self.broadcasts {
            if !(1..=MAX_BROADCASTS).contains(&b.count) {
                return Err(SpecError::BroadcastCount(b.count));
            }
            if b.at > self.duration {
                return Err(SpecError::BroadcastTime { at: b.at, duration: self.duration });
            }
        }
        Ok(())
    }

    /// The timed faults, in time order (ties in the order listed).
    pub fn plan(&self) -> Vec<(Duration, Fault)> {
        let mut plan: Vec<(Duration, Fault)> =
            self.crashes.iter().filter(|c| c.count > 0).map(|c| (c.at, Fault::Crash(c.count))).collect();
        if let Some(c) = self.clog.filter(|c| c.count > 0) {
            plan.push((c.start, Fault::ClogStart(c.count)));
            plan.push((c.end, Fault::ClogEnd));
        }
        if let Some(p) = self.partition {
            plan.push((p.start, Fault::PartitionStart));
            plan.push((p.end, Fault::PartitionEnd));
        }
        plan.extend(self.broadcasts.iter().map(|b| (b.at, Fault::Broadcast(b.count))));
        let at = Duration::from_secs;
        match self.scenario {
            Scenario::Demo => {
                plan.push((at(90), Fault::Leave(1)));
                plan.push((at(100), Fault::Broadcast(1)));
            }
            Scenario::Leave => plan.push((at(60), Fault::Leave(5))),
            Scenario::Churn => {
                // Leave the last minute quiet: the liveness phase.
                let quiet = self.duration.saturating_sub(at(60));
                let mut t = at(30);
                let mut k = 0u32;
                while t < quiet {
                    plan.push((t, Fault::Crash(1)));
                    if k > 0 {
                        plan.push((t, Fault::Restart(1)));
                    }
                    if k % 4 == 3 {
                        plan.push((t, Fault::Join(1)));
                    }
                    k += 1;
                    t += at(5);
                }
            }
            Scenario::Join | Scenario::Crash | Scenario::Loss | Scenario::Partition | Scenario::Slow => {}
        }
        plan.retain(|(t, _)| *t <= self.duration);
        plan.sort_by_key(|(t, _)| *t);
        plan
    }

    /// Node ids the run needs: the initial nodes plus late joiners.
    pub fn ids(&self) -> u32 {
        let late: u32 = self.plan().iter().map(|(_, f)| if let Fault::Join(n) = f { *n } else { 0 }).sum();
        self.nodes.saturating_add(late)
    }

    /// The command that replays this run exactly, through cargo.
    pub fn replay_command(&self) -> String {
        format!("{CARGO_RUN} {}", self.replay_args())
    }

    /// The options that replay this run exactly: every parameter spelled
    /// out, so the command holds even if a scenario's defaults change.
    pub fn replay_args(&self) -> String {
        let mut cmd = format!(
            "--scenario {} --seed {} --nodes {} --duration {} --profile {} --loss {} --duplicate {} --latency {} --slow {} --slow-delay {}",
            self.scenario,
            self.seed,
            self.nodes,
            secs_text(self.duration),
            self.profile.name(),
            self.loss,
            self.duplicate,
            self.latency,
            self.slow,
            self.slow_delay.as_secs_f64() * 1000.0,
        );
        let crashes: Vec<&CrashSpec> = self.crashes.iter().filter(|c| c.count > 0).collect();
        if crashes.is_empty() {
            cmd.push_str(" --crash none");
        }
        for c in crashes {
            cmd.push_str(&format!(" --crash {c}"));
        }
        match self.partition {
            Some(p) => cmd.push_str(&format!(" --partition {}..{}", secs_text(p.start), secs_text(p.end))),
            None => cmd.push_str(" --partition none"),
        }
        if let Some(c) = self.clog.filter(|c| c.count > 0) {
            cmd.push_str(&format!(" --clog {}@{}..{}", c.count, secs_text(c.start), secs_text(c.end)));
        }
        if !self.lifeguard {
            cmd.push_str(" --no-lifeguard");
        }
        if self.encryption != Encryption::Off {
            cmd.push_str(&format!(" --encryption {}", self.encryption.as_str()));
        }
        if let Some(fl) = self.flood.filter(|fl| fl.count > 0) {
            cmd.push_str(&format!(" --flood {}@{}..{}", fl.count, secs_text(fl.start), secs_text(fl.end)));
        }
        for b in &self.broadcasts {
            cmd.push_str(&format!(" --broadcast {b}"));
        }
        cmd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_values_parse_and_print_back() {
        let c: CrashSpec = "3@60.5".parse().unwrap();
        assert_eq!(c, CrashSpec::new(3, 60.5));
        assert_eq!(c.to_string(), "3@60.5");
        assert_eq!("none".parse::<CrashSpec>().unwrap().count, 0);
        assert!("3".parse::<CrashSpec>().is_err());
        let p: MaybePartition = "60..120".parse().unwrap();
        assert_eq!(p.0.unwrap().end, Duration::from_secs(120));
        assert!("120..60".parse::<MaybePartition>().is_err());
        let l: LatencyRange = "1..5".parse().unwrap();
        assert_eq!(l, LatencyRange::default());
        assert_eq!(l.to_string(), "1..5");
        assert_eq!("0.5..2".parse::<LatencyRange>().unwrap().to_string(), "0.5..2");
        assert_eq!("churn".parse::<Scenario>().unwrap(), Scenario::Churn);
        let c: MaybeClog = "2@60..90".parse().unwrap();
        assert_eq!(c.0, Some(ClogSpec { count: 2, start: Duration::from_secs(60), end: Duration::from_secs(90) }));
        assert_eq!("none".parse::<MaybeClog>().unwrap().0, None);
        assert!("2@90..60".parse::<MaybeClog>().is_err());
        assert!("nope".parse::<Profile>().is_err());
        assert_eq!("require".parse::<EncryptionMode>().unwrap().0, Encryption::Require);
        assert_eq!("off".parse::<EncryptionMode>().unwrap().0, Encryption::Off);
        let f: MaybeFlood = "10@30..90.5".parse().unwrap();
        let want = FloodSpec { count: 10, start: Duration::from_secs(30), end: Duration::from_secs_f64(90.5) };
        assert_eq!(f.0, Some(want));
        assert_eq!("none".parse::<MaybeFlood>().unwrap().0, None);
        for bad in ["10", "10@90..30", "x@1..2", "10@1"] {
            let e = bad.parse::<MaybeFlood>().expect_err(bad).to_string();
            assert!(e.contains("COUNT@START..END"), "{bad}: {e}");
        }
        let b: BroadcastSpec = "20@60.5".parse().unwrap();
        assert_eq!(b, BroadcastSpec { count: 20, at: Duration::from_secs_f64(60.5) });
        assert_eq!(b.to_string(), "20@60.5");
        assert!("20".parse::<BroadcastSpec>().is_err());
        let refused = "on".parse::<EncryptionMode>().expect_err("refused").to_string();
        assert_eq!(refused, "expected one of off, accept, seal, require");
    }

    #[test]
    fn options_the_run_cannot_honour_are_refused_naming_the_option() {
        let ok = Scenario::Crash.spec(1);
        assert_eq!(ok.validate(), Ok(()));
        let refused = |f: &dyn Fn(&mut RunSpec)| {
            let mut spec = Scenario::Crash.spec(1);
            spec.nodes = 100;
            f(&mut spec);
            spec.validate().expect_err("refused").to_string()
        };
        assert!(refused(&|s| s.nodes = 0).starts_with("--nodes 0: must be within 1..="));
        assert!(refused(&|s| s.crashes = vec![CrashSpec::new(400, 10.0)]).contains("at most 99 nodes may crash"));
        assert!(refused(&|s| s.crashes = vec![CrashSpec::new(50, 10.0), CrashSpec::new(50, 20.0)])
            .contains("100 crashes in all"));
        let late = refused(&|s| {
            s.crashes = vec![CrashSpec::new(2, 500.0)];
            s.duration = Duration::from_secs(60);
        });
        assert!(late.contains("--crash at 500 s: must be within 0..=60 s"), "{late}");
        assert!(refused(&|s| s.slow = 200).starts_with("--slow 200: must be within 0..=99"));
        assert!(refused(&|s| s.loss = 1.5).starts_with("--loss 1.5"));
        let inverted = LatencyRange { min: Duration::from_millis(5), max: Duration::from_millis(1) };
        assert!(refused(&|s| s.latency = inverted).contains("MAX_MS must be at least MIN_MS"));
        assert!(refused(
            &|s| s.partition = Some(PartitionSpec { start: Duration::from_secs(900), end: Duration::from_secs(999) })
        )
        .starts_with("--partition starting at 900 s"));
        let flood = |count, start| Some(FloodSpec { count, start: Duration::from_secs(start), end: Duration::MAX });
        assert!(refused(&|s| s.flood = flood(5000, 10)).starts_with("--flood 5000@..: COUNT must be within 0..=1000"));
        assert!(refused(&|s| s.flood = flood(2, 900)).starts_with("--flood starting at 900 s"));
        let broadcast = |count, secs| vec![BroadcastSpec { count, at: Duration::from_secs(secs) }];
        assert!(
            refused(&|s| s.broadcasts = broadcast(0, 10)).starts_with("--broadcast 0@..: COUNT must be within 1..=")
        );
        assert!(refused(&|s| s.broadcasts = broadcast(20_000, 10)).contains("within 1..=10000"));
        assert!(refused(&|s| s.broadcasts = broadcast(5, 900))
            .starts_with("--broadcast at 900 s: must be within 0..=150 s"));
    }

    #[test]
    fn churn_plans_crashes_restarts_and_late_joins_before_a_quiet_minute() {
        let spec = Scenario::Churn.spec(1);
        let plan = spec.plan();
        assert!(plan.iter().all(|(t, _)| *t < spec.duration - Duration::from_secs(60)));
        assert!(plan.iter().any(|(_, f)| matches!(f, Fault::Restart(1))));
        assert!(spec.ids() > spec.nodes);
    }

    #[test]
    fn the_replay_command_names_every_parameter() {
        let mut spec = Scenario::Demo.spec(42);
        spec.lifeguard = false;
        assert!(!spec.replay_command().contains("--encryption"), "plaintext is the default");
        spec.encryption = Encryption::Require;
        spec.flood = Some(FloodSpec { count: 10, start: Duration::from_secs(30), end: Duration::from_secs(90) });
        spec.broadcasts = vec![BroadcastSpec { count: 20, at: Duration::from_secs(60) }];
        let cmd = spec.replay_command();
        for part in [
            "--scenario demo",
            "--seed 42",
            "--nodes 300",
            "--duration 180",
            "--loss 0.01",
            "--crash 3@60",
            "--partition none",
            "--no-lifeguard",
            "--encryption require",
            "--flood 10@30..90",
            "--broadcast 20@60",
        ] {
            assert!(cmd.contains(part), "{cmd} lacks {part}");
        }
    }
}
