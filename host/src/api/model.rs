//! The API's answer bodies as types: each serializes to exactly the JSON a handler sends,
//! and its `ToSchema` is what the OpenAPI document (`openapi`) says of it.
//!
//! Handlers build the type they answer with (errors, webhook answers, instances,
//! configuration entries, notifications and their attempts, dead letters, statistics,
//! polls), so what the document says of those answers is what is sent. The connector views
//! (`views`, shared with the `check` command) are still built as JSON and described here
//! field by field; the schemathesis test (`tests/it/openapi.rs`) holds every live answer
//! to the document.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// The body of every error answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// The HTTP status, again.
    #[schema(example = 400)]
    pub status: u16,
    /// The status's reason phrase, e.g. `Bad Request`.
    #[schema(example = "Bad Request")]
    pub error: String,
    /// What is wrong, naming the field or flag when there is one.
    #[schema(example = "`configuration.ecwid.store.id` is required")]
    pub message: String,
    /// The bad input, e.g. `configuration.ecwid.store.id` or `pageSize` (400s only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Seconds until a retry may succeed, as in the `Retry-After` header (429 and 503).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

/// `GET /elements`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ElementList {
    /// The loaded connectors.
    pub elements: Vec<Element>,
    /// Connector files still loading (the host serves meanwhile).
    pub loading: Vec<LoadingFile>,
    /// Connector files that failed to load, with the reason.
    pub failures: Vec<FailedFile>,
}

/// A connector file still loading.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoadingFile {
    /// The file name in the connectors directory.
    pub file: String,
    /// Always `loading`.
    #[schema(inline)]
    pub status: LoadingStatus,
    /// Milliseconds since its load started.
    pub elapsed_ms: u64,
    /// The key of the version still serving while a changed file loads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serving: Option<String>,
}

/// The status of a file still loading.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LoadingStatus {
    /// Being compiled or read from the compile cache.
    Loading,
}

/// A connector file that failed to load.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FailedFile {
    /// The file name in the connectors directory.
    pub file: String,
    /// Why it failed.
    pub error: String,
}

/// A loaded connector (`views::element`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Element {
    /// The key instances name in `element.key`, e.g. `ecwid`.
    pub key: String,
    /// The display name.
    pub name: String,
    /// The hub, e.g. `ecommerce`.
    pub hub: String,
    /// `webhooks`, `polling` or both.
    pub modes: Vec<String>,
    /// The configuration keys it reads.
    pub configuration: Vec<ElementConfigKey>,
    /// The resources it polls when an instance names none.
    pub default_poll_resources: Vec<PollResource>,
    /// `<configuration key>|<payload path>`: how a webhook finds its instances.
    pub instance_finder: Option<String>,
    /// The file it was loaded from.
    pub file: String,
    /// The sha256 of the file, hex.
    pub sha256: String,
    /// The contract version it was built for, e.g. `0.2.0`.
    pub contract_version: String,
    /// Whether it came from the compile cache.
    pub from_cache: bool,
    /// The imports of the component.
    pub imports: Vec<String>,
}

/// A configuration key a connector declares.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ElementConfigKey {
    /// The key, e.g. `ecwid.store.id`.
    pub key: String,
    /// What it is for.
    pub description: String,
    /// The declared type of a contract-0.2 connector's key (`string`, `integer`, …); null
    /// for older connectors.
    #[serde(rename = "type")]
    pub value_type: Option<String>,
    /// Whether answers mask its value.
    pub secret: bool,
    /// Whether an instance must give it.
    pub required: bool,
}

/// A polled resource of a connector.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PollResource {
    /// The resource name, e.g. `contacts`.
    pub name: String,
    /// Its URL (may hold `${…}` date templates).
    pub url: String,
    /// The record field that holds the id.
    pub id_field: String,
    /// How the records' dates are read.
    pub dates_configuration: DatesConfiguration,
}

/// How a polled resource's dates are read (Java `SimpleDateFormat` patterns or epoch
/// formats).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatesConfiguration {
    /// The field with the update date.
    pub updated_date_field: Option<String>,
    /// Its format.
    pub updated_date_format: Option<String>,
    /// Its zone.
    pub updated_date_timezone: Option<String>,
    /// The field with the creation date.
    pub created_date_field: Option<String>,
    /// Its format.
    pub created_date_format: Option<String>,
    /// Its zone.
    pub created_date_timezone: Option<String>,
}

