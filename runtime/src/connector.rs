//! A loaded connector and the calls into it.

use std::sync::Arc;

use wasmtime::Store;
use wasmtime::component::{
    ComponentExportIndex, ComponentNamedList, Instance, InstancePre, Lift, Lower, TypedFunc,
};

use super::Runtime;
use super::bindings::Contract;
use super::bindings::v0_1::openconnectors::connector::types as v0_1;
use super::error::{CallError, LoadError};
use super::state::CallState;
use super::types::{
    AuthStep, ConnectorError, ConnectorInfo, Context, Credentials, EventObject, HttpRequest,
    HttpResponse, PollPage, PollTarget, PollWindow, WebhookRequest,
};

/// A connector ready to be called: its pre-linked component and the info it gave at load.
///
/// Cheap to share: hold an `Arc` for the length of a call, and a hot swap in the registry
/// does not disturb calls in flight.
pub struct LoadedConnector {
    runtime: Arc<Runtime>,
    pre: InstancePre<CallState>,
    contract: Contract,
    exports: ApiExports,
    key: Arc<str>,
    origin: String,
    sha256: String,
    version: String,
    cached: bool,
    imports: Vec<String>,
    /// True when every import is synchronous, so instantiation needs no fiber.
    sync: bool,
    info: ConnectorInfo,
    /// The spare instance of a connector of the `large` pool (see
    /// [`Runtime::set_spare_instances`]); `None` for the `small` pool's.
    spares: Option<Arc<Spares>>,
}

/// A fresh instance made ahead of a call, with the pool slot it holds.
struct Spare {
    slot: tokio::sync::OwnedSemaphorePermit,
    store: Store<CallState>,
    instance: Instance,
}

/// A connector's spare instance and what a background task needs to make the next one.
struct Spares {
    runtime: Arc<Runtime>,
    pre: InstancePre<CallState>,
    key: Arc<str>,
    ready: std::sync::Mutex<Option<Spare>>,
    /// True while a task makes a spare.
    filling: std::sync::atomic::AtomicBool,
}

impl Spares {
    /// Makes a spare instance unless one is ready or being made, or too few pool slots are
    /// free (a spare never makes a call wait for a slot: `Runtime::spare_slot`). A spare
    /// that fails to instantiate is dropped: the next call instantiates its own and
    /// reports the error.
    async fn fill(self: Arc<Self>) {
        use std::sync::atomic::Ordering;
        if !self.runtime.spare_instances() || self.filling.swap(true, Ordering::AcqRel) {
            return;
        }
        let empty = self.ready.lock().expect("never poisoned").is_none();
        if let Some(slot) = empty.then(|| self.runtime.spare_slot()).flatten() {
            let mut store = new_store(&self.runtime, self.pre.engine(), &self.key);
            if let Ok(instance) = self.pre.instantiate_async(&mut store).await {
                *self.ready.lock().expect("never poisoned") = Some(Spare {
                    slot,
                    store,
                    instance,
                });
            }
        }
        self.filling.store(false, Ordering::Release);
    }
}

/// A fresh store for one call, with the memory cap and the CPU deadline of its
/// instantiation set.
fn new_store(runtime: &Runtime, engine: &wasmtime::Engine, key: &Arc<str>) -> Store<CallState> {
    let limits = runtime.limits();
    let mut store = Store::new(engine, CallState::new(key.clone(), limits.memory_bytes));
    store.limiter(|s| s.limiter());
    let ticks = (limits.cpu_deadline.as_millis() / super::EPOCH_TICK.as_millis()).max(1) as u64;
    store.set_epoch_deadline(ticks);
    store.epoch_deadline_trap();
    store
}

impl std::fmt::Debug for LoadedConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedConnector")
            .field("key", &self.key)
            .field("origin", &self.origin)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// Where each function of the `api` interface is in the component, found once at load.
