//! Shell scripts: the ssh wrapper's usage errors (it hands over to `concur-cli cluster`) and
//! the secret generator (syntax and shellcheck: system suite).

use super::*;

fn launcher_alone(args: &[&str]) -> Ran {
    let mut c = Command::new("bash");
    c.arg(deploy_dir().join("ssh-workers.sh"))
        .args(args)
        .env_remove("CONCUR_COORDINATOR")
        .env_remove("CONCUR_WORKER_TOKEN")
        .env("CONCUR_CLI", bin("concur-cli"));
    run(c)
}

#[test]
fn ssh_launcher_rejects_bad_usage_with_exit_code_2() {
    let cases: [(&[&str], &str); 8] = [
        (&[], "Usage"),
        (&["frob", "h1"], "unknown command 'frob'"),
        (&["start"], "name at least one host"),
        (&["start", "h1"], "give --coordinator"),
        (&["status", "bad/host"], "bad host 'bad/host'"),
        (
            &["-c", "http://x:1", "--slots", "0", "start", "h1"],
            "--slots",
        ),
        (&["stop", "--oops", "h1"], "unexpected argument '--oops'"),
        (
            &[
                "-c",
                "http://x:1",
                "--token-file",
                "/nonexistent",
                "start",
                "h1",
            ],
            "cannot read token file",
        ),
    ];
    for (args, message) in cases {
        let ran = launcher_alone(args);
        assert_eq!(ran.code, 2, "{args:?}: {}", ran.text());
        assert!(
            ran.stderr.contains(message) || ran.stderr.contains(&message.to_lowercase()),
            "{args:?} should say {message:?}: {}",
            ran.text()
        );
    }
    let help = launcher_alone(&["--help"]);
    for command in [
        "start",
        "stop",
        "status",
        "--coordinator",
        "--token-file",
        "concur-cli cluster",
    ] {
        assert!(help.stderr.contains(command), "help names {command}");
    }
}

#[test]
fn gen_secrets_writes_two_fresh_tokens_and_keeps_them() {
    use std::os::unix::fs::PermissionsExt;
    let scratch = Scratch::new("gen-secrets");
    let dir = scratch.join("secrets");
    let generate = |force: bool| {
        let mut c = Command::new("bash");
        c.arg(deploy_dir().join("gen-secrets.sh"));
        if force {
            c.arg("--force");
        }
        run({
            c.arg(&dir);
            c
        })
    };
    let ran = generate(false);
    assert_eq!(ran.code, 0, "{}", ran.text());
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700, "only its owner may enter the directory");
    let client = read(&dir.join("client-token"));
    let worker = read(&dir.join("worker-token"));
    for token in [&client, &worker] {
        assert_eq!(token.len(), 64, "{token:?}");
        assert!(token.chars().all(|c| c.is_ascii_hexdigit()), "{token:?}");
    }
    assert_ne!(client, worker);
    assert_eq!(generate(false).code, 0);
    assert_eq!(
        read(&dir.join("client-token")),
        client,
        "kept without --force"
    );
    assert_eq!(generate(true).code, 0);
    assert_ne!(
        read(&dir.join("client-token")),
        client,
        "replaced with --force"
    );
    assert_eq!(generate(false).code, 0);
}
