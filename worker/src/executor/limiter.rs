//! `--concurrency auto`: an in-flight limit that each worker tunes from what it measures, in
//! the spirit of TCP Vegas and Netflix's concurrency-limits.
//!
//! Every unit takes a permit before it starts and returns it with its latency (successes only:
//! a failure's latency says nothing about a queue). Once per window (half the limit in
//! samples, at least [`MIN_WINDOW`]) the limiter compares the window's mean latency with the
//! least window mean it has seen (the latency with no queue): `limit x (1 - least/mean)`
//! estimates how many of the units in flight were queued somewhere (in a server's accept
//! queue, behind busy cores). Few queued: the limit grows (doubling at first, "slow start");
//! many: it shrinks; in between it holds. A sign of overload (HTTP 429 or 503, a timeout)
//! cuts the limit by [`BACKOFF`] at once, at most once per window. A window in which fewer
//! than half the permits were used (a shard's tail, a small job) never grows the limit.
//!
//! The limit is the worker's, for one job: every slot's shards of that job share it, and it
//! carries over from shard to shard.

use super::waitable::{Try, Waitable};
use concur_core::Outcome;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

/// Where the limit starts (or the ceiling, if lower).
pub(crate) const INITIAL_LIMIT: f64 = 4.0;
/// Samples per window at least, so one odd latency does not move the limit.
const MIN_WINDOW: u32 = 4;
/// The cut on a sign of overload.
const BACKOFF: f64 = 0.7;

/// How a unit ended, as far as the limiter cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// It succeeded; its latency is a sample.
    Ran,
    /// The far side was overloaded: 429, 503 or a timeout.
    Overloaded,
    /// It failed otherwise (refused, 404, a non-zero exit…) or took no time: its latency says
    /// nothing about a queue (a fast failure would pass for the no-queue latency).
    Ignored,
}

impl Signal {
    /// How `outcome` reads: overload on HTTP 429/503 and on timeouts (fetch or exec, by the
    /// start of their error, never by a URL in it); a sample only when it succeeded.
    pub(crate) fn of(outcome: &Outcome) -> Self {
        let timed_out = outcome.error.starts_with(super::fetch::TIMED_OUT)
            || outcome.error.starts_with(super::exec::KILLED_AFTER_TIMEOUT);
        if !outcome.ok && (matches!(outcome.status, 429 | 503) || timed_out) {
            Signal::Overloaded
        } else if outcome.ok && outcome.duration_s > 0.0 {
            Signal::Ran
        } else {
            Signal::Ignored
        }
    }
}

/// The samples of the current window.
#[derive(Debug, Default)]
struct Window {
    samples: u32,
    latency_sum: f64,
    overloaded: bool,
    peak_in_flight: u32,
}

#[derive(Debug)]
struct State {
    limit: f64,
    ceiling: f64,
    in_flight: u32,
    /// The least latency seen: the no-queue baseline.
    least: f64,
    slow_start: bool,
    window: Window,
    /// The limit integrated over time since `since`, for time-weighted means.
    integral: f64,
    since: Instant,
}

impl State {
    fn allowed(&self) -> u32 {
        self.limit as u32
    }

    /// Moves the time integral to `now` (before the limit changes).
    fn integrate(&mut self, now: Instant) {
        // The permits granted (the floor), not the fractional estimate behind them.
        self.integral += f64::from(self.allowed()) * now.duration_since(self.since).as_secs_f64();
        self.since = now;
    }

    fn set_limit(&mut self, limit: f64, now: Instant) {
        self.integrate(now);
        self.limit = limit.clamp(1.0, self.ceiling);
    }

