//! Which address a request comes from, for the per-address limits: the
//! connection's peer address, unless that peer is one of
//! `CHORUS_GATEWAY_TRUSTED_PROXIES`; then the right-most address of
//! `X-Forwarded-For` that is not itself a trusted proxy (the left part of
//! that header is whatever the client wrote, and cannot be believed).

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use chorus_platform::{ConfigError, Env};

/// The connection's peer, as the server puts it on each request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// The address a request's limits are counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddr(pub IpAddr);

/// Networks (`10.0.0.0/8`, `2001:db8::/32`, or single addresses) whose
/// connections are proxies that append the client to `X-Forwarded-For`.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    networks: Vec<(IpAddr, u8)>,
}

impl TrustedProxies {
    /// A comma-separated list; empty or unset: no proxy is trusted.
    pub fn from_env(env: &Env, variable: &str) -> Result<TrustedProxies, ConfigError> {
        let Some(value) = env.optional(variable) else {
            return Ok(TrustedProxies::default());
        };
        let networks = value
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| {
                parse_network(item).ok_or_else(|| {
                    ConfigError::new(
                        variable,
                        &value,
                        &format!("{item:?} is not an IP address or network such as 10.0.0.0/8"),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(TrustedProxies { networks })
    }

    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }

    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = canonical(addr);
        self.networks
            .iter()
            .any(|&(network, bits)| in_network(addr, network, bits))
    }

    /// The client behind `peer`: `peer` itself unless it is a trusted proxy.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> ClientAddr {
        let peer = canonical(peer);
        if !self.contains(peer) {
            return ClientAddr(peer);
        }
        // Each proxy appends the address it received from, so the last
        // entries are ours; the first untrusted one from the right is the client.
        let forwarded: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .map_while(|item| item.parse::<IpAddr>().ok().map(canonical))
            .collect();
        let client = forwarded
            .iter()
            .rev()
            .find(|addr| !self.contains(**addr))
            .or(forwarded.first())
            .copied()
            .unwrap_or(peer);
        ClientAddr(client)
    }
}

/// IPv4 addresses seen through an IPv6 socket count as themselves.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

fn parse_network(text: &str) -> Option<(IpAddr, u8)> {
    let (addr, bits) = match text.split_once('/') {
        Some((addr, bits)) => (addr.parse::<IpAddr>().ok()?, Some(bits.parse::<u8>().ok()?)),
        None => (text.parse::<IpAddr>().ok()?, None),
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let bits = bits.unwrap_or(max);
    (bits <= max).then_some((canonical(addr), bits))
}

fn in_network(addr: IpAddr, network: IpAddr, bits: u8) -> bool {
    let prefix = |value: u128, width: u32| -> u128 {
        if bits == 0 {
            0
        } else {
            value >> (width - u32::from(bits))
        }
    };
    match (addr, network) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            prefix(u128::from(u32::from(a)), 32) == prefix(u128::from(u32::from(n)), 32)
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => prefix(u128::from(a), 128) == prefix(u128::from(n), 128),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(list: &str) -> TrustedProxies {
        TrustedProxies::from_env(&Env::from_pairs(&[("V", list)]), "V").unwrap()
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn networks_match_by_prefix() {
        let trusted = proxies("10.0.0.0/8, 192.168.1.7, 2001:db8::/32");
        assert!(trusted.contains(ip("10.200.3.4")));
        assert!(!trusted.contains(ip("11.0.0.1")));
        assert!(trusted.contains(ip("192.168.1.7")));
        assert!(!trusted.contains(ip("192.168.1.8")));
        assert!(trusted.contains(ip("2001:db8:1::5")));
        assert!(trusted.contains(ip("::ffff:10.1.1.1")));
        assert!(proxies("0.0.0.0/0").contains(ip("8.8.8.8")));
    }

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let headers = forwarded(&["6.6.6.6"]);
        // No proxy trusted: the header is whatever the client wrote.
        assert_eq!(
            TrustedProxies::default().client(ip("203.0.113.9"), &headers),
            ClientAddr(ip("203.0.113.9"))
        );
        let trusted = proxies("10.0.0.0/8");
        assert_eq!(
            trusted.client(ip("203.0.113.9"), &headers),
            ClientAddr(ip("203.0.113.9"))
        );
        // Behind a trusted proxy: the right-most untrusted entry, whatever
        // a client put before it.
        let headers = forwarded(&["6.6.6.6, 198.51.100.4", "10.0.0.3"]);
        assert_eq!(
            trusted.client(ip("10.0.0.2"), &headers),
            ClientAddr(ip("198.51.100.4"))
        );
        // A trusted proxy that forwarded nothing is the client.
        assert_eq!(
            trusted.client(ip("10.0.0.2"), &HeaderMap::new()),
            ClientAddr(ip("10.0.0.2"))
        );
    }

    #[test]
    fn bad_networks_are_refused() {
        for bad in ["10.0.0.0/33", "::/129", "proxy", "10.0.0.0/x"] {
            let env = Env::from_pairs(&[("V", bad)]);
            assert!(TrustedProxies::from_env(&env, "V").is_err(), "{bad}");
        }
    }
}
