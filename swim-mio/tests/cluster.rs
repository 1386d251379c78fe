//! In-process mio nodes on 127.0.0.1 with `Config::local()` timings:
//! convergence, failure detection, leave, metadata and broadcasts,
//! garbage, shutdown, and a mixed cluster with swim-tokio nodes.

use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use swim_mio::{Config, Event, Handle, LeaveOutcome, Options, State};

fn local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn start(seed: u64) -> (Handle, Receiver<Event>) {
    let mut options = Options::new(local(), Config::local());
    options.rng_seed = Some(seed);
    Handle::start(options).unwrap()
}

/// Start `n` nodes, all joined through the first.
fn cluster(n: usize) -> Vec<(Handle, Receiver<Event>)> {
    let nodes: Vec<_> = (0..n).map(|i| start(i as u64 + 1)).collect();
    let seed = nodes[0].0.local_addr();
    for (node, _) in &nodes[1..] {
        assert_eq!(node.join([seed]).unwrap(), 1);
    }
    nodes
}

/// Poll `check` every 50 ms until it is true or `limit` passes.
fn eventually(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether `node` sees every address in `addrs` in `state`.
fn sees(node: &Handle, addrs: &[SocketAddr], state: State) -> bool {
    let members = node.members().unwrap();
    addrs.iter().all(|a| members.iter().any(|m| m.addr == *a && m.state == state))
}

fn converged(handles: &[&Handle]) -> bool {
    let addrs: Vec<_> = handles.iter().map(|h| h.local_addr()).collect();
    handles.iter().all(|h| sees(h, &addrs, State::Alive))
}

#[test]
fn three_nodes_converge_and_a_stopped_one_is_failed_at_the_other_two() {
    let mut nodes = cluster(3);
    let handles: Vec<&Handle> = nodes.iter().map(|(h, _)| h).collect();
    eventually(Duration::from_secs(15), "all three see all three alive", || converged(&handles));
    let stats = nodes[0].0.stats().unwrap();
    assert_eq!(stats.members.alive, 3);
    assert!(stats.core.datagrams_in > 0 && stats.core.datagrams_out > 0);

    let (gone, _) = nodes.pop().unwrap();
    let gone_addr = gone.local_addr();
    gone.shutdown();
    assert!(gone.is_stopped());
    assert_eq!(gone.members(), Err(swim_mio::Error::Stopped));
    eventually(Duration::from_secs(30), "the other two see it failed", || {
        nodes.iter().all(|(h, _)| sees(h, &[gone_addr], State::Dead))
    });
    // And each reported it as an event.
    for (_, events) in &nodes {
        let failed = events.try_iter().any(|e| matches!(&e, Event::Failed(m) if m.addr == gone_addr));
        assert!(failed, "no Failed event about {gone_addr}");
    }
}

#[test]
fn a_graceful_leave_is_left_at_the_others() {
    let nodes = cluster(3);
    let handles: Vec<&Handle> = nodes.iter().map(|(h, _)| h).collect();
    eventually(Duration::from_secs(15), "converged", || converged(&handles));
    let leaver = &nodes[2].0;
    assert_eq!(leaver.leave_within(Duration::from_secs(10)).unwrap(), LeaveOutcome::Disseminated);
    let addr = leaver.local_addr();
    eventually(Duration::from_secs(10), "the others see it left", || {
        nodes[..2].iter().all(|(h, _)| sees(h, &[addr], State::Left))
    });
}

#[test]
fn metadata_and_a_broadcast_reach_the_others_through_a_callback() {
    let seen: Arc<Mutex<Vec<Event>>> = Arc::default();
    let sink = Arc::clone(&seen);
    let mut options = Options::new(local(), Config::local());
    options.rng_seed = Some(7);
    let watcher = Handle::start_with_callback(options, move |e| sink.lock().unwrap().push(e)).unwrap();
    let (origin, _events) = start(8);
    watcher.join([origin.local_addr()]).unwrap();
    eventually(Duration::from_secs(15), "converged", || converged(&[&watcher, &origin]));

    origin.set_metadata(&br#"{"name":"origin"}"#[..]).unwrap();
    origin.broadcast(&b"hello"[..]).unwrap();
    let from = origin.local_addr();
    eventually(Duration::from_secs(10), "the update and the broadcast arrive", || {
        let seen = seen.lock().unwrap();
        let updated = seen
            .iter()
            .any(|e| matches!(e, Event::Updated(m) if m.addr == from && &m.meta[..] == br#"{"name":"origin"}"#));
        let broadcast =
            seen.iter().filter(|e| matches!(e, Event::Broadcast { payload, .. } if &payload[..] == b"hello")).count();
        updated && broadcast == 1
    });
    let too_long = vec![0u8; Config::local().max_broadcast_len + 1];
    assert!(matches!(origin.broadcast(too_long), Err(swim_mio::Error::Rejected(_))));
}

#[test]
fn garbage_is_refused_and_counted_and_the_node_keeps_running() {
    let (node, _events) = start(11);
    let attacker = UdpSocket::bind(local()).unwrap();
    let garbage: [&[u8]; 4] = [b"", b"\x01\x00", &[0xff; 100], &vec![1u8; 70_000][..65_000]];
    for g in garbage {
        attacker.send_to(g, node.local_addr()).unwrap();
    }
    eventually(Duration::from_secs(5), "all four refused", || node.stats().unwrap().core.rejected.total() == 4);
    let (peer, _) = start(12);
    peer.join([node.local_addr()]).unwrap();
    eventually(Duration::from_secs(15), "still converges", || converged(&[&node, &peer]));
}

#[test]
fn shutdown_and_dropping_every_handle_release_the_port() {
    let (node, events) = start(21);
    let addr = node.local_addr();
    let clone = node.clone();
    node.shutdown();
    assert!(clone.is_stopped());
    assert_eq!(clone.stats(), Err(swim_mio::Error::Stopped));
    assert!(events.recv_timeout(Duration::from_secs(1)).is_err());
    drop(UdpSocket::bind(addr).expect("port released by shutdown"));

    let mut options = Options::new(addr, Config::local());
    options.rng_seed = Some(22);
    let (again, _events) = Handle::start(options).expect("rebind");
    drop(again);
    drop(UdpSocket::bind(addr).expect("port released by dropping the last handle"));
}

#[test]
fn a_full_event_channel_drops_and_counts_instead_of_blocking() {
    let mut options = Options::new(local(), Config::local());
    options.event_capacity = 1;
    options.rng_seed = Some(31);
    let (node, _unread) = Handle::start(options).unwrap();
    let others: Vec<_> = (0..3).map(|i| start(32 + i)).collect();
    for (o, _) in &others {
        o.join([node.local_addr()]).unwrap();
    }
    let mut all: Vec<&Handle> = others.iter().map(|(h, _)| h).collect();
    all.push(&node);
    eventually(Duration::from_secs(15), "converged", || converged(&all));
    let stats = node.stats().unwrap();
    assert_eq!(stats.driver.events_published, 1);
    assert!(stats.driver.events_dropped >= 2, "{:?}", stats.driver);
}

#[test]
fn seeds_that_do_not_resolve_are_an_error() {
    let (node, _events) = start(41);
    assert_eq!(node.join(["no-such-host.invalid:1"]), Err(swim_mio::Error::NoSeedResolved));
    assert_eq!(node.join(Vec::<SocketAddr>::new()), Ok(0));
}

#[test]
fn a_callback_that_calls_its_own_handle_gets_an_error_not_a_deadlock() {
    let slot: Arc<Mutex<Option<Handle>>> = Arc::default();
    let answers: Arc<Mutex<Vec<Result<usize, swim_mio::Error>>>> = Arc::default();
    let (inner_slot, inner_answers) = (Arc::clone(&slot), Arc::clone(&answers));
    let mut options = Options::new(local(), Config::local());
    options.rng_seed = Some(51);
    let node = Handle::start_with_callback(options, move |_event| {
        if let Some(me) = inner_slot.lock().unwrap().as_ref() {
            inner_answers.lock().unwrap().push(me.members().map(|m| m.len()));
        }
    })
    .unwrap();
    *slot.lock().unwrap() = Some(node.clone());
    let (peer, _events) = start(52);
    peer.join([node.local_addr()]).unwrap();
    eventually(Duration::from_secs(15), "the callback ran", || !answers.lock().unwrap().is_empty());
    assert_eq!(answers.lock().unwrap()[0], Err(swim_mio::Error::FromDriverThread));
    // The callback's clone keeps the node alive until shut down explicitly.
    node.shutdown();
    assert!(node.is_stopped());
    slot.lock().unwrap().take();
}
