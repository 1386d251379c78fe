//! The `swim` command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// SWIM cluster membership: run an agent, or ask one about its cluster or to change it.
#[derive(Debug, Parser)]
#[command(name = "swim", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a member of a cluster until Ctrl-C or SIGTERM, then leave.
    Agent(Box<AgentArgs>),
    /// Ask a running agent (its --http address) for the members it knows.
    Members(MembersArgs),
    /// Ask a running agent to join a cluster through these seeds.
    Join(JoinArgs),
    /// Ask a running agent to leave the cluster gracefully and exit.
    Leave(ApiArgs),
    /// Mark a failed member as left, so every member forgets it.
    ForceLeave(ForceLeaveArgs),
    /// Send a user event to every agent of the cluster.
    Event(EventArgs),
    /// Change a running agent's tags; the others see it updated.
    Tags(TagsArgs),
    /// Stream a running agent's membership and user events as they happen.
    Monitor(MonitorArgs),
    /// Show a running agent: name, address, incarnation, members by state, protocol, encryption, version.
    Info(InfoArgs),
    /// Print a new random cluster key (base64), for `swim agent --key` or a key file.
    Keygen,
    /// List, install, use or remove a running agent's cluster keys. A rotation:
    /// install the new key at every agent, then use it at every agent, then remove the old one.
    Keys {
        /// What to do with the keyring.
        #[command(subcommand)]
        action: KeysAction,
    },
}

/// `swim keys ...`.
#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Show the keys' ids and which one seals.
    List {
        /// Where the agent is.
        #[command(flatten)]
        api: ApiArgs,
        /// Print the agent's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Install a key: the agent opens datagrams sealed with it from now on.
    Install {
        /// Where the agent is.
        #[command(flatten)]
        api: ApiArgs,
        /// The key, base64 (from `swim keygen`); `-` reads it from stdin, out of the process list.
        key: KeyText,
    },
    /// Seal with an installed key from now on.
    Use {
        /// Where the agent is.
        #[command(flatten)]
        api: ApiArgs,
        /// The key's id (eight hex digits, from `swim keys list`) or the key itself.
        key: String,
    },
    /// Remove an installed key (not the one that seals).
    Remove {
        /// Where the agent is.
        #[command(flatten)]
        api: ApiArgs,
        /// The key's id (eight hex digits, from `swim keys list`) or the key itself.
        key: String,
    },
}

/// How a subcommand reaches its agent.
#[derive(Debug, Clone, clap::Args)]
pub struct ApiArgs {
    /// The agent's HTTP address.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7947")]
    pub http: String,
    /// The file holding the agent's HTTP token (default: the SWIM_HTTP_TOKEN environment variable).
    #[arg(long, value_name = "FILE")]
    pub http_token_file: Option<PathBuf>,
}

impl ApiArgs {
    /// The token to send: the file's, else `SWIM_HTTP_TOKEN`'s, else none.
    pub fn token(&self) -> Result<Option<String>, super::settings::SettingsError> {
        match &self.http_token_file {
            Some(path) => super::settings::read_token(path).map(Some),
            None => Ok(std::env::var("SWIM_HTTP_TOKEN").ok().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty())),
        }
    }
}

/// `swim join`.
#[derive(Debug, clap::Args)]
pub struct JoinArgs {
    /// Where the agent is.
    #[command(flatten)]
    pub api: ApiArgs,
    /// Members to join through, as ADDR or HOST:PORT.
    #[arg(required = true, value_name = "ADDR")]
    pub seeds: Vec<String>,
}

/// `swim force-leave`.
#[derive(Debug, clap::Args)]
pub struct ForceLeaveArgs {
    /// Where the agent is.
    #[command(flatten)]
    pub api: ApiArgs,
    /// The failed member's name (or address).
    pub node: String,
}

/// `swim event`.
#[derive(Debug, clap::Args)]
pub struct EventArgs {
    /// Where the agent is.
    #[command(flatten)]
    pub api: ApiArgs,
    /// The event's name: letters, digits, `-`, `_`, `.`, `:`.
    pub name: String,
    /// Its payload (default empty).
    #[arg(default_value = "")]
    pub payload: String,
}

