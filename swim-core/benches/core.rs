//! Hot paths of swim-core, one measurement each:
//! - `ping_to_ack`: handle a PING and encode the ACK it causes;
//! - `full_piggyback`: handle a 1400-byte datagram packed with updates;
//! - `push_pull_merge_1000`: merge a 1,000-member full state into a fresh node.
//!
//! Run: `cargo bench -p swim-core --bench core`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use std::hint::black_box;
use swim_core::wire::{encode_datagram, Message, Update};
use swim_core::{Config, Instant, Node, NodeId, State};

type BenchNode = Node<NodeId, Xoshiro256PlusPlus>;

/// LAN settings without the inbound budgets: every iteration here comes
/// from one source at one instant, and the benches measure the handling,
/// not the refusal a budget would soon make of it.
fn config() -> Config {
    let off = swim_core::Rate { per_second: 0, burst: 0 };
    Config { inbound_per_source: off, inbound_total: off, ..Config::lan() }
}

fn alive(id: u32) -> Message<'static, NodeId> {
    Message::Update(Update {
        member: NodeId(id),
        state: State::Alive,
        incarnation: 0,
        instance: id,
        meta: &[],
        accuser: None,
    })
}

/// A node at address 0 that knows members 1..=n.
fn node_with_members(n: u32) -> BenchNode {
    let mut node = Node::new(NodeId(0), config(), Xoshiro256PlusPlus::seed_from_u64(7), Instant::ZERO).unwrap();
    for chunk in full_state(n) {
        node.handle_datagram(Instant::ZERO, NodeId(1), &chunk).unwrap();
    }
    let mut buf = [0u8; 1400];
    while node.poll_transmit(&mut buf).is_some() {}
    while node.poll_event().is_some() {}
    node
}

/// Members 1..=n as push-pull reply datagrams of at most 1400 bytes.
fn full_state(n: u32) -> Vec<Vec<u8>> {
    let mut chunks = Vec::new();
    let mut id = 1;
    while id <= n {
        let mut msgs = vec![Message::PushPull { reply_wanted: false, join: false, exchange: 1 }];
        let mut buf = [0u8; 1400];
        while id <= n {
            msgs.push(alive(id));
            if encode_datagram(&mut buf, &[], &msgs).is_err() {
                msgs.pop();
                break;
            }
            id += 1;
        }
        let len = encode_datagram(&mut buf, &[], &msgs).unwrap();
        chunks.push(buf[..len].to_vec());
    }
    chunks
}

fn ping_to_ack(c: &mut Criterion) {
    let mut node = node_with_members(100);
    let mut ping = [0u8; 64];
    let ping_msg: Message<'_, NodeId> = Message::Ping { seq: 9 };
    let len = encode_datagram(&mut ping, &[], &[ping_msg]).unwrap();
    let ping = &ping[..len];
    let mut buf = [0u8; 1400];
    let mut group = c.benchmark_group("core");
    group.throughput(Throughput::Elements(1));
    group.bench_function("ping_to_ack", |b| {
        b.iter(|| {
            node.handle_datagram(Instant::ZERO, NodeId(5), black_box(ping)).unwrap();
            let tx = node.poll_transmit(&mut buf).unwrap();
            black_box(tx.len)
        })
    });
    group.finish();
}

fn full_piggyback(c: &mut Criterion) {
    let mut node = node_with_members(1000);
    let mut datagram = [0u8; 1400];
    let mut msgs = vec![Message::Ping { seq: 3 }];
    let mut id = 1;
    while encode_datagram(&mut datagram, &[], &msgs).is_ok() {
        msgs.push(alive(id));
        id += 1;
    }
    msgs.pop();
    let len = encode_datagram(&mut datagram, &[], &msgs).unwrap();
    let datagram = &datagram[..len];
    let mut buf = [0u8; 1400];
    let mut group = c.benchmark_group("core");
    group.throughput(Throughput::Bytes(len as u64));
    group.bench_function("full_piggyback", |b| {
        b.iter(|| {
            node.handle_datagram(Instant::ZERO, NodeId(5), black_box(datagram)).unwrap();
            black_box(node.poll_transmit(&mut buf).unwrap().len)
        })
    });
    group.finish();
    eprintln!("full_piggyback: {len}-byte datagram with {} updates", msgs.len() - 1);
}

fn push_pull_merge(c: &mut Criterion) {
    let chunks = full_state(1000);
    let mut group = c.benchmark_group("core");
    group.throughput(Throughput::Elements(1000));
    group.bench_function("push_pull_merge_1000", |b| {
        b.iter_batched(
            || Node::new(NodeId(0), config(), Xoshiro256PlusPlus::seed_from_u64(7), Instant::ZERO).unwrap(),
            |mut node: BenchNode| {
                for chunk in &chunks {
                    node.handle_datagram(Instant::ZERO, NodeId(1), chunk).unwrap();
                }
                black_box(node.live_members())
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, ping_to_ack, full_piggyback, push_pull_merge);
criterion_main!(benches);