/// `POST /instances` and `PATCH /instances/{id}`: an instance as Open Connectors takes it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({
    "element": {"key": "ecwid"},
    "configuration": {
        "ecwid.order.key": "order-secret-123",
        "ecwid.product.key": "product-key-456",
        "ecwid.store.id": "1003",
        "event.notification.enabled": "true",
        "event.notification.callback.url": "https://example.com/callback"
    },
    "tags": ["shop"],
    "name": "My Ecwid"
}))]
pub struct InstanceRequest {
    /// The connector: `{"key": "<element key>"}` (required to create; a PATCH ignores it).
    pub element: Option<ElementRef>,
    /// The name (default: the element key).
    pub name: Option<String>,
    /// Tags, repeated in every notification.
    pub tags: Option<Vec<String>>,
    /// `true` keeps the instance without events (the strings `"true"` and `"false"` are
    /// taken too).
    #[schema(value_type = Option<bool>)]
    pub disabled: Option<Value>,
    /// The connector's keys and the host's event keys, values as strings (or JSON values);
    /// a PATCH changes only the keys it gives, and `********` sent back keeps a secret.
    pub configuration: Option<InstanceConfiguration>,
    /// Provider data; `code` is exchanged for vendor credentials (OAuth2 connectors).
    #[schema(value_type = Option<Object>)]
    pub provider_data: Option<Value>,
}

/// The connector an instance runs.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ElementRef {
    /// A loaded connector's key (`GET /elements`).
    #[schema(example = "ecwid")]
    pub key: String,
}

/// An instance's configuration: the connector's own keys (see `GET /elements/{key}`) and
/// the host's `event.*` keys. Values are strings; a JSON value is kept as its text.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InstanceConfiguration {
    /// `true` turns events on.
    #[serde(rename = "event.notification.enabled")]
    pub enabled: Option<Value>,
    /// Where notifications are POSTed (https, or http to an allowed network).
    #[serde(rename = "event.notification.callback.url")]
    pub callback_url: Option<String>,
    /// The HMAC-SHA256 key the notifications are signed with (see the webhook
    /// `notification`).
    #[serde(rename = "event.notification.signature.key")]
    pub signature_key: Option<String>,
    /// `webhooks` or `polling`.
    #[serde(rename = "event.vendor.type")]
    pub vendor_type: Option<String>,
    /// Minutes between polls (fractions allowed; default 15).
    #[serde(rename = "event.poller.refresh_interval")]
    pub refresh_interval: Option<Value>,
    /// The resources to poll: an object (or its JSON text) by resource name.
    #[serde(rename = "event.poller.configuration")]
    pub poller_configuration: Option<Value>,
    /// `contacts|leads`: which of the connector's default resources to poll.
    #[serde(rename = "event.poller.urls")]
    pub poller_urls: Option<String>,
    /// Extra headers on every notification (a JSON object).
    #[serde(rename = "event.notification.callback.headers")]
    pub callback_headers: Option<Value>,
    /// Basic auth user for the callback.
    #[serde(rename = "event.notification.basic.username")]
    pub basic_username: Option<String>,
    /// Basic auth password for the callback.
    #[serde(rename = "event.notification.basic.password")]
    pub basic_password: Option<String>,
    /// Attempts of this instance in flight at once (1 to 256; default 1).
    #[serde(rename = "event.notification.max.in.flight")]
    pub max_in_flight: Option<Value>,
    /// The connector's own keys.
    #[serde(flatten)]
    #[schema(additional_properties)]
    pub other: BTreeMap<String, Value>,
}

/// An instance as the API shows it (`instances::instance_view`): secrets masked.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Instance {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// RFC 3339, milliseconds.
    pub created_date: String,
    /// RFC 3339, milliseconds.
    pub updated_date: String,
    /// Its connector; `name` and `hub` are null while the connector is not loaded.
    pub element: InstanceElement,
    /// Whether its connector is loaded.
    pub valid: bool,
    /// Whether it is disabled.
    pub disabled: bool,
    /// Whether events are on (enabled and not disabled).
    pub events_enabled: bool,
    /// Its tags.
    pub tags: Vec<String>,
    /// Its configuration, secret values as `********` and URL credentials masked.
    pub configuration: BTreeMap<String, String>,
    /// The `Element <token>` of its own calls: only in the answer to its creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The last poll of each resource, by resource name (a polling instance only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub polling: Option<BTreeMap<String, PollStatus>>,
    /// Its notifications at a glance (`GET /instances` and `GET /instances/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activity: Option<Activity>,
}

