//! What a call's store holds: an empty WASI context, the memory limiter, the log tag.

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::v0_1::openconnectors::connector::logging as logging_0_1;
use super::bindings::v0_2::openconnectors::connector::logging;

/// Longest log line a connector may write; longer lines are cut.
const MAX_LOG_LINE: usize = 4096;

/// Per-call store data. Dropped with the store at the end of the call.
pub(crate) struct CallState {
    /// Built on first use: connectors that import only `logging` never pay for it.
    wasi: Option<WasiCtx>,
    table: ResourceTable,
    limiter: MemoryCap,
    key: std::sync::Arc<str>,
}

impl CallState {
    /// A state whose WASI grants nothing: no preopens, env, args, sockets or name lookup.
    pub(crate) fn new(key: std::sync::Arc<str>, memory_bytes: usize) -> Self {
        CallState {
            wasi: None,
            table: ResourceTable::new(),
            limiter: MemoryCap {
                limit: memory_bytes,
                hit: false,
                growths: 0,
                largest: 0,
            },
            key,
        }
    }

    /// The limiter, for `Store::limiter`.
    pub(crate) fn limiter(&mut self) -> &mut MemoryCap {
        &mut self.limiter
    }

    /// True when the guest asked for more memory than the cap.
    pub(crate) fn memory_exceeded(&self) -> bool {
        self.limiter.hit
    }

    /// The memory growths the call asked for: how many, and the largest size asked.
    pub(crate) fn memory_growths(&self) -> (u32, usize) {
        (self.limiter.growths, self.limiter.largest)
    }
}

/// Caps linear memory growth and remembers that the cap was hit.
pub(crate) struct MemoryCap {
    limit: usize,
    hit: bool,
    /// Memory growths asked for (instantiation's included) and the largest size asked.
    growths: u32,
    largest: usize,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.growths += 1;
        self.largest = self.largest.max(desired);
        if desired > self.limit {
            self.hit = true;
            wasmtime::bail!("memory limit of {} bytes exceeded", self.limit);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let ctx = self.wasi.get_or_insert_with(|| {
            WasiCtx::builder()
                .allow_tcp(false)
                .allow_udp(false)
                .allow_ip_name_lookup(false)
                .build()
        });
        WasiCtxView {
            ctx,
            table: &mut self.table,
        }
    }
}

/// How severe a connector's log line is, whatever its contract version.
#[derive(Clone, Copy)]
enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl CallState {
    /// Writes a connector's log line, cut to `MAX_LOG_LINE` bytes, tagged with its key.
    fn log_line(&self, level: Level, mut message: String) {
        if message.len() > MAX_LOG_LINE {
            let mut cut = MAX_LOG_LINE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        let key = &*self.key;
        match level {
            Level::Trace => tracing::trace!(connector = key, "{message}"),
            Level::Debug => tracing::debug!(connector = key, "{message}"),
            Level::Info => tracing::info!(connector = key, "{message}"),
            Level::Warn => tracing::warn!(connector = key, "{message}"),
            Level::Error => tracing::error!(connector = key, "{message}"),
        }
    }
}

impl logging::Host for CallState {
    fn log(&mut self, level: logging::Level, message: String) {
        let level = match level {
            logging::Level::Trace => Level::Trace,
            logging::Level::Debug => Level::Debug,
            logging::Level::Info => Level::Info,
            logging::Level::Warn => Level::Warn,
            logging::Level::Error => Level::Error,
        };
        self.log_line(level, message);
    }
}

impl logging_0_1::Host for CallState {
    fn log(&mut self, level: logging_0_1::Level, message: String) {
        let level = match level {
            logging_0_1::Level::Trace => Level::Trace,
            logging_0_1::Level::Debug => Level::Debug,
            logging_0_1::Level::Info => Level::Info,
            logging_0_1::Level::Warn => Level::Warn,
            logging_0_1::Level::Error => Level::Error,
        };
        self.log_line(level, message);
    }
}

impl super::bindings::v0_1::openconnectors::connector::types::Host for CallState {}
impl super::bindings::v0_2::openconnectors::connector::types::Host for CallState {}
