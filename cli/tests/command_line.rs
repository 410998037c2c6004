//! The `concur-cli` binary's command line: help, completions, wrong arguments.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_concur-cli");

#[test]
fn help_lists_the_commands_with_examples() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for word in [
        "submit", "job", "jobs", "workers", "cancel", "sites", "Examples",
    ] {
        assert!(text.contains(word), "{word} missing from --help:\n{text}");
    }
    assert!(
        !text.contains("__worker"),
        "the hidden worker subcommand is listed"
    );
}

#[test]
fn completions_are_generated() {
    let out = Command::new(BIN)
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("concur-cli"));
}

#[test]
fn a_wrong_argument_exits_2() {
    let out = Command::new(BIN)
        .args(["submit", "sum-squares", "1..3", "--shards", "many"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("many"));
}

#[test]
fn every_command_s_help_has_examples() {
    let commands: [&[&str]; 10] = [
        &["submit", "sum-squares"],
        &["submit", "fetch"],
        &["job"],
        &["jobs"],
        &["workers"],
        &["cancel"],
        &["sites", "serve"],
        &["completions"],
        &["demo"],
        &["compare"],
    ];
    for command in commands {
        let mut args = command.to_vec();
        args.push("--help");
        let out = Command::new(BIN).args(&args).output().unwrap();
        assert!(out.status.success(), "{command:?} --help failed");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("Example"),
            "{command:?} --help has no examples:\n{text}"
        );
    }
}
