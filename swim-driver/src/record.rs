//! Recording a live node into log files (`swim-core/RECORD.md`): the
//! driver's side of [`swim_core::record::Recorder`], with rotation and a
//! size limit, so recording can stay on in production.
//!
//! Files: the run's first file is the path given; each rotation starts the
//! next, `PATH.1`, `PATH.2`, … A replay starts at the first file
//! (`swim-sim replay PATH` follows the others), so the recorder never
//! deletes one while it runs: when the run's files reach
//! [`RecordOptions::max_bytes`] it ends the log and stops recording, and
//! says so. Each step is written as it closes, so a killed process leaves
//! every step but the one under way. A node started with the path of an earlier run's log moves that
//! log aside first (`PATH.prev`, `PATH.prev.1`, …): the log of the run
//! before a restart is kept, the one before that is replaced.

use std::fs::{self, File};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use swim_core::record::{Header, Recorder, RngKind, CORE_VERSION};
use swim_core::{Input, Outcome};

use crate::node::SwimNode;

/// Where to record, and how much.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordOptions {
    /// The run's first log file; the next ones are `PATH.1`, `PATH.2`, …
    pub path: PathBuf,
    /// The most bytes all of the run's files may hold; recording stops
    /// (with an end record) before going past it.
    pub max_bytes: u64,
    /// A file is rotated once it holds this many bytes.
    pub file_bytes: u64,
}

/// Default [`RecordOptions::max_bytes`]: 1 GiB.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;
/// The smallest [`RecordOptions::max_bytes`] accepted: 1 MiB.
pub const MIN_MAX_BYTES: u64 = 1 << 20;
/// Largest [`RecordOptions::file_bytes`]: 64 MiB.
const MAX_FILE_BYTES: u64 = 64 << 20;
/// The record buffer's starting capacity: a step or two.
const BUFFER: usize = 4 << 10;

impl RecordOptions {
    /// Record into `path`, up to `max_bytes` in all (at least
    /// [`MIN_MAX_BYTES`]), in files of an eighth of that (at most 64 MiB).
    pub fn new(path: impl Into<PathBuf>, max_bytes: u64) -> Self {
        let max_bytes = max_bytes.max(MIN_MAX_BYTES);
        RecordOptions {
            path: path.into(),
            max_bytes,
            file_bytes: (max_bytes / 8).clamp(MIN_MAX_BYTES / 8, MAX_FILE_BYTES),
        }
    }
}

/// The path of the run's file number `index` (0: the path itself).
pub fn file_path(first: &Path, index: u32) -> PathBuf {
    if index == 0 {
        return first.to_path_buf();
    }
    let mut name = first.as_os_str().to_owned();
    name.push(format!(".{index}"));
    PathBuf::from(name)
}

/// How a recording stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordStatus {
    /// The run's first file.
    pub path: PathBuf,
    /// Steps recorded.
    pub steps: u64,
    /// Files written.
    pub files: u32,
    /// Bytes written, all files.
    pub bytes: u64,
    /// Why recording stopped, if it did (the size limit, a write error).
    pub stopped: Option<String>,
}

/// A node's recorder and the file it writes.
#[derive(Debug)]
pub(crate) struct FileRecorder {
    recorder: Recorder<SocketAddr>,
    options: RecordOptions,
    file: Option<File>,
    buf: Vec<u8>,
    bytes: u64,
    stopped: Option<String>,
    /// Whether the driver was told that recording stopped.
    told: bool,
}