///
/// Calls look their function up by index and skip the type check the generated bindings
/// would repeat on every instantiation; `LoadedConnector::new` type-checks every function
/// once, with the exact signatures the calls use.
struct ApiExports {
    info: ComponentExportIndex,
    validate_config: ComponentExportIndex,
    webhook: WebhookExports,
    build_auth_request: ComponentExportIndex,
    parse_auth_response: ComponentExportIndex,
    build_poll_request: ComponentExportIndex,
    parse_poll_response: ComponentExportIndex,
}

/// The webhook functions, which 0.2 made one.
enum WebhookExports {
    /// 0.1's `verify-webhook` and `parse-webhook`.
    Split {
        verify: ComponentExportIndex,
        parse: ComponentExportIndex,
    },
    /// 0.2's `handle-webhook`.
    Handle(ComponentExportIndex),
}

impl ApiExports {
    fn find(
        component: &wasmtime::component::Component,
        interface: &str,
        contract: Contract,
    ) -> Result<Self, LoadError> {
        let iface = component
            .get_export_index(None, interface)
            .ok_or(LoadError::NotAConnector)?;
        let f = |name: &str| {
            component
                .get_export_index(Some(&iface), name)
                .ok_or_else(|| LoadError::Link(format!("`{interface}` exports no `{name}`")))
        };
        Ok(ApiExports {
            info: f("info")?,
            validate_config: f("validate-config")?,
            webhook: match contract {
                Contract::V0_1 => WebhookExports::Split {
                    verify: f("verify-webhook")?,
                    parse: f("parse-webhook")?,
                },
                Contract::V0_2 => WebhookExports::Handle(f("handle-webhook")?),
            },
            build_auth_request: f("build-auth-request")?,
            parse_auth_response: f("parse-auth-response")?,
            build_poll_request: f("build-poll-request")?,
            parse_poll_response: f("parse-poll-response")?,
        })
    }
}

type ConnResult<T> = (Result<T, super::types::ConnectorError>,);
type ValidateP<'a> = (&'a [(String, String)],);
type WebhookP<'a> = (&'a Context, &'a WebhookRequest);
type AuthP<'a> = (&'a Context, &'a AuthStep);
type AuthResponseP<'a> = (&'a Context, &'a AuthStep, &'a HttpResponse);
type PollP<'a> = (&'a Context, &'a PollTarget, PollWindow, Option<&'a str>);
type PollResponseP<'a> = (
    &'a Context,
    &'a PollTarget,
    Option<&'a str>,
    &'a HttpResponse,
);

/// The typed function at `index`, unchecked.
///
/// # Safety
/// `P` and `R` must be the signature `LoadedConnector::check_signatures` checked for
/// `index` on this component.
unsafe fn typed<P, R>(
    instance: &Instance,
    store: &mut Store<CallState>,
    index: &ComponentExportIndex,
) -> wasmtime::Result<TypedFunc<P, R>>
where
    P: ComponentNamedList + Lower,
    R: ComponentNamedList + Lift,
{
    let func = instance
        .get_func(&mut *store, index)
        .ok_or_else(|| wasmtime::format_err!("the export checked at load is gone"))?;
    // SAFETY: the caller passes the signature checked at load for this index.
    Ok(unsafe { TypedFunc::new_unchecked(func) })
}

