//! Tests of the exec unit: statuses, output counts, timeouts on both paths.

use super::*;

fn command(program: &str, args: &[&str], timeout_ms: u64) -> ExecCommand {
    ExecCommand {
        program: program.into(),
        args: args.iter().map(|a| a.to_string()).collect(),
        timeout_ms,
    }
}

#[test]
fn exit_status_output_bytes_and_stderr_excerpt() {
    let cancel = AtomicBool::new(false);
    let ok = run_blocking(&command("echo", &["{}"], 5000), "hello", &cancel);
    assert!(ok.ok, "{ok:?}");
    assert_eq!(ok.bytes, 6);
    let failed = run_blocking(
        &command("sh", &["-c", "echo oops >&2; exit {}"], 5000),
        "3",
        &cancel,
    );
    assert!(!failed.ok);
    assert_eq!(failed.status, 3);
    assert_eq!(failed.error, "exit status 3: oops");
    assert_eq!(concur_core::exec::unpack_value(failed.value).1, 5);
}

#[test]
fn a_timeout_kills_the_child_and_its_group() {
    let cancel = AtomicBool::new(false);
    let start = Instant::now();
    let outcome = run_blocking(
        &command("sh", &["-c", "sleep 30 & sleep 30"], 300),
        "",
        &cancel,
    );
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(!outcome.ok);
    assert!(
        outcome.error.starts_with("killed after timeout 300ms"),
        "{}",
        outcome.error
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let outcome = runtime.block_on(run_async(&command("sleep", &["3{}"], 300), "0", &cancel));
    assert!(
        outcome.error.starts_with("killed after timeout"),
        "{}",
        outcome.error
    );
    let outcome = runtime.block_on(run_async(&command("echo", &[], 3000), "abc", &cancel));
    assert!(outcome.ok && outcome.bytes == 4, "{outcome:?}");
}