/// An instance's notifications at a glance (`activity::activity_view`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    /// When its newest notification was accepted, RFC 3339; null before the first.
    pub last_event_date: Option<String>,
    /// Notifications not delivered yet (not dead-lettered).
    pub backlog: u64,
    /// Dead-lettered notifications.
    pub dead_letters: u64,
}

/// A dead-lettered notification across instances (`GET /dead-letters`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    /// The notification as the events list shows it.
    #[serde(flatten)]
    pub event: EventSummary,
    /// Its instance's name.
    pub instance_name: String,
    /// Its instance's connector.
    pub element_key: String,
}

/// The body of `POST /instances/{id}/dead-letters/redeliver` (the body may be empty).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BulkRedeliverRequest {
    /// Only dead letters accepted at or after this time, RFC 3339 (every one without it).
    #[schema(example = "2024-01-01T00:00:00Z")]
    pub since: Option<String>,
}

/// The answer to `POST /instances/{id}/dead-letters/redeliver`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BulkRedelivery {
    /// The instance.
    pub instance_id: i64,
    /// Dead letters given a new delivery round by this call (at most 1000).
    pub redelivered: usize,
    /// Whether more remain: call again.
    pub more: bool,
    /// The ids of the notifications redelivered, oldest first.
    pub events: Vec<String>,
}

/// `GET /instances/{id}/stats`: deliveries per minute.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// The instance.
    pub instance_id: i64,
    /// The minutes covered, the current one included.
    pub minutes: u32,
    /// One entry per minute, oldest first, the current minute last.
    pub series: Vec<StatsMinute>,
}

/// The delivery attempts of one minute.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatsMinute {
    /// The minute's start, RFC 3339.
    pub minute: String,
    /// Attempts made in it.
    pub attempts: u64,
    /// Of those, answered 2xx.
    pub delivered: u64,
    /// Of those, failed.
    pub failed: u64,
    /// Mean latency in milliseconds; null without attempts.
    pub latency_ms_avg: Option<f64>,
    /// Longest latency in milliseconds; null without attempts.
    pub latency_ms_max: Option<f64>,
}

/// The connector of an instance.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InstanceElement {
    /// Its key.
    pub key: String,
    /// Its display name; null while not loaded.
    pub name: Option<String>,
    /// Its hub; null while not loaded.
    pub hub: Option<String>,
}

/// The last poll of one resource (`polling::poll_view`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PollStatus {
    /// When it was last polled.
    pub last_poll_date: Option<String>,
    /// When it was last polled successfully.
    pub last_success_date: Option<String>,
    /// `ok` or `error`.
    pub outcome: String,
    /// The last poll's error.
    pub error: Option<String>,
    /// Failures in a row.
    pub failures: u32,
    /// Events the last poll found.
    pub last_events: u32,
    /// The earliest next poll (after a back-off or a `Retry-After`).
    pub next_poll_not_before: Option<String>,
}

/// A configuration entry (`instances::configuration_view`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationEntry {
    /// The entry's id (`PATCH …/configuration/{cid}`).
    pub id: i64,
    /// The key.
    pub key: String,
    /// The value, masked when secret.
    pub property_value: String,
}

/// `PATCH /instances/{id}/configuration/{cid}`: the new value.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationChange {
    /// A string, or any JSON value (kept as its text).
    pub property_value: Value,
}

/// `DELETE /instances/{id}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Deleted {
    /// The deleted instance.
    pub id: i64,
    /// Always true.
    pub deleted: bool,
}

/// The answer to a webhook: what each instance it reached made of it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookAnswer {
    /// Whether any notification was stored.
    pub accepted: bool,
    /// Event objects the connectors found, over all instances.
    pub events: usize,
    /// Notifications stored, over all instances.
    pub notifications: usize,
    /// Per instance.
    pub instances: Vec<WebhookInstance>,
    /// Set when the webhook repeats one already notified: nothing was stored again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<bool>,
}

/// What one instance made of a webhook.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookInstance {
    /// The instance.
    pub instance_id: i64,
    /// Event objects found.
    pub events: usize,
    /// The ids of the notifications stored (a repeat: the first answer's).
    pub notifications: Vec<String>,
    /// Why nothing was stored (events off, say).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dropped: Option<String>,
    /// Set when this instance was already notified of the same webhook.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<bool>,
}

/// The Open Connectors status of a notification.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum EventStatus {
    /// Stored, not tried yet.
    New,
    /// Tried, retrying.
    Dispatched,
    /// Delivered.
    Notified,
    /// Dead-lettered (until a redeliver).
    Failed,
    /// Its instance was deleted first.
    Dropped,
}

