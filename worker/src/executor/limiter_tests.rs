//! The limiter against modelled servers: its state machine fed with latencies a queue model
//! gives, on a simulated clock, so the tests are exact and instant.

use super::*;
use std::time::Duration;

/// Feeds `rounds` rounds: each runs `limit` units at once, which all take the latency
/// `latency(limit)` and end with `signal(limit)`. Returns the limit after each round.
fn drive(
    state: &mut State,
    rounds: usize,
    latency: impl Fn(u32) -> f64,
    signal: impl Fn(u32) -> Signal,
) -> Vec<u32> {
    let mut now = state.since;
    let mut limits = Vec::new();
    for _ in 0..rounds {
        let n = state.allowed();
        state.window.peak_in_flight = state.window.peak_in_flight.max(n);
        let took = latency(n);
        now += Duration::from_secs_f64(took);
        for _ in 0..n {
            state.sample(took, signal(n), now);
        }
        limits.push(state.allowed());
    }
    limits
}

fn fresh(ceiling: u32) -> State {
    Limiter::new(ceiling).state.into_inner()
}

/// A server serving `capacity` requests at once in `service` seconds each, queueing the rest.
fn queueing(capacity: u32, service: f64) -> impl Fn(u32) -> f64 {
    move |n| service * (f64::from(n) / f64::from(capacity)).max(1.0)
}

#[test]
fn settles_just_above_a_servers_capacity() {
    for capacity in [4, 16, 50] {
        let mut state = fresh(1000);
        let limits = drive(&mut state, 300, queueing(capacity, 0.02), |_| Signal::Ran);
        let settled = &limits[200..];
        let (low, high) = (settled.iter().min().unwrap(), settled.iter().max().unwrap());
        // At capacity or a little above: the server is never idle, its queue stays short.
        assert!(
            *low >= capacity && *high <= capacity * 2 + 8,
            "capacity {capacity}: settled in {low}..={high}: {limits:?}"
        );
    }
}

#[test]
fn climbs_to_the_ceiling_when_latency_never_grows() {
    let mut state = fresh(64);
    let limits = drive(&mut state, 40, |_| 0.01, |_| Signal::Ran);
    assert_eq!(*limits.last().unwrap(), 64, "{limits:?}");
    // Slow start doubles: 4, 8, 16, 32, 64 within a few rounds.
    assert!(limits[..8].contains(&64), "{limits:?}");
}

#[test]
fn overload_cuts_the_limit_at_once_and_only_once_per_window() {
    let mut state = fresh(100);
    drive(&mut state, 20, |_| 0.01, |_| Signal::Ran);
    assert_eq!(state.allowed(), 100);
    let now = state.since;
    state.sample(0.01, Signal::Overloaded, now);
    assert_eq!(state.allowed(), 70);
    state.sample(0.01, Signal::Overloaded, now);
    assert_eq!(state.allowed(), 70, "a second overload in one window");
    // A server that sheds (503) everything beyond 10 at once: the limit comes down under it.
    let limits = drive(
        &mut state,
        200,
        |_| 0.01,
        |n| {
            if n > 10 {
                Signal::Overloaded
            } else {
                Signal::Ran
            }
        },
    );
    let settled = &limits[150..];
    assert!(
        settled.iter().filter(|l| **l <= 10).count() > settled.len() / 2,
        "{limits:?}"
    );
}

#[test]
fn a_half_idle_window_never_grows_the_limit() {
    let mut state = fresh(100);
    let now = state.since;
    // Eight samples, one at a time: the shard's tail, or a job of few units.
    for _ in 0..8 {
        state.window.peak_in_flight = 1;
        state.sample(0.01, Signal::Ran, now);
    }
    assert_eq!(state.allowed(), INITIAL_LIMIT as u32);
}

