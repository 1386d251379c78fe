//! `swim-compare` (feature `compare`): a small run of all three
//! implementations writes every figure, swim converges and detects the
//! crash, the figures repeat for a seed, and bad options are refused.
#![cfg(feature = "compare")]

use std::process::{Command, Output};

use serde_json::Value;

fn compare(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_swim-compare")).args(args).output().expect("the binary runs")
}

const FIELDS: [&str; 10] = [
    "cpu_us_per_node_period",
    "datagrams_per_node_period",
    "bytes_per_node_period",
    "peak_rss_mb",
    "join_convergence_seconds",
    "all_failed_p50",
    "all_failed_p99",
    "false_positives",
    "false_suspicions",
    "settings",
];

/// Figures that measure the machine rather than the run.
const MACHINE: [&str; 6] = [
    "cpu_us_per_node_period",
    "cpu_us_per_node_period_with_harness",
    "share_in_calls",
    "peak_rss_mb",
    "wall_seconds",
    "clock_overhead_ns",
];

fn run(seed: &str, name: &str) -> Value {
    let dir = std::env::temp_dir().join(format!("swim-compare-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let json = dir.join(name);
    let path = json.to_str().expect("utf-8 path");
    let o = compare(&["--nodes", "20", "--window", "10", "--loss", "0.05", "--seed", seed, "--json", path]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&json).expect("the JSON was written");
    serde_json::from_str(&text).expect("valid JSON")
}

#[test]
fn every_implementation_reports_every_figure_and_converges_and_swim_detects_the_crash() {
    let doc = run("3", "a.json");
    for name in ["swim", "foca", "kinship"] {
        let imp = &doc["implementations"][name];
        for field in FIELDS {
            assert!(imp.get(field).is_some(), "{name} lacks {field}: {imp}");
        }
        assert!(imp["settings"].is_object(), "{name} settings: {imp}");
        assert!(imp["peak_rss_mb"].as_f64().is_some_and(|mb| mb > 0.0), "{name}: {imp}");
        // Under 5% loss a join message or its answer is lost now and then:
        // each implementation's driver retries until the node joined.
        assert!(imp["join_convergence_seconds"].as_f64().is_some(), "{name} did not converge: {imp}");
    }
    let swim = &doc["implementations"]["swim"];
    assert!(swim["join_convergence_seconds"].as_f64().is_some_and(|s| s < 10.0), "{swim}");
    assert_eq!(swim["crashed"], 1, "{swim}");
    assert_eq!(swim["crashed_failed_everywhere"], 1, "{swim}");
    assert!(swim["all_failed_p99"].as_f64().is_some(), "{swim}");
    assert_eq!(swim["false_positives"], 0, "{swim}");
    assert!(swim["datagrams_per_node_period"].as_f64().is_some_and(|d| d > 0.0), "{swim}");
}

#[test]
fn the_same_seed_gives_the_same_figures() {
    let strip = |mut doc: Value| {
        for name in ["swim", "foca", "kinship"] {
            let imp = doc["implementations"][name].as_object_mut().expect("an object");
            for field in MACHINE {
                imp.remove(field);
            }
        }
        doc
    };
    let a = strip(run("9", "b.json"));
    let b = strip(run("9", "c.json"));
    assert_eq!(a, b);
}

#[test]
fn bad_options_are_refused_naming_the_option_and_the_allowed_values() {
    let cases: [(&[&str], &str, &str); 4] = [
        (&["--nodes", "20", "--loss", "2"], "--loss", "0 to 0.5"),
        (&["--nodes", "1"], "--nodes", "2..=20000"),
        (&["--nodes", "20", "--impl", "memberlist"], "--impl", "swim, foca, kinship"),
        (&["--nodes", "5000", "--impl", "kinship"], "--nodes", "at most at 2000"),
    ];
    for (args, option, allowed) in cases {
        let o = compare(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(option) && err.contains(allowed), "{args:?}: {err}");
    }
}
