//! The agent's HTTP API.
//!
//! Reads, open to anyone who can connect: `GET /v1/members` (filtered by
//! `?status=&tag=`), `GET /v1/self`, `GET /v1/info`, `GET /v1/monitor`
//! (server-sent events), `GET /metrics`, `GET /healthz`.
//!
//! Writes, which change the cluster and need the token when one is set or
//! the API listens beyond loopback ([`super::state::WriteAccess`]): `POST /v1/join`
//! `{"seeds": [...]}`, `POST /v1/leave`, `POST /v1/force-leave`
//! `{"node": NAME}`, `POST /v1/event` `{"name": ..., "payload": ...}`,
//! `POST /v1/tags` `{"set": {...}, "delete": [...]}`, and the keyring's:
//! `GET /v1/keys` (ids only, open like every read), `POST /v1/keys/install`
//! `{"key": BASE64}` (accepted only from this host, as the key travels in
//! the clear), `POST /v1/keys/use` `{"id": ID}`, `POST /v1/keys/remove`
//! `{"id": ID}`. Errors are plain text with a 4xx or 5xx status; none holds
//! a key.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::{FromRequest, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::StreamExt;

use super::keys;
use super::state::{AgentState, OpError};
use crate::meta::NameTags;
use crate::{InstalledKey, Member};

/// How long `POST /v1/join` waits for a seed to answer.
const JOIN_WAIT: Duration = Duration::from_secs(10);

/// One member as `/v1/members` and `/v1/self` show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberJson {
    /// Its name, or its address when it has none.
    pub name: String,
    /// Its address.
    pub addr: String,
    /// `alive`, `suspect`, `failed` or `left`.
    pub state: String,
    /// Its incarnation.
    pub incarnation: u32,
    /// Its tags (see [`crate::meta`]).
    pub meta: serde_json::Map<String, serde_json::Value>,
    /// Whether it is the agent answering.
    #[serde(default)]
    pub local: bool,
}

impl MemberJson {
    /// The JSON of a member; `local` when it is this agent.
    pub fn from_member(m: &Member, local: bool) -> Self {
        let (name, meta) = NameTags::decode(&m.meta);
        MemberJson {
            name: name.unwrap_or_else(|| m.addr.to_string()),
            addr: m.addr.to_string(),
            state: m.state.as_str().to_owned(),
            incarnation: m.incarnation,
            meta,
            local,
        }
    }
}

/// Which members a listing shows: `?status=STATE&tag=KEY=VALUE`, every
/// condition must hold (the `tag` parameter may repeat).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberFilter {
    /// Only members in this state (`alive`, `suspect`, `failed`, `left`).
    pub status: Option<String>,
    /// Only members with each of these tags.
    pub tags: Vec<(String, String)>,
}

/// The states a filter may name, as `/v1/members` shows them.
pub const STATES: [&str; 4] = ["alive", "suspect", "failed", "left"];

impl MemberFilter {
    /// Read query parameters; an unknown parameter, state or a tag that is
    /// not `KEY=VALUE` is refused with a message naming it.
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<MemberFilter, String> {
        let mut filter = MemberFilter::default();
        for (key, value) in pairs {
            match key.as_str() {
                "status" => {
                    if !STATES.contains(&value.as_str()) {
                        return Err(format!("invalid `status` `{value}`: one of {}", STATES.join(", ")));
                    }
                    filter.status = Some(value.clone());
                }
                "tag" => match value.split_once('=') {
                    Some((k, v)) if !k.is_empty() => filter.tags.push((k.to_owned(), v.to_owned())),
                    _ => return Err(format!("invalid `tag` `{value}`: give KEY=VALUE")),
                },
                other => return Err(format!("unknown parameter `{other}`: use status or tag")),
            }
        }
        Ok(filter)
    }

    /// Whether `m` passes.
    pub fn matches(&self, m: &MemberJson) -> bool {
        self.status.as_ref().is_none_or(|s| *s == m.state)
            && self.tags.iter().all(|(k, v)| m.meta.get(k).and_then(|x| x.as_str()) == Some(v.as_str()))
    }
}

/// The routes, answering from `agent`.
pub fn router(agent: Arc<AgentState>) -> Router {
    Router::new()
        .route("/v1/members", get(members))
        .route("/v1/self", get(local))
        .route("/v1/info", get(info))
        .route("/v1/monitor", get(monitor))
        .route("/v1/join", post(join))
        .route("/v1/leave", post(leave))
        .route("/v1/force-leave", post(force_leave))
        .route("/v1/event", post(event))
        .route("/v1/tags", post(tags))
        .route("/v1/keys", get(list_keys))
        .route("/v1/keys/install", post(install_key))
        .route("/v1/keys/use", post(use_key))
        .route("/v1/keys/remove", post(remove_key))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .with_state(agent)
}

