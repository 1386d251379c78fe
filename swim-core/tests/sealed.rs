//! Sealed clusters: outsiders (no key, another key, plaintext) are neither
//! heard nor seen, keys rotate under a live cluster, replays change nothing,
//! and the three migration steps interoperate pairwise.

mod common;

use std::time::Duration;

use common::Cluster;
use swim_core::seal::{parse_sealed, seal_datagram};
use swim_core::wire::{encode_datagram, Message, Update};
use swim_core::{Config, Encryption, Event, Instant, Key, NodeId, Rejected, SealError, State};

const K1: Key = Key::from_bytes([0x11; 32]);
const K2: Key = Key::from_bytes([0x22; 32]);
const OTHER: Key = Key::from_bytes([0x33; 32]);

fn config(encryption: Encryption) -> Config {
    let mut c = Config::local();
    c.encryption = encryption;
    c
}

/// `n` nodes sealing with `keys`, joined through node 0 and converged.
fn sealed_cluster(seed: u64, n: u32, keys: &[Key]) -> Cluster {
    let mut c = Cluster::new(seed);
    for id in 0..n {
        c.add_keyed(id, config(Encryption::Require), keys);
    }
    for id in 1..n {
        c.join(id, &[0]);
    }
    assert!(c.run_until(Duration::from_secs(10), Cluster::converged), "the sealed cluster did not converge");
    c
}

fn sees(c: &Cluster, observer: u32, member: u32) -> bool {
    c.view(observer, member).is_some_and(State::is_live)
}

fn no_failed(c: &Cluster) -> bool {
    c.events.iter().all(|(_, _, e)| !matches!(e, Event::Failed(_) | Event::Left(_)))
}

#[test]
fn outsiders_without_the_key_are_neither_heard_nor_seen() {
    let mut c = sealed_cluster(1, 4, &[K1]);
    c.strict = false;
    c.add_keyed(4, config(Encryption::Require), &[OTHER]);
    c.add(5, config(Encryption::Off));
    c.join(4, &[0, 1]);
    c.join(5, &[0, 1]);
    c.run_for(Duration::from_secs(20));
    for outsider in [4, 5] {
        assert!((0..4).all(|o| !sees(&c, o, outsider)), "outsider {outsider} is seen");
    }
    assert!(c.node(4).members().count() == 1 && c.node(5).members().count() == 1, "an outsider learned members");
    let refused = |c: &mut Cluster, id: u32| {
        let r = c.node(id).stats().rejected;
        (r.unknown_key, r.plaintext_refused)
    };
    let (unknown, plain) = (0..4).map(|id| refused(&mut c, id)).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    assert!(unknown > 0 && plain > 0, "refusals counted: {unknown} unknown key, {plain} plaintext");
    // Forged claims, in plaintext and under another key, change nothing.
    let mut buf = vec![0u8; 1400];
    let dead = Message::Update(Update {
        member: NodeId(2),
        state: State::Dead,
        incarnation: 7,
        instance: 0,
        meta: &[],
        accuser: Some(NodeId(5)),
    });
    let meta = Message::Update(Update {
        member: NodeId(3),
        state: State::Alive,
        incarnation: 9,
        instance: 1,
        meta: b"forged",
        accuser: None,
    });
    let len = encode_datagram(&mut buf, b"", &[dead.clone(), meta.clone()]).unwrap();
    let plain = buf[..len].to_vec();
    let now = c.now;
    assert_eq!(c.node(1).handle_datagram(now, NodeId(5), &plain), Err(Rejected::Seal(SealError::Plaintext)));
    // The same messages sealed under another key.
    let body = &plain[2..plain.len() - 4];
    let mut sealed = vec![0u8; 1400];
    let len = seal_datagram(&mut sealed, b"", &OTHER, Some(&[1]), 1, 1, &[9; 24], body).unwrap();
    let verdict = c.node(1).handle_datagram(now, NodeId(4), &sealed[..len]);
    assert_eq!(verdict, Err(Rejected::Seal(SealError::UnknownKey(OTHER.id()))));
    // Under another key that claims our key's id: the tag fails.
    let mut lying = sealed[..len].to_vec();
    lying[3..7].copy_from_slice(&K1.id().0);
    assert_eq!(c.node(1).handle_datagram(now, NodeId(4), &lying), Err(Rejected::Seal(SealError::BadTag)));
    c.run_for(Duration::from_secs(5));
    assert!((0..4).all(|o| (0..4).all(|m| c.view(o, m) == Some(State::Alive))));
    assert!((0..4).all(|o| c.node(o).member(&NodeId(3)).is_some_and(|m| m.meta.is_empty())));
    assert!(no_failed(&c));
    // Not even a suspicion: the outsiders' datagrams were refused unread.
    let suspected = c.events.iter().any(|(_, id, e)| *id < 4 && matches!(e, Event::Suspected(_)));
    assert!(!suspected, "an outsider made a member suspect");
}

