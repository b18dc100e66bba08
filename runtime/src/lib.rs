//! The WebAssembly runtime: one engine, connectors loaded from bytes, a fresh sandboxed
//! store per call.
//!
//! Architecture invariant: this crate knows nothing of HTTP or SQL, and depends on no crate
//! of the host (Cargo enforces it: its manifest names none). It turns bytes into
//! [`LoadedConnector`]s and runs calls under a CPU deadline, a memory cap and a timeout.

mod bindings;
mod cache;
mod compile;
mod componentize;
mod connector;
mod deadline;
mod error;
mod from_v0_1;
pub mod headers;
mod state;
pub mod types;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Engine, InstanceAllocationStrategy};

/// Wasmtime's engine and pool settings, re-exported for [`Runtime::with_pool`] and
/// [`Runtime::tuned`].
pub use wasmtime::{Config, Enabled, PoolingAllocationConfig, ProfilingStrategy};

pub use bindings::Contract;
pub use cache::{CacheKey, sha256_hex};
pub use connector::LoadedConnector;
pub use error::{CallError, LoadError};

use bindings::{v0_1, v0_2};
use cache::CompileCache;
use state::CallState;

/// Limits applied to every call into a connector.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Cap on each linear memory of a call's instance.
    pub memory_bytes: usize,
    /// CPU time a call may run before it is interrupted.
    pub cpu_deadline: Duration,
    /// Wall-clock time a call of a connector that imports WASI may take, host calls
    /// included. A connector whose imports are all synchronous runs nothing but its own
    /// code, bounded by `cpu_deadline` (its wall time also grows with the waits for a
    /// worker between its slices).
    pub call_timeout: Duration,
    /// How many instances may exist at once (pool slots).
    pub max_instances: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 64 << 20,
            cpu_deadline: Duration::from_secs(1),
            call_timeout: Duration::from_secs(2),
            max_instances: 256,
        }
    }
}

/// Changes to the host's engine settings, applied to both pools after its own (see
/// [`Runtime::tuned`]).
pub struct Tuning {
    /// Changes the pooling allocator's settings.
    pub pool: Box<dyn Fn(&mut PoolingAllocationConfig)>,
    /// Changes the engine's settings.
    pub config: Box<dyn Fn(&mut Config)>,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            pool: Box::new(|_| {}),
            config: Box::new(|_| {}),
        }
    }
}

/// Bytes of each linear memory kept resident between calls (see `Pool::new`).
const KEEP_RESIDENT: usize = 2 << 20;

/// The epoch tick: CPU deadlines are counted in these.
const EPOCH_TICK: Duration = Duration::from_millis(5);

/// A connector whose memories start at most this large runs in the [`Runtime`]'s `small`
/// pool; any other in its `large` pool.
const SMALL_MEMORIES: u64 = 256 << 10;

/// The engines (one per pool), linkers and compile caches, shared by every loaded
/// connector.
///
/// The two pools differ only in how a memory is reset after a call. The `small` pool
/// resets the whole memory, by memset and a copy of its image: for the 64 KiB of an SDK
/// connector (one page: a 16 KiB stack, its data and an arena) that costs less than
/// asking the kernel which pages the call dirtied (the PAGEMAP_SCAN ioctl), and takes no
/// kernel lock (`pool_ab` measured 2–4 % per
/// parse-webhook, within noise of ±5 % per run; the host under wrk gained 1–6 %). The
/// `large` pool asks the kernel and resets only the dirty pages, which is what a memory
/// of a megabyte or more (Rust's default 1 MiB stack, say) needs.
pub struct Runtime {
    small: Pool,
    large: Pool,
    limits: Limits,
    /// One permit per pool slot: calls beyond the pool wait for a slot instead of failing.
    /// (A spare instance, see [`Runtime::set_spare_instances`], holds one too.)
    slots: Arc<tokio::sync::Semaphore>,
    /// True when connectors of the `large` pool keep a spare instance.
    spares: std::sync::atomic::AtomicBool,
}

/// One engine with its pooling allocator, the linker and the compile cache for it.
struct Pool {
    engine: Engine,
    linker: Linker<CallState>,
    cache: Option<CompileCache>,
}

