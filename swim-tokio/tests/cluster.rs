//! In-process clusters over loopback: convergence, failure, leave,
//! metadata and broadcasts, IPv6, shutdown.

mod common;
use common::eventually;
use std::net::SocketAddr;
use std::time::Duration;

use swim_tokio::{Config, Event, Handle, LeaveOutcome, Options, State, StreamExt};
use tokio::time::{timeout, Instant};

/// Start `n` nodes on `ip` with `Config::local()` timings, all joined
/// through the first.
async fn cluster(ip: &str, n: usize) -> Vec<Handle> {
    let mut nodes = Vec::new();
    for i in 0..n {
        let bind: SocketAddr = format!("{ip}:0").parse().unwrap();
        let mut options = Options::new(bind, Config::local());
        options.rng_seed = Some(i as u64 + 1);
        nodes.push(Handle::start(options).await.unwrap());
    }
    let seed = nodes[0].local_addr();
    for (i, node) in nodes[1..].iter().enumerate() {
        // Resolves once joined: the seed's answer brought every member so far.
        assert_eq!(node.join([seed]).await.unwrap(), i + 2);
    }
    nodes
}

/// Whether `node` sees every address in `addrs` in `state`.
async fn sees(node: &Handle, addrs: &[SocketAddr], state: State) -> bool {
    let members = node.members().await.unwrap();
    addrs.iter().all(|a| members.iter().any(|m| m.addr == *a && m.state == state))
}

async fn converged(nodes: &[Handle]) -> bool {
    let addrs: Vec<_> = nodes.iter().map(Handle::local_addr).collect();
    for node in nodes {
        if !sees(node, &addrs, State::Alive).await {
            return false;
        }
    }
    true
}

#[tokio::test]
async fn five_agents_converge() {
    let nodes = cluster("127.0.0.1", 5).await;
    eventually(Duration::from_secs(15), "all five see all five alive", || converged(&nodes)).await;
    let stats = nodes[0].stats().await.unwrap();
    assert_eq!(stats.members.alive, 5);
    assert!(stats.core.datagrams_in > 0 && stats.core.datagrams_out > 0);
}

#[tokio::test]
async fn an_agent_dropped_without_leaving_is_failed_at_the_other_four() {
    let mut nodes = cluster("127.0.0.1", 5).await;
    eventually(Duration::from_secs(15), "converged", || converged(&nodes)).await;
    let gone = nodes.pop().unwrap();
    let gone_addr = gone.local_addr();
    drop(gone);
    eventually(Duration::from_secs(40), "the four see it failed", || async {
        for node in &nodes {
            if !sees(node, &[gone_addr], State::Dead).await {
                return false;
            }
        }
        true
    })
    .await;
    for node in &nodes {
        let others: Vec<_> = nodes.iter().map(Handle::local_addr).collect();
        assert!(sees(node, &others, State::Alive).await);
    }
}

#[tokio::test]
async fn a_graceful_leave_is_left_at_the_others() {
    let nodes = cluster("127.0.0.1", 4).await;
    eventually(Duration::from_secs(15), "converged", || converged(&nodes)).await;
    let leaver = &nodes[3];
    let addr = leaver.local_addr();
    let outcome = timeout(Duration::from_secs(10), leaver.leave()).await.unwrap().unwrap();
    assert_eq!(outcome, LeaveOutcome::Disseminated);
    eventually(Duration::from_secs(10), "the others see it left", || async {
        for node in &nodes[..3] {
            if !sees(node, &[addr], State::Left).await {
                return false;
            }
        }
        true
    })
    .await;
}

