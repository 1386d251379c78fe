//! Recording live nodes: a 3-node loopback cluster, every node recorded,
//! through join, a metadata change, a broadcast, a member dropped without
//! leaving and the others' shutdown; each node's log then replays with
//! zero divergence.

mod common;
use common::eventually;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use swim_driver::record::{file_path, MIN_MAX_BYTES};
use swim_driver::DriverNode;
use swim_sim::replay::{run, Ending, Failure, Summary};
use swim_tokio::{Config, Event, Handle, Options, RecordOptions, State, StreamExt};

/// Replay the log at `path` with `swim-sim replay`'s code: its summary and
/// its `--view` lines.
fn replay(path: &std::path::Path) -> Result<(Summary, String), Failure> {
    let options = swim_sim::replay::Options { file: path.into(), view: true, ..Default::default() };
    let mut view = Vec::new();
    let summary = run(&options, &mut view)?;
    Ok((summary, String::from_utf8(view).unwrap()))
}

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
    let gone = format!("failed    {}", addrs[2]);
    for log in &logs {
        let (r, view) = replay(log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        assert!(r.steps > 3, "{}: {} steps", log.display(), r.steps);
        assert_eq!(r.ending, Ending::EndRecord, "{}", log.display());
        if log != &logs[2] {
            assert!(view.contains(&gone), "{}: the replay saw node 2 fail:\n{view}", log.display());
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two driver nodes wired back to back in memory, the first recorded into
/// `record`; runs `rounds` exchanges with broadcasts.
fn back_to_back(record: RecordOptions, rounds: usize) {
    let mut a = Options::new("127.0.0.1:0".parse().unwrap(), Config::local());
    a.record = Some(record);
    a.rng_seed = Some(1);
    let mut b = Options::new("127.0.0.1:0".parse().unwrap(), Config::local());
    b.rng_seed = Some(2);
    let (a_addr, b_addr): (SocketAddr, SocketAddr) =
        ("127.0.0.1:5001".parse().unwrap(), "127.0.0.1:5002".parse().unwrap());
    let mut a = DriverNode::start(&a, a_addr).unwrap();
    let mut b = DriverNode::start(&b, b_addr).unwrap();
    let mut flights: Vec<(bool, Vec<u8>)> = Vec::new();
    let drain = |n: &mut DriverNode, to_a: bool, flights: &mut Vec<(bool, Vec<u8>)>| {
        while let Some(tx) = n.poll_transmit() {
            flights.push((to_a, tx.payload.to_vec()));
        }
        n.drain_events(|_| {});
    };
    b.join(&[a_addr]);
    drain(&mut b, true, &mut flights);
    for i in 0..rounds {
        for (to_a, bytes) in std::mem::take(&mut flights) {
            if to_a {
                let _ = a.handle_datagram(b_addr, &bytes);
                drain(&mut a, false, &mut flights);
            } else {
                let _ = b.handle_datagram(a_addr, &bytes);
                drain(&mut b, true, &mut flights);
            }
        }
        if i % 3 == 0 {
            a.broadcast(&[i as u8; 200]).unwrap();
            drain(&mut a, false, &mut flights);
        }
        a.handle_timeout();
        drain(&mut a, false, &mut flights);
        b.handle_timeout();
        drain(&mut b, true, &mut flights);
    }
}

#[test]
fn a_log_rotates_replays_across_its_files_and_stops_at_its_limit() {
    let d = log_dir("rotate");
    let path = d.join("a.log");
    let mut options = RecordOptions::new(&path, MIN_MAX_BYTES);
    options.file_bytes = 16 << 10;
    back_to_back(options, 3000);
    let (r, _) = replay(&path).unwrap();
    assert!(r.files >= 8, "{} files", r.files);
    // The limit: every file together within it, and the run's end record
    // written when it was reached (the node itself ran on).
    let total: u64 = (0..r.files).map(|i| std::fs::metadata(file_path(&path, i)).unwrap().len()).sum();
    assert!(total <= MIN_MAX_BYTES, "{total} bytes");
    assert_eq!(r.ending, Ending::EndRecord);
    assert!(!file_path(&path, r.files).exists());
    // A file in the middle missing: named.
    std::fs::remove_file(file_path(&path, 2)).unwrap();
    let e = replay(&path).unwrap_err();
    assert!(e.to_string().contains(&format!("{} is missing", file_path(&path, 2).display())), "{e}");
    // A later file given first is refused.
    let e = replay(&file_path(&path, 1)).unwrap_err();
    assert!(e.to_string().contains("a replay starts at the first file"), "{e}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_restart_moves_the_earlier_log_aside_and_bad_paths_refuse_to_start() {
    let d = log_dir("restart");
    let path = d.join("a.log");
    back_to_back(RecordOptions::new(&path, MIN_MAX_BYTES), 50);
    let first = std::fs::read(&path).unwrap();
    back_to_back(RecordOptions::new(&path, MIN_MAX_BYTES), 60);
    let prev = d.join("a.log.prev");
    assert_eq!(std::fs::read(&prev).unwrap(), first, "the earlier run's log is kept");
    assert!(replay(&prev).is_ok());
    assert!(replay(&path).is_ok());
    let mut o = Options::new("127.0.0.1:0".parse().unwrap(), Config::local());
    o.record = Some(RecordOptions::new(d.join("no/such/dir/a.log"), MIN_MAX_BYTES));
    let e = DriverNode::start(&o, "127.0.0.1:5001".parse().unwrap()).unwrap_err();
    assert!(e.to_string().starts_with("cannot record into "), "{e}");
    let _ = std::fs::remove_dir_all(&d);
}
