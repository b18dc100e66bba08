//! The webhook path: what `POST /events/{key}[/{suffix}]` does before the outbox, in the
//! order `host::ingest::Ingest::webhook` does it, with the bundled connectors (built by the
//! `tests` crate's build script) loaded in the `runtime` crate:
//!
//! 1. headers as hyper accepts them, read as `api::webhooks` reads them;
//! 2. the instances: `Element-Instances` (`ingest::addressed_ids`), the path suffix
//!    (`ingest::decode_instance_id`) or the connector's instance finder over the JSON or
//!    form body (`ingest::json_string_at`, `ingest::form_value` + `ingest::string_at`),
//!    then `Instances::find`;
//! 3. when the finder matched instances of several organizations, the unsigned check
//!    (`verify-webhook` without the signature headers);
//! 4. `verify-webhook` + `parse-webhook` per instance with events on (and, when the host
//!    found no instance, with the connector's first test instance, so that every input
//!    reaches a connector);
//! 5. the body as `raw` (`ingest::raw_body`) and the notification envelopes
//!    (`notify::build`), which must be JSON.
//!
//! An input is: the connector key on the first line (an unknown key picks one by its
//! bytes); then, up to an empty line, `?query`, `/suffix` or `name: value` header lines;
//! then the body.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arbitrary::Unstructured;
use bytes::Bytes;
use host::ingest::{
    Webhook as HostWebhook, addressed_ids, decode_instance_id, form_value, json_string_at,
    raw_body, signature_checking, string_at,
};
use host::instances::{Instances, LiveInstance};
use host::notify::{self, Event, WEBHOOK_BATCH};
use hyper::header::{HeaderName, HeaderValue};
use runtime::types::{Context, WebhookRequest};
use runtime::{CallError, Limits, LoadedConnector, Runtime};
use serde_json::Value;
use store::{ConfigEntry, Instance, InstanceId, OrgId};

use super::pick_or_text;
use crate::{Target, Trace, split_lines, text};

/// The bundled connectors.
pub const CONNECTORS: [&str; 3] = ["ecwid", "pardot", "infusionsoftrest"];

/// The Ecwid client secret of instance 1 (FACTS.md's signature vector).
pub const ECWID_SECRET: &str = "abcde123456789";

/// The target: the connectors loaded once, the test instances, a runtime to call them on.
pub struct Webhook {
    rt: tokio::runtime::Runtime,
    connectors: Vec<Arc<LoadedConnector>>,
    instances: Instances,
    /// Failures of a connector call other than its own answer, by kind.
    failures: Mutex<HashMap<String, u64>>,
    calls: AtomicU64,
}

impl Default for Webhook {
    fn default() -> Self {
        Self::new()
    }
}

impl Webhook {
    /// Loads the bundled connectors (panics when they are not built).
    pub fn new() -> Webhook {
        let (rt, connectors) = load_connectors();
        Webhook {
            rt,
            connectors,
            instances: Instances::new(test_instances()),
            failures: Mutex::new(HashMap::new()),
            calls: AtomicU64::new(0),
        }
    }

    fn failure(&self, e: &CallError) {
        let kind = match e {
            CallError::Connector(_) => return,
            CallError::CpuDeadline { key, .. } => format!("{key}: CPU deadline"),
            CallError::Timeout { key, .. } => format!("{key}: time-out"),
            CallError::OutOfMemory { key, .. } => format!("{key}: out of memory"),
            CallError::Trap { key, message } => {
                format!("{key}: trap {}", message.lines().next().unwrap_or(""))
            }
            CallError::Instantiate { key, .. } => format!("{key}: instantiate"),
        };
        *self.failures.lock().unwrap().entry(kind).or_default() += 1;
    }
}

/// A current-thread runtime and the three bundled connectors loaded on it.
pub fn load_connectors() -> (tokio::runtime::Runtime, Vec<Arc<LoadedConnector>>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let runtime = Runtime::new(Limits::default(), None).expect("the wasm engine");
    let connectors = CONNECTORS
        .iter()
        .map(|name| {
            let path = tests::guest(name);
            let bytes = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            rt.block_on(runtime.load(&format!("{name}.wasm"), &bytes))
                .unwrap_or_else(|e| panic!("cannot load {name}: {e}"))
        })
        .collect();
    (rt, connectors)
}

