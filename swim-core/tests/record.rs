//! Recordings: a node recorded through join, metadata, a broadcast, a key
//! rotation, a crashed peer and its leave replays from its log with equal
//! outputs at every step; the log holds no key; rotated files replay as one
//! run and a missing one is named; an edited log diverges at the edited
//! step; damaged, cut and foreign logs are refused with the reason.

mod common;

use std::time::Duration;

use common::Cluster;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use swim_core::record::{
    ContinuityError, Divergence, Header, LogError, LogReader, Record, Replay, RngKind, FORMAT_VERSION,
};
use swim_core::wire::crc32c;
use swim_core::{Config, Encryption, Input, Key, NodeId, Outcome, State};

const K1: [u8; 32] = [0x11; 32];
const K2: [u8; 32] = [0x22; 32];

/// Three nodes, node 0 recorded; `rotate_every` splits its log into files
/// after that many run phases. Returns the log's files.
fn recorded_run(sealed: bool, rotate: bool) -> Vec<Vec<u8>> {
    let (k1, k2) = (Key::from_bytes(K1), Key::from_bytes(K2));
    let mut config = Config::local();
    let mut c = Cluster::new(7);
    if sealed {
        config.encryption = Encryption::Require;
        c.add_keyed(0, config.clone(), std::slice::from_ref(&k1));
        for id in 1..3 {
            c.add_keyed(id, config.clone(), &[k1.clone(), k2.clone()]);
        }
    } else {
        for id in 0..3 {
            c.add(id, config.clone());
        }
    }
    c.record(0);
    let mut files = Vec::new();
    let mut phase = |c: &mut Cluster, d: Duration| {
        c.run_for(d);
        if rotate {
            let (r, node, log) = c.recorder().unwrap();
            r.end_file(node, log);
            files.push(std::mem::take(log));
            r.begin_file(log);
        }
    };
    c.join(1, &[0]);
    c.join(2, &[0]);
    phase(&mut c, Duration::from_secs(5));
    assert_eq!(c.input(0, Input::SetMetadata(b"role=db")), Outcome::Done);
    phase(&mut c, Duration::from_secs(3));
    assert_eq!(c.input(0, Input::Broadcast(b"hello")), Outcome::Done);
    // A refused command is a step too.
    let too_big = vec![0u8; config.max_metadata_len + 1];
    assert!(matches!(c.input(0, Input::SetMetadata(&too_big)), Outcome::Command(_)));
    phase(&mut c, Duration::from_secs(3));
    if sealed {
        assert_eq!(c.input(0, Input::InstallKey(&k2)), Outcome::Installed(k2.id()));
        for id in 0..3 {
            assert_eq!(c.input(id, Input::UseKey(k2.id())), Outcome::Done);
        }
        phase(&mut c, Duration::from_secs(2));
        assert_eq!(c.input(0, Input::RemoveKey(k1.id())), Outcome::Done);
    }
    c.crashed.insert(2);
    phase(&mut c, Duration::from_secs(30));
    assert_eq!(c.view(0, 2), Some(State::Dead), "node 0 saw node 2 fail");
    assert_eq!(c.view(1, 0).map(|_| ()), Some(()));
    c.input(0, Input::Leave);
    c.run_for(Duration::from_secs(3));
    let (r, node, log) = c.recorder().unwrap();
    r.finish(node, log);
    files.push(std::mem::take(log));
    files
}

/// Replay every file in order; the number of steps replayed, or where and
/// how it stopped.
fn replay(files: &[Vec<u8>]) -> Result<u64, Stop> {
    let mut replay: Option<Replay<NodeId, ChaCha8Rng>> = None;
    for file in files {
        let (header, mut reader) = LogReader::<NodeId>::open(file).map_err(Stop::Log)?;
        match replay.as_mut() {
            None => {
                assert_eq!(header.rng, RngKind::ChaCha8);
                replay = Some(Replay::new(&header, ChaCha8Rng::from_seed(header.rng_seed)).unwrap());
            }
            Some(r) => r.next_file(&header).map_err(Stop::Continuity)?,
        }
        let r = replay.as_mut().unwrap();
        while let Some(record) = reader.next() {
            match record.map_err(Stop::Log)? {
                Record::Step(step) => r.step(&step, |_| {}).map_err(Stop::Diverged)?,
                Record::Rotated => break,
                Record::End { steps } => {
                    assert_eq!(steps, r.steps());
                    return Ok(steps);
                }
            }
        }
    }
    Err(Stop::NoEnd(replay.map_or(0, |r| r.steps())))
}

