//! `/instances`: create, list, show, change and delete connector instances, and their
//! configuration entries.

use std::sync::Arc;

use hyper::StatusCode;
use serde_json::{Map, Value, json};
use store::{Instance, InstanceUpdate, NewInstance};

use super::auth::Caller;
use super::error::ApiError;
use super::model;
use super::{Answer, App, Req};
use crate::instances::settings::{
    self, FieldError, MASK, event_settings, flatten, is_secret, is_shown_as_url, mask_url,
};
use crate::instances::{
    LiveInstance, configuration_view, instance_view, origin, typed, without_host_keys,
};
use runtime::types::{ConnectorError, ConnectorInfo};
use runtime::{CallError, LoadedConnector};

fn connector(app: &App, key: &str) -> Result<Arc<LoadedConnector>, ApiError> {
    app.registry.get(key).ok_or_else(|| {
        super::elements::still_loading(&app.registry, key).unwrap_or_else(|| {
            ApiError::field(
                "element.key",
                format!("`element.key` names `{key}`, which is not a loaded connector; GET /elements lists those that are"),
            )
        })
    })
}

/// The host's limits a configuration is checked against.
pub struct Limits<'a> {
    /// The outbound guard: URLs with a refused literal address are refused.
    pub egress: &'a crate::egress::Egress,
    /// The organization's quotas.
    pub quotas: &'a crate::quotas::Quotas,
}

impl<'a> Limits<'a> {
    /// The limits the API runs with.
    pub fn of(app: &'a App) -> Self {
        Limits {
            egress: &app.egress,
            quotas: &app.quotas,
        }
    }
}

/// Runs the host's checks of the event keys, its limits and the connector's own check.
pub async fn validate(
    limits: &Limits<'_>,
    connector: &LoadedConnector,
    config: &[(String, String)],
) -> Result<(), ApiError> {
    let events = event_settings(connector.info(), config)?;
    if connector.typed_config() {
        typed::check_stored(connector.info(), config)?;
    }
    refuse_literal_addresses(limits.egress, config)?;
    limits.quotas.check_config(config)?;
    if let Some(minutes) = events.refresh_interval_minutes {
        limits.quotas.check_interval(minutes)?;
    }
    if events.enabled && events.vendor_type == settings::VendorType::Polling {
        let resources = crate::polling::resources::resolve(connector.info(), config)?;
        let named_by = [settings::POLLER_CONFIGURATION, settings::POLLER_URLS]
            .into_iter()
            .find(|k| settings::get(config, k).is_some());
        if let Some(key) = named_by {
            limits
                .quotas
                .check_resources(&format!("configuration.{key}"), resources.len())?;
        }
    }
    match connector.validate_config(&without_host_keys(config)).await {
        Ok(()) => Ok(()),
        Err(CallError::Connector(ConnectorError::InvalidConfig(f))) => Err(ApiError::field(
            format!("configuration.{}", f.key),
            format!("`configuration.{}` {}", f.key, f.reason),
        )),
        Err(CallError::Connector(e)) => Err(ApiError::bad(runtime::types::describe(&e))),
        Err(e) => Err(ApiError::BadGateway(format!(
            "the connector could not check the configuration: {e}"
        ))),
    }
}

/// A URL value (a URL key's, or any http(s) value) whose host is a literal address the
/// outbound guard refuses is a 400 naming its key; names are checked when connecting.
fn refuse_literal_addresses(
    egress: &crate::egress::Egress,
    config: &[(String, String)],
) -> Result<(), FieldError> {
    for (key, value) in config {
        if !is_shown_as_url(key, value) {
            continue;
        }
        if let Some(refused) = egress.refuses_literal(value) {
            return Err(FieldError::config(
                key,
                format!(
                    "names {} ({}), which the host does not connect to; an operator can allow it with --allow-network",
                    refused.ip, refused.range
                ),
            ));
        }
    }
    Ok(())
}

