//! A mixed cluster: swim-tokio nodes and swim-mio nodes speak the same wire,
//! converge into one view and detect a failure.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use swim_mio::{Config, State};

fn sees_mio(node: &swim_mio::Handle, addrs: &[SocketAddr], state: State) -> bool {
    let members = node.members().unwrap();
    addrs.iter().all(|a| members.iter().any(|m| m.addr == *a && m.state == state))
}

async fn sees_tokio(node: &swim_tokio::Handle, addrs: &[SocketAddr], state: State) -> bool {
    let members = node.members().await.unwrap();
    addrs.iter().all(|a| members.iter().any(|m| m.addr == *a && m.state == state))
}

/// Poll until every node sees `addrs` in `state`, or fail after `limit`.
async fn eventually_all_see(
    limit: Duration,
    what: &str,
    mio: &[swim_mio::Handle],
    tokio: &[swim_tokio::Handle],
    addrs: &[SocketAddr],
    state: State,
) {
    let deadline = Instant::now() + limit;
    loop {
        let mut all = mio.iter().all(|h| sees_mio(h, addrs, state));
        for h in tokio {
            all = all && sees_tokio(h, addrs, state).await;
        }
        if all {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_and_mio_nodes_converge_and_detect_a_failure() {
    let bind: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut tokio_nodes = Vec::new();
    for seed in 1..=2 {
        let mut options = swim_tokio::Options::new(bind, Config::local());
        options.rng_seed = Some(seed);
        tokio_nodes.push(swim_tokio::Handle::start(options).await.unwrap());
    }
    let mut mio_nodes = Vec::new();
    for seed in 3..=5 {
        let mut options = swim_mio::Options::new(bind, Config::local());
        options.rng_seed = Some(seed);
        let (handle, _events) = swim_mio::Handle::start(options).unwrap();
        mio_nodes.push(handle);
    }
    // Mio nodes join through a tokio node and a tokio node through a mio node.
    let tokio_seed = tokio_nodes[0].local_addr();
    for node in &mio_nodes {
        // Resolution of literal addresses does not block.
        node.join([tokio_seed]).unwrap();
    }
    tokio_nodes[1].join([mio_nodes[0].local_addr()]).await.unwrap();

    let mut addrs: Vec<SocketAddr> = tokio_nodes.iter().map(swim_tokio::Handle::local_addr).collect();
    addrs.extend(mio_nodes.iter().map(swim_mio::Handle::local_addr));
    eventually_all_see(
        Duration::from_secs(20),
        "all five see all five alive",
        &mio_nodes,
        &tokio_nodes,
        &addrs,
        State::Alive,
    )
    .await;

    // Stop one of each kind without leaving.
    let gone_mio = mio_nodes.pop().unwrap();
    let gone_tokio = tokio_nodes.pop().unwrap();
    let gone = [gone_mio.local_addr(), gone_tokio.local_addr()];
    gone_mio.shutdown();
    gone_tokio.shutdown().await;
    eventually_all_see(
        Duration::from_secs(40),
        "the other three see both failed",
        &mio_nodes,
        &tokio_nodes,
        &gone,
        State::Dead,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_mixed_cluster_converges_and_rotates_its_key() {
    use swim_mio::{Encryption, Key};
    let (k1, k2) = (Key::from_bytes([0x61; 32]), Key::from_bytes([0x62; 32]));
    let bind: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut config = Config::local();
    config.encryption = Encryption::Require;
    let mut tokio_nodes = Vec::new();
    for seed in 11..=12 {
        let mut options = swim_tokio::Options::new(bind, config.clone());
        options.rng_seed = Some(seed);
        options.keys = vec![k1.clone()];
        tokio_nodes.push(swim_tokio::Handle::start(options).await.unwrap());
    }
    let mut mio_nodes = Vec::new();
    for seed in 13..=14 {
        let mut options = swim_mio::Options::new(bind, config.clone());
        options.rng_seed = Some(seed);
        options.keys = vec![k1.clone()];
        let (handle, _events) = swim_mio::Handle::start(options).unwrap();
        mio_nodes.push(handle);
    }
    for node in &mio_nodes {
        node.join([tokio_nodes[0].local_addr()]).unwrap();
    }
    tokio_nodes[1].join([mio_nodes[0].local_addr()]).await.unwrap();
    let mut addrs: Vec<SocketAddr> = tokio_nodes.iter().map(swim_tokio::Handle::local_addr).collect();
    addrs.extend(mio_nodes.iter().map(swim_mio::Handle::local_addr));
    eventually_all_see(Duration::from_secs(20), "all four converge", &mio_nodes, &tokio_nodes, &addrs, State::Alive)
        .await;

    // Install, use, remove: each step at every node, of both drivers.
    for n in &tokio_nodes {
        n.install_key(k2.clone()).await.unwrap();
    }
    for n in &mio_nodes {
        n.install_key(k2.clone()).unwrap();
    }
    for n in &tokio_nodes {
        n.use_key(k2.id()).await.unwrap();
    }
    for n in &mio_nodes {
        n.use_key(k2.id()).unwrap();
        assert_eq!(n.remove_key(k2.id()), Err(swim_mio::Error::Key(swim_mio::KeyError::PrimaryKey(k2.id()))));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    for n in &tokio_nodes {
        n.remove_key(k1.id()).await.unwrap();
    }
    for n in &mio_nodes {
        n.remove_key(k1.id()).unwrap();
        assert_eq!(n.keys().unwrap(), [swim_mio::InstalledKey { id: k2.id(), primary: true }]);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    eventually_all_see(Duration::from_secs(1), "all four alive", &mio_nodes, &tokio_nodes, &addrs, State::Alive).await;
    for n in &mio_nodes {
        let stats = n.stats().unwrap();
        let r = stats.core.rejected;
        assert_eq!((r.unknown_key, r.bad_tag, r.replayed, stats.core.failures), (0, 0, 0, 0));
    }
    for n in &tokio_nodes {
        let stats = n.stats().await.unwrap();
        let r = stats.core.rejected;
        assert_eq!((r.unknown_key, r.bad_tag, r.replayed, stats.core.failures), (0, 0, 0, 0));
    }
}
