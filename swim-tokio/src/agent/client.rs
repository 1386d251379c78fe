//! A minimal HTTP client for the `swim` subcommands and the tests: one
//! request per connection, `Connection: close`, body read to the end; and
//! a reader of the monitor's server-sent events.

use std::fmt;
use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::http::MemberJson;

/// How long one request may take, connect to last byte.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Why a request failed.
#[derive(Debug)]
pub enum ClientError {
    /// Connecting, writing or reading failed.
    Io(io::Error),
    /// No answer within the timeout.
    TimedOut,
    /// The answer was not HTTP as expected.
    BadResponse,
    /// The agent answered with an error status, and why (its body).
    Status(u16, String),
    /// The body was not the JSON expected.
    Json(serde_json::Error),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "cannot reach the agent: {e}"),
            ClientError::TimedOut => f.write_str("the agent did not answer in time"),
            ClientError::BadResponse => f.write_str("the agent's answer is not valid HTTP"),
            ClientError::Status(s, why) if why.trim().is_empty() => write!(f, "the agent answered HTTP {s}"),
            ClientError::Status(s, why) => write!(f, "the agent answered HTTP {s}: {}", why.trim()),
            ClientError::Json(e) => write!(f, "the agent's answer is not the JSON expected: {e}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// How long a write may take: a join waits up to 10 s for a seed.
const WRITE_TIMEOUT: Duration = Duration::from_secs(15);

/// GET `path` from the agent at `addr` (`host:port`); the body of a 200.
pub async fn get(addr: &str, path: &str) -> Result<String, ClientError> {
    tokio::time::timeout(TIMEOUT, exchange(addr, "GET", path, None, None)).await.map_err(|_| ClientError::TimedOut)?
}

/// POST the JSON `body` to `path`, with the bearer `token` if given; the
/// body of a 200.
pub async fn post(
    addr: &str,
    path: &str,
    body: &serde_json::Value,
    token: Option<&str>,
) -> Result<String, ClientError> {
    let body = body.to_string();
    tokio::time::timeout(WRITE_TIMEOUT, exchange(addr, "POST", path, Some(&body), token))
        .await
        .map_err(|_| ClientError::TimedOut)?
}

fn head(method: &str, version: &str, addr: &str, path: &str, token: Option<&str>) -> String {
    let mut request = format!("{method} {path} {version}\r\nHost: {addr}\r\nConnection: close\r\nAccept: */*\r\n");
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    request
}

async fn exchange(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    token: Option<&str>,
) -> Result<String, ClientError> {
    let mut stream = TcpStream::connect(addr).await.map_err(ClientError::Io)?;
    let mut request = head(method, "HTTP/1.1", addr, path, token);
    if let Some(body) = body {
        request.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    request.push_str(body.unwrap_or(""));
    stream.write_all(request.as_bytes()).await.map_err(ClientError::Io)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.map_err(ClientError::Io)?;
    parse_response(&raw)
}

/// Follow the server-sent events at `path` (`/v1/monitor`), calling
/// `on_data` with each event's data until the agent closes the stream or
/// `on_data` returns false. Asked over HTTP/1.0, so the body is the raw
/// stream, without chunked framing.
pub async fn follow(addr: &str, path: &str, mut on_data: impl FnMut(&str) -> bool) -> Result<(), ClientError> {
    use tokio::io::AsyncBufReadExt;
    let mut stream = tokio::time::timeout(TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| ClientError::TimedOut)?
        .map_err(ClientError::Io)?;
    let request = head("GET", "HTTP/1.0", addr, path, None) + "\r\n";
    stream.write_all(request.as_bytes()).await.map_err(ClientError::Io)?;
    let mut lines = tokio::io::BufReader::new(stream).lines();
    let status = lines.next_line().await.map_err(ClientError::Io)?.ok_or(ClientError::BadResponse)?;
    let code: u16 = status.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or(ClientError::BadResponse)?;
    while let Some(line) = lines.next_line().await.map_err(ClientError::Io)? {
        if line.is_empty() {
            break;
        }
    }
    if code != 200 {
        return Err(ClientError::Status(code, String::new()));
    }
    while let Some(line) = lines.next_line().await.map_err(ClientError::Io)? {
        if let Some(data) = line.strip_prefix("data:") {
            if !on_data(data.trim_start()) {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// The body of a complete HTTP/1.1 response, when its status is 200.
fn parse_response(raw: &[u8]) -> Result<String, ClientError> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or(ClientError::BadResponse)?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| ClientError::BadResponse)?;
    let body = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or(ClientError::BadResponse)?;
    let chunked = lines.any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked { dechunk(body).ok_or(ClientError::BadResponse)? } else { body.to_vec() };
    if status != 200 {
        return Err(ClientError::Status(status, String::from_utf8_lossy(&body).into_owned()));
    }
    String::from_utf8(body).map_err(|_| ClientError::BadResponse)
}

/// Undo chunked transfer encoding.
fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = body.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&body[..eol]).ok()?;
        let size_text = size_text.split(';').next()?.trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        body = &body[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(body.get(..size)?);
        body = body.get(size + 2..)?;
    }
}

/// Percent-encode a query parameter value.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `GET /v1/members`, parsed.
pub async fn members(addr: &str) -> Result<Vec<MemberJson>, ClientError> {
    members_at(addr, "/v1/members").await
}

/// `GET path` (`/v1/members` with a query), parsed.
pub async fn members_at(addr: &str, path: &str) -> Result<Vec<MemberJson>, ClientError> {
    let body = get(addr, path).await?;
    serde_json::from_str(&body).map_err(ClientError::Json)
}

/// The members as an aligned text table, one line each.
pub fn table(members: &[MemberJson]) -> String {
    let rows: Vec<[String; 5]> = members
        .iter()
        .map(|m| {
            let meta = m
                .meta
                .iter()
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => format!("{k}={s}"),
                    other => format!("{k}={other}"),
                })
                .collect::<Vec<_>>()
                .join(",");
            let name = if m.local { format!("{} (self)", m.name) } else { m.name.clone() };
            [name, m.addr.clone(), m.state.clone(), m.incarnation.to_string(), meta]
        })
        .collect();
    let header = ["NAME", "ADDR", "STATE", "INCARNATION", "META"].map(String::from);
    let mut widths = [0usize; 5];
    for row in std::iter::once(&header).chain(rows.iter()) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows.iter()) {
        let line: Vec<String> = row.iter().zip(widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_chunked_bodies_are_read() {
        let plain = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        assert_eq!(parse_response(plain).unwrap(), "ok");
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n3\r\n!!!\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap(), "ok!!!");
        let missing = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n";
        assert!(matches!(parse_response(missing), Err(ClientError::Status(404, _))));
        assert!(matches!(parse_response(b"garbage"), Err(ClientError::BadResponse)));
    }

    #[test]
    fn the_table_aligns_columns() {
        let m = MemberJson {
            name: "web-1".into(),
            addr: "127.0.0.1:7946".into(),
            state: "alive".into(),
            incarnation: 3,
            meta: serde_json::from_str(r#"{"role":"web"}"#).unwrap(),
            local: true,
        };
        let t = table(&[m]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "NAME          ADDR            STATE  INCARNATION  META");
        assert_eq!(lines[1], "web-1 (self)  127.0.0.1:7946  alive  3            role=web");
    }
}
