//! A five-node cluster in memory: join through one seed, crash a member,
//! print what each node reports. Run: `cargo run -p swim-core --example demo`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use common::Cluster;
use swim_core::{Config, Event};

fn main() {
    let mut cluster = Cluster::joined(1, 5, Config::local());
    cluster.run_until(Duration::from_secs(10), Cluster::converged);
    println!("converged at {:?}: every node sees 5 alive members", cluster.now);
    cluster.crashed.insert(4);
    println!("crashing n4 at {:?}", cluster.now);
    cluster.run_for(Duration::from_secs(20));
    for (at, node, event) in &cluster.events {
        if let Some(m) = event.member() {
            if !matches!(event, Event::Joined(_)) {
                println!("{at:?} n{node}: {} {} (incarnation {})", event.name(), m.addr, m.incarnation);
            }
        }
    }
    let stats = cluster.nodes[&0].stats();
    println!(
        "n0 sent {} datagrams ({} bytes), received {}, probes {}, suspicions {}, failures {}",
        stats.datagrams_out, stats.bytes_out, stats.datagrams_in, stats.probes, stats.suspicions, stats.failures
    );
}
