//! Running the agent: start the node and the HTTP API, log membership
//! changes, reload the config file on SIGHUP, and on Ctrl-C or SIGTERM
//! leave gracefully.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

use std::sync::Arc;

use tokio::sync::mpsc;

use super::cli::AgentArgs;
use super::events::AgentEvent;
use super::settings::Settings;
use super::state::{AgentState, WriteAccess};
use super::LogControl;
use crate::meta::NameTags;
use crate::{Error, Event, Events, Handle, Member, Options, StartError, StreamExt};

/// How long open HTTP connections may take to finish at exit.
const HTTP_DRAIN: Duration = Duration::from_secs(2);

/// Why the agent stopped with an error.
#[derive(Debug)]
pub enum AgentError {
    /// The node could not start.
    Start(StartError),
    /// The HTTP API could not listen.
    Http {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// Signal handlers could not be installed.
    Signals(io::Error),
    /// The node stopped on its own.
    Stopped,
    /// The join did not succeed (`--retry-max` attempts went unanswered).
    Join(Error),
    /// Another live member already holds this agent's name.
    DuplicateName {
        /// The name.
        name: String,
        /// The member holding it.
        holder: SocketAddr,
    },
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentError::Start(e) => e.fmt(f),
            AgentError::Http { addr, source } => write!(f, "cannot serve HTTP on {addr}: {source}"),
            AgentError::Signals(e) => write!(f, "cannot install signal handlers: {e}"),
            AgentError::Stopped => f.write_str("the swim node stopped unexpectedly"),
            AgentError::Join(e) => write!(f, "cannot join the cluster: {e}"),
            AgentError::DuplicateName { name, holder } => write!(
                f,
                "the name `{name}` is already held by the live member {holder}: give this agent another `--name`"
            ),
        }
    }
}

impl std::error::Error for AgentError {}

/// Run the agent until Ctrl-C or SIGTERM, then leave gracefully. SIGHUP
/// reads the settings again from `args` (and its config file) and applies
/// what can change at runtime.
pub async fn run(args: AgentArgs, mut settings: Settings, log: LogControl) -> Result<(), AgentError> {
    let mut options = Options::new(settings.bind, settings.config.clone());
    options.advertise = settings.advertise;
    options.metadata = settings.meta_bytes.clone();
    options.rng_seed = settings.rng_seed;
    options.keys = settings.keys.clone();
    options.record = settings.record.clone();
    options.leave_timeout = settings.leave_timeout;
    // The agent waits for its join as long as it takes, unless told to
    // give up; each unanswered attempt is logged.
    options.join_timeout = None;
    options.join_max_attempts = settings.retry_max;
    let handle = Handle::start(options).await.map_err(AgentError::Start)?;
    let events = handle.subscribe().map_err(|_| AgentError::Stopped)?;
    let mut signals = Signals::install().map_err(AgentError::Signals)?;
    info!(
        addr = %handle.local_addr(),
        name = settings.meta.name.as_deref().unwrap_or(""),
        encryption = settings.config.encryption.as_str(),
        "agent running"
    );
    log_encryption(&settings);
    let (leave_tx, mut leave_requests) = mpsc::channel(1);
    let access =
        WriteAccess::new(settings.http.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0))), settings.http_token.clone());
    let state = Arc::new(AgentState::new(
        handle.clone(),
        settings.meta.clone(),
        access,
        settings.profile.as_str(),
        settings.config.clone(),
        leave_tx,
    ));
    tokio::spawn(pump_events(events, state.clone(), settings.meta.name.clone()));
    super::handlers::log_handlers(&settings.handlers);
    let (handlers_tx, handlers_rx) = watch::channel(settings.handlers.clone());
    tokio::spawn(super::handlers::run(state.clone(), handlers_rx));

    let (stop_http, http_stopped) = watch::channel(false);
    let http = match settings.http {
        Some(addr) => {
            let listener = TcpListener::bind(addr).await.map_err(|source| AgentError::Http { addr, source })?;
            let shown = listener.local_addr().unwrap_or(addr);
            info!(http = %shown, "serving HTTP API");
            let mut stopped = http_stopped;
            let shutdown = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            let s = state.clone();
            Some(tokio::spawn(async move {
                if let Err(e) = super::http::serve(listener, s, shutdown).await {
                    error!(error = %e, "HTTP API stopped");
                }
            }))
        }
        None => None,
    };

    // The join runs beside the signals: a stop or a reload must not wait
    // for a seed to answer.
    let mut joined = std::pin::pin!(join(handle.clone(), settings.join.clone(), settings.meta.name.clone()));
    let mut joining = true;
    let which = loop {
        tokio::select! {
            result = &mut joined, if joining => {
                joining = false;
                if let Err(e) = result {
                    if matches!(e, AgentError::DuplicateName { .. }) {
                        // Tell the others this member goes away, not that it failed.
                        let _ = handle.leave().await;
                    }
                    stop_http_task(&stop_http, http).await;
                    handle.shutdown().await;
                    return Err(e);
                }
            }
            signal = signals.wait() => match signal {
                Signal::Reload => reload(&args, &mut settings, &log, &state, &handlers_tx).await,
                Signal::Stop(which) => break which,
            },
            Some(()) = leave_requests.recv() => break "a leave request",
        }
    };
    info!(by = which, "leaving the cluster");
    tokio::select! {
        left = handle.leave() => match left {
            Ok(outcome) => info!(?outcome, "left the cluster"),
            Err(e) => warn!(error = %e, "leave failed"),
        },
        _ = tokio::signal::ctrl_c() => warn!("second interrupt: stopping without waiting for the leave"),
    }
    stop_http_task(&stop_http, http).await;
    handle.shutdown().await;
    Ok(())
}

