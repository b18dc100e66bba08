//! One poll of one resource: build the vendor request, run it page by page, classify the
//! records, drop the ones already notified, store the notifications together with the new
//! cursor, and only then hand them to delivery.

use std::collections::HashSet;

use jiff::Timestamp;
use serde_json::{Value, json};
use store::{Instance, PollState, StoredCredentials};

use super::auth::{Credentialer, to_contract};
use super::dates::render_template;
use super::resources::{DateField, Resource};
use super::{PollError, Poller};
use crate::notify::{self, Event, POLLING_BATCH};
use crate::runtime::CallError;
use crate::runtime::LoadedConnector;
use crate::runtime::types::{ConnectorError, Context, PollTarget, PollWindow};

/// The most pages one poll follows.
const MAX_PAGES: usize = 10_000;
/// The most ids remembered per resource when records carry no updated date.
const MAX_SEEN: usize = 100_000;

/// What one poll of a resource did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CycleOutcome {
    /// Records the vendor returned.
    pub records: usize,
    /// Events notified.
    pub events: usize,
    /// Notifications stored.
    pub notifications: usize,
}

fn value_at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |cur, part| cur.get(part))
}

fn id_of(v: &Value, path: &str) -> Option<String> {
    match value_at(v, path)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn date_of(v: &Value, field: &DateField) -> Result<Option<i64>, String> {
    match value_at(v, &field.path) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => field
            .format
            .parse_json(value, &field.zone)
            .map(|t| Some(t.as_millisecond()))
            .map_err(|e| format!("`{}`: {e}", field.path)),
    }
}

impl Poller {
    /// Polls one resource of an instance once.
    pub(super) async fn poll_resource(
        &self,
        instance: &Instance,
        connector: &LoadedConnector,
        resource: &Resource,
        mut state: PollState,
    ) -> Result<CycleOutcome, PollError> {
        let now = crate::now_ms();
        let last = state.last_success_ms.unwrap_or(instance.created_ms);
        // Templates get the last poll time minus the delay, as configured. The vendor is
        // asked from one second earlier, whole seconds: vendors keep whole-second dates, so
        // a record changed in the second of the last poll is asked for again (and dropped
        // by `seen` if it was notified already) instead of being missed.
        let template_at = last - resource.poll_delay_ms;
        let since = overlap_start(template_at);
        let window = PollWindow {
            since_ms: since,
            until_ms: now,
        };
        let at = Timestamp::from_millisecond(template_at)
            .map_err(|e| PollError::Template(e.to_string()))?;
        let url =
            render_template(&resource.url, at).map_err(|e| PollError::Template(e.to_string()))?;
        let target = PollTarget {
            name: resource.name.clone(),
            url,
            page_size: resource.page_size,
        };
        let config = crate::ingest::connector_config(instance);
        let auth = Credentialer {
            connector,
            vendor: &self.inner.vendor,
            store: self.inner.store.as_ref(),
            instance_id: instance.id,
            config: &config,
        };
        let mut credentials: Option<StoredCredentials> = auth.current().await?;
        let ctx_with = |c: &Option<StoredCredentials>| Context {
            config: config.clone(),
            credentials: c.as_ref().map(|c| to_contract(c, crate::now_ms())),
        };

        let mut records: Vec<Value> = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut renewed = false;
            let page = loop {
                let ctx = ctx_with(&credentials);
                let request = connector
                    .build_poll_request(&ctx, &target, window, cursor.as_deref())
                    .await?;
                let response = self.inner.vendor.run(&request).await?;
                if response.status == 429 {
                    return Err(PollError::RateLimited {
                        retry_after_ms: retry_after(&response.headers),
                    });
                }
                match connector
                    .parse_poll_response(&ctx, &target, cursor.as_deref(), &response)
                    .await
                {
                    Err(CallError::Connector(ConnectorError::Unauthorized(_))) if !renewed => {
                        credentials = Some(auth.renew(credentials.as_ref()).await?);
                        renewed = true;
                    }
                    other => break other?,
                }
            };
            for r in &page.records {
                let v: Value = serde_json::from_str(r).map_err(|e| {
                    PollError::Vendor(format!(
                        "the connector returned a record that is not JSON: {e}"
                    ))
                })?;
                records.push(v);
            }
            cursor = page.next_cursor;
            if cursor.is_none() {
                break;
            }
        }