impl Pool {
    fn new(
        limits: &Limits,
        cache: Option<(&Path, &CacheKey)>,
        pagemap_scan: Enabled,
        tune: &Tuning,
    ) -> wasmtime::Result<Self> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(limits.max_instances)
            .total_memories(limits.max_instances)
            .total_tables(limits.max_instances * 4)
            .total_stacks(limits.max_instances)
            .total_core_instances(limits.max_instances * 16)
            .max_core_instances_per_component(32)
            .max_memories_per_component(4)
            .max_tables_per_component(8)
            .max_memory_size(limits.memory_bytes)
            // Reset a memory's first 2 MiB in place (memset and image copy), instead of
            // madvise + page faults on the next call.
            .linear_memory_keep_resident(KEEP_RESIDENT)
            // Connector tables are a few hundred entries: one page is reset by memset,
            // which is cheaper than asking the kernel which pages are dirty.
            .table_keep_resident(4096)
            .async_stack_keep_resident(64 << 10)
            // With the scan, only the pages a call dirtied are reset (where the kernel
            // has PAGEMAP_SCAN); without it, all of the memory's first 2 MiB.
            .pagemap_scan(pagemap_scan)
            // A slot whose reset needed no decommit goes straight back to the pool, so the
            // next call of the same connector reuses it while its pages are still in cache.
            // A batch would hold every freed slot (and its zero-length decommit) until the
            // batch is full, cycling calls through cold slots.
            .decommit_batch_size(1);
        (tune.pool)(&mut pool);
        let mut config = Config::new();
        config
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            .memory_init_cow(true)
            // Wasmtime's defaults for 64-bit hosts stay: a 4 GiB reservation per memory
            // plus guard pages, so the guest's loads and stores carry no bounds checks.
            // (This costs an mprotect on a call that grows memory and one when its slot is
            // reused; the SDK's arena keeps ordinary calls inside the initial memory.)
            .epoch_interruption(true)
            .wasm_component_model(true);
        (tune.config)(&mut config);
        let engine = Engine::new(&config)?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        v0_1::Connector::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
        v0_2::Connector::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;

        let cache = match cache {
            Some((dir, key)) => Some(CompileCache::open(&engine, dir, key.clone())?),
            None => None,
        };
        Ok(Pool {
            engine,
            linker,
            cache,
        })
    }
}

/// The initial size of all the memories a component's core modules define (0 for bytes
/// that do not parse: compiling them reports the error).
fn initial_memory_bytes(component: &[u8]) -> u64 {
    let mut total = 0u64;
    for payload in wasmparser::Parser::new(0).parse_all(component) {
        match payload {
            Ok(wasmparser::Payload::MemorySection(reader)) => {
                for memory in reader.into_iter().flatten() {
                    total = total.saturating_add(
                        memory.initial.saturating_mul(u64::from(memory.page_size())),
                    );
                }
            }
            Ok(_) => {}
            Err(_) => return 0,
        }
    }
    total
}

impl Runtime {
    /// Creates the runtime. With `cache`, a directory and a secret key, compiled
    /// components are cached in the directory, each with a MAC made with the key.
    pub fn new(limits: Limits, cache: Option<(&Path, &CacheKey)>) -> wasmtime::Result<Arc<Self>> {
        Self::with_pool(limits, cache, |_| {})
    }

    /// [`Runtime::new`] with the pools' configuration changed by `tune` after the host's
    /// own settings: for benchmarks that compare pool settings in one process.
    pub fn with_pool(
        limits: Limits,
        cache: Option<(&Path, &CacheKey)>,
        tune: impl Fn(&mut PoolingAllocationConfig) + 'static,
    ) -> wasmtime::Result<Arc<Self>> {
        Self::tuned(
            limits,
            cache,
            Tuning {
                pool: Box::new(tune),
                ..Tuning::default()
            },
        )
    }

    /// [`Runtime::new`] with the engines' and the pools' configurations changed by `tuning`
    /// after the host's own settings: for benchmarks that compare settings in one process.
    pub fn tuned(
        limits: Limits,
        cache: Option<(&Path, &CacheKey)>,
        tuning: Tuning,
    ) -> wasmtime::Result<Arc<Self>> {
        let small = Pool::new(&limits, cache, Enabled::No, &tuning)?;
        let large = Pool::new(&limits, cache, Enabled::Auto, &tuning)?;
        let weak = [small.engine.weak(), large.engine.weak()];
        std::thread::Builder::new()
            .name("epoch-ticker".into())
            .spawn(move || {
                loop {
                    for engine in &weak {
                        match engine.upgrade() {
                            Some(engine) => engine.increment_epoch(),
                            None => return,
                        }
                    }
                    std::thread::sleep(EPOCH_TICK);
                }
            })?;

        Ok(Arc::new(Runtime {
            small,
            large,
            slots: Arc::new(tokio::sync::Semaphore::new(limits.max_instances as usize)),
            spares: std::sync::atomic::AtomicBool::new(false),
            limits,
        }))
    }

