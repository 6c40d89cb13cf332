//! Which address a request comes from: the TCP peer, or, when that peer is one of the trusted
//! reverse proxies (`TRUSTED_PROXIES`), the client it says it forwarded for in
//! `X-Forwarded-For`. Rate limits are keyed by it; nothing is authorized by it.

use std::net::IpAddr;
use std::str::FromStr;

use axum::http::HeaderMap;

use crate::config::{self, ConfigError};

/// The reverse proxies whose `X-Forwarded-For` is believed: addresses or CIDR ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Network>);

/// An address range: `10.0.0.0/8`, `fd00::/8`, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Network {
    address: IpAddr,
    prefix: u8,
}

impl Network {
    fn contains(&self, address: IpAddr) -> bool {
        match (self.address, address.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Network {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (address, prefix) = s.split_once('/').map_or((s, None), |(a, p)| (a, Some(p)));
        let address: IpAddr = address
            .parse()
            .map_err(|_| format!("{s:?} is not an address or CIDR range"))?;
        let bits = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= bits)
                .ok_or_else(|| format!("{s:?} has a prefix outside 0–{bits}"))?,
        };
        Ok(Network { address, prefix })
    }
}

impl FromStr for TrustedProxies {
    type Err = String;

    /// A comma-separated list; empty trusts nobody.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(Network::from_str)
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }
}

impl TrustedProxies {
    /// Reads `TRUSTED_PROXIES` (default: none).
    pub fn from_env() -> Result<Self, ConfigError> {
        let raw: String = config::var("TRUSTED_PROXIES", String::new())?;
        raw.parse().map_err(|reason| ConfigError {
            name: "TRUSTED_PROXIES".into(),
            reason,
        })
    }

    fn trusts(&self, address: IpAddr) -> bool {
        self.0.iter().any(|network| network.contains(address))
    }

    /// The client behind `peer`: `peer` itself unless it is a trusted proxy; then the
    /// right-most `X-Forwarded-For` address that is not one (each proxy appends the address it
    /// got the request from, so everything left of the first untrusted one could be forged).
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let mut forwarded: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        while let Some(hop) = forwarded.pop() {
            match hop.parse::<IpAddr>() {
                Ok(address) if self.trusts(address) => client = address,
                Ok(address) => return address,
                // An entry that is not an address ends what can be believed.
                Err(_) => return client,
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(forwarded: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", forwarded.parse().unwrap());
        headers
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_a_trusted_peer_is_believed() {
        let trusted: TrustedProxies = "10.0.0.0/8, 127.0.0.1".parse().unwrap();
        let forged = headers("198.51.100.1, 203.0.113.7");
        assert_eq!(trusted.client(ip("10.1.2.3"), &forged), ip("203.0.113.7"));
        assert_eq!(trusted.client(ip("192.0.2.9"), &forged), ip("192.0.2.9"));
        assert_eq!(
            trusted.client(ip("127.0.0.1"), &HeaderMap::new()),
            ip("127.0.0.1")
        );
        let chain = headers("198.51.100.1, 203.0.113.7, 10.9.9.9");
        assert_eq!(trusted.client(ip("10.0.0.1"), &chain), ip("203.0.113.7"));
        assert_eq!(
            trusted.client(ip("10.0.0.1"), &headers("nonsense")),
            ip("10.0.0.1")
        );
        assert_eq!(
            TrustedProxies::default().client(ip("10.0.0.1"), &forged),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn ranges_parse_and_match_by_prefix() {
        let v6: TrustedProxies = "fd00::/8".parse().unwrap();
        assert!(v6.trusts(ip("fd12::1")) && !v6.trusts(ip("fe80::1")));
        let all: TrustedProxies = "0.0.0.0/0".parse().unwrap();
        assert!(all.trusts(ip("192.0.2.1")) && !all.trusts(ip("::1")));
        for bad in ["10.0.0.0/33", "example.com", "10.0.0.0/x"] {
            assert!(bad.parse::<TrustedProxies>().is_err(), "{bad}");
        }
    }
}
