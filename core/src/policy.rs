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

/// True for addresses that are not on the public internet.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_private_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private_v4(v4);
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
                || v6 == Ipv6Addr::LOCALHOST
        }
    }
}

fn is_private_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT 100.64.0.0/10
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
        ] {
            assert!(policy.check(url).is_err(), "{url} allowed");
        }
        assert!(policy.check("https://example.com/").is_ok());
        assert!(policy.check("http://8.8.8.8/").is_ok());
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
