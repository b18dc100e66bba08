//! `connector-host connectors check`: load one connector, print its info, validate a
//! configuration and run a webhook fixture through it, with no server and no database.

use std::path::Path;

use serde_json::{Value, json};

use runtime::types::{Context, WebhookRequest};
use runtime::{CallError, Limits, LoadError, Runtime};

/// Why a check failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The engine could not be created.
    #[error("cannot create the WebAssembly engine: {0}")]
    Engine(String),
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The connector did not load.
    #[error("{0}")]
    Load(#[from] LoadError),
    /// The configuration was refused.
    #[error("configuration refused: {0}")]
    Config(CallError),
    /// A configuration value does not have its key's declared type, or a required key is
    /// missing (the host's own check, contract 0.2 on).
    #[error("configuration refused: `{}` {}", .0.field, .0.reason)]
    Typed(crate::instances::settings::FieldError),
    /// The webhook fixture was refused or could not be parsed.
    #[error("webhook refused: {0}")]
    Webhook(CallError),
}

/// What to check.
#[derive(Debug, Default)]
pub struct CheckInput {
    /// Configuration pairs.
    pub config: Vec<(String, String)>,
    /// A webhook body fixture.
    pub webhook: Option<std::path::PathBuf>,
    /// Headers sent with the fixture.
    pub headers: Vec<(String, String)>,
    /// Query string sent with the fixture.
    pub query: String,
}

/// Runs the check and returns a report: `{"element", "config", "events"?}`.
pub async fn check(file: &Path, input: &CheckInput) -> Result<Value, CheckError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| CheckError::Read {
            path: path.display().to_string(),
            source,
        })
    };
    let bytes = read(file)?;
    let runtime =
        Runtime::new(Limits::default(), None).map_err(|e| CheckError::Engine(format!("{e:#}")))?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let connector = runtime.load(&name, &bytes).await?;
    let mut report = json!({"element": crate::views::element(&connector)});

    if connector.typed_config() {
        crate::instances::typed::check_stored(connector.info(), &input.config)
            .map_err(CheckError::Typed)?;
    }
    connector
        .validate_config(&input.config)
        .await
        .map_err(CheckError::Config)?;
    report["config"] = json!("valid");

    if let Some(path) = &input.webhook {
        let request = WebhookRequest {
            method: "POST".into(),
            path: format!("/elements/api-v2/events/{}", connector.key()),
            query: input.query.clone(),
            headers: connector.webhook_headers(input.headers.clone()),
            body: read(path)?,
        };
        let ctx = Context {
            config: input.config.clone(),
            credentials: None,
        };
        let events = connector
            .verify_and_parse_webhook(&ctx, &request)
            .await
            .and_then(|parsed| parsed)
            .map_err(CheckError::Webhook)?;
        report["events"] = Value::Array(events.iter().map(crate::views::event_json).collect());
    }
    Ok(report)
}