/// Say how the agent's datagrams are protected: the keys by id, and a
/// warning for plaintext beyond loopback and for the migration steps that
/// still take plaintext.
fn log_encryption(settings: &Settings) {
    use swim_core::Encryption;
    let encryption = settings.config.encryption;
    if let Some((primary, rest)) = settings.keys.split_first() {
        let others: Vec<String> = rest.iter().map(|k| k.id().to_string()).collect();
        info!(primary = %primary.id(), others = ?others, "cluster keys");
    }
    if let Some(addr) = super::settings::plaintext_exposure(encryption, settings.bind, settings.advertise) {
        warn!(
            %addr,
            "running UNENCRYPTED beyond loopback (--insecure-plaintext): whoever can send a datagram to {addr} \
             can join the cluster and forge claims"
        );
    }
    match encryption {
        Encryption::Accept => warn!(
            "encryption = accept: sending plaintext and accepting plaintext (migration step 1; next: seal, then require)"
        ),
        Encryption::Seal => {
            warn!("encryption = seal: sealing, still accepting plaintext (migration step 2; next: require)")
        }
        Encryption::Off | Encryption::Require => {}
    }
}

/// Stop serving HTTP; open keep-alive connections must not hold the exit up.
async fn stop_http_task(stop: &watch::Sender<bool>, task: Option<tokio::task::JoinHandle<()>>) {
    let _ = stop.send(true);
    if let Some(mut task) = task {
        if tokio::time::timeout(HTTP_DRAIN, &mut task).await.is_err() {
            task.abort();
        }
    }
}

/// Join through the configured seeds (none: a new cluster), then refuse to
/// go on under a name another live member already holds.
async fn join(handle: Handle, seeds: Vec<String>, name: Option<String>) -> Result<(), AgentError> {
    if seeds.is_empty() {
        return Ok(());
    }
    info!(?seeds, "joining");
    handle.join(seeds.iter()).await.map_err(AgentError::Join)?;
    let Some(name) = name.as_deref() else {
        return Ok(());
    };
    let me = handle.local_addr();
    let members = handle.members().await.map_err(|_| AgentError::Stopped)?;
    let holder = members
        .iter()
        .find(|m| m.addr != me && m.state.is_live() && NameTags::decode(&m.meta).0.as_deref() == Some(name));
    match holder {
        Some(m) => Err(AgentError::DuplicateName { name: name.to_owned(), holder: m.addr }),
        None => Ok(()),
    }
}

