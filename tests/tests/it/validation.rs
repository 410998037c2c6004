//! Bad input: a clear error naming the problem, exit code 2, and nothing started.

use concur_tests::cli;

fn assert_refused(args: &[&str], needle: &str) {
    let out = cli(args);
    assert_eq!(
        out.code, 2,
        "{args:?} should exit 2; stderr: {}",
        out.stderr
    );
    assert!(
        out.stderr.to_lowercase().contains(&needle.to_lowercase()),
        "{args:?}: expected {needle:?} in stderr: {}",
        out.stderr
    );
}

#[test]
fn bad_inputs_exit_2_with_a_clear_error() {
    assert_refused(
        &["submit", "sum-squares", "1..5", "--strategy", "fibers"],
        "fibers",
    );
    assert_refused(&["submit", "knit", "1..5"], "knit");
    assert_refused(&["submit", "sum-squares", "5..5"], "empty range");
    assert_refused(&["submit", "sum-squares", "9..3"], "empty range");
    assert_refused(&["submit", "sum-squares", "1..x"], "malformed");
    assert_refused(&["submit", "sum-squares", "1,,2"], "malformed");
    assert_refused(
        &["submit", "sum-squares", "20000000000000"],
        "overflows u128",
    );
    assert_refused(
        &["submit", "sum-squares", "1..5", "--shards", "0"],
        "shards must be at least 1",
    );
    assert_refused(
        &["submit", "sum-squares", "1..5", "--concurrency", "0"],
        "concurrency must be at least 1",
    );
    assert_refused(
        &["submit", "fetch", "ftp://example.com/file"],
        "not http or https",
    );
    assert_refused(&["submit", "fetch", "not-a-url"], "bad url");
    assert_refused(
        &["submit", "fetch", "--urls-file", "/nonexistent/urls.txt"],
        "cannot read url file",
    );
    assert_refused(
        &["--coordinator", "http://127.0.0.1:1", "jobs"],
        "cannot reach the coordinator",
    );
    assert_refused(
        &[
            "--coordinator",
            "http://127.0.0.1:1",
            "submit",
            "sum-squares",
            "1..3",
        ],
        "cannot reach the coordinator",
    );
    assert_refused(&["jobs"], "needs a running coordinator");
}

#[test]
fn an_empty_url_file_is_refused() {
    let path = std::env::temp_dir().join(format!("concur-empty-urls-{}.txt", std::process::id()));
    std::fs::write(&path, "# only a comment\n\n").unwrap();
    assert_refused(
        &["submit", "fetch", "--urls-file", path.to_str().unwrap()],
        "has no urls",
    );
    let _ = std::fs::remove_file(path);
}

#[test]
fn errors_are_json_in_json_mode() {
    let out = cli(&["--output", "json", "submit", "sum-squares", "5..5"]);
    assert_eq!(out.code, 2);
    let error = out.json()["error"].as_str().unwrap().to_string();
    assert!(error.contains("empty range"), "{error}");
}
