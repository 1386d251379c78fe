//! `swim-sim replay FILE`: a node's log (a driver's or `--record-node`'s)
//! fed step by step into a fresh swim-core node rebuilt from the log's
//! header, every step's outputs checked against the recorded digest.
//!
//! The address type is read from the header (`NodeId` for the simulator,
//! `SocketAddr` for the drivers) and the node's generator rebuilt from its
//! kind and seed. A rotated log is the files `FILE`, `FILE.1`, `FILE.2`,
//! ...: a rotation record sends the replay on to the next, whose header must
//! continue the run. The outcome is one of:
//!
//! - every step matched: a one-line [`Summary`] (exit 0), also for a log
//!   without an end record (a process killed) or cut inside a record (killed
//!   while writing): every complete step before the cut replays;
//! - a step's outputs differ: [`Failure::Diverged`] names the step, its
//!   time, its input and what differed (exit 1);
//! - the log cannot be replayed at all or is damaged: [`Failure::Refused`]
//!   names the problem, the file and the byte offset (exit 2).
//!
//! With `--view` each change of the node's membership view is printed as
//! it replays (see [`View`]); `--plot PATH` draws it ([`view::svg`]).

use std::fmt;
use std::fs::File;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use rand_chacha::{ChaCha20Rng, ChaCha8Rng};
use rand_core::{CryptoRng, RngCore, SeedableRng};
use swim_core::record::{address_kind, LogError, LogReader, Record, Replay, RngKind, CORE_VERSION, MAGIC};
use swim_core::{Address, Event, Instant, NodeId};
use swim_driver::record::file_path;

pub mod view;

pub use view::View;

/// What `swim-sim replay` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The run's first log file (file index 0).
    pub file: PathBuf,
    /// Print every change of the node's membership view.
    pub view: bool,
    /// Draw the view over time as an SVG into this file.
    pub plot: Option<PathBuf>,
    /// Replay a log recorded by another swim-core version.
    pub any_version: bool,
}

/// Why a replay did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// A step's outputs differ from the recorded ones: the message names the
    /// step, its time, its input and what differed.
    Diverged(String),
    /// The log cannot be replayed (unreadable, not a log, damaged, of
    /// another version or address kind, a file missing or out of place),
    /// or an output file cannot be written.
    Refused(String),
}

impl Failure {
    /// The exit status: 1 for a divergence, 2 for a refusal.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Diverged(_) => 1,
            Failure::Refused(_) => 2,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Diverged(m) | Failure::Refused(m) => f.write_str(m),
        }
    }
}

/// How the log ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// With its end record: the process stopped cleanly.
    EndRecord,
    /// After a complete step, with no end record: the process stopped
    /// without closing its log (killed, crashed).
    NoEndRecord,
    /// Inside a record: the file named was cut at this byte offset.
    Cut {
        /// The file cut.
        file: PathBuf,
        /// The offset of the record cut.
        offset: u64,
    },
}

/// A replay in which every step matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Steps replayed.
    pub steps: u64,
    /// Files read.
    pub files: u32,
    /// The last step's time minus the node's start, in nanoseconds.
    pub span_nanos: u64,
    /// Events the node output, by kind, in a fixed order.
    pub events: Vec<(&'static str, u64)>,
    /// How the log ended.
    pub ending: Ending,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let events = if self.events.is_empty() {
            "none".to_owned()
        } else {
            self.events.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
        };
        write!(
            f,
            "replayed {} steps from {} file{} with no divergence: {:.3} simulated seconds; events: {events}; ",
            self.steps,
            self.files,
            if self.files == 1 { "" } else { "s" },
            self.span_nanos as f64 / 1e9
        )?;
        match &self.ending {
            Ending::EndRecord => f.write_str("ended with its end record"),
            Ending::NoEndRecord => f.write_str("no end record (the process stopped without closing its log: killed?)"),
            Ending::Cut { file, offset } => write!(
                f,
                "cut at byte {offset} of {} (the process stopped while writing it: replayed the {} complete steps before it)",
                file.display(),
                self.steps
            ),
        }
    }
}

/// Event kinds in the order a summary lists them.
const EVENT_KINDS: [&str; 8] = ["joined", "updated", "suspected", "alive", "failed", "left", "broadcast", "conflict"];

