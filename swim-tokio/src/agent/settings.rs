//! The agent's settings: the config file, merged with the command line
//! (command line > file > defaults), checked before anything starts.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use swim_core::{Bytes, Config, Encryption, Key};
use swim_driver::record::RecordOptions;

use super::cli::{AgentArgs, EncryptionMode, Profile};
use super::handlers::{EventHandler, HandlerError, Handlers};
use super::keys::{self, KeyFileError, KeyProblem};
use crate::meta::{self, MetaError, NameTags};

/// The default UDP port (memberlist's).
pub const DEFAULT_PORT: u16 = 7946;

/// The config file: the command line's settings plus every protocol
/// tunable, with units in the key names. Unknown keys are errors.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `bind = "127.0.0.1:7946"`.
    pub bind: Option<SocketAddr>,
    /// `advertise = "10.0.0.1:7946"`.
    pub advertise: Option<SocketAddr>,
    /// `join = ["10.0.0.2:7946", "seed.example:7946"]`, or one string.
    #[serde(default, deserialize_with = "one_or_many")]
    pub join: Option<Vec<String>>,
    /// `retry_max = 5`: give up after this many unanswered join attempts.
    pub retry_max: Option<u32>,
    /// `name = "web-1"`.
    pub name: Option<String>,
    /// `[meta]` table of string tags.
    pub meta: Option<BTreeMap<String, String>>,
    /// `profile = "lan" | "wan" | "local"`.
    pub profile: Option<Profile>,
    /// `http = "127.0.0.1:7947"`.
    pub http: Option<SocketAddr>,
    /// `http_token_file = "/etc/swim/token"`.
    pub http_token_file: Option<PathBuf>,
    /// `log_level = "info"`.
    pub log_level: Option<String>,
    /// `event_handlers = ["member-join=./on-join.sh"]`, or one string.
    #[serde(default, deserialize_with = "one_or_many")]
    pub event_handlers: Option<Vec<String>>,
    /// How long one event handler run may take, in milliseconds.
    pub event_handler_timeout_ms: Option<u64>,
    /// How long a graceful leave may take, in milliseconds.
    pub leave_timeout_ms: Option<u64>,
    /// The node's RNG seed (default: 32 bytes drawn from the OS).
    pub rng_seed: Option<u64>,
    /// `keys = ["BASE64", ...]`, or one string: the cluster keys, the
    /// first sealing. Prefer `key_file`, which can be kept private.
    #[serde(default, deserialize_with = "keys_one_or_many")]
    pub keys: Option<Vec<String>>,
    /// `key_file = "/etc/swim/keys"`: one base64 key per line, the first
    /// sealing; not readable by other users.
    pub key_file: Option<PathBuf>,
    /// `encryption = "off" | "accept" | "seal" | "require"` (default:
    /// require with keys, off without).
    pub encryption: Option<EncryptionMode>,
    /// `insecure_plaintext = true`: run without encryption on an address
    /// that is not loopback.
    pub insecure_plaintext: Option<bool>,
    /// `record = "/var/lib/swim/node.log"`: record every input (`--record`).
    pub record: Option<PathBuf>,
    /// `record_max_bytes = 1073741824`: the recording's size limit.
    pub record_max_bytes: Option<u64>,
    /// `[protocol]`: overrides on top of the profile.
    pub protocol: Option<ProtocolFile>,
}

/// One string or a list of strings; `expecting` says what else was wanted.
struct OneOrMany(&'static str);

impl<'de> serde::de::Visitor<'de> for OneOrMany {
    type Value = Vec<String>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(vec![v.to_owned()])
    }
    fn visit_seq<S: serde::de::SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
        let mut out = Vec::new();
        while let Some(item) = seq.next_element::<String>()? {
            out.push(item);
        }
        Ok(out)
    }
}

/// `join` as one string or a list of strings.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    d.deserialize_any(OneOrMany("a seed \"HOST:PORT\" or a list of them")).map(Some)
}

/// `keys` as one string or a list of strings: any string is taken here and
/// checked later, so no error message repeats a key's text.
fn keys_one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    d.deserialize_any(OneOrMany("a base64 key or a list of them")).map(Some)
}

/// Every tunable of [`swim_core::Config`]; durations in milliseconds.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // Each key is the `Config` field of the same name.
pub struct ProtocolFile {
    pub probe_interval_ms: Option<u64>,
    pub probe_timeout_ms: Option<u64>,
    pub indirect_checks: Option<u32>,
    pub retransmit_mult: Option<u32>,
    pub suspicion_mult: Option<u32>,
    pub suspicion_max_timeout_mult: Option<u32>,
    pub awareness_max_multiplier: Option<u32>,
    pub gossip_interval_ms: Option<u64>,
    pub gossip_nodes: Option<u32>,
    pub push_pull_interval_ms: Option<u64>,
    pub tombstone_timeout_ms: Option<u64>,
    pub join_retry_interval_ms: Option<u64>,
    pub join_retry_max_interval_ms: Option<u64>,
    pub max_datagram_size: Option<usize>,
    pub max_metadata_len: Option<usize>,
    pub max_broadcast_len: Option<usize>,
    pub max_members: Option<usize>,
    pub max_tombstones: Option<usize>,
    pub max_gossip_queue: Option<usize>,
    pub max_pending_transmits: Option<usize>,
    pub max_pending_events: Option<usize>,
    pub max_relays: Option<usize>,
    pub max_push_pull_sends: Option<usize>,
    pub max_seeds: Option<usize>,
    pub broadcast_dedup_window: Option<usize>,
    pub broadcast_keep: Option<usize>,
    pub broadcast_keep_time_ms: Option<u64>,
    pub label: Option<String>,
    pub lifeguard: Option<bool>,
    pub inbound_per_source: Option<RateFile>,
    pub inbound_total: Option<RateFile>,
    pub inbound_source_slots: Option<usize>,
    pub transfer_rate: Option<RateFile>,
}

