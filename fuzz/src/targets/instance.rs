//! Instance JSON and configuration validation: what `POST /instances` runs on its body
//! before the store (`Req::json_object`, `element.key`, `api::instances::config_field`,
//! `api::instances::validate`: the event keys, the poll resources and the connector's own
//! `validate-config`), then what the API shows of the instance it would store
//! (`instance_json`, `configuration_json`, URL masking) and the settings webhooks and
//! delivery read (`LiveInstance::new`).
//!
//! An input is the request body. Poll resources that validate are checked against the
//! poll cycle's arithmetic (the window start is the last poll time minus `pollDelay`).

use std::sync::Arc;

use arbitrary::Unstructured;
use bytes::Bytes;
use host::api::Req;
use host::api::instances::{Limits, config_field, validate};
use host::egress::Egress;
use host::instances::settings::{
    CallbackSettings, event_settings, is_secret, is_shown_as_url, mask_url,
};
use host::instances::{LiveInstance, configuration_json, instance_json};
use host::quotas::Quotas;
use hyper::header::HeaderMap;
use runtime::LoadedConnector;
use runtime::types::ConnectorInfo;
use serde_json::{Value, json};
use store::{ConfigEntry, Instance, InstanceId, OrgId};

use super::pick_or_text;
use super::webhook::{CONNECTORS, load_connectors};
use crate::{Target, Trace};

/// The target.
pub struct InstanceJson {
    rt: tokio::runtime::Runtime,
    connectors: Vec<Arc<LoadedConnector>>,
}

impl Default for InstanceJson {
    fn default() -> Self {
        Self::new()
    }
}

impl InstanceJson {
    /// Loads the bundled connectors.
    pub fn new() -> InstanceJson {
        let (rt, connectors) = load_connectors();
        InstanceJson { rt, connectors }
    }
}

/// A poll time the cycle could start from: now, give or take.
const NOW_MS: i64 = 1_700_000_000_000;