/// Replay the log `options.file` names; view lines (with `--view`) go to
/// `out` as the replay goes.
pub fn run(options: &Options, out: &mut dyn Write) -> Result<Summary, Failure> {
    // An output file is opened first, so a path that cannot be written is
    // refused before any work.
    let plot = match &options.plot {
        Some(p) => Some((
            p,
            File::create(p).map_err(|e| Failure::Refused(format!("--plot {}: cannot be written: {e}", p.display())))?,
        )),
        None => None,
    };
    let (result, points) = replay_file(options, out);
    match (plot, points) {
        (Some((path, mut f)), Some(points)) => {
            // The view up to a divergence is drawn too: it is what led there.
            let drawn = view::svg(&points)
                .map_err(|e| e.to_string())
                .and_then(|svg| f.write_all(svg.as_bytes()).map_err(|e| format!("cannot write: {e}")));
            if let Err(e) = drawn {
                return Err(Failure::Refused(format!("--plot {}: {e}", path.display())));
            }
        }
        // Refused before the replay began: no empty picture is left behind.
        (Some((path, f)), None) => {
            drop(f);
            let _ = std::fs::remove_file(path);
        }
        (None, _) => {}
    }
    result
}

/// Replay the log at `options.file`, with the address type its header
/// names: the outcome, and the view's points if the replay began.
fn replay_file(options: &Options, out: &mut dyn Write) -> (Result<Summary, Failure>, Option<view::Points>) {
    let file = &options.file;
    let bytes = match read(file) {
        Ok(b) => b,
        Err(e) => return (Err(e), None),
    };
    match address_kind(&bytes) {
        Ok(NodeId::RECORD_KIND) => replay::<NodeId>(options, bytes, out),
        Ok(SocketAddr::RECORD_KIND) => replay::<SocketAddr>(options, bytes, out),
        Ok(other) => {
            let e = format!(
                "{}: the log records addresses of kind {other}; this replayer knows kinds {} (NodeId, the simulator's) and {} (SocketAddr, the drivers')",
                file.display(),
                NodeId::RECORD_KIND,
                SocketAddr::RECORD_KIND
            );
            (Err(Failure::Refused(e)), None)
        }
        Err(e) => (Err(Failure::Refused(format!("{}: {e}", file.display()))), None),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure::Refused(format!("{}: cannot be read: {e}", path.display())))
}

/// Replay the run whose first file is `bytes`: the outcome, and the view's
/// points if the replay began.
fn replay<A: Address>(
    options: &Options,
    bytes: Vec<u8>,
    out: &mut dyn Write,
) -> (Result<Summary, Failure>, Option<view::Points>) {
    let file = &options.file;
    let header = match LogReader::<A>::open(&bytes) {
        Ok((header, _)) => header,
        Err(e) => return (Err(Failure::Refused(format!("{}: {e}", file.display()))), None),
    };
    if header.file_index > 0 {
        let e = format!(
            "{} is file {} of its run (from step {}): a replay starts at the first file (index 0), which holds the node's start",
            file.display(),
            header.file_index,
            header.first_step
        );
        return (Err(Failure::Refused(e)), None);
    }
    if header.core_version != CORE_VERSION && !options.any_version {
        let e = format!(
            "{} was recorded by swim-core {}; this is swim-core {CORE_VERSION}: a replay is exact only under the version that recorded (--any-version replays it anyway)",
            file.display(),
            header.core_version
        );
        return (Err(Failure::Refused(e)), None);
    }
    let title = format!("{}: the view of {:?}", file.display(), header.identity);
    let (result, points) = match header.rng {
        RngKind::ChaCha20 => match Run::new(options, &header, ChaCha20Rng::from_seed(header.rng_seed)) {
            Ok(run) => run.go(bytes, out),
            Err(e) => return (Err(e), None),
        },
        RngKind::ChaCha8 => match Run::new(options, &header, ChaCha8Rng::from_seed(header.rng_seed)) {
            Ok(run) => run.go(bytes, out),
            Err(e) => return (Err(e), None),
        },
    };
    (result, Some(view::Points { title, ..points }))
}

/// One replay under way, across the run's files.
struct Run<'o, A: Address, R: RngCore> {
    options: &'o Options,
    replay: Replay<A, R>,
    start: Instant,
    last_at: Option<Instant>,
    files: u32,
    events: [u64; EVENT_KINDS.len()],
    view: View<A>,
    /// The events of the step under way.
    step_events: Vec<Event<A>>,
}

/// How one file ended.
enum FileEnd {
    Rotated,
    End { steps: u64 },
    NoEnd,
    Cut { offset: u64 },
}

impl<'o, A: Address, R: RngCore + CryptoRng> Run<'o, A, R> {
    fn new(options: &'o Options, header: &swim_core::record::Header<A>, rng: R) -> Result<Self, Failure> {
        let replay = Replay::new(header, rng).map_err(|e| {
            Failure::Refused(format!("{}: the header's configuration does not validate: {e}", options.file.display()))
        })?;
        Ok(Run {
            options,
            replay,
            start: header.start,
            last_at: None,
            files: 0,
            events: [0; EVENT_KINDS.len()],
            view: View::default(),
            step_events: Vec::new(),
        })
    }
}