/// A notification of an instance.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventSummary {
    /// The notification id (`message.eventId`), a UUID v7.
    pub id: String,
    /// When it was accepted, RFC 3339.
    pub event_date: String,
    /// Its Open Connectors status.
    pub status: EventStatus,
    /// The host's state: `pending`, `delivered`, `dead` or `dropped`.
    pub state: String,
    /// The instance.
    pub instance_id: i64,
    /// Where it goes (pending) or went, credentials masked.
    pub callback_url: String,
    /// Event objects in it.
    pub event_count: u32,
    /// The delivery round (1, then one more per redeliver).
    pub delivery: u32,
    /// Attempts in this round.
    pub attempts: u32,
    /// Whether it is dead-lettered.
    pub dead_lettered: bool,
    /// When the next attempt is due (pending only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_date: Option<String>,
    /// When it was delivered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_date: Option<String>,
}

/// One notification with its body (`GET /instances/{id}/events/{eid}`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventDetail {
    /// The summary.
    #[serde(flatten)]
    pub summary: EventSummary,
    /// The vendor's raw data (`notification.message.raw`).
    #[serde(rename = "providerData", skip_serializing_if = "Option::is_none")]
    pub provider_data: Option<Value>,
    /// The envelope as sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub notification: Option<Value>,
}

/// One delivery attempt.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptView {
    /// Its delivery round.
    pub delivery: u32,
    /// Its number in the round, from 1.
    pub attempt: u32,
    /// When it was made, RFC 3339.
    pub date: String,
    /// The callback's status, if it answered.
    pub status_code: Option<u16>,
    /// Milliseconds to the answer or failure.
    pub latency_ms: f64,
    /// Why it failed.
    pub error: Option<String>,
}

/// The attempts of one delivery round.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeliveryRound {
    /// The round.
    pub delivery: u32,
    /// Its attempts, oldest first.
    pub attempts: Vec<AttemptView>,
}

/// `GET /instances/{id}/events/{eid}/deliveries`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Deliveries {
    /// The notification.
    pub event: EventSummary,
    /// Every round, first first.
    pub deliveries: Vec<DeliveryRound>,
}

/// `POST /instances/{id}/events/poll`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PollAnswer {
    /// The instance.
    pub instance_id: i64,
    /// What the poll of each resource found.
    pub resources: Vec<PollReport>,
}

/// What the poll of one resource found.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub enum PollReport {
    /// The poll succeeded.
    Ok {
        /// The resource.
        resource: String,
        /// `ok`.
        outcome: String,
        /// Records read.
        records: usize,
        /// Events found.
        events: usize,
        /// Notifications stored.
        notifications: usize,
    },
    /// The poll failed: nothing notified, the cursor kept.
    Error {
        /// The resource.
        resource: String,
        /// `error`.
        outcome: String,
        /// Why.
        error: String,
    },
}

/// The body a callback URL receives: the Open Connectors envelope.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// The notification id (a UUID v7), as `message.eventId`.
    pub id: String,
    /// When it was made, RFC 3339 with milliseconds.
    pub created_date: String,
    /// Always `events`.
    #[schema(example = "events")]
    pub topic: String,
    /// Always `notification`.
    #[schema(example = "notification")]
    pub action: String,
    /// The notification.
    pub message: EnvelopeMessage,
}

/// `message` of the envelope.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvelopeMessage {
    /// The notification id.
    pub event_id: String,
    /// The connector key.
    pub element_key: String,
    /// The instance id.
    pub instance_id: i64,
    /// The instance id again (Open Connectors sends both spellings).
    #[serde(rename = "instance_id")]
    pub instance_id_snake: i64,
    /// The instance name.
    pub instance_name: String,
    /// The instance tags.
    pub instance_tags: Vec<String>,
    /// The organization.
    pub account_id: i64,
    /// The organization.
    pub company_id: i64,
    /// The organization.
    pub user_id: i64,
    /// At most 20 event objects from a webhook, 10 from a poll.
    pub events: Vec<EnvelopeEvent>,
    /// The vendor's body as received (webhooks), or `{"<objectType>": [records],
    /// "objectType", "instance_id"}` (polling).
    pub raw: Value,
}

/// One event object of a notification.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvelopeEvent {
    /// The connector key.
    pub element_key: String,
    /// The connector's hub.
    pub hub_key: String,
    /// e.g. `orders`.
    pub object_type: String,
    /// The vendor's id.
    pub object_id: String,
    /// `CREATED`, `UPDATED`, `DELETED` or `UNKNOWN`.
    pub event_type: String,
    /// When it changed, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
}