fn instance(id: i64, org: i64, key: &str, config: &[(&str, &str)], disabled: bool) -> Instance {
    let mut all = vec![
        ("event.notification.enabled", "true"),
        ("event.notification.callback.url", "http://127.0.0.1:9/cb"),
        ("event.notification.signature.key", "k"),
    ];
    all.extend_from_slice(config);
    Instance {
        id: InstanceId(id),
        org_id: OrgId(org),
        element_key: key.into(),
        name: format!("{key} {id}"),
        token_sha256: format!("token{id}"),
        tags: vec!["fuzz".into()],
        config: all
            .iter()
            .zip(id * 100..)
            .map(|((k, v), cid)| ConfigEntry {
                id: cid,
                key: k.to_string(),
                value: v.to_string(),
            })
            .collect(),
        provider_data: serde_json::json!({}),
        disabled,
        created_ms: 0,
        updated_ms: 0,
    }
}

/// Ecwid store 1003 in two organizations (both with a client secret, so the unsigned
/// check runs), store 1004 without a secret, store 1005 disabled; a Pardot and a Keap
/// instance.
fn test_instances() -> Vec<Instance> {
    vec![
        instance(
            1,
            1,
            "ecwid",
            &[
                ("ecwid.store.id", "1003"),
                ("ecwid.client.secret", ECWID_SECRET),
            ],
            false,
        ),
        instance(
            2,
            2,
            "ecwid",
            &[
                ("ecwid.store.id", "1003"),
                ("ecwid.client.secret", "another"),
            ],
            false,
        ),
        instance(3, 2, "ecwid", &[("ecwid.store.id", "1004")], false),
        instance(4, 1, "ecwid", &[("ecwid.store.id", "1005")], true),
        instance(
            5,
            1,
            "pardot",
            &[
                ("apikey.user.name", "u@example.com"),
                ("apikey.user.password", "p"),
                ("apikey.user.key", "k"),
            ],
            false,
        ),
        instance(
            6,
            1,
            "infusionsoftrest",
            &[("oauth.api.key", "k"), ("oauth.api.secret", "s")],
            false,
        ),
    ]
}

/// The request parts an input describes.
struct Parsed {
    connector: usize,
    suffix: Option<String>,
    query: String,
    headers: Vec<(String, String)>,
    body: Bytes,
}

