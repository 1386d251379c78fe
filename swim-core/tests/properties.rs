//! Property tests: the codec round-trips every message and never panics on
//! arbitrary bytes; the merge order is a commutative, idempotent maximum in
//! which Dead and Left yield only to a higher incarnation; a node survives
//! any datagram.

use core::net::SocketAddr;

use proptest::prelude::*;
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use swim_core::wire::{self, encode_datagram, messages, open_frame, Limits, Message, Reader, Update};
use swim_core::{Address, Claim, Config, Instant, Node, NodeId, State};

const LIMITS: Limits = Limits { max_meta: 512, max_user_payload: 1024 };

fn state() -> impl Strategy<Value = State> {
    prop_oneof![Just(State::Alive), Just(State::Suspect), Just(State::Dead), Just(State::Left)]
}

fn claim() -> impl Strategy<Value = Claim> {
    (0u32..4, state()).prop_map(|(incarnation, state)| Claim { incarnation, state })
}

fn socket_addr() -> impl Strategy<Value = SocketAddr> + Clone {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::from((ip, port))),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::from((ip, port))),
    ]
}

/// Any message, with byte fields borrowed from `bytes`.
fn message<'a, A: Address + 'static>(
    addr: impl Strategy<Value = A> + Clone + 'static,
    bytes: &'a [u8],
) -> impl Strategy<Value = Message<'a, A>> + 'a {
    let update = (addr.clone(), state(), any::<u32>(), any::<u32>(), 0..=bytes.len().min(512), addr.clone()).prop_map(
        move |(member, state, incarnation, instance, meta_len, accuser)| {
            // Fields a state does not carry are not on the wire: normalise them.
            let (instance, meta, accuser) = match state {
                State::Alive => (instance, &bytes[..meta_len], None),
                State::Suspect | State::Dead => (0, &bytes[..0], Some(accuser)),
                State::Left => (0, &bytes[..0], None),
            };
            Message::Update(Update { member, state, incarnation, instance, meta, accuser })
        },
    );
    prop_oneof![
        any::<u32>().prop_map(|seq| Message::Ping { seq }),
        any::<u32>().prop_map(|seq| Message::Ack { seq }),
        any::<u32>().prop_map(|seq| Message::Nack { seq }),
        (any::<u32>(), addr.clone(), any::<bool>()).prop_map(|(seq, target, want_nack)| Message::PingReq {
            seq,
            target,
            want_nack
        }),
        update,
        (any::<u64>(), addr, 0..=bytes.len()).prop_map(move |(id, origin, n)| Message::User {
            id,
            origin,
            payload: &bytes[..n]
        }),
        (any::<bool>(), any::<bool>(), any::<u32>())
            .prop_map(|(reply_wanted, join, exchange)| { Message::PushPull { reply_wanted, join, exchange } }),
        (0..=64u8, any::<u64>()).prop_map(|(count, sum)| Message::Held { count, sum }),
        (0..=64usize).prop_map(move |n| Message::HeldIds { ids: &bytes[..(8 * n).min(bytes.len()) / 8 * 8] }),
    ]
}

