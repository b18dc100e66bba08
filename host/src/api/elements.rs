//! `GET /elements` and `GET /elements/{key}`: the loaded connectors and the files that failed.

use serde_json::{Value, json};

use crate::registry::Registry;
use crate::views::element;

use super::error::ApiError;

/// The list of loaded connectors and of files that failed to load.
pub fn list(registry: &Registry) -> Value {
    let elements: Vec<Value> = registry.connectors().iter().map(|c| element(c)).collect();
    let failures: Vec<Value> = registry
        .failures()
        .into_iter()
        .map(|f| json!({"file": f.file, "error": f.reason}))
        .collect();
    json!({"elements": elements, "failures": failures})
}

/// One connector by key.
pub fn get(registry: &Registry, key: &str) -> Result<Value, ApiError> {
    registry
        .get(key)
        .map(|c| element(&c))
        .ok_or_else(|| ApiError::NotFound(format!("no connector with key `{key}` is loaded")))
}
