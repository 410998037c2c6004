//! The example config files run a real coordinator and worker.

use super::*;

/// `file` from deploy/systemd with `replacements` applied, written to `dir`.
fn adapted_config(dir: &Path, file: &str, replacements: &[(&str, &str)]) -> PathBuf {
    let mut text = read(&deploy_dir().join("systemd").join(file));
    for (from, to) in replacements {
        assert!(text.contains(from), "{file} contains {from:?}");
        text = text.replace(from, to);
    }
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn example_configs_run_a_coordinator_and_a_worker() {
    let dir = Scratch::new("example-configs");
    let (client, worker) = (dir.join("client-token"), dir.join("worker-token"));
    std::fs::write(&client, "client-token-for-the-config-test\n").unwrap();
    std::fs::write(&worker, "worker-token-for-the-config-test\n").unwrap();
    let state = dir.join("state");
    let coordinator_toml = adapted_config(
        &dir,
        "coordinator.toml",
        &[
            ("\"0.0.0.0:7070\"", "\"127.0.0.1:0\""),
            (
                "\"/var/lib/concur\"",
                &format!("{:?}", state.display().to_string()),
            ),
        ],
    );
    // As the unit runs it: the TOML plus the token files from the command line.
    let mut command = Command::new(bin("concur-coordinator"));
    command
        .arg("--config")
        .arg(&coordinator_toml)
        .arg("--token-file")
        .arg(&client)
        .arg("--worker-token-file")
        .arg(&worker)
        .env_remove("CONCUR_LISTEN")
        .env_remove("CONCUR_STATE_DIR");
    let coordinator = concur_tests::spawn_server(command);
    let url = coordinator
        .first_line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no address in {:?}", coordinator.first_line))
        .to_string();
    let worker_toml = adapted_config(
        &dir,
        "worker.toml",
        &[("\"http://coordinator.example:7070\"", &format!("\"{url}\""))],
    );
    let mut worker_command = Command::new(bin("concur-worker"));
    worker_command
        .arg("--config")
        .arg(&worker_toml)
        .arg("--token-file")
        .arg(&worker)
        .arg("--host-name")
        .arg("from-worker-toml")
        .env_remove("CONCUR_COORDINATOR");
    let _worker = spawn_quiet(worker_command);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = concur_tests::cli(&[
            "--coordinator",
            &url,
            "--token",
            "client-token-for-the-config-test",
            "--output",
            "json",
            "workers",
        ]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let workers = out.json()["workers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if let Some(w) = workers.first() {
            assert_eq!(w["host"], "from-worker-toml");
            assert_eq!(w["slots"], 1, "slots from worker.toml");
            break;
        }
        assert!(Instant::now() < deadline, "the worker never attached");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(state.is_dir(), "state_dir from the TOML is used");
    drop(coordinator);
}

#[test]
fn every_documented_config_key_is_known_to_the_binaries() {
    let dir = Scratch::new("config-keys");
    for (file, binary) in [
        ("coordinator.toml", "concur-coordinator"),
        ("worker.toml", "concur-worker"),
    ] {
        // Uncomment the optional `# key = "value"` lines too.
        let text: String = read(&deploy_dir().join("systemd").join(file))
            .lines()
            .map(|line| {
                let bare = line.strip_prefix("# ").unwrap_or(line);
                match bare.split_once(" = ") {
                    Some((key, value))
                        if key.chars().all(|c| c.is_ascii_lowercase() || c == '_') =>
                    {
                        let value = value.split("  #").next().unwrap().trim();
                        format!("{key} = {value}\n")
                    }
                    _ => String::new(),
                }
            })
            .collect();
        assert!(text.lines().count() >= 6, "{file}: {text}");
        let attempt = |text: &str| {
            let path = dir.join(file);
            std::fs::write(&path, text).unwrap();
            let mut command = Command::new("timeout");
            command
                .arg("10")
                .arg(bin(binary))
                .arg("--config")
                .arg(&path)
                .env_remove("CONCUR_COORDINATOR")
                .env_remove("CONCUR_LISTEN");
            run(command)
        };
        // The files they name do not exist here, so the binary stops — but not on the config.
        let text = text.replace("\"0.0.0.0:7070\"", "\"127.0.0.1:0\"");
        let ran = attempt(&text);
        assert_ne!(ran.code, 0, "{file}: {}", ran.text());
        assert!(
            !ran.stderr.contains("invalid config file"),
            "{file} has a key {binary} does not know: {}",
            ran.text()
        );
        // Control: an unknown key is reported as such.
        let ran = attempt(&format!("{text}no_such_key = 1\n"));
        assert!(ran.stderr.contains("invalid config file"), "{}", ran.text());
    }
}
