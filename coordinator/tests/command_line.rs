//! The `concur-coordinator` binary's command line: help with examples, bad flags exit 2.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_concur-coordinator");

#[test]
fn help_shows_examples() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("--listen") && text.contains("Examples"),
        "{text}"
    );
}

#[test]
fn bad_arguments_exit_2() {
    let out = Command::new(BIN)
        .args(["--heartbeat-timeout", "soon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(BIN)
        .args(["--listen", "not-an-address"])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot listen on not-an-address"));
}
