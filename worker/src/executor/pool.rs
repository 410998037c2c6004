//! The strategies: how the units of one shard are spread over threads or tasks.
//!
//! Every strategy calls the same unit functions, so timing differences come from the strategy
//! alone. Async strategies run on a single-threaded tokio runtime, like one event loop: `async`
//! overlaps waits and moves CPU work to a blocking pool of N threads; the teaching variants
//! block that one thread (`async-blocking`: blocking HTTP calls; `async-cpu`: the kernel run
//! inline), which serialises the work and shows why that is a mistake.
//!
//! Blocking strategies fetch through [`BlockingClient`]s (one per thread), whose waits a
//! cancelled shard interrupts: its threads are free within a moment, its connections closed.

use super::cpu::sum_squares_unit;
use super::exec;
use super::fetch::BlockingClient;
use super::paced::{Tries, admit, paced, paced_blocking};
use super::resources::SlotResources;
use super::{HttpConfig, Pace, Units};
use concur_core::{Outcome, Strategy};
use futures::StreamExt;
use rayon::prelude::*;
use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

type Emit<'a> = &'a (dyn Fn(u32, Outcome) + Sync);

/// The outcome of a unit, marked with the thread or task (`lane`) that ran it.
fn on_lane(mut outcome: Outcome, lane: usize) -> Outcome {
    outcome.lane = lane as u32;
    outcome
}

/// Runs the shard with `strategy` on `n` threads or tasks (`n` already capped by the caller
/// to the units and the worker's thread limit; with a tuned limit, its ceiling).
///
/// # Errors
/// The strategy's machinery (thread pool, runtime, HTTP client) could not be set up.
pub(super) fn run(
    work: &Units,
    strategy: Strategy,
    n: u32,
    pace: &Pace,
    resources: &mut SlotResources,
    cancel: &Arc<AtomicBool>,
    emit: Emit<'_>,
) -> Result<(), String> {
    match strategy {
        Strategy::Sequential => threads(work, 1, pace, resources, cancel, emit),
        Strategy::Threads => threads(work, n, pace, resources, cancel, emit),
        Strategy::Rayon => rayon_pool(work, n, pace, resources, cancel, emit),
        Strategy::Async | Strategy::AsyncBlocking | Strategy::AsyncCpu => {
            event_loop(work, strategy, n, pace, resources, cancel, emit)
        }
    }
}

/// The URL of unit `i` of a fetch shard, for the host gates.
fn url_of(work: &Units, i: usize) -> Option<&str> {
    match work {
        Units::Fetch { urls, .. } => urls.get(i).map(String::as_str),
        Units::SumSquares(_) | Units::Exec { .. } => None,
    }
}

/// Runs unit `i` on the calling thread; `client` is this thread's blocking HTTP client.
fn blocking_unit(
    work: &Units,
    i: usize,
    client: Option<&BlockingClient>,
    cancel: &AtomicBool,
) -> Outcome {
    match (work, client) {
        (
            Units::Fetch {
                urls,
                max_body_bytes,
                ..
            },
            Some(client),
        ) => client.fetch(&urls[i], *max_body_bytes, cancel),
        (Units::SumSquares(ranges), _) => sum_squares_unit(ranges[i].0, ranges[i].1, cancel),
        (Units::Exec { command, items }, _) => exec::run_blocking(command, &items[i], cancel),
        (Units::Fetch { .. }, None) => Outcome::failed("no HTTP client", 0.0),
    }
}

/// A blocking client of its own for each of `n` threads, when the work needs them.
fn clients_for(
    work: &Units,
    n: usize,
    resources: &mut SlotResources,
) -> Result<Vec<Option<BlockingClient>>, String> {
    match work {
        Units::Fetch { http, .. } => Ok(resources
            .blocking_clients(http, n)?
            .into_iter()
            .map(Some)
            .collect()),
        Units::SumSquares(_) | Units::Exec { .. } => Ok(vec![None; n]),
    }
}