impl FileRecorder {
    /// Start recording `node`, just built from `seed` at `start` with a
    /// transmit buffer of `buffer_len`: moves an earlier run's log aside,
    /// creates the first file and writes the header.
    pub(crate) fn start(
        options: &RecordOptions,
        node: &mut SwimNode,
        seed: [u8; 32],
        start: swim_core::Instant,
        buffer_len: usize,
    ) -> io::Result<Self> {
        move_aside(&options.path)?;
        let file = File::create(&options.path)?;
        let header = Header {
            core_version: CORE_VERSION.into(),
            recorder: format!("swim-driver {}", env!("CARGO_PKG_VERSION")),
            file_index: 0,
            first_step: 0,
            chain: 0,
            identity: *node.local_addr(),
            rng: RngKind::ChaCha20,
            rng_seed: seed,
            start,
            config: node.config().clone(),
            buffer_len: buffer_len as u32,
            key_ids: node.keys().map(|(id, _)| id).collect(),
        };
        let mut recorder = Recorder::new(node, header);
        let mut buf = Vec::with_capacity(BUFFER);
        recorder.begin_file(&mut buf);
        let mut r = FileRecorder {
            recorder,
            options: options.clone(),
            file: Some(file),
            buf,
            bytes: 0,
            stopped: None,
            told: false,
        };
        r.write()?;
        Ok(r)
    }

    /// Feed `input` through the recorder (or straight to the node once
    /// recording stopped).
    pub(crate) fn handle(
        &mut self,
        node: &mut SwimNode,
        now: swim_core::Instant,
        input: Input<'_, SocketAddr>,
    ) -> Outcome {
        if self.stopped.is_some() {
            return node.handle(now, input);
        }
        self.recorder.handle(node, now, input, &mut self.buf)
    }

    /// Close the step once the node's outputs are drained; rotate, stop at
    /// the limit, and write what waited long enough.
    pub(crate) fn end_step(&mut self, node: &mut SwimNode) {
        if self.stopped.is_some() {
            return;
        }
        self.recorder.end_step(node, &mut self.buf);
        if self.recorder.file_bytes() >= self.options.file_bytes {
            let written = self.bytes + self.buf.len() as u64;
            // The next file starts with a header of a few hundred bytes;
            // stop while the end record still fits.
            if written + self.options.file_bytes > self.options.max_bytes {
                self.stop(node, format!("reached the size limit of {} bytes", self.options.max_bytes));
                return;
            }
            self.recorder.end_file(node, &mut self.buf);
            let next = file_path(&self.options.path, self.recorder.file_index());
            let result = self.write().and_then(|()| File::create(&next));
            match result {
                Ok(file) => {
                    self.file = Some(file);
                    self.recorder.begin_file(&mut self.buf);
                }
                Err(e) => {
                    self.stopped = Some(format!("cannot write {}: {e}", next.display()));
                    self.file = None;
                    return;
                }
            }
        }
        // Every step is written as it closes (one write to the page cache),
        // so a process killed at any moment leaves every closed step.
        if let Err(e) = self.write() {
            self.stopped = Some(format!("cannot write {}: {e}", self.current().display()));
            self.file = None;
        }
    }

    /// End the log (the driver stops): the end record, written out.
    pub(crate) fn finish(&mut self, node: &mut SwimNode) {
        if self.stopped.is_none() {
            self.stop(node, "the node stopped".into());
        }
    }

    fn stop(&mut self, node: &mut SwimNode, why: String) {
        self.recorder.finish(node, &mut self.buf);
        self.stopped = Some(match self.write().and_then(|()| self.sync()) {
            Ok(()) => why,
            Err(e) => format!("cannot write {}: {e}", self.current().display()),
        });
        self.file = None;
    }

    fn current(&self) -> PathBuf {
        file_path(&self.options.path, self.recorder.file_index())
    }

    fn write(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let file = self.file.as_mut().ok_or_else(|| io::Error::other("no file open"))?;
        file.write_all(&self.buf)?;
        self.bytes += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.file.as_mut().map_or(Ok(()), |f| f.sync_data())
    }

    /// Why recording stopped, once, so the driver can say so.
    pub(crate) fn take_stop(&mut self) -> Option<String> {
        if self.told {
            return None;
        }
        self.told = self.stopped.is_some();
        self.stopped.clone()
    }

    /// How the recording stands.
    pub(crate) fn status(&self) -> RecordStatus {
        RecordStatus {
            path: self.options.path.clone(),
            steps: self.recorder.steps(),
            files: self.recorder.file_index() + 1,
            bytes: self.bytes + self.buf.len() as u64,
            stopped: self.stopped.clone(),
        }
    }
}

