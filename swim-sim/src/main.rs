//! `swim-sim`: run a simulated SWIM cluster and print a report, sweep a
//! range of seeds (`swim-sim sweep --seeds A..B`), or replay a node's log
//! (`swim-sim replay FILE`).
//!
//! With no arguments it runs the demonstration scenario with a random seed,
//! printed first (`SEED=...`) so the run can be replayed with `--seed`.

use std::fs::File;
use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use swim_core::Instant;
use swim_sim::expect::Expectation;
use swim_sim::spec::{BroadcastSpec, MaybeClog, MaybeFlood, MaybePartition, CARGO_RUN};
use swim_sim::sweep::{self, SeedRange};
use swim_sim::{plot, replay, CrashSpec, EncryptionMode, LatencyRange, Profile, Report, RunSpec, Scenario, Simulation};

/// Simulate a SWIM + Lifeguard cluster of unmodified swim-core nodes on a
/// virtual clock, inject faults, and report detection, accuracy and cost.
/// Every option not given comes from the scenario; the run is fixed by the
/// printed seed and options, and the replay command is printed on failure.
#[derive(Debug, Parser)]
#[command(name = "swim-sim", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
    /// Seed of every random choice; drawn and printed when not given.
    #[arg(long)]
    seed: Option<u64>,
    /// Write the JSON report to PATH.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Write an SVG plot (members not seen Alive over time, detection latencies) to PATH.
    #[arg(long, value_name = "PATH")]
    plot: Option<PathBuf>,
    /// Record simulated node ID's first process into FILE (swim-core's log
    /// format, for `swim-sim replay FILE`).
    #[arg(long, num_args = 2, value_names = ["ID", "FILE"])]
    record_node: Option<Vec<String>>,
    /// No progress on stderr.
    #[arg(long)]
    quiet: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every seed of a range with the same options; print a table and
    /// the lowest failing seed with its replay command; exit 1 if any fails.
    Sweep(Box<SweepArgs>),
    /// Replay a node's log (FILE, then FILE.1, FILE.2, ... if it rotated)
    /// into a fresh node and check every step's outputs: exit 0 and a
    /// summary line when all match (also for a log cut short or without an
    /// end record), 1 at the first divergence, 2 for a log that cannot be
    /// replayed (unreadable, damaged, another version or address kind, a
    /// file missing).
    Replay(ReplayArgs),
}

#[derive(Debug, Args)]
struct ReplayArgs {
    /// The log's first file.
    file: PathBuf,
    /// Print the node's membership view at each change: the time, the
    /// event, and the members by state.
    #[arg(long)]
    view: bool,
    /// Write an SVG plot of the view over time (members by state) to PATH.
    #[arg(long, value_name = "PATH")]
    plot: Option<PathBuf>,
    /// Replay a log recorded by another swim-core version (outputs may
    /// then differ without a bug).
    #[arg(long)]
    any_version: bool,
}

#[derive(Debug, Args)]
struct SweepArgs {
    /// Seeds to run, FIRST..LAST, both included.
    #[arg(long, value_name = "FIRST..LAST")]
    seeds: SeedRange,
    /// Runs at once (default: the machine's cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    jobs: Option<u32>,
    #[command(flatten)]
    run: RunArgs,
    /// No progress on stderr.
    #[arg(long)]
    quiet: bool,
}

