//! Member names and tags: the one place for the helpers that read and
//! write them, as the `swim` agent does (an application embedding the
//! driver may use them too, so `swim members` shows its members by name).
//! A name and `KEY=VALUE` tags are encoded as one JSON object of strings.
//!
//! Encoding: the UTF-8 bytes of a compact JSON object whose keys are sorted,
//! every value a string, the name (when set) under the key `"name"`:
//! `{"name":"web-1","role":"web","zone":"a"}`. It must fit
//! `max_metadata_len` bytes (512 by default). Metadata that is not such an
//! object (set by some other application) is shown as `{"raw_hex": "..."}`.
//! The encoding itself is [`swim_driver::meta`]'s, which swim-mio shares.

use std::collections::BTreeMap;
use std::fmt;

pub use swim_driver::meta::NAME_KEY;

/// A member's name and tags as the agent encodes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameTags {
    /// A human name for the member, if it has one.
    pub name: Option<String>,
    /// Tags, `KEY=VALUE`.
    pub tags: BTreeMap<String, String>,
}

/// A tag the agent refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaError {
    /// Not of the form `KEY=VALUE` with a non-empty key.
    NotKeyValue(String),
    /// `name` is set with `--name`, not as a tag.
    ReservedKey,
    /// The encoded metadata is longer than `max_metadata_len`.
    TooLong {
        /// Bytes needed.
        len: usize,
        /// Bytes allowed.
        max: usize,
    },
}

impl fmt::Display for MetaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetaError::NotKeyValue(s) => write!(f, "meta `{s}` is not KEY=VALUE"),
            MetaError::ReservedKey => f.write_str("meta key `name` is reserved: use --name"),
            MetaError::TooLong { len, max } => {
                write!(f, "name and meta encode to {len} bytes, more than max_metadata_len {max}")
            }
        }
    }
}

impl std::error::Error for MetaError {}

/// Split `KEY=VALUE`.
pub fn parse_tag(s: &str) -> Result<(String, String), MetaError> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => {
            let k = k.trim();
            if k == NAME_KEY {
                return Err(MetaError::ReservedKey);
            }
            Ok((k.to_owned(), v.to_owned()))
        }
        _ => Err(MetaError::NotKeyValue(s.to_owned())),
    }
}

impl NameTags {
    /// The wire bytes, refused when longer than `max`.
    pub fn encode(&self, max: usize) -> Result<Vec<u8>, MetaError> {
        let bytes = swim_driver::meta::encode_name_tags(self.name.as_deref(), &self.tags);
        if bytes.len() > max {
            return Err(MetaError::TooLong { len: bytes.len(), max });
        }
        Ok(bytes)
    }

    /// Read metadata bytes: the name and the other keys as a JSON object.
    /// Never fails: foreign metadata becomes `{"raw_hex": ...}`.
    pub fn decode(bytes: &[u8]) -> (Option<String>, serde_json::Map<String, serde_json::Value>) {
        if bytes.is_empty() {
            return (None, serde_json::Map::new());
        }
        match serde_json::from_slice::<serde_json::Value>(bytes) {
            Ok(serde_json::Value::Object(mut object)) => {
                let name = match object.remove(NAME_KEY) {
                    Some(serde_json::Value::String(s)) => Some(s),
                    Some(other) => {
                        object.insert(NAME_KEY.to_owned(), other);
                        None
                    }
                    None => None,
                };
                (name, object)
            }
            _ => {
                let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                let mut object = serde_json::Map::new();
                object.insert("raw_hex".to_owned(), serde_json::Value::String(hex));
                (None, object)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_and_tags_round_trip_as_a_sorted_json_object() {
        let mut meta = NameTags { name: Some("web-1".into()), ..NameTags::default() };
        meta.tags.insert("zone".into(), "a".into());
        meta.tags.insert("role".into(), "web".into());
        let bytes = meta.encode(512).unwrap();
        assert_eq!(bytes, br#"{"name":"web-1","role":"web","zone":"a"}"#);
        let (name, tags) = NameTags::decode(&bytes);
        assert_eq!(name.as_deref(), Some("web-1"));
        assert_eq!(tags["role"], "web");
        assert!(!tags.contains_key("name"));
    }

    #[test]
    fn bad_tags_and_long_metadata_are_refused() {
        assert_eq!(parse_tag("role=web").unwrap(), ("role".into(), "web".into()));
        assert_eq!(parse_tag("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert!(matches!(parse_tag("novalue"), Err(MetaError::NotKeyValue(_))));
        assert_eq!(parse_tag("name=x"), Err(MetaError::ReservedKey));
        let meta = NameTags { name: Some("x".repeat(600)), ..NameTags::default() };
        assert!(matches!(meta.encode(512), Err(MetaError::TooLong { .. })));
        assert_eq!(NameTags::default().encode(512).unwrap(), b"");
    }

    #[test]
    fn the_shared_encoding_writes_what_serde_json_writes() {
        let mut tags = BTreeMap::new();
        tags.insert("k".to_owned(), "q\"\\\n\r\t\u{8}\u{c}\u{1}\u{1f}\u{7f}é/".to_owned());
        tags.insert("ü".to_owned(), String::new());
        let meta = NameTags { name: Some("web \"1\"".into()), tags: tags.clone() };
        let mut object: BTreeMap<&str, &str> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        object.insert(NAME_KEY, "web \"1\"");
        assert_eq!(meta.encode(512).unwrap(), serde_json::to_vec(&object).unwrap());
    }

    #[test]
    fn foreign_metadata_is_shown_as_hex() {
        let (name, tags) = NameTags::decode(&[0xff, 0x00]);
        assert_eq!(name, None);
        assert_eq!(tags["raw_hex"], "ff00");
    }
}