fn string_field(body: &Map<String, Value>, field: &str) -> Result<Option<String>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::field(
            field,
            format!("`{field}` must be a string"),
        )),
    }
}

fn tags_field(body: &Map<String, Value>) -> Result<Option<Vec<String>>, ApiError> {
    match body.get("tags") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => a
            .iter()
            .map(|t| match t {
                Value::String(s) => Ok(s.clone()),
                _ => Err(ApiError::field("tags", "`tags` must be a list of strings")),
            })
            .collect::<Result<_, _>>()
            .map(Some),
        Some(_) => Err(ApiError::field("tags", "`tags` must be a list of strings")),
    }
}

fn bool_field(body: &Map<String, Value>, field: &str) -> Result<Option<bool>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s == "true" || s == "false" => Ok(Some(s == "true")),
        Some(_) => Err(ApiError::field(
            field,
            format!("`{field}` must be true or false"),
        )),
    }
}

/// The `configuration` object of a body as key/value strings; a 400 naming the field when
/// it is not an object.
pub fn config_field(body: &Map<String, Value>) -> Result<Vec<(String, String)>, ApiError> {
    match body.get("configuration") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(m)) => Ok(flatten(m)),
        Some(_) => Err(ApiError::field(
            "configuration",
            "`configuration` must be a JSON object of keys and values",
        )),
    }
}

/// Checks the values of a `configuration` object as given (JSON values, before they are
/// kept as strings) against the connector's declared types, for a typed connector.
fn check_given(
    connector: &LoadedConnector,
    given: Option<&Map<String, Value>>,
) -> Result<(), ApiError> {
    match given {
        Some(given) if connector.typed_config() => Ok(typed::check_given(connector.info(), given)?),
        _ => Ok(()),
    }
}

/// `POST /instances`.
pub async fn create(app: &App, caller: &Caller, req: &Req) -> Answer {
    let Caller::Org(org_id) = *caller else {
        return Err(ApiError::Unauthorized(
            "creating an instance needs `User …, Organization …` credentials".into(),
        ));
    };
    let body = req.json_object()?;
    let key = match body.get("element").and_then(|e| e.get("key")) {
        Some(Value::String(k)) if !k.is_empty() => k.clone(),
        _ => return Err(ApiError::field("element.key", "`element.key` is required")),
    };
    let connector = connector(app, &key)?;
    let config = config_field(&body)?;
    check_given(
        &connector,
        body.get("configuration").and_then(Value::as_object),
    )?;
    validate(&Limits::of(app), &connector, &config).await?;
    let provider_data = match body.get("providerData") {
        None | Some(Value::Null) => json!({}),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => {
            return Err(ApiError::field(
                "providerData",
                "`providerData` must be an object",
            ));
        }
    };
    let quota = || {
        app.quotas
            .check_instances(app.instances.of_org(org_id).len())
    };
    quota()?;
    let credentials = exchange_code(app, &connector, &config, &provider_data).await?;
    // Checked again under the lock, held until the new instance counts.
    let creating = app.changing.lock().await;
    quota()?;
    let token = crate::tenancy::new_secret();
    let now = crate::now_ms();
    let created = app
        .store
        .create_instance(NewInstance {
            org_id,
            element_key: key.clone(),
            name: string_field(&body, "name")?.unwrap_or_else(|| key.clone()),
            token_sha256: crate::tenancy::digest(&token),
            tags: tags_field(&body)?.unwrap_or_default(),
            config,
            provider_data,
            disabled: bool_field(&body, "disabled")?.unwrap_or(false),
            created_ms: now,
        })
        .await?;
    tracing::info!(instance = created.id.0, element = %key, org = org_id.0, "instance created");
    if credentials.is_some() {
        app.store.save_credentials(created.id, credentials).await?;
    }
    let created = app.instances.put(created);
    drop(creating);
    app.poller.sync(created.id);
    app.dispatcher.ownership().instances_changed();
    Ok((
        StatusCode::OK,
        json!(instance_view(
            &created,
            Some(connector.info()),
            Some(&token)
        )),
    ))
}

