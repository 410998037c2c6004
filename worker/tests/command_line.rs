//! The `concur-worker` binary's command line: help with examples, bad flags exit 2, and a
//! bounded give-up when no coordinator answers.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_concur-worker");

#[test]
fn help_shows_examples() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("--coordinator") && text.contains("Examples"),
        "{text}"
    );
}

#[test]
fn bad_arguments_exit_2() {
    let out = Command::new(BIN)
        .args(["--coordinator", "http://127.0.0.1:1", "--slots", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(BIN)
        .env_remove("CONCUR_COORDINATOR")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "--coordinator is required");
}

#[test]
fn gives_up_after_the_configured_attach_failures() {
    let out = Command::new(BIN)
        .args([
            "--coordinator",
            "http://127.0.0.1:1",
            "--max-attach-failures",
            "2",
        ])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot attach to coordinator"));
}
