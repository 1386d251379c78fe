//! In steady state, handling a datagram and producing the reply allocate
//! nothing: a counting global allocator watches a converged pair of nodes
//! probing each other, and a 50-member cluster whose datagrams carry
//! piggybacked updates, indirect probes and periodic digest exchanges; and a
//! pair that seals every datagram (and opens, and checks for replays); and
//! probes that compare and repair the broadcasts nodes hold.

// A global allocator is the one place unsafe is unavoidable; it only counts
// and forwards to the system allocator.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use swim_core::{Config, Instant, Node, NodeId, State};

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    /// Bytes allocated and not freed while counting.
    static LIVE: Cell<i64> = const { Cell::new(0) };
}

fn live(delta: i64) {
    if COUNTING.with(Cell::get) {
        LIVE.with(|l| l.set(l.get() + delta));
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.with(|a| a.set(a.get() + 1));
        }
        live(layout.size() as i64);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        live(-(layout.size() as i64));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.with(|a| a.set(a.get() + 1));
        }
        live(new_size as i64 - layout.size() as i64);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn counted<T>(f: impl FnOnce() -> T) -> (T, u64) {
    ALLOCATIONS.with(|a| a.set(0));
    COUNTING.with(|c| c.set(true));
    let out = f();
    COUNTING.with(|c| c.set(false));
    (out, ALLOCATIONS.with(Cell::get))
}

type TestNode = Node<NodeId, Xoshiro256PlusPlus>;

/// Heap bytes `f` leaves allocated (what it returns holds them).
fn held<T>(f: impl FnOnce() -> T) -> (T, i64) {
    LIVE.with(|l| l.set(0));
    let (out, _) = counted(f);
    (out, LIVE.with(Cell::get))
}

/// Every node of a large simulation, and of a large cluster, holds what a
/// fresh node holds, whatever its members cost: at 5,000 nodes each
/// kilobyte is 5 MB of the simulator's peak. A reserve sized by a bound
/// (4,096 queued transfers at 80 bytes each would be 320 KB a node)
/// instead of by steady state shows here.
#[test]
fn a_fresh_node_holds_a_few_kilobytes() {
    let (node, heap) =
        held(|| Node::new(NodeId(0), Config::lan(), Xoshiro256PlusPlus::seed_from_u64(1), Instant::ZERO).unwrap());
    let inline = size_of::<TestNode>();
    println!("a fresh node: {inline} B inline, {heap} B on the heap");
    assert!(inline + heap as usize <= 12 * 1024, "{inline} B inline + {heap} B on the heap");
    drop(node);
}

/// Run two nodes against each other (zero latency) until `end`, returning
/// the datagrams exchanged. `bufs` are preallocated so the loop itself
/// allocates nothing.
fn run<R: rand_core::RngCore>(
    nodes: &mut [Node<NodeId, R>; 2],
    now: &mut Instant,
    end: Instant,
    wire: &mut [Vec<u8>; 2],
    lens: &mut [usize; 2],
) -> u64 {
    let mut exchanged = 0;
    loop {
        let mut progressed = false;
        for i in 0..2 {
            let (a, b) = if i == 0 { (0, 1) } else { (1, 0) };
            while let Some(tx) = nodes[a].poll_transmit(&mut wire[a]) {
                lens[a] = tx.len;
                nodes[b].handle_datagram(*now, NodeId(a as u32), &wire[a][..tx.len]).unwrap();
                exchanged += 1;
                progressed = true;
            }
            while nodes[a].poll_event().is_some() {}
        }
        if progressed {
            continue;
        }
        let next = nodes.iter().filter_map(Node::poll_timeout).min().unwrap();
        if next > end {
            return exchanged;
        }
        *now = (*now).max(next);
        for n in nodes.iter_mut() {
            n.handle_timeout(*now);
        }
    }
}

#[test]
fn steady_state_probing_allocates_nothing() {
    let mk = |id| {
        Node::new(NodeId(id), Config::local(), Xoshiro256PlusPlus::seed_from_u64(u64::from(id)), Instant::ZERO).unwrap()
    };
    let mut nodes = [mk(0), mk(1)];
    let mut now = Instant::ZERO;
    let mut wire = [vec![0u8; 1400], vec![0u8; 1400]];
    let mut lens = [0usize; 2];
    nodes[1].join(now, &[NodeId(0)]);
    // Converge and let every queue drain and grow to its working size.
    run(&mut nodes, &mut now, Instant::from_secs(60), &mut wire, &mut lens);
    assert_eq!(nodes[0].member(&NodeId(1)).map(|m| m.state), Some(State::Alive));
    assert_eq!(nodes[0].gossip_backlog() + nodes[1].gossip_backlog(), 0, "news still queued");

    let end = now + Duration::from_secs(30);
    let (exchanged, allocations) = counted(|| run(&mut nodes, &mut now, end, &mut wire, &mut lens));
    assert!(exchanged >= 50, "the pair kept probing each other ({exchanged} datagrams)");
    assert_eq!(allocations, 0, "{allocations} allocations over {exchanged} datagrams in steady state");
    assert_eq!(nodes[0].member(&NodeId(1)).map(|m| m.state), Some(State::Alive));
}