/// A token bucket: an inbound budget, `[protocol.inbound_per_source]` or
/// `[protocol.inbound_total]` (units a second and the largest burst: a
/// datagram costs 1, a ping request 4, a digest 8, a full-state request
/// 16), or the pacing of full-state transfers, `[protocol.transfer_rate]`
/// (bytes a second and the largest burst); `per_second = 0` turns it off.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateFile {
    /// `Rate::per_second`.
    pub per_second: Option<u32>,
    /// `Rate::burst`.
    pub burst: Option<u32>,
}

impl RateFile {
    fn apply(&self, rate: &mut swim_core::Rate) {
        if let Some(v) = self.per_second {
            rate.per_second = v;
        }
        if let Some(v) = self.burst {
            rate.burst = v;
        }
    }
}

/// `Config` fields that are durations: their file keys end in `_ms`.
const DURATION_FIELDS: [&str; 7] = [
    "probe_interval",
    "probe_timeout",
    "gossip_interval",
    "push_pull_interval",
    "tombstone_timeout",
    "join_retry_interval",
    "join_retry_max_interval",
];

/// The config file key of a `Config` field.
pub fn file_key(field: &str) -> String {
    if DURATION_FIELDS.contains(&field) {
        format!("protocol.{field}_ms")
    } else {
        format!("protocol.{field}")
    }
}

impl ProtocolFile {
    /// Apply the overrides to `c`.
    pub fn apply(&self, c: &mut Config) {
        fn ms(v: Option<u64>, d: &mut Duration) {
            if let Some(v) = v {
                *d = Duration::from_millis(v);
            }
        }
        fn set<T: Copy>(v: Option<T>, f: &mut T) {
            if let Some(v) = v {
                *f = v;
            }
        }
        ms(self.probe_interval_ms, &mut c.probe_interval);
        ms(self.probe_timeout_ms, &mut c.probe_timeout);
        set(self.indirect_checks, &mut c.indirect_checks);
        set(self.retransmit_mult, &mut c.retransmit_mult);
        set(self.suspicion_mult, &mut c.suspicion_mult);
        set(self.suspicion_max_timeout_mult, &mut c.suspicion_max_timeout_mult);
        set(self.awareness_max_multiplier, &mut c.awareness_max_multiplier);
        ms(self.gossip_interval_ms, &mut c.gossip_interval);
        set(self.gossip_nodes, &mut c.gossip_nodes);
        ms(self.push_pull_interval_ms, &mut c.push_pull_interval);
        ms(self.tombstone_timeout_ms, &mut c.tombstone_timeout);
        ms(self.join_retry_interval_ms, &mut c.join_retry_interval);
        ms(self.join_retry_max_interval_ms, &mut c.join_retry_max_interval);
        set(self.max_datagram_size, &mut c.max_datagram_size);
        set(self.max_metadata_len, &mut c.max_metadata_len);
        set(self.max_broadcast_len, &mut c.max_broadcast_len);
        set(self.max_members, &mut c.max_members);
        set(self.max_tombstones, &mut c.max_tombstones);
        set(self.max_gossip_queue, &mut c.max_gossip_queue);
        set(self.max_pending_transmits, &mut c.max_pending_transmits);
        set(self.max_pending_events, &mut c.max_pending_events);
        set(self.max_relays, &mut c.max_relays);
        set(self.max_push_pull_sends, &mut c.max_push_pull_sends);
        set(self.max_seeds, &mut c.max_seeds);
        set(self.broadcast_dedup_window, &mut c.broadcast_dedup_window);
        set(self.broadcast_keep, &mut c.broadcast_keep);
        ms(self.broadcast_keep_time_ms, &mut c.broadcast_keep_time);
        if let Some(label) = &self.label {
            c.label = Bytes::copy_from_slice(label.as_bytes());
        }
        set(self.lifeguard, &mut c.lifeguard);
        if let Some(r) = &self.inbound_per_source {
            r.apply(&mut c.inbound_per_source);
        }
        if let Some(r) = &self.inbound_total {
            r.apply(&mut c.inbound_total);
        }
        set(self.inbound_source_slots, &mut c.inbound_source_slots);
        if let Some(r) = &self.transfer_rate {
            r.apply(&mut c.transfer_rate);
        }
    }
}

