//! A small service embedding swim-tokio: it joins a cluster, prints every
//! membership event, and answers `GET /` with the members it sees, as JSON.
//! Ctrl-C leaves gracefully.
//!
//! ```text
//! cargo run -p swim-tokio --example service -- --bind 127.0.0.1:7000 --http 127.0.0.1:8000 --name one
//! cargo run -p swim-tokio --example service -- --bind 127.0.0.1:7001 --http 127.0.0.1:8001 --name two --join 127.0.0.1:7000
//! curl -s 127.0.0.1:8001/
//! ```

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use swim_tokio::meta::NameTags;
use swim_tokio::{Config, Event, Handle, Options, StreamExt};

struct Args {
    bind: SocketAddr,
    http: SocketAddr,
    name: String,
    join: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut bind = None;
    let mut http = None;
    let mut name = None;
    let mut join = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--bind" => bind = Some(value()?.parse().map_err(|e| format!("--bind: {e}"))?),
            "--http" => http = Some(value()?.parse().map_err(|e| format!("--http: {e}"))?),
            "--name" => name = Some(value()?),
            "--join" => join.push(value()?),
            other => return Err(format!("unknown option {other}: use --bind, --http, --name, --join")),
        }
    }
    Ok(Args {
        bind: bind.ok_or("--bind ADDR is required")?,
        http: http.ok_or("--http ADDR is required")?,
        name: name.ok_or("--name NAME is required")?,
        join,
    })
}

/// The members as this service answers them.
async fn members(State(swim): State<Handle>) -> Json<serde_json::Value> {
    let members = swim.members().await.unwrap_or_default();
    let shown: Vec<_> = members
        .iter()
        .map(|m| {
            let name = NameTags::decode(&m.meta).0.unwrap_or_else(|| m.addr.to_string());
            serde_json::json!({ "name": name, "addr": m.addr.to_string(), "state": m.state.as_str() })
        })
        .collect();
    Json(serde_json::Value::Array(shown))
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let mut options = Options::new(args.bind, Config::local());
    options.metadata = NameTags { name: Some(args.name), ..NameTags::default() }.encode(512)?;
    let swim = Handle::start(options).await?;

    // Subscribe before joining, so no event of the join is missed.
    let mut events = swim.subscribe()?;
    tokio::spawn(async move {
        while let Some(item) = events.next().await {
            match item {
                Ok(Event::Broadcast { from, payload }) => println!("broadcast from {from}: {} bytes", payload.len()),
                Ok(event) => {
                    if let Some(m) = event.member() {
                        let name = NameTags::decode(&m.meta).0.unwrap_or_default();
                        println!("{:<9} {name} {}", event.name(), m.addr);
                    }
                }
                Err(lag) => println!("{lag}"),
            }
        }
    });
    if !args.join.is_empty() {
        let members = swim.join(&args.join).await?;
        println!("joined: {members} members");
    }

    let listener = tokio::net::TcpListener::bind(args.http).await?;
    let app = Router::new().route("/", get(members)).with_state(swim.clone());
    let server = axum::serve(listener, app).with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    });
    server.await?;
    let outcome = swim.leave_within(Duration::from_secs(2)).await?;
    println!("left: {outcome:?}");
    swim.shutdown().await;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("service: {e}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("service: {e}");
            ExitCode::FAILURE
        }
    }
}
