//! Vendor webhooks in: find the instance, let the connector verify and parse, then hand
//! the events to the one emit path ([`crate::emit`]), which stores the notifications and
//! hands them to delivery.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;

use serde_json::value::RawValue;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};
use store::{InstanceId, NotificationId, Store, StoreError};

use crate::delivery::Dispatcher;
use crate::emit;
use crate::instances::settings::is_secret;
use crate::instances::{Instances, LiveInstance};
use crate::metrics::Metrics;
use crate::notify::Event;
use crate::registry::Registry;
use runtime::types::{ConnectorError, Context, WebhookRequest};
use runtime::{CallError, LoadedConnector};

/// A webhook as it reached `POST /events/{elementKey}[/{base64(instanceId)}]`.
#[derive(Debug, Clone)]
pub struct Webhook {
    /// The connector key from the path.
    pub element_key: String,
    /// The path suffix after the key, if any.
    pub suffix: Option<String>,
    /// The request method.
    pub method: String,
    /// The request path.
    pub path: String,
    /// The query string without `?`.
    pub query: String,
    /// The headers, names lowercase.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
}

impl Webhook {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn is_form(&self) -> bool {
        self.header("content-type")
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"))
    }

    /// What makes two webhooks the same one: sha256 of the query string, the content type
    /// and the body, each length-prefixed. Connectors read events from all three (Ecwid
    /// takes the event type from the query when the body has none), and the notifications'
    /// `raw` is made of the body and the content type. Other headers are left out: a
    /// vendor's retry may sign it again with a new timestamp.
    fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        let content_type = self.header("content-type").unwrap_or("");
        for part in [
            self.query.as_bytes(),
            content_type.as_bytes(),
            &self.body[..],
        ] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        h.finalize().into()
    }
}

/// The vendor's event ids of a webhook's events, when every event has one (contract 0.2's
/// `event-id`): they, not the bytes, say which webhook it is, so a vendor's retry that
/// changed a timestamp in the body is still recognized.
fn vendor_event_ids(events: &[runtime::types::EventObject]) -> Option<Vec<String>> {
    if events.is_empty() {
        return None;
    }
    events.iter().map(|e| e.event_id.clone()).collect()
}

/// What makes two webhooks with vendor event ids the same one: sha256 of the ids, each
/// length-prefixed, after a label that keeps it apart from a digest of bytes.
fn ids_digest(ids: &[String]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"vendor-event-ids");
    for id in ids {
        h.update((id.len() as u64).to_be_bytes());
        h.update(id.as_bytes());
    }
    h.finalize().into()
}

/// How long an identical webhook for an instance is answered without notifying again, by
/// default: vendors retry (and attackers replay) within hours.
pub const DEFAULT_DEDUPE_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// Why a webhook was refused.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// No connector has this key.
    #[error("no connector `{0}` is loaded")]
    UnknownConnector(String),
    /// No instance matches.
    #[error("{0}")]
    UnknownInstance(String),
    /// The vendor signature does not verify.
    #[error("{0}")]
    Unauthorized(String),
    /// The body or the request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// The instance finder matched instances of several organizations, and none of them
    /// can verify the webhook.
    #[error("{0}")]
    Ambiguous(String),
    /// The connector failed (trap, deadline, its own internal error).
    #[error("{0}")]
    Connector(String),
    /// The notifications could not be stored.
    #[error("cannot store the notifications: {0}")]
    Store(#[from] StoreError),
}

/// What happened to a webhook for one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The instance.
    pub instance_id: InstanceId,
    /// Event objects the connector found.
    pub events: usize,
    /// The notification ids stored (empty when dropped).
    pub notifications: Vec<NotificationId>,
    /// Why nothing was stored, when events are off.
    pub dropped: Option<String>,
    /// True when the instance was already notified of this same webhook (same query,
    /// content type and body) within the dedupe window: nothing new was stored, and
    /// `notifications` are the earlier ones.
    pub duplicate: bool,
}

/// The instances a webhook is for.
struct Targets {
    instances: Vec<Arc<LiveInstance>>,
    /// Set when the instance finder matched instances of more than one organization: the
    /// refusal to give if none of them checks the webhook's signature.
    shared: Option<String>,
}

impl Targets {
    /// Instances the sender named (header or path suffix).
    fn addressed(instances: Vec<Arc<LiveInstance>>) -> Targets {
        Targets {
            instances,
            shared: None,
        }
    }
}

