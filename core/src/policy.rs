//! Which hosts a fetch job may target. A coordinator that fetches whatever URL anyone sends is
//! an open relay; operators narrow it with an allow-list, a deny-list, and `deny_private`
//! (loopback, private, link-local and similar ranges).
//!
//! Checked at submission on the URL's host as written. A public name that resolves to a
//! private address is not caught here; workers refuse those at connect time (their resolver
//! drops private addresses) and refuse redirects to private IP literals.

use crate::{SpecError, SpecResult};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Host rules for fetch jobs. The default allows everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostPolicy {
    /// If not empty, only these hosts (and their subdomains) may be fetched.
    pub allow: Vec<String>,
    /// These hosts (and their subdomains) may never be fetched.
    pub deny: Vec<String>,
    /// Refuse loopback, private, link-local, unspecified and other non-public addresses.
    pub deny_private: bool,
}

/// True for addresses that are not on the public internet: loopback, private, link-local,
/// shared, documentation, benchmarking, reserved and multicast ranges (IANA's special-purpose
/// registries), and IPv6 forms that embed such an IPv4 address (mapped, compatible, NAT64,
/// 6to4, Teredo).
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_private_v4(v4),
        IpAddr::V6(v6) => is_private_v6(v6),
    }
}

fn is_private_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || a == 0 // "this network" 0.0.0.0/8
        || a >= 240 // reserved 240.0.0.0/4
        || (a == 100 && (64..128).contains(&b)) // shared (carrier-grade NAT) 100.64.0.0/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments 192.0.0.0/24
        || (a == 192 && b == 0 && c == 2) // documentation 192.0.2.0/24
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast 192.88.99.0/24
        || (a == 198 && (b == 18 || b == 19)) // benchmarking 198.18.0.0/15
        || (a == 198 && b == 51 && c == 100) // documentation 198.51.100.0/24
        || (a == 203 && b == 0 && c == 113) // documentation 203.0.113.0/24
}

/// The IPv4 address in bits `from..from + 32` of an IPv6 address.
fn embedded_v4(v6: Ipv6Addr, from: u32) -> Ipv4Addr {
    Ipv4Addr::from((u128::from(v6) >> (96 - from)) as u32)
}

fn is_private_v6(v6: Ipv6Addr) -> bool {
    let bits = u128::from(v6);
    let prefix = |value: u128, len: u32| bits >> (128 - len) == value >> (128 - len);
    if let Some(v4) = v6.to_ipv4_mapped() {
        return is_private_v4(v4); // ::ffff:a.b.c.d
    }
    if prefix(0x0064_ff9b_0000_0000_0000_0000_0000_0000, 96) {
        return is_private_v4(embedded_v4(v6, 96)); // NAT64 64:ff9b::a.b.c.d
    }
    if prefix(0x2002 << 112, 16) {
        return is_private_v4(embedded_v4(v6, 16)); // 6to4 2002:aabb:ccdd::
    }
    prefix(0, 96) // unspecified, loopback and IPv4-compatible ::a.b.c.d (deprecated)
        || prefix(0x0064_ff9b_0001 << 80, 48) // local-use NAT64 64:ff9b:1::/48
        || prefix(0x0100 << 112, 64) // discard-only 100::/64
        || prefix(0x2001 << 112, 23) // IETF protocol assignments (Teredo, ORCHID, benchmarking)
        || prefix(0x2001_0db8 << 96, 32) // documentation 2001:db8::/32
        || prefix(0x3fff << 112, 20) // documentation 3fff::/20
        || prefix(0x5f00 << 112, 16) // segment routing 5f00::/16
        || prefix(0xfc00 << 112, 7) // unique local fc00::/7
        || prefix(0xfe80 << 112, 10) // link-local fe80::/10
        || prefix(0xfec0 << 112, 10) // site-local fec0::/10 (deprecated)
        || v6.is_multicast()
}

fn matches(host: &str, rule: &str) -> bool {
    let rule = rule.trim().trim_end_matches('.').to_ascii_lowercase();
    !rule.is_empty() && (host == rule || host.ends_with(&format!(".{rule}")))
}

impl HostPolicy {
    /// True when no rule is set.
    pub fn is_open(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty() && !self.deny_private
    }