#[test]
fn signals_read_from_outcomes() {
    let ok = Outcome {
        ok: true,
        status: 200,
        duration_s: 0.02,
        ..Outcome::default()
    };
    assert_eq!(Signal::of(&ok), Signal::Ran);
    // Failures other than overload, and units that took no time, are no samples.
    let not_found = Outcome {
        status: 404,
        ..Outcome::failed("HTTP 404", 0.1)
    };
    assert_eq!(Signal::of(&not_found), Signal::Ignored);
    assert_eq!(
        Signal::of(&Outcome::failed("connection refused", 0.001)),
        Signal::Ignored
    );
    assert_eq!(
        Signal::of(&Outcome {
            ok: true,
            ..Outcome::default()
        }),
        Signal::Ignored
    );
    // A URL that mentions timeouts is not a timeout.
    let refused = Outcome::failed("connection refused: http://h/timeout-demo", 0.001);
    assert_eq!(Signal::of(&refused), Signal::Ignored);
    for status in [429, 503] {
        let shed = Outcome {
            status,
            ..Outcome::failed(format!("HTTP {status}"), 0.1)
        };
        assert_eq!(Signal::of(&shed), Signal::Overloaded);
    }
    let timed_out = Outcome::failed("request timed out after 30s", 30.0);
    assert_eq!(Signal::of(&timed_out), Signal::Overloaded);
    let killed = Outcome::failed("killed after timeout 1s", 1.0);
    assert_eq!(Signal::of(&killed), Signal::Overloaded);
}

#[test]
fn permits_hold_the_limit_and_time_weighted_means_follow_it() {
    let limiter = Limiter::new(2);
    let cancel = AtomicBool::new(false);
    let mark = limiter.mark();
    let first = limiter.acquire_blocking(&cancel).unwrap();
    let _second = limiter.acquire_blocking(&cancel).unwrap();
    // A third waits until one is returned; cancelled, it gives up.
    let stop = AtomicBool::new(true);
    assert!(limiter.acquire_blocking(&stop).is_none());
    first.done(&Outcome::failed("cancelled", 0.0));
    assert!(limiter.acquire_blocking(&cancel).is_some());
    let mean = limiter.mean_since(mark);
    assert!((mean - 2.0).abs() < 1e-9, "{mean}");
}

/// A deterministic stand-in for random jitter: uniform-looking values in 0..1.
fn jitter(i: u64) -> f64 {
    ((i.wrapping_mul(2_654_435_761) >> 7) % 1000) as f64 / 1000.0
}

#[test]
fn jitter_without_a_queue_does_not_hold_the_limit_down() {
    // Latencies spread 50% around their base, whatever the limit: nothing is queued.
    let mut state = fresh(256);
    let mut now = state.since;
    let mut i = 0u64;
    for _ in 0..400 {
        let n = state.allowed();
        state.window.peak_in_flight = state.window.peak_in_flight.max(n);
        now += Duration::from_millis(20);
        for _ in 0..n {
            i += 1;
            state.sample(0.02 * (1.0 + 0.5 * jitter(i)), Signal::Ran, now);
        }
    }
    assert!(
        state.allowed() >= 128,
        "held at {} by jitter",
        state.allowed()
    );
}

#[test]
fn fast_failures_do_not_pass_for_the_no_queue_latency() {
    // One in five units fails at once (connection refused): no samples, so the limit still
    // finds a capacity of 16.
    let mut state = fresh(1000);
    let mut now = state.since;
    let latency = queueing(16, 0.02);
    let mut limits = Vec::new();
    for round in 0..300u32 {
        let n = state.allowed();
        state.window.peak_in_flight = state.window.peak_in_flight.max(n);
        let took = latency(n);
        now += Duration::from_secs_f64(took);
        for unit in 0..n {
            let signal = if (round + unit) % 5 == 0 {
                Signal::Ignored
            } else {
                Signal::Ran
            };
            let sample = if signal == Signal::Ignored {
                0.0001
            } else {
                took
            };
            state.sample(sample, signal, now);
        }
        limits.push(state.allowed());
    }
    let settled = &limits[200..];
    assert!(settled.iter().all(|l| (16..=40).contains(l)), "{limits:?}");
}
