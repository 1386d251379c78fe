//! Recording mio nodes: three nodes on loopback, every one recorded,
//! through join, a metadata change, a broadcast and a member stopped
//! without leaving; each log then replays with zero divergence.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use swim_mio::{Config, Event, Handle, Options, RecordOptions, State};
use swim_sim::replay::{run, Ending};

fn eventually(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn sees(node: &Handle, addr: SocketAddr, state: State) -> bool {
    node.members().unwrap().iter().any(|m| m.addr == addr && m.state == state)
}

#[test]
fn three_recorded_mio_nodes_replay_with_zero_divergence() {
    let dir = std::env::temp_dir().join(format!("swim-mio-record-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let logs: Vec<PathBuf> = (0..3).map(|i| dir.join(format!("n{i}.log"))).collect();
    let nodes: Vec<_> = logs
        .iter()
        .map(|log| {
            let mut options = Options::new("127.0.0.1:0".parse().unwrap(), Config::local());
            options.record = Some(RecordOptions::new(log, 1 << 20));
            Handle::start(options).unwrap()
        })
        .collect();
    let seed = nodes[0].0.local_addr();
    for (node, _) in &nodes[1..] {
        node.join([seed]).unwrap();
    }
    let addrs: Vec<SocketAddr> = nodes.iter().map(|(h, _)| h.local_addr()).collect();
    eventually(Duration::from_secs(15), "all see all", || {
        nodes.iter().all(|(n, _)| addrs.iter().all(|a| sees(n, *a, State::Alive)))
    });
    nodes[1].0.set_metadata(b"role=db".to_vec()).unwrap();
    nodes[0].0.broadcast(b"deploy 42".to_vec()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match nodes[2].1.recv_timeout(left) {
            Ok(Event::Broadcast { payload, .. }) => {
                assert_eq!(&payload[..], b"deploy 42");
                break;
            }
            Ok(_) => {}
            Err(e) => panic!("no broadcast at node 2: {e}"),
        }
    }
    nodes[2].0.shutdown();
    eventually(Duration::from_secs(30), "node 2 failed at both", || {
        sees(&nodes[0].0, addrs[2], State::Dead) && sees(&nodes[1].0, addrs[2], State::Dead)
    });
    for (node, _) in &nodes {
        node.shutdown();
    }
    for log in &logs {
        let options = swim_sim::replay::Options { file: log.clone(), ..Default::default() };
        let r = run(&options, &mut std::io::sink()).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        assert!(r.steps > 3 && r.ending == Ending::EndRecord, "{}: {r:?}", log.display());
    }
    let _ = std::fs::remove_dir_all(&dir);
}
