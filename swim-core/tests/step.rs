//! The step contract: [`Node::handle`] with an [`Input`] is the same as the
//! method it names; a recording node's output digest, taken after each
//! step's drain, tells equal runs from different ones at the step they part;
//! and a sealed node's log (datagrams as they opened, keys by id) replays
//! into a node without the keys with the same digest at every step.

// Nodes are addressed by index, as their ids are.
#![allow(clippy::needless_range_loop)]

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use swim_core::wire::Writer;
use swim_core::{Config, Encryption, Event, Input, Instant, Key, Member, Node, NodeId, Outcome, State};

type TestNode = Node<NodeId, ChaCha8Rng>;

fn node(id: u32, sealed: bool) -> TestNode {
    let rng = ChaCha8Rng::seed_from_u64(u64::from(id) + 40);
    let mut config = Config::local();
    let mut n = if sealed {
        config.encryption = Encryption::Require;
        Node::with_keys(NodeId(id), config, rng, Instant::ZERO, &[Key::from_bytes([1; 32])]).unwrap()
    } else {
        Node::new(NodeId(id), config, rng, Instant::ZERO).unwrap()
    };
    n.record_outputs();
    n
}

/// Three nodes on a 1 ms network; node 0 takes its inputs through
/// `handle` when `via_handle`, through the methods otherwise. `tamper`
/// flips a byte of the `n`th datagram delivered to node 0. Returns node
/// 0's digest after every step.
fn run(via_handle: bool, sealed: bool, tamper: Option<usize>) -> Vec<u64> {
    let mut nodes: Vec<TestNode> = (0..3).map(|id| node(id, sealed)).collect();
    let mut digests = Vec::new();
    let mut in_flight: Vec<InFlight> = Vec::new();
    let mut buf = vec![0u8; 1400];
    let mut delivered_to_0 = 0;
    let mut now = Instant::ZERO;
    let seeds = [NodeId(1)];
    let step = |nodes: &mut Vec<TestNode>, i: usize, now: Instant, input: Input<'_, NodeId>| {
        if i == 0 && via_handle {
            let _ = nodes[0].handle(now, input);
        } else {
            let n = &mut nodes[i];
            match input {
                Input::Datagram { from, bytes } => {
                    let _ = n.handle_datagram(now, *from, bytes);
                }
                Input::Timeout => n.handle_timeout(now),
                Input::Join(seeds) => n.join(now, seeds),
                Input::SetMetadata(meta) => n.set_metadata(now, meta).unwrap(),
                Input::Broadcast(payload) => n.broadcast(now, payload).unwrap(),
                other => panic!("not scripted: {other:?}"),
            }
        }
    };
    for i in [0, 2] {
        step(&mut nodes, i, now, Input::Join(&seeds));
    }
    for round in 0..4000u32 {
        // Drain every node; node 0's digest closes its step.
        for i in 0..3 {
            while let Some(tx) = nodes[i].poll_transmit(&mut buf) {
                in_flight.push((now + std::time::Duration::from_millis(1), i as u32, tx.to.0, buf[..tx.len].to_vec()));
            }
            while nodes[i].poll_event().is_some() {}
            if i == 0 {
                digests.push(nodes[0].take_step_outputs().unwrap().digest);
            }
        }
        if round == 1500 {
            step(&mut nodes, 0, now, Input::SetMetadata(b"role=db"));
            continue;
        }
        if round == 2500 {
            step(&mut nodes, 0, now, Input::Broadcast(b"hello"));
            continue;
        }
        let Some((next, packet)) = next_wakeup(&nodes, &mut in_flight) else { break };
        now = now.max(next);
        if let Some((from, to, mut bytes)) = packet {
            if to == 0 {
                if tamper == Some(delivered_to_0) {
                    let last = bytes.len() - 1;
                    bytes[last] ^= 1;
                }
                delivered_to_0 += 1;
            }
            step(&mut nodes, to as usize, now, Input::Datagram { from: &NodeId(from), bytes: &bytes });
        } else {
            for i in 0..3 {
                if nodes[i].poll_timeout().is_some_and(|t| t <= now) {
                    step(&mut nodes, i, now, Input::Timeout);
                }
            }
        }
    }
    assert!(nodes[2].member(&NodeId(0)).is_some_and(|m| m.state == State::Alive && m.meta == b"role=db"));
    digests
}

/// A datagram in flight: (delivery time, from, to, bytes).
type InFlight = (Instant, u32, u32, Vec<u8>);
/// A datagram delivered: (from, to, bytes).
type Delivery = (u32, u32, Vec<u8>);

