//! What recording costs: datagrams a node handles per second (a ping
//! answered with an ack, then the drain) without a recorder, and with one
//! writing every step to a log file.
//!
//! `cargo bench -p swim-driver --bench record`

use std::hint::black_box;
use std::net::SocketAddr;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use swim_core::wire::{encode_datagram, Message};
use swim_core::Config;
use swim_driver::{DriverNode, Options, RecordOptions};

const A: &str = "127.0.0.1:5001";
const B: &str = "127.0.0.1:5002";

/// Node A (recorded into `record` if given), joined with node B.
fn joined(record: Option<RecordOptions>) -> DriverNode {
    let mut a = Options::new("127.0.0.1:0".parse().unwrap(), Config::lan());
    a.rng_seed = Some(1);
    a.record = record;
    let mut b = Options::new("127.0.0.1:0".parse().unwrap(), Config::lan());
    b.rng_seed = Some(2);
    let (a_addr, b_addr): (SocketAddr, SocketAddr) = (A.parse().unwrap(), B.parse().unwrap());
    let mut a = DriverNode::start(&a, a_addr).unwrap();
    let mut b = DriverNode::start(&b, b_addr).unwrap();
    b.join(&[a_addr]);
    let mut to_a: Vec<Vec<u8>> = Vec::new();
    let mut to_b: Vec<Vec<u8>> = Vec::new();
    while let Some(tx) = b.poll_transmit() {
        to_a.push(tx.payload.to_vec());
    }
    b.drain_events(|_| {});
    for _ in 0..10 {
        for d in std::mem::take(&mut to_a) {
            let _ = a.handle_datagram(b_addr, &d);
            while let Some(tx) = a.poll_transmit() {
                to_b.push(tx.payload.to_vec());
            }
            a.drain_events(|_| {});
        }
        for d in std::mem::take(&mut to_b) {
            let _ = b.handle_datagram(a_addr, &d);
            while let Some(tx) = b.poll_transmit() {
                to_a.push(tx.payload.to_vec());
            }
            b.drain_events(|_| {});
        }
    }
    assert_eq!(a.members().len(), 2, "joined");
    a
}

fn ping_to_ack(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("swim-record-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut ping = [0u8; 64];
    let len = encode_datagram::<SocketAddr>(&mut ping, &[], &[Message::Ping { seq: 9 }]).unwrap();
    let ping = &ping[..len];
    let from: SocketAddr = B.parse().unwrap();
    let mut group = c.benchmark_group("record");
    group.throughput(Throughput::Elements(1));
    for (name, record) in [("ping_to_ack", None), ("ping_to_ack_recorded", Some(dir.join("bench.log")))] {
        // A limit no run reaches: every step is written.
        let mut node = joined(record.map(|p| RecordOptions::new(p, 1 << 40)));
        group.bench_function(name, |b| {
            b.iter(|| {
                let _ = node.handle_datagram(from, black_box(ping));
                let mut sent = 0;
                while let Some(tx) = node.poll_transmit() {
                    sent += tx.payload.len();
                }
                node.drain_events(|_| {});
                black_box(sent)
            })
        });
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, ping_to_ack);
criterion_main!(benches);