/// Exchanges `providerData.code` for vendor credentials (OAuth2), when the connector has
/// such a step.
async fn exchange_code(
    app: &App,
    connector: &LoadedConnector,
    config: &[(String, String)],
    provider_data: &Value,
) -> Result<Option<store::StoredCredentials>, ApiError> {
    let Some(code) = provider_data.get("code").and_then(Value::as_str) else {
        return Ok(None);
    };
    let ctx = runtime::types::Context {
        config: without_host_keys(config),
        credentials: None,
    };
    let step = runtime::types::AuthStep::ExchangeCode(code.to_string());
    crate::polling::auth::run_step(connector, app.poller.vendor(), &ctx, &step)
        .await
        .map_err(|e| match e {
            crate::polling::PollError::Connector(CallError::Connector(
                ConnectorError::Unauthorized(m),
            )) => ApiError::field(
                "providerData.code",
                format!("the vendor refused `providerData.code`: {m}"),
            ),
            other => ApiError::BadGateway(format!("cannot exchange `providerData.code`: {other}")),
        })
}

/// `GET /instances`: the caller's instances, each with its `activity`, and the last poll
/// of each resource for polling instances (each read for all of them at once).
pub async fn list(app: &App, caller: &Caller) -> Answer {
    let visible = super::auth::visible(app, caller);
    let ids: Vec<store::InstanceId> = visible.iter().map(|i| i.id).collect();
    let activity = app.store.activity_of(&ids).await?;
    let mut polls: std::collections::HashMap<store::InstanceId, Vec<store::PollState>> =
        std::collections::HashMap::new();
    for state in app.store.poll_health_of(&ids).await? {
        polls.entry(state.instance_id).or_default().push(state);
    }
    let list: Vec<model::Instance> = visible
        .iter()
        .map(|i| {
            let mut v = view(app, i);
            v.activity = Some(super::activity::activity_view(activity.get(&i.id)));
            v.polling = polls.get(&i.id).map(|s| crate::polling::poll_view(s));
            v
        })
        .collect();
    Ok((StatusCode::OK, json!(list)))
}

fn info_of(app: &App, i: &Instance) -> Option<Arc<LoadedConnector>> {
    app.registry.get(&i.element_key)
}

/// `GET /instances/{id}`, without what needs the store.
fn view(app: &App, i: &LiveInstance) -> model::Instance {
    let c = info_of(app, i);
    instance_view(i, c.as_ref().map(|c| c.info()), None)
}

/// `GET /instances/{id}` with its `activity`, and the last poll of each resource for
/// polling instances.
pub async fn show_full(app: &App, i: &LiveInstance) -> Answer {
    let mut v = view(app, i);
    let activity = app.store.activity_of(&[i.id]).await?;
    v.activity = Some(super::activity::activity_view(activity.get(&i.id)));
    let states = app.store.poll_states(i.id).await?;
    if !states.is_empty() {
        v.polling = Some(crate::polling::poll_view(&states));
    }
    Ok((StatusCode::OK, json!(v)))
}

/// `GET /instances/{id}/configuration`.
pub fn configuration(app: &App, i: &Instance) -> Value {
    let c = info_of(app, i);
    json!(configuration_view(i, c.as_ref().map(|c| c.info())))
}

/// A masked value sent back unchanged keeps the stored value: `********` for a secret key,
/// and for a URL value the masked rendering the API showed of the stored URL
/// (`https://user:********@host/?token=********`), which keeps its password and tokens.
fn unmask(
    info: &ConnectorInfo,
    current: &Instance,
    set: Vec<(String, String)>,
) -> Vec<(String, String)> {
    set.into_iter()
        .filter(|(k, v)| {
            let Some(stored) = current.config_value(k) else {
                return true;
            };
            let masked_secret = v == MASK && is_secret(info, k);
            let masked_url = is_shown_as_url(k, stored)
                && !is_secret(info, k)
                && matches!(mask_url(stored), std::borrow::Cow::Owned(shown) if shown.trim() == v.trim());
            !(masked_secret || masked_url)
        })
        .collect()
}