/// Serve the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    agent: Arc<AgentState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let app = router(agent).into_make_service_with_connect_info::<Connection>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

/// The two ends of a request's connection.
#[derive(Debug, Clone, Copy)]
pub struct Connection {
    /// The agent's end.
    pub local: Option<SocketAddr>,
    /// The client's end.
    pub remote: SocketAddr,
}

impl Connected<axum::serve::IncomingStream<'_, TcpListener>> for Connection {
    fn connect_info(stream: axum::serve::IncomingStream<'_, TcpListener>) -> Self {
        Connection { local: stream.io().local_addr().ok(), remote: *stream.remote_addr() }
    }
}

impl Connection {
    /// Whether the client runs on this host: it came over loopback, or to
    /// one of this host's addresses from that same address (traffic that
    /// never leaves the host).
    pub fn from_this_host(&self) -> bool {
        let remote = swim_driver::addr::canonical(self.remote).ip();
        remote.is_loopback() || self.local.is_some_and(|l| swim_driver::addr::canonical(l).ip() == remote)
    }
}

impl IntoResponse for OpError {
    fn into_response(self) -> Response {
        let status = match self {
            OpError::BadRequest(_) => StatusCode::BAD_REQUEST,
            OpError::Unauthorized => StatusCode::UNAUTHORIZED,
            OpError::Forbidden(_) => StatusCode::FORBIDDEN,
            OpError::NotFound(_) => StatusCode::NOT_FOUND,
            OpError::Conflict(_) => StatusCode::CONFLICT,
            OpError::TimedOut(_) => StatusCode::GATEWAY_TIMEOUT,
            OpError::Stopped => StatusCode::SERVICE_UNAVAILABLE,
        };
        let mut response = (status, format!("{self}\n")).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// A write request: its token checked, then its JSON body read (an empty
/// body reads as `{}`); refused with 401/403 or a 400 naming what is wrong.
struct Write<T>(T);

impl<T: serde::de::DeserializeOwned> FromRequest<Arc<AgentState>> for Write<T> {
    type Rejection = OpError;

    async fn from_request(req: Request, agent: &Arc<AgentState>) -> Result<Self, OpError> {
        let given = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        agent.access.check(given)?;
        let bytes = axum::body::Bytes::from_request(req, agent)
            .await
            .map_err(|e| OpError::BadRequest(format!("cannot read the request body: {e}")))?;
        let bytes = if bytes.is_empty() { b"{}".as_slice() } else { &bytes[..] };
        serde_json::from_slice(bytes).map(Write).map_err(|e| OpError::BadRequest(format!("invalid request body: {e}")))
    }
}

/// The body of a write that takes no arguments.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoArguments {}

async fn members(
    State(agent): State<Arc<AgentState>>,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Response, OpError> {
    let filter = MemberFilter::from_pairs(&query).map_err(OpError::BadRequest)?;
    let members = agent.handle.members().await?;
    let me = agent.handle.local_addr();
    let shown: Vec<MemberJson> =
        members.iter().map(|m| MemberJson::from_member(m, m.addr == me)).filter(|m| filter.matches(m)).collect();
    Ok(Json(shown).into_response())
}

async fn local(State(agent): State<Arc<AgentState>>) -> Result<Response, OpError> {
    let m = agent.handle.local_member().await?;
    Ok(Json(MemberJson::from_member(&m, true)).into_response())
}

/// `GET /v1/info`: this agent, its members by state, its protocol
/// settings and version.
async fn info(State(agent): State<Arc<AgentState>>) -> Result<Response, OpError> {
    let me = agent.handle.local_member().await?;
    let stats = agent.handle.stats().await?;
    let keys = agent.handle.keys().await?;
    let primary = keys.iter().find(|k| k.primary).map(|k| k.id.to_string());
    let meta = agent.meta().await;
    let c = &agent.config;
    let ms = |d: Duration| d.as_millis() as u64;
    let counts = &stats.members;
    Ok(Json(serde_json::json!({
        "name": meta.name.unwrap_or_else(|| me.addr.to_string()),
        "addr": me.addr.to_string(),
        "incarnation": me.incarnation,
        "state": me.state.as_str(),
        "tags": meta.tags,
        "members": {
            "alive": counts.alive,
            "suspect": counts.suspect,
            "failed": counts.failed,
            "left": counts.left,
        },
        "local_health": stats.local_health,
        "protocol": {
            "profile": agent.profile,
            "probe_interval_ms": ms(c.probe_interval),
            "probe_timeout_ms": ms(c.probe_timeout),
            "indirect_checks": c.indirect_checks,
            "suspicion_mult": c.suspicion_mult,
            "gossip_interval_ms": ms(c.gossip_interval),
            "push_pull_interval_ms": ms(c.push_pull_interval),
            "lifeguard": c.lifeguard,
        },
        "encryption": {
            "mode": c.encryption.as_str(),
            "primary_key": primary,
            "keys": keys.len(),
        },
        "writes": agent.access.as_str(),
        "version": env!("CARGO_PKG_VERSION"),
    }))
    .into_response())
}

/// `GET /v1/monitor`: every agent event as it happens, as server-sent
/// events whose data is the event's JSON; a monitor that falls behind gets
/// `{"event": "lagged", "skipped": N}` and reads on.
async fn monitor(State(agent): State<Arc<AgentState>>) -> Response {
    let local = agent.handle.local_addr();
    let stream = BroadcastStream::new(agent.subscribe()).map(move |item| {
        let json = match item {
            Ok(event) => event.to_json(local),
            Err(BroadcastStreamRecvError::Lagged(n)) => serde_json::json!({"event": "lagged", "skipped": n}),
        };
        Ok::<_, Infallible>(SseEvent::default().data(json.to_string()))
    });
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JoinBody {
    seeds: Vec<String>,
}

/// `POST /v1/join {"seeds": [...]}`: join through them; answers once a
/// seed answered, or 504 after 10 s (the join goes on).
async fn join(
    State(agent): State<Arc<AgentState>>,
    Write(JoinBody { seeds }): Write<JoinBody>,
) -> Result<Response, OpError> {
    if seeds.is_empty() {
        return Err(OpError::BadRequest("give at least one seed".to_owned()));
    }
    match tokio::time::timeout(JOIN_WAIT, agent.handle.join(seeds.iter())).await {
        Ok(members) => Ok(Json(serde_json::json!({ "members": members? })).into_response()),
        Err(_) => {
            Err(OpError::TimedOut(format!("no seed answered within {} s; the join goes on", JOIN_WAIT.as_secs())))
        }
    }
}

/// `POST /v1/leave`: leave gracefully; the agent then exits.
async fn leave(State(agent): State<Arc<AgentState>>, _: Write<NoArguments>) -> Result<Response, OpError> {
    agent.request_leave().await;
    Ok(Json(serde_json::json!({ "leaving": true })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ForceLeaveBody {
    node: String,
}

/// `POST /v1/force-leave {"node": NAME}`: a failed member is marked left.
async fn force_leave(
    State(agent): State<Arc<AgentState>>,
    Write(ForceLeaveBody { node }): Write<ForceLeaveBody>,
) -> Result<Response, OpError> {
    let addr: SocketAddr = agent.force_leave(&node).await?;
    Ok(Json(serde_json::json!({ "node": node, "addr": addr.to_string() })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventBody {
    name: String,
    #[serde(default)]
    payload: String,
}

/// `POST /v1/event {"name": ..., "payload": ...}`: a user event, once at
/// every agent.
async fn event(
    State(agent): State<Arc<AgentState>>,
    Write(EventBody { name, payload }): Write<EventBody>,
) -> Result<Response, OpError> {
    agent.send_event(&name, payload.as_bytes()).await?;
    Ok(Json(serde_json::json!({ "name": name })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TagsBody {
    #[serde(default)]
    set: BTreeMap<String, String>,
    #[serde(default)]
    delete: Vec<String>,
}

/// `POST /v1/tags {"set": {...}, "delete": [...]}`: change this agent's
/// tags; the others see it updated. Answers with the tags now.
async fn tags(
    State(agent): State<Arc<AgentState>>,
    Write(TagsBody { set, delete }): Write<TagsBody>,
) -> Result<Response, OpError> {
    let tags = agent.change_tags(&set, &delete).await?;
    Ok(Json(serde_json::json!({ "tags": tags })).into_response())
}

/// The keyring as `GET /v1/keys` and the key writes answer it.
fn keyring_json(agent: &AgentState, keys: &[InstalledKey]) -> serde_json::Value {
    let keys: Vec<serde_json::Value> =
        keys.iter().map(|k| serde_json::json!({ "id": k.id.to_string(), "primary": k.primary })).collect();
    serde_json::json!({ "encryption": agent.config.encryption.as_str(), "keys": keys })
}

/// `GET /v1/keys`: the encryption mode and each key's id, and which one
/// seals.
async fn list_keys(State(agent): State<Arc<AgentState>>) -> Result<Response, OpError> {
    let keys = agent.handle.keys().await?;
    Ok(Json(keyring_json(&agent, &keys)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyBody {
    key: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdBody {
    id: String,
}

/// The key id of a request body, without repeating what was sent.
fn key_id(text: &str) -> Result<swim_core::KeyId, OpError> {
    keys::parse_id(text).ok_or_else(|| {
        OpError::BadRequest("invalid `id`: give a key id, eight hex digits (`swim keys list` shows them)".to_owned())
    })
}

/// `POST /v1/keys/install {"key": BASE64}`: open datagrams sealed with it
/// from now on. Only from this host: the key is in the request, in the clear.
async fn install_key(
    State(agent): State<Arc<AgentState>>,
    ConnectInfo(connection): ConnectInfo<Connection>,
    Write(KeyBody { key }): Write<KeyBody>,
) -> Result<Response, OpError> {
    if !connection.from_this_host() {
        return Err(OpError::Forbidden(
            "keys are installed only from the agent's own host: HTTP carries them in the clear".to_owned(),
        ));
    }
    let key = keys::parse_key(&key).map_err(|problem| OpError::BadRequest(format!("invalid `key`: {problem}")))?;
    let id = agent.handle.install_key(key).await?;
    let keys = agent.handle.keys().await?;
    let mut answer = keyring_json(&agent, &keys);
    answer["installed"] = id.to_string().into();
    Ok(Json(answer).into_response())
}

/// `POST /v1/keys/use {"id": ID}`: seal with that installed key from now on.
async fn use_key(
    State(agent): State<Arc<AgentState>>,
    Write(IdBody { id }): Write<IdBody>,
) -> Result<Response, OpError> {
    agent.handle.use_key(key_id(&id)?).await?;
    let keys = agent.handle.keys().await?;
    Ok(Json(keyring_json(&agent, &keys)).into_response())
}

/// `POST /v1/keys/remove {"id": ID}`: forget that key (not the primary).
async fn remove_key(
    State(agent): State<Arc<AgentState>>,
    Write(IdBody { id }): Write<IdBody>,
) -> Result<Response, OpError> {
    agent.handle.remove_key(key_id(&id)?).await?;
    let keys = agent.handle.keys().await?;
    Ok(Json(keyring_json(&agent, &keys)).into_response())
}

async fn metrics(State(agent): State<Arc<AgentState>>) -> Result<Response, OpError> {
    let stats = agent.handle.stats().await?;
    let keys = agent.handle.keys().await?;
    let keyring = super::metrics::Keyring { encryption: agent.config.encryption, keys: &keys };
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        super::metrics::render(&stats, &keyring, &super::metrics::ProcessStats::read()),
    )
        .into_response())
}

async fn healthz(State(agent): State<Arc<AgentState>>) -> Response {
    if agent.handle.is_stopped() {
        OpError::Stopped.into_response()
    } else {
        (StatusCode::OK, "ok\n").into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_installed_only_from_this_host() {
        let c = |local: &str, remote: &str| Connection { local: local.parse().ok(), remote: remote.parse().unwrap() };
        assert!(c("127.0.0.1:7947", "127.0.0.1:5000").from_this_host());
        assert!(c("[::1]:7947", "[::1]:5000").from_this_host());
        assert!(c("10.0.0.1:7947", "10.0.0.1:5000").from_this_host());
        assert!(c("[::ffff:10.0.0.1]:7947", "[::ffff:10.0.0.1]:5000").from_this_host());
        assert!(!c("10.0.0.1:7947", "10.0.0.2:5000").from_this_host());
        assert!(!c("-", "10.0.0.2:5000").from_this_host());
    }

    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn member_filters_check_state_and_every_tag() {
        let m = MemberJson {
            name: "a".into(),
            addr: "127.0.0.1:1".into(),
            state: "alive".into(),
            incarnation: 1,
            meta: serde_json::from_str(r#"{"role":"web","zone":"z"}"#).unwrap(),
            local: false,
        };
        let f = MemberFilter::from_pairs(&pairs(&[("status", "alive"), ("tag", "role=web")])).unwrap();
        assert!(f.matches(&m));
        let f = MemberFilter::from_pairs(&pairs(&[("tag", "role=web"), ("tag", "zone=y")])).unwrap();
        assert!(!f.matches(&m));
        let f = MemberFilter::from_pairs(&pairs(&[("status", "failed")])).unwrap();
        assert!(!f.matches(&m));
        let e = MemberFilter::from_pairs(&pairs(&[("status", "dead")])).unwrap_err();
        assert_eq!(e, "invalid `status` `dead`: one of alive, suspect, failed, left");
        assert!(MemberFilter::from_pairs(&pairs(&[("tag", "novalue")])).is_err());
        assert!(MemberFilter::from_pairs(&pairs(&[("state", "alive")])).is_err());
    }
}