#[derive(Debug)]
enum Stop {
    Log(LogError),
    Continuity(ContinuityError),
    Diverged(Divergence),
    /// The files ran out before the end record, after this many steps.
    #[allow(dead_code)] // shown by Debug when a test fails
    NoEnd(u64),
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_recorded_node_replays_with_equal_outputs_at_every_step() {
    for sealed in [false, true] {
        let files = recorded_run(sealed, false);
        assert_eq!(files.len(), 1);
        let steps = replay(&files).unwrap_or_else(|e| panic!("sealed {sealed}: {e:?}"));
        assert!(steps > 150, "{steps} steps");
        // No key material, in any form a key could be written.
        for key in [K1, K2] {
            assert!(!contains(&files[0], &key[..8]), "the log holds key bytes");
        }
        let (header, _) = LogReader::<NodeId>::open(&files[0]).unwrap();
        assert_eq!(header.key_ids.len(), usize::from(sealed));
    }
}

#[test]
fn rotated_files_replay_as_one_run_and_a_missing_one_is_named() {
    let files = recorded_run(true, true);
    assert!(files.len() >= 4, "{} files", files.len());
    let whole = replay(&recorded_run(true, false)).unwrap();
    assert_eq!(replay(&files).unwrap(), whole, "rotation changes nothing a replay sees");
    // Every file repeats the header, with its place in the run.
    let (second, _) = LogReader::<NodeId>::open(&files[1]).unwrap();
    assert_eq!((second.file_index, second.identity), (1, NodeId(0)));
    assert!(second.first_step > 0);
    let mut gap = files.clone();
    gap.remove(2);
    match replay(&gap) {
        Err(Stop::Continuity(ContinuityError::NotNext { expected_index: 2, index: 3, .. })) => {}
        other => panic!("a missing file went unnoticed: {other:?}"),
    }
}

/// The offset and body range of every record after the header, in order.
fn records(file: &[u8]) -> Vec<(usize, usize)> {
    let mut at = 10;
    let mut out = Vec::new();
    while at + 4 <= file.len() {
        let len = u32::from_be_bytes(file[at..at + 4].try_into().unwrap()) as usize;
        out.push((at, len));
        at += 4 + len + 4;
    }
    out.remove(0); // the header
    out
}

#[test]
fn an_edited_log_diverges_at_the_edited_step() {
    let files = recorded_run(false, false);
    let log = &files[0];
    // Pick a step that took a datagram (kind 2, input tag 0 after the time).
    let recs = records(log);
    for (nth, &(at, len)) in recs.iter().enumerate().filter(|(i, _)| *i > 60).take(40) {
        let mut edited = log.clone();
        // Change one byte of the step's last input byte region: the byte
        // just before the outcome and outputs is inside the input.
        let target = at + 4 + len - 14;
        edited[target] ^= 0x40;
        // A hand edit keeps the record's checksum right: recompute it.
        let crc = crc32c(&edited[at + 4..at + 4 + len]);
        edited[at + 4 + len..at + 8 + len].copy_from_slice(&crc.to_be_bytes());
        match replay(&[edited]) {
            Err(Stop::Diverged(d)) => {
                assert_eq!(d.step, nth as u64, "diverged at {} for an edit at step {nth}", d.step);
                assert!(d.to_string().starts_with(&format!("step {nth} diverged")), "{d}");
                return;
            }
            // The edit made the record unreadable instead (a length or a tag).
            Err(Stop::Log(LogError::Corrupt { .. })) => continue,
            other => panic!("an edit at step {nth} went unnoticed: {other:?}"),
        }
    }
    panic!("no edit produced a divergence");
}

#[test]
fn damaged_cut_and_foreign_logs_are_refused_with_the_reason() {
    let files = recorded_run(false, false);
    let log = &files[0];
    let recs = records(log);
    // One flipped byte: the record's checksum names it.
    let (at, _) = recs[50];
    let mut flipped = log.clone();
    flipped[at + 7] ^= 1;
    match replay(&[flipped]) {
        Err(Stop::Log(LogError::Corrupt { offset, what: "checksum mismatch" })) => assert_eq!(offset, at as u64),
        other => panic!("{other:?}"),
    }
    // Cut inside a record: every step before the cut replays, then the cut.
    let (at, len) = recs[100];
    for cut in [at + 2, at + 4 + len / 2, at + 4 + len + 3] {
        let (header, mut reader) = LogReader::<NodeId>::open(&log[..cut]).unwrap();
        let mut r = Replay::new(&header, ChaCha8Rng::from_seed(header.rng_seed)).unwrap();
        let mut steps = 0;
        let end = loop {
            match reader.next() {
                Some(Ok(Record::Step(s))) => {
                    r.step(&s, |_| {}).unwrap();
                    steps += 1;
                }
                other => break other,
            }
        };
        assert_eq!(steps, 100);
        assert_eq!(end, Some(Err(LogError::Cut { offset: at as u64 })));
    }
    // Another layout version, not a log at all, another address type.
    let mut newer = log.clone();
    newer[8..10].copy_from_slice(&(FORMAT_VERSION + 1).to_be_bytes());
    assert_eq!(LogReader::<NodeId>::open(&newer).err(), Some(LogError::FormatVersion { found: FORMAT_VERSION + 1 }));
    let e = LogReader::<NodeId>::open(&newer).err().unwrap().to_string();
    assert!(e.contains(&format!("version {}", FORMAT_VERSION + 1)), "{e}");
    assert_eq!(LogReader::<NodeId>::open(b"#!/bin/sh\n").err(), Some(LogError::NotALog));
    assert_eq!(
        LogReader::<std::net::SocketAddr>::open(log).err(),
        Some(LogError::AddressKind { found: 1, expected: 2 })
    );
    // A header whose checksum is right but whose configuration is laid out
    // another way: named as another build's, not as damage.
    let mut at = 10 + 4 + 1 + 1;
    for _ in 0..2 {
        at += 1 + usize::from(log[at]); // the core version, the recorder
    }
    at += 1 + 1 + 8 + 1 + 1 + 32 + 1; // index, first step, chain, NodeId(0), rng kind, seed, start 0
    at += if log[at] & 0x80 == 0 { 1 } else { 2 }; // the configuration's length
    let mut layout = log.clone();
    layout[at] ^= 0x40;
    let hlen = u32::from_be_bytes(layout[10..14].try_into().unwrap()) as usize;
    let crc = crc32c(&layout[14..14 + hlen]);
    layout[14 + hlen..18 + hlen].copy_from_slice(&crc.to_be_bytes());
    let e = LogReader::<NodeId>::open(&layout).err().unwrap();
    assert_eq!(e, LogError::UnreadableHeader { core_version: swim_core::record::CORE_VERSION.into() });
    assert!(e.to_string().contains("another build of swim-core"), "{e}");
    // An empty or too short file.
    assert_eq!(LogReader::<NodeId>::open(&log[..9]).err(), Some(LogError::Cut { offset: 8 }));
    assert_eq!(LogReader::<NodeId>::open(&log[..12]).err(), Some(LogError::Cut { offset: 10 }));
}

#[test]
fn a_header_round_trips_and_rebuilds_the_node() {
    let files = recorded_run(true, false);
    let (header, _): (Header<NodeId>, _) = LogReader::open(&files[0]).unwrap();
    assert_eq!(header.identity, NodeId(0));
    assert_eq!(header.config.encryption, Encryption::Require);
    assert_eq!(header.key_ids, [Key::from_bytes(K1).id()]);
    assert_eq!((header.file_index, header.first_step, header.chain), (0, 0, 0));
    let node = header.node(ChaCha8Rng::from_seed(header.rng_seed)).unwrap();
    assert_eq!(node.local_addr(), &NodeId(0));
}