/// Checks and stores a change; the answer is the instance after it.
async fn apply(app: &App, current: &LiveInstance, mut update: InstanceUpdate) -> Answer {
    // Checked and stored under the lock, against the instance as it is then: two changes
    // at once cannot each pass the quotas on a configuration the other one grows.
    let _changing = app.changing.lock().await;
    let current = &*app
        .instances
        .get(current.id)
        .ok_or_else(|| ApiError::NotFound(format!("no instance {}", current.id)))?;
    let connector = connector(app, &current.element_key)?;
    let given = update.set_config.clone();
    update.set_config = unmask(
        connector.info(),
        current,
        std::mem::take(&mut update.set_config),
    );
    let mut merged: Vec<(String, String)> = current.config_pairs();
    for (k, v) in &update.set_config {
        match merged.iter_mut().find(|(mk, _)| mk == k) {
            Some(entry) => entry.1 = v.clone(),
            None => merged.push((k.clone(), v.clone())),
        }
    }
    validate(&Limits::of(app), &connector, &merged).await?;
    let before = current.config_pairs();
    let moves = origin::moves(&before, &merged);
    let missing = origin::secrets_to_give_again(connector.info(), &before, &moves, &given);
    if let Some(first) = missing.first() {
        let moved: Vec<String> = moves
            .callback
            .then(|| settings::CALLBACK_URL.to_string())
            .into_iter()
            .chain(moves.vendor.iter().cloned())
            .map(|k| format!("`configuration.{k}`"))
            .collect();
        let again: Vec<String> = missing
            .iter()
            .map(|k| format!("`configuration.{k}`"))
            .collect();
        return Err(ApiError::field(
            format!("configuration.{first}"),
            format!(
                "{} moves to another origin: give {} again in the same change (the old origin received them)",
                moved.join(" and "),
                again.join(", ")
            ),
        ));
    }
    update.updated_ms = crate::now_ms();
    let changed = app
        .store
        .update_instance(current.id, update)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no instance {}", current.id)))?;
    if !moves.vendor.is_empty() {
        // Tokens the vendor issued at the old origin never go to the new one.
        app.store.save_credentials(changed.id, None).await?;
        tracing::info!(
            instance = changed.id.0,
            "vendor URL moved to another origin: stored vendor credentials dropped"
        );
    }
    tracing::info!(instance = changed.id.0, "instance changed");
    let changed = app.instances.put(changed);
    app.poller.sync(changed.id);
    app.dispatcher.ownership().instances_changed();
    Ok((
        StatusCode::OK,
        json!(instance_view(&changed, Some(connector.info()), None)),
    ))
}

/// `PATCH /instances/{id}`: `name`, `tags`, `disabled` and a partial `configuration`.
pub async fn patch(app: &App, current: &LiveInstance, req: &Req) -> Answer {
    let body = req.json_object()?;
    check_given(
        &*connector(app, &current.element_key)?,
        body.get("configuration").and_then(Value::as_object),
    )?;
    let update = InstanceUpdate {
        name: string_field(&body, "name")?,
        tags: tags_field(&body)?,
        disabled: bool_field(&body, "disabled")?,
        set_config: config_field(&body)?,
        updated_ms: 0,
    };
    apply(app, current, update).await
}