/// N OS threads pulling units from a shared counter, each with its own blocking client.
fn threads(
    work: &Units,
    n: u32,
    pace: &Pace,
    resources: &mut SlotResources,
    cancel: &AtomicBool,
    emit: Emit<'_>,
) -> Result<(), String> {
    let next = AtomicUsize::new(0);
    let threads = (n as usize).min(work.len()).max(1);
    let clients = clients_for(work, threads, resources)?;
    let worker = |lane: usize, client: Option<&BlockingClient>| -> Result<(), String> {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= work.len() || cancel.load(Ordering::Relaxed) {
                return Ok(());
            }
            let Some(outcome) = paced_blocking(pace, url_of(work, i), cancel, || {
                blocking_unit(work, i, client, cancel)
            }) else {
                return Ok(());
            };
            emit(i as u32, on_lane(outcome, lane));
        }
    };
    if threads == 1 {
        return worker(0, clients[0].as_ref());
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = clients
            .iter()
            .enumerate()
            .map(|(lane, client)| {
                std::thread::Builder::new()
                    .name("concur-unit".into())
                    .spawn_scoped(scope, move || worker(lane, client.as_ref()))
                    .map_err(|e| format!("cannot start thread: {e}"))
            })
            .collect::<Result<_, _>>()?;
        handles.into_iter().try_for_each(|h| {
            h.join()
                .unwrap_or_else(|_| Err("unit thread panicked".into()))
        })
    })
}

/// A rayon pool of N threads (kept by the slot between shards); each unit is its own task so
/// slow units do not hold a batch.
fn rayon_pool(
    work: &Units,
    n: u32,
    pace: &Pace,
    resources: &mut SlotResources,
    cancel: &AtomicBool,
    emit: Emit<'_>,
) -> Result<(), String> {
    // One blocking client per pool thread, made up front outside any async context.
    let clients = clients_for(work, n as usize, resources)?;
    let pool = resources.rayon_pool(n)?;
    pool.install(|| {
        (0..work.len())
            .into_par_iter()
            .with_max_len(1)
            .for_each(|i| {
                if cancel.load(Ordering::Relaxed) {
                    return;
                }
                let lane = rayon::current_thread_index().unwrap_or(0);
                let client = clients[lane].as_ref();
                if let Some(outcome) = paced_blocking(pace, url_of(work, i), cancel, || {
                    blocking_unit(work, i, client, cancel)
                }) {
                    emit(i as u32, on_lane(outcome, lane));
                }
            });
    });
    Ok(())
}