    fn sample(&mut self, latency: f64, signal: Signal, now: Instant) {
        match signal {
            Signal::Ignored => return,
            Signal::Overloaded if !self.window.overloaded => {
                self.window.overloaded = true;
                self.slow_start = false;
                self.set_limit((self.limit * BACKOFF).floor(), now);
            }
            Signal::Overloaded | Signal::Ran => {}
        }
        let window = &mut self.window;
        window.samples += 1;
        window.latency_sum += latency;
        let size = ((self.limit / 2.0) as u32).max(MIN_WINDOW);
        if window.samples < size {
            return;
        }
        let window = std::mem::take(&mut self.window);
        if window.overloaded {
            return;
        }
        // The baseline is the least *window mean*, not the least single latency: a jittery
        // server's fastest answer would make every window look queued.
        let mean = window.latency_sum / f64::from(window.samples);
        self.least = self.least.min(mean);
        let queued = if mean > 0.0 {
            self.limit * (1.0 - self.least / mean)
        } else {
            0.0
        };
        let step = self.limit.log10().max(1.0);
        let busy = f64::from(window.peak_in_flight) >= self.limit / 2.0;
        let next = if self.slow_start {
            if queued < step {
                if busy { self.limit * 2.0 } else { self.limit }
            } else {
                self.slow_start = false;
                self.limit
            }
        } else if queued < 3.0 * step {
            if busy { self.limit + step } else { self.limit }
        } else if queued > 6.0 * step {
            self.limit - step
        } else {
            self.limit
        };
        self.set_limit(next, now);
    }
}

/// A worker's tuned in-flight limit for one job.
#[derive(Debug)]
pub(crate) struct Limiter {
    state: Waitable<State>,
}

/// A unit's right to run; give it back with [`Permit::done`] (dropping it, as a cancelled unit
/// does, returns it without a sample).
#[derive(Debug)]
pub(crate) struct Permit<'a> {
    limiter: &'a Limiter,
    sampled: bool,
}

impl Permit<'_> {
    /// Returns the permit with the unit's outcome as a sample: its own duration is the latency
    /// (a wait at a host's gate before it started is not).
    pub(crate) fn done(mut self, outcome: &Outcome) {
        self.sampled = true;
        let now = Instant::now();
        let mut state = self.limiter.state.lock();
        state.in_flight -= 1;
        let before = state.allowed();
        state.sample(outcome.duration_s.max(0.0), Signal::of(outcome), now);
        let grew = state.allowed() > before;
        drop(state);
        // One permit came back: one waiter may go. A grown limit lets several go.
        if grew {
            self.limiter.state.wake();
        } else {
            self.limiter.state.wake_one();
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.sampled {
            self.limiter.state.lock().in_flight -= 1;
            self.limiter.state.wake_one();
        }
    }
}

impl Limiter {
    /// A limit that starts at [`INITIAL_LIMIT`] and never passes `ceiling`.
    pub(crate) fn new(ceiling: u32) -> Self {
        let ceiling = f64::from(ceiling.max(1));
        Self {
            state: Waitable::new(State {
                limit: INITIAL_LIMIT.min(ceiling),
                ceiling,
                in_flight: 0,
                least: f64::INFINITY,
                slow_start: true,
                window: Window::default(),
                integral: 0.0,
                since: Instant::now(),
            }),
        }
    }

    /// The limit now.
    pub(crate) fn limit(&self) -> u32 {
        self.state.lock().allowed()
    }

    /// The limit integrated over time so far (limit x seconds) and the time it runs to: two
    /// marks give the time-weighted mean limit between them.
    pub(crate) fn mark(&self) -> (f64, Instant) {
        let mut state = self.state.lock();
        state.integrate(Instant::now());
        (state.integral, state.since)
    }

    /// The time-weighted mean limit since `mark` (the limit now when no time passed).
    pub(crate) fn mean_since(&self, mark: (f64, Instant)) -> f64 {
        let (integral, now) = self.mark();
        let seconds = now.duration_since(mark.1).as_secs_f64();
        if seconds > 0.0 {
            (integral - mark.0) / seconds
        } else {
            f64::from(self.limit())
        }
    }

    fn take(&self, state: &mut State) -> Try<Permit<'_>> {
        if state.in_flight < state.allowed() {
            state.in_flight += 1;
            state.window.peak_in_flight = state.window.peak_in_flight.max(state.in_flight);
            Try::Ready(Permit {
                limiter: self,
                sampled: false,
            })
        } else {
            Try::Wait(None)
        }
    }

    /// Waits (blocking the thread) for a permit; `None` once `cancel` is set.
    pub(crate) fn acquire_blocking(&self, cancel: &AtomicBool) -> Option<Permit<'_>> {
        self.state
            .wait_blocking(cancel, |state, _| self.take(state))
    }

    /// Waits on the event loop for a permit; `None` once `cancel` is set.
    pub(crate) async fn acquire(&self, cancel: &AtomicBool) -> Option<Permit<'_>> {
        self.state.wait(cancel, |state, _| self.take(state)).await
    }
}

#[cfg(test)]
#[path = "limiter_tests.rs"]
mod tests;
