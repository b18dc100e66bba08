//! The CPU deadline of a call, kept without holding a tokio worker.
//!
//! Every call runs on a fiber (`call_async`). At each epoch tick the guest is
//! interrupted and this module's callback decides: if the guest has run for its whole
//! CPU budget, the call traps with `Trap::Interrupt` (a [`CallError::CpuDeadline`]);
//! otherwise the fiber yields to the tokio scheduler (`yield_now`, so the worker polls
//! its I/O and runs other tasks before the call resumes). A guest that loops therefore
//! costs its worker at most one tick (5 ms) at a time, and the API stays responsive.
//!
//! The budget counts the time the guest ran, not the time it waited for a worker after
//! a yield: wasmtime sets the next deadline after the yield has resumed, and the resume
//! time is recorded by the yield itself. (For a connector that imports WASI, the time it
//! spends suspended in an async host call within a tick counts too: a conservative
//! error. Instantiation counts from when the budget was made, just before it.)
//!
//! [`CallError::CpuDeadline`]: crate::CallError::CpuDeadline

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use wasmtime::{StoreContextMut, UpdateDeadline};

/// The epoch-deadline callback of one call whose guest may run for `budget`.
pub(crate) fn cpu_budget<T>(
    budget: Duration,
) -> impl FnMut(StoreContextMut<'_, T>) -> wasmtime::Result<UpdateDeadline> + Send + Sync + 'static
{
    let start = Instant::now();
    let mut ran = Duration::ZERO;
    // Nanoseconds after `start` at which the guest last resumed; made on the first
    // yield, so a call that ends within its first tick allocates nothing.
    let mut resumed: Option<Arc<AtomicU64>> = None;
    move |_| {
        let now = start.elapsed();
        let since = resumed.as_ref().map_or(Duration::ZERO, |r| {
            Duration::from_nanos(r.load(Ordering::Relaxed))
        });
        ran += now.saturating_sub(since);
        if ran >= budget {
            return Ok(UpdateDeadline::Interrupt);
        }
        let mark = resumed
            .get_or_insert_with(|| Arc::new(AtomicU64::new(0)))
            .clone();
        Ok(UpdateDeadline::YieldCustom(
            1,
            Box::pin(async move {
                tokio::task::yield_now().await;
                let at = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
                mark.store(at, Ordering::Relaxed);
            }),
        ))
    }
}
