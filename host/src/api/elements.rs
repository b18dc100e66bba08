//! `GET /elements` and `GET /elements/{key}`: the loaded connectors, the files still
//! loading and the files that failed.

use serde_json::{Value, json};

use crate::registry::Registry;
use crate::views::element;

use super::error::ApiError;

/// The `Retry-After` of a request for a connector while files are loading, in seconds.
const RETRY_WHILE_LOADING_SECS: u64 = 2;

/// The list of loaded connectors, of files still loading and of files that failed to load.
pub fn list(registry: &Registry) -> Value {
    let elements: Vec<Value> = registry.connectors().iter().map(|c| element(c)).collect();
    let loading: Vec<Value> = registry
        .loading()
        .into_iter()
        .map(|l| {
            let mut v = json!({
                "file": l.file,
                "status": "loading",
                "elapsedMs": l.elapsed.as_millis() as u64,
            });
            if let Some(key) = l.serving {
                v["serving"] = json!(key);
            }
            v
        })
        .collect();
    let failures: Vec<Value> = registry
        .failures()
        .into_iter()
        .map(|f| json!({"file": f.file, "error": f.reason}))
        .collect();
    json!({"elements": elements, "loading": loading, "failures": failures})
}

/// One connector by key.
pub fn get(registry: &Registry, key: &str) -> Result<Value, ApiError> {
    registry.get(key).map(|c| element(&c)).ok_or_else(|| {
        still_loading(registry, key).unwrap_or_else(|| {
            ApiError::NotFound(format!("no connector with key `{key}` is loaded"))
        })
    })
}

/// For a request naming `key`, which no loaded connector provides: a 503 with
/// `Retry-After` while connector files are loading (one of them may provide it), naming
/// them; `None` when none is.
pub fn still_loading(registry: &Registry, key: &str) -> Option<ApiError> {
    let loading = registry.loading();
    if loading.is_empty() {
        return None;
    }
    let files: Vec<&str> = loading.iter().map(|l| l.file.as_str()).collect();
    Some(ApiError::Unavailable {
        message: format!(
            "no connector with key `{key}` is loaded yet, and connectors are still loading \
             ({}); retry shortly",
            files.join(", ")
        ),
        retry_after_secs: RETRY_WHILE_LOADING_SECS,
    })
}
