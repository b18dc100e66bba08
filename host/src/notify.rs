//! Event notifications: the `message` envelope the callback URL receives, and the two
//! signature schemes on it (`Elements-Webhook-Signature` and Standard Webhooks).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use store::{InstanceId, NotificationId, OrgId};

/// At most this many event objects per notification from a webhook.
pub const WEBHOOK_BATCH: usize = 20;
/// At most this many event objects per notification from polling.
pub const POLLING_BATCH: usize = 10;

/// Who a notification is about: the instance fields the envelope repeats.
#[derive(Debug, Clone)]
pub struct Source<'a> {
    /// The connector key.
    pub element_key: &'a str,
    /// The connector's hub.
    pub hub: &'a str,
    /// The instance id.
    pub instance_id: InstanceId,
    /// The instance name.
    pub instance_name: &'a str,
    /// The instance tags.
    pub instance_tags: &'a [String],
    /// The owning organization (also reported as account and company).
    pub org_id: OrgId,
}

/// One standardized event object of a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// e.g. `orders`.
    pub object_type: String,
    /// The vendor's id.
    pub object_id: String,
    /// `CREATED`, `UPDATED`, `DELETED` or `UNKNOWN`.
    pub event_type: &'static str,
    /// RFC 3339 date of the change, if known.
    pub date: Option<String>,
}

/// A notification ready to store: its id and exact body bytes.
#[derive(Debug, Clone)]
pub struct Built {
    /// `message.eventId`.
    pub id: NotificationId,
    /// The JSON body.
    pub body: Vec<u8>,
    /// Event objects in it.
    pub event_count: u32,
}

impl Built {
    /// The outbox row of this notification for `instance_id`'s callback `endpoint`.
    pub fn into_new(
        self,
        instance_id: InstanceId,
        endpoint: &str,
        now_ms: i64,
    ) -> store::NewNotification {
        store::NewNotification {
            id: self.id,
            instance_id,
            endpoint: endpoint.to_string(),
            body: self.body,
            raw_at: None,
            event_count: self.event_count,
            created_ms: now_ms,
        }
    }
}

/// The notification body as sent: the FACTS.md envelope.
#[derive(serde::Serialize)]
struct Envelope<'a, R: ?Sized> {
    id: &'a str,
    #[serde(rename = "createdDate")]
    created_date: &'a str,
    topic: &'static str,
    action: &'static str,
    message: Message<'a, R>,
}

/// `message` of the envelope.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Message<'a, R: ?Sized> {
    event_id: &'a str,
    element_key: &'a str,
    instance_id: InstanceId,
    #[serde(rename = "instance_id")]
    instance_id_snake: InstanceId,
    instance_name: &'a str,
    instance_tags: &'a [String],
    account_id: OrgId,
    company_id: OrgId,
    user_id: OrgId,
    events: Vec<EventJson<'a>>,
    raw: &'a R,
}

/// One event object of `message.events`.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct EventJson<'a> {
    element_key: &'a str,
    hub_key: &'a str,
    object_type: &'a str,
    object_id: &'a str,
    event_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    date: Option<&'a str>,
}

/// Splits `events` into notifications of at most `batch` event objects, each carrying the
/// whole `raw` vendor body and its own id. No events, no notification.
///
/// `raw` is anything that serializes to the body's JSON: a parsed value, or the body's
/// own text as a `RawValue` (which keeps it byte for byte).
pub fn build<R: serde::Serialize + ?Sized>(
    source: &Source<'_>,
    events: &[Event],
    raw: &R,
    batch: usize,
    now_ms: i64,
) -> Vec<Built> {
    let created = rfc3339_ms(now_ms);
    events
        .chunks(batch.max(1))
        .map(|chunk| {
            let id = new_id();
            let envelope = Envelope {
                id: &id,
                created_date: &created,
                topic: "events",
                action: "notification",
                message: Message {
                    event_id: &id,
                    element_key: source.element_key,
                    instance_id: source.instance_id,
                    instance_id_snake: source.instance_id,
                    instance_name: source.instance_name,
                    instance_tags: source.instance_tags,
                    account_id: source.org_id,
                    company_id: source.org_id,
                    user_id: source.org_id,
                    events: chunk
                        .iter()
                        .map(|e| EventJson {
                            element_key: source.element_key,
                            hub_key: source.hub,
                            object_type: &e.object_type,
                            object_id: &e.object_id,
                            event_type: e.event_type,
                            date: e.date.as_deref(),
                        })
                        .collect(),
                    raw,
                },
            };
            let body = serde_json::to_vec(&envelope).expect("the envelope serializes");
            Built {
                id: NotificationId(id),
                body,
                event_count: chunk.len() as u32,
            }
        })
        .collect()
}

/// Where `raw` sits in the body of an envelope that [`build`] made with it: `message.raw`
/// is the last member of the last member, so the body ends with `raw` and two closing
/// braces. `None` when it does not.
pub fn raw_offset(body: &[u8], raw: &[u8]) -> Option<usize> {
    let at = body.len().checked_sub(raw.len().checked_add(2)?)?;
    (body[at..].starts_with(raw) && &body[at + raw.len()..] == b"}}").then_some(at)
}

