//! A loaded connector and the calls into it.

use std::sync::Arc;

use wasmtime::Store;

use super::Runtime;
use super::bindings::v0_1;
use super::error::{CallError, LoadError};
use super::state::CallState;
use super::types::{
    AuthStep, ConnectorInfo, Context, Credentials, EventObject, HttpRequest, HttpResponse,
    PollPage, PollTarget, PollWindow, WebhookRequest,
};

/// A connector ready to be called: its pre-linked component and the info it gave at load.
///
/// Cheap to share: hold an `Arc` for the length of a call, and a hot swap in the registry
/// does not disturb calls in flight.
pub struct LoadedConnector {
    runtime: Arc<Runtime>,
    pre: v0_1::ConnectorPre<CallState>,
    key: Arc<str>,
    origin: String,
    sha256: String,
    version: String,
    cached: bool,
    imports: Vec<String>,
    info: ConnectorInfo,
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

impl LoadedConnector {
    pub(super) async fn new(
        runtime: Arc<Runtime>,
        origin: &str,
        sha256: String,
        version: String,
        cached: bool,
        imports: Vec<String>,
        pre: v0_1::ConnectorPre<CallState>,
    ) -> Result<Self, LoadError> {
        let mut connector = LoadedConnector {
            runtime,
            pre,
            key: Arc::from(origin),
            origin: origin.to_string(),
            sha256,
            version,
            cached,
            imports,
            info: ConnectorInfo {
                key: String::new(),
                display_name: String::new(),
                hub: String::new(),
                modes: super::types::Modes::empty(),
                config_keys: Vec::new(),
                poll_resources: Vec::new(),
                instance_finder: None,
            },
        };
        let info = connector
            .call(async |api, store| api.call_info(store).await.map(Ok))
            .await?;
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

    /// True when the compiled code came from the cache rather than a fresh compilation.
    pub fn from_cache(&self) -> bool {
        self.cached
    }

    /// The interfaces the component imports (the host links WASI with nothing granted).
    pub fn imports(&self) -> &[String] {
        &self.imports
    }

    /// Runs one call in a fresh store under the CPU deadline, memory cap and timeout.
    async fn call<R>(
        &self,
        f: impl AsyncFnOnce(
            &v0_1::exports::openconnectors::connector::api::Guest,
            &mut Store<CallState>,
        ) -> wasmtime::Result<Result<R, super::types::ConnectorError>>,
    ) -> Result<R, CallError> {
        let limits = self.runtime.limits();
        let _slot = self.runtime.slot().await;
        let mut store = Store::new(
            self.pre.engine(),
            CallState::new(self.key.clone(), limits.memory_bytes),
        );
        store.limiter(|s| s.limiter());
        let ticks = (limits.cpu_deadline.as_millis() / super::EPOCH_TICK.as_millis()).max(1) as u64;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();

        let timeout = limits.call_timeout;
        let outcome = tokio::time::timeout(timeout, async {
            let bindings = self.pre.instantiate_async(&mut store).await.map_err(|e| {
                CallError::Instantiate {
                    key: self.key.to_string(),
                    message: format!("{e:#}"),
                }
            })?;
            f(bindings.openconnectors_connector_api(), &mut store)
                .await
                .map_err(|e| self.classify(e, &store))
        })
        .await;
        match outcome {
            Err(_) => Err(CallError::Timeout {
                key: self.key.to_string(),
                limit: timeout,
            }),
            Ok(Err(e)) => Err(e),
            Ok(Ok(Err(e))) => Err(CallError::Connector(e)),
            Ok(Ok(Ok(r))) => Ok(r),
        }
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

    /// Checks an instance configuration.
    pub async fn validate_config(&self, config: &[(String, String)]) -> Result<(), CallError> {
        let config = config.to_vec();
        self.call(async |api, store| api.call_validate_config(store, &config).await)
            .await
    }

    /// Verifies a webhook's vendor signature.
    pub async fn verify_webhook(
        &self,
        ctx: &Context,
        request: &WebhookRequest,
    ) -> Result<(), CallError> {
        self.call(async |api, store| api.call_verify_webhook(store, ctx, request).await)
            .await
    }

    /// Parses a webhook into standardized events.
    pub async fn parse_webhook(
        &self,
        ctx: &Context,
        request: &WebhookRequest,
    ) -> Result<Vec<EventObject>, CallError> {
        self.call(async |api, store| api.call_parse_webhook(store, ctx, request).await)
            .await
    }

    /// Builds the request of an authentication step, if the connector has one.
    pub async fn build_auth_request(
        &self,
        ctx: &Context,
        step: &AuthStep,
    ) -> Result<Option<HttpRequest>, CallError> {
        self.call(async |api, store| api.call_build_auth_request(store, ctx, step).await)
            .await
    }

    /// Reads the answer to an authentication step.
    pub async fn parse_auth_response(
        &self,
        ctx: &Context,
        step: &AuthStep,
        response: &HttpResponse,
    ) -> Result<Credentials, CallError> {
        self.call(async |api, store| {
            api.call_parse_auth_response(store, ctx, step, response)
                .await
        })
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
        self.call(async |api, store| {
            api.call_build_poll_request(store, ctx, target, window, cursor)
                .await
        })
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
        self.call(async |api, store| {
            api.call_parse_poll_response(store, ctx, target, cursor, response)
                .await
        })
        .await
    }
}
