//! Writes the committed seed corpus (`seed_corpus` in `fuzz/checks.rs`)
//! under `fuzz/corpus/<target>/`:
//!
//! ```sh
//! cd fuzz && cargo run --example make_corpus
//! ```

#[allow(dead_code)]
#[path = "../checks.rs"]
mod checks;

fn main() -> std::io::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for (target, name, bytes) in checks::seed_corpus() {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(name), &bytes)?;
        println!("corpus/{target}/{name}: {} bytes", bytes.len());
    }
    Ok(())
}
