//! The OpenAPI 3.1 document of the API (`GET /elements/api-v2/openapi.json`), generated
//! with utoipa from the answer types (`model`) and one annotated stub per operation below.
//!
//! The stubs are never called: `route` dispatches to the handlers. What keeps the two
//! together is `tests::the_document_lists_every_route_and_nothing_else` (the document's
//! operations are exactly [`super::OPERATIONS`], which `super::tests` checks against the
//! router) and the schemathesis run of `tests/it/openapi.rs`, which holds every live answer
//! to its documented status, content type and schema.

use std::sync::LazyLock;

use serde_json::Value;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::model::*;

/// The name of the `User …, Organization …` security scheme.
const ORGANIZATION: &str = "organization";
/// The name of the `Element <token>` security scheme.
const ELEMENT: &str = "element";

/// The document, built once.
static DOCUMENT: LazyLock<Value> = LazyLock::new(build);

/// The OpenAPI document as JSON.
pub fn document() -> &'static Value {
    &DOCUMENT
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "connector-host",
        description = "Event connectors (WebAssembly components) behind the Open Connectors \
            Events Framework API: vendors' webhooks and polled APIs in, signed notifications \
            out to each instance's callback URL.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        ops::openapi_json,
        ops::elements_list,
        ops::element_get,
        ops::webhook,
        ops::webhook_with_suffix,
        ops::instance_create,
        ops::instance_list,
        ops::instance_get,
        ops::instance_patch,
        ops::instance_delete,
        ops::configuration_list,
        ops::configuration_patch,
        ops::events_list,
        ops::event_get,
        ops::event_deliveries,
        ops::event_redeliver,
        ops::events_poll,
        ops::dead_letters,
        ops::dead_letters_redeliver,
        ops::stats,
        ops::metrics,
    ),
    components(schemas(ErrorBody, Envelope)),
    modifiers(&Security),
    tags(
        (name = "elements", description = "The loaded connectors."),
        (name = "instances", description = "Connector instances and their configuration."),
        (name = "events", description = "An instance's notifications, their delivery attempts, redelivery and polling."),
        (name = "vendors", description = "Called by vendors, not by users: webhooks in."),
        (name = "operations", description = "The document itself and metrics."),
    )
)]
struct Api;

/// The callbacks the host makes: the `webhooks` of the document (utoipa 5 has no field for
/// them, so they are made as paths and moved).
#[derive(OpenApi)]
#[openapi(paths(ops::notification))]
struct Callbacks;

