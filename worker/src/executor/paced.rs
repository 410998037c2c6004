//! One unit under its pace: a permit of the tuned limit, a place at its host's gate, and —
//! under a tuned limit — another try after a pause when the far side shed it (HTTP 429 or
//! 503), so that probing for the limit does not cost the job its items.

use super::Pace;
use super::hosts::Entry;
use super::limiter::Permit;
use concur_core::Outcome;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Tries of a shed unit at most, the first included.
const SHED_TRIES: u32 = 4;
/// The pause before the first retry; it doubles with each.
const FIRST_PAUSE: Duration = Duration::from_millis(100);

/// The tries of one unit: whether to try again, and the outcome they add up to.
#[derive(Debug)]
pub(super) struct Tries {
    first: Instant,
    count: u32,
    retry: bool,
}

impl Tries {
    pub(super) fn new(pace: &Pace) -> Self {
        Self {
            first: Instant::now(),
            count: 0,
            retry: pace.limiter.is_some(),
        }
    }

    /// After a try that ended with `outcome`: the pause before the next one, or `None` when
    /// it is final.
    pub(super) fn again(&mut self, outcome: &Outcome) -> Option<Duration> {
        self.count += 1;
        let shed = !outcome.ok && matches!(outcome.status, 429 | 503);
        (self.retry && shed && self.count < SHED_TRIES)
            .then(|| FIRST_PAUSE * (1 << (self.count - 1)))
    }

    /// The unit's outcome: the last try's, timed from the first try's start.
    pub(super) fn finish(&self, mut outcome: Outcome) -> Outcome {
        if self.count > 1 {
            outcome.duration_s = self.first.elapsed().as_secs_f64();
            if !outcome.ok {
                outcome.error = format!("{} (after {} tries)", outcome.error, self.count);
            }
        }
        outcome
    }
}

/// Sleeps `pause` unless `cancel` is set meanwhile; false when it was.
fn pause_blocking(pause: Duration, cancel: &AtomicBool) -> bool {
    let until = Instant::now() + pause;
    while Instant::now() < until {
        if cancel.load(Ordering::Relaxed) {
            return false;
        }
        std::thread::sleep((until - Instant::now()).min(Duration::from_millis(20)));
    }
    !cancel.load(Ordering::Relaxed)
}

/// A unit's place: through its host's gate and holding a permit of the tuned limit.
pub(super) struct Admission<'a> {
    entry: Option<Entry<'a>>,
    permit: Option<Permit<'a>>,
}

impl Admission<'_> {
    /// Leaves the gate and returns the permit with the try's outcome as the limiter's sample.
    pub(super) fn done(self, outcome: &Outcome) {
        drop(self.entry);
        if let Some(permit) = self.permit {
            permit.done(outcome);
        }
    }
}

/// Waits (blocking the thread) for a unit's place: its host's gate first — a unit waiting
/// there holds no permit, so the limiter counts only units really under way and does not
/// climb on units held back — then a permit. `None` once `cancel` is set.
pub(super) fn admit_blocking<'a>(
    pace: &'a Pace,
    url: Option<&str>,
    cancel: &AtomicBool,
) -> Option<Admission<'a>> {
    let entry = match (&pace.hosts, url) {
        (Some(hosts), Some(url)) => Some(hosts.enter_blocking(url, cancel)?),
        _ => None,
    };
    let permit = match &pace.limiter {
        Some(limiter) => Some(limiter.acquire_blocking(cancel)?),
        None => None,
    };
    Some(Admission { entry, permit })
}

/// [`admit_blocking`] on the event loop.
pub(super) async fn admit<'a>(
    pace: &'a Pace,
    url: Option<&str>,
    cancel: &AtomicBool,
) -> Option<Admission<'a>> {
    let entry = match (&pace.hosts, url) {
        (Some(hosts), Some(url)) => Some(hosts.enter(url, cancel).await?),
        _ => None,
    };
    let permit = match &pace.limiter {
        Some(limiter) => Some(limiter.acquire(cancel).await?),
        None => None,
    };
    Some(Admission { entry, permit })
}

/// Runs a unit on this thread once admitted, trying a shed one again; each try's outcome is
/// the limiter's sample. `None` when the shard was cancelled while it waited.
pub(super) fn paced_blocking(
    pace: &Pace,
    url: Option<&str>,
    cancel: &AtomicBool,
    mut run: impl FnMut() -> Outcome,
) -> Option<Outcome> {
    let mut tries = Tries::new(pace);
    loop {
        let admission = admit_blocking(pace, url, cancel)?;
        let outcome = run();
        admission.done(&outcome);
        match tries.again(&outcome) {
            Some(pause) if pause_blocking(pause, cancel) => {}
            Some(_) => return None,
            None => return Some(tries.finish(outcome)),
        }
    }
}

/// [`paced_blocking`] for a unit run by the event loop.
pub(super) async fn paced<F: std::future::Future<Output = Outcome>>(
    pace: &Pace,
    url: Option<&str>,
    cancel: &AtomicBool,
    mut run: impl FnMut() -> F,
) -> Option<Outcome> {
    let mut tries = Tries::new(pace);
    loop {
        let admission = admit(pace, url, cancel).await?;
        let outcome = run().await;
        admission.done(&outcome);
        match tries.again(&outcome) {
            Some(pause) => {
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = super::pool::cancelled(cancel) => return None,
                }
            }
            None => return Some(tries.finish(outcome)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use concur_core::pacing::Pacing;

    fn shed() -> Outcome {
        Outcome {
            status: 503,
            ..Outcome::failed("HTTP 503", 0.01)
        }
    }

    #[test]
    fn a_shed_unit_is_tried_again_only_under_a_tuned_limit() {
        let tuned = Pace::new(
            &Pacing {
                auto: true,
                ..Pacing::default()
            },
            8,
        );
        let cancel = AtomicBool::new(false);
        let mut calls = 0;
        let outcome = paced_blocking(&tuned, None, &cancel, || {
            calls += 1;
            if calls < 3 {
                shed()
            } else {
                Outcome {
                    ok: true,
                    status: 200,
                    ..Outcome::default()
                }
            }
        })
        .unwrap();
        assert!(outcome.ok);
        assert_eq!(calls, 3);
        // Two pauses (0.1 s, 0.2 s) are part of the item's time.
        assert!(outcome.duration_s >= 0.3, "{}", outcome.duration_s);
        // Shed every time: four tries, then the failure says so.
        let outcome = paced_blocking(&tuned, None, &cancel, shed).unwrap();
        assert!(
            outcome.error.ends_with("(after 4 tries)"),
            "{}",
            outcome.error
        );
        // A fixed concurrency keeps a 503 as it came.
        let mut calls = 0;
        let fixed = Pace::default();
        let outcome = paced_blocking(&fixed, None, &cancel, || {
            calls += 1;
            shed()
        })
        .unwrap();
        assert_eq!((calls, outcome.error.as_str()), (1, "HTTP 503"));
    }
}
