//! The JSON shapes that both the API and the `connectors check` tool print: a loaded
//! connector and a standardized event object.

use serde_json::{Value, json};

use runtime::LoadedConnector;
use runtime::types::{DatesConfiguration, EventObject};

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
            "key": k.key, "description": k.description, "type": c.typed_config().then(|| k.value_type.as_str()), "secret": k.is_secret(), "required": k.required,
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

/// The standardized JSON of one event object: `objectType`, `objectId`, `eventType`, `date`,
/// and the connector's vendor fields under `fields`.
pub fn event_json(e: &EventObject) -> Value {
    json!({
        "objectType": e.object_type,
        "objectId": e.object_id,
        "eventType": e.event_type.as_str(),
        "date": e.date,
        "fields": serde_json::from_str::<Value>(&e.fields)
            .unwrap_or_else(|_| Value::String(e.fields.clone())),
    })
}