/// `swim tags`.
#[derive(Debug, clap::Args)]
pub struct TagsArgs {
    /// Where the agent is.
    #[command(flatten)]
    pub api: ApiArgs,
    /// A tag to set, KEY=VALUE; repeatable.
    #[arg(long, value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// A tag to delete; repeatable.
    #[arg(long, value_name = "KEY")]
    pub delete: Vec<String>,
}

/// `swim monitor`.
#[derive(Debug, clap::Args)]
pub struct MonitorArgs {
    /// Where the agent is.
    #[command(flatten)]
    pub api: ApiArgs,
    /// Print each event as one line of JSON.
    #[arg(long)]
    pub json: bool,
}

/// `swim info`.
#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    /// Where the agent is.
    #[command(flatten)]
    pub api: ApiArgs,
    /// Print the agent's JSON.
    #[arg(long)]
    pub json: bool,
}

/// The protocol timing presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// A local network (memberlist's LAN defaults).
    Lan,
    /// A wide-area network.
    Wan,
    /// One host or loopback: fast timings.
    Local,
}

impl Profile {
    /// Its name: `lan`, `wan` or `local`.
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Lan => "lan",
            Profile::Wan => "wan",
            Profile::Local => "local",
        }
    }

    /// The preset configuration.
    pub fn config(self) -> swim_core::Config {
        match self {
            Profile::Lan => swim_core::Config::lan(),
            Profile::Wan => swim_core::Config::wan(),
            Profile::Local => swim_core::Config::local(),
        }
    }
}

/// A key's text as given on the command line, checked later; its `Debug`
/// hides it, so printing the arguments cannot leak a key.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyText(pub String);

impl std::str::FromStr for KeyText {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(KeyText(s.to_owned()))
    }
}

impl From<String> for KeyText {
    fn from(s: String) -> Self {
        KeyText(s)
    }
}

impl AsRef<str> for KeyText {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for KeyText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyText({} characters)", self.0.len())
    }
}

/// How an agent treats encryption: the steps of a migration from
/// plaintext, one rolling restart each (`off` → `accept` → `seal` →
/// `require`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EncryptionMode {
    /// Plaintext only, no keys.
    Off,
    /// Send plaintext, accept plaintext and sealed (migration step 1).
    Accept,
    /// Seal everything, accept plaintext and sealed (step 2).
    Seal,
    /// Seal everything, refuse plaintext (step 3; the default with keys).
    Require,
}

impl EncryptionMode {
    /// The core's setting.
    pub fn core(self) -> swim_core::Encryption {
        match self {
            EncryptionMode::Off => swim_core::Encryption::Off,
            EncryptionMode::Accept => swim_core::Encryption::Accept,
            EncryptionMode::Seal => swim_core::Encryption::Seal,
            EncryptionMode::Require => swim_core::Encryption::Require,
        }
    }
}