#[test]
fn steady_state_sealed_probing_allocates_nothing() {
    use rand_chacha::ChaCha8Rng;
    use swim_core::{Encryption, Key};
    let mut config = Config::local();
    config.encryption = Encryption::Require;
    let key = Key::from_bytes([7; 32]);
    let mk = |id| {
        let rng = ChaCha8Rng::seed_from_u64(u64::from(id));
        Node::with_keys(NodeId(id), config.clone(), rng, Instant::ZERO, std::slice::from_ref(&key)).unwrap()
    };
    let mut nodes = [mk(0), mk(1)];
    let mut now = Instant::ZERO;
    let mut wire = [vec![0u8; 1400], vec![0u8; 1400]];
    let mut lens = [0usize; 2];
    nodes[1].join(now, &[NodeId(0)]);
    run(&mut nodes, &mut now, Instant::from_secs(60), &mut wire, &mut lens);
    assert_eq!(nodes[0].member(&NodeId(1)).map(|m| m.state), Some(State::Alive));
    assert_eq!(wire[0][0], swim_core::seal::SEALED_VERSION, "the pair seals");

    let end = now + Duration::from_secs(30);
    let (exchanged, allocations) = counted(|| run(&mut nodes, &mut now, end, &mut wire, &mut lens));
    assert!(exchanged >= 50, "the pair kept probing each other ({exchanged} datagrams)");
    assert_eq!(allocations, 0, "{allocations} allocations over {exchanged} sealed datagrams in steady state");
    assert_eq!(nodes[0].stats().rejected.total(), 0);
}

/// `n` nodes on a zero-latency network where datagrams from each node `a` to
/// node `a + 7` are lost, so every node reaches one member only through
/// indirect probes (and no member is ever unreachable through them); the
/// seed, node 1, is reachable from everyone so every join gets through.
struct Net {
    nodes: Vec<TestNode>,
    now: Instant,
    buf: Vec<u8>,
}

impl Net {
    fn new(n: u32, config: &Config) -> Net {
        let nodes = (0..n)
            .map(|id| {
                let rng = Xoshiro256PlusPlus::seed_from_u64(u64::from(id) + 100);
                Node::new(NodeId(id), config.clone(), rng, Instant::ZERO).unwrap()
            })
            .collect();
        Net { nodes, now: Instant::ZERO, buf: vec![0u8; 1400] }
    }

    fn run(&mut self, end: Instant) -> u64 {
        let mut delivered = 0;
        loop {
            let mut progressed = false;
            for a in 0..self.nodes.len() {
                while let Some(tx) = self.nodes[a].poll_transmit(&mut self.buf) {
                    progressed = true;
                    if tx.to != NodeId(1) && tx.to.0 as usize == (a + 7) % self.nodes.len() {
                        continue;
                    }
                    let b = tx.to.0 as usize;
                    let _ = self.nodes[b].handle_datagram(self.now, NodeId(a as u32), &self.buf[..tx.len]);
                    delivered += 1;
                }
                while self.nodes[a].poll_event().is_some() {}
            }
            if progressed {
                continue;
            }
            let next = self.nodes.iter().filter_map(Node::poll_timeout).min().unwrap();
            if next > end {
                return delivered;
            }
            self.now = self.now.max(next);
            let now = self.now;
            for n in &mut self.nodes {
                n.handle_timeout(now);
            }
        }
    }
}

