//! Golden bytes: the wire format as WIRE.md documents it. A change here is a
//! wire-format change and needs a version bump.

use core::net::SocketAddr;

use swim_core::wire::{crc32c, encode_datagram, Message, Update};
use swim_core::{NodeId, State};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

fn datagram<A: swim_core::Address>(label: &[u8], msgs: &[Message<'_, A>]) -> String {
    let mut buf = [0u8; 1400];
    let len = encode_datagram(&mut buf, label, msgs).unwrap();
    let (body, crc) = buf[..len].split_at(len - 4);
    assert_eq!(crc, crc32c(body).to_be_bytes(), "trailer is the CRC-32C of the rest");
    hex(&buf[..len - 4])
}

fn update<A>(
    member: A,
    state: State,
    incarnation: u32,
    instance: u32,
    meta: &[u8],
    accuser: Option<A>,
) -> Message<'_, A> {
    Message::Update(Update { member, state, incarnation, instance, meta, accuser })
}

#[test]
fn ping_with_no_label_matches_the_documented_example() {
    let mut buf = [0u8; 16];
    let ping: Message<'_, NodeId> = Message::Ping { seq: 1 };
    let len = encode_datagram(&mut buf, b"", &[ping]).unwrap();
    assert_eq!(hex(&buf[..len]), "01 00 01 01 74 eb fa 0b");
}

#[test]
fn probe_messages() {
    let m: [Message<'_, NodeId>; 4] = [
        Message::Ping { seq: 300 },
        Message::Ack { seq: 300 },
        Message::Nack { seq: 7 },
        Message::PingReq { seq: 9, target: NodeId(200), want_nack: true },
    ];
    assert_eq!(datagram(b"", &m), "01 00 01 ac 02 02 ac 02 03 07 04 09 c8 01 01");
}

