//! A state that blocking threads and async tasks can both wait on: the threads and rayon
//! strategies wait with a condition variable, the async ones with a `Notify`, for the same
//! limiter or host gate.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// The longest a waiter sleeps before it looks at its cancel flag again.
const CANCEL_POLL: Duration = Duration::from_millis(20);

/// What a waiter's try gave: the thing it waited for, or how long to wait before the next try
/// (`None`: until the state changes).
pub(super) enum Try<R> {
    Ready(R),
    Wait(Option<Duration>),
}

/// A mutex-guarded state with wake-ups for both kinds of waiter.
#[derive(Debug, Default)]
pub(super) struct Waitable<T> {
    state: Mutex<T>,
    changed: Condvar,
    notify: Notify,
}

impl<T> Waitable<T> {
    pub(super) fn new(state: T) -> Self {
        Self {
            state: Mutex::new(state),
            changed: Condvar::new(),
            notify: Notify::new(),
        }
    }

    /// The state; a panic while it was held leaves it usable (it holds counters only).
    pub(super) fn lock(&self) -> MutexGuard<'_, T> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The state, taken out.
    #[cfg(test)]
    pub(super) fn into_inner(self) -> T {
        self.state.into_inner().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes every waiter to try again.
    pub(super) fn wake(&self) {
        self.changed.notify_all();
        self.notify.notify_waiters();
    }

    /// Wakes one waiter of each kind (one thing was freed): no stampede of hundreds of waiters
    /// for one permit. A wake that finds nothing, or is lost to a cancelled waiter, is made up
    /// by the waiters' periodic look.
    pub(super) fn wake_one(&self) {
        self.changed.notify_one();
        self.notify.notify_one();
    }

    /// Blocks the thread until `attempt` is ready; `None` once `cancel` is set.
    pub(super) fn wait_blocking<R>(
        &self,
        cancel: &AtomicBool,
        mut attempt: impl FnMut(&mut T, Instant) -> Try<R>,
    ) -> Option<R> {
        let mut state = self.lock();
        loop {
            if cancel.load(Ordering::Relaxed) {
                return None;
            }
            match attempt(&mut state, Instant::now()) {
                Try::Ready(result) => return Some(result),
                Try::Wait(wait) => {
                    let wait = wait.unwrap_or(CANCEL_POLL).min(CANCEL_POLL);
                    state = self
                        .changed
                        .wait_timeout(state, wait)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            }
        }
    }

    /// Waits on the event loop until `attempt` is ready; `None` once `cancel` is set.
    pub(super) async fn wait<R>(
        &self,
        cancel: &AtomicBool,
        mut attempt: impl FnMut(&mut T, Instant) -> Try<R>,
    ) -> Option<R> {
        loop {
            if cancel.load(Ordering::Relaxed) {
                return None;
            }
            // Registered before the try, so a wake between the try and the wait is not lost.
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let wait = match attempt(&mut self.lock(), Instant::now()) {
                Try::Ready(result) => return Some(result),
                Try::Wait(wait) => wait.unwrap_or(CANCEL_POLL).min(CANCEL_POLL),
            };
            tokio::select! {
                () = notified => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}