/// Why the agent's settings were refused. Nothing was started.
#[derive(Debug)]
pub enum SettingsError {
    /// The config file could not be read.
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The config file, which holds keys, is not valid: the message names
    /// the line but does not show it.
    ParseHidden {
        /// The file.
        path: String,
        /// The line (1-based), when the parser knows it.
        line: Option<usize>,
        /// The parser's message (it holds no value).
        message: String,
    },
    /// The config file is not valid: the message names the key and line.
    Parse {
        /// The file.
        path: String,
        /// The TOML error, naming the key.
        source: Box<toml::de::Error>,
    },
    /// A protocol value does not validate.
    Protocol {
        /// The config file key (`protocol.probe_timeout_ms`).
        key: String,
        /// What is wrong, from [`Config::validate`].
        source: swim_core::ConfigError,
    },
    /// A name or tag is refused.
    Meta(MetaError),
    /// The log filter is not one the agent understands.
    LogLevel {
        /// Where it came from: `--log-level`, `log_level` or `RUST_LOG`.
        key: &'static str,
        /// The filter given.
        value: String,
    },
    /// The agent would be known by an unspecified address (`0.0.0.0` or
    /// `[::]`), which no other member can send to.
    NeedsAdvertise {
        /// The address it would be known by.
        addr: SocketAddr,
    },
    /// The HTTP token file cannot be read, or is empty.
    TokenFile {
        /// The file.
        path: String,
        /// Why.
        why: String,
    },
    /// An event handler is refused.
    Handler {
        /// `--event-handler` or `event_handlers`.
        key: &'static str,
        /// Why.
        source: HandlerError,
    },
    /// No name was given and the host name cannot be read.
    NoHostName(std::io::Error),
    /// A key is refused (its text is never shown).
    Key {
        /// `--key` or `keys`.
        key: &'static str,
        /// Which one, from 1.
        entry: usize,
        /// What is wrong.
        problem: KeyProblem,
    },
    /// A key file is refused.
    KeyFile {
        /// `--key-file` or `key_file`.
        key: &'static str,
        /// The file.
        path: String,
        /// Why.
        error: KeyFileError,
    },
    /// More keys than a keyring holds.
    TooManyKeys {
        /// `--key`, `--key-file`, `keys` or `key_file`.
        key: &'static str,
        /// How many were given.
        count: usize,
    },
    /// The config file gives both `keys` and `key_file`.
    TwoKeySources,
    /// Encryption and keys do not go together.
    Encryption {
        /// `--encryption` or `encryption` (or where the keys came from).
        key: &'static str,
        /// The mode.
        mode: Encryption,
    },
    /// Plaintext on an address beyond loopback, without
    /// `--insecure-plaintext`.
    Plaintext {
        /// The address others could reach.
        addr: SocketAddr,
    },
    /// A recording size limit below the least allowed.
    RecordMaxBytes {
        /// `--record-max-bytes` or `record_max_bytes`.
        key: &'static str,
        /// The value given.
        value: u64,
    },
    /// A recording size limit without a file to record into.
    RecordWithoutFile,
    /// A value from the config file `path` was refused.
    InFile {
        /// The file.
        path: String,
        /// What is wrong with the value.
        error: Box<SettingsError>,
    },
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingsError::Read { path, source } => write!(f, "cannot read {path}: {source}"),
            SettingsError::Parse { path, source } => write!(f, "in {path}: {source}"),
            SettingsError::ParseHidden { path, line: Some(line), message } => {
                write!(f, "in {path}, line {line}: {message}")
            }
            SettingsError::ParseHidden { path, line: None, message } => write!(f, "in {path}: {message}"),
            SettingsError::Protocol { key, source } => {
                write!(f, "invalid value for `{key}`: {}", ProblemText(source))
            }
            SettingsError::Meta(e) => e.fmt(f),
            SettingsError::LogLevel { key, value } => write!(
                f,
                "invalid value for `{key}`: `{value}`: give LEVEL or TARGET=LEVEL, comma separated, \
                 LEVEL one of {}",
                LOG_LEVELS.join(", ")
            ),
            SettingsError::NeedsAdvertise { addr } => write!(
                f,
                "this agent would be known by {addr}, which other members cannot send to: give \
                 `--advertise ADDR` (or `advertise` in the config file), or `--bind` a specific address"
            ),
            SettingsError::TokenFile { path, why } => {
                write!(f, "invalid value for `http_token_file`: cannot use {path}: {why}")
            }
            SettingsError::Handler { key, source } => write!(f, "invalid value for `{key}`: {source}"),
            SettingsError::NoHostName(e) => {
                write!(f, "no `--name` given and the host name cannot be read ({e}): give `--name NAME`")
            }
            SettingsError::InFile { path, error } => write!(f, "in {path}: {error}"),
            SettingsError::RecordMaxBytes { key, value } => write!(
                f,
                "invalid value for `{key}`: {value}: give at least {} (1 MiB)",
                swim_driver::record::MIN_MAX_BYTES
            ),
            SettingsError::RecordWithoutFile => {
                f.write_str("`record_max_bytes` needs `record` (the file to record into)")
            }
            SettingsError::Key { key, entry, problem } => {
                write!(f, "invalid value for `{key}` (key {entry}): {problem}")
            }
            SettingsError::KeyFile { key, path, error } => write!(f, "invalid value for `{key}`: {path}: {error}"),
            SettingsError::TooManyKeys { key, count } => {
                write!(f, "invalid value for `{key}`: {count} keys, at most {}", swim_core::seal::MAX_KEYS)
            }
            SettingsError::TwoKeySources => f.write_str("give `keys` or `key_file`, not both"),
            SettingsError::Encryption { key, mode: Encryption::Off } => {
                write!(f, "invalid value for `{key}`: `off` with keys given: give accept, seal or require, or no keys")
            }
            SettingsError::Encryption { key, mode } => write!(
                f,
                "invalid value for `{key}`: `{}` needs at least one key: give `--key-file FILE` or `--key KEY` \
                 (`key_file` or `keys` in the config file); `swim keygen` makes one",
                mode.as_str()
            ),
            SettingsError::Plaintext { addr } => write!(
                f,
                "refusing to run unencrypted on {addr}, which is not a loopback address: whoever can send it a \
                 datagram can join the cluster and forge claims. Give a key (`swim keygen`, then `--key-file FILE` \
                 or `--key KEY`), or `--insecure-plaintext` (`insecure_plaintext = true`) to run in plaintext anyway"
            ),
        }
    }
}

/// The problem of a `ConfigError`, naming other fields by their file keys.
struct ProblemText<'a>(&'a swim_core::ConfigError);

impl fmt::Display for ProblemText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use swim_core::Problem::*;
        match self.0.problem {
            MustBePositive => f.write_str("must be greater than zero"),
            MustBeBelow(other) => write!(f, "must be less than `{}`", file_key(other)),
            MustNotBeBelow(other) => write!(f, "must not be less than `{}`", file_key(other)),
            AtMost(n) => write!(f, "must be at most {n}"),
            AtLeast(n) => write!(f, "must be at least {n}"),
            DoesNotFit(other) => write!(f, "too large to fit in one datagram of `{}`", file_key(other)),
            NeedsKeys => f.write_str("accept, seal and require need at least one key"),
            KeysWithoutEncryption => f.write_str("keys were given but encryption is off"),
        }
    }
}

impl std::error::Error for SettingsError {}

/// The levels a log filter directive may name.
pub const LOG_LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

