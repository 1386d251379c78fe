//! What the running agent shares between its HTTP API, its run loop and
//! its event handlers: the node's handle, the current name and tags, the
//! agent's event bus, the leave request, and who may change the cluster.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

use swim_core::{Bytes, CommandError, Config, KeyError};
use tokio::sync::{broadcast, mpsc, Mutex};

use super::events::{self, AgentEvent};
use crate::meta::{self, NameTags};
use crate::{Error, Handle};

/// Events buffered for each monitor and the handler runner; one further
/// behind skips the oldest and is told how many.
const EVENT_CAPACITY: usize = 1024;

/// Who may use the write operations (join, leave, force-leave, event, tags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteAccess {
    /// The API listens on loopback only and no token is set: anyone on
    /// this host may.
    Open,
    /// Callers that send `Authorization: Bearer TOKEN`.
    Token(String),
    /// The API listens beyond loopback without a token: nobody may.
    Refused,
}

impl WriteAccess {
    /// The rule for an API bound to `http` with an optional `token`.
    pub fn new(http: SocketAddr, token: Option<String>) -> WriteAccess {
        match token {
            Some(t) => WriteAccess::Token(t),
            None if http.ip().is_loopback() => WriteAccess::Open,
            None => WriteAccess::Refused,
        }
    }

    /// Check the request's `Authorization` header.
    pub fn check(&self, authorization: Option<&str>) -> Result<(), OpError> {
        match self {
            WriteAccess::Open => Ok(()),
            WriteAccess::Refused => Err(OpError::Forbidden(
                "write operations need a token when the API listens beyond loopback: start the agent \
                 with --http-token-file"
                    .to_owned(),
            )),
            WriteAccess::Token(token) => match authorization.and_then(|h| h.strip_prefix("Bearer ")) {
                None => Err(OpError::Unauthorized),
                Some(given) if same_bytes(given.trim().as_bytes(), token.as_bytes()) => Ok(()),
                Some(_) => Err(OpError::Forbidden("the token does not match".to_owned())),
            },
        }
    }

    /// `open`, `token` or `refused`, for `swim info`.
    pub fn as_str(&self) -> &'static str {
        match self {
            WriteAccess::Open => "open",
            WriteAccess::Token(_) => "token",
            WriteAccess::Refused => "refused",
        }
    }
}

/// Compare without stopping at the first difference, so the time taken
/// does not tell how much of a guessed token was right.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why an operation was refused. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpError {
    /// The request is malformed or names something invalid (HTTP 400).
    BadRequest(String),
    /// No token was sent (HTTP 401).
    Unauthorized,
    /// The token is wrong, or writes are refused (HTTP 403).
    Forbidden(String),
    /// The member named is unknown (HTTP 404).
    NotFound(String),
    /// The member is not in a state that allows it (HTTP 409).
    Conflict(String),
    /// No seed answered in time; the join goes on (HTTP 504).
    TimedOut(String),
    /// The node has stopped (HTTP 503).
    Stopped,
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpError::BadRequest(why)
            | OpError::Forbidden(why)
            | OpError::NotFound(why)
            | OpError::Conflict(why)
            | OpError::TimedOut(why) => f.write_str(why),
            OpError::Unauthorized => f.write_str("send the token as `Authorization: Bearer TOKEN`"),
            OpError::Stopped => f.write_str("swim node stopped"),
        }
    }
}

impl From<Error> for OpError {
    fn from(e: Error) -> Self {
        match e {
            Error::Stopped => OpError::Stopped,
            Error::JoinTimedOut { .. } => OpError::TimedOut(e.to_string()),
            Error::Rejected(CommandError::UnknownMember) => OpError::NotFound(e.to_string()),
            Error::Rejected(CommandError::NotFailed { .. }) => OpError::Conflict(e.to_string()),
            Error::Key(KeyError::UnknownKey(_)) => OpError::NotFound(e.to_string()),
            Error::Key(_) => OpError::Conflict(e.to_string()),
            other => OpError::BadRequest(other.to_string()),
        }
    }
}

/// The agent as its API and handlers see it.
#[derive(Debug)]
pub struct AgentState {
    /// The node.
    pub handle: Handle,
    /// Who may write.
    pub access: WriteAccess,
    /// The timing profile's name, for `swim info`.
    pub profile: &'static str,
    /// The protocol settings, for `swim info`.
    pub config: Config,
    meta: Mutex<NameTags>,
    events: broadcast::Sender<AgentEvent>,
    leave: mpsc::Sender<()>,
}

