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

use swim_core::record::{Header, Recorder, RngKind};
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
    /// Start recording `node`, just built from `seed` with a
    /// transmit buffer of `buffer_len`: moves an earlier run's log aside,
    /// creates the first file and writes the header.
    pub(crate) fn start(
        options: &RecordOptions,
        node: &mut SwimNode,
        seed: [u8; 32],
        buffer_len: usize,
    ) -> io::Result<Self> {
        move_aside(&options.path)?;
        let file = File::create(&options.path)?;
        let header = Header::for_node(
            node,
            format!("swim-driver {}", env!("CARGO_PKG_VERSION")),
            RngKind::ChaCha20,
            seed,
            buffer_len as u32,
        );
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
