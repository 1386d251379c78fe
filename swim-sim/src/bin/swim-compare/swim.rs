//! swim-core on the harness: one `Node<SocketAddr, NodeRng>` per node
//! (ChaCha, as in swim-sim).

use std::net::SocketAddr;

use swim_core::{Config, Event, Instant, Node};
use swim_sim::seed::{self, NodeRng};

use crate::harness::{addr, id_of, Belief, Nanos, Out, Protocol, StreamEvent, Wakes};

/// Every swim-core node of the run.
pub struct Swim {
    config: Config,
    seed: u64,
    nodes: Vec<Option<Node<SocketAddr, NodeRng>>>,
    wakes: Wakes,
    buf: Vec<u8>,
}

impl Swim {
    /// `n` nodes with swim-core's LAN preset.
    pub fn new(n: u32, seed: u64) -> Self {
        let config = Config::lan();
        Swim {
            buf: vec![0; config.max_datagram_size],
            config,
            seed,
            nodes: (0..n).map(|_| None).collect(),
            wakes: Wakes::new(n as usize),
        }
    }

    /// Drain what node `id` produced after an input.
    fn drain(&mut self, id: u32, out: &mut Out<Nanos>) {
        let Some(node) = self.nodes[id as usize].as_mut() else { return };
        while let Some(tx) = node.poll_transmit(&mut self.buf) {
            if let Some(to) = id_of(&tx.to) {
                out.datagram(to, &self.buf[..tx.len]);
            }
        }
        while let Some(event) = node.poll_event() {
            let belief = match &event {
                Event::Joined(_) | Event::Alive(_) => Belief::Up,
                Event::Suspected(_) => Belief::Suspect,
                Event::Failed(_) | Event::Left(_) => Belief::Down,
                _ => continue,
            };
            if let Some(subject) = event.member().and_then(|m| id_of(&m.addr)) {
                out.beliefs.push((subject, belief));
            }
        }
        let deadline = node.poll_timeout().map(Instant::as_nanos);
        self.wakes.arm(id, deadline, out);
    }
}

impl Protocol for Swim {
    type Timer = Nanos;

    fn settings(&self) -> serde_json::Value {
        let c = &self.config;
        serde_json::json!({
            "preset": "Config::lan()",
            "identity": "SocketAddr (IPv4, 7 bytes on the wire)",
            "probe_interval_ms": c.probe_interval.as_millis() as u64,
            "probe_timeout_ms": c.probe_timeout.as_millis() as u64,
            "indirect_checks": c.indirect_checks,
            "suspicion": format!(
                "Lifeguard: from {} x max(1, log10 N) x probe_interval up to {}x that, shrinking with confirmations",
                c.suspicion_mult, c.suspicion_max_timeout_mult
            ),
            "gossip": format!("{} members every {} ms", c.gossip_nodes, c.gossip_interval.as_millis()),
            "retransmit_mult": c.retransmit_mult,
            "push_pull_interval_s": c.push_pull_interval.as_secs(),
            "max_datagram_size": c.max_datagram_size,
            "lifeguard": c.lifeguard,
        })
    }

    fn start(&mut self, id: u32, now: Nanos, out: &mut Out<Nanos>) {
        let rng = seed::node_rng(self.seed, id, 0);
        // Config::lan() validates: a failure here is a bug in the preset.
        let node = Node::new(addr(id), self.config.clone(), rng, Instant::from_nanos(now))
            .unwrap_or_else(|e| panic!("swim-core rejected its own LAN preset: {e:?}"));
        self.nodes[id as usize] = Some(node);
        self.drain(id, out);
    }

    fn join(&mut self, id: u32, seed: u32, now: Nanos, out: &mut Out<Nanos>) {
        if let Some(node) = self.nodes[id as usize].as_mut() {
            node.join(Instant::from_nanos(now), &[addr(seed)]);
        }
        self.drain(id, out);
    }

    fn datagram(&mut self, id: u32, now: Nanos, from: u32, data: &[u8], out: &mut Out<Nanos>) {
        if let Some(node) = self.nodes[id as usize].as_mut() {
            // A refused datagram changes nothing and is counted by the node.
            let _ = node.handle_datagram(Instant::from_nanos(now), addr(from), data);
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

    fn stream(&mut self, _: u32, _: Nanos, _: u64, _: StreamEvent<'_>, _: &mut Out<Nanos>) {
        // swim-core runs on datagrams only and never opens a stream.
    }

    fn inbound_conn(&self, index: u64) -> u64 {
        index
    }

    fn live_others(&self, id: u32) -> u64 {
        self.nodes[id as usize].as_ref().map_or(0, |n| u64::from(n.live_members().saturating_sub(1)))
    }

    fn crash(&mut self, id: u32) {
        self.nodes[id as usize] = None;
    }
}