/// The next thing to happen: the earliest datagram delivery (taken off
/// the list) or, if a timer is due first, that timer's time.
fn next_wakeup(nodes: &[TestNode], in_flight: &mut Vec<InFlight>) -> Option<(Instant, Option<Delivery>)> {
    in_flight.sort_by_key(|(t, from, to, _)| (*t, *from, *to));
    let next_packet = in_flight.first().map(|p| p.0);
    let next_timer = nodes.iter().filter_map(Node::poll_timeout).min();
    let next = [next_packet, next_timer].into_iter().flatten().min()?;
    if next_packet == Some(next) {
        let (_, from, to, bytes) = in_flight.remove(0);
        return Some((next, Some((from, to, bytes))));
    }
    Some((next, None))
}

#[test]
fn handle_is_the_methods_it_names() {
    for sealed in [false, true] {
        let a = run(true, sealed, None);
        let b = run(false, sealed, None);
        assert!(a.len() > 1000);
        assert_eq!(a, b, "sealed: {sealed}");
    }
}

#[test]
fn the_output_digest_parts_where_the_runs_part() {
    for sealed in [false, true] {
        let good = run(false, sealed, None);
        let bad = run(false, sealed, Some(40));
        let first = good.iter().zip(&bad).position(|(a, b)| a != b).expect("the runs part");
        assert!(first > 10, "they part at step {first}, before the tampered datagram could");
        // Tampering with the first datagram parts them sooner.
        let sooner = run(false, sealed, Some(0));
        assert!(good.iter().zip(&sooner).position(|(a, b)| a != b).is_some_and(|p| p < first));
    }
}

#[test]
fn events_have_a_canonical_encoding() {
    let e = Event::Joined(Member { addr: NodeId(5), state: State::Alive, incarnation: 2, meta: "ab".into() });
    let mut buf = [0u8; 32];
    let mut w = Writer::new(&mut buf);
    e.encode(&mut w).unwrap();
    assert_eq!(w.written(), [0, 5, 0, 0, 0, 0, 2, 0, 0, 0, 2, b'a', b'b']);
    let b: Event<NodeId> = Event::Broadcast { from: NodeId(1), payload: "x".into() };
    let mut buf = [0u8; 32];
    let mut w = Writer::new(&mut buf);
    b.encode(&mut w).unwrap();
    assert_eq!(w.written(), [6, 1, 0, 0, 0, 1, b'x']);
    let mut node = node(9, false);
    assert_eq!(
        node.handle(Instant::ZERO, Input::UseKey(Key::from_bytes([0; 32]).id())),
        Outcome::Key(swim_core::KeyError::NoKeyring)
    );
}

/// One logged step of node 0, as a recorder keeps it: sealed datagrams as
/// they opened (or why they were refused), never their ciphertext; keys by id.
#[derive(Debug, Clone)]
enum Logged {
    Sealed {
        from: NodeId,
        len: usize,
        opened: Option<(bool, swim_core::KeyId, u64, u64, Vec<u8>)>,
        refused: Option<swim_core::Rejected>,
    },
    Timeout,
    Join(Vec<NodeId>),
    InstallKeyId(swim_core::KeyId),
    UseKey(swim_core::KeyId),
    RemoveKey(swim_core::KeyId),
}

