//! Replays every committed fuzz input (`fuzz/corpus/{decode,node,open,log,sim}` and
//! any crash kept in `fuzz/artifacts-found/<target>/`) through the checks
//! the fuzz targets run, so the default `cargo test` covers them on the
//! stable toolchain.

#[path = "../../fuzz/checks.rs"]
mod checks;

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("fuzz")
}

/// Every file under `fuzz/<kind>/<target>/`, sorted; none if the folder is absent.
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir(fuzz_dir().join(kind).join(target)) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = dir.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

fn replay(target: &str, check: fn(&[u8])) -> usize {
    let mut n = 0;
    for path in inputs("corpus", target).into_iter().chain(inputs("artifacts-found", target)) {
        let data = std::fs::read(&path).expect("readable corpus file");
        eprintln!("replaying {}", path.display());
        check(&data);
        n += 1;
    }
    n
}

#[test]
fn the_decode_corpus_round_trips() {
    assert!(replay("decode", checks::check_decode) > 0, "no decode corpus");
}

#[test]
fn the_node_corpus_keeps_every_invariant() {
    assert!(replay("node", checks::check_node) > 0, "no node corpus");
}

#[test]
fn the_open_corpus_refuses_every_changed_sealed_datagram() {
    assert!(replay("open", checks::check_open) > 0, "no open corpus");
}

#[test]
fn the_log_corpus_reads_and_replays_without_a_panic() {
    assert!(replay("log", checks::check_log) > 0, "no log corpus");
}

#[test]
fn the_sim_corpus_agrees_after_the_faults() {
    assert!(replay("sim", checks::check_sim) > 0, "no sim corpus");
}

#[test]
fn the_committed_seed_corpus_is_what_the_generator_writes() {
    for (target, name, bytes) in checks::seed_corpus() {
        let path = fuzz_dir().join("corpus").join(target).join(name);
        let committed = std::fs::read(&path).unwrap_or_default();
        assert_eq!(committed, bytes, "{} is stale: run `cargo run --example make_corpus` in fuzz/", path.display());
    }
}
