//! Event handlers, as in Serf: commands run for membership and user events.
//!
//! A handler is `[FILTER=]COMMAND`. FILTER is a comma-separated list of
//! `member-join`, `member-leave`, `member-failed`, `member-update`, `user`,
//! `user:NAME` (only that user event) or `*`; without one the handler runs
//! for all of them. The command runs with `sh -c`, with:
//!
//! - `SWIM_EVENT`: the event (`member-join`, ..., `user`);
//! - `SWIM_USER_EVENT`: a user event's name;
//! - `SWIM_SELF_NAME`, `SWIM_SELF_ADDR`: this agent's name and address;
//! - `SWIM_TAG_<KEY>`: each of this agent's tags (the key upper-cased,
//!   characters other than letters and digits as `_`);
//! - on stdin, a member event's member as one line, `NAME\tADDR\tKEY=VALUE,...`,
//!   or a user event's payload.
//!
//! Handlers run one at a time per agent, in the order given, each within
//! the timeout (then it is killed); a failure, a timeout or a command that
//! cannot start is logged, never retried. They run in a task of their own:
//! a slow handler delays the next handlers, never the protocol (if they
//! fall 1,024 events behind, the oldest are skipped and that is logged).

use std::fmt;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::events::AgentEvent;
use super::state::AgentState;
use crate::meta::NameTags;

/// The events a filter may name.
pub const FILTERS: [&str; 7] =
    ["member-join", "member-leave", "member-failed", "member-update", "user", "user:NAME", "*"];

/// One handler: which events, and the command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventHandler {
    /// The events it runs for; empty means all handled events.
    pub filter: Vec<String>,
    /// The shell command.
    pub command: String,
}

/// A handler the agent refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerError(String);

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HandlerError {}

fn is_filter(token: &str) -> bool {
    matches!(token, "member-join" | "member-leave" | "member-failed" | "member-update" | "user" | "*")
        || token.strip_prefix("user:").is_some_and(|n| !n.is_empty())
}

impl EventHandler {
    /// Read `[FILTER=]COMMAND`. The part before the first `=` is a filter
    /// when it looks like one (event names, commas); otherwise the whole
    /// text is the command (`echo a=b`). A filter naming an unknown event
    /// is refused, naming the allowed ones.
    pub fn parse(text: &str) -> Result<EventHandler, HandlerError> {
        let (filter, command) = match text.split_once('=') {
            Some((f, c)) if !f.is_empty() && f.chars().all(|ch| ch.is_ascii_lowercase() || "-,:*".contains(ch)) => {
                let tokens: Vec<String> = f.split(',').map(|t| t.trim().to_owned()).collect();
                if let Some(bad) = tokens.iter().find(|t| !is_filter(t)) {
                    return Err(HandlerError(format!(
                        "unknown event `{bad}` in handler filter `{f}`: use {}",
                        FILTERS.join(", ")
                    )));
                }
                (tokens, c)
            }
            _ => (Vec::new(), text),
        };
        if command.trim().is_empty() {
            return Err(HandlerError(format!("handler `{text}` has no command")));
        }
        let filter = if filter.iter().any(|t| t == "*") { Vec::new() } else { filter };
        Ok(EventHandler { filter, command: command.to_owned() })
    }

    /// Whether it runs for `event`.
    pub fn wants(&self, event: &AgentEvent) -> bool {
        let kind = event.kind();
        let handled = matches!(kind, "member-join" | "member-leave" | "member-failed" | "member-update" | "user");
        if !handled {
            return false;
        }
        if self.filter.is_empty() {
            return true;
        }
        self.filter.iter().any(|t| match (t.strip_prefix("user:"), event) {
            (Some(name), AgentEvent::User { name: n, .. }) => name == n,
            (Some(_), _) => false,
            (None, _) => t == kind,
        })
    }
}

/// The environment key of tag `key`: `SWIM_TAG_` and the key upper-cased,
/// characters other than letters and digits as `_`.
pub fn tag_variable(key: &str) -> String {
    let key: String =
        key.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
    format!("SWIM_TAG_{key}")
}

/// What a handler reads on stdin for `event`.
pub fn stdin_for(event: &AgentEvent) -> Vec<u8> {
    match event {
        AgentEvent::Member { member, .. } => {
            let (name, tags) = NameTags::decode(&member.meta);
            let tags: Vec<String> = tags
                .iter()
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => format!("{k}={s}"),
                    other => format!("{k}={other}"),
                })
                .collect();
            let name = name.unwrap_or_else(|| member.addr.to_string());
            format!("{name}\t{}\t{}\n", member.addr, tags.join(",")).into_bytes()
        }
        AgentEvent::User { payload, .. } => payload.to_vec(),
    }
}

