//! No datagram is an amplifier or a lever: one datagram asks one thing,
//! acks count only from whom they were expected, sequences cannot be
//! guessed, no incarnation is beyond refutation, and no `now` freezes a node.

mod common;

use std::time::Duration;

use common::Cluster;
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use swim_core::wire::{encode_datagram, messages, open_frame, Limits, Message, Update};
use swim_core::{Config, Event, Instant, Node, NodeId, Rejected, State};

type TestNode = Node<NodeId, Xoshiro256PlusPlus>;

const LIMITS: Limits = Limits { max_meta: 512, max_user_payload: 1024 };

fn alive(member: u32, incarnation: u32) -> Message<'static, NodeId> {
    Message::Update(Update {
        member: NodeId(member),
        state: State::Alive,
        incarnation,
        instance: 1,
        meta: &[],
        accuser: None,
    })
}

fn dead(member: u32, incarnation: u32, accuser: u32) -> Message<'static, NodeId> {
    Message::Update(Update {
        member: NodeId(member),
        state: State::Dead,
        incarnation,
        instance: 0,
        meta: &[],
        accuser: Some(NodeId(accuser)),
    })
}

fn datagram(msgs: &[Message<'_, NodeId>]) -> Vec<u8> {
    let mut buf = vec![0u8; 65_536];
    let len = encode_datagram(&mut buf, b"", msgs).unwrap();
    buf.truncate(len);
    buf
}

/// A node at 0 that knows members 1..=n.
fn with_members(n: u32) -> TestNode {
    let mut node = Node::new(NodeId(0), Config::lan(), Xoshiro256PlusPlus::seed_from_u64(5), Instant::ZERO).unwrap();
    let mut msgs = vec![Message::PushPull { reply_wanted: false, join: false, exchange: 1 }];
    msgs.extend((1..=n).map(|i| alive(i, 0)));
    node.handle_datagram(Instant::ZERO, NodeId(1), &datagram(&msgs)).unwrap();
    outputs(&mut node);
    while node.poll_event().is_some() {}
    node
}

fn outputs(node: &mut TestNode) -> Vec<(NodeId, Vec<Message<'static, NodeId>>)> {
    let mut buf = vec![0u8; 1400];
    let mut out = Vec::new();
    while let Some(tx) = node.poll_transmit(&mut buf) {
        let bytes: &'static [u8] = Box::leak(buf[..tx.len].to_vec().into_boxed_slice());
        let body = open_frame(bytes, b"", 1400).unwrap();
        out.push((tx.to, messages::<NodeId>(body, LIMITS).collect::<Result<Vec<_>, _>>().unwrap()));
    }
    out
}

/// Run timers until the node pings someone; return (target, seq).
fn next_ping(node: &mut TestNode, until: Instant) -> Option<(NodeId, u32, Instant)> {
    while let Some(t) = node.poll_timeout() {
        if t > until {
            return None;
        }
        node.handle_timeout(t);
        for (to, msgs) in outputs(node) {
            if let Some(Message::Ping { seq }) = msgs.first() {
                return Some((to, *seq, t));
            }
        }
    }
    None
}

#[test]
fn a_datagram_of_six_hundred_pings_is_refused_whole() {
    let mut n = with_members(3);
    let pings: Vec<_> = (0..600).map(|i| Message::Ping { seq: i % 128 }).collect();
    let bytes = datagram(&pings);
    assert!(bytes.len() <= 1400, "{} bytes", bytes.len());
    assert_eq!(n.handle_datagram(Instant::from_millis(1), NodeId(77), &bytes), Err(Rejected::ExtraPrimary));
    assert!(outputs(&mut n).is_empty(), "a refused datagram gets nothing back");
    assert_eq!(n.stats().rejected.extra_primary, 1);
    // A primary after news, and anything after a digest, are refused too.
    let late = datagram(&[alive(2, 0), Message::Ping { seq: 1 }]);
    assert_eq!(n.handle_datagram(Instant::from_millis(2), NodeId(77), &late), Err(Rejected::ExtraPrimary));
    let digest = [0u8; 4];
    let after = datagram(&[Message::Digest { reply_wanted: true, exchange: 3, hashes: &digest }, alive(2, 0)]);
    assert_eq!(n.handle_datagram(Instant::from_millis(3), NodeId(77), &after), Err(Rejected::ExtraPrimary));
    assert_eq!(n.stats().rejected.extra_primary, 3);
    assert!(outputs(&mut n).is_empty());
}

#[test]
fn a_ping_carrying_news_gets_exactly_one_datagram_back() {
    let mut n = with_members(3);
    let mut msgs = vec![Message::Ping { seq: 9 }];
    msgs.extend((10..60).map(|i| alive(i, 0)));
    n.handle_datagram(Instant::from_millis(1), NodeId(77), &datagram(&msgs)).unwrap();
    let out = outputs(&mut n);
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(matches!(out[0].1.first(), Some(Message::Ack { seq: 9 })) && out[0].0 == NodeId(77));
}

#[test]
fn probe_sequences_cannot_be_guessed() {
    let mut n = with_members(8);
    let mut seqs = Vec::new();
    let mut until = Instant::from_secs(1);
    while seqs.len() < 8 {
        let (_, seq, t) = next_ping(&mut n, until + Duration::from_secs(5)).expect("the node probes");
        seqs.push(seq);
        until = t;
    }
    let steps: Vec<u32> = seqs.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
    assert!(steps.windows(2).any(|w| w[0] != w[1]), "sequences step evenly: {seqs:?}");
    assert!(seqs.iter().all(|&s| s > 1_000), "small sequences: {seqs:?}");
}

#[test]
fn an_ack_counts_only_from_the_member_probed() {
    let mut n = with_members(4);
    let (target, seq, _) = next_ping(&mut n, Instant::from_secs(5)).expect("the node probes");
    let impostor = NodeId(if target == NodeId(1) { 2 } else { 1 });
    let before = n.stats().unexpected_acks;
    let t = n.now() + Duration::from_millis(1);
    n.handle_datagram(t, impostor, &datagram(&[Message::Ack { seq }])).unwrap();
    assert_eq!(n.stats().unexpected_acks, before + 1, "an ack from another member is not the target's");
    // The real target's ack still counts.
    n.handle_datagram(t, target, &datagram(&[Message::Ack { seq }])).unwrap();
    assert_eq!(n.stats().unexpected_acks, before + 1);
    assert_eq!(n.stats().probe_round_trips.count(), 1);
}

#[test]
fn a_relay_forwards_only_the_targets_ack() {
    let mut n = with_members(5);
    n.handle_datagram(
        Instant::ZERO,
        NodeId(1),
        &datagram(&[Message::PingReq { seq: 77, target: NodeId(2), want_nack: false }]),
    )
    .unwrap();
    let Some(Message::Ping { seq }) =
        outputs(&mut n).into_iter().find(|(to, _)| *to == NodeId(2)).and_then(|(_, m)| m.first().cloned())
    else {
        panic!("no ping to the target")
    };
    n.handle_datagram(Instant::from_millis(5), NodeId(3), &datagram(&[Message::Ack { seq }])).unwrap();
    assert!(outputs(&mut n).iter().all(|(_, m)| !matches!(m.first(), Some(Message::Ack { .. }))));
    n.handle_datagram(Instant::from_millis(6), NodeId(2), &datagram(&[Message::Ack { seq }])).unwrap();
    assert!(outputs(&mut n)
        .iter()
        .any(|(to, m)| *to == NodeId(1) && matches!(m.first(), Some(Message::Ack { seq: 77 }))));
}

/// Hand a forged datagram from an outsider to every node but `spared`.
fn forge(c: &mut Cluster, msgs: &[Message<'_, NodeId>], spared: u32) {
    let bytes = datagram(msgs);
    let now = c.now;
    let ids: Vec<u32> = c.nodes.keys().copied().filter(|&id| id != spared).collect();
    for id in ids {
        let _ = c.node(id).handle_datagram(now, NodeId(99), &bytes);
        c.drain(id);
    }
}

#[test]
fn a_forged_dead_at_the_largest_incarnation_is_refuted() {
    let mut c = Cluster::joined(21, 5, Config::local());
    assert!(c.run_until(Duration::from_secs(5), Cluster::converged));
    // At u32::MAX the claim is older than the member's incarnation, as
    // serial numbers go: nobody takes it.
    forge(&mut c, &[dead(2, u32::MAX, 99)], 2);
    assert!((0..5).all(|o| c.view(o, 2) == Some(State::Alive)));
    // Half the number space ahead is as new as a claim can be: it is taken,
    // and member 2 out-bids it all the same, wrapping past u32::MAX.
    let inc = c.node(2).incarnation();
    let far = inc.wrapping_add((1 << 31) - 1);
    forge(&mut c, &[dead(2, far, 99)], 2);
    assert!((0..5).filter(|&o| o != 2).all(|o| c.view(o, 2) == Some(State::Dead)));
    let back = |c: &Cluster| (0..5).all(|o| c.view(o, 2) == Some(State::Alive));
    assert!(c.run_until(Duration::from_secs(5), back), "the forged death was not refuted within five probe periods");
    assert_eq!(c.node(2).incarnation(), far.wrapping_add(1));
    // And once more past the end of the number space.
    let inc = c.node(2).incarnation();
    forge(&mut c, &[dead(2, inc.wrapping_add(u32::MAX / 2), 99)], 2);
    assert!(c.run_until(Duration::from_secs(5), back), "a wrapped incarnation was not refuted");
    assert!(c.events.iter().filter(|(_, id, _)| *id == 2).all(|(_, _, e)| !matches!(e, Event::Failed(_))));
}

#[test]
fn a_node_handed_the_end_of_time_keeps_probing() {
    let mut n = with_members(4);
    n.handle_timeout(Instant::from_secs(1));
    n.handle_timeout(Instant::MAX);
    assert_eq!(n.stats().clock_jumps, 1);
    let mut t = Instant::from_secs(2);
    n.handle_timeout(t);
    assert_eq!(n.stats().clock_regressions, 1);
    let probes = n.stats().probes;
    while t < Instant::from_secs(60) {
        let next = n.poll_timeout().expect("a timer is armed");
        assert!(next > t, "deadline {next:?} not after now {t:?}");
        assert!(next <= t + Duration::from_secs(10), "deadline {next:?} too far after {t:?}");
        t = next;
        n.handle_timeout(t);
        outputs(&mut n);
    }
    // Nobody answers, so local health stretches the period; still it probes.
    assert!(n.stats().probes >= probes + 5, "{} probes in 58 s after the jump", n.stats().probes - probes);
}

#[test]
fn a_suspend_fires_a_capped_step_of_timers_not_the_whole_gap() {
    let mut n = with_members(4);
    n.handle_timeout(Instant::from_secs(1));
    let probes = n.stats().probes;
    // Eight hours asleep: the node wakes, counts the jump and probes on.
    n.handle_timeout(Instant::from_secs(8 * 3600));
    assert_eq!(n.stats().clock_jumps, 1);
    assert!(n.stats().probes <= probes + 1);
    let next = n.poll_timeout().unwrap();
    assert!(next > Instant::from_secs(8 * 3600) && next <= Instant::from_secs(8 * 3600 + 2));
}

#[test]
fn strangers_cannot_buy_the_table_with_a_digest_nor_aim_ping_requests() {
    let mut n = with_members(40);
    let zeros = [0u8; 64];
    let digest = datagram(&[Message::Digest { reply_wanted: true, exchange: 5, hashes: &zeros }]);
    n.handle_datagram(Instant::from_millis(1), NodeId(500), &digest).unwrap();
    assert!(outputs(&mut n).is_empty(), "a stranger's digest is not answered");
    // From a member the same digest is answered, with the differing state.
    n.handle_datagram(Instant::from_millis(2), NodeId(3), &digest).unwrap();
    assert!(outputs(&mut n).len() >= 2);
    let aimed = datagram(&[Message::PingReq { seq: 1, target: NodeId(900), want_nack: true }]);
    n.handle_datagram(Instant::from_millis(3), NodeId(3), &aimed).unwrap();
    assert!(outputs(&mut n).is_empty(), "nobody outside the table is pinged on request");
    assert_eq!(n.stats().strangers_refused, 2);
}

#[test]
fn digests_from_one_address_get_one_answer_waiting_at_a_time() {
    let mut n = with_members(40);
    let zeros = [0u8; 64];
    let digest = |exchange| datagram(&[Message::Digest { reply_wanted: true, exchange, hashes: &zeros }]);
    let is_state = |m: &[Message<'_, NodeId>]| matches!(m.first(), Some(Message::PushPull { reply_wanted: false, .. }));
    // Member 3 answers its verification ping: state goes to it at once.
    n.handle_datagram(Instant::from_millis(1), NodeId(3), &digest(5)).unwrap();
    let out = outputs(&mut n);
    let seq = out
        .iter()
        .find_map(|(to, m)| match m.first() {
            Some(Message::Ping { seq }) if *to == NodeId(3) => Some(*seq),
            _ => None,
        })
        .expect("a verification ping");
    n.handle_datagram(Instant::from_millis(2), NodeId(3), &datagram(&[Message::Ack { seq }])).unwrap();
    assert_eq!(outputs(&mut n).iter().filter(|(_, m)| is_state(m)).count(), 1);
    // Three more digests before the first answer leaves: one answer.
    for exchange in 6..9 {
        n.handle_datagram(Instant::from_millis(3), NodeId(3), &digest(exchange)).unwrap();
    }
    let out = outputs(&mut n);
    let digests = out.iter().filter(|(_, m)| matches!(m.first(), Some(Message::Digest { .. }))).count();
    assert_eq!((digests, out.iter().filter(|(_, m)| is_state(m)).count()), (3, 1));
    assert_eq!(n.stats().push_pull_folded, 2);
}

#[test]
fn a_flood_of_broadcasts_grows_nothing_past_its_bound() {
    let mut config = Config::lan();
    config.max_gossip_queue = 64;
    config.max_pending_events = 32;
    let mut n = Node::new(NodeId(0), config, Xoshiro256PlusPlus::seed_from_u64(5), Instant::ZERO).unwrap();
    for i in 0..4_000u64 {
        let msgs: Vec<_> = (0..5).map(|j| Message::User { id: i * 5 + j, origin: NodeId(7), payload: b"x" }).collect();
        n.handle_datagram(Instant::from_millis(i), NodeId(7), &datagram(&msgs)).unwrap();
        assert!(n.gossip_backlog() <= 64, "backlog {}", n.gossip_backlog());
    }
    assert!(n.stats().gossip_dropped >= 20_000 - 64);
    assert_eq!(std::iter::from_fn(|| n.poll_event()).count(), 32);
}

#[test]
fn a_flooding_source_is_held_to_its_budget_and_others_are_not() {
    let mut config = Config::lan();
    config.inbound_per_source = swim_core::Rate { per_second: 100, burst: 20 };
    config.inbound_total = swim_core::Rate { per_second: 1_000, burst: 200 };
    let mut n = Node::new(NodeId(0), config, Xoshiro256PlusPlus::seed_from_u64(5), Instant::ZERO).unwrap();
    let ping = datagram(&[Message::Ping { seq: 1 }]);
    let t = Instant::from_millis(1);
    let answered = (0..100).filter(|_| n.handle_datagram(t, NodeId(7), &ping).is_ok()).count();
    assert_eq!(answered, 20, "the burst, then nothing");
    assert_eq!(n.stats().rejected.rate_limited, 80);
    assert_eq!(outputs(&mut n).len(), 20);
    // Another source is answered, and the flooder again after a while.
    assert_eq!(n.handle_datagram(t, NodeId(8), &ping), Ok(()));
    let later = t + Duration::from_millis(100);
    assert_eq!((0..20).filter(|_| n.handle_datagram(later, NodeId(7), &ping).is_ok()).count(), 10);
    // A full-state request costs 4: five fit a fresh burst of 20, six do not.
    let request = datagram(&[Message::PushPull { reply_wanted: true, join: true, exchange: 1 }, alive(9, 0)]);
    for _ in 0..5 {
        assert_eq!(n.handle_datagram(later, NodeId(9), &request), Ok(()));
    }
    assert_eq!(n.handle_datagram(later, NodeId(9), &request), Err(Rejected::RateLimited(swim_core::Exhausted::Source)));
    // Many sources together run into the node's budget.
    let by_source = n.stats().rejected.rate_limited;
    let refused = (100..400u32).filter(|&s| n.handle_datagram(later, NodeId(s), &ping).is_err()).count() as u64;
    let r = n.stats().rejected;
    assert!(r.rate_limited_total >= 50, "{} over the node's budget", r.rate_limited_total);
    // (A few sources share a bucket with the exhausted ones.)
    assert_eq!(refused, r.rate_limited_total + r.rate_limited - by_source);
}

#[test]
fn a_spoofed_join_request_gets_one_bare_ping_back_until_its_source_answers() {
    let mut n = with_members(100);
    assert!(n.gossip_backlog() > 0, "news is queued, to show it is not sent to strangers");
    for victim in 500..520u32 {
        let request =
            datagram(&[Message::PushPull { reply_wanted: true, join: true, exchange: victim }, alive(victim, 0)]);
        n.handle_datagram(Instant::from_millis(1), NodeId(victim), &request).unwrap();
        let out = outputs(&mut n);
        let to_victim: Vec<_> = out.iter().filter(|(to, _)| *to == NodeId(victim)).collect();
        assert_eq!(to_victim.len(), 1, "{to_victim:?}");
        assert!(matches!(to_victim[0].1.as_slice(), [Message::Ping { .. }]), "a bare ping: {:?}", to_victim[0].1);
    }
    assert_eq!(n.stats().state_verifications, 20);
    // A stranger's ping gets an ack with nothing riding on it.
    n.handle_datagram(Instant::from_millis(2), NodeId(900), &datagram(&[Message::Ping { seq: 4 }])).unwrap();
    let out = outputs(&mut n);
    assert!(matches!(out.as_slice(), [(NodeId(900), m)] if m.len() == 1), "{out:?}");
    // A real joiner answers the ping, and gets the whole table.
    let request = datagram(&[Message::PushPull { reply_wanted: true, join: true, exchange: 1 }, alive(600, 0)]);
    n.handle_datagram(Instant::from_millis(3), NodeId(600), &request).unwrap();
    let Some(Message::Ping { seq }) =
        outputs(&mut n).into_iter().find(|(to, _)| *to == NodeId(600)).and_then(|(_, m)| m.first().cloned())
    else {
        panic!("no verification ping")
    };
    n.handle_datagram(Instant::from_millis(4), NodeId(600), &datagram(&[Message::Ack { seq }])).unwrap();
    let state: usize = outputs(&mut n)
        .iter()
        .filter(|(to, m)| {
            *to == NodeId(600) && matches!(m.first(), Some(Message::PushPull { reply_wanted: false, .. }))
        })
        .map(|(_, m)| m.len() - 1)
        .sum();
    assert!(state >= 100, "{state} members sent after the answer");
}

#[test]
fn a_flood_of_broadcasts_leaves_at_most_broadcast_keep_held_and_lists_no_more() {
    let config = Config { broadcast_keep: 16, ..Config::lan() };
    let mut n = Node::new(NodeId(0), config, Xoshiro256PlusPlus::seed_from_u64(5), Instant::ZERO).unwrap();
    n.handle_datagram(Instant::ZERO, NodeId(7), &datagram(&[alive(7, 0)])).unwrap();
    outputs(&mut n);
    for i in 0..2_000u64 {
        let msgs: Vec<_> = (0..5).map(|j| Message::User { id: i * 5 + j, origin: NodeId(7), payload: b"x" }).collect();
        n.handle_datagram(Instant::from_millis(i), NodeId(7), &datagram(&msgs)).unwrap();
    }
    outputs(&mut n);
    // A member's ping whose summary differs: the ack lists what is held,
    // the 16 latest.
    let ping = datagram(&[Message::Ping { seq: 3 }, Message::Held { count: 0, sum: 0 }]);
    n.handle_datagram(Instant::from_millis(2_000), NodeId(7), &ping).unwrap();
    let out = outputs(&mut n);
    let listed: Vec<u64> = out
        .iter()
        .flat_map(|(_, m)| m.iter())
        .filter_map(|m| match m {
            Message::HeldIds { ids } => Some(ids.chunks(8).map(|c| u64::from_be_bytes(c.try_into().unwrap()))),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(listed, (9_984..10_000).collect::<Vec<u64>>());
}