    /// Waits for a free instance slot; held for the length of one call.
    pub(crate) async fn slot(&self) -> tokio::sync::OwnedSemaphorePermit {
        self.slots
            .clone()
            .acquire_owned()
            .await
            .expect("the slot semaphore is never closed")
    }

    /// A free instance slot for a spare instance, if taking it leaves at least half of
    /// the slots free: spares never take the slots calls wait for.
    pub(crate) fn spare_slot(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        if self.slots.available_permits() <= (self.limits.max_instances as usize).div_ceil(2) {
            return None;
        }
        self.slots.clone().try_acquire_owned().ok()
    }

    /// Off by default. When on, each connector of the `large` pool (memories over
    /// 256 KiB at start: componentize-py and componentize-js builds) keeps one spare
    /// instance, made in the background after each call, so that the next call skips the
    /// instantiation; and the instance of a finished call is dropped (its pool slot reset)
    /// in the background, after the answer. Every call still runs in an instance no call
    /// ran in before: a spare is used once and discarded. The CPU work is the same; the
    /// latency of a call that finds its spare ready is lower. A spare holds a pool slot
    /// (and its memory) while it waits, and is made only while more than half of the
    /// slots are free.
    pub fn set_spare_instances(&self, on: bool) {
        self.spares.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn spare_instances(&self) -> bool {
        self.spares.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The limits applied to every call.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Compiles (or takes from the cache) and links a connector, then asks it for its info.
    /// `origin` names the source in errors and logs (usually the file name).
    pub async fn load(
        self: &Arc<Self>,
        origin: &str,
        bytes: &[u8],
    ) -> Result<Arc<LoadedConnector>, LoadError> {
        // Off the async workers: a large component compiles for seconds.
        let compile::Compiled {
            sha256,
            large,
            component,
            cached,
        } = self.compile(bytes).await?;
        let pool = if large { &self.large } else { &self.small };

        let ty = component.component_type();
        let names: Vec<String> = ty
            .exports(&pool.engine)
            .map(|(n, _)| n.to_string())
            .collect();
        let version = bindings::exported_version(names.iter().map(String::as_str))
            .ok_or(LoadError::NotAConnector)?;
        if !bindings::is_supported(&version) {
            return Err(LoadError::UnsupportedVersion {
                found: version,
                supported: bindings::SUPPORTED
                    .iter()
                    .map(|v| format!("{v}.x"))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        let pre = pool
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let connector =
            LoadedConnector::new(self.clone(), origin, sha256, version, cached, large, pre).await?;
        tracing::debug!(origin, key = %connector.info().key, cached, "connector loaded");
        Ok(Arc::new(connector))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(pages: u64) -> wasm_encoder::Module {
        let mut memories = wasm_encoder::MemorySection::new();
        memories.memory(wasm_encoder::MemoryType {
            minimum: pages,
            maximum: None,
            memory64: false,
            shared: false,
            page_size_log2: None,
        });
        let mut module = wasm_encoder::Module::new();
        module.section(&memories);
        module
    }

    #[test]
    fn initial_memory_counts_the_memories_of_nested_modules() {
        assert_eq!(initial_memory_bytes(&module(2).finish()), 128 << 10);
        let mut component = wasm_encoder::Component::new();
        component.section(&wasm_encoder::ModuleSection(&module(2)));
        component.section(&wasm_encoder::ModuleSection(&module(17)));
        assert_eq!(initial_memory_bytes(&component.finish()), 19 << 16);
        assert_eq!(initial_memory_bytes(b"not wasm"), 0);
    }

    #[test]
    fn sdk_sized_memories_go_to_the_small_pool_and_a_default_stack_does_not() {
        // The SDK's connectors start with 1 page; Rust's default 1 MiB stack alone is 16.
        assert!(initial_memory_bytes(&module(1).finish()) <= SMALL_MEMORIES);
        assert!(initial_memory_bytes(&module(4).finish()) <= SMALL_MEMORIES);
        assert!(initial_memory_bytes(&module(17).finish()) > SMALL_MEMORIES);
    }
}
