//! One node's work per protocol period, at 1,000, 10,000 and 100,000
//! members in its table; each should stay flat as the table grows (SWIM's
//! promise: a member's load per period does not depend on the cluster's size).
//!
//! - `probe_round/N`: the probe timer fires, the PING is encoded, its ACK is
//!   handled;
//! - `piggyback/N`: a PING arrives carrying one fresh update, which is merged
//!   and piggybacked on the ACK with the other news still queued;
//! - `digest_exchange/N`: a peer whose table agrees sends its digest and the
//!   node answers with its own (a periodic exchange happens once every
//!   `push_pull_interval`, scaled with log2 of the cluster, so amortised per
//!   period it is this figure divided by 30 or more probe intervals).
//!
//! Run: `cargo bench -p swim-core --bench period`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use std::hint::black_box;
use std::time::Duration;
use swim_core::wire::{encode_datagram, messages, open_frame, Limits, Message, Update};
use swim_core::{Config, Instant, Node, NodeId, State};

type BenchNode = Node<NodeId, Xoshiro256PlusPlus>;

const SIZES: [u32; 3] = [1_000, 10_000, 100_000];
const LIMITS: Limits = Limits { max_meta: 512, max_user_payload: 1024 };

fn alive(id: u32, incarnation: u32) -> Message<'static, NodeId> {
    Message::Update(Update {
        member: NodeId(id),
        state: State::Alive,
        incarnation,
        instance: id,
        meta: &[],
        accuser: None,
    })
}

/// A node at `me` in a cluster of members 0..=n+1 (it knows them all, at
/// incarnation 0), with the news of learning them already sent.
fn node_knowing(me: u32, n: u32, config: &Config) -> BenchNode {
    let rng = Xoshiro256PlusPlus::seed_from_u64(u64::from(me) + 7);
    let mut node = Node::new(NodeId(me), config.clone(), rng, Instant::ZERO).unwrap();
    let mut ids = (0..=n + 1).filter(|&id| id != me).peekable();
    let mut buf = vec![0u8; 1400];
    let from = NodeId(if me == 0 { 1 } else { 0 });
    while ids.peek().is_some() {
        let mut msgs = vec![Message::PushPull { reply_wanted: false, join: false, exchange: 1 }];
        while let Some(&id) = ids.peek() {
            msgs.push(alive(id, 0));
            if encode_datagram(&mut buf, &[], &msgs).is_err() {
                msgs.pop();
                break;
            }
            ids.next();
        }
        let len = encode_datagram(&mut buf, &[], &msgs).unwrap();
        node.handle_datagram(Instant::ZERO, from, &buf[..len]).unwrap();
        while node.poll_transmit(&mut buf).is_some() {}
        while node.poll_event().is_some() {}
    }
    // Send the learned members' one echo each (to many members, so no
    // destination repeats), so the queue is empty.
    let ping = datagram(&[Message::Ping { seq: 1 }]);
    let mut k = 0;
    while node.gossip_backlog() > 0 {
        k += 1;
        let peer = NodeId(if me == 0 { 1 + k % n } else { k % n });
        node.handle_datagram(Instant::ZERO, peer, &ping).unwrap();
        while node.poll_transmit(&mut buf).is_some() {}
    }
    node
}

fn datagram(msgs: &[Message<'_, NodeId>]) -> Vec<u8> {
    let mut buf = vec![0u8; 1400];
    let len = encode_datagram(&mut buf, &[], msgs).unwrap();
    buf.truncate(len);
    buf
}

fn first_message(bytes: &[u8]) -> Option<Message<'_, NodeId>> {
    let body = open_frame(bytes, &[], 1400).ok()?;
    messages::<NodeId>(body, LIMITS).next()?.ok()
}

/// LAN settings without the inbound budgets: the benches feed one node
/// datagrams at one instant, and measure the handling, not the refusal a
/// budget would soon make of it.
fn lan() -> Config {
    let off = swim_core::Rate { per_second: 0, burst: 0 };
    Config { inbound_per_source: off, inbound_total: off, ..Config::lan() }
}

/// No periodic exchanges, so the probe timer is the only one that fires.
fn probing_only() -> Config {
    Config { push_pull_interval: Duration::ZERO, ..lan() }
}

fn probe_round(c: &mut Criterion) {
    let mut group = c.benchmark_group("period/probe_round");
    for n in SIZES {
        let mut node = node_knowing(0, n, &probing_only());
        let mut buf = vec![0u8; 1400];
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                let now = node.poll_timeout().unwrap();
                node.handle_timeout(now);
                while let Some(tx) = node.poll_transmit(&mut buf) {
                    if let Some(Message::Ping { seq }) = first_message(&buf[..tx.len]) {
                        let ack = datagram(&[Message::Ack { seq }]);
                        node.handle_datagram(now, tx.to, &ack).unwrap();
                    }
                }
                black_box(node.stats().probes)
            })
        });
    }
    group.finish();
}

fn piggyback(c: &mut Criterion) {
    let mut group = c.benchmark_group("period/piggyback");
    for n in SIZES {
        let mut node = node_knowing(0, n, &probing_only());
        let mut buf = vec![0u8; 1400];
        let mut round = 0u32;
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                round += 1;
                // A different member's refutation each time, one incarnation up.
                let member = 1 + round % n;
                let news = datagram(&[Message::Ping { seq: round }, alive(member, round / n + 1)]);
                node.handle_datagram(Instant::ZERO, NodeId(1 + (round + 1) % n), &news).unwrap();
                black_box(node.poll_transmit(&mut buf).map(|tx| tx.len))
            })
        });
    }
    group.finish();
}

fn digest_exchange(c: &mut Criterion) {
    let mut group = c.benchmark_group("period/digest_exchange");
    for n in SIZES {
        let config = lan();
        let mut node = node_knowing(0, n, &config);
        // The peer knows the same members, so its digest equals ours; it
        // probes nobody before its first periodic exchange, which would
        // change its view (nobody answers its probes here).
        let quiet =
            Config { probe_interval: Duration::from_secs(3600), push_pull_interval: Duration::from_secs(1), ..lan() };
        let mut peer = node_knowing(n + 1, n, &quiet);
        let mut buf = vec![0u8; 1400];
        let hashes = loop {
            let now = peer.poll_timeout().unwrap();
            peer.handle_timeout(now);
            let mut found = None;
            while let Some(tx) = peer.poll_transmit(&mut buf) {
                if let Some(Message::Digest { hashes, .. }) = first_message(&buf[..tx.len]) {
                    found = Some(hashes.to_vec());
                }
            }
            if let Some(h) = found {
                break h;
            }
        };
        let mut exchange = 0u32;
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                exchange = exchange.wrapping_add(1);
                let digest = datagram(&[Message::Digest { reply_wanted: true, exchange, hashes: &hashes }]);
                node.handle_datagram(Instant::ZERO, NodeId(n + 1), &digest).unwrap();
                let mut sent = 0;
                while let Some(tx) = node.poll_transmit(&mut buf) {
                    sent += tx.len;
                }
                black_box(sent)
            })
        });
        // Agreeing tables: the answer is one digest, never a state transfer.
        assert_eq!(node.stats().sent.push_pull, node.stats().digests_sent, "tables differ at {n}");
    }
    group.finish();
}

criterion_group!(benches, probe_round, piggyback, digest_exchange);
criterion_main!(benches);