fn parse_input(data: &[u8]) -> Parsed {
    let (first, mut rest) = split_lines(data, 1);
    let key = first[0];
    let connector = CONNECTORS
        .iter()
        .position(|c| c.as_bytes() == key)
        .unwrap_or_else(|| key.iter().map(|&b| b as usize).sum::<usize>() % CONNECTORS.len());
    let (mut suffix, mut query, mut headers) = (None, String::new(), Vec::new());
    loop {
        let (line, after) = split_lines(rest, 1);
        let line = line[0];
        rest = after;
        if line.is_empty() {
            break;
        }
        match line[0] {
            b'?' => query = text(&line[1..]),
            b'/' => suffix = Some(text(&line[1..])),
            _ => {
                let (name, value) = match line.iter().position(|&b| b == b':') {
                    Some(i) => (&line[..i], line[i + 1..].trim_ascii_start()),
                    None => (line, &b""[..]),
                };
                // What hyper lets through, read as `api::webhooks` reads it.
                if let (Ok(name), Ok(value)) =
                    (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
                {
                    headers.push((
                        name.as_str().to_string(),
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    ));
                }
            }
        }
        if rest.is_empty() {
            break;
        }
    }
    Parsed {
        connector,
        suffix,
        query,
        headers,
        body: Bytes::copy_from_slice(rest),
    }
}

impl Webhook {
    /// `Ingest::targets`: the instances, and whether they span organizations.
    fn targets(
        &self,
        trace: &mut Trace,
        w: &HostWebhook,
        connector: &LoadedConnector,
    ) -> Option<(Vec<Arc<LiveInstance>>, bool)> {
        let key = &w.element_key;
        let by_ids = |ids: Vec<InstanceId>| -> Option<Vec<Arc<LiveInstance>>> {
            ids.into_iter()
                .map(|id| self.instances.get(id).filter(|i| &i.element_key == key))
                .collect()
        };
        let header = |name: &str| {
            w.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        if let Some(h) = header("element-instances") {
            trace.hit(100);
            let ids = match addressed_ids(h) {
                Ok(ids) => ids,
                Err(e) => {
                    trace.error(&e.to_string());
                    return None;
                }
            };
            assert!(ids.len() <= host::ingest::MAX_ADDRESSED_INSTANCES);
            return by_ids(ids).map(|i| (i, false));
        }
        if let Some(suffix) = w.suffix.as_deref().filter(|s| !s.is_empty()) {
            trace.hit(101);
            return by_ids(vec![decode_instance_id(suffix)?]).map(|i| (i, false));
        }
        let finder = connector.info().instance_finder.as_ref()?;
        let is_form = header("content-type")
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
        let value = if is_form {
            trace.hit(102);
            string_at(&form_value(&w.body), &finder.payload_path)
        } else {
            match json_string_at(&w.body, &finder.payload_path) {
                Ok(v) => v,
                Err(e) => {
                    trace.error(&e.to_string());
                    return None;
                }
            }
        }?;
        trace.hit(103);
        let found = self.instances.find(key, &finder.config_key, &value);
        let first = found.first()?;
        let shared = found.iter().any(|i| i.org_id != first.org_id);
        Some((found, shared))
    }

    async fn call(&self, trace: &mut Trace, w: HostWebhook) {
        let index = CONNECTORS
            .iter()
            .position(|c| *c == w.element_key)
            .expect("a bundled connector");
        let connector = &self.connectors[index];
        let request = WebhookRequest {
            method: w.method.clone(),
            path: w.path.clone(),
            query: w.query.clone(),
            headers: w.headers.clone(),
            body: w.body.to_vec(),
        };
        let mut targets = match self.targets(trace, &w, connector) {
            Some((targets, shared)) => {
                trace.hit(10 + targets.len() as u64);
                if shared {
                    trace.hit(20);
                    {
                        let checked = targets.len() as u64;
                        let kept = signature_checking(connector, targets, &request, |_, e| {
                            self.failure(e)
                        })
                        .await;
                        self.calls.fetch_add(checked, Ordering::Relaxed);
                        kept
                    }
                } else {
                    targets
                }
            }
            None => Vec::new(),
        };
        let direct = targets.is_empty();
        if direct {
            // The host would answer 4xx here; the connector still gets the body.
            targets = self
                .instances
                .ids()
                .into_iter()
                .filter_map(|id| self.instances.get(id))
                .filter(|i| i.element_key == w.element_key && !i.disabled)
                .min_by_key(|i| i.id)
                .into_iter()
                .collect();
        }
        let mut found: Vec<(Arc<LiveInstance>, Vec<Event>)> = Vec::new();
        for instance in targets {
            if !instance.events_on() {
                trace.hit(30);
                continue;
            }
            let ctx = Context {
                config: instance.connector_config.clone(),
                credentials: None,
            };
            self.calls.fetch_add(1, Ordering::Relaxed);
            match connector.verify_and_parse_webhook(&ctx, &request).await {
                Ok(Ok(events)) => {
                    trace.hit(40 + events.len().min(30) as u64);
                    let events = events
                        .iter()
                        .map(|e| Event {
                            object_type: e.object_type.clone(),
                            object_id: e.object_id.clone(),
                            event_type: e.event_type.as_str(),
                            date: e.date.clone(),
                        })
                        .collect();
                    found.push((instance, events));
                }
                Ok(Err(e)) | Err(e) => {
                    trace.error(&e.to_string());
                    self.failure(&e);
                }
            }
        }
        if found.is_empty() && direct {
            return;
        }
        let raw = raw_body(&w);
        assert!(
            serde_json::from_str::<&serde_json::value::RawValue>(raw.get()).is_ok(),
            "raw is not JSON"
        );
        for (instance, events) in &found {
            let source = notify::Source {
                element_key: &instance.element_key,
                hub: &connector.info().hub,
                instance_id: instance.id,
                instance_name: &instance.name,
                instance_tags: &instance.tags,
                org_id: instance.org_id,
            };
            let built = notify::build(&source, events, &*raw, WEBHOOK_BATCH, 1_700_000_000_000);
            assert_eq!(built.len(), events.len().div_ceil(WEBHOOK_BATCH));
            for b in &built {
                // JSON text; `raw` keeps the vendor's bytes, so a lone surrogate escape
                // (`"\uDFFF"`, valid JSON grammar) stays, which `Value` refuses to decode.
                if let Err(e) = serde_json::from_slice::<&serde_json::value::RawValue>(&b.body) {
                    panic!(
                        "a notification is not JSON ({e}): {}",
                        String::from_utf8_lossy(&b.body)
                    );
                }
                if let Ok(v) = serde_json::from_slice::<Value>(&b.body) {
                    assert_eq!(v["message"]["instanceId"], instance.id.0);
                }
            }
        }
    }
}

impl Target for Webhook {
    fn name(&self) -> &'static str {
        "webhook"
    }

    fn run(&self, data: &[u8]) -> u64 {
        let mut trace = Trace::default();
        let p = parse_input(data);
        trace.hit(p.connector as u64);
        let key = CONNECTORS[p.connector];
        let w = HostWebhook {
            element_key: key.to_string(),
            path: match &p.suffix {
                Some(s) => format!("/elements/api-v2/events/{key}/{s}"),
                None => format!("/elements/api-v2/events/{key}"),
            },
            suffix: p.suffix,
            method: "POST".into(),
            query: p.query,
            headers: p.headers,
            body: p.body,
        };
        self.rt.block_on(self.call(&mut trace, w));
        trace.finish()
    }

    fn generate(&self, u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<u8>> {
        let mut out = String::new();
        out.push_str(u.choose(&CONNECTORS)?);
        out.push('\n');
        let form = u.ratio(1, 4)?;
        out.push_str(if form {
            "content-type: application/x-www-form-urlencoded\n"
        } else {
            "content-type: application/json\n"
        });
        if u.ratio(1, 3)? {
            out.push_str("x-ecwid-webhook-signature: ");
            out.push_str(&pick_or_text(
                u,
                &[
                    "lidx/4J5L2Pp4auvwGBp6DwPkpPmyVLI3oLB440X358=",
                    "",
                    "=",
                    "AAAA",
                ],
            )?);
            out.push('\n');
        }
        if u.ratio(1, 6)? {
            out.push_str("element-instances: ");
            out.push_str(&pick_or_text(
                u,
                &["1", "1,2", "2, 3", "5", "9999", "-1", "1,1,1"],
            )?);
            out.push('\n');
        }
        if u.ratio(1, 6)? {
            out.push('/');
            out.push_str(&pick_or_text(
                u,
                &["MQ==", "MQ", "Mg", "NQ", "", "!!", "MTAwMDA"],
            )?);
            out.push('\n');
        }
        if u.ratio(1, 4)? {
            out.push_str("?eventtype=");
            out.push_str(&pick_or_text(
                u,
                &["order.created", "order.deleted", "product.updated", ""],
            )?);
            out.push('\n');
        }
        out.push('\n');
        if form {
            for i in 0..u.int_in_range(0..=6)? {
                if i > 0 {
                    out.push('&');
                }
                out.push_str(&pick_or_text(u, KEYS)?);
                out.push('=');
                out.push_str(&pick_or_text(
                    u,
                    &["1003", "order.created", "%41", "%", "+", "X"],
                )?);
            }
        } else {
            out.push_str(&json(u, 0)?.to_string());
        }
        Ok(out.into_bytes())
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
            "\\",
            "\\u0000",
            "\\ud800",
            "\\\"",
            "null",
            "true",
            "1e999",
            "-0",
            "\"storeId\":",
            "\"eventType\":",
            "\"eventId\":",
            "\"eventCreated\":",
            "\"entityId\":",
            "\"data\":{",
            "\"orderId\":",
            "\"order.created\"",
            "\"order.deleted\"",
            "\"unfinished_order.updated\"",
            "1003",
            "1004",
            "&",
            "=",
            "%",
            "%2",
            "+",
            "\n",
            "\nelement-instances: ",
            "content-type: application/x-www-form-urlencoded",
            "\nx-ecwid-webhook-signature: ",
            "?eventtype=",
            "/MQ==",
        ]
    }

    fn notes(&self) -> Vec<String> {
        let mut notes = vec![format!(
            "{} connector calls",
            self.calls.load(Ordering::Relaxed)
        )];
        let failures = self.failures.lock().unwrap();
        let mut kinds: Vec<_> = failures.iter().collect();
        kinds.sort();
        if kinds.is_empty() {
            notes.push("no connector failed other than with its own error".into());
        }
        for (kind, n) in kinds {
            notes.push(format!("{n} × {kind}"));
        }
        notes
    }
}

const KEYS: &[&str] = &[
    "storeId",
    "eventId",
    "eventCreated",
    "eventType",
    "entityId",
    "data",
    "orderId",
    "newPaymentStatus",
    "id",
    "",
];

/// A JSON value shaped like an Ecwid webhook: its keys, scalars of every type, nesting.
fn json(u: &mut Unstructured<'_>, depth: u32) -> arbitrary::Result<Value> {
    Ok(match u.int_in_range(0..=if depth > 3 { 4 } else { 6 })? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => serde_json::json!(u.arbitrary::<i64>()?),
        3 => serde_json::json!(u.arbitrary::<f64>()?),
        4 => Value::String(pick_or_text(
            u,
            &[
                "order.created",
                "order.updated",
                "order.deleted",
                "1003",
                "XJ12H",
                "",
            ],
        )?),
        5 => Value::Array(
            (0..u.int_in_range(0..=3)?)
                .map(|_| json(u, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        _ => {
            let mut m = serde_json::Map::new();
            for _ in 0..u.int_in_range(0..=7)? {
                m.insert(pick_or_text(u, KEYS)?, json(u, depth + 1)?);
            }
            Value::Object(m)
        }
    })
}
