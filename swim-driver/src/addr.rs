//! Address forms of a dual-stack socket, and seed resolution.
//!
//! A socket bound to `[::]` reports IPv4 peers as IPv4-mapped IPv6
//! addresses (`::ffff:a.b.c.d`) and needs them in that form to send. The
//! node, though, must see one identity per member, so addresses are made
//! canonical (plain IPv4) on the way in and mapped back on the way out;
//! every driver does it the same way, so all name members alike.

use std::net::{IpAddr, SocketAddr, SocketAddrV6, ToSocketAddrs};

/// The canonical form of a peer address: IPv4-mapped IPv6 becomes IPv4.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

/// The form a socket bound to `local` needs to send to `to`.
pub fn for_socket(local: SocketAddr, to: SocketAddr) -> SocketAddr {
    match (local, to) {
        (SocketAddr::V6(_), SocketAddr::V4(v4)) => {
            SocketAddr::V6(SocketAddrV6::new(v4.ip().to_ipv6_mapped(), v4.port(), 0, 0))
        }
        _ => to,
    }
}

/// Whether a socket bound to `local` can reach `peer` at all: an IPv4
/// socket reaches only IPv4; an IPv6 socket bound to a specific address
/// only IPv6; one bound to `[::]` both.
pub fn reachable(local: SocketAddr, peer: SocketAddr) -> bool {
    match (local, peer) {
        (SocketAddr::V4(_), SocketAddr::V4(_)) | (SocketAddr::V6(_), SocketAddr::V6(_)) => true,
        (SocketAddr::V4(_), SocketAddr::V6(_)) => false,
        (SocketAddr::V6(l), SocketAddr::V4(_)) => l.ip().is_unspecified(),
    }
}

/// Add the canonical forms of `found` that a socket bound to `local` can
/// reach to `out`, in order, skipping any already there.
pub fn add_reachable(out: &mut Vec<SocketAddr>, local: SocketAddr, found: impl IntoIterator<Item = SocketAddr>) {
    for a in found {
        let a = canonical(a);
        if reachable(local, a) && !out.contains(&a) {
            out.push(a);
        }
    }
}

/// Resolve seeds (addresses or `host:port` names, with the system resolver,
/// on the calling thread) to the canonical addresses a socket bound to
/// `local` can reach, in order, without duplicates. Names that do not
/// resolve are skipped. Returns how many seeds were given, and the
/// addresses.
pub fn resolve<S: ToSocketAddrs>(seeds: impl IntoIterator<Item = S>, local: SocketAddr) -> (usize, Vec<SocketAddr>) {
    let mut given = 0;
    let mut out: Vec<SocketAddr> = Vec::new();
    for seed in seeds {
        given += 1;
        if let Ok(found) = seed.to_socket_addrs() {
            add_reachable(&mut out, local, found);
        }
    }
    (given, out)
}

/// The address a node bound to `bound` is known by: `advertise` when
/// given (port 0 meaning the bound port), else the bound address, in
/// canonical form. `Err` carries an unspecified address (`0.0.0.0`,
/// `[::]`), which nobody could send to.
pub fn identity(advertise: Option<SocketAddr>, bound: SocketAddr) -> Result<SocketAddr, SocketAddr> {
    let mut identity = canonical(advertise.unwrap_or(bound));
    if identity.port() == 0 {
        identity.set_port(bound.port());
    }
    if identity.ip().is_unspecified() {
        return Err(identity);
    }
    Ok(identity)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn mapped_addresses_become_ipv4_and_back() {
        assert_eq!(canonical(a("[::ffff:10.0.0.1]:7")), a("10.0.0.1:7"));
        assert_eq!(canonical(a("[::1]:7")), a("[::1]:7"));
        assert_eq!(for_socket(a("[::]:1"), a("10.0.0.1:7")), a("[::ffff:10.0.0.1]:7"));
        assert_eq!(for_socket(a("0.0.0.0:1"), a("10.0.0.1:7")), a("10.0.0.1:7"));
    }

    #[test]
    fn families_that_cannot_meet_are_unreachable() {
        assert!(!reachable(a("127.0.0.1:1"), a("[::1]:2")));
        assert!(!reachable(a("[::1]:1"), a("127.0.0.1:2")));
        assert!(reachable(a("[::]:1"), a("127.0.0.1:2")));
        assert!(reachable(a("[::1]:1"), a("[::1]:2")));
    }

    #[test]
    fn seeds_resolve_to_reachable_addresses_once() {
        let local = a("127.0.0.1:0");
        let (given, got) = resolve(["localhost:7946", "[::1]:1", "127.0.0.1:7946", "no-such-host.invalid:1"], local);
        assert_eq!(given, 4);
        assert_eq!(got, vec![a("127.0.0.1:7946")]);
    }

    #[test]
    fn identity_takes_the_bound_port_and_refuses_unspecified_addresses() {
        assert_eq!(identity(None, a("127.0.0.1:9")), Ok(a("127.0.0.1:9")));
        assert_eq!(identity(Some(a("10.0.0.1:0")), a("0.0.0.0:9")), Ok(a("10.0.0.1:9")));
        assert_eq!(identity(Some(a("[::ffff:10.0.0.1]:5")), a("[::]:9")), Ok(a("10.0.0.1:5")));
        assert_eq!(identity(None, a("0.0.0.0:9")), Err(a("0.0.0.0:9")));
    }
}
