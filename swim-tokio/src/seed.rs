//! Seeds: the members a join contacts, given as addresses or `host:port`
//! names, and their resolution.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use tracing::warn;

/// A member to join through: an address, or a `host:port` name resolved
/// when the join starts and again on each retry round.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Seed {
    /// A literal socket address.
    Addr(SocketAddr),
    /// A `host:port` name, resolved with the system resolver.
    Name(String),
}

impl fmt::Display for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Seed::Addr(a) => write!(f, "{a}"),
            Seed::Name(n) => f.write_str(n),
        }
    }
}

impl From<SocketAddr> for Seed {
    fn from(a: SocketAddr) -> Self {
        Seed::Addr(a)
    }
}

impl From<&str> for Seed {
    fn from(s: &str) -> Self {
        match s.parse::<SocketAddr>() {
            Ok(a) => Seed::Addr(a),
            Err(_) => Seed::Name(s.to_owned()),
        }
    }
}

impl From<String> for Seed {
    fn from(s: String) -> Self {
        match s.parse::<SocketAddr>() {
            Ok(a) => Seed::Addr(a),
            Err(_) => Seed::Name(s),
        }
    }
}

impl From<&String> for Seed {
    fn from(s: &String) -> Self {
        Seed::from(s.as_str())
    }
}

impl FromStr for Seed {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Seed::from(s))
    }
}

/// Resolve every seed, keeping addresses a socket bound to `local` can
/// reach, in order, without duplicates. Names that fail to resolve are
/// logged and skipped.
pub(crate) async fn resolve(seeds: &[Seed], local: SocketAddr) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = Vec::new();
    for seed in seeds {
        let found: Vec<SocketAddr> = match seed {
            Seed::Addr(a) => vec![*a],
            Seed::Name(name) => match tokio::net::lookup_host(name.as_str()).await {
                Ok(addrs) => addrs.collect(),
                Err(e) => {
                    warn!(seed = %name, error = %e, "could not resolve seed");
                    continue;
                }
            },
        };
        swim_driver::addr::add_reachable(&mut out, local, found);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_addresses_parse_and_names_stay_names() {
        assert_eq!(Seed::from("127.0.0.1:7946"), Seed::Addr("127.0.0.1:7946".parse().unwrap()));
        assert_eq!(Seed::from("localhost:7946"), Seed::Name("localhost:7946".into()));
    }

    #[tokio::test]
    async fn names_resolve_to_reachable_addresses_only() {
        let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let seeds = [
            Seed::from("localhost:7946"),
            Seed::from("[::1]:1"),
            Seed::from("127.0.0.1:7946"),
            Seed::from("no-such-host.invalid:1"),
        ];
        let got = resolve(&seeds, local).await;
        assert_eq!(got, vec!["127.0.0.1:7946".parse::<SocketAddr>().unwrap()]);
    }
}
