//! The agent's HTTP API: `GET /v1/members`, `GET /v1/self`, `GET /metrics`,
//! `GET /healthz`.

use std::future::Future;
use std::io;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use super::meta::AgentMeta;
use crate::{Handle, MemberInfo};

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
    /// Its tags (see [`super::meta`]).
    pub meta: serde_json::Map<String, serde_json::Value>,
    /// Whether it is the agent answering.
    #[serde(default)]
    pub local: bool,
}

impl From<&MemberInfo> for MemberJson {
    fn from(m: &MemberInfo) -> Self {
        let (name, meta) = AgentMeta::decode(&m.meta);
        MemberJson {
            name: name.unwrap_or_else(|| m.addr.to_string()),
            addr: m.addr.to_string(),
            state: m.state.as_str().to_owned(),
            incarnation: m.incarnation,
            meta,
            local: m.is_local,
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

/// The routes, answering from `handle`.
pub fn router(handle: Handle) -> Router {
    Router::new()
        .route("/v1/members", get(members))
        .route("/v1/self", get(local))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .with_state(handle)
}

/// Serve the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    handle: Handle,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    axum::serve(listener, router(handle)).with_graceful_shutdown(shutdown).await
}

fn stopped() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "swim node stopped\n").into_response()
}

async fn members(State(handle): State<Handle>, Query(query): Query<Vec<(String, String)>>) -> Response {
    let filter = match MemberFilter::from_pairs(&query) {
        Ok(f) => f,
        Err(why) => return (StatusCode::BAD_REQUEST, format!("{why}\n")).into_response(),
    };
    match handle.members().await {
        Ok(members) => {
            let shown: Vec<MemberJson> = members.iter().map(MemberJson::from).filter(|m| filter.matches(m)).collect();
            Json(shown).into_response()
        }
        Err(_) => stopped(),
    }
}

async fn local(State(handle): State<Handle>) -> Response {
    match handle.local_member().await {
        Ok(m) => Json(MemberJson::from(&m)).into_response(),
        Err(_) => stopped(),
    }
}

async fn metrics(State(handle): State<Handle>) -> Response {
    match handle.stats().await {
        Ok(stats) => {
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], super::metrics::render(&stats))
                .into_response()
        }
        Err(_) => stopped(),
    }
}

async fn healthz(State(handle): State<Handle>) -> Response {
    if handle.is_stopped() {
        stopped()
    } else {
        (StatusCode::OK, "ok\n").into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
