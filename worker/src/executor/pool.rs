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

use super::Units;
use super::cpu::sum_squares_unit;
use super::fetch::{BlockingClient, IoRuntime, async_client, fetch_async};
use concur_core::{Outcome, Strategy};
use futures::StreamExt;
use rayon::prelude::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tokio_util::sync::CancellationToken;

type Emit<'a> = &'a (dyn Fn(u32, Outcome) + Sync);

/// Runs the shard with `strategy` on `n` threads or tasks (`n` already capped by the caller
/// to the units and the worker's thread limit).
///
/// # Errors
/// The strategy's machinery (thread pool, runtime, HTTP client) could not be set up.
pub(super) fn run(
    work: &Units,
    strategy: Strategy,
    n: u32,
    max_threads: u32,
    cancel: &Arc<AtomicBool>,
    emit: Emit<'_>,
) -> Result<(), String> {
    // Blocking fetches need an I/O runtime; a few threads drive any number of connections.
    let io = match (work, strategy) {
        (Units::Fetch { .. }, Strategy::Async | Strategy::AsyncCpu) => None,
        (Units::Fetch { .. }, _) => Some(IoRuntime::new(
            (n as usize).min(crate::system::cores() as usize),
        )?),
        (Units::SumSquares(_), _) => None,
    };
    let io = io.as_ref();
    match strategy {
        Strategy::Sequential => threads(work, 1, io, cancel, emit),
        Strategy::Threads => threads(work, n, io, cancel, emit),
        Strategy::Rayon => rayon_pool(work, n, io, cancel, emit),
        Strategy::Async | Strategy::AsyncBlocking | Strategy::AsyncCpu => {
            // CPU units leave the loop for a blocking pool: bounded like any threads.
            let pool = n.min(max_threads.max(1));
            event_loop(work, strategy, n, pool, io, cancel, emit)
        }
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
        (Units::Fetch { .. }, None) => Outcome::failed("no HTTP client", 0.0),
    }
}

/// A blocking client of its own for one thread, when the work needs one.
fn client_for(work: &Units, io: Option<&IoRuntime>) -> Result<Option<BlockingClient>, String> {
    match (work, io) {
        (Units::Fetch { http, .. }, Some(io)) => io.client(http).map(Some),
        _ => Ok(None),
    }
}

/// N OS threads pulling units from a shared counter, each with its own blocking client.
fn threads(
    work: &Units,
    n: u32,
    io: Option<&IoRuntime>,
    cancel: &AtomicBool,
    emit: Emit<'_>,
) -> Result<(), String> {
    let next = AtomicUsize::new(0);
    let threads = (n as usize).min(work.len()).max(1);
    let worker = || -> Result<(), String> {
        let client = client_for(work, io)?;
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= work.len() || cancel.load(Ordering::Relaxed) {
                return Ok(());
            }
            emit(i as u32, blocking_unit(work, i, client.as_ref(), cancel));
        }
    };
    if threads == 1 {
        return worker();
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                std::thread::Builder::new()
                    .name("concur-unit".into())
                    .spawn_scoped(scope, worker)
                    .map_err(|e| format!("cannot start thread: {e}"))
            })
            .collect::<Result<_, _>>()?;
        handles.into_iter().try_for_each(|h| {
            h.join()
                .unwrap_or_else(|_| Err("unit thread panicked".into()))
        })
    })
}

/// A rayon pool of N threads; each unit is its own task so slow units do not hold a batch.
fn rayon_pool(
    work: &Units,
    n: u32,
    io: Option<&IoRuntime>,
    cancel: &AtomicBool,
    emit: Emit<'_>,
) -> Result<(), String> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(n as usize)
        .thread_name(|i| format!("concur-rayon-{i}"))
        .build()
        .map_err(|e| format!("cannot build rayon pool: {e}"))?;
    // One blocking client per pool thread, made up front outside any async context.
    let clients = (0..n)
        .map(|_| client_for(work, io))
        .collect::<Result<Vec<_>, _>>()?;
    pool.install(|| {
        (0..work.len())
            .into_par_iter()
            .with_max_len(1)
            .for_each(|i| {
                if cancel.load(Ordering::Relaxed) {
                    return;
                }
                let client = clients[rayon::current_thread_index().unwrap_or(0)].as_ref();
                emit(i as u32, blocking_unit(work, i, client, cancel));
            });
    });
    Ok(())
}

/// Cancels `token` once `cancel` is set. The flag is shared with blocking threads, so one task
/// polls it for the whole event loop instead of every request doing so.
async fn watch_cancel(cancel: &AtomicBool, token: &CancellationToken) {
    while !cancel.load(Ordering::Relaxed) {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    token.cancel();
}

/// One single-threaded tokio runtime with at most N units in flight.
fn event_loop(
    work: &Units,
    strategy: Strategy,
    n: u32,
    blocking_threads: u32,
    io: Option<&IoRuntime>,
    cancel: &Arc<AtomicBool>,
    emit: Emit<'_>,
) -> Result<(), String> {
    // The teaching variant's blocking client, made outside the event loop's runtime.
    let blocking = match strategy {
        Strategy::AsyncBlocking => client_for(work, io)?,
        _ => None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(blocking_threads.max(1) as usize)
        .build()
        .map_err(|e| format!("cannot build async runtime: {e}"))?;
    let result = runtime.block_on(async {
        let client = match (work, strategy) {
            (Units::Fetch { http, .. }, Strategy::Async | Strategy::AsyncCpu) => {
                Some(async_client(http)?)
            }
            _ => None,
        };
        let token = CancellationToken::new();
        let token = &token;
        let units = futures::stream::iter(0..work.len()).for_each_concurrent(n as usize, |i| {
            let client = client.as_ref();
            let blocking = blocking.as_ref();
            async move {
                if cancel.load(Ordering::Relaxed) {
                    return;
                }
                let outcome = match (work, client) {
                    (
                        Units::Fetch {
                            urls,
                            max_body_bytes,
                            ..
                        },
                        Some(client),
                    ) => {
                        // A cancelled shard abandons its in-flight requests too.
                        tokio::select! {
                            outcome = fetch_async(client, &urls[i], *max_body_bytes) => outcome,
                            () = token.cancelled() => Outcome::failed("cancelled", 0.0),
                        }
                    }
                    (Units::SumSquares(ranges), _) if strategy == Strategy::Async => {
                        // The right way: CPU work leaves the event loop.
                        let (lo, hi) = ranges[i];
                        let cancel = cancel.clone();
                        tokio::task::spawn_blocking(move || sum_squares_unit(lo, hi, &cancel))
                            .await
                            .unwrap_or_else(|e| Outcome::failed(e.to_string(), 0.0))
                    }
                    // The teaching variants: a blocking call on the event loop's only thread.
                    (
                        Units::Fetch {
                            urls,
                            max_body_bytes,
                            ..
                        },
                        None,
                    ) => match blocking {
                        Some(client) => client.fetch(&urls[i], *max_body_bytes, cancel),
                        None => Outcome::failed("no HTTP client", 0.0),
                    },
                    (Units::SumSquares(_), _) => blocking_unit(work, i, None, cancel),
                };
                emit(i as u32, outcome);
            }
        });
        tokio::select! {
            () = units => {}
            () = watch_cancel(cancel, token) => {}
        }
        Ok::<(), String>(())
    });
    drop(runtime);
    result
}
