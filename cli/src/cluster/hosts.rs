//! The hosts of a `cluster` command: from the command line and a hosts file, checked, with
//! duplicates dropped and each host's run-directory name.

use crate::exit::CliError;
use std::path::Path;

/// One ssh destination (`[user@]name`, or an alias of the ssh configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Host {
    /// What ssh is given.
    pub(crate) target: String,
}

impl Host {
    /// The name without `user@`: the per-host directory under the run directory and, with
    /// `--host-name-from ssh`, the name the worker reports. Dropping the user means two logins
    /// to one machine share a directory, so they are refused in [`collect`].
    pub(crate) fn name(&self) -> &str {
        self.target
            .rsplit_once('@')
            .map_or(self.target.as_str(), |(_, name)| name)
    }
}

/// Characters allowed in a host: enough for names, IPv4/IPv6 addresses, users and aliases, and
/// nothing a shell or a path would read specially (the name becomes a directory on the host).
fn valid(host: &str) -> bool {
    !host.is_empty()
        && !host.starts_with('-')
        && !host.ends_with('@')
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | ':' | '%'))
        && !matches!(host.rsplit('@').next(), Some("." | ".."))
}

/// The hosts in a hosts file's text: one per line; blank lines and `#` comments (whole lines or
/// after the host) are ignored.
///
/// # Errors
/// A line with more than one word, naming the line.
pub(crate) fn parse_hosts_file(text: &str, origin: &str) -> Result<Vec<String>, CliError> {
    let mut hosts = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if line.split_whitespace().count() > 1 {
            return Err(CliError::Input(format!(
                "{origin}:{}: one host per line, got '{line}'",
                number + 1
            )));
        }
        hosts.push(line.to_string());
    }
    Ok(hosts)
}

/// The hosts named on the command line, then those of `file`, checked and without repeats.
///
/// # Errors
/// No host at all, an unreadable file, a malformed host, or two logins to one host name.
pub(crate) fn collect(args: &[String], file: Option<&Path>) -> Result<Vec<Host>, CliError> {
    let mut all: Vec<String> = args.to_vec();
    if let Some(file) = file {
        let text = std::fs::read_to_string(file).map_err(|e| {
            CliError::Input(format!("cannot read hosts file {}: {e}", file.display()))
        })?;
        all.extend(parse_hosts_file(&text, &file.display().to_string())?);
    }
    let mut hosts: Vec<Host> = Vec::new();
    for target in all {
        if !valid(&target) {
            return Err(CliError::Input(format!(
                "bad host '{target}': give [user@]name, an address or an ssh alias (letters, digits, . _ - : %)"
            )));
        }
        let host = Host { target };
        if hosts.contains(&host) {
            continue;
        }
        if let Some(other) = hosts.iter().find(|h| h.name() == host.name()) {
            return Err(CliError::Input(format!(
                "hosts '{}' and '{}' are one machine name: they would share a run directory",
                other.target, host.target
            )));
        }
        hosts.push(host);
    }
    if hosts.is_empty() {
        return Err(CliError::Input(
            "name at least one host (HOST... or --hosts-file FILE)".into(),
        ));
    }
    Ok(hosts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_hosts_file_skips_comments_and_blank_lines() {
        let text = "# workers\nnode1\n\n  user@node2   # the big one\n\t\n10.0.0.3\n";
        assert_eq!(
            parse_hosts_file(text, "f").unwrap(),
            strings(&["node1", "user@node2", "10.0.0.3"])
        );
        let err = parse_hosts_file("a\nb c\n", "hosts.txt").unwrap_err();
        assert!(err.to_string().contains("hosts.txt:2"), "{err}");
    }

    #[test]
    fn hosts_are_checked_and_deduplicated() {
        let hosts = collect(&strings(&["a", "root@b", "a", "fe80::1%eth0"]), None).unwrap();
        let names: Vec<&str> = hosts.iter().map(Host::name).collect();
        assert_eq!(names, ["a", "b", "fe80::1%eth0"]);
        for bad in [
            "-oProxyCommand=x",
            "a/b",
            "a b",
            "",
            "u@",
            "x;rm",
            "$(id)",
            "u@..",
        ] {
            assert!(collect(&strings(&[bad]), None).is_err(), "{bad:?}");
        }
        let err = collect(&strings(&["alice@h", "bob@h"]), None).unwrap_err();
        assert!(err.to_string().contains("share a run directory"), "{err}");
        assert!(collect(&[], None).is_err());
    }
}
