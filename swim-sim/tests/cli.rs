//! The `swim-sim` command: the seed first, the report, the exit status.

use std::process::{Command, Output};

fn swim_sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_swim-sim")).args(args).arg("--quiet").output().expect("the binary runs")
}

/// A short run with slow nodes, whose healthy members suspect them.
const SLOW_RUN: &[&str] = &["--scenario", "slow", "--nodes", "12", "--slow", "2", "--duration", "30"];

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_run_prints_its_seed_first_and_writes_the_json_report() {
    let dir = std::env::temp_dir().join(format!("swim-sim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let json = dir.join("report.json");
    let svg = dir.join("plot.svg");
    let path = |p: &std::path::Path| p.to_str().expect("utf-8 path").to_owned();
    let o = swim_sim(&[
        "--scenario",
        "crash",
        "--nodes",
        "12",
        "--duration",
        "40",
        "--crash",
        "1@10",
        "--seed",
        "5",
        "--json",
        &path(&json),
        "--plot",
        &path(&svg),
    ]);
    assert!(o.status.success(), "{}", stdout(&o));
    let out = stdout(&o);
    assert_eq!(out.lines().next(), Some("SEED=5"));
    // Run by cargo's test harness, the binary counts as run through cargo.
    let replay = out.lines().nth(1).expect("a replay line");
    assert!(
        replay.starts_with("cargo run ") && replay.contains("-p swim-sim -- --scenario crash --seed 5"),
        "{replay}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("report written")).expect("JSON");
    assert_eq!(report["seed"], 5);
    assert_eq!(report["nodes"], 12);
    assert_eq!(report["crashed"], 1);
    assert!(std::fs::read_to_string(&svg).expect("plot written").starts_with("<svg"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_a_seed_one_is_drawn_and_printed() {
    let o = swim_sim(&["--scenario", "join", "--nodes", "5", "--duration", "5"]);
    assert!(o.status.success());
    let out = stdout(&o);
    let seed = out.lines().next().and_then(|l| l.strip_prefix("SEED=")).expect("SEED= first");
    assert!(seed.parse::<u64>().is_ok(), "{seed}");
    assert!(out.contains(&format!("--seed {seed} ")));
}

#[test]
fn an_unmet_expectation_exits_non_zero_with_the_replay_command() {
    let o = swim_sim(&[SLOW_RUN, &["--seed", "3", "--expect", "no-false-suspicions"]].concat());
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.contains("NOT AS EXPECTED"), "{out}");
    assert!(out.contains("-p swim-sim -- --scenario slow --seed 3"), "{out}");
    assert!(out.lines().any(|l| l.starts_with("replay: cargo run ")), "{out}");
    assert!(out.trim_end().ends_with("--expect no-false-suspicions"), "{out}");
}

#[test]
fn options_the_run_cannot_honour_are_refused_before_it_starts() {
    let dir = std::env::temp_dir().join(format!("swim-sim-cli-none-{}", std::process::id()));
    let bad_json = dir.join("no").join("such").join("dir.json");
    let bad_json = bad_json.to_str().expect("utf-8 path");
    for (args, says) in [
        (&["--nodes", "0"][..], "--nodes 0: must be within 1..="),
        (&["--nodes", "100", "--crash", "400@10"][..], "at most 99 nodes may crash"),
        (&["--crash", "2@500", "--duration", "60"][..], "--crash at 500 s: must be within 0..=60 s"),
        (&["--nodes", "100", "--slow", "200"][..], "--slow 200: must be within 0..=99"),
        (&["--latency", "5..1"][..], "--latency 5..1: MAX_MS must be at least MIN_MS"),
        (&["--json", bad_json][..], "--json"),
        (&["--encryption", "on"][..], "'--encryption <MODE>': expected one of off, accept, seal, require"),
        (&["--flood", "10"][..], "'--flood <COUNT@START..END>': expected COUNT@START..END in seconds"),
        (&["--flood", "5000@1..2"][..], "--flood 5000@..: COUNT must be within 0..=1000"),
        (
            &["--flood", "2@900..999", "--duration", "60"][..],
            "--flood starting at 900 s: START must be within 0..=60 s",
        ),
    ] {
        let o = swim_sim(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(o.stdout.is_empty(), "{args:?}: refused before the run");
    }
}

#[test]
fn a_flooded_sealed_run_reports_the_flood_and_the_refusals_in_json_and_text() {
    let json = std::env::temp_dir().join(format!("swim-sim-cli-flood-{}.json", std::process::id()));
    let o = swim_sim(&[
        "--scenario",
        "join",
        "--nodes",
        "8",
        "--duration",
        "20",
        "--seed",
        "2",
        "--flood",
        "1@5..15",
        "--encryption",
        "require",
        "--json",
        json.to_str().expect("utf-8 path"),
    ]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.lines().nth(1).is_some_and(|l| l.ends_with("--encryption require --flood 1@5..15")), "{out}");
    assert!(out.contains("| sealed: encryption require"), "{out}");
    assert!(out.contains("flood: 1 outsiders from 5 s to 15 s, 20.0 datagrams/s each"), "{out}");
    assert!(out.contains("refused by the nodes: "), "{out}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("report written")).expect("JSON");
    assert_eq!(report["flood"]["sent"], 200);
    assert!(report["flood"]["by_kind"]["wrong_key"].as_u64().is_some_and(|n| n > 0), "{}", report["flood"]);
    assert!(report["refused"]["plaintext_refused"].as_u64().is_some_and(|n| n > 0), "{}", report["refused"]);
    assert_eq!(report["encryption"], "require");
    let _ = std::fs::remove_file(&json);
}

#[test]
fn nonsense_options_are_refused() {
    assert!(!swim_sim(&["--loss", "2"]).status.success());
    assert!(!swim_sim(&["--crash", "3"]).status.success());
    assert!(!swim_sim(&["--scenario", "meteor"]).status.success());
}

#[test]
fn the_replay_command_names_the_program_as_it_was_invoked() {
    let bin = env!("CARGO_BIN_EXE_swim-sim");
    let o = Command::new(bin)
        .args(["--scenario", "join", "--nodes", "4", "--duration", "3", "--seed", "9", "--quiet"])
        .env_remove("CARGO")
        .output()
        .expect("the binary runs");
    let out = stdout(&o);
    let replay = out.lines().nth(1).expect("a replay line");
    assert!(replay.starts_with(&format!("{bin} --scenario join --seed 9 --nodes 4")), "{replay}");
}

#[test]
fn a_sweep_tables_every_seed_and_exits_zero_when_all_hold() {
    let o = swim_sim(&[
        "sweep",
        "--seeds",
        "1..3",
        "--jobs",
        "2",
        "--scenario",
        "crash",
        "--nodes",
        "6",
        "--duration",
        "30",
        "--crash",
        "1@10",
    ]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.lines().next().is_some_and(|l| l.contains("seed") && l.contains("detection p99")), "{out}");
    assert_eq!(out.lines().filter(|l| l.trim_start().starts_with(['1', '2', '3'])).count(), 3, "{out}");
    assert!(out.contains("swept 3 seeds (1..3): 0 failing"), "{out}");
}

#[test]
fn a_failing_sweep_names_its_lowest_failing_seed_and_exits_one() {
    let o = swim_sim(&[&["sweep", "--seeds", "3..4"], SLOW_RUN, &["--expect", "no-false-suspicions"]].concat());
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("lowest failing seed: 3 (expected no false suspicion"), "{out}");
    assert!(out.contains("-p swim-sim -- --scenario slow --seed 3 --nodes 12"), "{out}");
    assert!(out.trim_end().ends_with("--expect no-false-suspicions"), "{out}");
}

#[test]
fn a_sweep_refuses_options_the_runs_cannot_honour() {
    let o = swim_sim(&["sweep", "--seeds", "1..2", "--nodes", "0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--nodes 0"));
    assert!(!swim_sim(&["sweep", "--seeds", "5..1"]).status.success());
}

#[test]
fn off_a_terminal_progress_is_one_plain_line_per_phase() {
    let o = Command::new(env!("CARGO_BIN_EXE_swim-sim"))
        .args(["--scenario", "join", "--nodes", "4", "--duration", "3", "--seed", "9"])
        .output()
        .expect("the binary runs");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        err.lines().collect::<Vec<_>>(),
        ["fault phase: 3 simulated seconds, 4 nodes", "liveness phase: faults off, the live nodes must agree", "done"]
    );
    assert!(!err.contains('\r'), "no bar redrawn over itself");
}
