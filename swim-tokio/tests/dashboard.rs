//! The shipped Grafana dashboard only queries metrics the agent exports.
#![cfg(feature = "agent")]

use std::collections::BTreeSet;

use swim_tokio::agent::metrics::{render, Keyring, ProcessStats};
use swim_tokio::Stats;

/// Every `expr` of every panel's targets.
fn queries(dashboard: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        let targets = panel["targets"].as_array().expect("every panel has targets");
        assert!(!targets.is_empty(), "panel {} has no query", panel["title"]);
        for t in targets {
            out.push(t["expr"].as_str().expect("a query").to_owned());
        }
    }
    out
}

/// The metric names in a PromQL query: identifiers of the project's
/// (`swim_`) and the process's (`process_`) families.
fn metric_names(query: &str) -> Vec<String> {
    query
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| w.starts_with("swim_") || w.starts_with("process_"))
        .map(str::to_owned)
        .collect()
}

/// The series names an exposition declares: each family's own name, and
/// for a histogram its `_bucket`, `_sum` and `_count` series, which are what
/// queries name.
fn exported(exposition: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for l in exposition.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let (name, kind) = l.split_once(' ').expect("a name and a type");
        if kind == "histogram" {
            out.extend(["_bucket", "_sum", "_count"].map(|s| format!("{name}{s}")));
        }
        out.insert(name.to_owned());
    }
    out
}

#[test]
fn every_dashboard_query_names_a_metric_the_agent_exports() {
    let dashboard: serde_json::Value =
        serde_json::from_str(include_str!("../deploy/grafana/dashboards/swim.json")).expect("valid JSON");
    let process = ProcessStats { resident_memory_bytes: Some(1), cpu_seconds: Some(1.0), open_fds: Some(1) };
    let exposition = render(&Stats::default(), &Keyring::PLAINTEXT, &process);
    let exported = exported(&exposition);
    let queries = queries(&dashboard);
    assert!(queries.len() >= 10, "{queries:?}");
    let mut named = 0;
    for q in &queries {
        let names = metric_names(q);
        assert!(!names.is_empty(), "query names no metric: {q}");
        for name in names {
            assert!(exported.contains(&name), "`{name}` in `{q}` is not exported; exported: {exported:?}");
            named += 1;
        }
    }
    assert!(named >= queries.len());
}

#[test]
fn a_histogram_exports_its_bucket_sum_and_count_series() {
    let exported = exported("# TYPE a_seconds histogram\n# TYPE b_total counter\n");
    assert!(["a_seconds_bucket", "a_seconds_sum", "a_seconds_count", "b_total"].iter().all(|n| exported.contains(*n)));
    assert!(!exported.contains("b_total_bucket"));
}

#[test]
fn the_check_sees_a_misspelt_metric() {
    assert_eq!(metric_names("sum(rate(swim_probe_total[1m]))"), vec!["swim_probe_total"]);
    assert_eq!(metric_names("max by (state) (swim_members)"), vec!["swim_members"]);
}

#[test]
fn promtool_finds_nothing_to_fix_in_the_exposition() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        eprintln!("skipped: promtool is not installed (apt-get install prometheus)");
        return;
    };
    let mut stats = Stats::default();
    stats.members.alive = 3;
    let exposition = render(&stats, &Keyring::PLAINTEXT, &ProcessStats::read());
    child.stdin.take().unwrap().write_all(exposition.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "promtool: {said}");
}