#[test]
fn a_key_rotation_across_a_live_cluster_fails_nobody() {
    let mut c = sealed_cluster(2, 5, &[K1]);
    let step = |c: &mut Cluster, f: &dyn Fn(&mut Cluster, u32)| {
        for id in 0..5 {
            f(c, id);
            c.run_for(Duration::from_millis(700));
        }
        c.run_for(Duration::from_secs(2));
    };
    step(&mut c, &|c, id| {
        let now = c.now;
        c.node(id).install_key(now, &K2).unwrap();
    });
    step(&mut c, &|c, id| {
        let now = c.now;
        c.node(id).use_key(now, K2.id()).unwrap();
    });
    step(&mut c, &|c, id| {
        let now = c.now;
        c.node(id).remove_key(now, K1.id()).unwrap();
    });
    c.run_for(Duration::from_secs(10));
    assert!(c.converged());
    assert!(no_failed(&c), "a false failure during rotation");
    assert!((0..5).all(|id| c.node(id).keys().collect::<Vec<_>>() == [(K2.id(), true)]));
    // Datagrams sealed with the removed key are refused from now on.
    let mut buf = vec![0u8; 256];
    let len = seal_datagram(&mut buf, b"", &K1, Some(&[0]), 5, 1, &[1; 24], &[0x01, 0x05]).unwrap();
    let now = c.now;
    assert_eq!(
        c.node(0).handle_datagram(now, NodeId(3), &buf[..len]),
        Err(Rejected::Seal(SealError::UnknownKey(K1.id())))
    );
    let bad = c.node(0).remove_key(now, K2.id());
    assert!(bad.is_err(), "the primary key cannot be removed");
}

#[test]
fn a_captured_datagram_replayed_later_changes_nothing() {
    let mut c = sealed_cluster(3, 3, &[K1]);
    c.strict = false;
    c.run_for(Duration::from_secs(2));
    // Capture everything 1 sent to 2 over a few seconds.
    let mark = c.wire.len();
    c.run_for(Duration::from_secs(3));
    let captured: Vec<Vec<u8>> =
        c.wire[mark..].iter().filter(|(_, from, to, _)| *from == 1 && *to == 2).map(|w| w.3.clone()).collect();
    assert!(captured.len() >= 3, "captured {}", captured.len());
    for later in [Duration::from_secs(1), Duration::from_secs(3_600)] {
        c.run_for(later);
        let before = c.node(2).stats().clone();
        let now = c.now;
        for d in &captured {
            assert_eq!(c.node(2).handle_datagram(now, NodeId(1), d), Err(Rejected::Seal(SealError::Replayed)));
            c.drain(2);
        }
        let after = c.node(2).stats().clone();
        assert_eq!(after.rejected.replayed, before.rejected.replayed + captured.len() as u64);
        assert_eq!(after.received, before.received, "a replay was handled");
    }
    // Replayed from another address, a capture is no fresher: windows are
    // kept by sending process, named in the authenticated header.
    let sealed = parse_sealed(&captured[0], b"").unwrap();
    assert!(sealed.counter > 0);
    let now = c.now;
    assert_eq!(c.node(0).handle_datagram(now, NodeId(9), &captured[0]), Err(Rejected::Seal(SealError::Replayed)));
    assert!(c.converged() && no_failed(&c));
}