/// The options of one run, shared by a single run and a sweep.
#[derive(Debug, Args)]
struct RunArgs {
    /// Built-in scenario: demo, join, crash, loss, partition, slow, churn, leave.
    #[arg(long, default_value = "demo")]
    scenario: Scenario,
    /// Nodes at the start (all join through node 0).
    #[arg(long)]
    nodes: Option<u32>,
    /// Simulated seconds to run.
    #[arg(long)]
    duration: Option<f64>,
    /// Protocol timing preset: lan, wan, local.
    #[arg(long)]
    profile: Option<Profile>,
    /// Probability (0.0..1.0) that a datagram is lost.
    #[arg(long)]
    loss: Option<f64>,
    /// Probability (0.0..1.0) that a datagram is delivered twice.
    #[arg(long)]
    duplicate: Option<f64>,
    /// One-way latency range, MIN_MS..MAX_MS.
    #[arg(long)]
    latency: Option<LatencyRange>,
    /// Crash COUNT random nodes at SECONDS (COUNT@SECONDS, repeatable; `none` for no crash).
    #[arg(long)]
    crash: Vec<CrashSpec>,
    /// Split the nodes in halves from START to END seconds (START..END, or `none`).
    #[arg(long)]
    partition: Option<MaybePartition>,
    /// COUNT random nodes stop receiving (they still send) from START to END
    /// seconds: a one-way clog (COUNT@START..END, or `none`).
    #[arg(long)]
    clog: Option<MaybeClog>,
    /// Nodes that handle their inputs late for the whole run.
    #[arg(long)]
    slow: Option<u32>,
    /// How late a slow node handles each datagram sent to it, in milliseconds (default 1500).
    #[arg(long, value_name = "MS")]
    slow_delay: Option<f64>,
    /// Turn the Lifeguard extensions off, to compare.
    #[arg(long)]
    no_lifeguard: bool,
    /// How every node treats sealing (swim-core's Config::encryption): off
    /// (plaintext, the default), accept (sends plaintext, accepts both),
    /// seal (seals, accepts both), require (seals, refuses plaintext); all
    /// but off give every node one key drawn from the seed.
    #[arg(long, value_name = "MODE")]
    encryption: Option<EncryptionMode>,
    /// COUNT outsiders (addresses that are not members) send random members
    /// valid-looking and garbage datagrams from START to END seconds, each
    /// at 10 times a member's normal rate of 2 datagrams per probe interval
    /// (COUNT@START..END, or none). In plaintext they forge no claim about
    /// members: nothing can stop that without keys, and the flood shows
    /// that nothing else hurts. With --encryption they also send forgeries
    /// sealed under a wrong key and replays of captured member datagrams.
    #[arg(long, value_name = "COUNT@START..END")]
    flood: Option<MaybeFlood>,
    /// COUNT application broadcasts at SECONDS, each from a random live
    /// node (COUNT@SECONDS, repeatable); the report gives the time until
    /// every live node delivered each and checks each is delivered once.
    #[arg(long, value_name = "COUNT@SECONDS")]
    broadcast: Vec<BroadcastSpec>,
    /// Exit non-zero unless the run holds this: converged, no-false-positives,
    /// no-false-suspicions, detected (repeatable).
    #[arg(long, value_name = "WHAT")]
    expect: Vec<Expectation>,
}

impl RunArgs {
    /// The run for `seed`: the scenario's parameters with the options
    /// given, validated; or the message refusing them.
    fn spec(&self, seed: u64) -> Result<RunSpec, String> {
        let mut spec = self.scenario.spec(seed);
        if let Some(n) = self.nodes {
            spec.nodes = n;
        }
        if let Some(d) = self.duration {
            if !(d.is_finite() && (0.0..1e9).contains(&d)) {
                return Err(format!("--duration {d}: must be a number of seconds within 0..1e9"));
            }
            spec.duration = Duration::from_secs_f64(d);
        }
        if let Some(p) = self.profile {
            spec.profile = p;
        }
        if let Some(l) = self.loss {
            spec.loss = l;
        }
        if let Some(d) = self.duplicate {
            spec.duplicate = d;
        }
        if let Some(l) = self.latency {
            spec.latency = l;
        }
        if !self.crash.is_empty() {
            spec.crashes = self.crash.iter().copied().filter(|c| c.count > 0).collect();
        }
        if let Some(p) = self.partition {
            spec.partition = p.0;
        }
        if let Some(c) = self.clog {
            spec.clog = c.0;
        }
        if let Some(s) = self.slow {
            spec.slow = s;
        }
        if let Some(ms) = self.slow_delay {
            if !(ms.is_finite() && (0.0..1e9).contains(&ms)) {
                return Err(format!("--slow-delay {ms}: must be a number of milliseconds within 0..1e9"));
            }
            spec.slow_delay = Duration::from_secs_f64(ms / 1000.0);
        }
        if self.no_lifeguard {
            spec.lifeguard = false;
        }
        if let Some(e) = self.encryption {
            spec.encryption = e.0;
        }
        if let Some(f) = self.flood {
            spec.flood = f.0;
        }
        spec.broadcasts.extend(self.broadcast.iter().copied());
        spec.validate().map_err(|e| e.to_string())?;
        Ok(spec)
    }