#[test]
fn label_is_carried_after_the_version() {
    let m: [Message<'_, NodeId>; 1] = [Message::Ack { seq: 1 }];
    assert_eq!(datagram(b"prod", &m), "01 04 70 72 6f 64 02 01");
}

#[test]
fn member_updates_with_socket_addresses() {
    let a: SocketAddr = "10.0.0.1:7946".parse().unwrap();
    let b: SocketAddr = "[::1]:80".parse().unwrap();
    let m = [
        update(a, State::Alive, 5, 0xdead_beef, b"k=v", None),
        update(a, State::Suspect, 5, 0, b"", Some(b)),
        update(b, State::Dead, 128, 0, b"", Some(a)),
        update(b, State::Left, 0, 0, b"", None),
    ];
    assert_eq!(
        datagram(b"", &m),
        concat!(
            "01 00 ",
            "10 04 0a 00 00 01 1f 0a 05 de ad be ef 03 6b 3d 76 ",
            "11 04 0a 00 00 01 1f 0a 05 06 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01 00 50 ",
            "12 06 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01 00 50 80 01 04 0a 00 00 01 1f 0a ",
            "13 06 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01 00 50 00"
        )
    );
}

#[test]
fn broadcasts_and_push_pull_headers() {
    let m: [Message<'_, NodeId>; 3] = [
        Message::PushPull { reply_wanted: true, join: true, exchange: 2 },
        update(NodeId(3), State::Alive, 0, 1, b"", None),
        Message::User { id: 0x0102_0304_0506_0708, origin: NodeId(5), payload: b"hi" },
    ];
    assert_eq!(datagram(b"", &m), "01 00 30 03 02 10 03 00 00 00 00 01 00 20 01 02 03 04 05 06 07 08 05 02 68 69");
}

/// Anti-entropy for broadcasts: a ping carrying a summary of the two
/// broadcasts its sender holds, and an ack listing one held id.
#[test]
fn held_broadcast_summaries_and_id_lists() {
    let ping: [Message<'_, NodeId>; 2] =
        [Message::Ping { seq: 1 }, Message::Held { count: 2, sum: 0x0102_0304_0506_0708 }];
    assert_eq!(datagram(b"", &ping), "01 00 01 01 21 02 01 02 03 04 05 06 07 08");
    let ids = [0xaa, 0xbb, 0xcc, 0xdd, 0x00, 0x11, 0x22, 0x33];
    let ack: [Message<'_, NodeId>; 2] = [Message::Ack { seq: 1 }, Message::HeldIds { ids: &ids }];
    assert_eq!(datagram(b"", &ack), "01 00 02 01 22 01 aa bb cc dd 00 11 22 33");
    let none: [Message<'_, NodeId>; 2] = [Message::Ack { seq: 1 }, Message::HeldIds { ids: &[] }];
    assert_eq!(datagram(b"", &none), "01 00 02 01 22 00");
    // More than 64 held is refused, whether summarised or listed.
    let limits = swim_core::wire::Limits { max_meta: 512, max_user_payload: 1024 };
    for bad in [&[0x21u8, 65, 0, 0, 0, 0, 0, 0, 0, 0][..], &[0x22, 65][..]] {
        let mut r = swim_core::wire::Reader::new(bad);
        assert_eq!(Message::<NodeId>::decode(&mut r, &limits), Err(swim_core::wire::DecodeError::BadValue));
    }
}

#[test]
fn digest_of_two_buckets() {
    let hashes = [0xde, 0xad, 0xbe, 0xef, 0x00, 0x00, 0x00, 0x01];
    let m: [Message<'_, NodeId>; 1] = [Message::Digest { reply_wanted: true, exchange: 3, hashes: &hashes }];
    assert_eq!(datagram(b"", &m), "01 00 31 01 03 01 de ad be ef 00 00 00 01");
}

/// A sealed Ping (WIRE.md, "Sealed datagrams"), bound to the receiver
/// 10.0.0.1:7946. The expected bytes were computed independently with
/// libsodium's XChaCha20-Poly1305 (through PyNaCl's
/// `crypto_aead_xchacha20poly1305_ietf_encrypt`, the associated data being
/// the header followed by the receiver's address) and Python's SHA-256,
/// from the layout WIRE.md gives.
#[test]
fn a_sealed_ping_matches_an_independent_implementation() {
    use swim_core::seal::{parse_sealed, seal_datagram, SealedHeader};
    use swim_core::{Key, SealError};
    let key = Key::from_bytes([0x42; 32]);
    let nonce: [u8; 24] = core::array::from_fn(|i| i as u8);
    let receiver: SocketAddr = "10.0.0.1:7946".parse().unwrap();
    let mut to = [0u8; 32];
    let mut w = swim_core::wire::Writer::new(&mut to);
    swim_core::Address::encode(&receiver, &mut w).unwrap();
    let to = w.written().to_vec();
    let mut buf = [0u8; 128];
    let len =
        seal_datagram(&mut buf, b"lab", &key, Some(&to), 0x0102_0304_0506_0708, 9, &nonce, &[0x01, 0x01]).unwrap();
    assert_eq!(
        hex(&buf[..len]),
        "02 03 6c 61 62 01 42 5e d4 e4 01 02 03 04 05 06 07 08 00 00 00 00 00 00 00 09 \
         00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 10 11 12 13 14 15 16 17 \
         8d fd 2f 55 5b be 8c ef d6 4b 7a 12 a2 db b2 f9 9f ce"
    );
    assert_eq!(key.id().to_string(), "425ed4e4");
    let sealed: SealedHeader<'_> = parse_sealed(&buf[..len], b"lab").unwrap();
    assert!(sealed.bound);
    let mut out = [0u8; 2];
    key.open(&sealed, &to, &mut out).unwrap();
    assert_eq!(out, [0x01, 0x01]);
    // Opened as if by another receiver, the tag fails.
    assert_eq!(key.open(&sealed, &[4, 10, 0, 0, 2, 0x1f, 0x0a], &mut out), Err(SealError::BadTag));
    assert_eq!(len - 2 - 3 - 4, 2 + swim_core::seal::SEAL_OVERHEAD, "overhead over plaintext");
}
