//! kinship-core 0.5 on the harness: one `Node` per node, its LAN preset
//! in plaintext, its joins and push-pulls on the harness's modelled TCP.

use kinship_core::{
    Command, Config, Event, Identity, Instant, Node, Security, StreamEvent as KStream, StreamId, Transmit,
};
use rand_core::RngCore;
use swim_sim::seed::{self, Stream};

use crate::harness::{addr, id_of, Belief, Nanos, Out, Protocol, StreamEvent, StreamOp, Wakes};

/// The epoch every node starts its life with. kinship's own driver passes
/// the wall-clock milliseconds of the process start; a node without an
/// epoch neither advertises nor sends digest push-pulls and falls back to
/// whole-table exchanges, which is not how kinship runs. A fixed value
/// keeps the run deterministic (2025-12-02T00:00:00Z).
const EPOCH: u64 = 1_764_633_600_000;

/// Every kinship node of the run.
pub struct Kinship {
    config: Config,
    seed: u64,
    nodes: Vec<Option<Node>>,
    wakes: Wakes,
}

impl Kinship {
    /// `n` nodes with kinship's LAN preset, without encryption.
    pub fn new(n: u32, seed: u64) -> Self {
        Kinship {
            config: Config::lan(Security::InsecurePlaintext),
            seed,
            nodes: (0..n).map(|_| None).collect(),
            wakes: Wakes::new(n as usize),
        }
    }

    fn drain(&mut self, id: u32, out: &mut Out<Nanos>) {
        let Some(node) = self.nodes[id as usize].as_mut() else { return };
        while let Some(tx) = node.poll_transmit() {
            match tx {
                Transmit::Datagram { to, payload } => {
                    if let Some(to) = id_of(&to) {
                        out.datagram(to, &payload);
                    }
                }
                Transmit::Connect { conn, to } => {
                    if let Some(to) = id_of(&to) {
                        out.streams.push(StreamOp::Connect { conn: conn.to_raw(), to });
                    }
                }
                Transmit::Stream { conn, frame } => {
                    out.streams.push(StreamOp::Write { conn: conn.to_raw(), bytes: frame });
                }
                Transmit::Close { conn } => out.streams.push(StreamOp::Close { conn: conn.to_raw() }),
            }
        }
        while let Some(event) = node.poll_event() {
            let (member, belief) = match event {
                Event::MemberJoined(m) | Event::MemberRecovered(m) => (m, Belief::Up),
                Event::MemberSuspect(m) => (m, Belief::Suspect),
                Event::MemberDead(m) | Event::MemberLeft(m) => (m, Belief::Down),
                _ => continue,
            };
            if let Some(subject) = id_of(&member.addr) {
                out.beliefs.push((subject, belief));
            }
        }
        let deadline = node.poll_timeout().map(Instant::as_nanos);
        self.wakes.arm(id, deadline, out);
    }
}

impl Protocol for Kinship {
    type Timer = Nanos;

    fn settings(&self) -> serde_json::Value {
        let c = &self.config;
        serde_json::json!({
            "preset": "Config::lan(Security::InsecurePlaintext)",
            "identity": "name \"n<id>\" and SocketAddr, epoch set (as kinship's driver does), so digest push-pull is on",
            "probe_interval_ms": c.probe_interval.as_millis() as u64,
            "probe_timeout_ms": c.probe_timeout.as_millis() as u64,
            "indirect_checks": c.indirect_checks,
            "suspicion": format!(
                "Lifeguard: from {} x max(1, log10 N) x probe_interval up to {}x that, shrinking with {} confirmations",
                c.suspicion_mult, c.suspicion_max_mult, c.expected_confirmations
            ),
            "gossip": format!("{} members every {} ms", c.gossip_nodes, c.gossip_interval.as_millis()),
            "retransmit_mult": c.retransmit_mult,
            "push_pull_interval_s": c.push_pull_interval.as_secs(),
            "push_pull_digest": c.push_pull_digest,
            "tcp_fallback_ping": c.tcp_fallback_ping,
            "tcp_timeout_s": c.tcp_timeout.as_secs(),
            "streams": "joins, push-pulls and fallback pings run on modelled TCP: see the scenario's `streams`",
        })
    }

    fn start(&mut self, id: u32, now: Nanos, out: &mut Out<Nanos>) {
        let mut rng = seed::rng(self.seed, Stream::Node { id, generation: 0 });
        let mut nonce_key = [0u8; 32];
        rng.fill_bytes(&mut nonce_key);
        let node_seed = rng.next_u64();
        // The name and the preset are valid by construction: a failure is a
        // bug in this driver, not an input.
        let me = Identity::new(format!("n{id}"), addr(id))
            .unwrap_or_else(|e| panic!("kinship refused name n{id}: {e:?}"))
            .with_epoch(EPOCH);
        let node = Node::new(self.config.clone(), me, Instant::from_nanos(now), node_seed, &nonce_key)
            .unwrap_or_else(|e| panic!("kinship refused its LAN preset: {e:?}"));
        self.nodes[id as usize] = Some(node);
        self.drain(id, out);
    }

    fn join(&mut self, id: u32, seed: u32, now: Nanos, out: &mut Out<Nanos>) {
        if let Some(node) = self.nodes[id as usize].as_mut() {
            node.command(Instant::from_nanos(now), Command::Join { seeds: vec![addr(seed)] });
        }
        self.drain(id, out);
    }

    fn datagram(&mut self, id: u32, now: Nanos, from: u32, data: &[u8], out: &mut Out<Nanos>) {
        if let Some(node) = self.nodes[id as usize].as_mut() {
            node.handle_datagram(Instant::from_nanos(now), addr(from), data);
        }
        self.drain(id, out);
    }

    fn timer(&mut self, id: u32, now: Nanos, timer: Nanos, out: &mut Out<Nanos>) {
        if !self.wakes.fire(id, timer) {
            return;
        }
        if let Some(node) = self.nodes[id as usize].as_mut() {
            node.handle_timeout(Instant::from_nanos(now));
        }
        self.drain(id, out);
    }

    fn stream(&mut self, id: u32, now: Nanos, conn: u64, ev: StreamEvent<'_>, out: &mut Out<Nanos>) {
        if let Some(node) = self.nodes[id as usize].as_mut() {
            let ev = match ev {
                StreamEvent::Frame(frame) => KStream::Frame(frame),
                StreamEvent::Closed => KStream::Closed,
                StreamEvent::Failed => KStream::Failed,
            };
            node.handle_stream(Instant::from_nanos(now), StreamId::from_raw(conn), ev);
        }
        self.drain(id, out);
    }

    fn inbound_conn(&self, index: u64) -> u64 {
        StreamId::inbound(index).to_raw()
    }

    fn live_others(&self, id: u32) -> u64 {
        self.nodes[id as usize].as_ref().map_or(0, |n| n.members().count().saturating_sub(1) as u64)
    }

    fn crash(&mut self, id: u32) {
        self.nodes[id as usize] = None;
    }
}
