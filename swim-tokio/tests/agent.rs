//! End to end: real `swim agent` processes on loopback, queried over HTTP.
#![cfg(feature = "agent")]

mod common;
use common::eventually;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use swim_tokio::agent::{client, keys};
use swim_tokio::Key;
use tokio::time::Instant;

/// A loopback UDP port nobody is using right now.
fn free_udp() -> SocketAddr {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// A loopback TCP port nobody is using right now.
fn free_tcp() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// A running `swim agent`, killed if the test ends early.
struct Agent {
    child: Child,
    udp: SocketAddr,
    http: String,
    log: PathBuf,
    args: Vec<String>,
}

impl Agent {
    fn start(name: &str, join: &[SocketAddr]) -> Agent {
        Agent::start_with(name, join, &[])
    }

    /// An agent with more command-line arguments (they win over the ones
    /// given here).
    fn start_with(name: &str, join: &[SocketAddr], extra: &[&str]) -> Agent {
        let udp = free_udp();
        let http = free_tcp();
        let log = std::env::temp_dir().join(format!("swim-agent-{}-{name}-{}.log", std::process::id(), udp.port()));
        let mut args: Vec<String> = ["agent", "--profile", "local", "--bind", &udp.to_string()]
            .into_iter()
            .chain(["--http", &http.to_string(), "--name", name, "--meta", "test=e2e"])
            .map(String::from)
            .collect();
        if !join.is_empty() {
            let seeds: Vec<String> = join.iter().map(ToString::to_string).collect();
            args.extend(["--join".to_owned(), seeds.join(",")]);
        }
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let child = Agent::spawn(&args, &log, false);
        Agent { child, udp, http: http.to_string(), log, args }
    }

    fn spawn(args: &[String], log: &PathBuf, append: bool) -> Child {
        let log = std::fs::OpenOptions::new().create(true).append(append).write(true).truncate(!append).open(log);
        Command::new(env!("CARGO_BIN_EXE_swim"))
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log.unwrap()))
            .spawn()
            .unwrap()
    }

    /// SIGKILL it (no chance to leave).
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Start it again, same address, name and arguments, appending to its log.
    fn restart(&mut self) {
        self.child = Agent::spawn(&self.args, &self.log, true);
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill").args([signal, &self.pid().to_string()]).status().unwrap();
        assert!(status.success());
    }

    fn terminate(&self) {
        self.signal("-TERM");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The states this agent reports for each address, or `None` when it
    /// does not answer (yet).
    async fn states(&self) -> Option<Vec<(String, String)>> {
        let members = client::members(&self.http).await.ok()?;
        Some(members.into_iter().map(|m| (m.addr, m.state)).collect())
    }

    async fn sees(&self, addr: SocketAddr, state: &str) -> bool {
        let addr = addr.to_string();
        self.states().await.is_some_and(|s| s.iter().any(|(a, st)| *a == addr && st == state))
    }

    async fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "agent did not exit; log:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

async fn all_alive(agents: &[&Agent]) -> bool {
    for a in agents {
        for b in agents {
            if !a.sees(b.udp, "alive").await {
                return false;
            }
        }
    }
    true
}

#[tokio::test]
async fn three_agents_converge_a_killed_one_fails_and_terminated_ones_leave() {
    let mut a = Agent::start("a", &[]);
    let mut b = Agent::start("b", &[a.udp]);
    let mut c = Agent::start("c", &[a.udp]);
    let all = [&a, &b, &c];
    eventually(Duration::from_secs(20), "all three alive", || all_alive(&all)).await;
    let members = client::members(&a.http).await.unwrap();
    let c_json = members.iter().find(|m| m.addr == c.udp.to_string()).unwrap();
    assert_eq!(c_json.name, "c");
    assert_eq!(c_json.meta["test"], "e2e");

    // The members command prints a table, or the agent's JSON.
    let out = Command::new(env!("CARGO_BIN_EXE_swim")).args(["members", "--http", &a.http]).output().unwrap();
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.contains("a (self)") && table.contains("test=e2e"), "{table}");
    assert_eq!(table.lines().filter(|l| l.contains(" alive ")).count(), 3, "{table}");
    let out = Command::new(env!("CARGO_BIN_EXE_swim")).args(["members", "--json", "--http", &b.http]).output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 3);

    // b and c join at once: whichever a answered first saw 2 members.
    for agent in [&b, &c] {
        let log = agent.log();
        assert!(log.contains("joined: 2 members") || log.contains("joined: 3 members"), "{log}");
    }

    // SIGKILL: no chance to leave.
    c.kill();
    eventually(Duration::from_secs(30), "c is failed at a and b", || async {
        a.sees(c.udp, "failed").await && b.sees(c.udp, "failed").await
    })
    .await;

    // SIGTERM: b leaves gracefully, a sees it left, b exits cleanly.
    b.terminate();
    eventually(Duration::from_secs(15), "b is left at a", || a.sees(b.udp, "left")).await;
    let status = b.wait_exit(Duration::from_secs(15)).await;
    assert!(status.success(), "b exited with {status}; log:\n{}", b.log());
    assert!(b.log().contains("left the cluster"), "{}", b.log());

    a.terminate();
    let status = a.wait_exit(Duration::from_secs(15)).await;
    assert!(status.success(), "a exited with {status}; log:\n{}", a.log());
    let log = a.log();
    assert!(log.contains("member failed: c"), "{log}");
    assert!(log.contains("member left: b"), "{log}");
    assert!(log.contains("left the cluster"), "{log}");
}

