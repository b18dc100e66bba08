//! Contract 0.1 as the latest types: the conversions of the types that changed.
//!
//! A 0.1 connector's configuration keys are untyped: each becomes a `text` key, or a
//! `secret` one when 0.1 marked it secret, and the host checks no types for it (see
//! [`LoadedConnector::typed_config`](super::LoadedConnector::typed_config)). Its events
//! carry no vendor event id.

use super::bindings::v0_1::openconnectors::connector::types as old;
use super::types as new;

/// A 0.1 connector's info in the latest types.
pub(crate) fn info(info: old::ConnectorInfo) -> new::ConnectorInfo {
    let mut modes = new::Modes::empty();
    if info.modes.contains(old::Modes::WEBHOOKS) {
        modes |= new::Modes::WEBHOOKS;
    }
    if info.modes.contains(old::Modes::POLLING) {
        modes |= new::Modes::POLLING;
    }
    new::ConnectorInfo {
        key: info.key,
        display_name: info.display_name,
        hub: info.hub,
        modes,
        config_keys: info
            .config_keys
            .into_iter()
            .map(|k| new::ConfigKey {
                key: k.key,
                description: k.description,
                value_type: if k.secret {
                    new::ValueType::Secret
                } else {
                    new::ValueType::Text
                },
                required: k.required,
            })
            .collect(),
        poll_resources: info
            .poll_resources
            .into_iter()
            .map(|r| new::PollResource {
                name: r.name,
                url: r.url,
                id_field: r.id_field,
                dates: new::DatesConfiguration {
                    updated_date_field: r.dates.updated_date_field,
                    updated_date_format: r.dates.updated_date_format,
                    updated_date_timezone: r.dates.updated_date_timezone,
                    created_date_field: r.dates.created_date_field,
                    created_date_format: r.dates.created_date_format,
                    created_date_timezone: r.dates.created_date_timezone,
                },
            })
            .collect(),
        instance_finder: info.instance_finder.map(|f| new::InstanceFinder {
            config_key: f.config_key,
            payload_path: f.payload_path,
        }),
    }
}

/// A 0.1 connector's events in the latest types: no vendor event id.
pub(crate) fn events(events: Vec<old::EventObject>) -> Vec<new::EventObject> {
    events
        .into_iter()
        .map(|e| new::EventObject {
            object_type: e.object_type,
            object_id: e.object_id,
            event_type: match e.event_type {
                old::EventType::Created => new::EventType::Created,
                old::EventType::Updated => new::EventType::Updated,
                old::EventType::Deleted => new::EventType::Deleted,
                old::EventType::Unknown => new::EventType::Unknown,
            },
            date: e.date,
            fields: e.fields,
            event_id: None,
        })
        .collect()
}