/// The handlers in force and their timeout; a reload replaces them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handlers {
    /// In the order given.
    pub handlers: Vec<EventHandler>,
    /// How long one run may take before it is killed.
    pub timeout: Duration,
}

/// Run the handlers for every agent event, one at a time, until the agent
/// stops.
pub async fn run(state: Arc<AgentState>, handlers: watch::Receiver<Handlers>) {
    let mut events = state.subscribe();
    loop {
        let event = match events.recv().await {
            Ok(e) => e,
            Err(RecvError::Lagged(n)) => {
                warn!(skipped = n, "event handlers fell behind; events skipped");
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        let current = handlers.borrow().clone();
        for handler in current.handlers.iter().filter(|h| h.wants(&event)) {
            run_one(&state, handler, &event, current.timeout).await;
        }
    }
}

async fn run_one(state: &AgentState, handler: &EventHandler, event: &AgentEvent, timeout: Duration) {
    let meta = state.meta().await;
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(&handler.command)
        .env("SWIM_EVENT", event.kind())
        .env("SWIM_SELF_NAME", meta.name.as_deref().unwrap_or(""))
        .env("SWIM_SELF_ADDR", state.handle.local_addr().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let AgentEvent::User { name, .. } = event {
        cmd.env("SWIM_USER_EVENT", name);
    }
    for (k, v) in &meta.tags {
        cmd.env(tag_variable(k), v);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            warn!(handler = %handler.command, error = %e, "event handler could not start");
            return;
        }
    };
    let input = stdin_for(event);
    let mut stdin = child.stdin.take();
    let work = async move {
        if let Some(stdin) = stdin.as_mut() {
            // A handler that does not read its input is not an error.
            let _ = stdin.write_all(&input).await;
        }
        drop(stdin);
        child.wait_with_output().await
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(Ok(out)) if out.status.success() => {
            debug!(handler = %handler.command, event = event.kind(), "event handler done");
        }
        Ok(Ok(out)) => warn!(
            handler = %handler.command,
            event = event.kind(),
            status = %out.status,
            stderr = %String::from_utf8_lossy(&out.stderr).trim(),
            "event handler failed"
        ),
        Ok(Err(e)) => warn!(handler = %handler.command, error = %e, "event handler could not be waited for"),
        // Dropping the future drops the child, which kills it.
        Err(_) => warn!(handler = %handler.command, event = event.kind(), ?timeout, "event handler timed out; killed"),
    }
}

/// Log the handlers in force.
pub fn log_handlers(handlers: &Handlers) {
    for h in &handlers.handlers {
        let filter = if h.filter.is_empty() { "*".to_owned() } else { h.filter.join(",") };
        info!(filter, command = %h.command, "event handler");
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use swim_core::{Bytes, State};

    use super::*;
    use crate::agent::events::MemberEvent;

    fn member_event(kind: MemberEvent) -> AgentEvent {
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let meta = Bytes::from_static(br#"{"name":"web-1","role":"web"}"#);
        AgentEvent::Member { kind, member: swim_core::Member { addr, state: State::Alive, incarnation: 1, meta } }
    }

    fn user(name: &str) -> AgentEvent {
        AgentEvent::User { name: name.into(), payload: Bytes::from_static(b"p"), from: "127.0.0.1:2".parse().unwrap() }
    }

    #[test]
    fn filters_pick_events_and_commands_may_hold_an_equals_sign() {
        let h = EventHandler::parse("member-join,user:deploy=./on-change.sh").unwrap();
        assert_eq!(h.command, "./on-change.sh");
        assert!(h.wants(&member_event(MemberEvent::Join)));
        assert!(!h.wants(&member_event(MemberEvent::Failed)));
        assert!(h.wants(&user("deploy")) && !h.wants(&user("other")));
        let all = EventHandler::parse("echo a=b").unwrap();
        assert_eq!((all.filter.len(), all.command.as_str()), (0, "echo a=b"));
        assert!(all.wants(&member_event(MemberEvent::Update)) && all.wants(&user("x")));
        // Suspicions and refutations are not handler events.
        assert!(!all.wants(&member_event(MemberEvent::Suspect)));
        assert!(EventHandler::parse("*=true").unwrap().filter.is_empty());
        let e = EventHandler::parse("member-joined=true").unwrap_err().to_string();
        assert!(e.contains("`member-joined`") && e.contains("member-join, member-leave"), "{e}");
        assert!(EventHandler::parse("user=").is_err());
    }

    #[test]
    fn handlers_read_the_member_or_the_payload_and_tags_become_variables() {
        assert_eq!(stdin_for(&member_event(MemberEvent::Join)), b"web-1\t127.0.0.1:1\trole=web\n");
        assert_eq!(stdin_for(&user("x")), b"p");
        assert_eq!(tag_variable("dc.zone-1"), "SWIM_TAG_DC_ZONE_1");
    }
}