/// Returns once `cancel` is set. The flag is shared with blocking threads, so one task polls
/// it for the whole event loop; whoever selects on this drops the shard's unfinished futures,
/// which abandons their in-flight requests and closes those connections.
pub(super) async fn cancelled(cancel: &AtomicBool) {
    while !cancel.load(Ordering::Relaxed) {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// One single-threaded tokio runtime with at most N units in flight.
fn event_loop(
    work: &Units,
    strategy: Strategy,
    n: u32,
    pace: &Pace,
    resources: &mut SlotResources,
    cancel: &Arc<AtomicBool>,
    emit: Emit<'_>,
) -> Result<(), String> {
    if let (
        Units::Fetch {
            urls,
            http,
            max_body_bytes,
        },
        Strategy::Async | Strategy::AsyncCpu,
    ) = (work, strategy)
    {
        return fetch_lanes(
            urls,
            http,
            *max_body_bytes,
            n,
            pace,
            resources,
            cancel,
            emit,
        );
    }
    // The teaching variant's blocking client, made outside the event loop's runtime.
    let blocking = match strategy {
        Strategy::AsyncBlocking => clients_for(work, 1, resources)?.pop().flatten(),
        _ => None,
    };
    let runtime = resources.event_loop()?;
    // Task numbers in use: a unit takes the lowest free one, so lanes read as N tasks.
    let free_lanes = std::cell::RefCell::new((0..n as usize).rev().collect::<Vec<_>>());
    runtime.block_on(async {
        let units = futures::stream::iter(0..work.len()).for_each_concurrent(n as usize, |i| {
            let blocking = blocking.as_ref();
            let free_lanes = &free_lanes;
            async move {
                if cancel.load(Ordering::Relaxed) {
                    return;
                }
                // The lane is taken once the unit may start, so lanes in use read as the limit.
                let run = || async {
                    let lane = free_lanes.borrow_mut().pop().unwrap_or(0);
                    let outcome = match work {
                        Units::SumSquares(ranges) if strategy == Strategy::Async => {
                            // The right way: CPU work leaves the event loop.
                            let (lo, hi) = ranges[i];
                            let cancel = cancel.clone();
                            tokio::task::spawn_blocking(move || sum_squares_unit(lo, hi, &cancel))
                                .await
                                .unwrap_or_else(|e| Outcome::failed(e.to_string(), 0.0))
                        }
                        // N children supervised by the event loop, no thread each.
                        Units::Exec { command, items } if strategy == Strategy::Async => {
                            exec::run_async(command, &items[i], cancel).await
                        }
                        // The teaching variants: a blocking call on the event loop's only
                        // thread.
                        Units::Fetch {
                            urls,
                            max_body_bytes,
                            ..
                        } => match blocking {
                            Some(client) => client.fetch(&urls[i], *max_body_bytes, cancel),
                            None => Outcome::failed("no HTTP client", 0.0),
                        },
                        Units::SumSquares(_) | Units::Exec { .. } => {
                            blocking_unit(work, i, None, cancel)
                        }
                    };
                    free_lanes.borrow_mut().push(lane);
                    on_lane(outcome, lane)
                };
                let Some(outcome) = paced(pace, url_of(work, i), cancel, run).await else {
                    return;
                };
                emit(i as u32, outcome);
            }
        });
        // Blocking units check the flag themselves; only the loop needs stopping here.
        tokio::select! {
            () = units => {}
            () = cancelled(cancel) => {}
        }
    });
    Ok(())
}

/// The async fetch path: N lanes on the event loop, each taking the next URL when its last
/// request ends and sending it on a connection of its own (see [`super::lane`]). The lanes'
/// connections stay open for the slot's next shard unless this one was cancelled.
#[allow(clippy::too_many_arguments)]
fn fetch_lanes(
    urls: &[String],
    http: &HttpConfig,
    max_body_bytes: u64,
    n: u32,
    pace: &Pace,
    resources: &mut SlotResources,
    cancel: &Arc<AtomicBool>,
    emit: Emit<'_>,
) -> Result<(), String> {
    let fetcher = resources.async_client(http)?;
    let mut lanes = resources.take_lanes(http, n as usize);
    let runtime = resources.event_loop()?;
    let next = Cell::new(0usize);
    runtime.block_on(async {
        let lanes_done = futures::future::join_all(lanes[..n as usize].iter_mut().enumerate().map(
            |(index, lane)| {
                let (next, fetcher) = (&next, &fetcher);
                async move {
                    loop {
                        let i = next.get();
                        if i >= urls.len() || cancel.load(Ordering::Relaxed) {
                            return;
                        }
                        next.set(i + 1);
                        // As `paced` does, with the lane borrowed across the tries.
                        let mut tries = Tries::new(pace);
                        let outcome = loop {
                            let Some(admission) = admit(pace, Some(&urls[i]), cancel).await else {
                                return;
                            };
                            let outcome = lane.fetch(fetcher, &urls[i], max_body_bytes).await;
                            admission.done(&outcome);
                            let Some(pause) = tries.again(&outcome) else {
                                break tries.finish(outcome);
                            };
                            tokio::time::sleep(pause).await;
                        };
                        emit(i as u32, on_lane(outcome, index));
                    }
                }
            },
        ));
        tokio::select! {
            _ = lanes_done => {}
            // Drops every lane mid-request: a cancelled shard abandons its requests.
            () = cancelled(cancel) => {}
        }
    });
    if !cancel.load(Ordering::Relaxed) {
        resources.keep_lanes(http, lanes);
        return Ok(());
    }
    // Connections of a cancelled shard may be mid-response: close them rather than wait.
    // Their tasks live on the slot's event loop, which runs only inside `block_on`: drop the
    // lanes, then let those tasks see it and release their sockets now, not at the next shard.
    drop(lanes);
    runtime.block_on(tokio::task::yield_now());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use concur_core::policy::HostPolicy;
    use std::time::{Duration, Instant};

    #[test]
    fn a_cancelled_async_fetch_abandons_its_requests_and_closes_their_connections() {
        // A server that accepts, reads the request and never answers.
        let (port, closed) = super::super::stalling_server();
        let work = Units::Fetch {
            urls: vec![format!("http://127.0.0.1:{port}/stall")],
            http: HttpConfig {
                timeout: Duration::from_secs(60),
                policy: Arc::new(HostPolicy::default()),
            },
            max_body_bytes: 1024,
        };
        let cancel = Arc::new(AtomicBool::new(false));
        let flag = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            flag.store(true, Ordering::Relaxed);
        });
        let start = Instant::now();
        let mut resources = SlotResources::new(8);
        run(
            &work,
            Strategy::Async,
            1,
            &Pace::default(),
            &mut resources,
            &cancel,
            &|_, _| {},
        )
        .unwrap();
        // Far below the 60 s request timeout it would otherwise wait out.
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            start.elapsed()
        );
        let read = closed
            .recv_timeout(Duration::from_secs(5))
            .expect("connection closed");
        assert_eq!(read, 0);
    }
}