    /// The `--expect` options, as they are written back in a replay command.
    fn expectations(&self) -> String {
        self.expect.iter().map(|e| format!(" --expect {e}")).collect()
    }
}

/// A seed from the system clock, for runs that were not given one.
fn fresh_seed() -> u64 {
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    // Keep it short enough to type.
    swim_sim::seed::derive(nanos, swim_sim::seed::Stream::Faults) % 1_000_000_000
}

/// How the user invoked the simulator, for replay commands: through cargo
/// (cargo sets `CARGO` for what it runs, and the binary sits in its
/// profile's folder), or the program path as typed.
fn program() -> String {
    let argv0 = std::env::args().next().unwrap_or_else(|| "swim-sim".to_owned());
    let profile = Path::new(&argv0).parent().and_then(Path::file_name).and_then(|p| p.to_str());
    match (std::env::var_os("CARGO").is_some(), profile) {
        (true, Some("release")) => CARGO_RUN.to_owned(),
        (true, Some("debug")) => CARGO_RUN.replace(" --release", ""),
        _ if argv0.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+".contains(c)) => argv0,
        _ => format!("'{}'", argv0.replace('\'', r"'\''")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Sweep(args)) => run_sweep(&args),
        Some(Command::Replay(args)) => run_replay(&args),
        None => run_one(&cli),
    }
}