#[test]
fn a_cluster_with_piggybacked_news_indirect_probes_and_digests_allocates_nothing() {
    let mut config = Config::lan();
    config.push_pull_interval = Duration::from_secs(5);
    let n = 50u32;
    let mut net = Net::new(n, &config);
    let seeds = [NodeId(1)];
    for id in 0..n {
        if id != 1 {
            net.nodes[id as usize].join(Instant::ZERO, &seeds);
        }
    }
    // Converge, let every queue reach its working size, and warm up.
    net.run(Instant::from_secs(120));
    for node in &net.nodes {
        let missing: Vec<_> = (0..n)
            .filter(|&id| node.member(&NodeId(id)).is_none_or(|m| !m.state.is_live()))
            .map(|id| (id, node.member(&NodeId(id)).map(|m| (m.state, m.incarnation))))
            .collect();
        assert!(missing.is_empty(), "{:?} misses {missing:?}", node.local_addr());
    }

    // News every node already holds and passes on: member 3 refuted an
    // accusation (Alive one incarnation up). Every node learns it at once, so
    // what follows only piggybacks it (the merge of news already known).
    let refuted = net.nodes[3].incarnation() + 1;
    let alive = swim_core::wire::Message::Update(swim_core::wire::Update {
        member: NodeId(3),
        state: State::Alive,
        incarnation: refuted,
        instance: net.nodes[3].instance(),
        meta: &[],
        accuser: None,
    });
    let mut datagram = vec![0u8; 256];
    let len = swim_core::wire::encode_datagram(&mut datagram, b"", &[alive]).unwrap();
    let now = net.now;
    for node in net.nodes.iter_mut().filter(|node| *node.local_addr() != NodeId(3)) {
        node.handle_datagram(now, NodeId(3), &datagram[..len]).unwrap();
    }
    let backlog: usize = net.nodes.iter().map(Node::gossip_backlog).sum();
    assert!(backlog >= n as usize - 1, "the news is queued everywhere ({backlog} items)");

    let before: Vec<_> = net.nodes.iter().map(|node| node.stats().clone()).collect();
    let end = net.now + Duration::from_secs(30);
    let (delivered, allocations) = counted(|| net.run(end));
    let sum = |f: fn(&swim_core::Stats) -> u64| -> u64 {
        net.nodes.iter().zip(&before).map(|(node, b)| f(node.stats()) - f(b)).sum()
    };
    let piggybacked = sum(|s| s.updates_sent);
    let indirect = sum(|s| s.indirect_probes);
    let exchanges = sum(|s| s.digests_sent);
    assert!(piggybacked >= 200, "{piggybacked} updates piggybacked");
    assert!(indirect >= 10, "{indirect} indirect probes");
    assert!(exchanges >= 20, "{exchanges} digests");
    assert_eq!(allocations, 0, "{allocations} allocations over {delivered} datagrams in steady state");
    for node in &net.nodes {
        assert_eq!(node.live_members(), n);
    }
}

/// Anti-entropy for broadcasts in steady state: every node has delivered
/// the same 40 broadcasts, in an order of its own, and keeps the last 32 it
/// got, so the nodes' holdings differ; every probe then carries a summary,
/// the acks of differing members list ids, and probers send repairs that
/// their receivers recognise as already delivered. None of it allocates.
#[test]
fn probes_comparing_and_repairing_held_broadcasts_allocate_nothing() {
    // No periodic exchanges: the other cluster test covers those.
    let config = Config { push_pull_interval: Duration::ZERO, ..Config::lan() };
    let n = 20u32;
    let mut net = Net::new(n, &config);
    for id in (0..n).filter(|&id| id != 1) {
        net.nodes[id as usize].join(Instant::ZERO, &[NodeId(1)]);
    }
    net.run(Instant::from_secs(30));
    let payload = [7u8; 40];
    let mut datagram = vec![0u8; 256];
    let now = net.now;
    for (i, node) in net.nodes.iter_mut().enumerate() {
        for k in 0..40u64 {
            let id = (k + i as u64 * 3) % 40 + 1;
            let user = swim_core::wire::Message::User { id, origin: NodeId(0), payload: &payload };
            let len = swim_core::wire::encode_datagram(&mut datagram, b"", &[user]).unwrap();
            let from = NodeId(if i == 1 { 2 } else { 1 });
            node.handle_datagram(now, from, &datagram[..len]).unwrap();
        }
    }
    // Let the push gossip of all that drain (and its queues shrink back).
    net.run(now + Duration::from_secs(25));
    assert_eq!(net.nodes.iter().map(Node::gossip_backlog).sum::<usize>(), 0);

    let before: Vec<_> = net.nodes.iter().map(|node| node.stats().clone()).collect();
    let end = net.now + Duration::from_secs(25);
    let (delivered, allocations) = counted(|| net.run(end));
    let sum = |f: fn(&swim_core::Stats) -> u64| -> u64 {
        net.nodes.iter().zip(&before).map(|(node, b)| f(node.stats()) - f(b)).sum()
    };
    let repaired = sum(|s| s.broadcasts_repaired);
    assert!(repaired >= 100, "{repaired} broadcasts sent as repairs");
    assert_eq!(sum(|s| s.broadcasts_delivered), 0, "every repair was of a broadcast already delivered");
    assert_eq!(allocations, 0, "{allocations} allocations over {delivered} datagrams in steady state");
}
