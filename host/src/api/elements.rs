//! `GET /elements` and `GET /elements/{key}`: the loaded connectors and the files that failed.

use serde_json::{Value, json};

use crate::registry::Registry;
use runtime::LoadedConnector;
use runtime::types::DatesConfiguration;

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

fn dates(d: &DatesConfiguration) -> Value {
    json!({
        "updatedDateField": d.updated_date_field,
        "updatedDateFormat": d.updated_date_format,
        "updatedDateTimezone": d.updated_date_timezone,
        "createdDateField": d.created_date_field,
        "createdDateFormat": d.created_date_format,
        "createdDateTimezone": d.created_date_timezone,
    })
}

/// The JSON of one loaded connector.
pub fn element(c: &LoadedConnector) -> Value {
    let info = c.info();
    json!({
        "key": info.key,
        "name": info.display_name,
        "hub": info.hub,
        "modes": info.mode_names(),
        "configuration": info.config_keys.iter().map(|k| json!({
            "key": k.key, "description": k.description, "secret": k.secret, "required": k.required,
        })).collect::<Vec<_>>(),
        "defaultPollResources": info.poll_resources.iter().map(|r| json!({
            "name": r.name, "url": r.url, "idField": r.id_field, "datesConfiguration": dates(&r.dates),
        })).collect::<Vec<_>>(),
        "instanceFinder": info.instance_finder.as_ref().map(|f| format!("{}|{}", f.config_key, f.payload_path)),
        "file": c.origin(),
        "sha256": c.sha256(),
        "contractVersion": c.contract_version(),
        "fromCache": c.from_cache(),
        "imports": c.imports(),
    })
}
