//! `swim-sim`: run a simulated SWIM cluster and print a report.
//!
//! With no arguments it runs the demonstration scenario with a random seed,
//! printed first (`SEED=...`) so the run can be replayed with `--seed`.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::Parser;
use swim_core::Instant;
use swim_sim::expect::Expectation;
use swim_sim::spec::{MaybeClog, MaybePartition};
use swim_sim::{plot, CrashSpec, LatencyRange, Profile, Report, Scenario, Simulation};

/// Simulate a SWIM + Lifeguard cluster of unmodified swim-core nodes on a
/// virtual clock, inject faults, and report detection, accuracy and cost.
/// Every option not given comes from the scenario; the run is fixed by the
/// printed seed and options, and the replay command is printed on failure.
#[derive(Debug, Parser)]
#[command(name = "swim-sim", version)]
struct Cli {
    /// Built-in scenario: demo, join, crash, loss, partition, slow, churn, leave.
    #[arg(long, default_value = "demo")]
    scenario: Scenario,
    /// Nodes at the start (all join through node 0).
    #[arg(long)]
    nodes: Option<u32>,
    /// Seed of every random choice; drawn and printed when not given.
    #[arg(long)]
    seed: Option<u64>,
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
    /// Exit non-zero unless the run holds this: converged, no-false-positives,
    /// no-false-suspicions, detected (repeatable).
    #[arg(long, value_name = "WHAT")]
    expect: Vec<Expectation>,
    /// Write the JSON report to PATH.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Write an SVG plot (alive members seen over time, detection latencies) to PATH.
    #[arg(long, value_name = "PATH")]
    plot: Option<PathBuf>,
    /// No progress line on stderr.
    #[arg(long)]
    quiet: bool,
}

/// A seed from the system clock, for runs that were not given one.
fn fresh_seed() -> u64 {
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    // Keep it short enough to type.
    swim_sim::seed::derive(nanos, swim_sim::seed::Stream::Faults) % 1_000_000_000
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let seed = cli.seed.unwrap_or_else(fresh_seed);
    let mut spec = cli.scenario.spec(seed);
    if let Some(n) = cli.nodes {
        spec.nodes = n;
    }
    if let Some(d) = cli.duration {
        if !(d.is_finite() && d >= 0.0) {
            eprintln!("--duration must be a non-negative number of seconds");
            return ExitCode::from(2);
        }
        spec.duration = Duration::from_secs_f64(d);
    }
    if let Some(p) = cli.profile {
        spec.profile = p;
    }
    if let Some(l) = cli.loss {
        spec.loss = l;
    }
    if let Some(d) = cli.duplicate {
        spec.duplicate = d;
    }
    if let Some(l) = cli.latency {
        spec.latency = l;
    }
    if !cli.crash.is_empty() {
        spec.crashes = cli.crash.into_iter().filter(|c| c.count > 0).collect();
    }
    if let Some(p) = cli.partition {
        spec.partition = p.0;
    }
    if let Some(c) = cli.clog {
        spec.clog = c.0;
    }
    if let Some(s) = cli.slow {
        spec.slow = s;
    }
    if let Some(ms) = cli.slow_delay {
        if !(ms.is_finite() && (0.0..1e9).contains(&ms)) {
            eprintln!("--slow-delay must be a non-negative number of milliseconds");
            return ExitCode::from(2);
        }
        spec.slow_delay = Duration::from_secs_f64(ms / 1000.0);
    }
    if cli.no_lifeguard {
        spec.lifeguard = false;
    }
    if let Err(e) = spec.validate() {
        eprintln!("{e}");
        return ExitCode::from(2);
    }
    // Output files are opened before the run, so a path that cannot be
    // written is refused before any work.
    let json = match cli.json.as_deref().map(|p| create("--json", p)).transpose() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let plot_file = match cli.plot.as_deref().map(|p| create("--plot", p)).transpose() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    println!("SEED={seed}");
    let expectations: String = cli.expect.iter().map(|e| format!(" --expect {e}")).collect();
    println!("{}{expectations}", spec.replay_command());

    let started = std::time::Instant::now();
    let mut sim = match Simulation::new(spec) {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("invalid protocol configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let mut progress = Progress::new(!cli.quiet);
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
    sim.finish();
    progress.clear();
    let mut report = Report::new(&sim, started.elapsed());
    report.expectations_failed = cli.expect.iter().filter_map(|e| e.check(&report)).collect();
    report.replay.push_str(&expectations);
    print!("{}", report.summary());

    if let Some((path, mut file)) = json {
        if let Err(e) = file.write_all((report.to_json() + "\n").as_bytes()) {
            eprintln!("--json {}: cannot write: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if let Some((path, mut file)) = plot_file {
        if let Err(e) = file.write_all(plot::svg(&sim).as_bytes()) {
            eprintln!("--plot {}: cannot write: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if report.invariant_violations.is_empty() && report.expectations_failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Create (or truncate) the output file `path` given to `option`.
fn create<'a>(option: &str, path: &'a Path) -> Result<(&'a Path, File), String> {
    File::create(path).map(|f| (path, f)).map_err(|e| format!("{option} {}: cannot be written: {e}", path.display()))
}

/// A progress line on stderr, redrawn at most five times a second.
struct Progress {
    on: bool,
    last: Option<std::time::Instant>,
}

impl Progress {
    fn new(on: bool) -> Self {
        Progress { on, last: None }
    }

    fn show(&mut self, sim: &Simulation) {
        if !self.on {
            return;
        }
        let wall = std::time::Instant::now();
        if self.last.is_some_and(|l| wall - l < Duration::from_millis(200)) {
            return;
        }
        self.last = Some(wall);
        let done = sim.now().as_nanos() as f64 / sim.end().as_nanos().max(1) as f64;
        let width = 30;
        let filled = ((done * width as f64) as usize).min(width);
        let checks = sim.checks();
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r[{}{}] {:3.0}%  t={:.0}s  live={}  converged={}  false+={}  ",
            "#".repeat(filled),
            " ".repeat(width - filled),
            done * 100.0,
            sim.now().as_nanos() as f64 / 1e9,
            checks.live_count(),
            if checks.converged() { "yes" } else { "no " },
            checks.false_positives.count
        );
        let _ = err.flush();
    }

    fn clear(&self) {
        if self.on && self.last.is_some() {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r{}\r", " ".repeat(90));
            let _ = err.flush();
        }
    }
}
