//! Logs an operator can use: no terminal escape codes in a log file (or the journal), and one
//! JSON object per line with `--log-format json`.

use concur_tests::bin;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// The coordinator's stderr lines up to and including the one saying it serves.
fn first_log_lines(extra: &[&str]) -> Vec<String> {
    let mut child = Command::new(bin("concur-coordinator"))
        .args(["--listen", "127.0.0.1:0", "--in-memory"])
        .args(extra)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the coordinator");
    let stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut lines = Vec::new();
    for line in stderr.lines() {
        let line = line.expect("read stderr");
        let serving = line.contains("coordinator serving");
        lines.push(line);
        if serving || lines.len() > 50 {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    lines
}

#[test]
fn a_log_that_is_not_a_terminal_has_no_escape_codes() {
    let lines = first_log_lines(&[]);
    assert!(
        lines.iter().any(|l| l.contains("coordinator serving")),
        "{lines:?}"
    );
    for line in &lines {
        assert!(!line.contains('\u{1b}'), "escape code in {line:?}");
    }
}

#[test]
fn json_logs_are_one_object_per_line() {
    let lines = first_log_lines(&["--log-format", "json"]);
    let serving = lines.last().expect("a line");
    for line in &lines {
        let object: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        assert!(object["level"].is_string(), "{line}");
        assert!(object["timestamp"].is_string(), "{line}");
    }
    let object: serde_json::Value = serde_json::from_str(serving).unwrap();
    assert_eq!(
        object["fields"]["message"], "coordinator serving",
        "{serving}"
    );
}

#[test]
fn a_wrong_log_format_is_named() {
    let out = Command::new(bin("concur-coordinator"))
        .args(["--in-memory", "--log-format", "yaml"])
        .output()
        .expect("run the coordinator");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown log format 'yaml'"), "{stderr}");
}