/// What webhook intake needs.
pub struct Ingest {
    /// The loaded connectors.
    pub registry: Arc<Registry>,
    /// The instances.
    pub instances: Arc<Instances>,
    /// The outbox.
    pub store: Arc<dyn Store>,
    /// Delivery.
    pub dispatcher: Dispatcher,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// How long an identical webhook for an instance is answered without notifying again;
    /// `None` notifies every time.
    pub dedupe_window: Option<Duration>,
}

/// The body as the notifications' `raw`: a JSON body byte for byte, a form as an object
/// of its fields, anything else as a JSON string.
pub fn raw_body(w: &Webhook) -> Box<RawValue> {
    if !w.is_form()
        && let Ok(raw) = serde_json::from_slice::<&RawValue>(&w.body)
    {
        return raw.to_owned();
    }
    let value = if w.is_form() {
        form_value(&w.body)
    } else {
        Value::String(String::from_utf8_lossy(&w.body).into_owned())
    };
    serde_json::value::to_raw_value(&value).expect("a JSON value serializes")
}

/// A form body as a JSON object of strings (names and values percent-decoded, `+` a
/// space; a field named twice keeps its last value).
pub fn form_value(body: &[u8]) -> Value {
    let map: Map<String, Value> = form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
        .collect();
    Value::Object(map)
}

/// The value at a dotted path, as a string (numbers and booleans written out).
pub fn string_at(v: &Value, path: &str) -> Option<String> {
    let mut cur = v;
    for part in path.split('.') {
        cur = cur.get(part)?;
    }
    scalar_text(cur)
}

/// A string as it is, a number or a boolean written out; `None` for anything else.
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// [`string_at`] on JSON text, without building the whole document: each level is scanned
/// once for the path's next member, the others skipped without allocating.
///
/// `Err` when the text is not JSON; `Ok(None)` when the path leads nowhere or to an object.
pub fn json_string_at(text: &[u8], path: &str) -> Result<Option<String>, serde_json::Error> {
    let mut cur: &RawValue = serde_json::from_slice(text)?;
    for part in path.split('.') {
        if !cur.get().starts_with('{') {
            return Ok(None);
        }
        let mut de = serde_json::Deserializer::from_str(cur.get());
        match serde::de::DeserializeSeed::deserialize(Member(part), &mut de)? {
            Some(next) => cur = next,
            None => return Ok(None),
        }
    }
    Ok(serde_json::from_str::<Value>(cur.get())
        .ok()
        .as_ref()
        .and_then(scalar_text))
}

/// Reads a JSON object for the raw value of its member named `.0` (the last one, as
/// `serde_json::Value` reads duplicate keys).
struct Member<'k>(&'k str);

impl<'de> serde::de::DeserializeSeed<'de> for Member<'_> {
    type Value = Option<&'de RawValue>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Member<'_> {
    type Value = Option<&'de RawValue>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(is_it) = map.next_key_seed(KeyIs(self.0))? {
            if is_it {
                found = Some(map.next_value::<&'de RawValue>()?);
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// Compares an object key with `.0`, borrowed or unescaped, without keeping it.
struct KeyIs<'k>(&'k str);

impl<'de> serde::de::DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl serde::de::Visitor<'_> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }
}

/// The most ids one `Element-Instances` header may list: each is a notification per event
/// batch, so a long list would turn one request into that many stored copies.
pub const MAX_ADDRESSED_INSTANCES: usize = 16;

/// The instances an `Element-Instances` header names, each once, in the order given: at
/// most [`MAX_ADDRESSED_INSTANCES`] ids (repeats counted), or a 400 naming the header.
pub fn addressed_ids(header: &str) -> Result<Vec<InstanceId>, IngestError> {
    let listed: Vec<&str> = header.split(',').collect();
    if listed.len() > MAX_ADDRESSED_INSTANCES {
        return Err(IngestError::BadRequest(format!(
            "Element-Instances lists {} ids; at most {MAX_ADDRESSED_INSTANCES} are accepted",
            listed.len()
        )));
    }
    let mut ids: Vec<InstanceId> = Vec::with_capacity(listed.len());
    for s in listed {
        let id = InstanceId::parse(s.trim()).ok_or_else(|| {
            IngestError::BadRequest(format!(
                "Element-Instances must be instance ids separated by commas, not `{header}`"
            ))
        })?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// The instance id of a path suffix: base64 (standard or URL-safe, padded or not) of its
/// decimal text; `None` when it is not one.
pub fn decode_instance_id(suffix: &str) -> Option<InstanceId> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(suffix).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| InstanceId::parse(s.trim()))
}