impl Target for InstanceJson {
    fn name(&self) -> &'static str {
        "instance"
    }

    fn run(&self, data: &[u8]) -> u64 {
        let mut trace = Trace::default();
        let req = Req {
            method: hyper::Method::POST,
            path: "/elements/api-v2/instances".into(),
            query: String::new(),
            headers: HeaderMap::new(),
            body: Bytes::copy_from_slice(data),
        };
        let body = match req.json_object() {
            Ok(b) => b,
            Err(e) => {
                trace.error(&e.to_string());
                let _ = e.body();
                return trace.finish();
            }
        };
        let key = match body.get("element").and_then(|e| e.get("key")) {
            Some(Value::String(k)) if !k.is_empty() => k.clone(),
            _ => String::new(),
        };
        let config = match config_field(&body) {
            Ok(c) => c,
            Err(e) => {
                trace.error(&e.to_string());
                return trace.finish();
            }
        };
        trace.hit(config.len().min(16) as u64);
        let connector = CONNECTORS
            .iter()
            .position(|c| *c == key)
            .map(|i| self.connectors[i].clone());
        // The host's own checks against a connector that is not loaded (no modes, no keys).
        if let Err(e) = event_settings(&ConnectorInfo::unknown(), &config) {
            trace.error(&e.reason);
        }
        let Some(connector) = connector else {
            trace.hit(1);
            self.show(&mut trace, &config, None);
            return trace.finish();
        };
        let (egress, quotas) = (Egress::default(), Quotas::default());
        let limits = Limits {
            egress: &egress,
            quotas: &quotas,
        };
        match self.rt.block_on(validate(&limits, &connector, &config)) {
            Ok(()) => {
                trace.hit(2);
                self.check_resources(&mut trace, connector.info(), &config);
                self.show(&mut trace, &config, Some(connector.info()));
            }
            Err(e) => {
                trace.error(&e.to_string());
                let _ = (e.status(), e.body());
            }
        }
        trace.finish()
    }

    fn generate(&self, u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<u8>> {
        let mut config = serde_json::Map::new();
        for _ in 0..u.int_in_range(0..=8)? {
            let key = pick_or_text(u, CONFIG_KEYS)?;
            let value = match u.int_in_range(0..=5)? {
                0 => json!(u.arbitrary::<bool>()?),
                1 => json!(u.arbitrary::<f64>()?),
                2 => json!(pick_or_text(
                    u,
                    &[
                        "true",
                        "webhooks",
                        "polling",
                        "15",
                        "-1",
                        "1e999",
                        "http://127.0.0.1:9/cb",
                        "https://u:p@h/?token=t",
                        "contacts|leads",
                        "{}",
                        ""
                    ]
                )?),
                3 => resources(u)?,
                4 => {
                    json!({pick_or_text(u, &["X-Header", "Host", "bad name", ""])?: pick_or_text(u, &["v", "\n", ""])?})
                }
                _ => Value::Null,
            };
            config.insert(key, value);
        }
        let body = json!({
            "element": {"key": pick_or_text(u, &CONNECTORS)?},
            "configuration": config,
            "name": pick_or_text(u, &["shop", ""])?,
            "tags": [pick_or_text(u, &["a", ""])?],
        });
        Ok(body.to_string().into_bytes())
    }

    fn dictionary(&self) -> &'static [&'static str] {
        &[
            "{",
            "}",
            "[",
            "]",
            "\"",
            ":",
            ",",
            "null",
            "true",
            "false",
            "\"true\"",
            "1e999",
            "-1e300",
            "\"element\":{\"key\":",
            "\"ecwid\"",
            "\"pardot\"",
            "\"infusionsoftrest\"",
            "\"configuration\":{",
            "\"event.notification.enabled\":",
            "\"event.vendor.type\":",
            "\"polling\"",
            "\"webhooks\"",
            "\"event.notification.callback.url\":",
            "\"http://127.0.0.1:9/cb\"",
            "\"event.poller.configuration\":",
            "\"event.poller.urls\":",
            "\"event.poller.refresh_interval\":",
            "\"event.notification.callback.headers\":",
            "\"event.notification.basic.password\":",
            "\"url\":",
            "\"idField\":",
            "\"datesConfiguration\":{",
            "\"updatedDateField\":",
            "\"updatedDateFormat\":",
            "\"updatedDateTimezone\":",
            "\"createdDateFormat\":",
            "\"pollDelay\":",
            "\"pageSize\":",
            "\"createdCheckTolerance\":",
            "\"yyyy-MM-dd'T'HH:mm:ss.SSS'Z'\"",
            "\"epoch:s\"",
            "${gmtDate:",
            "@",
            "?token=",
            "%",
            "\\u0000",
            "\\\"",
        ]
    }
}

const CONFIG_KEYS: &[&str] = &[
    "event.notification.enabled",
    "event.vendor.type",
    "event.notification.callback.url",
    "event.notification.signature.key",
    "event.notification.callback.headers",
    "event.notification.basic.username",
    "event.notification.basic.password",
    "event.poller.refresh_interval",
    "event.poller.configuration",
    "event.poller.urls",
    "ecwid.store.id",
    "ecwid.client.secret",
    "apikey.user.name",
    "apikey.user.password",
    "apikey.user.key",
    "oauth.api.key",
    "oauth.api.secret",
    "base.url",
];