fn round_trip<A: Address + PartialEq>(msgs: &[Message<'_, A>]) {
    let mut buf = vec![0u8; 65_536];
    let len = encode_datagram(&mut buf, b"prod", msgs).expect("fits");
    let body = open_frame(&buf[..len], b"prod", 65_536).expect("frame opens");
    let decoded: Vec<_> = messages::<A>(body, LIMITS).collect::<Result<_, _>>().expect("decodes");
    assert_eq!(decoded.as_slice(), msgs);
}

static PAYLOAD: [u8; 1024] = {
    let mut b = [0u8; 1024];
    let mut i = 0;
    while i < 1024 {
        b[i] = (i * 7 + 3) as u8;
        i += 1;
    }
    b
};

proptest! {
    #[test]
    fn every_message_round_trips_with_node_ids(msgs in prop::collection::vec(message(any::<u32>().prop_map(NodeId), &PAYLOAD), 0..8)) {
        round_trip(&msgs);
    }

    #[test]
    fn every_message_round_trips_with_socket_addresses(msgs in prop::collection::vec(message(socket_addr(), &PAYLOAD), 0..8)) {
        round_trip(&msgs);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let mut r = Reader::new(&bytes);
        while !r.is_empty() {
            if Message::<SocketAddr>::decode(&mut r, &LIMITS).is_err() {
                break;
            }
        }
        let _ = open_frame(&bytes, b"", 65_536);
        for m in messages::<NodeId>(&bytes, LIMITS) {
            let _ = m;
        }
    }

    #[test]
    fn a_corrupted_datagram_is_refused_whole(msgs in prop::collection::vec(message(any::<u32>().prop_map(NodeId), &PAYLOAD), 1..4), flip in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut buf = vec![0u8; 65_536];
        let len = encode_datagram(&mut buf, b"", &msgs).unwrap();
        let i = flip.index(len);
        buf[i] ^= 1 << bit;
        // CRC-32C detects every single-bit error.
        prop_assert!(open_frame(&buf[..len], b"", 65_536).is_err());
    }

    #[test]
    fn merge_is_commutative_associative_and_idempotent(a in claim(), b in claim(), c in claim()) {
        prop_assert_eq!(a.merge(b), b.merge(a));
        prop_assert_eq!(a.merge(b).merge(c), a.merge(b.merge(c)));
        prop_assert_eq!(a.merge(a), a);
    }

    #[test]
    fn dead_and_left_yield_only_to_a_higher_incarnation(gone in claim(), other in claim()) {
        prop_assume!(gone.state.is_gone());
        if other.overrides(&gone) {
            prop_assert!(other.incarnation > gone.incarnation || (other.incarnation == gone.incarnation && other.state == State::Left && gone.state == State::Dead));
        }
        if other.incarnation > gone.incarnation {
            prop_assert!(other.overrides(&gone));
        }
    }

    #[test]
    fn a_node_survives_any_datagram_and_refuses_bad_ones_without_change(
        body in prop::collection::vec(any::<u8>(), 0..1500),
        framed in any::<bool>(),
        from in 1u32..5,
    ) {
        // Raw bytes almost never pass the checksum; framing them properly
        // sends random message bytes all the way into the decoder.
        let bytes = if framed {
            let mut buf = vec![0u8; body.len() + 8];
            let mut w = wire::Writer::new(&mut buf);
            wire::begin_frame(&mut w, b"").unwrap();
            w.put(&body).unwrap();
            let len = w.len();
            let len = wire::seal_in_place(&mut buf, len).unwrap();
            buf.truncate(len);
            buf
        } else {
            body
        };
        let mut node = Node::new(NodeId(0), Config::local(), Xoshiro256PlusPlus::seed_from_u64(1), Instant::ZERO).unwrap();
        let before: Vec<_> = node.members().map(|m| (*m.addr, m.state, m.incarnation)).collect();
        if node.handle_datagram(Instant::from_secs(1), NodeId(from), &bytes).is_err() {
            let after: Vec<_> = node.members().map(|m| (*m.addr, m.state, m.incarnation)).collect();
            prop_assert_eq!(before, after);
            prop_assert!(node.poll_event().is_none());
            prop_assert_eq!(node.stats().rejected.total(), 1);
        }
        node.handle_timeout(Instant::from_secs(2));
        prop_assert!(node.poll_timeout().is_none_or(|t| t > Instant::from_secs(2)));
    }

    #[test]
    fn well_formed_random_traffic_never_breaks_a_node(
        script in prop::collection::vec((1u32..6, prop::collection::vec(message(( 0u32..6).prop_map(NodeId), &PAYLOAD), 1..5), 0u64..3_000), 1..40),
    ) {
        let mut node = Node::new(NodeId(0), Config::local(), Xoshiro256PlusPlus::seed_from_u64(2), Instant::ZERO).unwrap();
        let mut now = Instant::ZERO;
        let mut out = vec![0u8; 1400];
        let mut datagram = vec![0u8; 65_536];
        for (from, msgs, advance_ms) in script {
            now = now + core::time::Duration::from_millis(advance_ms);
            let Ok(len) = encode_datagram(&mut datagram, b"", &msgs) else { continue };
            let _ = node.handle_datagram(now, NodeId(from), &datagram[..len]);
            node.handle_timeout(now);
            prop_assert!(node.poll_timeout().is_none_or(|t| t > now));
            while let Some(tx) = node.poll_transmit(&mut out) {
                prop_assert!(tx.len <= 1400);
                prop_assert!(open_frame(&out[..tx.len], b"", 1400).is_ok());
            }
            while node.poll_event().is_some() {}
            let me = node.member(&NodeId(0)).unwrap();
            prop_assert_eq!(me.state, State::Alive, "a running node never believes itself gone");
        }
    }
}

#[test]
fn a_datagram_of_another_cluster_is_dropped_before_decoding() {
    let mut config = Config::local();
    config.label = swim_core::Bytes::from_static(b"blue");
    let mut node = Node::new(NodeId(0), config, Xoshiro256PlusPlus::seed_from_u64(3), Instant::ZERO).unwrap();
    let mut buf = [0u8; 64];
    let ping: Message<'_, NodeId> = Message::Ping { seq: 1 };
    let len = encode_datagram(&mut buf, b"green", std::slice::from_ref(&ping)).unwrap();
    assert_eq!(
        node.handle_datagram(Instant::ZERO, NodeId(1), &buf[..len]),
        Err(swim_core::Rejected::Frame(wire::FrameError::WrongCluster))
    );
    assert_eq!(node.stats().rejected.wrong_cluster, 1);
    let len = encode_datagram(&mut buf, b"blue", &[ping]).unwrap();
    assert_eq!(node.handle_datagram(Instant::ZERO, NodeId(1), &buf[..len]), Ok(()));
}