/// Check a log filter: directives `LEVEL` or `TARGET=LEVEL`, comma
/// separated, each LEVEL one of [`LOG_LEVELS`] (any case). Anything else
/// (`warning`, a typo) is refused instead of silently logging nothing.
pub fn check_log_level(key: &'static str, value: &str) -> Result<(), SettingsError> {
    let bad = || SettingsError::LogLevel { key, value: value.to_owned() };
    if value.trim().is_empty() {
        return Err(bad());
    }
    for directive in value.split(',') {
        let level = match directive.rsplit_once('=') {
            Some((target, level)) if !target.trim().is_empty() && !target.contains(['[', '{']) => level,
            Some(_) => return Err(bad()),
            None => directive,
        };
        if !LOG_LEVELS.iter().any(|l| l.eq_ignore_ascii_case(level.trim())) {
            return Err(bad());
        }
    }
    Ok(())
}

/// Read a token file: its first line, trimmed, which must not be empty.
pub fn read_token(path: &Path) -> Result<String, SettingsError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| SettingsError::TokenFile { path: shown.clone(), why: e.to_string() })?;
    let token = text.lines().next().unwrap_or("").trim().to_owned();
    if token.is_empty() {
        return Err(SettingsError::TokenFile { path: shown, why: "the file is empty".to_owned() });
    }
    Ok(token)
}

/// The keys of `texts` (`key` names the flag or file key in errors).
fn parse_keys<T: AsRef<str>>(key: &'static str, texts: &[T]) -> Result<Vec<Key>, SettingsError> {
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| keys::parse_key(t.as_ref()).map_err(|problem| SettingsError::Key { key, entry: i + 1, problem }))
        .collect()
}

/// The keys of the key file `path`.
fn read_keys(key: &'static str, path: &Path) -> Result<Vec<Key>, SettingsError> {
    keys::read_key_file(path).map_err(|error| SettingsError::KeyFile { key, path: path.display().to_string(), error })
}

/// The address beyond loopback that a node would speak plaintext on: its
/// bind address (unspecified counts: it listens everywhere) or its
/// advertised one, when `encryption` is off; `None` when sealed or
/// loopback only. The agent refuses to start on one unless told
/// `--insecure-plaintext`, and then warns.
pub fn plaintext_exposure(
    encryption: Encryption,
    bind: SocketAddr,
    advertise: Option<SocketAddr>,
) -> Option<SocketAddr> {
    if encryption != Encryption::Off {
        return None;
    }
    [Some(bind), advertise].into_iter().flatten().find(|a| !swim_driver::addr::canonical(*a).ip().is_loopback())
}

/// The name of this host, the default member name.
pub fn host_name() -> std::io::Result<String> {
    let name = hostname::get()?;
    name.into_string().map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8"))
}

/// The agent's settings, merged and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The config file they were read from, read again on SIGHUP.
    pub config_file: Option<PathBuf>,
    /// UDP address to bind.
    pub bind: SocketAddr,
    /// Address others reach this member at, when not `bind`.
    pub advertise: Option<SocketAddr>,
    /// Seeds.
    pub join: Vec<String>,
    /// Unanswered join attempts after which the agent gives up and exits.
    pub retry_max: Option<u32>,
    /// Name and tags.
    pub meta: NameTags,
    /// The encoded metadata.
    pub meta_bytes: Vec<u8>,
    /// HTTP API address.
    pub http: Option<SocketAddr>,
    /// The token the API's write operations require, read from
    /// `http_token_file`.
    pub http_token: Option<String>,
    /// Log filter, if set by the command line or the file (checked with
    /// [`check_log_level`]).
    pub log_level: Option<String>,
    /// Graceful leave timeout.
    pub leave_timeout: Duration,
    /// The event handlers and their timeout.
    pub handlers: Handlers,
    /// RNG seed, if fixed.
    pub rng_seed: Option<u64>,
    /// The cluster keys, the first sealing (`Debug` shows their ids only).
    pub keys: Vec<Key>,
    /// Whether plaintext beyond loopback was allowed (`--insecure-plaintext`).
    pub insecure_plaintext: bool,
    /// The timing profile the protocol configuration starts from.
    pub profile: Profile,
    /// The protocol configuration, validated.
    pub config: Config,
    /// Where and how much to record, if recording.
    pub record: Option<RecordOptions>,
}

/// Parse a config file's text (`path` names it in errors). The errors of
/// a file that may hold keys (a line starting with `key`) name the line
/// without quoting it.
pub fn parse_file(path: &str, text: &str) -> Result<FileConfig, SettingsError> {
    toml::from_str(text).map_err(|e| {
        if text.lines().any(|l| l.trim_start().starts_with("key")) {
            let line = e.span().map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
            SettingsError::ParseHidden { path: path.to_owned(), line, message: e.message().trim().to_owned() }
        } else {
            SettingsError::Parse { path: path.to_owned(), source: Box::new(e) }
        }
    })
}

/// Read and parse a config file.
pub fn read_file(path: &Path) -> Result<FileConfig, SettingsError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read { path: shown.clone(), source })?;
    parse_file(&shown, &text)
}

impl Settings {
    /// Merge the command line over the file over the defaults, and check
    /// the result. `path` is the file's name, for errors about its values.
    pub fn merge(args: &AgentArgs, file: FileConfig, path: Option<&Path>) -> Result<Settings, SettingsError> {
        Settings::merge_with_host(args, file, path, host_name)
    }