fn run_one(cli: &Cli) -> ExitCode {
    let seed = cli.seed.unwrap_or_else(fresh_seed);
    let spec = match cli.run.spec(seed) {
        Ok(spec) => spec,
        Err(e) => return refuse(&e),
    };
    // Output files are opened before the run, so a path that cannot be
    // written is refused before any work.
    let json = match cli.json.as_deref().map(|p| create("--json", p)).transpose() {
        Ok(f) => f,
        Err(e) => return refuse(&e),
    };
    let plot_file = match cli.plot.as_deref().map(|p| create("--plot", p)).transpose() {
        Ok(f) => f,
        Err(e) => return refuse(&e),
    };
    let record = match cli.record_node.as_deref().map(|a| record_node(a, &spec)).transpose() {
        Ok(r) => r,
        Err(e) => return refuse(&e),
    };
    println!("SEED={seed}");
    let replay = format!("{} {}{}", program(), spec.replay_args(), cli.run.expectations());
    println!("{replay}");

    let started = std::time::Instant::now();
    let sim = match &record {
        Some((id, _, _)) => Simulation::recording(spec, *id),
        None => Simulation::new(spec),
    };
    let mut sim = match sim {
        Ok(sim) => sim,
        Err(e) => return refuse(&format!("invalid protocol configuration: {e}")),
    };
    let mut progress = Progress::new(!cli.quiet, &sim);
    let step = Duration::from_millis(100);
    let mut t = Instant::ZERO;
    loop {
        t = t + step;
        let more = sim.run_until(t);
        progress.show(&sim);
        if !more {
            break;
        }
    }
    progress.phase("liveness phase: faults off, the live nodes must agree");
    sim.finish();
    progress.done();
    let mut report = Report::new(&sim, started.elapsed());
    report.expectations_failed = cli.run.expect.iter().filter_map(|e| e.check(&report)).collect();
    report.replay = replay;
    print!("{}", report.summary());

    if let Some((path, mut file)) = json {
        if let Err(e) = file.write_all((report.to_json() + "\n").as_bytes()) {
            return refuse(&format!("--json {}: cannot write: {e}", path.display()));
        }
    }
    if let (Some((_, path, mut file)), Some(log)) = (record, sim.recorded_log()) {
        if let Err(e) = file.write_all(log) {
            return refuse(&format!("--record-node {}: cannot write: {e}", path.display()));
        }
    }
    if let Some((path, mut file)) = plot_file {
        let written = plot::svg(&sim)
            .map_err(|e| e.to_string())
            .and_then(|svg| file.write_all(svg.as_bytes()).map_err(|e| format!("cannot write: {e}")));
        if let Err(e) = written {
            return refuse(&format!("--plot {}: {e}", path.display()));
        }
    }
    if report.invariant_violations.is_empty() && report.expectations_failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn run_sweep(args: &SweepArgs) -> ExitCode {
    // The options are checked once, before the first run: only the seed
    // changes from run to run.
    let base = match args.run.spec(args.seeds.first) {
        Ok(spec) => spec,
        Err(e) => return refuse(&e),
    };
    let jobs = args.jobs.map_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()), |j| j as usize);
    let bar = if !args.quiet && std::io::stderr().is_terminal() {
        let bar = ProgressBar::with_draw_target(Some(args.seeds.len()), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("[{bar:30}] {pos}/{len} seeds  {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        if !args.quiet {
            eprintln!("sweep: {} seeds ({}) on {jobs} threads", args.seeds.len(), args.seeds);
        }
        ProgressBar::hidden()
    };
    let spec_of = |seed: u64| RunSpec { seed, ..base.clone() };
    let rows = sweep::sweep(args.seeds, jobs, &spec_of, &args.run.expect, &|| bar.inc(1));
    bar.finish_and_clear();
    print!("{}", sweep::table(args.seeds, &rows, &program(), &args.run.expectations()));
    if rows.iter().any(sweep::SweepRow::failed) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn run_replay(args: &ReplayArgs) -> ExitCode {
    let options = replay::Options {
        file: args.file.clone(),
        view: args.view,
        plot: args.plot.clone(),
        any_version: args.any_version,
    };
    match replay::run(&options, &mut std::io::stdout().lock()) {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(f @ replay::Failure::Diverged(_)) => {
            println!("{f}");
            ExitCode::from(f.exit_code())
        }
        Err(f) => refuse(&f.to_string()),
    }
}

/// `--record-node ID FILE`: the node (one of the run's first nodes) and
/// the file, created before the run.
fn record_node(args: &[String], spec: &RunSpec) -> Result<(u32, PathBuf, File), String> {
    let [id, path] = args else {
        return Err("--record-node takes two values: ID FILE".to_owned());
    };
    let id = id.parse::<u32>().map_err(|e| format!("--record-node {id}: not a node id: {e}"))?;
    if id >= spec.nodes {
        return Err(format!("--record-node {id}: the run starts nodes 0..{} only", spec.nodes));
    }
    let path = PathBuf::from(path);
    let (_, file) = create("--record-node", &path)?;
    Ok((id, path, file))
}

/// Refuse to go on: the message on stderr, exit status 2.
fn refuse(message: &str) -> ExitCode {
    eprintln!("{message}");
    ExitCode::from(2)
}

/// Create (or truncate) the output file `path` given to `option`.
fn create<'a>(option: &str, path: &'a Path) -> Result<(&'a Path, File), String> {
    File::create(path).map(|f| (path, f)).map_err(|e| format!("{option} {}: cannot be written: {e}", path.display()))
}

/// Progress on stderr: a bar when stderr is a terminal, otherwise one plain
/// line per phase; nothing with `--quiet`.
struct Progress {
    bar: Option<ProgressBar>,
    plain: bool,
}

impl Progress {
    fn new(on: bool, sim: &Simulation) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let end = sim.end().as_nanos() / 1_000_000_000;
        let bar = (on && terminal).then(|| {
            let bar = ProgressBar::with_draw_target(Some(end), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template("[{bar:30}] {pos}/{len} s simulated  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        });
        let progress = Progress { bar, plain: on && !terminal };
        progress.phase(&format!("fault phase: {end} simulated seconds, {} nodes", sim.spec().nodes));
        progress
    }

    fn show(&mut self, sim: &Simulation) {
        if let Some(bar) = &self.bar {
            let checks = sim.checks();
            bar.set_position(sim.now().as_nanos() / 1_000_000_000);
            bar.set_message(format!(
                "live={}  converged={}  false+={}",
                checks.live_count(),
                if checks.converged() { "yes" } else { "no " },
                checks.false_positives.count
            ));
        }
    }

    fn phase(&self, what: &str) {
        if self.plain {
            eprintln!("{what}");
        } else if let Some(bar) = &self.bar {
            bar.set_message(what.to_owned());
        }
    }

    fn done(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if self.plain {
            eprintln!("done");
        }
    }
}
