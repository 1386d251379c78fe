//! `swim-sim replay`: a node recorded with `--record-node` (through a crash
//! and loss, plain and sealed) replays with exit 0 and a summary; an edited
//! step diverges (exit 1, the step named); damaged, foreign-version and
//! misplaced logs are refused (exit 2, the problem and the offset named); a
//! cut log replays to the cut (exit 0, the cut named); `--view` prints the
//! view's changes and `--plot` draws them; a rotated log replays across its
//! files and a missing one is named.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use rand_chacha::{ChaCha20Rng, ChaCha8Rng};
use rand_core::{CryptoRng, RngCore, SeedableRng};
use swim_core::record::{Header, Recorder, RngKind, CORE_VERSION};
use swim_core::wire::crc32c;
use swim_core::{Address, Config, Input, Instant, Node, NodeId};

fn swim_sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_swim-sim")).args(args).output().expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh directory for one test's files.
fn dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("swim-sim-replay-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Record node 0 (the seed, which the crash never picks) of a 6-node run
/// with a crash at 10 s and 5% loss into `log`.
fn record(log: &Path, extra: &[&str]) {
    let args = [
        &["--quiet", "--scenario", "crash", "--nodes", "6", "--duration", "30", "--crash", "1@10"][..],
        &["--loss", "0.05", "--seed", "11", "--record-node", "0", s(log)],
        extra,
    ]
    .concat();
    let o = swim_sim(&args);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
}

/// The summary line's steps count.
fn steps_of(summary: &str) -> u64 {
    summary.strip_prefix("replayed ").and_then(|r| r.split(' ').next()).and_then(|n| n.parse().ok()).expect(summary)
}

/// The offset and length (kind and body) of every record after the header.
fn records(file: &[u8]) -> Vec<(usize, usize)> {
    let mut at = 10;
    let mut out = Vec::new();
    while at + 4 <= file.len() {
        let len = u32::from_be_bytes(file[at..at + 4].try_into().unwrap()) as usize;
        out.push((at, len));
        at += 4 + len + 4;
    }
    out
}

/// Recompute the CRC of the record at `at` (a hand edit's last step).
fn fix_crc(file: &mut [u8], at: usize) {
    let len = u32::from_be_bytes(file[at..at + 4].try_into().unwrap()) as usize;
    let crc = crc32c(&file[at + 4..at + 4 + len]);
    file[at + 4 + len..at + 8 + len].copy_from_slice(&crc.to_be_bytes());
}

/// A varint's length at the start of `bytes`.
fn varint_len(bytes: &[u8]) -> usize {
    bytes.iter().position(|b| b & 0x80 == 0).expect("a varint") + 1
}

#[test]
fn a_recorded_node_replays_with_exit_zero_and_a_summary_plain_and_sealed() {
    let d = dir("ok");
    for (name, extra) in [("plain.log", &[][..]), ("sealed.log", &["--encryption", "require"][..])] {
        let log = d.join(name);
        record(&log, extra);
        let o = swim_sim(&["replay", s(&log)]);
        let out = stdout(&o);
        assert_eq!(o.status.code(), Some(0), "{name}: {out}{}", stderr(&o));
        assert_eq!(out.lines().count(), 1, "one summary line: {out}");
        assert!(out.starts_with("replayed ") && out.contains(" steps from 1 file with no divergence: "), "{out}");
        assert!(out.contains("simulated seconds; events: joined 5"), "{out}");
        assert!(out.contains("failed 1"), "node 0 saw the crashed node fail: {out}");
        assert!(out.trim_end().ends_with("ended with its end record"), "{out}");
        assert!(steps_of(&out) > 100, "{out}");
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_crashed_recorded_node_replays_to_its_last_step_without_an_end_record() {
    let d = dir("crashed");
    let log = d.join("crashed.log");
    // Every node but the seed crashes: node 1 is among them.
    let o = swim_sim(&[
        "--quiet",
        "--scenario",
        "crash",
        "--nodes",
        "3",
        "--duration",
        "20",
        "--crash",
        "2@10",
        "--seed",
        "3",
        "--record-node",
        "1",
        s(&log),
    ]);
    assert!(o.status.code().is_some(), "{}", stderr(&o));
    let o = swim_sim(&["replay", s(&log)]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    assert!(out.contains("no end record (the process stopped without closing its log: killed?)"), "{out}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_one_byte_edit_of_an_input_diverges_at_that_step() {
    let d = dir("edit");
    let log = d.join("run.log");
    record(&log, &[]);
    let mut bytes = std::fs::read(&log).unwrap();
    // The first datagram step after step 50: flip its datagram's first
    // byte (the wire version), keep the record's checksum right.
    let recs = records(&bytes);
    let (step, at) = recs[1..]
        .iter()
        .enumerate()
        .skip(50)
        .find_map(|(i, &(at, _))| {
            let body = &bytes[at + 5..];
            let tag = body[varint_len(body)];
            (bytes[at + 4] == 2 && tag == 0).then_some((i, at))
        })
        .expect("a datagram step");
    let body = at + 5;
    let input = body + varint_len(&bytes[body..]) + 1;
    let datagram = input + varint_len(&bytes[input..]);
    let datagram = datagram + varint_len(&bytes[datagram..]);
    bytes[datagram] ^= 0x40;
    fix_crc(&mut bytes, at);
    let edited = d.join("edited.log");
    std::fs::write(&edited, &bytes).unwrap();
    let o = swim_sim(&["replay", s(&edited)]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{}", stderr(&o));
    assert!(out.starts_with(&format!("diverged at step {step} (+")), "{out}");
    assert!(out.contains(&format!("the record at byte {at} of ")), "{out}");
    assert!(out.contains("input: datagram of "), "{out}");
    assert!(out.contains(&format!("step {step} diverged: the input came to Rejected(")), "{out}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn damaged_cut_and_foreign_version_logs_are_told_apart() {
    let d = dir("damaged");
    let log = d.join("run.log");
    record(&log, &[]);
    let bytes = std::fs::read(&log).unwrap();
    let recs = records(&bytes);
    let whole = steps_of(&stdout(&swim_sim(&["replay", s(&log)])));
    let write = |name: &str, b: &[u8]| {
        let p = d.join(name);
        std::fs::write(&p, b).unwrap();
        p
    };

    // A flipped byte: exit 2, corrupt at the record's offset.
    let (at, _) = recs[40];
    let mut flipped = bytes.clone();
    flipped[at + 7] ^= 1;
    let o = swim_sim(&["replay", s(&write("flipped.log", &flipped))]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(err.contains(&format!("the record at byte {at} is corrupt: checksum mismatch")), "{err}");
    assert!(err.contains("flipped.log"), "{err}");

    // Cut in the middle of a record: exit 0, every step before it replayed.
    let (at, len) = recs[60];
    let o = swim_sim(&["replay", s(&write("cut.log", &bytes[..at + len / 2]))]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    assert!(out.contains(&format!("cut at byte {at} of ")), "{out}");
    assert!(out.contains("replayed the 59 complete steps before it"), "{out}");
    assert_eq!(steps_of(&out), 59);
    assert!(whole > 59);

    // Another swim-core version in the header: exit 2 naming both, unless
    // --any-version.
    let (hat, _) = recs[0];
    let version_at = hat + 4 + 1 + 1 + 1;
    assert_eq!(&bytes[version_at..version_at + CORE_VERSION.len()], CORE_VERSION.as_bytes());
    let mut other = bytes.clone();
    other[version_at] = if other[version_at] == b'9' { b'8' } else { b'9' };
    fix_crc(&mut other, hat);
    let other_version = String::from_utf8(other[version_at..version_at + CORE_VERSION.len()].to_vec()).unwrap();
    let p = write("other.log", &other);
    let o = swim_sim(&["replay", s(&p)]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains(&format!("recorded by swim-core {other_version}; this is swim-core {CORE_VERSION}")), "{err}");
    assert!(err.contains("--any-version"), "{err}");
    let o = swim_sim(&["replay", "--any-version", s(&p)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(steps_of(&stdout(&o)), whole);

    // A header that does not decode under this swim-core (here its
    // configuration's layout version changed, its checksum right): under
    // the same version string it is named a build difference, under
    // another the version.
    let mut layout = bytes.clone();
    let mut at = hat + 5 + 1; // the record's length and kind, the address kind
    for _ in 0..2 {
        at += 1 + usize::from(layout[at]); // the core version, the recorder
    }
    at += 1 + 1 + 8 + 1 + 1 + 32 + 1; // file index, first step, chain, identity, rng kind, seed, start
    at += varint_len(&layout[at..]); // the configuration's length
    let mut encoded = [0u8; 512];
    let mut w = swim_core::wire::Writer::new(&mut encoded);
    Config::lan().encode(&mut w).unwrap();
    assert_eq!(layout[at], w.written()[0], "the configuration's layout version");
    layout[at] ^= 0x40;
    fix_crc(&mut layout, hat);
    let o = swim_sim(&["replay", s(&write("layout.log", &layout))]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("the header does not decode, though its checksum is right: another build of swim-core"),
        "{err}"
    );
    layout[version_at] = other[version_at];
    fix_crc(&mut layout, hat);
    let o = swim_sim(&["replay", s(&write("layout-other.log", &layout))]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "recorded by swim-core {other_version}, whose header this swim-core {CORE_VERSION} cannot read"
        )),
        "{err}"
    );

    // Another layout version, not a log, no file, an unwritable plot.
    let mut newer = bytes.clone();
    newer[8..10].copy_from_slice(&2u16.to_be_bytes());
    for (path, says) in [
        (write("newer.log", &newer), "log format version 2"),
        (write("script.log", b"#!/bin/sh\necho hi\n"), "not a swim log"),
        (d.join("absent.log"), "absent.log: cannot be read"),
    ] {
        let o = swim_sim(&["replay", s(&path)]);
        assert_eq!(o.status.code(), Some(2), "{says}");
        assert!(stderr(&o).contains(says), "{says}: {}", stderr(&o));
    }
    let svg = d.join("refused.svg");
    let o = swim_sim(&["replay", "--plot", s(&svg), s(&d.join("script.log"))]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!svg.exists(), "no empty picture left for a refused log");
    let o = swim_sim(&["replay", s(&log), "--plot", s(&d.join("no/such/dir.svg"))]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--plot ") && stdout(&o).is_empty(), "refused before replaying");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn the_view_prints_each_change_and_the_plot_draws_it() {
    let d = dir("view");
    let log = d.join("run.log");
    record(&log, &[]);
    let svg = d.join("view.svg");
    let o = swim_sim(&["replay", "--view", "--plot", s(&svg), s(&log)]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.last().is_some_and(|l| l.starts_with("replayed ")), "{out}");
    let joined: Vec<&&str> = lines.iter().filter(|l| l.contains(" s  joined ")).collect();
    assert_eq!(joined.len(), 5, "{out}");
    assert!(joined[4].ends_with("members: alive 5, suspect 0, failed 0, left 0"), "{out}");
    let failed = lines.iter().find(|l| l.contains(" failed    NodeId(")).expect("a failed line");
    assert!(failed.trim_start().starts_with('+') && failed.contains(" s  failed "), "{failed}");
    assert!(failed.ends_with("members: alive 4, suspect 0, failed 1, left 0"), "{failed}");
    let picture = std::fs::read_to_string(&svg).expect("the plot was written");
    assert!(picture.starts_with("<svg") && picture.contains("seconds since the node started"), "{picture}");
    for state in ["alive", "suspect", "failed", "left"] {
        assert!(picture.contains(&format!("\n{state}\n")), "{state} in the legend");
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn record_node_refuses_a_node_the_run_does_not_start_and_an_unwritable_file() {
    let d = dir("refuse");
    for (args, says) in [
        (vec!["--nodes", "4", "--record-node", "4", "x.log"], "--record-node 4: the run starts nodes 0..4 only"),
        (vec!["--record-node", "one", "x.log"], "--record-node one: not a node id"),
        (vec!["--record-node", "0", "/no/such/dir/x.log"], "--record-node /no/such/dir/x.log: cannot be written"),
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_swim-sim")).current_dir(&d).args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
        assert!(o.stdout.is_empty(), "{args:?}: refused before the run");
    }
    let _ = std::fs::remove_dir_all(&d);
}

/// A datagram in flight: when it arrives, from, to, its bytes.
type InFlight = (Instant, u32, u32, Vec<u8>);
/// A datagram arrived: its source's index and its bytes.
type Arrival = (usize, Vec<u8>);

/// Three nodes at `addrs` on a 1 ms network, node 0 recorded (its
/// generator of kind `rng`), its log rotated after each of `rotate_at`
/// seconds; node 2 stops at 8 s, the run at 15 s. The log's files.
fn three_node_log<A: Address, R: RngCore + CryptoRng + SeedableRng<Seed = [u8; 32]>>(
    addrs: [A; 3],
    rng: RngKind,
    rotate_at: &[u64],
) -> Vec<Vec<u8>> {
    let config = Config::local();
    let seed = |id: usize| [40 + id as u8; 32];
    let mut nodes: Vec<Option<Node<A, R>>> = (0..3)
        .map(|id| Some(Node::new(addrs[id].clone(), config.clone(), R::from_seed(seed(id)), Instant::ZERO).unwrap()))
        .collect();
    let header = Header {
        core_version: CORE_VERSION.into(),
        recorder: "swim-sim tests".into(),
        file_index: 0,
        first_step: 0,
        chain: 0,
        identity: addrs[0].clone(),
        rng,
        rng_seed: seed(0),
        start: Instant::ZERO,
        config: config.clone(),
        buffer_len: config.max_datagram_size as u32,
        key_ids: Vec::new(),
    };
    let mut recorder = Recorder::new(nodes[0].as_mut().unwrap(), header);
    let (mut files, mut log) = (Vec::new(), Vec::new());
    recorder.begin_file(&mut log);
    let mut buf = vec![0u8; config.max_datagram_size];
    let mut wire: Vec<InFlight> = Vec::new();
    let seeds = [addrs[0].clone()];
    let mut joins = vec![(1, Input::Join(&seeds)), (2, Input::Join(&seeds))];
    let second = |s: u64| Instant::ZERO + Duration::from_secs(s);
    let mut now = Instant::ZERO;
    while now < second(15) {
        // This millisecond's work: the datagrams due, then the timers due.
        let (due, later): (Vec<_>, Vec<_>) = wire.drain(..).partition(|(t, ..)| *t <= now);
        wire = later;
        let mut todo: Vec<(usize, Option<Arrival>)> =
            due.into_iter().map(|(_, from, to, bytes)| (to as usize, Some((from as usize, bytes)))).collect();
        for (id, node) in nodes.iter().enumerate() {
            if node.as_ref().is_some_and(|n| n.poll_timeout().is_some_and(|t| t <= now)) {
                todo.push((id, None));
            }
        }
        for (id, datagram) in &todo {
            let Some(node) = nodes[*id].as_mut() else { continue };
            let input = match datagram {
                Some((from, bytes)) => Input::Datagram { from: &addrs[*from], bytes },
                None => Input::Timeout,
            };
            if *id == 0 {
                recorder.handle(node, now, input, &mut log);
            } else {
                node.handle(now, input);
            }
            drain(*id, node, now, &mut buf, &mut wire, &addrs);
            if *id == 0 {
                recorder.end_step(node, &mut log);
            }
        }
        for (id, input) in joins.drain(..) {
            let node = nodes[id].as_mut().unwrap();
            node.handle(now, input);
            drain(id, node, now, &mut buf, &mut wire, &addrs);
        }
        now = now + Duration::from_millis(1);
        if now == second(8) {
            nodes[2] = None;
        }
        if rotate_at.iter().any(|&s| now == second(s)) {
            recorder.end_file(nodes[0].as_mut().unwrap(), &mut log);
            files.push(std::mem::take(&mut log));
            recorder.begin_file(&mut log);
        }
    }
    recorder.finish(nodes[0].as_mut().unwrap(), &mut log);
    files.push(log);
    files
}

fn drain<A: Address, R: RngCore>(
    id: usize,
    node: &mut Node<A, R>,
    now: Instant,
    buf: &mut [u8],
    wire: &mut Vec<InFlight>,
    addrs: &[A; 3],
) {
    while let Some(tx) = node.poll_transmit(buf) {
        let to = addrs.iter().position(|a| *a == tx.to).expect("a member") as u32;
        wire.push((now + Duration::from_millis(1), id as u32, to, buf[..tx.len].to_vec()));
    }
    while node.poll_event().is_some() {}
}

#[test]
fn a_socket_address_log_with_a_chacha20_generator_replays() {
    let d = dir("socketaddr");
    let addrs: [SocketAddr; 3] = ["127.0.0.1:7001", "127.0.0.1:7002", "[::1]:7003"].map(|a| a.parse().unwrap());
    let files = three_node_log::<SocketAddr, ChaCha20Rng>(addrs, RngKind::ChaCha20, &[]);
    let log = d.join("agent.log");
    std::fs::write(&log, &files[0]).unwrap();
    let o = swim_sim(&["replay", "--view", s(&log)]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    assert!(out.lines().any(|l| l.contains(" s  failed    [::1]:7003 ")), "{out}");
    assert!(out.lines().last().unwrap().contains("events: joined 2, suspected 1, failed 1;"), "{out}");
    // The header names the generator: a ChaCha20 node's log that claims
    // ChaCha8 is replayed with ChaCha8, and parts from its recording.
    let wrong = three_node_log::<SocketAddr, ChaCha20Rng>(addrs, RngKind::ChaCha8, &[]);
    std::fs::write(&log, &wrong[0]).unwrap();
    let o = swim_sim(&["replay", s(&log)]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).starts_with("diverged at step "), "{}", stdout(&o));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_rotated_log_replays_across_its_files_and_a_missing_one_is_named() {
    let d = dir("rotated");
    let files = three_node_log::<NodeId, ChaCha8Rng>([NodeId(0), NodeId(1), NodeId(2)], RngKind::ChaCha8, &[5, 10]);
    assert_eq!(files.len(), 3);
    let first = d.join("node.log");
    let paths = [first.clone(), d.join("node.log.1"), d.join("node.log.2")];
    for (p, f) in paths.iter().zip(&files) {
        std::fs::write(p, f).unwrap();
    }
    let o = swim_sim(&["replay", "--view", s(&first)]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    let summary = out.lines().last().unwrap();
    assert!(summary.contains(" steps from 3 files with no divergence: "), "{summary}");
    assert!(summary.contains("events: joined 2, suspected 1, failed 1;"), "{summary}");
    assert!(summary.ends_with("ended with its end record"), "{summary}");
    assert!(out.lines().any(|l| l.contains(" failed    NodeId(2)")), "{out}");

    // A later file given first: the replay starts at file 0.
    let o = swim_sim(&["replay", s(&paths[1])]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("is file 1 of its run"), "{}", stderr(&o));
    assert!(stderr(&o).contains("a replay starts at the first file"), "{}", stderr(&o));

    // The middle file missing: named, exit 2.
    std::fs::remove_file(&paths[1]).unwrap();
    let o = swim_sim(&["replay", s(&first)]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains(&format!("{} is missing", s(&paths[1]))), "{err}");
    // Another file in its place: the header says it does not follow.
    std::fs::write(&paths[1], &files[2]).unwrap();
    let o = swim_sim(&["replay", s(&first)]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("node.log.1: file 2 (from step ") && err.contains("expected file 1"), "{err}");
    let _ = std::fs::remove_dir_all(&d);
}
