//! The cost of sealing, one measurement each:
//! - `seal_1400` / `open_1400`: seal and open one 1,400-byte datagram
//!   (XChaCha20-Poly1305 over 1,344 bytes of messages, header and tag);
//! - `ping_to_ack_sealed` beside `ping_to_ack_plain`: a node opening a
//!   sealed Ping (with the replay check) and sealing its Ack, against the
//!   same in plaintext.
//!
//! Run: `cargo bench -p swim-core --bench seal`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rand_chacha::ChaCha12Rng;
use rand_core::SeedableRng;
use std::hint::black_box;
use swim_core::seal::{parse_sealed, seal_datagram, SEAL_OVERHEAD};
use swim_core::wire::{encode_datagram, Message, Update};
use swim_core::{Config, Encryption, Instant, Key, Node, NodeId, State};

const KEY: Key = Key::from_bytes([9; 32]);

fn seal_open(c: &mut Criterion) {
    let messages = vec![0x5au8; 1400 - 2 - SEAL_OVERHEAD - 4];
    let mut buf = vec![0u8; 1400];
    let nonce = [3u8; 24];
    let me = Some(&[0u8][..]);
    let len = seal_datagram(&mut buf, b"", &KEY, me, 1, 1, &nonce, &messages).unwrap();
    assert_eq!(len, 1400);
    let mut group = c.benchmark_group("seal");
    group.throughput(Throughput::Bytes(1400));
    group.bench_function("seal_1400", |b| {
        b.iter(|| black_box(seal_datagram(&mut buf, b"", &KEY, me, 1, 1, &nonce, black_box(&messages))))
    });
    let sealed = buf.clone();
    let mut out = vec![0u8; 1400];
    group.bench_function("open_1400", |b| {
        b.iter(|| {
            let parsed = parse_sealed(black_box(&sealed), b"").unwrap();
            KEY.open(&parsed, &[0], &mut out).unwrap();
            black_box(out[0])
        })
    });
    group.finish();
}

fn node(encryption: Encryption) -> Node<NodeId, ChaCha12Rng> {
    // Without the inbound budgets: every iteration comes from one source at
    // one instant, and the bench measures the handling, not the refusal.
    let off = swim_core::Rate { per_second: 0, burst: 0 };
    let mut config = Config { inbound_per_source: off, inbound_total: off, ..Config::lan() };
    config.encryption = encryption;
    let rng = ChaCha12Rng::seed_from_u64(7);
    let mut node = if encryption == Encryption::Off {
        Node::new(NodeId(0), config, rng, Instant::ZERO).unwrap()
    } else {
        Node::with_keys(NodeId(0), config, rng, Instant::ZERO, &[KEY]).unwrap()
    };
    let mut msgs = vec![Message::PushPull { reply_wanted: false, join: false, exchange: 1 }];
    msgs.extend((1..=50).map(|id| {
        Message::Update(Update {
            member: NodeId(id),
            state: State::Alive,
            incarnation: 0,
            instance: id,
            meta: &[],
            accuser: None,
        })
    }));
    let mut buf = vec![0u8; 1400];
    let len = encode_datagram(&mut buf, &[], &msgs).unwrap();
    let (len, bytes) = if encryption == Encryption::Off {
        (len, buf.clone())
    } else {
        let mut sealed = vec![0u8; 1500];
        let n = seal_datagram(&mut sealed, b"", &KEY, Some(&[0]), 99, 1, &[1; 24], &buf[2..len - 4]).unwrap();
        (n, sealed)
    };
    node.handle_datagram(Instant::ZERO, NodeId(1), &bytes[..len]).unwrap();
    while node.poll_transmit(&mut buf).is_some() {}
    while node.poll_event().is_some() {}
    node
}

fn ping_to_ack(c: &mut Criterion) {
    let mut group = c.benchmark_group("seal");
    group.throughput(Throughput::Elements(1));
    let mut ping = [0u8; 64];
    let ping_msg: Message<'_, NodeId> = Message::Ping { seq: 9 };
    let plain_len = encode_datagram(&mut ping, &[], &[ping_msg]).unwrap();
    let mut buf = [0u8; 1400];
    let mut plain = node(Encryption::Off);
    group.bench_function("ping_to_ack_plain", |b| {
        b.iter(|| {
            plain.handle_datagram(Instant::ZERO, NodeId(5), black_box(&ping[..plain_len])).unwrap();
            black_box(plain.poll_transmit(&mut buf).unwrap().len)
        })
    });
    let mut sealed = node(Encryption::Require);
    // A fresh counter per ping, as a live sender's would be (sealed outside
    // the timing: the cost of the sender is `seal_1400`'s).
    let mut counter = 0u64;
    group.bench_function("ping_to_ack_sealed", |b| {
        b.iter_batched(
            || {
                counter += 1;
                let mut d = vec![0u8; 128];
                let n = seal_datagram(&mut d, b"", &KEY, Some(&[0]), 5, counter, &[2; 24], &ping[2..plain_len - 4])
                    .unwrap();
                d.truncate(n);
                d
            },
            |d| {
                sealed.handle_datagram(Instant::ZERO, NodeId(5), black_box(&d)).unwrap();
                black_box(sealed.poll_transmit(&mut buf).unwrap().len)
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, seal_open, ping_to_ack);
criterion_main!(benches);