/// `PATCH /instances/{id}/configuration/{configurationId}`: `{"propertyValue": …}`.
pub async fn patch_entry(app: &App, current: &LiveInstance, cid: &str, req: &Req) -> Answer {
    let entry = cid
        .parse::<i64>()
        .ok()
        .and_then(|cid| current.config.iter().find(|e| e.id == cid))
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "instance {} has no configuration entry {cid}",
                current.id
            ))
        })?;
    let body = req.json_object()?;
    if let Some(given) = body.get("propertyValue") {
        let given = Map::from_iter([(entry.key.clone(), given.clone())]);
        check_given(&*connector(app, &current.element_key)?, Some(&given))?;
    }
    let value = body
        .get("propertyValue")
        .and_then(settings::value_string)
        .ok_or_else(|| ApiError::field("propertyValue", "`propertyValue` is required"))?;
    let update = InstanceUpdate {
        set_config: vec![(entry.key.clone(), value)],
        ..InstanceUpdate::default()
    };
    let (status, _) = apply(app, current, update).await?;
    let after = app
        .instances
        .get(current.id)
        .ok_or_else(|| ApiError::NotFound(format!("no instance {}", current.id)))?;
    let shown = configuration(app, &after);
    let entry_json = shown
        .as_array()
        .and_then(|a| a.iter().find(|e| e["id"] == json!(entry.id)).cloned())
        .unwrap_or(Value::Null);
    Ok((status, entry_json))
}

/// `DELETE /instances/{id}`.
pub async fn delete(app: &App, current: &Instance) -> Answer {
    app.store.delete_instance(current.id).await?;
    app.instances.remove(current.id);
    app.poller.sync(current.id);
    app.dispatcher.ownership().instances_changed();
    tracing::info!(instance = current.id.0, "instance deleted");
    Ok((StatusCode::OK, json!({"id": current.id, "deleted": true})))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instances::test_pairs as set;
    use store::ConfigEntry;

    fn instance(config: &[(&str, &str)]) -> Instance {
        Instance {
            id: store::InstanceId(1),
            org_id: store::OrgId(1),
            element_key: "shop".into(),
            name: "shop".into(),
            token_sha256: String::new(),
            tags: Vec::new(),
            config: config
                .iter()
                .zip(1..)
                .map(|((k, v), id)| ConfigEntry {
                    id,
                    key: k.to_string(),
                    value: v.to_string(),
                })
                .collect(),
            provider_data: json!({}),
            disabled: false,
            created_ms: 0,
            updated_ms: 0,
        }
    }

    #[test]
    fn the_masked_callback_url_sent_back_keeps_the_stored_one() {
        let info = ConnectorInfo::unknown();
        let stored = "https://u:pw@h.example/cb?token=t0k&x=1";
        let current = instance(&[(settings::CALLBACK_URL, stored), ("api.password", "p")]);
        let shown = "https://u:********@h.example/cb?token=********&x=1";
        // What GET showed (even with stray blanks) keeps the stored URL and its secrets.
        for sent in [
            shown,
            " https://u:********@h.example/cb?token=********&x=1 ",
        ] {
            let kept = unmask(
                &info,
                &current,
                set(&[(settings::CALLBACK_URL, sent), ("api.password", MASK)]),
            );
            assert!(kept.is_empty(), "{sent:?}: {kept:?}");
        }
        // A new URL, even one that differs only in the masked parts, replaces it.
        for sent in [
            "https://u:********@h.example/cb?token=********&x=2",
            "https://u:new@h.example/cb?token=t0k&x=1",
            "https://u:pw@h.example/cb?token=new&x=1",
            "https://h.example/cb",
        ] {
            let kept = unmask(&info, &current, set(&[(settings::CALLBACK_URL, sent)]));
            assert_eq!(kept, set(&[(settings::CALLBACK_URL, sent)]));
        }
        // A URL with nothing masked is set as sent.
        let plain = instance(&[(settings::CALLBACK_URL, "https://h.example/cb")]);
        let sent = set(&[(settings::CALLBACK_URL, "https://h.example/cb")]);
        assert_eq!(unmask(&info, &plain, sent.clone()), sent);
    }
}