impl LoadedConnector {
    pub(super) async fn new(
        runtime: Arc<Runtime>,
        origin: &str,
        sha256: String,
        version: String,
        cached: bool,
        large: bool,
        pre: InstancePre<CallState>,
    ) -> Result<Self, LoadError> {
        let contract = Contract::of(&version).ok_or(LoadError::NotAConnector)?;
        let component = pre.component();
        let ty = component.component_type();
        let engine = pre.engine();
        let imports: Vec<String> = ty.imports(engine).map(|(n, _)| n.to_string()).collect();
        let sync = imports.iter().all(|i| !i.starts_with("wasi:"));
        let interface = ty
            .exports(engine)
            .map(|(n, _)| n.to_string())
            .find(|n| n.starts_with(super::bindings::API_INTERFACE))
            .ok_or(LoadError::NotAConnector)?;
        let exports = ApiExports::find(component, &interface, contract)?;
        let mut connector = LoadedConnector {
            runtime,
            pre,
            contract,
            exports,
            key: Arc::from(origin),
            origin: origin.to_string(),
            sha256,
            version,
            cached,
            imports,
            sync,
            info: ConnectorInfo::unknown(),
            spares: None,
        };
        connector.check_signatures().await?;
        let info = match contract {
            // SAFETY: the signatures checked by `check_signatures`.
            Contract::V0_1 => super::from_v0_1::info(
                unsafe { connector.call::<(), (v0_1::ConnectorInfo,)>(|e| &e.info, ()) }
                    .await?
                    .0,
            ),
            Contract::V0_2 => {
                unsafe { connector.call::<(), (ConnectorInfo,)>(|e| &e.info, ()) }
                    .await?
                    .0
            }
        };
        if info.key.is_empty()
            || !info
                .key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(LoadError::Invalid(format!(
                "info() returned the key {:?}; keys are non-empty ASCII letters, digits, `-` and `_`",
                info.key
            )));
        }
        connector.key = Arc::from(info.key.as_str());
        connector.info = info;
        if large {
            connector.spares = Some(Arc::new(Spares {
                runtime: connector.runtime.clone(),
                pre: connector.pre.clone(),
                key: connector.key.clone(),
                ready: std::sync::Mutex::new(None),
                filling: std::sync::atomic::AtomicBool::new(false),
            }));
        }
        Ok(connector)
    }

    /// What the connector said about itself at load.
    pub fn info(&self) -> &ConnectorInfo {
        &self.info
    }

    /// The element key, e.g. `ecwid`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Where it was loaded from (the file name in the connectors directory).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Hex sha256 of the component bytes.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The contract version the connector was built for.
    pub fn contract_version(&self) -> &str {
        &self.version
    }

    /// The contract track the connector speaks.
    pub fn contract(&self) -> Contract {
        self.contract
    }

    /// True when the host checks the types and the required keys of the connector's
    /// configuration (contract 0.2 on); a 0.1 connector's keys are untyped and it checks
    /// its own.
    pub fn typed_config(&self) -> bool {
        self.contract >= Contract::V0_2
    }

    /// The request headers a webhook hands this connector: from 0.2, without the hop-by-hop
    /// ones and `content-length`; 0.1 gets them all, as 0.1 said.
    pub fn webhook_headers(&self, headers: Vec<(String, String)>) -> Vec<(String, String)> {
        match self.contract {
            Contract::V0_1 => headers,
            Contract::V0_2 => super::headers::without_hop_by_hop(headers),
        }
    }

    /// True when the compiled code came from the cache rather than a fresh compilation.
    pub fn from_cache(&self) -> bool {
        self.cached
    }

    /// The interfaces the component imports (the host links WASI with nothing granted).
    pub fn imports(&self) -> &[String] {
        &self.imports
    }

    /// A fresh store for one call, with the memory cap and the CPU deadline of its
    /// instantiation set.
    fn store(&self) -> Store<CallState> {
        new_store(&self.runtime, self.pre.component().engine(), &self.key)
    }

    /// A call's pool slot and store, and its instance when a spare was ready (then under a
    /// CPU budget that counts from here: the spare's instantiation is not the call's).
    async fn begin(
        &self,
    ) -> (
        tokio::sync::OwnedSemaphorePermit,
        Store<CallState>,
        Option<Instance>,
    ) {
        if let Some(spares) = &self.spares {
            let spare = spares.ready.lock().expect("never poisoned").take();
            if let Some(Spare {
                slot,
                mut store,
                instance,
            }) = spare
            {
                store.set_epoch_deadline(1);
                store.epoch_deadline_callback(super::deadline::cpu_budget(
                    self.runtime.limits().cpu_deadline,
                ));
                return (slot, store, Some(instance));
            }
        }
        (self.runtime.slot().await, self.store(), None)
    }

    /// Ends a call: with spare instances on, drops its store (which resets its pool slot)
    /// and makes the next spare in the background, after the answer; otherwise drops the
    /// store now.
    fn end(&self, slot: tokio::sync::OwnedSemaphorePermit, store: Store<CallState>) {
        match &self.spares {
            Some(spares) if self.runtime.spare_instances() => {
                let spares = spares.clone();
                tokio::spawn(async move {
                    drop(store);
                    drop(slot);
                    spares.fill().await;
                });
            }
            _ => drop((store, slot)),
        }
    }

    fn instantiate_error(&self, e: wasmtime::Error) -> CallError {
        CallError::Instantiate {
            key: self.key.to_string(),
            message: format!("{e:#}"),
        }
    }

    /// A fresh instance in `store`, ready for its calls, under the epoch callback of
    /// [`cpu_budget`](super::deadline::cpu_budget), so the calls yield to the scheduler at
    /// every tick. Instantiated on the caller's stack when every import is synchronous (no
    /// start function of an SDK connector waits on anything; the store's plain deadline
    /// bounds it), on a fiber under the callback otherwise. The instantiation's time counts
    /// against the call's one budget.
    async fn instantiate(&self, store: &mut Store<CallState>) -> Result<Instance, CallError> {
        let pre = &self.pre;
        // One budget for the instantiation and the calls: it counts from here.
        let budget = super::deadline::cpu_budget(self.runtime.limits().cpu_deadline);
        let instance = if self.sync {
            // Off a fiber nothing can yield: the plain deadline of `store()` bounds the
            // start-up code (an SDK connector has none), and its time counts in `budget`.
            let instance = pre.instantiate(&mut *store);
            store.set_epoch_deadline(1);
            store.epoch_deadline_callback(budget);
            instance
        } else {
            store.set_epoch_deadline(1);
            store.epoch_deadline_callback(budget);
            pre.instantiate_async(&mut *store).await
        }
        .map_err(|e| self.instantiate_error(e))?;
        Ok(instance)
    }

    /// Runs `call` under the wall-clock call timeout, for a connector that imports WASI.
    /// One whose imports are all synchronous runs nothing but its own code, which its CPU
    /// deadline bounds: a timer per call would cost more than it guards.
    async fn timed<T>(
        &self,
        call: impl Future<Output = Result<T, CallError>>,
    ) -> Result<T, CallError> {
        if self.sync {
            return call.await;
        }
        let timeout = self.runtime.limits().call_timeout;
        tokio::time::timeout(timeout, call)
            .await
            .map_err(|_| CallError::Timeout {
                key: self.key.to_string(),
                limit: timeout,
            })?
    }

    /// Calls the `api` function at `pick(exports)` with `params` in a fresh instance, under
    /// the CPU deadline, the memory cap and the timeout.
    ///
    /// The call runs on a fiber that yields to the tokio scheduler at every epoch tick
    /// (`deadline`), so a guest that runs long never holds a worker thread for more than
    /// a tick; the CPU deadline counts only the time the guest ran, the call timeout (of
    /// a connector that imports WASI) all of it.
    ///
    /// # Safety
    /// `P` and `R` must be the signature `check_signatures` checked for that function.
    async unsafe fn call<P, R>(
        &self,
        pick: fn(&ApiExports) -> &ComponentExportIndex,
        params: P,
    ) -> Result<R, CallError>
    where
        P: ComponentNamedList + Lower + Send + Sync,
        R: ComponentNamedList + Lift + Send + Sync + 'static,
    {
        let (slot, mut store, spare) = self.begin().await;
        let index = pick(&self.exports);
        let result = self
            .timed(async {
                let instance = match spare {
                    Some(instance) => instance,
                    None => self.instantiate(&mut store).await?,
                };
                // SAFETY: the caller passes the signature checked at load.
                let f = unsafe { typed::<P, R>(&instance, &mut store, index) }
                    .map_err(|e| self.classify(e, &store))?;
                f.call_async(&mut store, params)
                    .await
                    .map_err(|e| self.classify(e, &store))
            })
            .await;
        self.end(slot, store);
        result
    }

    /// [`LoadedConnector::call`] for the functions that answer `result<T, connector-error>`.
    ///
    /// # Safety
    /// As for `call`.
    async unsafe fn call_api<P, T>(
        &self,
        pick: fn(&ApiExports) -> &ComponentExportIndex,
        params: P,
    ) -> Result<T, CallError>
    where
        P: ComponentNamedList + Lower + Send + Sync,
        T: Lift + Send + Sync + 'static,
    {
        // SAFETY: forwarded to the caller.
        let (r,) = unsafe { self.call::<P, ConnResult<T>>(pick, params) }.await?;
        r.map_err(CallError::Connector)
    }

    fn classify(&self, error: wasmtime::Error, store: &Store<CallState>) -> CallError {
        let key = self.key.to_string();
        let limits = self.runtime.limits();
        if store.data().memory_exceeded() {
            return CallError::OutOfMemory {
                key,
                limit: limits.memory_bytes,
            };
        }
        if let Some(wasmtime::Trap::Interrupt) = error.downcast_ref::<wasmtime::Trap>() {
            return CallError::CpuDeadline {
                key,
                limit: limits.cpu_deadline,
            };
        }
        CallError::Trap {
            key,
            message: format!("{error:#}"),
        }
    }

    /// Type-checks every `api` function once, with the signatures the calls use, so that
    /// the calls may skip the check.
    async fn check_signatures(&self) -> Result<(), LoadError> {
        fn check<P, R>(
            inst: &Instance,
            store: &mut Store<CallState>,
            index: &ComponentExportIndex,
        ) -> wasmtime::Result<()>
        where
            P: ComponentNamedList + Lower,
            R: ComponentNamedList + Lift,
        {
            inst.get_typed_func::<P, R>(&mut *store, index).map(|_| ())
        }
        let mut store = self.store();
        let pre = &self.pre;
        let inst = if self.sync {
            pre.instantiate(&mut store)
        } else {
            pre.instantiate_async(&mut store).await
        }
        .map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let ex = &self.exports;
        let store = &mut store;
        let inst = &inst;
        let checked = (|| {
            match self.contract {
                Contract::V0_1 => check::<(), (v0_1::ConnectorInfo,)>(inst, store, &ex.info)?,
                Contract::V0_2 => check::<(), (ConnectorInfo,)>(inst, store, &ex.info)?,
            }
            check::<ValidateP<'_>, ConnResult<()>>(inst, store, &ex.validate_config)?;
            match &ex.webhook {
                WebhookExports::Split { verify, parse } => {
                    check::<WebhookP<'_>, ConnResult<()>>(inst, store, verify)?;
                    check::<WebhookP<'_>, ConnResult<Vec<v0_1::EventObject>>>(inst, store, parse)?;
                }
                WebhookExports::Handle(handle) => {
                    check::<WebhookP<'_>, ConnResult<Vec<EventObject>>>(inst, store, handle)?;
                }
            }
            check::<AuthP<'_>, ConnResult<Option<HttpRequest>>>(
                inst,
                store,
                &ex.build_auth_request,
            )?;
            check::<AuthResponseP<'_>, ConnResult<Credentials>>(
                inst,
                store,
                &ex.parse_auth_response,
            )?;
            check::<PollP<'_>, ConnResult<HttpRequest>>(inst, store, &ex.build_poll_request)?;
            check::<PollResponseP<'_>, ConnResult<PollPage>>(inst, store, &ex.parse_poll_response)
        })();
        checked.map_err(|e| LoadError::Link(format!("the api functions do not type-check: {e:#}")))
    }

    /// `validate_config` timed by phase, for benchmarks: the store's creation, the
    /// instantiation, the call, and the store's drop (which returns the instance's memories
    /// and tables to the pool and resets them).
    #[doc(hidden)]
    pub async fn validate_config_phases(
        &self,
        config: &[(String, String)],
    ) -> Result<([std::time::Duration; 4], (u32, usize)), CallError> {
        use std::time::Instant;
        let _slot = self.runtime.slot().await;
        let t0 = Instant::now();
        let mut store = self.store();
        let t1 = Instant::now();
        let instance = self.instantiate(&mut store).await?;
        let t2 = Instant::now();
        // SAFETY: the signature checked by `check_signatures`.
        let f = unsafe {
            typed::<ValidateP<'_>, ConnResult<()>>(
                &instance,
                &mut store,
                &self.exports.validate_config,
            )
        }
        .map_err(|e| self.classify(e, &store))?;
        let answer = f.call_async(&mut store, (config,)).await;
        self.answer(answer, &store)?;
        let t3 = Instant::now();
        let growths = store.data().memory_growths();
        drop(store);
        let t4 = Instant::now();
        Ok(([t1 - t0, t2 - t1, t3 - t2, t4 - t3], growths))
    }

    /// Checks an instance configuration.
    pub async fn validate_config(&self, config: &[(String, String)]) -> Result<(), CallError> {
        // SAFETY: the signature checked by `check_signatures`.
        unsafe { self.call_api::<ValidateP<'_>, ()>(|e| &e.validate_config, (config,)) }.await
    }

    /// Verifies a webhook's vendor signature. A 0.2 connector verifies and parses in one
    /// call: its verification failed when it answers `unauthorized`, and any other answer
    /// means the signature verified.
    pub async fn verify_webhook(
        &self,
        ctx: &Context,
        request: &WebhookRequest,
    ) -> Result<(), CallError> {
        match self.verify_and_parse_webhook(ctx, request).await {
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Parses a webhook into standardized events (a 0.2 connector verifies it too).
    pub async fn parse_webhook(
        &self,
        ctx: &Context,
        request: &WebhookRequest,
    ) -> Result<Vec<EventObject>, CallError> {
        match &self.exports.webhook {
            WebhookExports::Split { .. } => {
                // SAFETY: the signature checked by `check_signatures`.
                let events = unsafe {
                    self.call_api::<WebhookP<'_>, Vec<v0_1::EventObject>>(
                        |e| match &e.webhook {
                            WebhookExports::Split { parse, .. } => parse,
                            WebhookExports::Handle(handle) => handle,
                        },
                        (ctx, request),
                    )
                }
                .await?;
                Ok(super::from_v0_1::events(events))
            }
            WebhookExports::Handle(_) => self.verify_and_parse_webhook(ctx, request).await?,
        }
    }

    /// Verifies a webhook and, if it verifies, parses it: both in one fresh instance, under
    /// one CPU deadline (0.1's two calls; 0.2's one `handle-webhook`).
    ///
    /// The outer error is the verification's (or the instance's); the inner result is the
    /// parse's.
    pub async fn verify_and_parse_webhook(
        &self,
        ctx: &Context,
        request: &WebhookRequest,
    ) -> Result<Result<Vec<EventObject>, CallError>, CallError> {
        let (slot, mut store, spare) = self.begin().await;
        let params: WebhookP<'_> = (ctx, request);
        let result = self
            .timed(async {
                let instance = match spare {
                    Some(instance) => instance,
                    None => self.instantiate(&mut store).await?,
                };
                match &self.exports.webhook {
                    WebhookExports::Split { verify, parse } => {
                        // SAFETY: the signatures checked at load for these indexes.
                        let verify = unsafe {
                            typed::<WebhookP<'_>, ConnResult<()>>(&instance, &mut store, verify)
                        }
                        .map_err(|e| self.classify(e, &store))?;
                        // SAFETY: as above.
                        let parse = unsafe {
                            typed::<WebhookP<'_>, ConnResult<Vec<v0_1::EventObject>>>(
                                &instance, &mut store, parse,
                            )
                        }
                        .map_err(|e| self.classify(e, &store))?;
                        let verified = verify.call_async(&mut store, params).await;
                        self.answer(verified, &store)?;
                        let parsed = parse.call_async(&mut store, params).await;
                        Ok(self.answer(parsed, &store).map(super::from_v0_1::events))
                    }
                    WebhookExports::Handle(handle) => {
                        // SAFETY: the signature checked at load for this index.
                        let handle = unsafe {
                            typed::<WebhookP<'_>, ConnResult<Vec<EventObject>>>(
                                &instance, &mut store, handle,
                            )
                        }
                        .map_err(|e| self.classify(e, &store))?;
                        let handled = handle.call_async(&mut store, params).await;
                        // The connector's own answers but `unauthorized` are the parse's; an
                        // instance failure (a trap, the deadline) is the call's, as a failure
                        // of 0.1's first call is.
                        match self.answer(handled, &store) {
                            Err(CallError::Connector(ConnectorError::Unauthorized(m))) => {
                                Err(CallError::Connector(ConnectorError::Unauthorized(m)))
                            }
                            Err(e @ CallError::Connector(_)) => Ok(Err(e)),
                            Err(e) => Err(e),
                            Ok(events) => Ok(Ok(events)),
                        }
                    }
                }
            })
            .await;
        self.end(slot, store);
        result
    }

    /// A call's outcome as the connector's answer or the classified failure.
    fn answer<T>(
        &self,
        outcome: wasmtime::Result<ConnResult<T>>,
        store: &Store<CallState>,
    ) -> Result<T, CallError> {
        match outcome {
            Ok((answer,)) => answer.map_err(CallError::Connector),
            Err(e) => Err(self.classify(e, store)),
        }
    }

    /// Builds the request of an authentication step, if the connector has one.
    pub async fn build_auth_request(
        &self,
        ctx: &Context,
        step: &AuthStep,
    ) -> Result<Option<HttpRequest>, CallError> {
        // SAFETY: the signature checked by `check_signatures`.
        unsafe {
            self.call_api::<AuthP<'_>, Option<HttpRequest>>(|e| &e.build_auth_request, (ctx, step))
        }
        .await
    }

    /// Reads the answer to an authentication step.
    pub async fn parse_auth_response(
        &self,
        ctx: &Context,
        step: &AuthStep,
        response: &HttpResponse,
    ) -> Result<Credentials, CallError> {
        // SAFETY: the signature checked by `check_signatures`.
        unsafe {
            self.call_api::<AuthResponseP<'_>, Credentials>(
                |e| &e.parse_auth_response,
                (ctx, step, response),
            )
        }
        .await
    }

    /// Builds the vendor request for one poll page.
    pub async fn build_poll_request(
        &self,
        ctx: &Context,
        target: &PollTarget,
        window: PollWindow,
        cursor: Option<&str>,
    ) -> Result<HttpRequest, CallError> {
        // SAFETY: the signature checked by `check_signatures`.
        unsafe {
            self.call_api::<PollP<'_>, HttpRequest>(
                |e| &e.build_poll_request,
                (ctx, target, window, cursor),
            )
        }
        .await
    }

    /// Reads one poll page.
    pub async fn parse_poll_response(
        &self,
        ctx: &Context,
        target: &PollTarget,
        cursor: Option<&str>,
        response: &HttpResponse,
    ) -> Result<PollPage, CallError> {
        // SAFETY: the signature checked by `check_signatures`.
        unsafe {
            self.call_api::<PollResponseP<'_>, PollPage>(
                |e| &e.parse_poll_response,
                (ctx, target, cursor, response),
            )
        }
        .await
    }
}