fn call_error(e: CallError) -> IngestError {
    match e {
        CallError::Connector(ConnectorError::Unauthorized(m)) => IngestError::Unauthorized(m),
        CallError::Connector(ConnectorError::BadRequest(m)) => IngestError::BadRequest(m),
        CallError::Connector(ConnectorError::Unsupported(m)) => IngestError::BadRequest(m),
        CallError::Connector(ConnectorError::InvalidConfig(f)) => IngestError::BadRequest(format!(
            "the instance configuration `{}` is refused by the connector: {}",
            f.key, f.reason
        )),
        other => IngestError::Connector(other.to_string()),
    }
}

impl Ingest {
    /// The instances a webhook is for.
    fn targets(&self, w: &Webhook, connector: &LoadedConnector) -> Result<Targets, IngestError> {
        let key = &w.element_key;
        let by_ids = |ids: Vec<InstanceId>| -> Result<Vec<Arc<LiveInstance>>, IngestError> {
            ids.into_iter()
                .map(|id| {
                    self.instances
                        .get(id)
                        .filter(|i| &i.element_key == key)
                        .ok_or_else(|| {
                            IngestError::UnknownInstance(format!("no `{key}` instance {id}"))
                        })
                })
                .collect()
        };
        if let Some(h) = w.header("element-instances") {
            return by_ids(addressed_ids(h)?).map(Targets::addressed);
        }
        if let Some(suffix) = w.suffix.as_deref().filter(|s| !s.is_empty()) {
            let id = decode_instance_id(suffix).ok_or_else(|| {
                IngestError::UnknownInstance(format!(
                    "the path suffix `{suffix}` is not a base64-encoded instance id"
                ))
            })?;
            return by_ids(vec![id]).map(Targets::addressed);
        }
        let Some(finder) = &connector.info().instance_finder else {
            return Err(IngestError::UnknownInstance(format!(
                "`{key}` cannot find the instance from the payload: send the Element-Instances header or post to /events/{key}/<base64 instance id>"
            )));
        };
        let value = if w.is_form() {
            string_at(&form_value(&w.body), &finder.payload_path)
        } else {
            json_string_at(&w.body, &finder.payload_path)
                .map_err(|e| IngestError::BadRequest(format!("the body is not valid JSON: {e}")))?
        };
        let Some(value) = value else {
            return Err(IngestError::BadRequest(format!(
                "the body has no `{}` to find the instance by",
                finder.payload_path
            )));
        };
        let found = self.instances.find(key, &finder.config_key, &value);
        let Some(first) = found.first() else {
            return Err(IngestError::UnknownInstance(format!(
                "no `{key}` instance has {} = {value}",
                finder.config_key
            )));
        };
        let shared = found.iter().any(|i| i.org_id != first.org_id).then(|| {
            format!(
                "instances of several organizations have {} = {value} and none of them \
                 checks the webhook's signature: post to /events/{key}/<base64 instance id> \
                 or send the Element-Instances header",
                finder.config_key
            )
        });
        Ok(Targets {
            instances: found,
            shared,
        })
    }