/// `swim agent`: every option may also come from `--config FILE`; the
/// command line wins.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AgentArgs {
    /// UDP address to bind, e.g. 127.0.0.1:7946 (default 0.0.0.0:7946 needs --advertise).
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<SocketAddr>,
    /// The address other members reach this one at, when not the bound one.
    #[arg(long, value_name = "ADDR")]
    pub advertise: Option<SocketAddr>,
    /// Members to join through, as ADDR or HOST:PORT, comma separated.
    #[arg(long, value_name = "ADDR,ADDR...", value_delimiter = ',')]
    pub join: Vec<String>,
    /// Give up (and exit with an error) after N join attempts without an answer (default: never).
    #[arg(long, value_name = "N")]
    pub retry_max: Option<u32>,
    /// A name for this member, shown by others; unique among live members (default: the host name).
    #[arg(long)]
    pub name: Option<String>,
    /// A tag KEY=VALUE shown by others; repeatable.
    #[arg(long, value_name = "KEY=VALUE")]
    pub meta: Vec<String>,
    /// Protocol timing preset (default lan).
    #[arg(long, value_enum)]
    pub profile: Option<Profile>,
    /// Serve the HTTP API (/v1/members, /v1/self, /metrics, /healthz) here.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<SocketAddr>,
    /// A file holding the token the HTTP API's write operations require
    /// (`Authorization: Bearer TOKEN`); without one they are refused
    /// unless the API listens on loopback.
    #[arg(long, value_name = "FILE")]
    pub http_token_file: Option<PathBuf>,
    /// Run COMMAND for events, as `[FILTER=]COMMAND`; repeatable. FILTER: member-join,
    /// member-leave, member-failed, member-update, user, user:NAME, comma separated.
    #[arg(long, value_name = "[FILTER=]COMMAND")]
    pub event_handler: Vec<String>,
    /// A cluster key (base64, from `swim keygen`); repeatable: the first
    /// seals, every one opens. Visible to local users in the process list:
    /// prefer --key-file.
    #[arg(long, value_name = "KEY")]
    pub key: Vec<KeyText>,
    /// A file of cluster keys, one base64 key per line, the first sealing;
    /// it must not be readable by other users.
    #[arg(long, value_name = "FILE", conflicts_with = "key")]
    pub key_file: Option<PathBuf>,
    /// off, accept, seal or require (default: require with keys, off without).
    #[arg(long, value_enum, value_name = "MODE")]
    pub encryption: Option<EncryptionMode>,
    /// Run without encryption although the UDP address is not loopback
    /// (anyone who can reach it can join and forge claims); logged as a warning.
    #[arg(long)]
    pub insecure_plaintext: bool,
    /// Record every input of the node into FILE (rotated as FILE.1, FILE.2, ...),
    /// for `swim-sim replay FILE`; an earlier run's log there is moved to FILE.prev.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// The most bytes the recording's files may hold in all (default 1 GiB, at
    /// least 1 MiB); recording stops there, and says so.
    #[arg(long, value_name = "N", requires = "record")]
    pub record_max_bytes: Option<u64>,
    /// A TOML file with these settings and every protocol tunable.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log filter, e.g. info or swim_tokio=debug (default: RUST_LOG, else info).
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
}

/// `swim members`.
#[derive(Debug, clap::Args)]
pub struct MembersArgs {
    /// Where the agent is.
    #[command(flatten)]
    pub api: ApiArgs,
    /// Print the JSON the agent returned instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Only members in this state.
    #[arg(long, value_name = "STATE", value_parser = ["alive", "suspect", "failed", "left"])]
    pub status: Option<String>,
    /// Only members with this tag; repeatable (all must match).
    #[arg(long, value_name = "KEY=VALUE")]
    pub tag: Vec<String>,
}

impl MembersArgs {
    /// The `/v1/members` path with the filters as query parameters.
    pub fn path(&self) -> String {
        let mut query: Vec<String> = Vec::new();
        if let Some(s) = &self.status {
            query.push(format!("status={}", super::client::url_encode(s)));
        }
        for t in &self.tag {
            query.push(format!("tag={}", super::client::url_encode(t)));
        }
        if query.is_empty() {
            "/v1/members".to_owned()
        } else {
            format!("/v1/members?{}", query.join("&"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_command_line_parses() {
        let cli = Cli::try_parse_from([
            "swim",
            "agent",
            "--bind",
            "127.0.0.1:7946",
            "--join",
            "a:1,127.0.0.1:2",
            "--meta",
            "role=web",
            "--meta",
            "zone=a",
            "--profile",
            "local",
            "--name",
            "n1",
        ])
        .unwrap();
        let Command::Agent(args) = cli.command else { panic!("not agent") };
        assert_eq!(args.join, vec!["a:1", "127.0.0.1:2"]);
        assert_eq!(args.meta.len(), 2);
        assert_eq!(args.profile, Some(Profile::Local));
    }

    #[test]
    fn keys_and_encryption_parse_and_bad_modes_are_refused_naming_the_allowed_ones() {
        let cli = Cli::try_parse_from(["swim", "agent", "--key", "A", "--key", "B", "--encryption", "seal"]).unwrap();
        let Command::Agent(args) = cli.command else { panic!("not agent") };
        assert_eq!((args.key.len(), args.encryption, args.insecure_plaintext), (2, Some(EncryptionMode::Seal), false));
        assert_eq!(args.key[1].as_ref(), "B");
        assert!(!format!("{args:?}").contains("\"B\""), "{args:?}");
        let e = Cli::try_parse_from(["swim", "agent", "--encryption", "on"]).unwrap_err().to_string();
        assert!(e.contains("--encryption") && e.contains("off, accept, seal, require"), "{e}");
        assert!(Cli::try_parse_from(["swim", "agent", "--key", "A", "--key-file", "f"]).is_err());
    }
}
