//! Connector instances: an in-memory view of the stored instances (the webhook hot path
//! reads it without touching the database) and their JSON shape in the API.

mod live;
pub mod origin;
pub mod settings;
pub mod typed;

pub use live::{LiveInstance, Settings, without_host_keys};

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde_json::{Value, json};
use store::{Instance, InstanceId, OrgId};

use runtime::types::ConnectorInfo;
use settings::{MASK, is_secret, is_shown_as_url, mask_url};

/// Configuration pairs from string slices, for tests.
#[cfg(test)]
pub(crate) fn test_pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// (connector key, configuration key): a pair the webhook instance finder looks up.
type FinderKey = (String, String);

#[derive(Default)]
struct Index {
    by_id: HashMap<InstanceId, Arc<LiveInstance>>,
    by_token: HashMap<String, InstanceId>,
    /// For each finder pair looked up so far: value → instances. Built on the first lookup
    /// of a pair and kept up to date after, so only the keys finders use are indexed.
    by_finder: HashMap<FinderKey, HashMap<String, Vec<InstanceId>>>,
}

impl Index {
    fn unindex(&mut self, i: &Instance) {
        self.by_token.remove(&i.token_sha256);
        for ((element, key), values) in self.by_finder.iter_mut() {
            if *element != i.element_key {
                continue;
            }
            if let Some(v) = i.config_value(key)
                && let Some(ids) = values.get_mut(v.trim())
            {
                ids.retain(|id| *id != i.id);
            }
        }
    }

    fn index(&mut self, i: &Instance) {
        for ((element, key), values) in self.by_finder.iter_mut() {
            if *element == i.element_key
                && let Some(v) = i.config_value(key)
            {
                values.entry(v.trim().to_string()).or_default().push(i.id);
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

    /// Adds or replaces an instance; its settings are parsed here, once.
    pub fn put(&self, instance: Instance) -> Arc<LiveInstance> {
        let instance = Arc::new(LiveInstance::new(instance));
        let mut index = self.index.write().expect("instance index lock poisoned");
        if let Some(old) = index.by_id.get(&instance.id).cloned() {
            index.unindex(&old);
        }
        index
            .by_token
            .insert(instance.token_sha256.clone(), instance.id);
        index.index(&instance);
        index.by_id.insert(instance.id, instance.clone());
        instance
    }

    /// Removes an instance.
    pub fn remove(&self, id: InstanceId) {
        let mut index = self.index.write().expect("instance index lock poisoned");
        if let Some(i) = index.by_id.remove(&id) {
            index.unindex(&i);
        }
    }

    /// One instance.
    pub fn get(&self, id: InstanceId) -> Option<Arc<LiveInstance>> {
        self.read().by_id.get(&id).cloned()
    }

    /// The instance whose token hashes to `token_sha256`.
    pub fn by_token(&self, token_sha256: &str) -> Option<Arc<LiveInstance>> {
        let index = self.read();
        let id = index.by_token.get(token_sha256)?;
        index.by_id.get(id).cloned()
    }

    /// The instances of an organization, by id.
    pub fn of_org(&self, org_id: OrgId) -> Vec<Arc<LiveInstance>> {
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
    pub fn find(&self, element_key: &str, config_key: &str, value: &str) -> Vec<Arc<LiveInstance>> {
        let pair = (element_key.to_string(), config_key.to_string());
        let known = self.read().by_finder.contains_key(&pair);
        if !known {
            let mut index = self.index.write().expect("instance index lock poisoned");
            let mut values: HashMap<String, Vec<InstanceId>> = HashMap::new();
            for i in index.by_id.values() {
                if i.element_key == element_key
                    && let Some(v) = i.config_value(config_key)
                {
                    values.entry(v.trim().to_string()).or_default().push(i.id);
                }
            }
            index.by_finder.entry(pair.clone()).or_insert(values);
        }
        let index = self.read();
        let mut out: Vec<_> = index
            .by_finder
            .get(&pair)
            .and_then(|values| values.get(value.trim()))
            .into_iter()
            .flatten()
            .filter_map(|id| index.by_id.get(id).cloned())
            .collect();
        out.sort_by_key(|i| i.id);
        out
    }

    /// Every instance id.
    pub fn ids(&self) -> Vec<InstanceId> {
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

/// A configuration value as the API shows it: secrets masked, and URLs (the callback URL,
/// `*.url` keys, any http(s) URL value) with their userinfo secrets and secret query
/// values masked ([`mask_url`]).
pub fn shown_value(info: Option<&ConnectorInfo>, key: &str, value: &str) -> String {
    let secret = match info {
        Some(info) => is_secret(info, key),
        // The connector is not loaded, so which of its keys are secret is unknown: mask
        // everything but the host's own non-secret event keys.
        None => !key.starts_with("event.") || is_secret(&ConnectorInfo::unknown(), key),
    };
    if secret && !value.is_empty() {
        MASK.to_string()
    } else if is_shown_as_url(key, value) {
        mask_url(value).into_owned()
    } else {
        value.to_string()
    }
}

/// The instance as the API shows it. `token` is given only in the answer to its creation.
pub fn instance_view(
    i: &LiveInstance,
    info: Option<&ConnectorInfo>,
    token: Option<&str>,
) -> crate::api::model::Instance {
    crate::api::model::Instance {
        id: i.id.0,
        name: i.name.clone(),
        created_date: crate::notify::rfc3339_ms(i.created_ms),
        updated_date: crate::notify::rfc3339_ms(i.updated_ms),
        element: crate::api::model::InstanceElement {
            key: i.element_key.clone(),
            name: info.map(|c| c.display_name.clone()),
            hub: info.map(|c| c.hub.clone()),
        },
        valid: info.is_some(),
        disabled: i.disabled,
        events_enabled: i.events_on(),
        tags: i.tags.clone(),
        configuration: i
            .config
            .iter()
            .map(|e| (e.key.clone(), shown_value(info, &e.key, &e.value)))
            .collect(),
        token: token.map(str::to_string),
        polling: None,
        activity: None,
    }
}

/// [`instance_view`] as JSON.
pub fn instance_json(i: &LiveInstance, info: Option<&ConnectorInfo>, token: Option<&str>) -> Value {
    json!(instance_view(i, info, token))
}

/// The configuration entries as `GET /instances/{id}/configuration` lists them.
pub fn configuration_view(
    i: &Instance,
    info: Option<&ConnectorInfo>,
) -> Vec<crate::api::model::ConfigurationEntry> {
    i.config
        .iter()
        .map(|e| crate::api::model::ConfigurationEntry {
            id: e.id,
            key: e.key.clone(),
            property_value: shown_value(info, &e.key, &e.value),
        })
        .collect()
}

/// [`configuration_view`] as JSON.
pub fn configuration_json(i: &Instance, info: Option<&ConnectorInfo>) -> Value {
    json!(configuration_view(i, info))
}