/// An `event.poller.configuration` value (an object, or its JSON text).
fn resources(u: &mut Unstructured<'_>) -> arbitrary::Result<Value> {
    let number = |u: &mut Unstructured<'_>| -> arbitrary::Result<Value> {
        Ok(match u.int_in_range(0..=3)? {
            0 => json!(u.arbitrary::<f64>()?),
            1 => json!(u.arbitrary::<i64>()?),
            2 => json!(pick_or_text(u, &["1", "-1", "1e300", "NaN", "inf", ""])?),
            _ => Value::Null,
        })
    };
    let r = json!({
        pick_or_text(u, &["contacts", "orders", "appointments", ""])?: {
            "url": pick_or_text(u, &["/hubs/crm/contacts?since=${gmtDate:yyyy-MM-dd}", "/x", "", "${epoch:s}"])?,
            "idField": pick_or_text(u, &["id", "a.b", ""])?,
            "datesConfiguration": {
                "updatedDateField": pick_or_text(u, &["updated_at", ""])?,
                "updatedDateFormat": pick_or_text(u, &["yyyy-MM-dd HH:mm:ss", "epoch:s", "iso", "G", "'"])?,
                "updatedDateTimezone": pick_or_text(u, &["GMT", "America/New_York", "+99", "x"])?,
            },
            "pollDelay": number(u)?,
            "createdCheckTolerance": number(u)?,
            "pageSize": number(u)?,
            "filterByUpdatedDate": pick_or_text(u, &["true", "no"])?,
        }
    });
    Ok(if u.arbitrary()? {
        Value::String(r.to_string())
    } else {
        r
    })
}

impl InstanceJson {
    /// The resources of a configuration that validated, against the poll cycle's
    /// arithmetic: the window starts `pollDelay` before the last poll, and the URL
    /// template is rendered at that instant.
    fn check_resources(
        &self,
        trace: &mut Trace,
        info: &ConnectorInfo,
        config: &[(String, String)],
    ) {
        let Ok(events) = event_settings(info, config) else {
            panic!("a configuration that validated has event settings that do not");
        };
        if !(events.enabled && events.vendor_type == host::instances::settings::VendorType::Polling)
        {
            return;
        }
        let resources = host::polling::resources::resolve(info, config)
            .expect("the resources of a configuration that validated resolve");
        for r in &resources {
            trace.hit(3);
            for last in [0, NOW_MS] {
                let start = last.checked_sub(r.poll_delay_ms).unwrap_or_else(|| {
                    panic!(
                        "`{}`: the poll window start overflows: {last} - {} ms",
                        r.name, r.poll_delay_ms
                    )
                });
                if let Ok(at) = jiff::Timestamp::from_millisecond(start)
                    && let Err(e) = dates::render_template(&r.url, at)
                {
                    trace.error(&e.to_string());
                }
            }
        }
    }

    /// What the API shows of the instance it would store, and the settings the webhook
    /// path and delivery read.
    fn show(&self, trace: &mut Trace, config: &[(String, String)], info: Option<&ConnectorInfo>) {
        let record = Instance {
            id: InstanceId(1),
            org_id: OrgId(1),
            element_key: info.map(|i| i.key.clone()).unwrap_or_default(),
            name: "fuzz".into(),
            token_sha256: String::new(),
            tags: Vec::new(),
            config: config
                .iter()
                .zip(1..)
                .map(|((k, v), id)| ConfigEntry {
                    id,
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect(),
            provider_data: json!({}),
            disabled: false,
            created_ms: NOW_MS,
            updated_ms: NOW_MS,
        };
        let _ = configuration_json(&record, info);
        let live = LiveInstance::new(record);
        let shown = instance_json(&live, info, Some("token"));
        let _ = CallbackSettings::read(config);
        trace.hit(u64::from(live.events_on()) + 5);
        for (k, v) in config {
            let secret = is_secret(info.unwrap_or(&ConnectorInfo::unknown()), k);
            if is_shown_as_url(k, v) {
                let once = mask_url(v);
                // Masking what was shown changes nothing more: the API compares a URL sent
                // back with the masked rendering of the stored one.
                assert_eq!(mask_url(&once), once, "mask_url is not idempotent on {v:?}");
            }
            if secret && !v.is_empty() && info.is_some() {
                assert_eq!(
                    shown["configuration"][k],
                    host::instances::settings::MASK,
                    "the secret `{k}` is shown"
                );
            }
        }
    }
}
