//! swim-compare: one scenario through swim-core, foca 2 and kinship-core
//! 0.5 on the same modelled network with the same timing, each in its own
//! child process so that each peak RSS is its own, summed up in one table.
//!
//! The scenario: N nodes start at time zero and join through node 0; the
//! steady window opens 30 s after every node first saw every node Alive
//! (or after 120 s if that never happens) and lasts 120 s; then 1% of the
//! nodes crash, and the run goes on until every crash is Failed at every
//! live node, or for at most 150 s.

mod foca;
mod harness;
mod kinship;
mod swim;

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use serde_json::{json, Value};

use crate::harness::{Figures, Protocol, Run, Scenario};

/// Most nodes kinship-core is run with: its memory grows as N² (1.35 GB
/// of peak RSS at 1,000 nodes, out of memory at 18 GB at 5,000 when this
/// machine has 23 GB), so 2,000 is the largest size of the ladder it fits.
const KINSHIP_MAX_NODES: u32 = 2_000;
/// Latency range of every datagram and TCP segment.
const LATENCY_MS: (u64, u64) = (1, 5);

/// An implementation under comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Impl {
    /// swim-core (this workspace).
    Swim,
    /// foca 2.x.
    Foca,
    /// kinship-core 0.5.
    Kinship,
}

impl Impl {
    const ALL: [Impl; 3] = [Impl::Swim, Impl::Foca, Impl::Kinship];

    fn name(self) -> &'static str {
        match self {
            Impl::Swim => "swim",
            Impl::Foca => "foca",
            Impl::Kinship => "kinship",
        }
    }

    /// Why this implementation is not run at `nodes`, if it is not.
    fn skip_reason(self, nodes: u32) -> Option<String> {
        (self == Impl::Kinship && nodes > KINSHIP_MAX_NODES).then(|| {
            format!(
                "kinship-core is run at most at {KINSHIP_MAX_NODES} nodes: its peak RSS grows as N² \
                 (1.35 GB at 1,000 nodes) and it ran out of memory at 18 GB at 5,000 on this 23 GB machine"
            )
        })
    }
}

/// Parse a loss rate: a number from 0 to 0.5.
fn parse_loss(s: &str) -> Result<f64, String> {
    let p: f64 = s.parse().map_err(|_| format!("`{s}` is not a number; allowed: 0 to 0.5"))?;
    if (0.0..=0.5).contains(&p) {
        Ok(p)
    } else {
        Err(format!("{s} is out of range; allowed: 0 to 0.5"))
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "swim-compare",
    about = "The same join, steady window and crash through swim-core, foca and kinship-core, on one network model"
)]
struct Args {
    /// Nodes in the cluster (kinship runs only up to 2000).
    #[arg(long, value_parser = clap::value_parser!(u32).range(2..=20_000))]
    nodes: u32,
    /// Loss rate of every datagram and TCP segment, 0 to 0.5.
    #[arg(long, default_value = "0", value_parser = parse_loss)]
    loss: f64,
    /// The run's seed: the same seed gives the same figures, CPU time and
    /// RSS aside.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Length of the steady window in seconds.
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    window: u64,
    /// Write the figures as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Run one implementation in this process and print its figures as
    /// JSON (what the parent runs in each child).
    #[arg(long = "impl", value_enum)]
    implementation: Option<Impl>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(path) = &args.json {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        if dir.is_some_and(|d| !d.is_dir()) {
            eprintln!("error: --json {}: its directory does not exist", path.display());
            return ExitCode::from(2);
        }
    }
    match args.implementation {
        Some(which) => {
            if let Some(why) = which.skip_reason(args.nodes) {
                eprintln!("error: --nodes {} with --impl {}: {why}", args.nodes, which.name());
                return ExitCode::from(2);
            }
            let figures = run_one(which, &args);
            println!("{}", serde_json::to_string(&figures).unwrap_or_default());
            ExitCode::SUCCESS
        }
        None => parent(&args),
    }
}

fn scenario(args: &Args) -> Scenario {
    Scenario {
        nodes: args.nodes,
        loss: args.loss,
        latency_min: Duration::from_millis(LATENCY_MS.0),
        latency_max: Duration::from_millis(LATENCY_MS.1),
        seed: args.seed,
        window: Duration::from_secs(args.window),
    }
}

fn run_one(which: Impl, args: &Args) -> Figures {
    let s = scenario(args);
    let start = Instant::now();
    let mut figures = match which {
        Impl::Swim => go(swim::Swim::new(s.nodes, s.seed), s),
        Impl::Foca => go(foca::FocaCluster::new(s.nodes, s.seed), s),
        Impl::Kinship => go(kinship::Kinship::new(s.nodes, s.seed), s),
    };
    figures.wall_seconds = start.elapsed().as_secs_f64();
    figures.peak_rss_mb = peak_rss_mb().unwrap_or(f64::NAN);
    figures
}

fn go<P: Protocol>(proto: P, s: Scenario) -> Figures {
    Run::new(proto, s).run()
}

/// VmHWM of this process, in MB.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024.0 / 1e6)
}

