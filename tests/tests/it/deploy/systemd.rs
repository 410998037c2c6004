//! systemd units and the example configs against the binaries' flags.

use super::*;

/// A unit file's `[Section]` → `Key=Value` pairs, in order (keys may repeat).
fn unit_entries(path: &Path) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut entries = Vec::new();
    for (n, line) in read(path).lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("{}:{}: not Key=Value: {line}", path.display(), n + 1));
        assert!(
            !section.is_empty(),
            "{}: entry before a section",
            path.display()
        );
        entries.push((section.clone(), key.to_string(), value.to_string()));
    }
    entries
}

fn unit_value(entries: &[(String, String, String)], section: &str, key: &str) -> Vec<String> {
    entries
        .iter()
        .filter(|(s, k, _)| s == section && k == key)
        .map(|(_, _, v)| v.clone())
        .collect()
}

pub(super) const UNITS: [&str; 2] = ["concur-coordinator.service", "concur-worker@.service"];

#[test]
fn systemd_units_are_hardened_and_drain_in_time() {
    let dir = deploy_dir().join("systemd");
    for unit in UNITS {
        let entries = unit_entries(&dir.join(unit));
        let sections: BTreeSet<&str> = entries.iter().map(|(s, _, _)| s.as_str()).collect();
        assert_eq!(
            sections,
            BTreeSet::from(["Unit", "Service", "Install"]),
            "{unit}"
        );
        let required = [
            ("DynamicUser", "yes"),
            ("NoNewPrivileges", "yes"),
            ("ProtectSystem", "strict"),
            ("ProtectHome", "yes"),
            ("PrivateTmp", "yes"),
            ("PrivateDevices", "yes"),
            ("CapabilityBoundingSet", ""),
            ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
            ("SystemCallFilter", "@system-service"),
            ("MemoryDenyWriteExecute", "yes"),
            ("LockPersonality", "yes"),
            ("RestrictNamespaces", "yes"),
            ("ProtectKernelTunables", "yes"),
            ("ProtectControlGroups", "yes"),
            ("Restart", "on-failure"),
            ("KillSignal", "SIGTERM"),
        ];
        for (key, value) in required {
            assert!(
                unit_value(&entries, "Service", key).contains(&value.to_string()),
                "{unit}: {key}={value}"
            );
        }
        let exec = unit_value(&entries, "Service", "ExecStart");
        assert_eq!(exec.len(), 1, "{unit}");
        assert!(
            exec[0].contains("--config /etc/concur/"),
            "{unit}: {}",
            exec[0]
        );
        // Tokens reach the dynamic user as credentials, never as world-readable files.
        assert!(exec[0].contains("%d/worker-token"), "{unit}");
        assert!(
            unit_value(&entries, "Service", "LoadCredential")
                .iter()
                .any(|c| c.starts_with("worker-token:")),
            "{unit}"
        );
    }
    let coordinator = unit_entries(&dir.join(UNITS[0]));
    assert_eq!(
        unit_value(&coordinator, "Service", "StateDirectory"),
        ["concur"]
    );
    let config = read(&dir.join("coordinator.toml"));
    assert!(config.contains("\nstate_dir = \"/var/lib/concur\"\n"));
    // The worker's stop timeout outlasts its drain timeout (from worker.toml).
    let worker = unit_entries(&dir.join(UNITS[1]));
    let stop = seconds(&unit_value(&worker, "Service", "TimeoutStopSec")[0]);
    let worker_toml = read(&dir.join("worker.toml"));
    let drain = worker_toml
        .lines()
        .find_map(|l| l.strip_prefix("drain_timeout = "))
        .map(|v| seconds(v.trim_matches('"')))
        .expect("drain_timeout in worker.toml");
    assert_eq!(drain, DRAIN_TIMEOUT_S);
    assert!(stop > drain, "TimeoutStopSec {stop}s vs drain {drain}s");
}

#[test]
fn example_configs_use_the_binaries_flags() {
    let dir = deploy_dir().join("systemd");
    for (file, binary) in [
        ("coordinator.toml", "concur-coordinator"),
        ("worker.toml", "concur-worker"),
    ] {
        let flags = long_flags(binary);
        let mut keys = 0;
        for line in read(&dir.join(file)).lines() {
            // Active lines only: commented ones document optional flags.
            let Some((key, _)) = line.split_once(" = ") else {
                continue;
            };
            if line.starts_with('#') {
                continue;
            }
            let flag = format!("--{}", key.trim().replace('_', "-"));
            assert!(
                flags.contains(&flag),
                "{file}: {flag} not in {binary} --help"
            );
            keys += 1;
        }
        assert!(keys >= 3, "{file}");
    }
}
