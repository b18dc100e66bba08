//! Connector instances: an in-memory view of the stored instances (the webhook hot path
//! reads it without touching the database) and their JSON shape in the API.

pub mod settings;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde_json::{Value, json};
use store::Instance;

use crate::runtime::types::ConnectorInfo;
use settings::{MASK, is_secret};

/// (connector key, configuration key, value) → instances, for the webhook instance finder.
type ConfigKey = (String, String, String);

/// Values longer than this are not indexed (no finder matches on them).
const MAX_INDEXED_VALUE: usize = 512;

#[derive(Default)]
struct Index {
    by_id: HashMap<i64, Arc<Instance>>,
    by_token: HashMap<String, i64>,
    by_config: HashMap<ConfigKey, Vec<i64>>,
}

fn config_keys(i: &Instance) -> impl Iterator<Item = ConfigKey> + '_ {
    i.config
        .iter()
        .filter(|e| e.value.trim().len() <= MAX_INDEXED_VALUE)
        .map(|e| {
            (
                i.element_key.clone(),
                e.key.clone(),
                e.value.trim().to_string(),
            )
        })
}

impl Index {
    fn unindex(&mut self, i: &Instance) {
        self.by_token.remove(&i.token_sha256);
        for key in config_keys(i) {
            if let Some(ids) = self.by_config.get_mut(&key) {
                ids.retain(|id| *id != i.id);
                if ids.is_empty() {
                    self.by_config.remove(&key);
                }
            }
        }
    }
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
        if let Some(old) = index.by_id.get(&instance.id).cloned() {
            index.unindex(&old);
        }
        index
            .by_token
            .insert(instance.token_sha256.clone(), instance.id);
        for key in config_keys(&instance) {
            index.by_config.entry(key).or_default().push(instance.id);
        }
        index.by_id.insert(instance.id, instance.clone());
        instance
    }

    /// Removes an instance.
    pub fn remove(&self, id: i64) {
        let mut index = self.index.write().expect("instance index lock poisoned");
        if let Some(i) = index.by_id.remove(&id) {
            index.unindex(&i);
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
        let index = self.read();
        let key = (
            element_key.to_string(),
            config_key.to_string(),
            value.trim().to_string(),
        );
        let mut out: Vec<_> = index
            .by_config
            .get(&key)
            .into_iter()
            .flatten()
            .filter_map(|id| index.by_id.get(id).cloned())
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
        // The connector is not loaded, so which of its keys are secret is unknown: mask
        // everything but the host's own non-secret event keys.
        None => !key.starts_with("event.") || is_secret(&ConnectorInfo::unknown(), key),
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