impl AgentState {
    /// The state of an agent running `handle` with `meta`; a leave request
    /// is sent on `leave`.
    pub fn new(
        handle: Handle,
        meta: NameTags,
        access: WriteAccess,
        profile: &'static str,
        config: Config,
        leave: mpsc::Sender<()>,
    ) -> AgentState {
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        AgentState { handle, access, profile, config, meta: Mutex::new(meta), events, leave }
    }

    /// The agent's events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<AgentEvent> {
        self.events.subscribe()
    }

    /// Hand `event` to every monitor and the handlers.
    pub fn publish(&self, event: AgentEvent) {
        let _ = self.events.send(event);
    }

    /// This agent's name and tags now.
    pub async fn meta(&self) -> NameTags {
        self.meta.lock().await.clone()
    }

    /// Set and delete tags (deletions first), and tell the cluster. The
    /// tags after the change.
    pub async fn change_tags(
        &self,
        set: &BTreeMap<String, String>,
        delete: &[String],
    ) -> Result<BTreeMap<String, String>, OpError> {
        let mut current = self.meta.lock().await;
        let mut tags = current.tags.clone();
        for k in delete {
            tags.remove(k);
        }
        for (k, v) in set {
            if k.is_empty() || k == meta::NAME_KEY {
                return Err(OpError::BadRequest(format!("invalid tag key `{k}`: not empty, not `name`")));
            }
            tags.insert(k.clone(), v.clone());
        }
        self.store_tags(&mut current, tags).await
    }

    /// Replace every tag (a reload), and tell the cluster.
    pub async fn replace_tags(&self, tags: BTreeMap<String, String>) -> Result<BTreeMap<String, String>, OpError> {
        let mut current = self.meta.lock().await;
        self.store_tags(&mut current, tags).await
    }

    async fn store_tags(
        &self,
        current: &mut NameTags,
        tags: BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, OpError> {
        if tags == current.tags {
            return Ok(tags);
        }
        let meta = NameTags { name: current.name.clone(), tags };
        let bytes = meta.encode(self.config.max_metadata_len).map_err(|e| OpError::BadRequest(e.to_string()))?;
        self.handle.set_metadata(bytes).await?;
        *current = meta;
        Ok(current.tags.clone())
    }

    /// Send user event `name` to every member, this one included.
    pub async fn send_event(&self, name: &str, payload: &[u8]) -> Result<(), OpError> {
        let bytes = events::encode_user_event(name, payload).map_err(|e| OpError::BadRequest(e.to_string()))?;
        self.handle.broadcast(bytes).await?;
        let from = self.handle.local_addr();
        self.publish(AgentEvent::User { name: name.to_owned(), payload: Bytes::copy_from_slice(payload), from });
        Ok(())
    }

    /// Force the failed member named `node` (its name or address) out.
    /// Returns its address.
    pub async fn force_leave(&self, node: &str) -> Result<SocketAddr, OpError> {
        let members = self.handle.members().await?;
        let named: Vec<_> = members
            .iter()
            .filter(|m| m.addr.to_string() == node || NameTags::decode(&m.meta).0.as_deref() == Some(node))
            .collect();
        // A name may be held by a failed member and by its successor at
        // another address: the failed one is meant.
        let target = named.iter().find(|m| m.state == swim_core::State::Dead).or(named.first());
        let Some(target) = target else {
            return Err(OpError::NotFound(format!("no member named `{node}`")));
        };
        self.handle.force_leave(target.addr).await?;
        Ok(target.addr)
    }

    /// Ask the agent to leave the cluster and exit.
    pub async fn request_leave(&self) {
        let _ = self.leave.send(()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_need_the_token_beyond_loopback() {
        let lo: SocketAddr = "127.0.0.1:7947".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:7947".parse().unwrap();
        assert_eq!(WriteAccess::new(lo, None).check(None), Ok(()));
        assert!(matches!(WriteAccess::new(any, None).check(Some("Bearer x")), Err(OpError::Forbidden(_))));
        let t = WriteAccess::new(any, Some("s3cret".into()));
        assert_eq!(t.check(None), Err(OpError::Unauthorized));
        assert_eq!(t.check(Some("Bearer s3cret")), Ok(()));
        assert!(matches!(t.check(Some("Bearer s3cre")), Err(OpError::Forbidden(_))));
        assert!(matches!(t.check(Some("Basic s3cret")), Err(OpError::Unauthorized)));
        // A token set on loopback is required there too.
        assert_eq!(WriteAccess::new(lo, Some("t".into())).check(None), Err(OpError::Unauthorized));
    }
}