    /// [`Settings::merge`] with the host name (the default member name)
    /// from `host`.
    pub fn merge_with_host(
        args: &AgentArgs,
        file: FileConfig,
        path: Option<&Path>,
        host: impl FnOnce() -> std::io::Result<String>,
    ) -> Result<Settings, SettingsError> {
        let in_file = |error: SettingsError| match path {
            Some(p) => SettingsError::InFile { path: p.display().to_string(), error: Box::new(error) },
            None => error,
        };
        let profile = args.profile.or(file.profile).unwrap_or(Profile::Lan);
        let mut config = profile.config();
        if let Some(p) = &file.protocol {
            p.apply(&mut config);
        }
        config.validate().map_err(|source| in_file(SettingsError::Protocol { key: file_key(source.field), source }))?;

        let mut tags = BTreeMap::new();
        for (k, v) in file.meta.unwrap_or_default() {
            if k == meta::NAME_KEY {
                return Err(in_file(SettingsError::Meta(MetaError::ReservedKey)));
            }
            tags.insert(k, v);
        }
        for tag in &args.meta {
            let (k, v) = meta::parse_tag(tag).map_err(SettingsError::Meta)?;
            tags.insert(k, v);
        }
        let name = match args.name.clone().or(file.name) {
            Some(name) => name,
            None => host().map_err(SettingsError::NoHostName)?,
        };
        let meta = NameTags { name: Some(name), tags };
        let meta_bytes = meta.encode(config.max_metadata_len).map_err(SettingsError::Meta)?;

        let log_level = match (&args.log_level, file.log_level) {
            (Some(l), _) => {
                check_log_level("--log-level", l)?;
                Some(l.clone())
            }
            (None, Some(l)) => {
                check_log_level("log_level", &l).map_err(in_file)?;
                Some(l)
            }
            (None, None) => None,
        };

        let handlers = if args.event_handler.is_empty() {
            let texts = file.event_handlers.unwrap_or_default();
            let parsed: Result<Vec<_>, _> = texts.iter().map(|t| EventHandler::parse(t)).collect();
            parsed.map_err(|source| in_file(SettingsError::Handler { key: "event_handlers", source }))?
        } else {
            let parsed: Result<Vec<_>, _> = args.event_handler.iter().map(|t| EventHandler::parse(t)).collect();
            parsed.map_err(|source| SettingsError::Handler { key: "--event-handler", source })?
        };
        let bind = args.bind.or(file.bind).unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)));
        let advertise = args.advertise.or(file.advertise);
        let known_as = advertise.unwrap_or(bind);
        if known_as.ip().is_unspecified() {
            return Err(SettingsError::NeedsAdvertise { addr: known_as });
        }
        let join = if args.join.is_empty() { file.join.unwrap_or_default() } else { args.join.clone() };

        let (keys, keys_from) = if !args.key.is_empty() {
            (parse_keys("--key", &args.key)?, "--key")
        } else if let Some(path) = &args.key_file {
            (read_keys("--key-file", path)?, "--key-file")
        } else {
            match (&file.keys, &file.key_file) {
                (Some(_), Some(_)) => return Err(in_file(SettingsError::TwoKeySources)),
                (Some(texts), None) => (parse_keys("keys", texts).map_err(in_file)?, "keys"),
                (None, Some(path)) => (read_keys("key_file", path).map_err(in_file)?, "key_file"),
                (None, None) => (Vec::new(), "--key"),
            }
        };
        if keys.len() > swim_core::seal::MAX_KEYS {
            return Err(SettingsError::TooManyKeys { key: keys_from, count: keys.len() });
        }
        let (mode, mode_from) = match (args.encryption, file.encryption) {
            (Some(m), _) => (m.core(), Some("--encryption")),
            (None, Some(m)) => (m.core(), Some("encryption")),
            (None, None) if keys.is_empty() => (Encryption::Off, None),
            (None, None) => (Encryption::Require, None),
        };
        if (mode == Encryption::Off) != keys.is_empty() {
            let error = SettingsError::Encryption { key: mode_from.unwrap_or(keys_from), mode };
            return Err(if mode_from == Some("encryption") { in_file(error) } else { error });
        }
        config.encryption = mode;
        let insecure_plaintext = args.insecure_plaintext || file.insecure_plaintext.unwrap_or(false);
        if let Some(addr) = plaintext_exposure(mode, bind, advertise) {
            if !insecure_plaintext {
                return Err(SettingsError::Plaintext { addr });
            }
        }

        let record_max = match (args.record_max_bytes, file.record_max_bytes) {
            (Some(n), _) => Some((n, "--record-max-bytes")),
            (None, Some(n)) => Some((n, "record_max_bytes")),
            (None, None) => None,
        };
        if let Some((value, key)) = record_max.filter(|(n, _)| *n < swim_driver::record::MIN_MAX_BYTES) {
            let error = SettingsError::RecordMaxBytes { key, value };
            return Err(if key == "record_max_bytes" { in_file(error) } else { error });
        }
        let record = match args.record.clone().or(file.record) {
            Some(path) => {
                Some(RecordOptions::new(path, record_max.map_or(swim_driver::record::DEFAULT_MAX_BYTES, |(n, _)| n)))
            }
            None if record_max.is_some() => return Err(in_file(SettingsError::RecordWithoutFile)),
            None => None,
        };

        Ok(Settings {
            config_file: path.map(Path::to_path_buf),
            bind,
            advertise,
            join: join.into_iter().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect(),
            retry_max: args.retry_max.or(file.retry_max),
            meta,
            meta_bytes,
            http: args.http.or(file.http),
            http_token: match args.http_token_file.as_ref().or(file.http_token_file.as_ref()) {
                Some(p) => Some(read_token(p)?),
                None => None,
            },
            log_level,
            leave_timeout: Duration::from_millis(file.leave_timeout_ms.unwrap_or(5_000)),
            handlers: Handlers {
                handlers,
                timeout: Duration::from_millis(file.event_handler_timeout_ms.unwrap_or(30_000)),
            },
            rng_seed: file.rng_seed,
            keys,
            insecure_plaintext,
            profile,
            config,
            record,
        })
    }

    /// Read `--config` if given, then [`Settings::merge`].
    pub fn load(args: &AgentArgs) -> Result<Settings, SettingsError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        Settings::merge(args, file, args.config.as_deref())
    }

    /// The settings that differ in `new` but only take effect at a
    /// restart, by their config file key. Tags, the log level and the
    /// event handlers are applied by a reload; everything else is not.
    pub fn needs_restart(&self, new: &Settings) -> Vec<&'static str> {
        let mut keys = Vec::new();
        let mut check = |differs: bool, key: &'static str| {
            if differs {
                keys.push(key);
            }
        };
        check(self.bind != new.bind, "bind");
        check(self.advertise != new.advertise, "advertise");
        check(self.join != new.join, "join");
        check(self.retry_max != new.retry_max, "retry_max");
        check(self.meta.name != new.meta.name, "name");
        check(self.http != new.http, "http");
        check(self.http_token != new.http_token, "http_token_file");
        check(self.leave_timeout != new.leave_timeout, "leave_timeout_ms");
        check(self.rng_seed != new.rng_seed, "rng_seed");
        check(self.keys != new.keys, "keys / key_file (`swim keys` changes them at runtime)");
        check(self.config.encryption != new.config.encryption, "encryption");
        check(self.insecure_plaintext != new.insecure_plaintext, "insecure_plaintext");
        check(self.record != new.record, "record / record_max_bytes");
        let protocol = Config { encryption: self.config.encryption, ..new.config.clone() };
        check(self.config != protocol, "profile / [protocol]");
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merge(args: &AgentArgs, text: &str) -> Result<Settings, SettingsError> {
        Settings::merge_with_host(args, parse_file("test.toml", text)?, Some(Path::new("test.toml")), || {
            Ok("host-1".to_owned())
        })
    }

    #[test]
    fn the_command_line_wins_over_the_file_which_wins_over_defaults() {
        let args = AgentArgs {
            bind: Some("127.0.0.1:9000".parse().unwrap()),
            meta: vec!["role=db".into()],
            profile: Some(Profile::Local),
            ..AgentArgs::default()
        };
        let s = merge(
            &args,
            r#"
            bind = "127.0.0.1:8000"
            name = "from-file"
            profile = "wan"
            join = ["a:1"]
            [meta]
            role = "web"
            zone = "z1"
            [protocol]
            probe_timeout_ms = 300
            "#,
        )
        .unwrap();
        assert_eq!(s.bind, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(s.meta.name.as_deref(), Some("from-file"));
        assert_eq!(s.meta.tags["role"], "db");
        assert_eq!(s.meta.tags["zone"], "z1");
        assert_eq!(s.join, vec!["a:1"]);
        // The local profile, with the file's override on top.
        assert_eq!(s.config.probe_timeout, Duration::from_millis(300));
        assert_eq!(s.config.gossip_interval, Config::local().gossip_interval);

        let s = merge(&AgentArgs::default(), "advertise = \"10.0.0.1:7946\"\ninsecure_plaintext = true").unwrap();
        assert_eq!(s.bind, SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)));
        assert_eq!(s.config, Config::lan());
        // The default name is the host's.
        assert_eq!(s.meta.name.as_deref(), Some("host-1"));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused_naming_the_key() {
        let e = merge(&AgentArgs::default(), "[protocol]\nprobe_intervall_ms = 5\n").unwrap_err().to_string();
        assert!(e.contains("probe_intervall_ms"), "{e}");

        let e = merge(&AgentArgs::default(), "[protocol]\nprobe_interval_ms = \"fast\"\n").unwrap_err().to_string();
        assert!(e.contains("probe_interval_ms"), "{e}");

        let e = merge(&AgentArgs::default(), "[protocol]\nprobe_timeout_ms = 5000\n").unwrap_err().to_string();
        assert_eq!(
            e,
            "in test.toml: invalid value for `protocol.probe_timeout_ms`: must be less than `protocol.probe_interval_ms`"
        );

        let e = merge(&AgentArgs::default(), "[protocol]\nmax_members = 0\n").unwrap_err().to_string();
        assert!(e.contains("`protocol.max_members`"), "{e}");

        let e = merge(&AgentArgs::default(), "[protocol.inbound_total]\nburst = 1\n").unwrap_err().to_string();
        assert!(
            e.starts_with("in test.toml: invalid value for `protocol.inbound_total.burst`: must be at least"),
            "{e}"
        );
        let e = merge(&AgentArgs::default(), "[protocol.inbound_total]\nbursts = 1\n").unwrap_err().to_string();
        assert!(e.contains("unknown field `bursts`"), "{e}");
        let e = merge(&AgentArgs::default(), "[protocol.transfer_rate]\nburst = 100\n").unwrap_err().to_string();
        assert!(
            e.starts_with("in test.toml: invalid value for `protocol.transfer_rate.burst`: must not be less than"),
            "{e}"
        );

        let e = merge(&AgentArgs::default(), "profile = \"moon\"\n").unwrap_err().to_string();
        assert!(e.contains("profile"), "{e}");
    }

    #[test]
    fn join_is_one_string_or_a_list() {
        let s = merge(&AgentArgs::default(), "bind = \"127.0.0.1:1\"\njoin = \"seed:7946\"\n").unwrap();
        assert_eq!(s.join, vec!["seed:7946"]);
        let s = merge(&AgentArgs::default(), "bind = \"127.0.0.1:1\"\njoin = [\"a:1\", \"b:2\"]\n").unwrap();
        assert_eq!(s.join, vec!["a:1", "b:2"]);
        let e = merge(&AgentArgs::default(), "join = 5\n").unwrap_err().to_string();
        assert!(e.contains("a seed \"HOST:PORT\" or a list of them"), "{e}");
    }

    #[test]
    fn log_levels_are_checked_naming_the_allowed_values() {
        for good in ["info", "WARN", "swim_tokio=debug,info", "off", "a::b=trace"] {
            check_log_level("--log-level", good).unwrap();
        }
        for bad in ["warning", "", "inf", "swim_tokio", "x=loud", "=info"] {
            let e = check_log_level("--log-level", bad).unwrap_err().to_string();
            assert!(e.contains("trace, debug, info, warn, error, off"), "{e}");
        }
        let args = AgentArgs { bind: Some("127.0.0.1:1".parse().unwrap()), ..AgentArgs::default() };
        let e = merge(&args, "log_level = \"warning\"\n").unwrap_err().to_string();
        assert!(e.starts_with("in test.toml: invalid value for `log_level`: `warning`"), "{e}");
        let args = AgentArgs { log_level: Some("verbose".into()), ..args };
        let e = merge(&args, "").unwrap_err().to_string();
        assert!(e.starts_with("invalid value for `--log-level`: `verbose`"), "{e}");
    }

    #[test]
    fn an_unspecified_address_without_advertise_is_refused_naming_the_flag() {
        let e = merge(&AgentArgs::default(), "").unwrap_err().to_string();
        assert!(e.contains("0.0.0.0:7946") && e.contains("`--advertise ADDR`"), "{e}");
        let e = merge(&AgentArgs::default(), "bind = \"[::]:7946\"\n").unwrap_err().to_string();
        assert!(e.contains("`--advertise ADDR`"), "{e}");
    }

    #[test]
    fn a_reload_tells_what_needs_a_restart() {
        let args = AgentArgs { bind: Some("127.0.0.1:1".parse().unwrap()), ..AgentArgs::default() };
        let old = merge(&args, "[meta]\nrole = \"web\"\n").unwrap();
        let new = merge(&args, "log_level = \"debug\"\nhttp = \"127.0.0.1:2\"\n[meta]\nrole = \"db\"\n").unwrap();
        assert_eq!(old.needs_restart(&new), vec!["http"]);
        let new = merge(&args, "profile = \"local\"\n").unwrap();
        assert_eq!(old.needs_restart(&new), vec!["profile / [protocol]"]);
        let key = keys::key_text(&Key::from_bytes([7; 32]));
        let new = merge(&args, &format!("keys = [\"{key}\"]\n[meta]\nrole = \"web\"\n")).unwrap();
        assert_eq!(
            old.needs_restart(&new),
            vec!["keys / key_file (`swim keys` changes them at runtime)", "encryption"]
        );
    }

    #[test]
    fn every_protocol_tunable_has_a_key() {
        // Fails to compile when Config gains a field the file cannot set.
        let Config {
            probe_interval: _,
            probe_timeout: _,
            indirect_checks: _,
            retransmit_mult: _,
            suspicion_mult: _,
            suspicion_max_timeout_mult: _,
            awareness_max_multiplier: _,
            gossip_interval: _,
            gossip_nodes: _,
            push_pull_interval: _,
            tombstone_timeout: _,
            join_retry_interval: _,
            join_retry_max_interval: _,
            max_datagram_size: _,
            max_metadata_len: _,
            max_broadcast_len: _,
            max_members: _,
            max_tombstones: _,
            max_gossip_queue: _,
            max_pending_transmits: _,
            max_pending_events: _,
            max_relays: _,
            max_push_pull_sends: _,
            max_seeds: _,
            broadcast_dedup_window: _,
            broadcast_keep: _,
            broadcast_keep_time: _,
            label: _,
            // Top-level `encryption`, not in `[protocol]`: set below.
            encryption: _,
            lifeguard: _,
            inbound_per_source: _,
            inbound_total: _,
            inbound_source_slots: _,
            transfer_rate: _,
        } = Config::lan();
        let text = "bind = \"127.0.0.1:1\"\n[protocol]\ninbound_source_slots = 64\n\
                    [protocol.inbound_per_source]\nper_second = 10\nburst = 40\n\
                    [protocol.inbound_total]\nper_second = 0\n\
                    [protocol.transfer_rate]\nper_second = 125000000\nburst = 16384\n";
        let c = merge(&AgentArgs::default(), text).unwrap().config;
        assert_eq!(c.transfer_rate, swim_core::Rate { per_second: 125_000_000, burst: 16_384 });
        assert_eq!(c.inbound_per_source, swim_core::Rate { per_second: 10, burst: 40 });
        assert_eq!(c.inbound_total, swim_core::Rate { per_second: 0, ..Config::lan().inbound_total });
        assert_eq!(c.inbound_source_slots, 64);
        let key = keys::key_text(&Key::from_bytes([5; 32]));
        for mode in [Encryption::Accept, Encryption::Seal, Encryption::Require] {
            let text = format!("bind = \"127.0.0.1:1\"\nkeys = [\"{key}\"]\nencryption = \"{}\"\n", mode.as_str());
            assert_eq!(merge(&AgentArgs::default(), &text).unwrap().config.encryption, mode);
        }
    }

    const LOOPBACK: &str = "bind = \"127.0.0.1:1\"\n";

    fn key_text(byte: u8) -> String {
        keys::key_text(&Key::from_bytes([byte; 32]))
    }

    #[test]
    fn keys_come_from_flags_or_the_file_and_imply_require() {
        let (k1, k2) = (key_text(1), key_text(2));
        let s = merge(&AgentArgs::default(), &format!("{LOOPBACK}keys = [\"{k1}\", \"{k2}\"]\n")).unwrap();
        assert_eq!(s.keys, vec![Key::from_bytes([1; 32]), Key::from_bytes([2; 32])]);
        assert_eq!(s.config.encryption, Encryption::Require);
        // One string is one key; the command line's keys win.
        let args = AgentArgs { key: vec![k2.clone().into()], ..AgentArgs::default() };
        let s = merge(&args, &format!("{LOOPBACK}keys = \"{k1}\"\nencryption = \"seal\"\n")).unwrap();
        assert_eq!((s.keys.len(), s.config.encryption), (1, Encryption::Seal));
        assert_eq!(s.keys[0], Key::from_bytes([2; 32]));
        // No keys: plaintext.
        let s = merge(&AgentArgs::default(), LOOPBACK).unwrap();
        assert_eq!((s.keys.len(), s.config.encryption), (0, Encryption::Off));
        // Keys never show in the settings' Debug.
        let s = merge(&AgentArgs::default(), &format!("{LOOPBACK}keys = [\"{k1}\"]\n")).unwrap();
        assert!(!format!("{s:?}").contains(&k1[..20]));
        // A key file.
        let path = std::env::temp_dir().join(format!("swim-settings-keys-{}", std::process::id()));
        std::fs::write(&path, format!("{k2}\n{k1}\n")).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let file = format!("{LOOPBACK}key_file = \"{}\"\n", path.display());
        let s = merge(&AgentArgs::default(), &file).unwrap();
        assert_eq!(s.keys, vec![Key::from_bytes([2; 32]), Key::from_bytes([1; 32])]);
        let both = format!("{file}keys = [\"{k1}\"]\n");
        assert_eq!(
            merge(&AgentArgs::default(), &both).unwrap_err().to_string(),
            "in test.toml: give `keys` or `key_file`, not both"
        );
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn bad_keys_are_refused_naming_the_field_without_showing_the_key() {
        let args = AgentArgs { key: vec![key_text(1).into(), "c2hvcnQ=".to_owned().into()], ..AgentArgs::default() };
        let e = merge(&args, LOOPBACK).unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid value for `--key` (key 2): 5 bytes, not 32: give a key as `swim keygen` prints it, 44 characters \
             of standard base64 encoding 32 bytes"
        );
        let secret = "NOT*base64*but*secret*all*the*same*000000000";
        let e = merge(&AgentArgs::default(), &format!("{LOOPBACK}keys = [\"{secret}\"]\n")).unwrap_err().to_string();
        assert!(e.starts_with("in test.toml: invalid value for `keys` (key 1): not base64"), "{e}");
        assert!(!e.contains(secret), "{e}");
        // A file that holds keys and does not parse is not quoted either.
        let e = merge(&AgentArgs::default(), &format!("keys = [\"{secret}\", 5]\n")).unwrap_err().to_string();
        assert!(e.starts_with("in test.toml, line 1: ") && !e.contains(secret), "{e}");
        let e = merge(&AgentArgs::default(), &format!("key = \"{secret}\"\n")).unwrap_err().to_string();
        assert!(e.contains("unknown field `key`") && !e.contains(secret), "{e}");
        let nine = (1..=9).map(|b| key_text(b).into()).collect();
        let e = merge(&AgentArgs { key: nine, ..AgentArgs::default() }, LOOPBACK).unwrap_err().to_string();
        assert_eq!(e, "invalid value for `--key`: 9 keys, at most 8");
        let e = merge(&AgentArgs::default(), &format!("{LOOPBACK}key_file = \"/no/such/swim-keys\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("in test.toml: invalid value for `key_file`: /no/such/swim-keys: cannot read it"), "{e}");
    }

    #[test]
    fn encryption_and_keys_must_agree() {
        let args = AgentArgs { encryption: Some(EncryptionMode::Require), ..AgentArgs::default() };
        let e = merge(&args, LOOPBACK).unwrap_err().to_string();
        assert!(e.starts_with("invalid value for `--encryption`: `require` needs at least one key"), "{e}");
        let args = AgentArgs { key: vec![key_text(1).into()], ..AgentArgs::default() };
        let e = merge(&args, &format!("{LOOPBACK}encryption = \"off\"\n")).unwrap_err().to_string();
        assert!(e.starts_with("in test.toml: invalid value for `encryption`: `off` with keys given"), "{e}");
        let e = merge(&AgentArgs::default(), &format!("{LOOPBACK}encryption = \"on\"\n")).unwrap_err().to_string();
        assert!(e.contains("encryption") && e.contains("`off`, `accept`, `seal`"), "{e}");
    }

    #[test]
    fn plaintext_beyond_loopback_is_refused_unless_insecure_plaintext() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        let off = Encryption::Off;
        assert_eq!(plaintext_exposure(off, a("127.0.0.1:1"), None), None);
        assert_eq!(plaintext_exposure(off, a("[::1]:1"), None), None);
        assert_eq!(plaintext_exposure(off, a("[::ffff:127.0.0.1]:1"), None), None);
        assert_eq!(plaintext_exposure(off, a("0.0.0.0:1"), Some(a("127.0.0.1:1"))), Some(a("0.0.0.0:1")));
        assert_eq!(plaintext_exposure(off, a("127.0.0.1:1"), Some(a("10.0.0.1:1"))), Some(a("10.0.0.1:1")));
        assert_eq!(plaintext_exposure(Encryption::Require, a("0.0.0.0:1"), Some(a("10.0.0.1:1"))), None);
        assert_eq!(plaintext_exposure(Encryption::Accept, a("10.0.0.1:1"), None), None);

        let args = AgentArgs { bind: Some(a("10.0.0.1:7946")), ..AgentArgs::default() };
        let e = merge(&args, "").unwrap_err().to_string();
        assert!(
            e.starts_with("refusing to run unencrypted on 10.0.0.1:7946") && e.contains("--insecure-plaintext"),
            "{e}"
        );
        let s = merge(&AgentArgs { insecure_plaintext: true, ..args.clone() }, "").unwrap();
        assert!(s.insecure_plaintext && s.config.encryption == Encryption::Off);
        merge(&args, "insecure_plaintext = true\n").unwrap();
        merge(&AgentArgs { key: vec![key_text(1).into()], ..args }, "").unwrap();
    }

    #[test]
    fn the_example_config_parses_and_validates() {
        let text = include_str!("../../swim.example.toml");
        let file = parse_file("swim.example.toml", text).unwrap();
        let s = Settings::merge(&AgentArgs::default(), file, None).unwrap();
        assert_eq!(s.meta.name.as_deref(), Some("web-1"));
        assert_eq!(s.config.probe_interval, Duration::from_millis(1000));
    }
}
