//! The `swim` agent's parts: the command line, settings from flags and a
//! TOML file, the HTTP API with Prometheus metrics and its operations, the
//! agent's events, a small client for the subcommands, and the run loop.
//! The name-and-tags metadata format is [`crate::meta`].
//!
//! The binary in `src/bin/swim.rs` only parses the command line and calls
//! into here.

pub mod cli;
pub mod client;
pub mod events;
pub mod handlers;
pub mod http;
pub mod keys;
pub mod metrics;
pub mod run;
pub mod settings;
pub mod state;

/// Changes the log filter of a running agent (SIGHUP reload).
#[derive(Debug, Clone)]
pub struct LogControl {
    handle: tracing_subscriber::reload::Handle<tracing_subscriber::EnvFilter, tracing_subscriber::Registry>,
}

impl LogControl {
    /// Switch to `level` (already checked by
    /// [`settings::check_log_level`]); `None` goes back to `RUST_LOG`, else
    /// `info`.
    pub fn set(&self, level: Option<&str>) -> Result<(), settings::SettingsError> {
        let filter = log_filter(level)?;
        // Fails only once the subscriber is gone, at exit.
        let _ = self.handle.reload(filter);
        Ok(())
    }
}

/// The filter for `level`, else `RUST_LOG`, else `info`; each checked.
fn log_filter(level: Option<&str>) -> Result<tracing_subscriber::EnvFilter, settings::SettingsError> {
    use tracing_subscriber::EnvFilter;
    let (key, text) = match level {
        Some(l) => ("log_level", l.to_owned()),
        None => match std::env::var("RUST_LOG") {
            Ok(v) if !v.trim().is_empty() => ("RUST_LOG", v),
            _ => ("log_level", "info".to_owned()),
        },
    };
    settings::check_log_level(key, &text)?;
    EnvFilter::try_new(&text).map_err(|_| settings::SettingsError::LogLevel { key, value: text })
}

/// Set up logging to stderr: `level` if given (flag or file), else
/// `RUST_LOG`, else `info`. A filter the agent does not understand is an
/// error, not silence.
pub fn init_logging(level: Option<&str>) -> Result<LogControl, settings::SettingsError> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let (filter, handle) = tracing_subscriber::reload::Layer::new(log_filter(level)?);
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    tracing_subscriber::registry().with(filter).with(fmt).init();
    Ok(LogControl { handle })
}