/// Move an earlier run's log at `path` (and its rotated files) aside to
/// `path.prev`, replacing the one before.
fn move_aside(path: &Path) -> io::Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let mut prev = path.as_os_str().to_owned();
    prev.push(".prev");
    let prev = PathBuf::from(prev);
    for index in 0.. {
        let old = file_path(&prev, index);
        if !old.exists() {
            break;
        }
        fs::remove_file(old)?;
    }
    for index in 0.. {
        let from = file_path(path, index);
        if !from.exists() {
            break;
        }
        fs::rename(from, file_path(&prev, index))?;
    }
    Ok(())
}

/// What a replay of a whole log found when every step matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayed {
    /// Steps replayed.
    pub steps: u64,
    /// Files read.
    pub files: u32,
    /// The time from the node's start to its last step.
    pub span: Duration,
    /// Events the node output.
    pub events: u64,
    /// How the log ended.
    pub ending: Ending,
}

/// How a log ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// With its end record: the recorder closed it.
    Closed,
    /// After a complete step, with no end record: the process stopped
    /// without closing its log (killed).
    Unclosed,
    /// Inside a record: cut while writing, at this byte of this file.
    Cut {
        /// The file.
        file: PathBuf,
        /// The byte offset.
        offset: u64,
    },
}

/// Why a replay stopped short.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReplayError {
    /// A file could not be read.
    Read {
        /// The file.
        file: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A file is not a readable log (not a log, another version, damage).
    Log {
        /// The file.
        file: PathBuf,
        /// Why.
        error: swim_core::record::LogError,
    },
    /// The log was recorded by another swim-core version.
    CoreVersion {
        /// The recording's.
        recorded: String,
    },
    /// The first file given is not a run's first file.
    NotFirst {
        /// Its index.
        index: u32,
    },
    /// A rotated log's next file is missing or does not follow.
    Continuity {
        /// The file.
        file: PathBuf,
        /// Why.
        error: String,
    },
    /// The header's configuration does not build a node.
    Config(swim_core::ConfigError),
    /// A step's outputs differ from the recorded ones.
    Diverged {
        /// The step's time from the node's start.
        at: Duration,
        /// The input, as the log names it.
        input: String,
        /// What differed.
        divergence: Box<swim_core::record::Divergence>,
    },
}

impl std::fmt::Display for ReplayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplayError::Read { file, source } => write!(f, "cannot read {}: {source}", file.display()),
            ReplayError::Log { file, error } => write!(f, "{}: {error}", file.display()),
            ReplayError::CoreVersion { recorded } => write!(
                f,
                "the log was recorded by swim-core {recorded} and this is swim-core {CORE_VERSION}: replay it with \
                 that version (outputs are only promised equal under the same one)"
            ),
            ReplayError::NotFirst { index } => {
                write!(f, "this is file {index} of a rotated log: a replay starts at the run's first file (index 0)")
            }
            ReplayError::Continuity { file, error } => write!(f, "{}: {error}", file.display()),
            ReplayError::Config(e) => write!(f, "the log's configuration does not build a node: {e}"),
            ReplayError::Diverged { at, input, divergence } => {
                write!(f, "{divergence} (at {:.6} s, input: {input})", at.as_secs_f64())
            }
        }
    }
}

impl std::error::Error for ReplayError {}