        // Classify, filter, drop repeats.
        let seen: HashSet<(String, i64)> = state.seen.iter().cloned().collect();
        let seen_ids: HashSet<&str> = state.seen.iter().map(|(id, _)| id.as_str()).collect();
        let mut events: Vec<(Event, Value)> = Vec::new();
        let mut new_seen: Vec<(String, i64)> = Vec::new();
        let mut new_seen_set: HashSet<(String, i64)> = HashSet::new();
        for record in &records {
            let Some(id) = id_of(record, &resource.id_field) else {
                tracing::warn!(instance = instance.id, resource = %resource.name, id_field = %resource.id_field, "a record without its id field is skipped");
                continue;
            };
            // A record whose date cannot be read is skipped (and logged), not allowed to
            // hold back every other record of the window.
            let dates = [&resource.updated, &resource.created].map(|f| match f {
                Some(f) => date_of(record, f),
                None => Ok(None),
            });
            let (updated, created) = match dates {
                [Ok(u), Ok(c)] => (u, c),
                [Err(e), _] | [_, Err(e)] => {
                    tracing::warn!(instance = instance.id, resource = %resource.name, id = %id, error = %e, "a record with an unreadable date is skipped");
                    continue;
                }
            };
            if let Some(u) = updated {
                if resource.filter_by_updated_date && u < since {
                    continue;
                }
                if resource.filter_by_current_date && u > now {
                    continue;
                }
            }
            let key = (id.clone(), updated.unwrap_or(0));
            if seen.contains(&key) || !new_seen_set.insert(key.clone()) {
                continue;
            }
            let event_type = match (created, updated) {
                (Some(c), Some(u)) if (u - c).abs() <= resource.created_check_tolerance_ms => {
                    "CREATED"
                }
                (Some(c), Some(u)) if c < u => "UPDATED",
                (Some(_), Some(_)) => "CREATED",
                _ if seen_ids.contains(id.as_str()) => "UPDATED",
                _ => "CREATED",
            };
            let date = updated.or(created).map(notify::rfc3339_ms);
            new_seen.push(key);
            events.push((
                Event {
                    object_type: resource.name.clone(),
                    object_id: id,
                    event_type,
                    date,
                },
                record.clone(),
            ));
        }

        // Batches of 10, each with its records as `raw`.
        let connector_info = connector.info();
        let source = notify::Source {
            element_key: &instance.element_key,
            hub: &connector_info.hub,
            instance_id: instance.id,
            instance_name: &instance.name,
            instance_tags: &instance.tags,
            org_id: instance.org_id,
        };
        let endpoint = instance
            .config_value(crate::instances::settings::CALLBACK_URL)
            .unwrap_or("")
            .trim()
            .to_string();
        let mut notifications = Vec::new();
        for chunk in events.chunks(POLLING_BATCH) {
            let list: Vec<Event> = chunk.iter().map(|(e, _)| e.clone()).collect();
            let raw = json!({
                resource.name.clone(): chunk.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>(),
                "objectType": resource.name,
                "instance_id": instance.id,
            });
            for b in notify::build(&source, &list, &raw, POLLING_BATCH, now) {
                notifications.push(b.into_new(instance.id, &endpoint, now));
            }
        }

        // The new cursor, stored with the notifications it covers.
        let next_since = overlap_start(now - resource.poll_delay_ms);
        let mut kept: Vec<(String, i64)> = state
            .seen
            .into_iter()
            .chain(new_seen)
            .filter(|(_, u)| resource.updated.is_none() || *u >= next_since)
            .collect();
        if kept.len() > MAX_SEEN {
            kept.drain(..kept.len() - MAX_SEEN);
        }
        state.seen = kept;
        state.last_success_ms = Some(now);
        state.last_attempt_ms = Some(now);
        state.last_error = None;
        state.failures = 0;
        state.last_events = events.len() as u32;
        state.not_before_ms = None;
        let count = notifications.len();
        let store = self.inner.store.clone();
        self.inner
            .dispatcher
            .store_then_submit(notifications, move |n| async move {
                store.save_poll(state, n).await
            })
            .await?;
        Ok(CycleOutcome {
            records: records.len(),
            events: events.len(),
            notifications: count,
        })
    }
}

/// The vendor window's start for a poll from `at`: a second before `at`'s whole second.
fn overlap_start(at: i64) -> i64 {
    at.div_euclid(1000) * 1000 - 1000
}

/// `Retry-After` in milliseconds (seconds form; an HTTP date counts as one minute).
fn retry_after(headers: &[(String, String)]) -> Option<i64> {
    let value = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
        .map(|(_, v)| v.trim())?;
    Some(
        value
            .parse::<f64>()
            .map(|s| (s * 1000.0) as i64)
            .unwrap_or(60_000),
    )
}
