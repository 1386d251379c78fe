//! The agent's HTTP API: `GET /v1/members`, `GET /v1/self`, `GET /metrics`,
//! `GET /healthz`.

use std::future::Future;
use std::io;

use axum::extract::State;
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

async fn members(State(handle): State<Handle>) -> Response {
    match handle.members().await {
        Ok(members) => Json(members.iter().map(MemberJson::from).collect::<Vec<_>>()).into_response(),
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