/// Replay the log whose first file is `first` (following rotations to
/// `first.1`, …) into a node rebuilt from its header, checking every step;
/// `on_step` sees each step's time from the start, its input and the events
/// it output. `any_version` replays a log of another swim-core version.
pub fn replay<A: swim_core::Address>(
    first: &Path,
    any_version: bool,
    mut on_step: impl FnMut(Duration, &swim_core::record::Logged<'_, A>, &[swim_core::Event<A>]),
) -> Result<Replayed, ReplayError> {
    use rand_chacha::{ChaCha20Rng, ChaCha8Rng};
    use rand_core::SeedableRng;
    use swim_core::record::{LogReader, Record, Replay};

    /// The replaying node, over the recorded node's generator.
    enum Either<A: swim_core::Address> {
        ChaCha20(Replay<A, ChaCha20Rng>),
        ChaCha8(Replay<A, ChaCha8Rng>),
    }
    let mut replay: Option<Either<A>> = None;
    let (mut events, mut span, mut steps) = (0u64, Duration::ZERO, 0u64);
    let mut step_events = Vec::new();
    for index in 0u32.. {
        let file = file_path(first, index);
        let bytes = match fs::read(&file) {
            Ok(b) => b,
            Err(source) if index == 0 => return Err(ReplayError::Read { file, source }),
            Err(e) => {
                let error = format!("the log goes on in this file, which cannot be read: {e}");
                return Err(ReplayError::Continuity { file, error });
            }
        };
        let log_error = |error| ReplayError::Log { file: file.clone(), error };
        let (header, mut reader) = LogReader::<A>::open(&bytes).map_err(log_error)?;
        match replay.as_mut() {
            None => {
                if header.file_index != 0 {
                    return Err(ReplayError::NotFirst { index: header.file_index });
                }
                if header.core_version != CORE_VERSION && !any_version {
                    return Err(ReplayError::CoreVersion { recorded: header.core_version });
                }
                let seed = header.rng_seed;
                replay = Some(match header.rng {
                    RngKind::ChaCha20 => Either::ChaCha20(
                        Replay::new(&header, ChaCha20Rng::from_seed(seed)).map_err(ReplayError::Config)?,
                    ),
                    RngKind::ChaCha8 => {
                        Either::ChaCha8(Replay::new(&header, ChaCha8Rng::from_seed(seed)).map_err(ReplayError::Config)?)
                    }
                });
            }
            Some(r) => {
                let continued = match r {
                    Either::ChaCha20(r) => r.next_file(&header),
                    Either::ChaCha8(r) => r.next_file(&header),
                };
                continued.map_err(|e| ReplayError::Continuity { file: file.clone(), error: e.to_string() })?;
            }
        }
        let Some(r) = replay.as_mut() else {
            return Err(ReplayError::NotFirst { index: header.file_index });
        };
        let start = header.start;
        loop {
            let record = match reader.next() {
                None => {
                    let ending = Ending::Unclosed;
                    return Ok(Replayed { steps, files: index + 1, span, events, ending });
                }
                Some(Err(swim_core::record::LogError::Cut { offset })) => {
                    let ending = Ending::Cut { file, offset };
                    return Ok(Replayed { steps, files: index + 1, span, events, ending });
                }
                Some(Err(error)) => return Err(log_error(error)),
                Some(Ok(record)) => record,
            };
            match record {
                Record::Step(step) => {
                    step_events.clear();
                    let at = step.at.saturating_duration_since(start);
                    let result = match r {
                        Either::ChaCha20(r) => r.step(&step, |e| step_events.push(e.clone())),
                        Either::ChaCha8(r) => r.step(&step, |e| step_events.push(e.clone())),
                    };
                    result.map_err(|divergence| ReplayError::Diverged {
                        at,
                        input: step.input.to_string(),
                        divergence: Box::new(divergence),
                    })?;
                    steps += 1;
                    events += step_events.len() as u64;
                    span = span.max(at);
                    on_step(at, &step.input, &step_events);
                }
                Record::Rotated => break,
                Record::End { .. } => {
                    return Ok(Replayed { steps, files: index + 1, span, events, ending: Ending::Closed });
                }
            }
        }
    }
    unreachable!("the loop returns")
}

#[cfg(test)]
mod tests {
    use swim_core::Config;

    use super::*;
    use crate::node::DriverNode;
    use crate::options::Options;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("swim-driver-record-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    /// Two nodes wired back to back in memory, the first recorded into
    /// `record`; runs `rounds` exchanges.
    fn run(record: RecordOptions, rounds: usize) {
        let mut a = Options::new("127.0.0.1:0".parse().unwrap(), Config::local());
        a.record = Some(record);
        a.rng_seed = Some(1);
        let mut b = Options::new("127.0.0.1:0".parse().unwrap(), Config::local());
        b.rng_seed = Some(2);
        let mut a = DriverNode::start(&a, "127.0.0.1:5001".parse().unwrap()).unwrap();
        let mut b = DriverNode::start(&b, "127.0.0.1:5002".parse().unwrap()).unwrap();
        let mut flights: Vec<(u8, Vec<u8>)> = Vec::new();
        let drain = |n: &mut DriverNode, to_a: bool, flights: &mut Vec<(u8, Vec<u8>)>| {
            while let Some(tx) = n.poll_transmit() {
                flights.push((u8::from(to_a), tx.payload.to_vec()));
            }
            n.drain_events(|_| {});
        };
        b.join(&["127.0.0.1:5001".parse().unwrap()]);
        drain(&mut b, true, &mut flights);
        for i in 0..rounds {
            for (to_a, bytes) in std::mem::take(&mut flights) {
                if to_a == 1 {
                    let _ = a.handle_datagram("127.0.0.1:5002".parse().unwrap(), &bytes);
                    drain(&mut a, false, &mut flights);
                } else {
                    let _ = b.handle_datagram("127.0.0.1:5001".parse().unwrap(), &bytes);
                    drain(&mut b, true, &mut flights);
                }
            }
            if i % 3 == 0 {
                a.broadcast(&[i as u8; 200]).unwrap();
                drain(&mut a, false, &mut flights);
            }
            a.handle_timeout();
            drain(&mut a, false, &mut flights);
            b.handle_timeout();
            drain(&mut b, true, &mut flights);
        }
    }

    #[test]
    fn a_log_rotates_replays_across_its_files_and_stops_at_its_limit() {
        let d = dir("rotate");
        let path = d.join("a.log");
        let mut options = RecordOptions::new(&path, MIN_MAX_BYTES);
        options.file_bytes = 16 << 10;
        run(options, 3000);
        let r = replay::<SocketAddr>(&path, false, |_, _, _| {}).unwrap();
        assert!(r.files >= 8, "{} files", r.files);
        // The limit: every file together within it, and the run's end record
        // written when it was reached (the node itself ran on).
        let total: u64 = (0..r.files).map(|i| fs::metadata(file_path(&path, i)).unwrap().len()).sum();
        assert!(total <= MIN_MAX_BYTES, "{total} bytes");
        assert_eq!(r.ending, Ending::Closed);
        assert!(!file_path(&path, r.files).exists());
        // A file in the middle missing: named.
        fs::remove_file(file_path(&path, 2)).unwrap();
        let e = replay::<SocketAddr>(&path, false, |_, _, _| {}).unwrap_err();
        assert!(matches!(&e, ReplayError::Continuity { file, .. } if *file == file_path(&path, 2)), "{e}");
        // A later file given first is refused.
        let e = replay::<SocketAddr>(&file_path(&path, 1), false, |_, _, _| {}).unwrap_err();
        assert!(e.to_string().contains("starts at the run's first file"), "{e}");
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn a_restart_moves_the_earlier_log_aside_and_bad_paths_refuse_to_start() {
        let d = dir("restart");
        let path = d.join("a.log");
        run(RecordOptions::new(&path, MIN_MAX_BYTES), 50);
        let first = fs::read(&path).unwrap();
        run(RecordOptions::new(&path, MIN_MAX_BYTES), 60);
        let prev = d.join("a.log.prev");
        assert_eq!(fs::read(&prev).unwrap(), first, "the earlier run's log is kept");
        assert!(replay::<SocketAddr>(&prev, false, |_, _, _| {}).is_ok());
        assert!(replay::<SocketAddr>(&path, false, |_, _, _| {}).is_ok());
        let mut o = Options::new("127.0.0.1:0".parse().unwrap(), Config::local());
        o.record = Some(RecordOptions::new(d.join("no/such/dir/a.log"), MIN_MAX_BYTES));
        let e = DriverNode::start(&o, "127.0.0.1:5001".parse().unwrap()).unwrap_err();
        assert!(e.to_string().starts_with("cannot record into "), "{e}");
        let _ = fs::remove_dir_all(&d);
    }
}