#[test]
fn a_sealed_node_replays_from_its_log_without_the_keys() {
    use swim_core::{Opened, SealedRecord};
    let k1 = Key::from_bytes([1; 32]);
    let k2 = Key::from_bytes([2; 32]);
    let mut nodes: Vec<TestNode> = (0..3).map(|id| node(id, true)).collect();
    let mut log: Vec<(Instant, Logged, u64)> = Vec::new();
    let mut in_flight: Vec<InFlight> = Vec::new();
    let mut buf = vec![0u8; 1400];
    let mut now = Instant::ZERO;
    let drain = |nodes: &mut Vec<TestNode>, in_flight: &mut Vec<_>, buf: &mut Vec<u8>, now: Instant| {
        for i in 0..3 {
            while let Some(tx) = nodes[i].poll_transmit(buf) {
                in_flight.push((now + std::time::Duration::from_millis(1), i as u32, tx.to.0, buf[..tx.len].to_vec()));
            }
            while nodes[i].poll_event().is_some() {}
        }
        nodes[0].take_step_outputs().unwrap().digest
    };
    for i in [0, 2] {
        nodes[i].join(now, &[NodeId(1)]);
    }
    let d = drain(&mut nodes, &mut in_flight, &mut buf, now);
    log.push((now, Logged::Join(vec![NodeId(1)]), d));
    let mut delivered = 0;
    for round in 0..3000u32 {
        // A rotation at node 0 (the others hold both keys from the start).
        let command = match round {
            1000 => Some(Logged::InstallKeyId(nodes[0].install_key(now, &k2).unwrap())),
            1200 => Some(Logged::UseKey(k2.id())),
            1400 => Some(Logged::RemoveKey(k1.id())),
            _ => None,
        };
        if round == 0 || round == 1200 {
            for i in 1..3 {
                nodes[i].install_key(now, &k2).unwrap();
                if round == 1200 {
                    nodes[i].use_key(now, k2.id()).unwrap();
                }
            }
        }
        if let Some(c) = command {
            match &c {
                Logged::UseKey(id) => nodes[0].use_key(now, *id).unwrap(),
                Logged::RemoveKey(id) => nodes[0].remove_key(now, *id).unwrap(),
                _ => {}
            }
            let d = drain(&mut nodes, &mut in_flight, &mut buf, now);
            log.push((now, c, d));
            continue;
        }
        let Some((next, packet)) = next_wakeup(&nodes, &mut in_flight) else { break };
        now = now.max(next);
        if let Some((from, to, mut bytes)) = packet {
            if to != 0 {
                let _ = nodes[to as usize].handle_datagram(now, NodeId(from), &bytes);
                drain(&mut nodes, &mut in_flight, &mut buf, now);
                continue;
            }
            delivered += 1;
            if delivered % 97 == 0 {
                bytes[30] ^= 1; // now and then one arrives damaged
            }
            let verdict = nodes[0].handle_datagram(now, NodeId(from), &bytes);
            let opened = nodes[0].last_opened().map(|o| (o.bound, o.key, o.sender, o.counter, o.messages.to_vec()));
            let refused = verdict.err().filter(|_| opened.is_none());
            let entry = Logged::Sealed { from: NodeId(from), len: bytes.len(), opened, refused };
            let d = drain(&mut nodes, &mut in_flight, &mut buf, now);
            log.push((now, entry, d));
        } else {
            for i in 1..3 {
                if nodes[i].poll_timeout().is_some_and(|t| t <= now) {
                    nodes[i].handle_timeout(now);
                }
            }
            if nodes[0].poll_timeout().is_some_and(|t| t <= now) {
                nodes[0].handle_timeout(now);
                let d = drain(&mut nodes, &mut in_flight, &mut buf, now);
                log.push((now, Logged::Timeout, d));
            } else {
                drain(&mut nodes, &mut in_flight, &mut buf, now);
            }
        }
    }
    assert!(nodes[1].member(&NodeId(0)).is_some_and(|m| m.state == State::Alive));
    assert!(nodes[0].stats().rejected.bad_tag > 0, "no damaged datagram was logged");

    // The replay: same seed, key ids only, the log's inputs.
    let mut config = Config::local();
    config.encryption = Encryption::Require;
    let rng = ChaCha8Rng::seed_from_u64(40);
    let mut replay = Node::replaying(NodeId(0), config, rng, Instant::ZERO, &[k1.id()]).unwrap();
    replay.record_outputs();
    for (step, (t, entry, digest)) in log.iter().enumerate() {
        let input = match entry {
            Logged::Sealed { from, len, opened: Some((bound, key, sender, counter, messages)), .. } => {
                Input::RecordedSealed {
                    from,
                    len: *len,
                    record: SealedRecord::Opened(Opened {
                        bound: *bound,
                        key: *key,
                        sender: *sender,
                        counter: *counter,
                        messages,
                    }),
                }
            }
            Logged::Sealed { from, len, refused: Some(why), .. } => {
                Input::RecordedSealed { from, len: *len, record: SealedRecord::Refused(*why) }
            }
            Logged::Sealed { .. } => unreachable!("neither opened nor refused"),
            Logged::Timeout => Input::Timeout,
            Logged::Join(seeds) => Input::Join(seeds),
            Logged::InstallKeyId(id) => Input::InstallKeyId(*id),
            Logged::UseKey(id) => Input::UseKey(*id),
            Logged::RemoveKey(id) => Input::RemoveKey(*id),
        };
        let _ = replay.handle(*t, input);
        while replay.poll_transmit(&mut buf).is_some() {}
        while replay.poll_event().is_some() {}
        assert_eq!(replay.take_step_outputs().unwrap().digest, *digest, "step {step} ({entry:?}) diverged");
    }
    assert!(log.len() > 500, "{} steps", log.len());
}
