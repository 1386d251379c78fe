//! In steady state, handling a datagram and producing the reply allocate
//! nothing: a counting global allocator watches a converged pair of nodes
//! probing each other.

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
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.with(|a| a.set(a.get() + 1));
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.with(|a| a.set(a.get() + 1));
        }
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

/// Run two nodes against each other (zero latency) until `end`, returning
/// the datagrams exchanged. `bufs` are preallocated so the loop itself
/// allocates nothing.
fn run(
    nodes: &mut [TestNode; 2],
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
