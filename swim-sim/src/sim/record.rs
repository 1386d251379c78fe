//! Recording one simulated node (`swim-sim --record-node ID FILE`): its
//! first process, from the instant it is built, through swim-core's
//! [`Recorder`], so that `swim-sim replay FILE` replays it like a log a
//! driver wrote.

use swim_core::record::{Header, Recorder, RngKind};
use swim_core::{Input, Instant, NodeId, Outcome};

use super::SimNode;

/// The recorder of one node's first process and the log it writes.
#[derive(Debug)]
pub(super) struct Recording {
    /// The recorded node's id.
    id: u32,
    /// Set while the process runs; `None` before it starts and after it
    /// stopped (cleanly or not).
    recorder: Option<Recorder<NodeId>>,
    /// Whether the process was recorded and has stopped: a later process
    /// under the same id (a restart) is not recorded.
    over: bool,
    log: Vec<u8>,
}

impl Recording {
    pub(super) fn new(id: u32) -> Self {
        Recording { id, recorder: None, over: false, log: Vec::new() }
    }

    /// `node` (id `id`) was just built with a generator seeded
    /// with `rng_seed` (`ChaCha8Rng::get_seed`): start its log if it is the
    /// recorded node's first process. Its transmits are polled into
    /// buffers of `buffer_len` bytes.
    pub(super) fn started(&mut self, id: u32, node: &mut SimNode, rng_seed: [u8; 32], buffer_len: usize) {
        if id != self.id || self.over || self.recorder.is_some() {
            return;
        }
        let header = Header::for_node(
            node,
            concat!("swim-sim ", env!("CARGO_PKG_VERSION")).into(),
            RngKind::ChaCha8,
            rng_seed,
            buffer_len as u32,
        );
        let mut recorder = Recorder::new(node, header);
        recorder.begin_file(&mut self.log);
        self.recorder = Some(recorder);
    }

    /// Feed `input` to node `id` at `now`: through the recorder if it is
    /// the one recorded.
    pub(super) fn feed(
        recording: Option<&mut Self>,
        id: u32,
        node: &mut SimNode,
        now: Instant,
        input: Input<'_, NodeId>,
    ) -> Outcome {
        match recording.filter(|r| r.id == id).and_then(|r| r.recorder.as_mut().map(|rec| (rec, &mut r.log))) {
            Some((recorder, log)) => recorder.handle(node, now, input, log),
            None => node.handle(now, input),
        }
    }

    /// Node `id`'s outputs have been drained: close its step.
    pub(super) fn drained(&mut self, id: u32, node: &mut SimNode) {
        if id == self.id {
            if let Some(recorder) = self.recorder.as_mut() {
                recorder.end_step(node, &mut self.log);
            }
        }
    }

    /// Node `id` stops cleanly (it left, or the run ended): end its log.
    pub(super) fn finish(&mut self, id: u32, node: &mut SimNode) {
        if id == self.id {
            if let Some(mut recorder) = self.recorder.take() {
                recorder.finish(node, &mut self.log);
                self.over = true;
            }
        }
    }

    /// Node `id` stopped, cleanly or not: nothing more goes into the log
    /// (a crashed process writes no end record).
    pub(super) fn stopped(&mut self, id: u32) {
        if id == self.id && self.recorder.take().is_some() {
            self.over = true;
        }
    }

    /// The recorded node's id.
    pub(super) fn id(&self) -> u32 {
        self.id
    }

    /// The log written so far.
    pub(super) fn log(&self) -> &[u8] {
        &self.log
    }
}
