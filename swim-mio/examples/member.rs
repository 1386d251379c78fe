//! Run one swim member from the command line with the blocking mio driver.
//!
//! ```sh
//! cargo run -p swim-mio --example member -- --bind 127.0.0.1:7946 --name a --profile local
//! cargo run -p swim-mio --example member -- --bind 127.0.0.1:7956 --name b --profile local --join 127.0.0.1:7946
//! ```
//!
//! It prints every membership event, and the member table every few
//! seconds, until Ctrl-C (or `--seconds N`), then leaves gracefully.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::{Duration, Instant};

use swim_mio::{meta, Config, Event, Handle, Options};

const USAGE: &str = "usage: member [--bind ADDR] [--join ADDR,ADDR...] [--name NAME] [--meta KEY=VALUE]... \
[--profile lan|wan|local] [--seconds N]";

struct Args {
    bind: std::net::SocketAddr,
    join: Vec<String>,
    name: Option<String>,
    tags: BTreeMap<String, String>,
    config: Config,
    seconds: Option<u64>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        bind: "127.0.0.1:7946".parse().map_err(|e| format!("{e}"))?,
        join: Vec::new(),
        name: None,
        tags: BTreeMap::new(),
        config: Config::lan(),
        seconds: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.to_owned());
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--bind" => args.bind = value.parse().map_err(|e| format!("--bind {value}: {e}"))?,
            "--join" => args.join.extend(value.split(',').filter(|s| !s.is_empty()).map(str::to_owned)),
            "--name" => args.name = Some(value),
            "--meta" => {
                let (k, v) = value.split_once('=').ok_or_else(|| format!("--meta {value}: expected KEY=VALUE"))?;
                if k == meta::NAME_KEY {
                    return Err("--meta name=...: use --name".to_owned());
                }
                args.tags.insert(k.to_owned(), v.to_owned());
            }
            "--profile" => {
                args.config = match value.as_str() {
                    "lan" => Config::lan(),
                    "wan" => Config::wan(),
                    "local" => Config::local(),
                    _ => return Err(format!("--profile {value}: expected lan, wan or local")),
                }
            }
            "--seconds" => args.seconds = Some(value.parse().map_err(|e| format!("--seconds {value}: {e}"))?),
            _ => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    Ok(args)
}

fn print_members(swim: &Handle) {
    let Ok(members) = swim.members() else {
        return;
    };
    println!("{:<22} {:<7} {:>11}  META", "ADDR", "STATE", "INCARNATION");
    for m in members {
        let addr = if m.addr == swim.local_addr() { format!("{} (self)", m.addr) } else { m.addr.to_string() };
        println!("{addr:<22} {:<7} {:>11}  {}", m.state.as_str(), m.incarnation, meta::describe(&m.meta));
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(signal, Arc::clone(&stop)) {
            eprintln!("cannot handle signal {signal}: {e}");
        }
    }
    let mut options = Options::new(args.bind, args.config);
    options.metadata = meta::encode_name_tags(args.name.as_deref(), &args.tags);
    let (swim, events) = match Handle::start(options) {
        Ok(started) => started,
        Err(e) => {
            eprintln!("cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("member {} running; Ctrl-C to leave", swim.local_addr());
    match swim.join(&args.join) {
        Ok(n) if !args.join.is_empty() => println!("joining through {n} seed address(es)"),
        Ok(_) => println!("started a new cluster"),
        Err(e) => eprintln!("join: {e}"),
    }
    let started = Instant::now();
    let mut table_at = started + Duration::from_secs(5);
    while !stop.load(Ordering::Relaxed) && args.seconds.is_none_or(|s| started.elapsed() < Duration::from_secs(s)) {
        match events.recv_timeout(Duration::from_millis(100)) {
            Ok(event) => print_event(&event),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if Instant::now() >= table_at {
            print_members(&swim);
            table_at += Duration::from_secs(5);
        }
    }
    println!("leaving...");
    match swim.leave() {
        Ok(outcome) => println!("left: {outcome:?}"),
        Err(e) => eprintln!("leave: {e}"),
    }
    if let Ok(stats) = swim.stats() {
        println!(
            "datagrams in/out {}/{}, send errors {}, receive errors {}, events dropped {}",
            stats.core.datagrams_in,
            stats.core.datagrams_out,
            stats.driver.send_errors,
            stats.driver.receive_errors,
            stats.driver.events_dropped
        );
    }
    swim.shutdown();
    ExitCode::SUCCESS
}

fn print_event(event: &Event) {
    match event {
        Event::Broadcast { from, payload } => println!("broadcast from {from}: {}", meta::describe(payload)),
        Event::Conflict { addr, other_instance, incarnation } => {
            println!(
                "conflict: another process claims {addr} (instance {other_instance:08x}, incarnation {incarnation})"
            )
        }
        other => {
            if let Some(m) = other.member() {
                println!("{}: {} incarnation {} {}", other.name(), m.addr, m.incarnation, meta::describe(&m.meta));
            }
        }
    }
}