/// The fields every implementation's JSON carries, in table order, with
/// their labels.
const ROWS: [(&str, &str); 20] = [
    ("cpu_us_per_node_period", "CPU µs per node-period (steady, thread CPU)"),
    ("cpu_us_per_node_period_with_harness", "  the same with the harness's own work"),
    ("datagrams_per_node_period", "datagrams per node-period (steady)"),
    ("bytes_per_node_period", "bytes per node-period (steady)"),
    ("stream_bytes_per_node_period", "  of which TCP stream bytes"),
    ("peak_rss_mb", "peak RSS, MB"),
    ("join_9999_seconds", "99.99% of pairs Alive, s"),
    ("join_convergence_seconds", "100% join convergence, s"),
    ("join_datagrams", "datagrams until converged"),
    ("join_bytes", "bytes until converged"),
    ("pairs_up_at_window", "pairs Alive when the window opened"),
    ("pairs_live_own_count_at_window", "  the same by the nodes' own counts"),
    ("crashed", "nodes crashed"),
    ("crashed_failed_everywhere", "crashes Failed at every live node"),
    ("all_failed_p50", "crash -> Failed everywhere p50, s"),
    ("all_failed_p99", "crash -> Failed everywhere p99, s"),
    ("false_positives", "false Failed"),
    ("false_suspicions", "false suspicions"),
    ("window_start_seconds", "steady window opened at, s"),
    ("wall_seconds", "wall time, s"),
];

fn parent(args: &Args) -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("error: cannot find this program to run its children: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut results = serde_json::Map::new();
    let mut failed = false;
    for which in Impl::ALL {
        let value = if let Some(why) = which.skip_reason(args.nodes) {
            skipped(&why)
        } else {
            eprintln!("running {} ...", which.name());
            let output = Command::new(&exe)
                .args(["--impl", which.name(), "--nodes", &args.nodes.to_string()])
                .args(["--loss", &args.loss.to_string(), "--seed", &args.seed.to_string()])
                .args(["--window", &args.window.to_string()])
                .output();
            match output {
                Ok(o) if o.status.success() => match serde_json::from_slice::<Value>(&o.stdout) {
                    Ok(v) => v,
                    Err(e) => {
                        failed = true;
                        skipped(&format!("its output was not JSON: {e}"))
                    }
                },
                Ok(o) => {
                    failed = true;
                    let err = String::from_utf8_lossy(&o.stderr);
                    skipped(&format!("child failed ({}): {}", o.status, err.trim()))
                }
                Err(e) => {
                    failed = true;
                    skipped(&format!("could not start the child: {e}"))
                }
            }
        };
        results.insert(which.name().to_owned(), value);
    }
    let doc = json!({
        "scenario": {
            "nodes": args.nodes,
            "loss": args.loss,
            "seed": args.seed,
            "latency_ms": [LATENCY_MS.0, LATENCY_MS.1],
            "join": "every node starts at t=0 and joins through node 0",
            "steady_window_seconds": args.window,
            "steady_window_opens": "30 s after 100% join convergence, or 150 s after the start if the join never converges",
            "crash": "1% of the nodes (at least one, never node 0) at the end of the window, the same nodes for every implementation",
            "crash_phase_cap_seconds": harness::CRASH_CAP / harness::SEC,
            "streams": "kinship's TCP (joins, push-pulls, fallback pings) is modelled as a reliable in-order stream: \
                        a connect takes the handshake (SYN there, SYN-ACK back, each lost one resent after 1 s, \
                        doubling), each 1448-byte segment of data takes one latency draw and each lost transmission \
                        of it costs a 200 ms retransmit delay, doubling per repeat; a connect to a crashed node fails \
                        after 10 s. Bytes are payload bytes, as for datagrams: no IP, UDP or TCP headers, no ACKs",
            "cpu": "thread CPU time spent inside each implementation's calls in the steady window, \
                    less the cost of reading the clock, per node and probe interval",
            "false_suspicions": "swim and kinship count every time a node holds a running member Suspect, \
                                 raised or heard; foca reports no suspicion it hears, so only those it raises itself",
        },
        "implementations": Value::Object(results),
    });
    print_table(&doc);
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        if let Err(e) = std::fs::write(path, text + "\n") {
            eprintln!("error: --json {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// An implementation that was not run: every figure null, and why.
fn skipped(why: &str) -> Value {
    let mut m = serde_json::Map::new();
    for (key, _) in ROWS {
        m.insert(key.to_owned(), Value::Null);
    }
    m.insert("settings".into(), Value::Null);
    m.insert("skipped".into(), Value::String(why.to_owned()));
    Value::Object(m)
}

fn cell(v: Option<&Value>) -> String {
    match v {
        Some(Value::Number(n)) if n.is_u64() => n.to_string(),
        Some(Value::Number(n)) => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            if x.abs() >= 100.0 {
                format!("{x:.0}")
            } else if x.abs() >= 1.0 {
                format!("{x:.2}")
            } else {
                format!("{x:.3}")
            }
        }
        Some(Value::Null) | None => "-".to_owned(),
        Some(other) => other.to_string(),
    }
}

fn print_table(doc: &Value) {
    let s = &doc["scenario"];
    println!(
        "swim-compare: {} nodes, loss {}, seed {}, latency {}-{} ms",
        s["nodes"], s["loss"], s["seed"], LATENCY_MS.0, LATENCY_MS.1
    );
    for key in ["join", "steady_window_opens", "crash", "streams", "cpu", "false_suspicions"] {
        println!("  {key}: {}", s[key].as_str().unwrap_or_default());
    }
    println!();
    let imps = &doc["implementations"];
    println!("| figure | swim | foca | kinship |");
    println!("|---|---|---|---|");
    for (key, label) in ROWS {
        let cells: Vec<String> = Impl::ALL.iter().map(|i| cell(imps[i.name()].get(key))).collect();
        println!("| {label} | {} |", cells.join(" | "));
    }
    println!();
    for which in Impl::ALL {
        let imp = &imps[which.name()];
        if let Some(why) = imp.get("skipped").and_then(Value::as_str) {
            println!("{}: not run: {why}", which.name());
        } else {
            println!("{} settings: {}", which.name(), imp["settings"]);
        }
    }
}