#[tokio::test]
async fn a_metadata_change_and_a_broadcast_reach_all_others_once() {
    let nodes = cluster("127.0.0.1", 4).await;
    eventually(Duration::from_secs(15), "converged", || converged(&nodes)).await;
    let mut subscribers: Vec<_> = nodes[1..].iter().map(|n| n.subscribe().unwrap()).collect();
    let origin = nodes[0].local_addr();

    nodes[0].set_metadata(b"role=web".to_vec()).await.unwrap();
    nodes[0].broadcast(b"hello".to_vec()).await.unwrap();

    // Collect events until each subscriber has both, then a little longer
    // to catch duplicates.
    let mut updates = vec![0; subscribers.len()];
    let mut broadcasts = vec![0; subscribers.len()];
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut grace: Option<Instant> = None;
    loop {
        let done = updates.iter().all(|&n| n >= 1) && broadcasts.iter().all(|&n| n >= 1);
        if done && grace.is_none() {
            grace = Some(Instant::now() + Duration::from_secs(1));
        }
        if grace.is_some_and(|g| Instant::now() >= g) {
            break;
        }
        assert!(Instant::now() < deadline, "not delivered: {updates:?} {broadcasts:?}");
        for (i, rx) in subscribers.iter_mut().enumerate() {
            while let Ok(Some(Ok(event))) = timeout(Duration::from_millis(1), rx.next()).await {
                match event {
                    Event::Updated(m) if m.addr == origin => {
                        assert_eq!(&m.meta[..], b"role=web");
                        updates[i] += 1;
                    }
                    Event::Broadcast { from, payload } => {
                        assert_eq!(&payload[..], b"hello");
                        assert_eq!(from, origin, "a broadcast names its sender");
                        broadcasts[i] += 1;
                    }
                    _ => {}
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(updates, vec![1; 3]);
    assert_eq!(broadcasts, vec![1; 3]);
    for node in &nodes[1..] {
        let m = node.members().await.unwrap();
        let o = m.iter().find(|m| m.addr == origin).unwrap();
        assert_eq!(&o.meta[..], b"role=web");
    }
}

#[tokio::test]
async fn an_ipv6_cluster_of_three_converges() {
    let probe = std::net::UdpSocket::bind("[::1]:0");
    if probe.is_err() {
        eprintln!("skipped: no IPv6 loopback on this machine");
        return;
    }
    drop(probe);
    let nodes = cluster("[::1]", 3).await;
    eventually(Duration::from_secs(15), "all three see all three alive", || converged(&nodes)).await;
    assert!(nodes[0].local_addr().is_ipv6());
}

#[tokio::test]
async fn dropping_every_handle_stops_the_node_and_releases_the_port() {
    let node = Handle::start(Options::new("127.0.0.1:0".parse().unwrap(), Config::local())).await.unwrap();
    let addr = node.local_addr();
    let events = node.subscribe().unwrap();
    drop(node);
    drop(events);
    eventually(Duration::from_secs(5), "the port can be bound again", || async {
        std::net::UdpSocket::bind(addr).is_ok()
    })
    .await;
}

#[tokio::test]
async fn shutdown_closes_the_socket_and_other_handles_see_stopped() {
    let node = Handle::start(Options::new("127.0.0.1:0".parse().unwrap(), Config::local())).await.unwrap();
    let other = node.clone();
    let addr = node.local_addr();
    node.shutdown().await;
    assert!(std::net::UdpSocket::bind(addr).is_ok());
    assert_eq!(other.members().await, Err(swim_tokio::Error::Stopped));
    assert!(other.subscribe().is_err());
}

#[tokio::test]
async fn seeds_given_by_name_are_resolved() {
    let a = Handle::start(Options::new("127.0.0.1:0".parse().unwrap(), Config::local())).await.unwrap();
    let b = Handle::start(Options::new("127.0.0.1:0".parse().unwrap(), Config::local())).await.unwrap();
    let name = format!("localhost:{}", a.local_addr().port());
    assert_eq!(b.join([name.as_str()]).await.unwrap(), 2);
    let nodes = [a, b];
    eventually(Duration::from_secs(10), "the two see each other", || converged(&nodes)).await;
}

#[tokio::test]
async fn unresolvable_seeds_are_retried_until_the_join_times_out_and_the_node_keeps_running() {
    let mut options = Options::new("127.0.0.1:0".parse().unwrap(), Config::local());
    options.join_timeout = Some(Duration::from_millis(1500));
    let a = Handle::start(options).await.unwrap();
    match a.join(["no-such-host.invalid:7946"]).await {
        Err(swim_tokio::Error::JoinTimedOut { unanswered }) => assert!(unanswered >= 1),
        other => panic!("expected a join timeout, got {other:?}"),
    }
    assert!(a.stats().await.unwrap().driver.seed_resolutions >= 2);
    assert_eq!(a.members().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_join_nobody_answers_gives_up_after_its_attempts_and_a_leave_aborts_one() {
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut options = Options::new("127.0.0.1:0".parse().unwrap(), Config::local());
    options.join_max_attempts = Some(2);
    let a = Handle::start(options).await.unwrap();
    assert_eq!(a.join([silent.local_addr().unwrap()]).await, Err(swim_tokio::Error::JoinGaveUp { attempts: 2 }));
    // Given up: no more attempts.
    let attempts = a.stats().await.unwrap().core.join_attempts;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(a.stats().await.unwrap().core.join_attempts, attempts);

    let b = Handle::start(Options::new("127.0.0.1:0".parse().unwrap(), Config::local())).await.unwrap();
    let waiting = {
        let b = b.clone();
        let seed = silent.local_addr().unwrap();
        tokio::spawn(async move { b.join([seed]).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    b.leave_within(Duration::from_millis(100)).await.unwrap();
    assert_eq!(waiting.await.unwrap(), Err(swim_tokio::Error::JoinAborted));
}

#[tokio::test]
async fn oversized_metadata_is_refused_with_the_limit() {
    let a = Handle::start(Options::new("127.0.0.1:0".parse().unwrap(), Config::local())).await.unwrap();
    let err = a.set_metadata(vec![0u8; 10_000]).await.unwrap_err();
    assert!(err.to_string().contains("max_metadata_len"), "{err}");
}

#[tokio::test]
async fn a_slow_subscriber_lags_instead_of_stalling_the_protocol() {
    let mut options = Options::new("127.0.0.1:0".parse().unwrap(), Config::local());
    options.event_capacity = 1;
    let watcher = Handle::start(options).await.unwrap();
    let mut slow = watcher.subscribe().unwrap();
    let mut nodes = vec![watcher];
    for _ in 0..3 {
        let n = Handle::start(Options::new("127.0.0.1:0".parse().unwrap(), Config::local())).await.unwrap();
        n.join([nodes[0].local_addr()]).await.unwrap();
        nodes.push(n);
    }
    // Three joins, never read: the protocol goes on regardless.
    eventually(Duration::from_secs(15), "all four converge", || converged(&nodes)).await;
    match slow.next().await {
        Some(Err(swim_tokio::Lagged { skipped })) => assert!(skipped >= 1),
        other => panic!("expected a lag, got {other:?}"),
    }
    // A lag is an item, not the end: the subscriber reads on.
    assert!(matches!(slow.next().await, Some(Ok(_))));
}

#[tokio::test]
async fn seed_names_are_resolved_again_on_each_join_retry_round() {
    // Nobody listens at the seed, so the node keeps retrying its join.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let seed = format!("localhost:{}", silent.local_addr().unwrap().port());
    let mut options = Options::new("127.0.0.1:0".parse().unwrap(), Config::local());
    options.join_max_attempts = Some(3);
    let a = Handle::start(options).await.unwrap();
    assert!(matches!(a.join([seed.as_str()]).await, Err(swim_tokio::Error::JoinGaveUp { .. })));
    let stats = a.stats().await.unwrap();
    assert!(stats.core.join_attempts >= 2 && stats.driver.seed_resolutions >= 2, "{stats:?}");
}
