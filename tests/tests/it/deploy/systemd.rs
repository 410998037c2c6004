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

const UNITS: [&str; 2] = ["concur-coordinator.service", "concur-worker@.service"];

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

/// Copies of the units whose ExecStart names the binaries built here (verify checks they exist).
fn units_for_verify() -> (Scratch, Vec<PathBuf>) {
    let scratch = Scratch::new("units");
    let bin_dir = bin("concur-worker").parent().unwrap().to_path_buf();
    let mut paths = Vec::new();
    for unit in UNITS {
        let text = read(&deploy_dir().join("systemd").join(unit))
            .replace("/usr/local/bin/", &format!("{}/", bin_dir.display()));
        // A template is verified through an instance.
        let name = unit.replace("@.", "@1.");
        std::fs::write(scratch.join(unit), &text).unwrap();
        std::fs::write(scratch.join(&name), &text).unwrap();
        paths.push(scratch.join(name));
    }
    (scratch, paths)
}

#[test]
fn systemd_analyze_verifies_the_units_and_scores_them_ok() {
    let analyze = require_tool("systemd-analyze", "systemd");
    let (_scratch, units) = units_for_verify();
    let ran = run({
        let mut c = Command::new(&analyze);
        c.arg("verify").args(&units);
        c
    });
    assert_eq!(ran.code, 0, "systemd-analyze verify: {}", ran.text());
    assert!(
        ran.stdout.trim().is_empty() && ran.stderr.trim().is_empty(),
        "no warnings expected: {}",
        ran.text()
    );
    for unit in &units {
        let ran = run({
            let mut c = Command::new(&analyze);
            c.args(["security", "--offline=yes", "--no-pager"])
                .arg(unit);
            c
        });
        let score: f64 = ran
            .stdout
            .lines()
            .find_map(|l| l.split_once("Overall exposure level for "))
            .and_then(|(_, rest)| rest.split_once(": "))
            .and_then(|(_, v)| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no exposure score: {}", ran.text()));
        // systemd calls < 2.0 "OK" (the scale runs to 10 "UNSAFE"; a bare unit scores 9.6).
        assert!(score < 2.0, "{}: exposure {score}", unit.display());
    }
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