#[test]
fn changed_bytes_anywhere_fail_the_tag() {
    let mut c = sealed_cluster(4, 2, &[K1]);
    // Lost on the way, so node 0 has not seen the original.
    c.clogged.insert((1, 0));
    let mark = c.wire.len();
    c.run_for(Duration::from_millis(1500));
    let (_, from, to, d) = c.wire[mark..].iter().find(|w| w.1 == 1).cloned().expect("node 1 sent something");
    assert_eq!((from, to), (1, 0));
    let now = c.now;
    // The flags (bound becomes unbound), the key id, the sender, the
    // counter, the nonce, the ciphertext, the tag.
    for i in [2, 4, 9, 17, 30, d.len() / 2, d.len() - 1] {
        let mut bad = d.clone();
        bad[i] ^= 0x01;
        let verdict = c.node(0).handle_datagram(now, NodeId(1), &bad);
        assert!(
            matches!(verdict, Err(Rejected::Seal(SealError::BadTag | SealError::UnknownKey(_)))),
            "byte {i}: {verdict:?}"
        );
    }
    assert_eq!(c.node(0).stats().rejected.bad_tag + c.node(0).stats().rejected.unknown_key, 7);
    assert_eq!(c.node(0).handle_datagram(now, NodeId(1), &d), Ok(()), "the original still opens");
}

/// The three migration steps: nodes one step apart hear each other.
#[test]
fn each_migration_step_interoperates_with_the_next() {
    let steps = [Encryption::Off, Encryption::Accept, Encryption::Seal, Encryption::Require];
    for (i, pair) in steps.windows(2).enumerate() {
        let mut c = Cluster::new(10 + i as u64);
        for id in 0..4u32 {
            let e = pair[(id % 2) as usize];
            if e == Encryption::Off {
                c.add(id, config(e));
            } else {
                c.add_keyed(id, config(e), &[K1]);
            }
        }
        for id in 1..4 {
            c.join(id, &[0]);
        }
        assert!(c.run_until(Duration::from_secs(15), Cluster::converged), "{pair:?} did not converge");
        c.run_for(Duration::from_secs(10));
        assert!(c.converged() && no_failed(&c), "{pair:?}");
    }
    // Two steps apart they do not: plaintext-only cannot open sealed.
    let mut c = Cluster::new(20);
    c.strict = false;
    c.add(0, config(Encryption::Off));
    c.add_keyed(1, config(Encryption::Seal), &[K1]);
    c.join(1, &[0]);
    c.run_for(Duration::from_secs(10));
    assert!(!sees(&c, 0, 1));
    assert!(c.node(0).stats().rejected.sealed_unexpected > 0);
}

#[test]
fn sealing_needs_keys_and_keys_need_sealing() {
    use rand_chacha::ChaCha8Rng;
    use rand_core::SeedableRng;
    use swim_core::Node;
    let rng = || ChaCha8Rng::seed_from_u64(1);
    let e = Node::new(NodeId(0), config(Encryption::Seal), rng(), Instant::ZERO).unwrap_err();
    assert_eq!(e.to_string(), "encryption: accept, seal and require need at least one key");
    let e = Node::with_keys(NodeId(0), config(Encryption::Off), rng(), Instant::ZERO, &[K1]).unwrap_err();
    assert_eq!(e.field, "encryption");
    let e = Node::with_keys(NodeId(0), config(Encryption::Seal), rng(), Instant::ZERO, &[]).unwrap_err();
    assert_eq!(e.field, "keys");
    let mut plain = Node::new(NodeId(0), config(Encryption::Off), rng(), Instant::ZERO).unwrap();
    assert!(plain.install_key(Instant::ZERO, &K1).is_err());
}

