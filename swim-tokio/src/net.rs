//! The UDP socket: binding and the address forms a dual-stack socket uses.
//!
//! A socket bound to `[::]` reports IPv4 peers as IPv4-mapped IPv6
//! addresses (`::ffff:a.b.c.d`) and needs them in that form to send. The
//! node, though, must see one identity per member, so addresses are made
//! canonical (plain IPv4) on the way in and mapped back on the way out.

use std::net::{IpAddr, SocketAddr, SocketAddrV6};

/// The canonical form of a peer address: IPv4-mapped IPv6 becomes IPv4.
pub(crate) fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

/// The form a socket bound to `local` needs to send to `to`.
pub(crate) fn for_socket(local: SocketAddr, to: SocketAddr) -> SocketAddr {
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
pub(crate) fn reachable(local: SocketAddr, peer: SocketAddr) -> bool {
    match (local, peer) {
        (SocketAddr::V4(_), SocketAddr::V4(_)) | (SocketAddr::V6(_), SocketAddr::V6(_)) => true,
        (SocketAddr::V4(_), SocketAddr::V6(_)) => false,
        (SocketAddr::V6(l), SocketAddr::V4(_)) => l.ip().is_unspecified(),
    }
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
}
