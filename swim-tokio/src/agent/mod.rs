//! The `swim` agent's parts: the command line, settings from flags and a
//! TOML file, the metadata format, the HTTP API with Prometheus metrics, a
//! small client for `swim members`, and the run loop.
//!
//! The binary in `src/bin/swim.rs` only parses the command line and calls
//! into here.

pub mod cli;
pub mod client;
pub mod http;
pub mod meta;
pub mod metrics;
pub mod run;
pub mod settings;

/// Set up logging: `level` if given (flag or file), else `RUST_LOG`, else
/// `info`. Logs go to stderr.
pub fn init_logging(level: Option<&str>) {
    use tracing_subscriber::EnvFilter;
    let filter = match level {
        Some(l) => EnvFilter::try_new(l).unwrap_or_else(|e| {
            eprintln!("swim: bad log level `{l}` ({e}); using info");
            EnvFilter::new("info")
        }),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}
