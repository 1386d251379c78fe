//! `swim`: run a SWIM cluster agent, or ask one about its cluster or to
//! change it.
//!
//! ```text
//! swim agent --bind 127.0.0.1:7946 --name a --http 127.0.0.1:7947
//! swim agent --bind 127.0.0.1:7956 --join 127.0.0.1:7946 --meta role=web
//! swim members --http 127.0.0.1:7947
//! swim event --http 127.0.0.1:7947 deploy v1.2
//! swim monitor --http 127.0.0.1:7957
//! swim keygen > keys && chmod 600 keys
//! ```

use std::process::ExitCode;

use clap::Parser;
use std::io::Write as _;

use serde_json::json;
use swim_tokio::agent::cli::{AgentArgs, ApiArgs, Cli, Command, KeysAction, MembersArgs};
use swim_tokio::agent::settings::Settings;
use swim_tokio::agent::{client, init_logging, keys, run};
use swim_tokio::meta::parse_tag;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Keygen = cli.command {
        return keygen();
    }
    // One thread: an agent's work is a few datagrams a second, and idle
    // worker threads only cost memory.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("swim: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(operate(cli.command))
}

/// `swim agent`: settings and logging are checked before anything starts
/// (exit 2); a failure while running exits 1. Printed once, here; the run
/// loop does not log it too.
async fn agent(args: AgentArgs) -> ExitCode {
    let settings = match Settings::load(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("swim: {e}");
            return ExitCode::from(2);
        }
    };
    let log = match init_logging(settings.log_level.as_deref()) {
        Ok(log) => log,
        Err(e) => {
            eprintln!("swim: {e}");
            return ExitCode::from(2);
        }
    };
    match run::run(args, settings, log).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("swim: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `swim keygen`: a new key from the OS generator, base64, on stdout.
fn keygen() -> ExitCode {
    match keys::generate() {
        Ok(key) => {
            println!("{}", keys::key_text(&key));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("swim: cannot draw a key from the operating system's generator: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Print a failed request once, naming the agent.
fn failed(http: &str, e: impl std::fmt::Display) -> ExitCode {
    eprintln!("swim: {http}: {e}");
    ExitCode::FAILURE
}

async fn members(args: MembersArgs) -> ExitCode {
    let http = &args.api.http;
    if args.json {
        match client::get(http, &args.path()).await {
            Ok(body) => {
                println!("{body}");
                ExitCode::SUCCESS
            }
            Err(e) => failed(http, e),
        }
    } else {
        match client::members_at(http, &args.path()).await {
            Ok(members) => {
                print!("{}", client::table(&members));
                ExitCode::SUCCESS
            }
            Err(e) => failed(http, e),
        }
    }
}

/// POST `body` to `path` with the token of `api`; print `done` with the
/// answer's JSON on success.
async fn write(
    api: &ApiArgs,
    path: &str,
    body: serde_json::Value,
    done: impl FnOnce(&serde_json::Value) -> String,
) -> ExitCode {
    let token = match api.token() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("swim: {e}");
            return ExitCode::from(2);
        }
    };
    match client::post(&api.http, path, &body, token.as_deref()).await {
        Ok(answer) => {
            let json = serde_json::from_str(&answer).unwrap_or(serde_json::Value::Null);
            println!("{}", done(&json));
            ExitCode::SUCCESS
        }
        Err(e) => failed(&api.http, e),
    }
}

async fn operate(command: Command) -> ExitCode {
    match command {
        Command::Agent(args) => agent(*args).await,
        Command::Members(args) => members(args).await,
        Command::Join(args) => {
            write(&args.api, "/v1/join", json!({ "seeds": args.seeds }), |a| {
                format!("joined: {} members", a["members"])
            })
            .await
        }
        Command::Leave(api) => write(&api, "/v1/leave", json!({}), |_| "leaving".to_owned()).await,
        Command::ForceLeave(args) => {
            write(&args.api, "/v1/force-leave", json!({ "node": args.node }), |a| {
                format!("forced out: {} {}", a["node"].as_str().unwrap_or(""), a["addr"].as_str().unwrap_or(""))
            })
            .await
        }
        Command::Event(args) => {
            let body = json!({ "name": args.name, "payload": args.payload });
            write(&args.api, "/v1/event", body, |a| format!("event sent: {}", a["name"].as_str().unwrap_or(""))).await
        }
        Command::Tags(args) => {
            let mut set = serde_json::Map::new();
            for tag in &args.set {
                match parse_tag(tag) {
                    Ok((k, v)) => {
                        set.insert(k, v.into());
                    }
                    Err(e) => {
                        eprintln!("swim: --set: {e}");
                        return ExitCode::from(2);
                    }
                }
            }
            write(&args.api, "/v1/tags", json!({ "set": set, "delete": args.delete }), |a| {
                let tags = a["tags"].as_object().map(|t| {
                    t.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect::<Vec<_>>().join(" ")
                });
                format!("tags: {}", tags.unwrap_or_default())
            })
            .await
        }
        Command::Monitor(args) => {
            let json = args.json;
            let result = client::follow(&args.api.http, "/v1/monitor", |data| {
                let line = if json { data.to_owned() } else { monitor_line(data) };
                let mut out = std::io::stdout().lock();
                // Stop when nobody reads the output any more.
                writeln!(out, "{line}").and_then(|()| out.flush()).is_ok()
            })
            .await;
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => failed(&args.api.http, e),
            }
        }
        Command::Keygen => keygen(),
        Command::Keys { action } => keys_command(action).await,
        Command::Info(args) => show(&args.api.http, "/v1/info", args.json, info_text).await,
    }
}

/// GET `path` and print the agent's JSON when `json`, else `text` of it.
async fn show(http: &str, path: &str, json: bool, text: fn(&serde_json::Value) -> String) -> ExitCode {
    match client::get(http, path).await {
        Ok(body) if json => {
            println!("{body}");
            ExitCode::SUCCESS
        }
        Ok(body) => match serde_json::from_str::<serde_json::Value>(&body) {
            Ok(v) => {
                print!("{}", text(&v));
                ExitCode::SUCCESS
            }
            Err(e) => failed(http, e),
        },
        Err(e) => failed(http, e),
    }
}

/// `swim keys ...`: keys are checked here, and only an id is sent to use
/// or remove one (a key itself travels only to be installed).
async fn keys_command(action: KeysAction) -> ExitCode {
    let named = |text: &str| {
        keys::id_or_key(text).map_err(|problem| {
            eprintln!("swim: invalid value for `KEY`: give a key id (eight hex digits) or a key: {problem}");
            ExitCode::from(2)
        })
    };
    match action {
        KeysAction::List { api, json } => show(&api.http, "/v1/keys", json, keys_text).await,
        KeysAction::Install { api, key } => {
            let text = if key.as_ref() == "-" {
                let mut line = String::new();
                if let Err(e) = std::io::stdin().read_line(&mut line) {
                    eprintln!("swim: cannot read the key from stdin: {e}");
                    return ExitCode::from(2);
                }
                line
            } else {
                key.0
            };
            let key = match keys::parse_key(&text) {
                Ok(k) => k,
                Err(problem) => {
                    eprintln!("swim: invalid value for `KEY`: {problem}");
                    return ExitCode::from(2);
                }
            };
            let body = json!({ "key": keys::key_text(&key) });
            write(&api, "/v1/keys/install", body, |_| format!("installed key {}", key.id())).await
        }
        KeysAction::Use { api, key } => match named(&key) {
            Ok(id) => {
                write(&api, "/v1/keys/use", json!({ "id": id.to_string() }), |_| format!("key {id} now seals")).await
            }
            Err(code) => code,
        },
        KeysAction::Remove { api, key } => match named(&key) {
            Ok(id) => {
                write(&api, "/v1/keys/remove", json!({ "id": id.to_string() }), |_| format!("removed key {id}")).await
            }
            Err(code) => code,
        },
    }
}

/// `swim keys list` as lines: each key's id, the primary marked.
fn keys_text(v: &serde_json::Value) -> String {
    let mut out = format!("encryption {}\n", v["encryption"].as_str().unwrap_or(""));
    for k in v["keys"].as_array().into_iter().flatten() {
        let id = k["id"].as_str().unwrap_or("");
        if k["primary"].as_bool() == Some(true) {
            out.push_str(&format!("{id} primary\n"));
        } else {
            out.push_str(&format!("{id}\n"));
        }
    }
    out
}

/// `key=value` pairs of a JSON object, space separated (nulls left out).
fn pairs(v: &serde_json::Value) -> String {
    v.as_object()
        .map(|o| {
            o.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => format!("{k}={s}"),
                    other => format!("{k}={other}"),
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// One monitor event as a line of text.
fn monitor_line(data: &str) -> String {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(data) else {
        return data.to_owned();
    };
    let s = |v: &serde_json::Value| v.as_str().unwrap_or("").to_owned();
    match v["event"].as_str().unwrap_or("") {
        "user" => format!("user {} from {}: {}", s(&v["name"]), s(&v["from"]), s(&v["payload"])),
        "lagged" => format!("lagged: {} events skipped", v["skipped"]),
        kind => {
            let m = &v["member"];
            let tags = pairs(&m["meta"]);
            format!(
                "{kind} {} {} {} incarnation {} {tags}",
                s(&m["name"]),
                s(&m["addr"]),
                s(&m["state"]),
                m["incarnation"]
            )
            .trim_end()
            .to_owned()
        }
    }
}

/// `swim info` as aligned lines.
fn info_text(v: &serde_json::Value) -> String {
    let s = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let rows = [
        ("name", s(&v["name"])),
        ("addr", s(&v["addr"])),
        ("state", s(&v["state"])),
        ("incarnation", s(&v["incarnation"])),
        ("members", pairs(&v["members"])),
        ("tags", pairs(&v["tags"])),
        ("local_health", s(&v["local_health"])),
        ("protocol", pairs(&v["protocol"])),
        ("encryption", pairs(&v["encryption"])),
        ("writes", s(&v["writes"])),
        ("version", s(&v["version"])),
    ];
    rows.iter().map(|(k, v)| format!("{k:<13}{v}\n")).collect()
}
