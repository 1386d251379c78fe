//! The agent's events: membership changes and user events, as `swim
//! monitor` streams them and event handlers receive them, and the encoding
//! of a user event in an application broadcast.
//!
//! A user event travels as one core broadcast (delivered once at every
//! other member) whose payload is: the byte `0xE7`, the event name's length
//! (one byte, 1 to [`MAX_EVENT_NAME`]), the name in UTF-8, then the
//! payload. A broadcast not in this form (sent by some other application)
//! is shown as a user event with an empty name.

use std::fmt;
use std::net::SocketAddr;

use swim_core::Bytes;

use super::http::MemberJson;
use crate::{Event, Member};

/// The first byte of a user event's broadcast.
const USER_EVENT_TAG: u8 = 0xE7;
/// The longest event name, bytes.
pub const MAX_EVENT_NAME: usize = 128;

/// A user event name the agent refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventNameError {
    /// Empty, longer than [`MAX_EVENT_NAME`] bytes, or with characters
    /// other than letters, digits, `-`, `_`, `.` and `:`.
    Invalid(String),
}

impl fmt::Display for EventNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventNameError::Invalid(name) => {
                write!(f, "invalid event name `{name}`: 1 to {MAX_EVENT_NAME} letters, digits, `-`, `_`, `.` or `:`")
            }
        }
    }
}

impl std::error::Error for EventNameError {}

/// The broadcast payload of user event `name` with `payload`.
pub fn encode_user_event(name: &str, payload: &[u8]) -> Result<Vec<u8>, EventNameError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_EVENT_NAME
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    if !valid {
        return Err(EventNameError::Invalid(name.to_owned()));
    }
    let mut out = Vec::with_capacity(2 + name.len() + payload.len());
    out.push(USER_EVENT_TAG);
    out.push(name.len() as u8);
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

/// The name and payload of a broadcast: a user event's, or an empty name
/// and the whole broadcast when it is not in the user event form.
pub fn decode_user_event(broadcast: &Bytes) -> (String, Bytes) {
    if let [USER_EVENT_TAG, len, rest @ ..] = &broadcast[..] {
        let len = usize::from(*len);
        if (1..=MAX_EVENT_NAME).contains(&len) && rest.len() >= len {
            if let Ok(name) = std::str::from_utf8(&rest[..len]) {
                return (name.to_owned(), broadcast.slice(2 + len..));
            }
        }
    }
    (String::new(), broadcast.clone())
}

/// What happened to a member, in Serf's event names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberEvent {
    /// `member-join`: it appeared, or came back.
    Join,
    /// `member-leave`: it left gracefully (or was forced out).
    Leave,
    /// `member-failed`: it was declared failed.
    Failed,
    /// `member-update`: its tags changed.
    Update,
    /// `member-suspect`: it missed its probes and may still refute.
    Suspect,
    /// `member-alive`: it refuted a suspicion.
    Alive,
}

impl MemberEvent {
    /// The event's name: `member-join`, `member-leave`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            MemberEvent::Join => "member-join",
            MemberEvent::Leave => "member-leave",
            MemberEvent::Failed => "member-failed",
            MemberEvent::Update => "member-update",
            MemberEvent::Suspect => "member-suspect",
            MemberEvent::Alive => "member-alive",
        }
    }
}

/// One event of the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentEvent {
    /// A membership change.
    Member {
        /// What happened.
        kind: MemberEvent,
        /// To whom, as this agent now sees it.
        member: Member,
    },
    /// A user event (`swim event`), delivered once at every agent, its
    /// sender included.
    User {
        /// The event's name.
        name: String,
        /// Its payload.
        payload: Bytes,
        /// The member that sent it.
        from: SocketAddr,
    },
}

impl AgentEvent {
    /// The agent event of a node event; `None` for the ones the agent
    /// only logs (an address conflict).
    pub fn from_node(event: &Event) -> Option<AgentEvent> {
        let member = |kind, m: &Member| Some(AgentEvent::Member { kind, member: m.clone() });
        match event {
            Event::Joined(m) => member(MemberEvent::Join, m),
            Event::Left(m) => member(MemberEvent::Leave, m),
            Event::Failed(m) => member(MemberEvent::Failed, m),
            Event::Updated(m) => member(MemberEvent::Update, m),
            Event::Suspected(m) => member(MemberEvent::Suspect, m),
            Event::Alive(m) => member(MemberEvent::Alive, m),
            Event::Broadcast { from, payload } => {
                let (name, payload) = decode_user_event(payload);
                Some(AgentEvent::User { name, payload, from: *from })
            }
            _ => None,
        }
    }

    /// Its name: `member-join`, ..., or `user`.
    pub fn kind(&self) -> &'static str {
        match self {
            AgentEvent::Member { kind, .. } => kind.as_str(),
            AgentEvent::User { .. } => "user",
        }
    }

    /// As `swim monitor --json` prints it: `{"event": ..., "member": {...}}`
    /// or `{"event": "user", "name": ..., "payload": ..., "from": ...}`
    /// (the payload as text, invalid UTF-8 replaced).
    pub fn to_json(&self, local: SocketAddr) -> serde_json::Value {
        match self {
            AgentEvent::Member { member, .. } => serde_json::json!({
                "event": self.kind(),
                "member": MemberJson::from_member(member, member.addr == local),
            }),
            AgentEvent::User { name, payload, from } => serde_json::json!({
                "event": "user",
                "name": name,
                "payload": String::from_utf8_lossy(payload),
                "from": from.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_events_round_trip_and_foreign_broadcasts_have_no_name() {
        let bytes = Bytes::from(encode_user_event("deploy", b"v1.2").unwrap());
        assert_eq!(&bytes[..2], &[0xE7, 6]);
        assert_eq!(decode_user_event(&bytes), ("deploy".to_owned(), Bytes::from_static(b"v1.2")));
        let foreign = Bytes::from_static(b"hello");
        assert_eq!(decode_user_event(&foreign), (String::new(), foreign.clone()));
        let cut = Bytes::from_static(&[0xE7, 9, b'a']);
        assert_eq!(decode_user_event(&cut).0, "");
        for bad in ["", "a b", "é", &"x".repeat(129)] {
            assert!(encode_user_event(bad, b"").is_err(), "{bad}");
        }
    }
}
