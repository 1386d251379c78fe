//! Sealed clusters over loopback: members with the key converge, outsiders
//! (another key, plaintext) are neither heard nor seen, and a key rotation
//! across a live cluster refuses no datagram and fails nobody.

mod common;
use common::eventually;
use std::net::SocketAddr;
use std::time::Duration;

use swim_tokio::{Config, Encryption, Error, Event, Events, Handle, Key, KeyError, Options, State, StreamExt};

const K1: Key = Key::from_bytes([0x11; 32]);
const K2: Key = Key::from_bytes([0x22; 32]);
const OTHER: Key = Key::from_bytes([0x33; 32]);

fn options(seed: u64, encryption: Encryption, keys: &[Key]) -> Options {
    let mut config = Config::local();
    config.encryption = encryption;
    let mut options = Options::new("127.0.0.1:0".parse().unwrap(), config);
    options.rng_seed = Some(seed);
    options.keys = keys.to_vec();
    // An outsider's join is never answered: give up waiting soon.
    options.join_timeout = Some(Duration::from_secs(2));
    options
}

/// `n` nodes requiring sealing under `keys`, joined through the first,
/// each with its event stream.
async fn sealed_cluster(n: usize, keys: &[Key]) -> (Vec<Handle>, Vec<Events>) {
    let mut nodes = Vec::new();
    for i in 0..n {
        nodes.push(Handle::start(options(100 + i as u64, Encryption::Require, keys)).await.unwrap());
    }
    let events = nodes.iter().map(|n| n.subscribe().unwrap()).collect();
    let seed = nodes[0].local_addr();
    for node in &nodes[1..] {
        node.join([seed]).await.unwrap();
    }
    (nodes, events)
}

async fn sees(node: &Handle, addr: SocketAddr, state: State) -> bool {
    node.members().await.unwrap().iter().any(|m| m.addr == addr && m.state == state)
}

async fn converged(nodes: &[Handle]) -> bool {
    for a in nodes {
        for b in nodes {
            if !sees(a, b.local_addr(), State::Alive).await {
                return false;
            }
        }
    }
    true
}

/// The Failed and Left events received so far. (Not suspicions: on a
/// loaded machine an ack may miss the probe timeout whatever the keys;
/// the refusal counters are what tells a botched rotation.)
async fn alarms(events: &mut [Events]) -> Vec<String> {
    let mut out = Vec::new();
    for stream in events {
        while let Ok(Some(item)) = tokio::time::timeout(Duration::from_millis(1), stream.next()).await {
            if let Ok(e @ (Event::Failed(_) | Event::Left(_))) = item {
                out.push(format!("{} {:?}", e.name(), e.member().map(|m| m.addr)));
            }
        }
    }
    out
}

#[tokio::test]
async fn outsiders_with_another_key_or_in_plaintext_are_neither_heard_nor_seen() {
    let (members, mut events) = sealed_cluster(3, &[K1]).await;
    eventually(Duration::from_secs(15), "the sealed cluster converges", || converged(&members)).await;
    let other_key = Handle::start(options(7, Encryption::Require, &[OTHER])).await.unwrap();
    let plaintext = Handle::start(options(8, Encryption::Off, &[])).await.unwrap();
    let seeds = [members[0].local_addr(), members[1].local_addr()];
    let (a, b) = tokio::join!(other_key.join(seeds), plaintext.join(seeds));
    assert!(matches!(a, Err(Error::JoinTimedOut { .. })), "{a:?}");
    assert!(matches!(b, Err(Error::JoinTimedOut { .. })), "{b:?}");
    for outsider in [&other_key, &plaintext] {
        for m in &members {
            let known = m.members().await.unwrap();
            assert!(known.iter().all(|k| k.addr != outsider.local_addr()), "an outsider is seen: {known:?}");
        }
        assert_eq!(outsider.members().await.unwrap().len(), 1, "an outsider learned members");
    }
    let mut unknown_key = 0;
    let mut plaintext_refused = 0;
    for m in &members {
        let r = m.stats().await.unwrap().core.rejected;
        unknown_key += r.unknown_key;
        plaintext_refused += r.plaintext_refused;
    }
    assert!(unknown_key > 0 && plaintext_refused > 0, "{unknown_key} unknown key, {plaintext_refused} plaintext");
    assert!(converged(&members).await);
    assert_eq!(alarms(&mut events).await, Vec::<String>::new());
}

#[tokio::test]
async fn a_key_rotation_across_a_live_cluster_refuses_nothing_and_fails_nobody() {
    let (nodes, mut events) = sealed_cluster(5, &[K1]).await;
    eventually(Duration::from_secs(15), "the five converge", || converged(&nodes)).await;
    let settle = Duration::from_millis(1500);

    // 1. Install the new key everywhere: every node opens both.
    for n in &nodes {
        assert_eq!(n.install_key(K2).await.unwrap(), K2.id());
    }
    tokio::time::sleep(settle).await;
    // 2. Seal with it everywhere.
    for n in &nodes {
        n.use_key(K2.id()).await.unwrap();
    }
    tokio::time::sleep(settle).await;
    // 3. Remove the old one everywhere; the primary cannot be removed.
    for n in &nodes {
        assert_eq!(n.remove_key(K2.id()).await, Err(Error::Key(KeyError::PrimaryKey(K2.id()))));
        n.remove_key(K1.id()).await.unwrap();
        let keys = n.keys().await.unwrap();
        assert_eq!((keys.len(), keys[0].id, keys[0].primary), (1, K2.id(), true));
    }
    let before: u64 = nodes[0].stats().await.unwrap().core.datagrams_in;
    tokio::time::sleep(settle).await;
    for n in &nodes {
        let stats = n.stats().await.unwrap();
        let r = stats.core.rejected;
        assert_eq!((r.unknown_key, r.bad_tag, r.replayed), (0, 0, 0), "members refused each other");
        assert_eq!(stats.members.alive, 5);
    }
    assert!(nodes[0].stats().await.unwrap().core.datagrams_in > before, "nothing was heard after the rotation");
    assert_eq!(alarms(&mut events).await, Vec::<String>::new());

    // A node that still has only the old key is not heard any more.
    let stale = Handle::start(options(9, Encryption::Require, &[K1])).await.unwrap();
    assert!(matches!(stale.join([nodes[0].local_addr()]).await, Err(Error::JoinTimedOut { .. })));
    assert!(nodes[0].stats().await.unwrap().core.rejected.unknown_key > 0);
}

#[tokio::test]
async fn key_commands_on_a_plaintext_node_are_refused() {
    let node = Handle::start(options(1, Encryption::Off, &[])).await.unwrap();
    assert!(node.keys().await.unwrap().is_empty());
    assert_eq!(node.install_key(K1).await, Err(Error::Key(KeyError::NoKeyring)));
    let e = Handle::start(options(1, Encryption::Require, &[])).await.unwrap_err();
    assert!(e.to_string().contains("encryption"), "{e}");
}
