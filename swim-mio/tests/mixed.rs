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