#[test]
fn a_sealed_request_pays_its_full_cost_once_opened() {
    use rand_chacha::ChaCha8Rng;
    use rand_core::SeedableRng;
    use swim_core::{Exhausted, Node, Rate};
    let mut c = config(Encryption::Require);
    // A full-state request costs 4: one fits, and a second, were only its
    // first unit charged once opened, would too.
    c.inbound_per_source = Rate { per_second: 1, burst: 4 };
    let mut n = Node::with_keys(NodeId(0), c, ChaCha8Rng::seed_from_u64(3), Instant::ZERO, &[K1]).unwrap();
    let mut plain = vec![0u8; 256];
    let request: Message<'_, NodeId> = Message::PushPull { reply_wanted: true, join: true, exchange: 4 };
    let len = encode_datagram(&mut plain, b"", &[request]).unwrap();
    let seal = |counter| {
        let mut d = vec![0u8; 256];
        let n =
            seal_datagram(&mut d, b"", &K1, Some(&[0]), 8, counter, &[counter as u8; 24], &plain[2..len - 4]).unwrap();
        d.truncate(n);
        d
    };
    let t = Instant::from_millis(1);
    assert_eq!(n.handle_datagram(t, NodeId(8), &seal(1)), Ok(()));
    assert_eq!(n.handle_datagram(t, NodeId(8), &seal(2)), Err(Rejected::RateLimited(Exhausted::Source)));
    assert_eq!(n.stats().rejected.rate_limited, 1);
}

#[test]
fn a_capture_sent_to_another_member_fails_its_tag() {
    let mut c = sealed_cluster(5, 3, &[K1]);
    c.strict = false;
    // Hold back what 1 sends 2, and hand a fresh capture of it to 0.
    c.clogged.insert((1, 2));
    let mark = c.wire.len();
    c.run_for(Duration::from_millis(1500));
    let capture = c.wire[mark..].iter().rev().find(|w| w.1 == 1 && w.2 == 2).map(|w| w.3.clone()).expect("1 sent 2");
    let now = c.now;
    let before = c.node(0).stats().rejected.bad_tag;
    assert_eq!(c.node(0).handle_datagram(now, NodeId(1), &capture), Err(Rejected::Seal(SealError::BadTag)));
    assert_eq!(c.node(0).stats().rejected.bad_tag, before + 1);
    // Where it was sealed for, it opens.
    assert_eq!(c.node(2).handle_datagram(now, NodeId(1), &capture), Ok(()));
}

#[test]
fn only_a_join_request_may_be_sealed_for_no_receiver() {
    use rand_chacha::ChaCha8Rng;
    use rand_core::SeedableRng;
    use swim_core::Node;
    let mut n =
        Node::with_keys(NodeId(0), config(Encryption::Require), ChaCha8Rng::seed_from_u64(3), Instant::ZERO, &[K1])
            .unwrap();
    let unbound = |msgs: &[Message<'_, NodeId>], counter: u64| {
        let mut plain = vec![0u8; 256];
        let len = encode_datagram(&mut plain, b"", msgs).unwrap();
        let mut d = vec![0u8; 256];
        let n = seal_datagram(&mut d, b"", &K1, None, 8, counter, &[counter as u8; 24], &plain[2..len - 4]).unwrap();
        d.truncate(n);
        d
    };
    let t = Instant::from_millis(1);
    let ping = unbound(&[Message::Ping { seq: 3 }], 1);
    assert_eq!(n.handle_datagram(t, NodeId(8), &ping), Err(Rejected::Seal(SealError::Unbound)));
    assert_eq!(n.stats().rejected.unbound, 1);
    let join = unbound(&[Message::PushPull { reply_wanted: true, join: true, exchange: 1 }], 2);
    assert_eq!(n.handle_datagram(t, NodeId(8), &join), Ok(()));
}
