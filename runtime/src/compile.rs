//! Compiling off the async workers: a component's compilation (Cranelift, many seconds
//! for a large component) runs on threads of its own, at a lower CPU priority, so that
//! the tokio workers keep answering calls and requests while it runs.
//!
//! Each compilation gets its own small rayon pool (wasmtime compiles a component's
//! functions in parallel on the current rayon pool): two compilations never queue
//! behind each other's functions, so a small connector loaded next to a heavy one is
//! ready long before it. The pool's threads run at [`NICENESS`]: when a worker has a
//! call to run, the scheduler gives it the core.

use std::sync::Arc;

use wasmtime::component::Component;

use super::cache::sha256_hex;
use super::componentize::{componentize, is_core_module};
use super::{LoadError, Runtime, SMALL_MEMORIES, initial_memory_bytes};

/// The nice value (Unix) of compiling threads: a compilation takes what CPU the
/// workers leave.
pub(crate) const NICENESS: i32 = 10;

/// A compiled component, and which of the runtime's pools it belongs to.
pub(crate) struct Compiled {
    /// The sha256 of the bytes given.
    pub sha256: String,
    /// True for the `large` pool.
    pub large: bool,
    /// The component, of that pool's engine.
    pub component: Component,
    /// True when it came from the compile cache.
    pub cached: bool,
}

impl Runtime {
    /// Hashes, componentizes (a core module), compiles or takes from the cache: every
    /// CPU-heavy step of a load, on compiling threads while the caller's task waits.
    pub(crate) async fn compile(self: &Arc<Self>, bytes: &[u8]) -> Result<Compiled, LoadError> {
        let runtime = self.clone();
        let bytes = bytes.to_vec();
        let compiled = tokio::task::spawn_blocking(move || {
            on_compiling_threads(|| runtime.compile_now(&bytes))
        });
        match compiled.await {
            Ok(result) => result,
            Err(e) => Err(LoadError::Invalid(format!("the compilation stopped: {e}"))),
        }
    }

    fn compile_now(&self, bytes: &[u8]) -> Result<Compiled, LoadError> {
        let sha256 = sha256_hex(bytes);
        // A core module's memories are its component's (componentizing adds none), so
        // the pool, and a cached artifact, are found before the costly componentizing.
        let large = initial_memory_bytes(bytes) > SMALL_MEMORIES;
        let pool = if large { &self.large } else { &self.small };
        let compiled = |component, cached| Compiled {
            sha256: sha256.clone(),
            large,
            component,
            cached,
        };
        if let Some(component) = pool
            .cache
            .as_ref()
            .and_then(|cache| cache.cached(&pool.engine, &sha256))
        {
            return Ok(compiled(component, true));
        }
        let componentized;
        let bytes = if is_core_module(bytes) {
            componentized = componentize(bytes)?;
            &componentized[..]
        } else {
            bytes
        };
        let component = match &pool.cache {
            Some(cache) => cache.compile(&pool.engine, &sha256, bytes),
            None => Component::new(&pool.engine, bytes),
        }
        .map_err(|e| LoadError::Invalid(format!("{e:#}")))?;
        Ok(compiled(component, false))
    }
}

/// Runs `f` on a rayon pool of its own whose threads run at [`NICENESS`] (one thread per
/// core); on the calling thread when no pool can be made.
fn on_compiling_threads<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("compile-{i}"))
        .start_handler(|_| lower_priority())
        .build();
    match pool {
        Ok(pool) => pool.install(f),
        Err(e) => {
            tracing::warn!(error = %e, "no compiling threads; compiling on a blocking thread");
            f()
        }
    }
}

/// Gives the calling thread (alone: on Linux the nice value is per thread) the nice
/// value [`NICENESS`]. Best effort: a refusal only costs the workers some latency.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `gettid` and `setpriority` take and return plain integers; they touch
        // no memory of ours.
        #[allow(unsafe_code)]
        let refused = unsafe {
            let tid = libc::gettid();
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, NICENESS) != 0
        };
        if refused {
            tracing::debug!("cannot lower the priority of a compiling thread");
        }
    }
}
