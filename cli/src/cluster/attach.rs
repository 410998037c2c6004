//! Which started workers are attached to the coordinator: each is matched by the host name it
//! reports and its PID there (a name alone could be an older worker still listed; a PID alone
//! could repeat across machines).

use crate::client;
use crate::exit::CliError;
use concur_proto::pb;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How often `up` asks the coordinator while waiting.
const POLL: Duration = Duration::from_millis(500);

/// A worker we expect to see in the coordinator's list.
#[derive(Debug, Clone)]
pub(crate) struct Expected {
    /// The host name the worker reports.
    pub(crate) worker_host: String,
    /// Its PID on that host.
    pub(crate) pid: u32,
}

/// For each expected worker, whether the coordinator lists it now.
///
/// # Errors
/// The coordinator cannot be reached or refuses us (its message).
pub(crate) async fn attached_now(
    address: &str,
    expected: &[Expected],
) -> Result<Vec<bool>, CliError> {
    let mut client = client::connect(address).await?;
    let workers = client::list_workers(&mut client).await?;
    Ok(matches(&workers, expected))
}

fn matches(workers: &[pb::WorkerSummary], expected: &[Expected]) -> Vec<bool> {
    expected
        .iter()
        .map(|e| {
            workers
                .iter()
                .any(|w| w.host == e.worker_host && w.pid == e.pid)
        })
        .collect()
}

/// How waiting ended.
#[derive(Debug)]
pub(crate) enum Waited {
    /// Which expected workers attached (all of them, or those seen before the timeout), and
    /// the last reason the coordinator could not be asked, if any.
    Done(Vec<bool>, Option<String>),
    /// Ctrl-C.
    Interrupted,
}

/// Polls the coordinator until every expected worker is attached, `timeout` passes, or
/// `interrupt` fires; prints progress (to stderr) whenever the count changes. A coordinator
/// that refuses us (a token, say) ends the wait at once: asking again will not help.
pub(crate) async fn wait(
    address: &str,
    expected: &[Expected],
    labels: &[String],
    timeout: Duration,
    interrupt: &mut watch::Receiver<bool>,
) -> Waited {
    let deadline = Instant::now() + timeout;
    let mut last_count = usize::MAX;
    let mut last_error: Option<String>;
    let mut seen = vec![false; expected.len()];
    loop {
        match attached_now(address, expected).await {
            Ok(now) => {
                last_error = None;
                seen = now;
            }
            Err(CliError::Unreachable(e)) => last_error = Some(e),
            Err(e) => return Waited::Done(seen, Some(e.to_string())),
        }
        let count = seen.iter().filter(|s| **s).count();
        if count == expected.len() {
            return Waited::Done(seen, None);
        }
        if count != last_count {
            let missing: Vec<&str> = labels
                .iter()
                .zip(&seen)
                .filter(|(_, s)| !**s)
                .map(|(l, _)| l.as_str())
                .collect();
            eprintln!(
                "attached: {count} of {} (waiting for {})",
                expected.len(),
                missing.join(", ")
            );
            last_count = count;
        }
        if Instant::now() >= deadline {
            return Waited::Done(seen, last_error);
        }
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            _ = interrupt.wait_for(|fired| *fired) => return Waited::Interrupted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_matches_by_host_and_pid() {
        let listed = |host: &str, pid| pb::WorkerSummary {
            host: host.into(),
            pid,
            ..Default::default()
        };
        let workers = [listed("h1", 10), listed("h2", 99)];
        let expected = |host: &str, pid| Expected {
            worker_host: host.into(),
            pid,
        };
        assert_eq!(
            matches(
                &workers,
                &[expected("h1", 10), expected("h2", 20), expected("h3", 10)]
            ),
            [true, false, false]
        );
    }
}