/// A new unique id: a UUID v7, whose leading timestamp makes ids taken later sort later.
///
/// The outbox keeps a unique index on notification ids; ids in insertion order append to
/// that index instead of landing on a random page of it, so a group commit writes one or
/// two index pages instead of one per notification (v4 ids halved durable intake).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// `2024-01-01T00:00:00.000Z` for milliseconds since the epoch (empty outside jiff's
/// range of years -9999 to 9999).
///
/// Written out field by field: `strftime` parses its format on every call, which showed
/// as 1 % of the host's CPU under webhook load (one date per notification).
pub fn rfc3339_ms(ms: i64) -> String {
    let Ok(t) = jiff::Timestamp::from_millisecond(ms) else {
        return String::new();
    };
    let d = jiff::tz::Offset::UTC.to_datetime(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        d.year(),
        d.month(),
        d.day(),
        d.hour(),
        d.minute(),
        d.second(),
        d.millisecond()
    )
}

fn hmac_b64(key: &[u8], parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        mac.update(p);
    }
    STANDARD.encode(mac.finalize().into_bytes())
}

/// `Elements-Webhook-Signature`: `sha256=` + base64 HMAC-SHA256 of the exact body.
pub fn elements_signature(key: &str, body: &[u8]) -> String {
    format!("sha256={}", hmac_b64(key.as_bytes(), &[body]))
}

/// `webhook-signature` of the Standard Webhooks scheme: `v1,` + base64 HMAC-SHA256 of
/// `{id}.{timestamp}.{body}` with the raw key bytes.
pub fn standard_signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let ts = timestamp.to_string();
    format!(
        "v1,{}",
        hmac_b64(key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body])
    )
}

/// The subscriber's Standard Webhooks secret for a signature key: `whsec_` + base64 of
/// its UTF-8 bytes, so both schemes use the same HMAC key.
pub fn standard_secret(key: &str) -> String {
    format!("whsec_{}", STANDARD.encode(key.as_bytes()))
}

/// The signature headers of one attempt, when the instance has a signature key.
pub fn signature_headers(
    key: &str,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    vec![
        ("elements-webhook-signature", elements_signature(key, body)),
        ("elements-webhook-id", id.to_string()),
        ("webhook-id", id.to_string()),
        ("webhook-timestamp", timestamp.to_string()),
        (
            "webhook-signature",
            standard_signature(key.as_bytes(), id, timestamp, body),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn rfc3339_ms_writes_what_strftime_writes() {
        let strftime = |ms: i64| {
            jiff::Timestamp::from_millisecond(ms)
                .unwrap()
                .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
                .to_string()
        };
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_234_567_000), "1970-01-15T06:56:07.000Z");
        assert_eq!(rfc3339_ms(1_764_000_000_123), "2025-11-24T16:00:00.123Z");
        for ms in [
            -1,
            -62_135_596_800_000,
            -1_000_000_000_000,
            951_782_400_999,
            4_102_444_799_999,
            253_402_207_200_000,
            -377_705_023_201_000,
            -62_198_755_200_000,
            -90_000_000_000_000,
        ] {
            assert_eq!(rfc3339_ms(ms), strftime(ms), "{ms}");
        }
        assert_eq!(rfc3339_ms(i64::MAX), "");
    }

    #[test]
    fn elements_signature_matches_the_facts_vector() {
        assert_eq!(
            elements_signature("abcd1234efgh5678", br#"{"message":{"eventId":"1"}}"#),
            "sha256=K85qmTIlvEkOr6S+WiOKj/yfELQSC8lsRD0RALn7fLE="
        );
    }

    #[test]
    fn standard_signature_matches_the_facts_vector() {
        let key = STANDARD.decode("C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        assert_eq!(
            standard_signature(
                &key,
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                1649367553,
                br#"{"test": 2432232314}"#
            ),
            "v1,FPbfShq6LqbTublhTiNgSgP+Z9kjhnFBoFUGoZZFGXM="
        );
    }

    #[test]
    fn standard_secret_wraps_the_same_key_bytes() {
        let secret = standard_secret("abcd1234efgh5678");
        let key = STANDARD
            .decode(secret.strip_prefix("whsec_").unwrap())
            .unwrap();
        assert_eq!(key, b"abcd1234efgh5678");
    }

    #[test]
    fn batches_repeat_the_raw_body_and_get_their_own_ids() {
        let tags = vec!["shop".to_string()];
        let source = Source {
            element_key: "ecwid",
            hub: "ecommerce",
            instance_id: InstanceId(7),
            instance_name: "My Ecwid",
            instance_tags: &tags,
            org_id: OrgId(1),
        };
        let events: Vec<Event> = (0..45)
            .map(|i| Event {
                object_type: "orders".into(),
                object_id: i.to_string(),
                event_type: "CREATED",
                date: None,
            })
            .collect();
        let raw = json!({"n": 45});
        let built = build(&source, &events, &raw, WEBHOOK_BATCH, 0);
        let sizes: Vec<u32> = built.iter().map(|b| b.event_count).collect();
        assert_eq!(sizes, [20, 20, 5]);
        let mut ids: Vec<&str> = built.iter().map(|b| b.id.as_str()).collect();
        ids.dedup();
        assert_eq!(ids.len(), 3);
        for b in &built {
            let v: Value = serde_json::from_slice(&b.body).unwrap();
            assert_eq!(v["message"]["raw"], raw);
            assert_eq!(v["message"]["eventId"], json!(b.id));
            assert_eq!(v["message"]["instance_id"], json!(7));
            assert_eq!(v["createdDate"], json!("1970-01-01T00:00:00.000Z"));
            let text = serde_json::to_vec(&raw).unwrap();
            let at = raw_offset(&b.body, &text).expect("raw ends the envelope");
            assert_eq!(&b.body[at..at + text.len()], &text[..]);
        }
        assert_eq!(raw_offset(b"{}", b"{}"), None);
        assert_eq!(raw_offset(b"{\"raw\":{}}}", b"{}"), Some(7));
    }
}