/// Adds the two forms of `Authorization` as security schemes.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            ORGANIZATION,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "An organization's user: `Authorization: User <user secret>, Organization \
                 <organization secret>` (made by `connector-host orgs add`; the host keeps \
                 only their digests). Sees and changes every instance of the organization.",
            ))),
        );
        components.add_security_scheme(
            ELEMENT,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "One instance's own calls: `Authorization: Element <token>`, the token shown \
                 once in the answer to the instance's creation. Sees that instance only and \
                 cannot create instances.",
            ))),
        );
    }
}

fn build() -> Value {
    let mut api = serde_json::to_value(Api::openapi()).expect("the document serializes");
    let callbacks = Callbacks::openapi();
    let webhooks = serde_json::to_value(&callbacks.paths.paths).expect("paths serialize");
    // The callback's schemas (the envelope's parts) join the document's.
    let schemas =
        serde_json::to_value(callbacks.components.map(|c| c.schemas)).expect("schemas serialize");
    if let (Some(all), Value::Object(more)) = (
        api.pointer_mut("/components/schemas")
            .and_then(Value::as_object_mut),
        schemas,
    ) {
        for (k, v) in more {
            all.entry(k).or_insert(v);
        }
    }
    // utoipa writes `/notification` as the path of the stub: a webhook is named without `/`.
    let webhooks: serde_json::Map<String, Value> = match webhooks {
        Value::Object(m) => m
            .into_iter()
            .map(|(k, v)| (k.trim_start_matches('/').to_string(), v))
            .collect(),
        _ => Default::default(),
    };
    api["webhooks"] = Value::Object(webhooks);
    api
}

/// The operations, as stubs carrying utoipa's annotations (`route` calls the handlers).
/// Each stub's doc comment is its summary and description.
#[allow(
    dead_code,
    reason = "stubs carrying annotations; `route` calls the handlers"
)]
mod ops {
    use super::*;

    /// This document.
    #[utoipa::path(
        get, path = "/elements/api-v2/openapi.json", tag = "operations",
        responses((status = 200, description = "The OpenAPI 3.1 document.", body = Object)),
    )]
    fn openapi_json() {}

    /// The loaded connectors, the files still loading and the files that failed to load.
    #[utoipa::path(
        get, path = "/elements/api-v2/elements", tag = "elements",
        responses((status = 200, description = "The connectors.", body = ElementList)),
    )]
    fn elements_list() {}

    /// One loaded connector.
    #[utoipa::path(
        get, path = "/elements/api-v2/elements/{key}", tag = "elements",
        params(("key" = String, Path, description = "The connector's key.", example = "ecwid")),
        responses(
            (status = 200, description = "The connector.", body = Element),
            (status = 404, description = "No loaded connector has this key.", body = ErrorBody),
            (status = 503, description = "Not loaded yet, and connector files are still loading.",
                body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait."))),
        ),
    )]
    fn element_get() {}

    /// A vendor's webhook (called by the vendor, not by users).
    ///
    /// The connector `key` verifies (signature, token) and parses the body, JSON or form. The
    /// instances are found by the header `Element-Instances: <id>[,<id>…]` (at most 16), else
    /// by the connector's instance finder (Ecwid: `storeId`); the webhook goes to every one
    /// that verifies it. Answered 200 once its notifications are stored; a repeat of a webhook
    /// already notified is answered 200 again with `duplicate` set, notifying nothing.
    #[utoipa::path(
        post, path = "/elements/api-v2/events/{key}", tag = "vendors",
        params(
            ("key" = String, Path, description = "The connector's key.", example = "ecwid"),
            ("Element-Instances" = Option<String>, Header, description = "The instances, by id, comma-separated (at most 16)."),
        ),
        request_body(description = "The vendor's body as the vendor sends it.", content(
            (Object = "application/json"),
            (Object = "application/x-www-form-urlencoded"),
        )),
        responses(
            (status = 200, description = "Stored (or a repeat, with `duplicate`).", body = WebhookAnswer),
            (status = 400, description = "The body or a header is malformed.", body = ErrorBody),
            (status = 401, description = "The webhook does not verify.", body = ErrorBody),
            (status = 404, description = "No such connector, or no instance found.", body = ErrorBody),
            (status = 409, description = "Instances of several organizations match and none verifies.", body = ErrorBody),
            (status = 413, description = "The body is larger than `--body-limit`.", body = ErrorBody),
            (status = 502, description = "The connector failed.", body = ErrorBody),
            (status = 503, description = "The connector is still loading.", body = ErrorBody,
                headers(("Retry-After" = u64, description = "Seconds to wait."))),
        ),
    )]
    fn webhook() {}

    /// A vendor's webhook for one instance (called by the vendor, not by users).
    ///
    /// As `POST /events/{key}`, the instance named by `suffix`: the base64 of its id.
    #[utoipa::path(
        post, path = "/elements/api-v2/events/{key}/{suffix}", tag = "vendors",
        params(
            ("key" = String, Path, description = "The connector's key.", example = "ecwid"),
            ("suffix" = String, Path, description = "The instance id, base64.", example = "MQ=="),
            ("Element-Instances" = Option<String>, Header, description = "More instances, by id, comma-separated (at most 16)."),
        ),
        request_body(description = "The vendor's body as the vendor sends it.", content(
            (Object = "application/json"),
            (Object = "application/x-www-form-urlencoded"),
        )),
        responses(
            (status = 200, description = "Stored (or a repeat, with `duplicate`).", body = WebhookAnswer),
            (status = 400, description = "The body, a header or the suffix is malformed.", body = ErrorBody),
            (status = 401, description = "The webhook does not verify.", body = ErrorBody),
            (status = 404, description = "No such connector or instance.", body = ErrorBody),
            (status = 409, description = "Instances of several organizations match and none verifies.", body = ErrorBody),
            (status = 413, description = "The body is larger than `--body-limit`.", body = ErrorBody),
            (status = 502, description = "The connector failed.", body = ErrorBody),
            (status = 503, description = "The connector is still loading.", body = ErrorBody,
                headers(("Retry-After" = u64, description = "Seconds to wait."))),
        ),
    )]
    fn webhook_with_suffix() {}

    /// Creates an instance from its Open Connectors JSON.
    ///
    /// The configuration is checked by the host (event keys, quotas, the outbound guard) and by
    /// the connector; a 400 names the bad field. The answer carries the instance's token, once.
    #[utoipa::path(
        post, path = "/elements/api-v2/instances", tag = "instances",
        security(("organization" = [])),
        request_body(content = InstanceRequest, content_type = "application/json"),
        responses(
            (status = 200, description = "Created; `token` is shown this once.", body = Instance),
            (status = 400, description = "A field is wrong (`field` names it), or a quota on the configuration is spent.", body = ErrorBody),
            (status = 401, description = "Missing or wrong credentials, or an `Element` token.", body = ErrorBody),
            (status = 403, description = "The organization holds `--max-instances-per-org` instances.", body = ErrorBody),
            (status = 413, description = "The body is larger than `--body-limit`.", body = ErrorBody),
            (status = 502, description = "The connector could not check the configuration, or the vendor's code exchange failed.", body = ErrorBody),
            (status = 503, description = "The connector is still loading.", body = ErrorBody,
                headers(("Retry-After" = u64, description = "Seconds to wait."))),
        ),
    )]
    fn instance_create() {}

    /// The caller's instances (an `Element` token: its own only).
    #[utoipa::path(
        get, path = "/elements/api-v2/instances", tag = "instances",
        security(("organization" = []), ("element" = [])),
        responses(
            (status = 200, description = "The instances.", body = Vec<Instance>),
            (status = 401, description = "Missing or wrong credentials.", body = ErrorBody),
        ),
    )]
    fn instance_list() {}

    /// One instance, with the last poll of each resource of a polling instance.
    #[utoipa::path(
        get, path = "/elements/api-v2/instances/{id}", tag = "instances",
        security(("organization" = []), ("element" = [])),
        params(("id" = i64, Path, description = "The instance id.", example = 1)),
        responses(
            (status = 200, description = "The instance.", body = Instance),
            (status = 401, description = "Missing or wrong credentials.", body = ErrorBody),
            (status = 404, description = "No such instance (or another organization's).", body = ErrorBody),
        ),
    )]
    fn instance_get() {}

    /// Changes `name`, `tags`, `disabled` and the configuration keys given.
    ///
    /// `********` sent back for a secret keeps it; moving a URL to another origin needs the
    /// secrets its old origin received given again.
    #[utoipa::path(
        patch, path = "/elements/api-v2/instances/{id}", tag = "instances",
        security(("organization" = []), ("element" = [])),
        params(("id" = i64, Path, description = "The instance id.", example = 1)),
        request_body(content = InstanceRequest, content_type = "application/json"),
        responses(
            (status = 200, description = "The instance after the change.", body = Instance),
            (status = 400, description = "A field is wrong (`field` names it).", body = ErrorBody),
            (status = 401, description = "Missing or wrong credentials.", body = ErrorBody),
            (status = 404, description = "No such instance.", body = ErrorBody),
            (status = 413, description = "The body is larger than `--body-limit`.", body = ErrorBody),
            (status = 502, description = "The connector could not check the configuration.", body = ErrorBody),
            (status = 503, description = "The connector is still loading.", body = ErrorBody,
                headers(("Retry-After" = u64, description = "Seconds to wait."))),
        ),
    )]
    fn instance_patch() {}

    /// Deletes an instance; its pending notifications are dropped.
    #[utoipa::path(
        delete, path = "/elements/api-v2/instances/{id}", tag = "instances",
        security(("organization" = []), ("element" = [])),
        params(("id" = i64, Path, description = "The instance id.", example = 1)),
        responses(
            (status = 200, description = "Deleted.", body = Deleted),
            (status = 401, description = "Missing or wrong credentials.", body = ErrorBody),
            (status = 404, description = "No such instance.", body = ErrorBody),
        ),
    )]
    fn instance_delete() {}

    /// The configuration entries of an instance, secrets masked.
    #[utoipa::path(
        get, path = "/elements/api-v2/instances/{id}/configuration", tag = "instances",
        security(("organization" = []), ("element" = [])),
        params(("id" = i64, Path, description = "The instance id.", example = 1)),
        responses(
            (status = 200, description = "The entries.", body = Vec<ConfigurationEntry>),
            (status = 401, description = "Missing or wrong credentials.", body = ErrorBody),
            (status = 404, description = "No such instance.", body = ErrorBody),
        ),
    )]
    fn configuration_list() {}

    /// Changes one configuration entry.
    #[utoipa::path(
        patch, path = "/elements/api-v2/instances/{id}/configuration/{cid}", tag = "instances",
        security(("organization" = []), ("element" = [])),
        params(
            ("id" = i64, Path, description = "The instance id.", example = 1),
            ("cid" = i64, Path, description = "The entry id.", example = 1),
        ),
        request_body(content = ConfigurationChange, content_type = "application/json"),
        responses(
            (status = 200, description = "The entry after the change.", body = ConfigurationEntry),
            (status = 400, description = "The value is wrong (`field` names the key).", body = ErrorBody),
            (status = 401, description = "Missing or wrong credentials.", body = ErrorBody),
            (status = 404, description = "No such instance or entry.", body = ErrorBody),
            (status = 413, description = "The body is larger than `--body-limit`.", body = ErrorBody),
            (status = 502, description = "The connector could not check the configuration.", body = ErrorBody),
            (status = 503, description = "The connector is still loading.", body = ErrorBody,
                headers(("Retry-After" = u64, description = "Seconds to wait."))),
        ),
    )]
    fn configuration_patch() {}

    /// The notifications of an instance, newest first.
    #[utoipa::path(
        get, path = "/elements/api-v2/instances/{id}/events", tag = "events",
        security(("organization" = []), ("element" = [])),
        params(
            ("id" = i64, Path, description = "The instance id.", example = 1),
            ("pageSize" = Option<u32>, Query, description = "Notifications per page, 1 to 1000 (default 100)."),
            ("page" = Option<u32>, Query, description = "The page, from 1."),
            ("status" = Option<String>, Query, description = "Only these statuses: a comma list of NEW, DISPATCHED, NOTIFIED, FAILED, DROPPED.", example = "FAILED,DISPATCHED"),
            ("since" = Option<String>, Query, description = "Only notifications accepted at or after this time, RFC 3339.", example = "2024-01-01T00:00:00Z"),
            ("until" = Option<String>, Query, description = "Only notifications accepted before this time, RFC 3339.", example = "2030-01-01T00:00:00Z"),
        ),
        responses(
            (status = 200, description = "The notifications.", body = Vec<EventSummary>),
            (status = 400, description = "`pageSize` or `page` is not a whole number, a `status` is unknown, or `since`/`until` is not RFC 3339 (`field` names it).", body = ErrorBody),
            (status = 401, description = "Missing or wrong credentials.", body = ErrorBody),
            (status = 404, description = "No such instance.", body = ErrorBody),
        ),
    )]
    fn events_list() {}

    /// One notification with its envelope (`notification`) and the vendor's data.
    #[utoipa::path(
        get, path = "/elements/api-v2/instances/{id}/events/{eid}", tag = "events",
        security(("organization" = []), ("element" = [])),
        params(
            ("id" = i64, Path, description = "The instance id.", example = 1),
            ("eid" = String, Path, description = "The notification id."),
        ),
        responses(
            (status = 200, description = "The notification.", body = EventDetail),
            (status = 401, description = "Missing or wrong credentials.", body = ErrorBody),
            (status = 404, description = "No such instance or notification.", body = ErrorBody),
        ),
    )]
    fn event_get() {}

    /// Every delivery attempt of a notification, by delivery round.
    #[utoipa::path(
        get, path = "/elements/api-v2/instances/{id}/events/{eid}/deliveries", tag = "events",
        security(("organization" = []), ("element" = [])),
        params(
            ("id" = i64, Path, description = "The instance id.", example = 1),
            ("eid" = String, Path, description = "The notification id."),
        ),
        responses(
            (status = 200, description = "The attempts.", body = Deliveries),
            (status = 401, description = "Missing or wrong credentials.", body = ErrorBody),
            (status = 404, description = "No such instance or notification.", body = ErrorBody),
        ),
    )]
    fn event_deliveries() {}

    /// Delivers a notification again, in a new round, whatever its state.
    #[utoipa::path(
        post, path = "/elements/api-v2/instances/{id}/events/{eid}/redeliver", tag = "events",
        security(("organization" = []), ("element" = [])),
        params(
            ("id" = i64, Path, description = "The instance id.", example = 1),
            ("eid" = String, Path, description = "The notification id."),
        ),
        responses(
            (status = 202, description = "Queued.", body = EventSummary),
            (status = 401, description = "Missing or wrong credentials.", body = ErrorBody),
            (status = 404, description = "No such instance or notification.", body = ErrorBody),
        ),
    )]
    fn event_redeliver() {}

    /// Dead-lettered notifications across the caller's instances, newest first.
    #[utoipa::path(
        get, path = "/elements/api-v2/dead-letters", tag = "events",
        security(("organization" = []), ("element" = [])),
        params(
            ("instanceId" = Option<i64>, Query, description = "Only this instance's."),
            ("since" = Option<String>, Query, description = "Only those accepted at or after this time, RFC 3339.", example = "2024-01-01T00:00:00Z"),
            ("pageSize" = Option<u32>, Query, description = "Notifications per page, 1 to 1000 (default 100)."),
            ("page" = Option<u32>, Query, description = "The page, from 1."),
        ),
        responses(
            (status = 200, description = "The dead letters.", body = Vec<DeadLetter>),
            (status = 400, description = "A query parameter is malformed (`field` names it).", body = ErrorBody),
            (status = 401, description = "Missing or wrong credentials.", body = ErrorBody),
            (status = 404, description = "`instanceId` is no instance of the caller's.", body = ErrorBody),
        ),
    )]
    fn dead_letters() {}

    /// Delivers again, each in a new round, the dead letters of an instance (since a time),
    /// at most 1000 per call, oldest first.
    #[utoipa::path(
        post, path = "/elements/api-v2/instances/{id}/dead-letters/redeliver", tag = "events",
        security(("organization" = []), ("element" = [])),
        params(("id" = i64, Path, description = "The instance id.", example = 1)),
        request_body(content = Option<BulkRedeliverRequest>, description = "Optional; an empty body redelivers every dead letter."),
        responses(
            (status = 202, description = "Queued.", body = BulkRedelivery),
            (status = 400, description = "The body is not a JSON object, or `since` is not RFC 3339.", body = ErrorBody),
            (status = 401, description = "Missing or wrong credentials.", body = ErrorBody),
            (status = 404, description = "No such instance.", body = ErrorBody),
        ),
    )]
    fn dead_letters_redeliver() {}

    /// Delivery attempts per minute over the last `minutes` minutes, zero-filled.
    #[utoipa::path(
        get, path = "/elements/api-v2/instances/{id}/stats", tag = "events",
        security(("organization" = []), ("element" = [])),
        params(
            ("id" = i64, Path, description = "The instance id.", example = 1),
            ("minutes" = Option<u32>, Query, description = "The window, 1 to 1440 minutes (default 60).", example = 60),
        ),
        responses(
            (status = 200, description = "The series.", body = Stats),
            (status = 400, description = "`minutes` is out of range or not a whole number.", body = ErrorBody),
            (status = 401, description = "Missing or wrong credentials.", body = ErrorBody),
            (status = 404, description = "No such instance.", body = ErrorBody),
        ),
    )]
    fn stats() {}

    /// Polls every resource of a polling instance now.
    ///
    /// At most once per instance per `--poll-now-interval-ms`; sooner is a 429.
    #[utoipa::path(
        post, path = "/elements/api-v2/instances/{id}/events/poll", tag = "events",
        security(("organization" = []), ("element" = [])),
        params(("id" = i64, Path, description = "The instance id.", example = 1)),
        responses(
            (status = 200, description = "What each resource's poll found.", body = PollAnswer),
            (status = 400, description = "The instance has no resource to poll.", body = ErrorBody),
            (status = 401, description = "Missing or wrong credentials.", body = ErrorBody),
            (status = 404, description = "No such instance.", body = ErrorBody),
            (status = 429, description = "Polled too recently.", body = ErrorBody,
                headers(("Retry-After" = u64, description = "Whole seconds to wait."))),
        ),
    )]
    fn events_poll() {}

    /// The host's metrics in the OpenMetrics text format (outside the API prefix).
    #[utoipa::path(
        get, path = "/metrics", tag = "operations",
        responses((status = 200, description = "Webhooks, deliveries, queue depth, connector latency, polls, poll drift, group commits.",
            body = String, content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8")),
    )]
    fn metrics() {}

    /// A notification, POSTed to an instance's `event.notification.callback.url`.
    ///
    /// With `event.notification.signature.key` set, every attempt is signed twice over the
    /// exact body: `Elements-Webhook-Signature: sha256=<base64 HMAC-SHA256(key, body)>`, and
    /// the Standard Webhooks headers, `webhook-signature: v1,<base64 HMAC-SHA256(key,
    /// "<webhook-id>.<webhook-timestamp>.<body>")>` (the subscriber's secret is `whsec_` +
    /// base64 of the key's UTF-8 bytes). `event.notification.callback.headers` adds headers;
    /// `event.notification.basic.username`/`.password` (or credentials in the URL) add Basic
    /// auth. Any 2xx is success; anything else is retried (4^x seconds for x = 1…9, ±20 %),
    /// then dead-lettered.
    #[utoipa::path(
        post, path = "/notification",
        params(
            ("Elements-Webhook-Signature" = Option<String>, Header, description = "`sha256=` + base64 HMAC-SHA256 of the body with the signature key (signed instances)."),
            ("Elements-Webhook-Id" = Option<String>, Header, description = "The notification id (signed instances)."),
            ("webhook-id" = Option<String>, Header, description = "Standard Webhooks: the notification id (signed instances)."),
            ("webhook-timestamp" = Option<i64>, Header, description = "Standard Webhooks: the attempt's time, Unix seconds (signed instances)."),
            ("webhook-signature" = Option<String>, Header, description = "Standard Webhooks: `v1,` + base64 HMAC-SHA256 of `id.timestamp.body` (signed instances)."),
            ("Authorization" = Option<String>, Header, description = "`Basic …` when the instance has callback credentials."),
        ),
        request_body(content = Envelope, content_type = "application/json"),
        responses((status = 200, description = "Any 2xx: delivered. Anything else is retried.")),
    )]
    fn notification() {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The (METHOD, path) pairs the document lists.
    fn documented() -> BTreeSet<(String, String)> {
        let doc = document();
        let mut out = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, _) in item.as_object().expect("a path item") {
                if [
                    "get", "put", "post", "delete", "patch", "head", "options", "trace",
                ]
                .contains(&method.as_str())
                {
                    out.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
        out
    }

    #[test]
    fn the_document_lists_every_route_and_nothing_else() {
        let served: BTreeSet<(String, String)> = super::super::OPERATIONS
            .iter()
            .map(|(m, p)| (m.to_string(), format!("{}{p}", super::super::PREFIX)))
            .chain([("GET".to_string(), "/metrics".to_string())])
            .collect();
        let documented = documented();
        let undocumented: Vec<_> = served.difference(&documented).collect();
        let unserved: Vec<_> = documented.difference(&served).collect();
        assert!(
            undocumented.is_empty(),
            "served but not in the OpenAPI document (add a stub to api/openapi.rs): {undocumented:?}"
        );
        assert!(
            unserved.is_empty(),
            "in the OpenAPI document but not served: {unserved:?}"
        );
    }

    #[test]
    fn it_is_openapi_3_1_with_both_authorizations_and_the_callback() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        let schemes = &doc["components"]["securitySchemes"];
        for name in [ORGANIZATION, ELEMENT] {
            assert_eq!(schemes[name]["type"], "apiKey", "{name}");
            assert_eq!(schemes[name]["in"], "header", "{name}");
            assert_eq!(schemes[name]["name"], "Authorization", "{name}");
        }
        let create = &doc["paths"]["/elements/api-v2/instances"]["post"];
        assert_eq!(create["security"], serde_json::json!([{ORGANIZATION: []}]));
        let hook = &doc["webhooks"]["notification"]["post"];
        let headers: Vec<&str> = hook["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        for h in [
            "Elements-Webhook-Signature",
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
        ] {
            assert!(headers.contains(&h), "{h}: {headers:?}");
        }
        assert_eq!(
            hook["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Envelope"
        );
        // Every `$ref` resolves.
        let text = doc.to_string();
        for name in text
            .split("\"#/components/schemas/")
            .skip(1)
            .map(|s| &s[..s.find('"').expect("a closing quote")])
        {
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "{name} is referenced but not defined"
            );
        }
    }

    #[test]
    fn an_error_body_is_what_api_error_renders() {
        let e =
            super::super::error::ApiError::field("pageSize", "`pageSize` must be a whole number");
        let body = e.body();
        let schema = &document()["components"]["schemas"]["ErrorBody"];
        for k in body.as_object().expect("an object").keys() {
            assert!(schema["properties"].get(k).is_some(), "{k}");
        }
        for k in schema["required"].as_array().expect("required") {
            assert!(body.get(k.as_str().expect("a name")).is_some(), "{k}");
        }
    }
}