    /// Verifies, parses and stores a webhook for every instance it is for. Returns once the
    /// notifications are durably stored.
    pub async fn webhook(&self, w: Webhook) -> Result<Vec<Outcome>, IngestError> {
        let connector = self
            .registry
            .get(&w.element_key)
            .ok_or_else(|| IngestError::UnknownConnector(w.element_key.clone()))?;
        let Targets {
            instances: mut targets,
            shared,
        } = self.targets(&w, &connector)?;
        let request = WebhookRequest {
            method: w.method.clone(),
            path: w.path.clone(),
            query: w.query.clone(),
            headers: connector.webhook_headers(w.headers.clone()),
            body: w.body.to_vec(),
        };
        if let Some(why) = shared {
            targets = signature_checking(&connector, targets, &request, |instance, e| {
                tracing::warn!(
                    instance = instance.id.0,
                    "a webhook matched instances of several organizations and this one's \
                     signature check failed, so it gets none: {e}"
                )
            })
            .await;
            if targets.is_empty() {
                return Err(IngestError::Ambiguous(why));
            }
        }
        let mut outcomes = Vec::with_capacity(targets.len());
        // The instances that take the webhook, with their events and their outcome's index.
        let mut found: Vec<(Arc<LiveInstance>, Vec<Event>, usize)> = Vec::new();
        let mut refused: Option<String> = None;
        // The vendor event ids of the first instance that parsed the webhook (the same
        // connector reads the same ids from the same request for every instance).
        let mut vendor_ids: Option<Option<Vec<String>>> = None;
        let now = crate::now_ms();
        for instance in targets {
            if !instance.events_on() {
                outcomes.push(Outcome {
                    instance_id: instance.id,
                    events: 0,
                    notifications: Vec::new(),
                    dropped: Some(format!("events are disabled on instance {}", instance.id)),
                    duplicate: false,
                });
                continue;
            }
            let ctx = Context {
                config: instance.connector_config.clone(),
                credentials: None,
            };
            let start = Instant::now();
            // Each instance checks the signature with its own secret; one that refuses it is
            // skipped, so another instance's bad secret cannot block this one's events.
            let events = match connector.verify_and_parse_webhook(&ctx, &request).await {
                Ok(parsed) => parsed.map_err(call_error)?,
                Err(e) => match call_error(e) {
                    IngestError::Unauthorized(m) => {
                        refused = Some(m);
                        continue;
                    }
                    e => return Err(e),
                },
            };
            self.metrics.connector_call(start.elapsed());
            if vendor_ids.is_none() {
                vendor_ids = Some(vendor_event_ids(&events));
            }
            let events: Vec<Event> = events
                .iter()
                .map(|e| Event {
                    object_type: e.object_type.clone(),
                    object_id: e.object_id.clone(),
                    event_type: e.event_type.as_str(),
                    date: e.date.clone(),
                })
                .collect();
            outcomes.push(Outcome {
                instance_id: instance.id,
                events: events.len(),
                notifications: Vec::new(),
                dropped: None,
                duplicate: false,
            });
            found.push((instance, events, outcomes.len() - 1));
        }
        if outcomes.is_empty() {
            // Every instance refused the signature.
            return Err(IngestError::Unauthorized(refused.unwrap_or_default()));
        }
        let raw = (!found.is_empty()).then(|| raw_body(&w));
        let batches: Vec<emit::Batch<'_>> = match raw.as_deref() {
            Some(raw) => found
                .iter()
                .map(|(instance, events, _)| emit::Batch {
                    instance,
                    hub: &connector.info().hub,
                    events,
                    raw: emit::Raw::Webhook(raw),
                })
                .collect(),
            None => Vec::new(),
        };
        let window_ms = self
            .dedupe_window
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let persist = emit::Persist::Webhook {
            digest: match vendor_ids.flatten() {
                Some(ids) => ids_digest(&ids),
                None => w.digest(),
            },
            dedupe_since: window_ms.map(|ms| now.saturating_sub(ms)),
        };
        let emitted = emit::emit(&self.store, &self.dispatcher, &batches, persist, now).await?;
        let mut count = 0;
        let mut duplicates = 0;
        for ((_, _, at), emitted) in found.iter().zip(emitted) {
            if emitted.duplicate {
                duplicates += 1;
            } else {
                count += emitted.ids.len();
            }
            outcomes[*at].notifications = emitted.ids;
            outcomes[*at].duplicate = emitted.duplicate;
        }
        if count > 0 {
            self.metrics.webhook_accepted(count);
        } else if duplicates > 0 {
            self.metrics.webhook_duplicate();
        } else {
            self.metrics.webhook_dropped();
        }
        Ok(outcomes)
    }
}

