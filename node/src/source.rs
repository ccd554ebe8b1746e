//! Where a caller comes from, as the node's per-source bounds count it: the listener's
//! connections per source and the peer-site routes' requests per source.

use std::net::IpAddr;

/// The source a caller counts against: an IPv4 address (IPv4-mapped IPv6 alike), or an IPv6
/// /64 (what one host or site is usually given).
pub(crate) fn source_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}
