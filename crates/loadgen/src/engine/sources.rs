//! The local addresses to connect from, so that many connections do not run out of ephemeral ports.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::Error;

/// The local addresses to connect from. One, unless the connections would
/// run short of ephemeral ports from 127.0.0.1 to one server port: then
/// spread them over 127.0.0.2, .3, ... (the whole of 127/8 is loopback).
pub(super) fn source_addresses(addr: SocketAddr, conns: usize) -> Result<Vec<IpAddr>, Error> {
    plan_sources(addr, conns, ephemeral_ports())
}

/// [`source_addresses`] for a given number of ephemeral ports.
fn plan_sources(addr: SocketAddr, conns: usize, ports: usize) -> Result<Vec<IpAddr>, Error> {
    // Leave a fifth of the range for everything else on the machine.
    let per_source = (ports * 4 / 5).max(1);
    if conns <= per_source {
        return Ok(Vec::new());
    }
    if !matches!(addr.ip(), IpAddr::V4(ip) if ip.is_loopback()) {
        return Err(Error::PortsShort {
            conns,
            ports: per_source,
        });
    }
    let sources = conns.div_ceil(per_source);
    Ok((0..sources)
        .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + i as u8)))
        .collect())
}

/// How many ephemeral ports the kernel hands out (`ip_local_port_range`).
fn ephemeral_ports() -> usize {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| {
            let mut it = range
                .split_whitespace()
                .filter_map(|p| p.parse::<usize>().ok());
            Some(it.next_back()? - it.next()? + 1)
        })
        .unwrap_or(28_232)
}

#[cfg(test)]
mod tests {
    use super::plan_sources;
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};

    #[test]
    fn few_connections_need_no_extra_source() {
        let addr: SocketAddr = "127.0.0.1:1688".parse().unwrap();
        assert!(plan_sources(addr, 10_000, 28_232).unwrap().is_empty());
    }

    #[test]
    fn many_connections_spread_over_loopback_sources() {
        let addr: SocketAddr = "127.0.0.1:1688".parse().unwrap();
        let sources = plan_sources(addr, 50_000, 28_232).unwrap();
        // 80% of 28,232 ports per source: 3 sources for 50,000.
        assert_eq!(sources.len(), 3);
        assert_eq!(sources[0], IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)));
    }

    #[test]
    fn a_remote_target_cannot_be_spread() {
        let addr: SocketAddr = "192.0.2.1:1688".parse().unwrap();
        assert!(plan_sources(addr, 50_000, 28_232).is_err());
    }
}