/// A tiny deterministic generator for garbage bytes.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// The sum of every `swim_decode_errors_total` sample.
fn decode_errors(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("swim_decode_errors_total{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<u64>().ok())
        .sum()
}

#[tokio::test]
async fn garbage_datagrams_are_counted_and_the_cluster_stays_correct() {
    // A fake seed: the agent's join attempts bring real datagrams to it,
    // which are then sent back cut short and corrupted.
    let fake = UdpSocket::bind("127.0.0.1:0").unwrap();
    fake.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let fake_addr = fake.local_addr().unwrap();
    let a = Agent::start("a", &[fake_addr]);
    let b = Agent::start("b", &[a.udp]);

    let mut real = vec![0u8; 2048];
    let (len, from) = fake.recv_from(&mut real).unwrap();
    assert_eq!(from, a.udp);
    let real = &real[..len];

    let mut rng = XorShift(0x5eed_cafe_f00d_d00d);
    let mut sent = 0u64;
    for i in 0..200 {
        let len = (rng.next() % 1400) as usize;
        fake.send_to(&rng.bytes(len), a.udp).unwrap();
        sent += 1;
        // Truncated: every prefix of a real datagram.
        let cut = i % real.len();
        fake.send_to(&real[..cut], a.udp).unwrap();
        sent += 1;
        // Corrupted: one bit flipped.
        let mut flipped = real.to_vec();
        let at = (rng.next() as usize) % flipped.len();
        flipped[at] ^= 1 << (rng.next() % 8);
        fake.send_to(&flipped, a.udp).unwrap();
        sent += 1;
        // Pace the burst so the kernel's receive buffer does not drop it.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    for len in [1401usize, 4096, 65_000] {
        fake.send_to(&rng.bytes(len), a.udp).unwrap();
        sent += 1;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }

    eventually(Duration::from_secs(20), "a counted the garbage", || async {
        match client::get(&a.http, "/metrics").await {
            Ok(m) => decode_errors(&m) >= sent / 2,
            Err(_) => false,
        }
    })
    .await;
    let metrics = client::get(&a.http, "/metrics").await.unwrap();
    let too_long = metrics
        .lines()
        .find_map(|l| l.strip_prefix("swim_decode_errors_total{reason=\"too_long\"} "))
        .and_then(|v| v.parse::<u64>().ok());
    assert!(too_long >= Some(1), "{metrics}");
    assert_eq!(client::get(&a.http, "/healthz").await.unwrap(), "ok\n");

    let both = [&a, &b];
    eventually(Duration::from_secs(20), "a and b alive at both", || all_alive(&both)).await;
    // The fake never became a member: nothing it sent was accepted.
    for agent in [&a, &b] {
        let states = agent.states().await.unwrap();
        assert_eq!(states.len(), 2, "{states:?}");
        assert!(states.iter().all(|(_, s)| s == "alive"), "{states:?}");
    }
}

#[test]
fn a_bad_config_file_stops_the_agent_at_start_naming_the_key() {
    let path = std::env::temp_dir().join(format!("swim-bad-{}.toml", std::process::id()));
    for (text, key) in [
        ("[protocol]\nprobe_timeout_ms = 5000\n", "protocol.probe_timeout_ms"),
        ("[protocol]\nprobe_intervall_ms = 5\n", "probe_intervall_ms"),
        ("leave_timeout_ms = -1\n", "leave_timeout_ms"),
    ] {
        std::fs::write(&path, text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_swim"))
            .args(["agent", "--bind", "127.0.0.1:0", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(key), "{key} not in {stderr}");
    }
    let _ = std::fs::remove_file(&path);
}

/// Run `swim ARGS...`; its exit code, stdout and stderr.
fn swim(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_swim")).args(args).stdin(Stdio::null()).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_log_levels_and_a_missing_advertise_stop_the_agent_naming_the_fix() {
    let (code, _, err) = swim(&["agent", "--bind", "127.0.0.1:0", "--log-level", "warning"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("`--log-level`: `warning`") && err.contains("trace, debug, info, warn, error, off"), "{err}");
    // Bare `swim agent` binds 0.0.0.0, which nobody can send to.
    let (code, _, err) = swim(&["agent", "--name", "x"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("`--advertise ADDR`"), "{err}");
    // Printed once.
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn a_fatal_error_is_printed_once() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, _, err) = swim(&["agent", "--bind", &addr, "--name", "x", "--log-level", "info"]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(err.matches("cannot bind UDP").count(), 1, "{err}");
}

/// The value of the unlabelled sample `name` in an exposition.
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn an_agent_exports_the_round_trips_of_its_probes_as_a_histogram() {
    let a = Agent::start("a", &[]);
    let b = Agent::start("b", &[a.udp]);
    let c = Agent::start("c", &[a.udp]);
    let agents = [&a, &b, &c];
    eventually(Duration::from_secs(20), "a probe answered at a, b and c", || async move {
        for agent in agents {
            match client::get(&agent.http, "/metrics").await {
                Ok(m) if sample(&m, "swim_probe_rtt_seconds_count").is_some_and(|n| n >= 1.0) => {}
                _ => return false,
            }
        }
        true
    })
    .await;
    let last = client::get(&c.http, "/metrics").await.unwrap();
    let count = sample(&last, "swim_probe_rtt_seconds_count").unwrap();
    assert_eq!(sample(&last, "swim_probe_rtt_seconds_bucket{le=\"+Inf\"}"), Some(count), "{last}");
    // Loopback round trips are short, but never zero.
    let sum = sample(&last, "swim_probe_rtt_seconds_sum").unwrap();
    assert!(sum > 0.0 && sum / count < 1.0, "{last}");
}

#[tokio::test]
async fn sighup_reloads_tags_and_log_level_and_the_agent_keeps_running() {
    let path = std::env::temp_dir().join(format!("swim-reload-{}.toml", std::process::id()));
    std::fs::write(&path, "log_level = \"info\"\n[meta]\nrole = \"web\"\n").unwrap();
    let config = path.to_str().unwrap();
    // No --log-level on the command line, or it would win over the file.
    let a = Agent::start_with("a", &[], &["--config", config]);
    let b = Agent::start("b", &[a.udp]);
    let both = [&a, &b];
    eventually(Duration::from_secs(20), "both alive", || all_alive(&both)).await;
    let web = "/v1/members?tag=role%3Dweb";
    eventually(Duration::from_secs(10), "b sees a as role=web", || async {
        client::members_at(&b.http, web).await.is_ok_and(|m| m.len() == 1 && m[0].name == "a")
    })
    .await;

    let ran = std::env::temp_dir().join(format!("swim-reload-ran-{}", std::process::id()));
    let handler = format!("user=echo $SWIM_USER_EVENT >> {}", ran.display());
    std::fs::write(
        &path,
        format!("log_level = \"debug\"\nleave_timeout_ms = 100\nevent_handlers = {handler:?}\n[meta]\nrole = \"db\"\n"),
    )
    .unwrap();
    a.signal("-HUP");
    eventually(Duration::from_secs(10), "b sees a as role=db", || async {
        let db = client::members_at(&b.http, "/v1/members?status=alive&tag=role%3Ddb").await;
        db.is_ok_and(|m| m.len() == 1 && m[0].name == "a")
    })
    .await;
    eventually(Duration::from_secs(5), "a logs at debug level", || async { a.log().contains("DEBUG") }).await;
    let log = a.log();
    assert!(log.contains("log level changed") && log.contains("tags changed"), "{log}");
    // The reloaded handler runs.
    assert_eq!(swim(&["event", "--http", &a.http, "after-reload"]).0, Some(0));
    eventually(Duration::from_secs(5), "the new handler ran", || async {
        std::fs::read_to_string(&ran).is_ok_and(|t| t == "after-reload\n")
    })
    .await;
    let _ = std::fs::remove_file(&ran);
    assert!(log.contains("key=\"leave_timeout_ms\"") && log.contains("next restart"), "{log}");
    // A file that does not validate is refused; the agent runs on.
    std::fs::write(&path, "log_level = \"loud\"\n").unwrap();
    a.signal("-HUP");
    eventually(Duration::from_secs(5), "the refusal is logged", || async { a.log().contains("reload refused") }).await;
    assert!(a.sees(a.udp, "alive").await);
    // Filters: a state nobody is in, and a bad one.
    assert_eq!(client::members_at(&a.http, "/v1/members?status=failed").await.unwrap().len(), 0);
    let bad = client::members_at(&a.http, "/v1/members?status=dead").await.unwrap_err().to_string();
    assert!(bad.contains("400") && bad.contains("alive, suspect, failed, left"), "{bad}");
    let (code, out, _) = swim(&["members", "--http", &b.http, "--status", "alive", "--tag", "role=db"]);
    assert_eq!(code, Some(0));
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.contains("role=db"), "{out}");
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn a_join_nobody_answers_is_logged_per_attempt_and_retry_max_exits_with_an_error() {
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let seed = silent.local_addr().unwrap();
    let mut a = Agent::start_with("a", &[seed], &["--retry-max", "2"]);
    let status = a.wait_exit(Duration::from_secs(15)).await;
    assert_eq!(status.code(), Some(1), "{}", a.log());
    let log = a.log();
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("no answer to the join from the seeds")).collect();
    assert_eq!(warnings.len(), 2, "{log}");
    assert!(warnings.iter().all(|l| l.contains(&seed.to_string())), "{log}");
    assert!(log.contains("swim: cannot join the cluster: gave up joining after 2 unanswered attempts"), "{log}");
}

#[tokio::test]
async fn a_name_held_by_a_live_member_is_refused_at_both_ends() {
    let a = Agent::start("a", &[]);
    let mut impostor = Agent::start("a", &[a.udp]);
    let status = impostor.wait_exit(Duration::from_secs(15)).await;
    assert_eq!(status.code(), Some(1), "{}", impostor.log());
    let expected = format!("the name `a` is already held by the live member {}", a.udp);
    assert!(impostor.log().contains(&expected), "{}", impostor.log());
    eventually(Duration::from_secs(5), "a logs the clash", || async { a.log().contains("uses this agent's name `a`") })
        .await;
    // It left: gone from a's view as left, never failed.
    eventually(Duration::from_secs(5), "the impostor is left at a", || a.sees(impostor.udp, "left")).await;
}

/// Milliseconds until `agents` all see `addr` alive.
async fn millis_until_alive(agents: &[&Agent], addr: SocketAddr, limit: Duration) -> u128 {
    let start = Instant::now();
    eventually(limit, "the restarted agent is alive everywhere", || async {
        for a in agents {
            if !a.sees(addr, "alive").await {
                return false;
            }
        }
        true
    })
    .await;
    start.elapsed().as_millis()
}

/// Four rounds: the agent `c` lives through several periodic exchanges,
/// is killed, and once `a` and `b` no longer hold it alive it is started
/// again on the same address and name. Returns the milliseconds until both
/// saw it alive again, each round, and `c`'s log over all five lives.
async fn restart_rounds() -> (Vec<u128>, String) {
    // Periodic exchanges every second, so each process lives through
    // several before it is killed; a join attempt unanswered for a second
    // is retried (and logged).
    let path = std::env::temp_dir().join(format!("swim-restart-{}.toml", std::process::id()));
    std::fs::write(&path, "[protocol]\npush_pull_interval_ms = 1000\njoin_retry_interval_ms = 1000\n").unwrap();
    let config = ["--config", path.to_str().unwrap()];
    let a = Agent::start_with("a", &[], &config);
    let b = Agent::start_with("b", &[a.udp], &config);
    let mut c = Agent::start_with("c", &[a.udp], &config);
    {
        let all = [&a, &b, &c];
        eventually(Duration::from_secs(20), "all three alive", || all_alive(&all)).await;
    }
    let mut took = Vec::new();
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(3500)).await;
        c.kill();
        // The others must have noticed, or "alive" would be the old view.
        eventually(Duration::from_secs(20), "c is no longer alive at a and b", || async {
            let down = |s: Option<Vec<(String, String)>>| {
                s.is_some_and(|s| s.iter().any(|(addr, st)| *addr == c.udp.to_string() && st != "alive"))
            };
            down(a.states().await) && down(b.states().await)
        })
        .await;
        c.restart();
        took.push(millis_until_alive(&[&a, &b], c.udp, Duration::from_secs(20)).await);
    }
    let _ = std::fs::remove_file(&path);
    (took, c.log())
}

#[tokio::test]
async fn a_restarted_agent_is_alive_everywhere_within_a_second_every_time() {
    let (took, _) = restart_rounds().await;
    eprintln!("restarted agent alive at both others after {took:?} ms");
    assert!(took.iter().all(|&ms| ms <= 1000), "alive again after {took:?} ms");
}

/// The stricter check: the seed answers every restarted process's first
/// join attempt within the one-second retry. With exchange numbers that
/// restarted at 0 it failed every time (7 unanswered attempts in four
/// rounds, two rounds never joined); since they start at random it passes
/// on a quiet machine but saw an attempt unanswered for a second on one
/// loaded with four sessions' builds, hence ignored. Run with
/// `cargo test -p swim-tokio --test agent -- --ignored restarted`.
#[tokio::test]
#[ignore = "timing-sensitive under load: a first join attempt may stay unanswered for a second"]
async fn a_restarted_agents_first_join_attempt_is_answered_every_time() {
    let (_, log) = restart_rounds().await;
    assert_eq!(log.matches("swim_tokio::driver: joined: ").count(), 5, "{log}");
    assert_eq!(log.matches("no answer to the join").count(), 0, "{log}");
}

/// `swim monitor --json` against an agent, its lines collected as they come.
struct Monitor {
    child: Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
}

impl Monitor {
    fn start(http: &str) -> Monitor {
        use std::io::BufRead;
        let mut child = Command::new(env!("CARGO_BIN_EXE_swim"))
            .args(["monitor", "--json", "--http", http])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(serde_json::from_str(&line).unwrap());
            }
        });
        Monitor { child, lines }
    }

    /// How many events so far satisfy `f`.
    fn count(&self, f: impl Fn(&serde_json::Value) -> bool) -> usize {
        self.lines.lock().unwrap().iter().filter(|v| f(v)).count()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_user_event(v: &serde_json::Value, name: &str, payload: &str) -> bool {
    v["event"] == "user" && v["name"] == name && v["payload"] == payload
}

#[tokio::test]
async fn operations_through_the_cli_change_the_cluster_and_the_monitor_sees_them() {
    let a = Agent::start("a", &[]);
    let b = Agent::start("b", &[a.udp]);
    let mut c = Agent::start("c", &[a.udp]);
    {
        let all = [&a, &b, &c];
        eventually(Duration::from_secs(20), "all three alive", || all_alive(&all)).await;
    }
    let on_a = Monitor::start(&a.http);
    let on_b = Monitor::start(&b.http);
    // The monitors are connected once they stream a change: c's tags.
    let (code, out, err) = swim(&["tags", "--http", &c.http, "--set", "role=db", "--delete", "test"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "tags: role=db\n");
    eventually(Duration::from_secs(10), "b's monitor sees c updated", || async {
        on_b.count(|v| {
            v["event"] == "member-update" && v["member"]["name"] == "c" && v["member"]["meta"]["role"] == "db"
        }) >= 1
    })
    .await;
    eventually(Duration::from_secs(5), "a sees c's new tags", || async {
        let m = client::members(&a.http).await.unwrap();
        m.iter().any(|m| m.name == "c" && m.meta.get("role").is_some_and(|r| r == "db") && !m.meta.contains_key("test"))
    })
    .await;

    // A user event: once at every agent, the sender included.
    let (code, out, err) = swim(&["event", "--http", &a.http, "deploy", "v1.2"]);
    assert_eq!((code, out.as_str()), (Some(0), "event sent: deploy\n"), "{err}");
    eventually(Duration::from_secs(10), "both monitors see the event", || async {
        on_a.count(|v| is_user_event(v, "deploy", "v1.2")) == 1
            && on_b.count(|v| is_user_event(v, "deploy", "v1.2")) == 1
    })
    .await;
    let from_a = a.udp.to_string();
    assert_eq!(on_b.count(|v| is_user_event(v, "deploy", "v1.2") && v["from"] == from_a.as_str()), 1);
    let (code, _, err) = swim(&["event", "--http", &a.http, "bad name"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("400") && err.contains("invalid event name"), "{err}");

    // Info: this agent and the cluster it sees.
    let (code, out, _) = swim(&["info", "--json", "--http", &a.http]);
    assert_eq!(code, Some(0));
    let info: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((info["name"].as_str(), info["addr"].as_str()), (Some("a"), Some(from_a.as_str())));
    assert_eq!(info["members"]["alive"], 3);
    assert_eq!(info["protocol"]["profile"], "local");
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    let (_, text, _) = swim(&["info", "--http", &a.http]);
    assert!(text.starts_with("name         a\n"), "{text}");

    // Join at runtime: d starts alone and is told to join.
    let mut d = Agent::start("d", &[]);
    let a_udp = a.udp.to_string();
    eventually(Duration::from_secs(10), "d answers", || async { d.sees(d.udp, "alive").await }).await;
    let (code, out, err) = swim(&["join", "--http", &d.http, &a_udp]);
    assert_eq!((code, out.as_str()), (Some(0), "joined: 4 members\n"), "{err}");
    eventually(Duration::from_secs(10), "a sees d", || a.sees(d.udp, "alive")).await;

    // Force-leave: refused for a live member, then d killed, failed, forced out.
    let (code, _, err) = swim(&["force-leave", "--http", &a.http, "b"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("409") && err.contains("not failed"), "{err}");
    let (code, _, err) = swim(&["force-leave", "--http", &a.http, "nobody"]);
    assert!(code == Some(1) && err.contains("404"), "{err}");
    d.kill();
    eventually(Duration::from_secs(20), "d is failed at a", || a.sees(d.udp, "failed")).await;
    let (code, out, err) = swim(&["force-leave", "--http", &a.http, "d"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, format!("forced out: d {}\n", d.udp));
    eventually(Duration::from_secs(10), "d is left at a and b", || async {
        a.sees(d.udp, "left").await && b.sees(d.udp, "left").await
    })
    .await;
    assert!(on_b.count(|v| v["event"] == "member-leave" && v["member"]["name"] == "d") >= 1);

    // Leave: c leaves gracefully and exits.
    let (code, out, _) = swim(&["leave", "--http", &c.http]);
    assert_eq!((code, out.as_str()), (Some(0), "leaving\n"));
    let status = c.wait_exit(Duration::from_secs(15)).await;
    assert!(status.success(), "{}", c.log());
    eventually(Duration::from_secs(10), "c is left at a", || a.sees(c.udp, "left")).await;
}

#[tokio::test]
async fn write_operations_need_the_token_when_one_is_set_and_reads_stay_open() {
    let path = std::env::temp_dir().join(format!("swim-token-{}", std::process::id()));
    std::fs::write(&path, "s3cret\n").unwrap();
    let token_file = path.to_str().unwrap();
    let a = Agent::start_with("a", &[], &["--http-token-file", token_file]);
    eventually(Duration::from_secs(10), "a answers", || async { a.sees(a.udp, "alive").await }).await;
    let run = |token: Option<&str>, args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_swim"));
        cmd.args(args).env_remove("SWIM_HTTP_TOKEN");
        if let Some(t) = token {
            cmd.env("SWIM_HTTP_TOKEN", t);
        }
        let out = cmd.output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let tags = ["tags", "--http", &a.http, "--set", "k=v"];
    let (code, err) = run(None, &tags);
    assert!(code == Some(1) && err.contains("401"), "{err}");
    let (code, err) = run(Some("guess"), &tags);
    assert!(code == Some(1) && err.contains("403"), "{err}");
    assert_eq!(run(Some("s3cret"), &tags).0, Some(0));
    let with_file = ["tags", "--http", &a.http, "--http-token-file", token_file, "--set", "k=w"];
    assert_eq!(run(None, &with_file).0, Some(0));
    // Reads need no token.
    assert_eq!(run(None, &["members", "--http", &a.http]).0, Some(0));
    let members = client::members(&a.http).await.unwrap();
    assert_eq!(members[0].meta["k"], "w");
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn event_handlers_run_for_member_and_user_events_with_their_environment() {
    let dir = std::env::temp_dir().join(format!("swim-handlers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("out");
    let failed_out = dir.join("failed");
    let record = format!(
        "member-join,user=echo \"[$SWIM_EVENT|$SWIM_USER_EVENT|$SWIM_SELF_NAME|$SWIM_SELF_ADDR|$SWIM_TAG_TEST]\" >> {o}; cat >> {o}; echo >> {o}",
        o = out.display()
    );
    let on_failed = format!("member-failed=cat >> {}", failed_out.display());
    let config = dir.join("swim.toml");
    std::fs::write(
        &config,
        format!(
            "event_handler_timeout_ms = 300\nevent_handlers = [{:?}, {:?}, \"user=exit 3\", \"user=sleep 5\"]\n",
            record, on_failed
        ),
    )
    .unwrap();
    let a = Agent::start_with("a", &[], &["--config", config.to_str().unwrap()]);
    let mut b = Agent::start("b", &[a.udp]);
    let read = |p: &PathBuf| std::fs::read_to_string(p).unwrap_or_default();
    let joined = format!("[member-join||a|{}|e2e]\nb\t{}\ttest=e2e\n", a.udp, b.udp);
    eventually(Duration::from_secs(15), "the join handler ran", || async { read(&out).contains(&joined) }).await;
    // Only member-join and user: nothing for b's failure yet.
    let (code, _, err) = swim(&["event", "--http", &b.http, "deploy", "v1.2"]);
    assert_eq!(code, Some(0), "{err}");
    let user = format!("[user|deploy|a|{}|e2e]\nv1.2\n", a.udp);
    eventually(Duration::from_secs(10), "the user handler ran", || async { read(&out).contains(&user) }).await;
    // The failing and the slow handler are logged; neither stops the agent.
    eventually(Duration::from_secs(10), "failures are logged", || async {
        let log = a.log();
        log.contains("event handler failed")
            && log.contains("exit status: 3")
            && log.contains("event handler timed out")
    })
    .await;
    assert!(!failed_out.exists());
    b.kill();
    eventually(Duration::from_secs(20), "the failed handler ran", || async {
        read(&failed_out).starts_with(&format!("b\t{}\t", b.udp))
    })
    .await;
    assert_eq!(read(&out).matches("[member-join").count(), 1, "{}", read(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_handler_filter_naming_an_unknown_event_is_refused_at_start() {
    let (code, _, err) = swim(&["agent", "--bind", "127.0.0.1:0", "--event-handler", "member-joined=true"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("`--event-handler`") && err.contains("member-join, member-leave"), "{err}");
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn without_a_name_the_agent_is_known_by_its_host_name() {
    let udp = free_udp();
    let http = free_tcp().to_string();
    let child = Command::new(env!("CARGO_BIN_EXE_swim"))
        .args(["agent", "--profile", "local", "--bind", &udp.to_string(), "--http", &http])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed when the test ends, whatever happens.
    let _agent = Agent { child, udp, http: http.clone(), log: PathBuf::new(), args: Vec::new() };
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_owned();
    eventually(Duration::from_secs(10), "the agent answers", || async { client::get(&http, "/v1/self").await.is_ok() })
        .await;
    let me: serde_json::Value = serde_json::from_str(&client::get(&http, "/v1/self").await.unwrap()).unwrap();
    assert_eq!(me["name"].as_str(), Some(host.as_str()));
}

#[test]
fn keygen_prints_a_new_base64_key_of_32_bytes() {
    let (code, first, err) = swim(&["keygen"]);
    assert_eq!(code, Some(0), "{err}");
    let (_, second, _) = swim(&["keygen"]);
    assert_eq!(first.trim().len(), 44, "{first}");
    assert_eq!(first.lines().count(), 1);
    let key = keys::parse_key(&first).unwrap();
    assert_eq!(key.as_bytes().len(), 32);
    assert_ne!(keys::parse_key(&second).unwrap(), key);
}

#[test]
fn bad_keys_and_plaintext_beyond_loopback_stop_the_agent_naming_the_fix() {
    let secret = "c2VjcmV0LWJ1dC10b28tc2hvcnQ=";
    let (code, _, err) = swim(&["agent", "--bind", "127.0.0.1:0", "--key", secret]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("invalid value for `--key` (key 1): 20 bytes, not 32"), "{err}");
    assert!(!err.contains(secret), "{err}");
    let (code, _, err) = swim(&["agent", "--bind", "127.0.0.1:0", "--encryption", "seal"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("`--encryption`: `seal` needs at least one key"), "{err}");
    let (code, _, err) = swim(&["agent", "--bind", "0.0.0.0:0", "--advertise", "127.0.0.1:0", "--name", "x"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("refusing to run unencrypted on 0.0.0.0:0") && err.contains("--insecure-plaintext"), "{err}");
}

#[tokio::test]
async fn insecure_plaintext_runs_beyond_loopback_and_warns() {
    let http = free_tcp();
    let log = std::env::temp_dir().join(format!("swim-agent-{}-insecure.log", std::process::id()));
    let args: Vec<String> = ["agent", "--bind", "0.0.0.0:0", "--advertise", "127.0.0.1:0", "--name", "open"]
        .into_iter()
        .chain(["--insecure-plaintext", "--http", &http.to_string(), "--log-level", "info"])
        .map(String::from)
        .collect();
    let child = Agent::spawn(&args, &log, false);
    let agent = Agent { child, udp: free_udp(), http: http.to_string(), log, args };
    eventually(Duration::from_secs(10), "the agent warns", || async { agent.log().contains("UNENCRYPTED") }).await;
    assert!(agent.log().contains("agent running"), "{}", agent.log());
}

/// A private file holding `keys`, one per line.
fn key_file(name: &str, keys: &[&Key]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("swim-keys-{}-{name}", std::process::id()));
    let text: String = keys.iter().map(|k| keys::key_text(k) + "\n").collect();
    std::fs::write(&path, text).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

#[tokio::test]
async fn sealed_agents_converge_and_one_with_another_key_is_not_seen() {
    let k1 = Key::from_bytes([0x41; 32]);
    let file = key_file("k1", &[&k1]);
    let file_arg = file.display().to_string();
    let a = Agent::start_with("a", &[], &["--key-file", &file_arg]);
    let b = Agent::start_with("b", &[a.udp], &["--key", &keys::key_text(&k1)]);
    let c = Agent::start_with("c", &[a.udp], &["--key-file", &file_arg, "--encryption", "require"]);
    let other = Key::from_bytes([0x42; 32]);
    let x = Agent::start_with("x", &[a.udp], &["--key", &keys::key_text(&other)]);
    let all = [&a, &b, &c];
    eventually(Duration::from_secs(20), "the three sealed agents converge", || all_alive(&all)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    for agent in all {
        assert!(agent.states().await.unwrap().iter().all(|(addr, _)| *addr != x.udp.to_string()), "x is seen");
    }
    assert_eq!(x.states().await.unwrap().len(), 1, "x learned members");
    for agent in [&a, &b, &c, &x] {
        let log = agent.log();
        assert!(!log.contains(&keys::key_text(&k1)) && !log.contains(&keys::key_text(&other)), "a key in the log");
    }
    assert!(a.log().contains(&format!("primary={}", k1.id())), "{}", a.log());
    let metrics = client::get(&a.http, "/metrics").await.unwrap();
    let unknown_key = metrics
        .lines()
        .find_map(|l| l.strip_prefix("swim_decode_errors_total{reason=\"unknown_key\"} "))
        .and_then(|v| v.parse::<u64>().ok());
    assert!(unknown_key.is_some_and(|n| n > 0), "x's datagrams not counted: {unknown_key:?}");
    std::fs::remove_file(&file).unwrap();
}

/// Run `swim ARGS...` with `input` on stdin; its exit code, stdout and stderr.
fn swim_with_input(args: &[&str], input: &str) -> (Option<i32>, String, String) {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_swim"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn keys_rotate_through_the_cli_without_a_failure_and_refusals_are_clear() {
    let (k1, k2) = (Key::from_bytes([0x51; 32]), Key::from_bytes([0x52; 32]));
    let (id1, id2) = (k1.id().to_string(), k2.id().to_string());
    let file = key_file("rotation", &[&k1]);
    let file_arg = file.display().to_string();
    let a = Agent::start_with("a", &[], &["--key-file", &file_arg]);
    let b = Agent::start_with("b", &[a.udp], &["--key-file", &file_arg]);
    let c = Agent::start_with("c", &[a.udp], &["--key-file", &file_arg]);
    let all = [&a, &b, &c];
    eventually(Duration::from_secs(20), "the three converge", || all_alive(&all)).await;

    let (code, out, err) = swim(&["keys", "list", "--http", &a.http]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, format!("encryption require\n{id1} primary\n"));

    // 1. Install the new key everywhere (from stdin, or as an argument).
    let (code, out, err) = swim_with_input(&["keys", "install", "-", "--http", &a.http], &keys::key_text(&k2));
    assert_eq!((code, out.trim()), (Some(0), format!("installed key {id2}").as_str()), "{err}");
    for agent in [&b, &c] {
        let (code, _, err) = swim(&["keys", "install", &keys::key_text(&k2), "--http", &agent.http]);
        assert_eq!(code, Some(0), "{err}");
    }
    // The primary key cannot be removed; an unknown id is not found.
    let (code, _, err) = swim(&["keys", "remove", &id1, "--http", &a.http]);
    assert_eq!(code, Some(1));
    assert!(err.contains("HTTP 409") && err.contains(&format!("key {id1} is the primary key")), "{err}");
    let (code, _, err) = swim(&["keys", "use", "00000000", "--http", &a.http]);
    assert_eq!(code, Some(1));
    assert!(err.contains("HTTP 404") && err.contains("no installed key has id 00000000"), "{err}");
    let (code, _, err) = swim(&["keys", "install", "c2hvcnQ=", "--http", &a.http]);
    assert_eq!(code, Some(2));
    assert!(err.contains("invalid value for `KEY`: 5 bytes, not 32") && !err.contains("c2hvcnQ="), "{err}");

    // 2. Use it everywhere (by id, or by the key itself).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (code, out, err) = swim(&["keys", "use", &keys::key_text(&k2), "--http", &a.http]);
    assert_eq!((code, out.trim()), (Some(0), format!("key {id2} now seals").as_str()), "{err}");
    for agent in [&b, &c] {
        assert_eq!(swim(&["keys", "use", &id2, "--http", &agent.http]).0, Some(0));
    }
    // 3. Remove the old one everywhere.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for agent in all {
        let (code, out, err) = swim(&["keys", "remove", &id1, "--http", &agent.http]);
        assert_eq!((code, out.trim()), (Some(0), format!("removed key {id1}").as_str()), "{err}");
    }
    let (_, out, _) = swim(&["keys", "list", "--http", &b.http]);
    assert_eq!(out, format!("encryption require\n{id2} primary\n"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(all_alive(&all).await);

    let metrics = client::get(&a.http, "/metrics").await.unwrap();
    assert!(metrics.contains(&format!("swim_primary_key_info{{id=\"{id2}\"}} 1\n")), "{metrics}");
    assert!(metrics.contains("swim_keys 1\n") && metrics.contains("swim_encryption_info{mode=\"require\"} 1\n"));
    for reason in ["unknown_key", "bad_tag", "replayed"] {
        assert!(metrics.contains(&format!("swim_decode_errors_total{{reason=\"{reason}\"}} 0\n")), "{reason}");
    }
    let info: serde_json::Value = serde_json::from_str(&client::get(&c.http, "/v1/info").await.unwrap()).unwrap();
    assert_eq!(info["encryption"], serde_json::json!({ "mode": "require", "primary_key": id2, "keys": 1 }));
    for agent in all {
        let log = agent.log();
        assert!(!log.contains("member failed"), "{log}");
        assert!(!log.contains(&keys::key_text(&k1)) && !log.contains(&keys::key_text(&k2)), "a key in the log");
    }
    assert!(b.log().contains(&format!("key now primary: it seals every datagram key={id2}")), "{}", b.log());
    std::fs::remove_file(&file).unwrap();
}

#[tokio::test]
async fn key_commands_on_a_plaintext_agent_say_it_has_no_keys() {
    let a = Agent::start("plain", &[]);
    eventually(Duration::from_secs(10), "the agent answers", || async {
        client::get(&a.http, "/v1/keys").await.is_ok()
    })
    .await;
    let (_, out, _) = swim(&["keys", "list", "--http", &a.http]);
    assert_eq!(out, "encryption off\n");
    let (code, _, err) = swim(&["keys", "install", &keys::key_text(&Key::from_bytes([1; 32])), "--http", &a.http]);
    assert_eq!(code, Some(1));
    assert!(err.contains("HTTP 409") && err.contains("started without encryption keys"), "{err}");
}

#[tokio::test]
async fn three_recording_agents_one_killed_two_terminated_each_log_replays() {
    use swim_sim::replay::{run, Ending, Options};
    let dir = std::env::temp_dir().join(format!("swim-agent-record-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let log = |name: &str| dir.join(format!("{name}.swimlog"));
    let (la, lb, lc) = (log("a"), log("b"), log("c"));
    let mut a = Agent::start_with("a", &[], &["--record", la.to_str().unwrap()]);
    let mut b = Agent::start_with("b", &[a.udp], &["--record", lb.to_str().unwrap(), "--record-max-bytes", "2097152"]);
    let mut c = Agent::start_with("c", &[a.udp], &["--record", lc.to_str().unwrap()]);
    let all = [&a, &b, &c];
    eventually(Duration::from_secs(20), "all three alive", || all_alive(&all)).await;
    // A tag change and a user event, recorded by all three.
    assert_eq!(swim(&["tags", "--http", &b.http, "--set", "role=db"]).0, Some(0));
    assert_eq!(swim(&["event", "--http", &a.http, "deploy", "v42"]).0, Some(0));
    eventually(Duration::from_secs(10), "c sees b's tag", || async {
        client::members(&c.http)
            .await
            .is_ok_and(|ms| ms.iter().any(|m| m.name == "b" && m.meta.get("role").is_some_and(|r| r == "db")))
    })
    .await;
    c.kill();
    eventually(Duration::from_secs(30), "c is failed at a and b", || async {
        a.sees(c.udp, "failed").await && b.sees(c.udp, "failed").await
    })
    .await;
    b.terminate();
    assert!(b.wait_exit(Duration::from_secs(15)).await.success(), "{}", b.log());
    eventually(Duration::from_secs(15), "b is left at a", || a.sees(b.udp, "left")).await;
    a.terminate();
    assert!(a.wait_exit(Duration::from_secs(15)).await.success(), "{}", a.log());
    for (path, killed) in [(&la, false), (&lb, false), (&lc, true)] {
        let mut view = Vec::new();
        let options = Options { file: path.clone(), view: true, ..Default::default() };
        let r = run(&options, &mut view).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let view = String::from_utf8(view).unwrap();
        if path != &lb {
            assert!(
                view.contains(&format!("updated   {}", b.udp)),
                "{}: the replay saw b's tag change:\n{view}",
                path.display()
            );
        }
        assert!(r.steps > 3, "{}: {r:?}", path.display());
        if killed {
            assert_ne!(r.ending, Ending::EndRecord, "a SIGKILLed agent closed its log");
        } else {
            assert_eq!(r.ending, Ending::EndRecord, "{}: {r:?}", path.display());
        }
    }
    assert!(a.log().contains("recording closed"), "{}", a.log());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_recording_limit_below_a_mebibyte_is_refused_naming_the_option() {
    let (code, _, err) =
        swim(&["agent", "--bind", "127.0.0.1:0", "--record", "/tmp/x.swimlog", "--record-max-bytes", "1000"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("invalid value for `--record-max-bytes`: 1000: give at least 1048576"), "{err}");
}