/// SIGHUP: read the settings again and apply the tags and the log level;
/// log every other change as needing a restart. A file that does not
/// validate is refused whole and the running settings stay.
async fn reload(
    args: &AgentArgs,
    current: &mut Settings,
    log: &LogControl,
    state: &AgentState,
    handlers: &watch::Sender<super::handlers::Handlers>,
) {
    let new = match Settings::load(args) {
        Ok(new) => new,
        Err(e) => {
            warn!("reload refused, the running settings stay: {e}");
            return;
        }
    };
    for key in current.needs_restart(&new) {
        warn!(key, "changed in the configuration; takes effect at the next restart");
    }
    if new.log_level != current.log_level {
        match log.set(new.log_level.as_deref()) {
            Ok(()) => {
                info!(log_level = new.log_level.as_deref().unwrap_or("RUST_LOG or info"), "log level changed");
                current.log_level = new.log_level;
            }
            Err(e) => warn!("log level not changed: {e}"),
        }
    }
    if new.meta.tags != current.meta.tags {
        match state.replace_tags(new.meta.tags.clone()).await {
            Ok(tags) => {
                info!(?tags, "tags changed");
                current.meta.tags = tags;
            }
            Err(e) => warn!("tags not changed: {e}"),
        }
    }
    if new.handlers != current.handlers {
        super::handlers::log_handlers(&new.handlers);
        info!(handlers = new.handlers.handlers.len(), "event handlers changed");
        current.handlers = new.handlers;
        let _ = handlers.send(current.handlers.clone());
    }
    debug!(tags = ?current.meta.tags, log_level = ?current.log_level, "running settings after the reload");
    info!("configuration reloaded");
}

/// What a signal asks of the agent.
enum Signal {
    /// SIGHUP: reload the configuration.
    Reload,
    /// Ctrl-C or SIGTERM (named): leave and stop.
    Stop(&'static str),
}

/// Ctrl-C and (on Unix) SIGTERM and SIGHUP.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> io::Result<Signals> {
        #[cfg(unix)]
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            #[cfg(unix)]
            term: signal(SignalKind::terminate())?,
            #[cfg(unix)]
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// Wait for the next one.
    async fn wait(&mut self) -> Signal {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => Signal::Stop("SIGINT"),
                _ = self.term.recv() => Signal::Stop("SIGTERM"),
                _ = self.hup.recv() => Signal::Reload,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Signal::Stop("Ctrl-C")
        }
    }
}

/// Log every node event as one readable line (and a member that shows up
/// under this agent's own name as an error), and hand the agent's events
/// to its monitors and handlers.
async fn pump_events(mut events: Events, state: Arc<AgentState>, name: Option<String>) {
    let me = state.handle.local_addr();
    while let Some(item) = events.next().await {
        match item {
            Ok(event) => {
                log_event(&event);
                if let (Some(name), Some(m)) = (&name, event.member()) {
                    let live = matches!(event, Event::Joined(_) | Event::Updated(_) | Event::Alive(_));
                    if live && m.addr != me && NameTags::decode(&m.meta).0.as_deref() == Some(name.as_str()) {
                        error!(
                            member = %m.addr,
                            "member {} uses this agent's name `{name}`: names must be unique, it is refused",
                            m.addr
                        );
                    }
                }
                if let Some(e) = AgentEvent::from_node(&event) {
                    state.publish(e);
                }
            }
            Err(lag) => warn!(skipped = lag.skipped, "event log fell behind"),
        }
    }
}

/// `member joined: web-2 127.0.0.1:7956 incarnation 1 role=web`.
struct Shown<'a>(&'a Member);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        let (name, tags) = NameTags::decode(&m.meta);
        match name {
            Some(name) => write!(f, "{name} {}", m.addr)?,
            None => write!(f, "{}", m.addr)?,
        }
        write!(f, " incarnation {}", m.incarnation)?;
        for (k, v) in tags {
            match v {
                serde_json::Value::String(s) => write!(f, " {k}={s}")?,
                other => write!(f, " {k}={other}")?,
            }
        }
        Ok(())
    }
}

fn log_event(event: &Event) {
    match event {
        Event::Joined(m) => info!("member joined: {}", Shown(m)),
        Event::Updated(m) => info!("member updated: {}", Shown(m)),
        Event::Suspected(m) => warn!("member suspected: {}", Shown(m)),
        Event::Alive(m) => info!("member alive again: {}", Shown(m)),
        Event::Failed(m) => warn!("member failed: {}", Shown(m)),
        Event::Left(m) => info!("member left: {}", Shown(m)),
        Event::Broadcast { from, payload } => {
            let (name, payload) = super::events::decode_user_event(payload);
            info!(%from, name, bytes = payload.len(), "user event received");
        }
        Event::Conflict { addr, other_instance, incarnation } => error!(
            %addr,
            other_instance,
            incarnation,
            "another process claims this agent's address"
        ),
        other => info!("event: {}", other.name()),
    }
}
