//! Recording live nodes: a 3-node loopback cluster, every node recorded,
//! through join, a metadata change, a broadcast, a member dropped without
//! leaving and the others' shutdown; each node's log then replays with
//! zero divergence.

mod common;
use common::eventually;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use swim_driver::record::{replay, Ending};
use swim_tokio::{Config, Event, Handle, Options, RecordOptions, State, StreamExt};

fn log_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("swim-record-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn sees(node: &Handle, addr: SocketAddr, state: State) -> bool {
    node.members().await.unwrap().iter().any(|m| m.addr == addr && m.state == state)
}

#[tokio::test]
async fn three_recorded_nodes_replay_with_zero_divergence() {
    let dir = log_dir("tokio");
    let mut nodes = Vec::new();
    let mut logs = Vec::new();
    for i in 0..3 {
        let mut options = Options::new("127.0.0.1:0".parse().unwrap(), Config::local());
        let log = dir.join(format!("n{i}.log"));
        options.record = Some(RecordOptions::new(&log, 1 << 20));
        options.metadata = format!("n{i}").into_bytes();
        nodes.push(Handle::start(options).await.unwrap());
        logs.push(log);
    }
    let seed = nodes[0].local_addr();
    for node in &nodes[1..] {
        node.join([seed]).await.unwrap();
    }
    let addrs: Vec<SocketAddr> = nodes.iter().map(Handle::local_addr).collect();
    eventually(Duration::from_secs(15), "all see all", || async {
        for n in &nodes {
            for a in &addrs {
                if !sees(n, *a, State::Alive).await {
                    return false;
                }
            }
        }
        true
    })
    .await;
    let mut events = nodes[2].subscribe().unwrap();
    nodes[1].set_metadata(b"role=db".to_vec()).await.unwrap();
    nodes[0].broadcast(b"deploy 42".to_vec()).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(e)) = events.next().await {
            if let Event::Broadcast { payload, .. } = e {
                return payload;
            }
        }
        panic!("events ended");
    })
    .await
    .expect("the broadcast reached node 2");
    assert_eq!(&got[..], b"deploy 42");
    // Node 2 goes away without leaving; the others see it fail.
    drop(events);
    let gone = nodes.pop().unwrap();
    drop(gone);
    eventually(Duration::from_secs(30), "node 2 failed at both", || async {
        sees(&nodes[0], addrs[2], State::Dead).await && sees(&nodes[1], addrs[2], State::Dead).await
    })
    .await;
    for node in nodes {
        node.shutdown().await;
    }
    for log in &logs {
        let mut failed_seen = false;
        let r = replay::<SocketAddr>(log, false, |_, _, events| {
            failed_seen |= events.iter().any(|e| matches!(e, Event::Failed(m) if m.addr == addrs[2]));
        });
        let r = r.unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        assert!(r.steps > 3, "{}: {} steps", log.display(), r.steps);
        assert_eq!(r.ending, Ending::Closed, "{}", log.display());
        if log != &logs[2] {
            assert!(failed_seen, "{}: the replay saw node 2 fail", log.display());
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
