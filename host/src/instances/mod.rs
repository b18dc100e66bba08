//! Connector instances: an in-memory view of the stored instances (the webhook hot path
//! reads it without touching the database) and their JSON shape in the API.

pub mod settings;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde_json::{Value, json};
use store::Instance;

use crate::runtime::types::ConnectorInfo;
use settings::{MASK, is_secret};

#[derive(Default)]
struct Index {
    by_id: HashMap<i64, Arc<Instance>>,
    by_token: HashMap<String, i64>,
}

/// Every stored instance, kept in step with the store by the API that changes them.
#[derive(Default)]
pub struct Instances {
    index: RwLock<Index>,
}

impl Instances {
    /// A view holding `all`.
    pub fn new(all: Vec<Instance>) -> Self {
        let view = Instances::default();
        for i in all {
            view.put(i);
        }
        view
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index.read().expect("instance index lock poisoned")
    }

    /// Adds or replaces an instance.
    pub fn put(&self, instance: Instance) -> Arc<Instance> {
        let instance = Arc::new(instance);
        let mut index = self.index.write().expect("instance index lock poisoned");
        index
            .by_token
            .insert(instance.token_sha256.clone(), instance.id);
        index.by_id.insert(instance.id, instance.clone());
        instance
    }

    /// Removes an instance.
    pub fn remove(&self, id: i64) {
        let mut index = self.index.write().expect("instance index lock poisoned");
        if let Some(i) = index.by_id.remove(&id) {
            index.by_token.remove(&i.token_sha256);
        }
    }

    /// One instance.
    pub fn get(&self, id: i64) -> Option<Arc<Instance>> {
        self.read().by_id.get(&id).cloned()
    }

    /// The instance whose token hashes to `token_sha256`.
    pub fn by_token(&self, token_sha256: &str) -> Option<Arc<Instance>> {
        let index = self.read();
        let id = index.by_token.get(token_sha256)?;
        index.by_id.get(id).cloned()
    }

    /// The instances of an organization, by id.
    pub fn of_org(&self, org_id: i64) -> Vec<Arc<Instance>> {
        let mut out: Vec<_> = self
            .read()
            .by_id
            .values()
            .filter(|i| i.org_id == org_id)
            .cloned()
            .collect();
        out.sort_by_key(|i| i.id);
        out
    }

    /// The instances of connector `element_key` whose `config_key` equals `value`.
    pub fn find(&self, element_key: &str, config_key: &str, value: &str) -> Vec<Arc<Instance>> {
        let mut out: Vec<_> = self
            .read()
            .by_id
            .values()
            .filter(|i| {
                i.element_key == element_key
                    && i.config_value(config_key).map(str::trim) == Some(value)
            })
            .cloned()
            .collect();
        out.sort_by_key(|i| i.id);
        out
    }

    /// Every instance id.
    pub fn ids(&self) -> Vec<i64> {
        self.read().by_id.keys().copied().collect()
    }

    /// How many instances there are.
    pub fn len(&self) -> usize {
        self.read().by_id.len()
    }

    /// True when there is none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A configuration value as the API shows it: secrets masked.
pub fn shown_value(info: Option<&ConnectorInfo>, key: &str, value: &str) -> String {
    let secret = match info {
        Some(info) => is_secret(info, key),
        // The connector is not loaded: mask what looks secret by name.
        None => is_secret(&crate::runtime::types::ConnectorInfo::unknown(), key),
    };
    if secret && !value.is_empty() {
        MASK.to_string()
    } else {
        value.to_string()
    }
}

/// The instance as the API shows it. `token` is given only in the answer to its creation.
pub fn instance_json(i: &Instance, info: Option<&ConnectorInfo>, token: Option<&str>) -> Value {
    let config: serde_json::Map<String, Value> = i
        .config
        .iter()
        .map(|e| (e.key.clone(), json!(shown_value(info, &e.key, &e.value))))
        .collect();
    let enabled = i
        .config_value(settings::ENABLED)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let mut out = json!({
        "id": i.id,
        "name": i.name,
        "createdDate": crate::notify::rfc3339_ms(i.created_ms),
        "updatedDate": crate::notify::rfc3339_ms(i.updated_ms),
        "element": {
            "key": i.element_key,
            "name": info.map(|c| c.display_name.as_str()),
            "hub": info.map(|c| c.hub.as_str()),
        },
        "valid": info.is_some(),
        "disabled": i.disabled,
        "eventsEnabled": enabled && !i.disabled,
        "tags": i.tags,
        "configuration": config,
    });
    if let Some(t) = token {
        out["token"] = json!(t);
    }
    out
}

/// The configuration entries as `GET /instances/{id}/configuration` lists them.
pub fn configuration_json(i: &Instance, info: Option<&ConnectorInfo>) -> Value {
    Value::Array(
        i.config
            .iter()
            .map(|e| {
                json!({
                    "id": e.id,
                    "key": e.key,
                    "propertyValue": shown_value(info, &e.key, &e.value),
                })
            })
            .collect(),
    )
}