/// Of instances of several organizations that the finder matched, those that check the
/// webhook's signature. One that does not would take any webhook for the vendor account,
/// another organization's included, so it gets none: an instance counts as checking when
/// it has a secret configured (a non-empty value for a secret key) and refuses the same
/// body sent unsigned (no header but Content-Type, no query string), which is where vendors
/// put their signatures. An instance whose check fails some other way (a trap, a time-out)
/// is left out, and does not fail the others: `on_failure` hears of it.
pub async fn signature_checking(
    connector: &LoadedConnector,
    instances: Vec<Arc<LiveInstance>>,
    request: &WebhookRequest,
    mut on_failure: impl FnMut(&LiveInstance, &CallError),
) -> Vec<Arc<LiveInstance>> {
    let unsigned = WebhookRequest {
        query: String::new(),
        headers: request
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .cloned()
            .collect(),
        ..request.clone()
    };
    let mut out = Vec::with_capacity(instances.len());
    for instance in instances {
        let config = instance.connector_config.clone();
        let has_secret = config
            .iter()
            .any(|(k, v)| !v.trim().is_empty() && is_secret(connector.info(), k));
        if !has_secret {
            continue;
        }
        let ctx = Context {
            config,
            credentials: None,
        };
        // A refusal of the unsigned body is `unauthorized`, or a bad request (a signature
        // header missing) from the check or, in contract 0.2's one call, from the parse: a
        // body the parse cannot read unsigned it cannot read signed either.
        match connector.verify_and_parse_webhook(&ctx, &unsigned).await {
            Err(CallError::Connector(
                ConnectorError::Unauthorized(_) | ConnectorError::BadRequest(_),
            ))
            | Ok(Err(CallError::Connector(ConnectorError::BadRequest(_)))) => out.push(instance),
            Ok(_) => {}
            Err(e) => on_failure(&instance, &e),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_base64_instance_ids() {
        assert_eq!(decode_instance_id("NDcxMTk2"), Some(InstanceId(471196)));
        assert_eq!(decode_instance_id("NDcxMTk2\n"), None);
        assert_eq!(decode_instance_id("!!"), None);
    }

    #[test]
    fn reads_form_bodies() {
        assert_eq!(
            form_value(b"a=1&b=x+y%21&c&&d=%20e+f%2Bg"),
            serde_json::json!({"a": "1", "b": "x y!", "c": "", "d": " e f+g"})
        );
        // Malformed escapes are kept as written; bytes that are not UTF-8 become U+FFFD.
        assert_eq!(
            form_value(b"a=100%&b=%zz%4&c=%e9&d=%41&%4"),
            serde_json::json!({"a": "100%", "b": "%zz%4", "c": "\u{fffd}", "d": "A", "%4": ""})
        );
    }

    #[test]
    fn finds_values_in_json_text_by_dotted_path() {
        let text = br#"{"storeId": 1003, "data": {"orderId": "X\u0059", "o": {}}}"#;
        assert_eq!(
            json_string_at(text, "storeId").unwrap().as_deref(),
            Some("1003")
        );
        assert_eq!(
            json_string_at(text, "data.orderId").unwrap().as_deref(),
            Some("XY")
        );
        assert_eq!(json_string_at(text, "data.o").unwrap(), None);
        assert_eq!(json_string_at(text, "data.none").unwrap(), None);
        assert_eq!(json_string_at(text, "storeId.deeper").unwrap(), None);
        let escaped = br#"{"a": {"n": [1, {"store": 2}], "s\u0074ore": "first", "store": "second"}, "store": 3}"#;
        assert_eq!(
            json_string_at(escaped, "a.store").unwrap().as_deref(),
            Some("second")
        );
        assert_eq!(
            json_string_at(escaped, "store").unwrap().as_deref(),
            Some("3")
        );
        assert!(json_string_at(b"{not json", "storeId").is_err());
    }

    #[test]
    fn a_json_body_is_kept_byte_for_byte_as_raw() {
        let w = Webhook {
            element_key: "ecwid".into(),
            suffix: None,
            method: "POST".into(),
            path: "/".into(),
            query: String::new(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: Bytes::from_static(br#"{"b": 1,  "a": [2]}"#),
        };
        assert_eq!(raw_body(&w).get(), r#"{"b": 1,  "a": [2]}"#);
        let form = Webhook {
            headers: vec![(
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            )],
            body: Bytes::from_static(b"a=1"),
            ..w.clone()
        };
        assert_eq!(raw_body(&form).get(), r#"{"a":"1"}"#);
        let text = Webhook {
            body: Bytes::from_static(b"not json"),
            ..w
        };
        assert_eq!(raw_body(&text).get(), r#""not json""#);
    }

    #[test]
    fn finds_values_by_dotted_path() {
        let v: Value = serde_json::json!({"storeId": 1003, "data": {"orderId": "X"}});
        assert_eq!(string_at(&v, "storeId").as_deref(), Some("1003"));
        assert_eq!(string_at(&v, "data.orderId").as_deref(), Some("X"));
        assert_eq!(string_at(&v, "data.none"), None);
    }
}