    /// Checks one URL's host.
    ///
    /// # Errors
    /// The URL has no host, or its host is denied or not allowed.
    pub fn check(&self, url: &str) -> SpecResult<()> {
        if self.is_open() {
            return Ok(());
        }
        let refuse = |reason: &str| SpecError::BadUrl {
            url: url.chars().take(200).collect(),
            reason: reason.to_string(),
        };
        let parsed = url::Url::parse(url).map_err(|e| refuse(&e.to_string()))?;
        let host = match parsed.host() {
            Some(url::Host::Domain(d)) => d.trim_end_matches('.').to_ascii_lowercase(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err(refuse("no host")),
        };
        if self.deny.iter().any(|rule| matches(&host, rule)) {
            return Err(refuse(&format!(
                "host '{host}' is denied by the coordinator"
            )));
        }
        if self.deny_private {
            let private = match parsed.host() {
                Some(url::Host::Ipv4(ip)) => is_private(IpAddr::V4(ip)),
                Some(url::Host::Ipv6(ip)) => is_private(IpAddr::V6(ip)),
                _ => host == "localhost" || host.ends_with(".localhost"),
            };
            if private {
                return Err(refuse(&format!(
                    "host '{host}' is a private or loopback address, denied by the coordinator"
                )));
            }
        }
        if !self.allow.is_empty() && !self.allow.iter().any(|rule| matches(&host, rule)) {
            return Err(refuse(&format!(
                "host '{host}' is not on the coordinator's allow-list"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_policy_allows_everything() {
        assert!(HostPolicy::default().check("http://127.0.0.1/").is_ok());
    }

    #[test]
    fn private_and_loopback_hosts_are_denied_when_asked() {
        let policy = HostPolicy {
            deny_private: true,
            ..HostPolicy::default()
        };
        for url in [
            "http://127.0.0.1/",
            "http://10.1.2.3/",
            "http://192.168.0.1:8080/x",
            "http://172.16.5.5/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://[fd00::1]/",
            "http://[::ffff:10.0.0.1]/",
            "http://localhost:9000/",
            "http://api.localhost/",
            "http://0.0.0.0/",
            "http://100.64.0.1/",
            // Seen let through by an operator's probe: IPv4-compatible, NAT64 and 6to4 forms
            // of 127.0.0.1, and the benchmarking range.
            "http://[::127.0.0.1]/",
            "http://[64:ff9b::7f00:1]/",
            "http://[2002:7f00:1::]/",
            "http://198.18.0.1/",
            "http://198.19.255.254/",
            "http://192.0.2.10/",
            "http://203.0.113.5/",
            "http://240.0.0.1/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://[64:ff9b:1::1]/",
            "http://[2001:db8::1]/",
            "http://[2001::1]/",
            "http://[fe80::1]/",
            "http://[fec0::1]/",
            "http://[ff02::1]/",
        ] {
            assert!(policy.check(url).is_err(), "{url} allowed");
        }
        assert!(policy.check("https://example.com/").is_ok());
        assert!(policy.check("http://8.8.8.8/").is_ok());
        // Public addresses in the embedding forms stay allowed.
        for url in [
            "http://[64:ff9b::808:808]/",
            "http://[2002:808:808::]/",
            "http://[2606:4700::1111]/",
            "http://[::ffff:8.8.8.8]/",
            "http://198.20.0.1/",
        ] {
            assert!(policy.check(url).is_ok(), "{url} denied");
        }
    }

    #[test]
    fn allow_and_deny_lists_match_subdomains() {
        let policy = HostPolicy {
            allow: vec!["example.com".into()],
            deny: vec!["bad.example.com".into()],
            deny_private: false,
        };
        assert!(policy.check("https://example.com/a").is_ok());
        assert!(policy.check("https://www.EXAMPLE.com/a").is_ok());
        assert!(policy.check("https://bad.example.com/").is_err());
        assert!(policy.check("https://x.bad.example.com/").is_err());
        assert!(policy.check("https://notexample.com/").is_err());
        let err = policy.check("https://other.org/").unwrap_err().to_string();
        assert!(err.contains("allow-list"), "{err}");
    }
}
