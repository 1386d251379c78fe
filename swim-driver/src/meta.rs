//! Member metadata in the form the `swim` agent (swim-tokio) uses, so a
//! mixed cluster shows the same names and tags whichever driver runs a
//! member: the UTF-8 bytes of a compact JSON object of strings with sorted
//! keys, the name under `"name"`: `{"name":"web-1","role":"web"}`.
//!
//! The metadata itself is opaque to the protocol: applications may put any
//! bytes there; these helpers are a convention, not a requirement.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The key the name is stored under.
pub const NAME_KEY: &str = "name";

/// Encode a name and tags (`tags` must not contain `"name"`; a name given
/// replaces it). Empty when there is neither.
pub fn encode_name_tags(name: Option<&str>, tags: &BTreeMap<String, String>) -> Vec<u8> {
    let mut object: BTreeMap<&str, &str> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    if let Some(name) = name {
        object.insert(NAME_KEY, name);
    }
    if object.is_empty() {
        return Vec::new();
    }
    let mut out = String::from("{");
    for (i, (k, v)) in object.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_string(&mut out, k);
        out.push(':');
        push_json_string(&mut out, v);
    }
    out.push('}');
    out.into_bytes()
}

/// Metadata for display: the text when it is UTF-8 without control
/// characters, else `hex:` and the bytes in hex.
pub fn describe(meta: &[u8]) -> String {
    match std::str::from_utf8(meta) {
        Ok(s) if !s.chars().any(char::is_control) => s.to_owned(),
        _ => {
            let mut out = String::from("hex:");
            for b in meta {
                let _ = write!(out, "{b:02x}");
            }
            out
        }
    }
}

/// A JSON string literal, escaped as serde_json writes it (so the bytes
/// match the agent's byte for byte).
fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_and_tags_encode_as_the_agent_does() {
        let mut tags = BTreeMap::new();
        tags.insert("zone".to_owned(), "a".to_owned());
        tags.insert("role".to_owned(), "web".to_owned());
        assert_eq!(encode_name_tags(Some("web-1"), &tags), br#"{"name":"web-1","role":"web","zone":"a"}"#);
        assert_eq!(encode_name_tags(None, &BTreeMap::new()), b"");
        let mut odd = BTreeMap::new();
        odd.insert("k".to_owned(), "q\"\\\n\u{1}é".to_owned());
        assert_eq!(encode_name_tags(None, &odd), "{\"k\":\"q\\\"\\\\\\n\\u0001é\"}".as_bytes());
    }

    #[test]
    fn metadata_is_described_as_text_or_hex() {
        assert_eq!(describe(br#"{"name":"a"}"#), r#"{"name":"a"}"#);
        assert_eq!(describe(&[0xff, 0x00]), "hex:ff00");
        assert_eq!(describe(b""), "");
    }
}