impl<A: Address, R: RngCore> Run<'_, A, R> {
    /// Replay every file; the outcome, and the view's points.
    fn go(mut self, first: Vec<u8>, out: &mut dyn Write) -> (Result<Summary, Failure>, view::Points) {
        let result = self.files(first, out);
        (result, std::mem::take(&mut self.view.points))
    }

    fn files(&mut self, mut bytes: Vec<u8>, out: &mut dyn Write) -> Result<Summary, Failure> {
        let first = self.options.file.clone();
        loop {
            let path = file_path(&first, self.files);
            let end = self.file(&path, &bytes, out)?;
            self.files += 1;
            let ending = match end {
                FileEnd::Rotated => {
                    let next = file_path(&first, self.files);
                    bytes = std::fs::read(&next).map_err(|e| {
                        let what = match e.kind() {
                            std::io::ErrorKind::NotFound => "is missing".to_owned(),
                            _ => format!("cannot be read: {e}"),
                        };
                        Failure::Refused(format!(
                            "{} {what}: {} ends with a rotation, so the run goes on in file {} (after step {})",
                            next.display(),
                            path.display(),
                            self.files,
                            self.replay.steps()
                        ))
                    })?;
                    continue;
                }
                FileEnd::End { steps } if steps == self.replay.steps() => Ending::EndRecord,
                FileEnd::End { steps } => {
                    return Err(Failure::Refused(format!(
                        "{}: the end record counts {steps} steps, but the run's files hold {}",
                        path.display(),
                        self.replay.steps()
                    )))
                }
                FileEnd::NoEnd => Ending::NoEndRecord,
                FileEnd::Cut { offset } => Ending::Cut { file: path, offset },
            };
            let events = EVENT_KINDS.iter().zip(self.events).filter(|(_, n)| *n > 0).map(|(k, n)| (*k, n)).collect();
            return Ok(Summary {
                steps: self.replay.steps(),
                files: self.files,
                span_nanos: self.last_at.map_or(0, |t| t.as_nanos().saturating_sub(self.start.as_nanos())),
                events,
                ending,
            });
        }
    }

    /// Replay the file `path` (`bytes`), the run's file number `self.files`.
    fn file(&mut self, path: &Path, bytes: &[u8], out: &mut dyn Write) -> Result<FileEnd, Failure> {
        let refuse = |e: LogError, steps: u64| {
            let before = if steps > 0 { format!(" (after {steps} steps replayed)") } else { String::new() };
            Failure::Refused(format!("{}: {e}{before}", path.display()))
        };
        let mut reader = match LogReader::<A>::open(bytes) {
            Ok((header, reader)) => {
                if self.files > 0 {
                    self.replay.next_file(&header).map_err(|e| Failure::Refused(format!("{}: {e}", path.display())))?;
                }
                reader
            }
            // A later file cut in its header, or before it: the process
            // stopped just after rotating.
            Err(LogError::Cut { offset }) if self.files > 0 => return Ok(FileEnd::Cut { offset }),
            Err(LogError::NotALog) if self.files > 0 && preamble_prefix(bytes) => {
                return Ok(FileEnd::Cut { offset: 0 })
            }
            Err(e) => return Err(refuse(e, self.replay.steps())),
        };
        loop {
            let offset = reader.offset();
            let step = match reader.next() {
                None => return Ok(FileEnd::NoEnd),
                Some(Ok(Record::Step(step))) => step,
                Some(Ok(Record::Rotated)) => return Ok(FileEnd::Rotated),
                Some(Ok(Record::End { steps })) => return Ok(FileEnd::End { steps }),
                Some(Err(LogError::Cut { offset })) => return Ok(FileEnd::Cut { offset }),
                Some(Err(e)) => return Err(refuse(e, self.replay.steps())),
            };
            self.step_events.clear();
            let events = &mut self.step_events;
            let result = self.replay.step(&step, |e| events.push(e.clone()));
            let t = step.at.as_nanos().saturating_sub(self.start.as_nanos()) as f64 / 1e9;
            if let Err(d) = result {
                return Err(Failure::Diverged(format!(
                    "diverged at step {} (+{t:.6} s, the record at byte {offset} of {})\n  input: {}\n  {d}",
                    step.index,
                    path.display(),
                    step.input
                )));
            }
            self.last_at = Some(step.at);
            for e in &self.step_events {
                if let Some(i) = EVENT_KINDS.iter().position(|k| *k == e.name()) {
                    self.events[i] += 1;
                }
                if let Some(line) = self.view.apply(t, e) {
                    if self.options.view {
                        // A closed stdout (a pager quit) stops nothing.
                        let _ = writeln!(out, "{line}");
                    }
                }
            }
        }
    }
}

/// Whether `bytes` are the start of a log's magic and version (a file
/// created and cut before its header).
fn preamble_prefix(bytes: &[u8]) -> bool {
    bytes.len() < MAGIC.len() && MAGIC.starts_with(bytes)
}
