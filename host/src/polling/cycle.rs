//! One poll of one resource: build the vendor request, run it page by page, classify the
//! records, drop the ones already notified, and hand the events with the new cursor to the
//! one emit path ([`crate::emit`]), which stores both together and then hands the
//! notifications to delivery.

use std::collections::HashSet;

use jiff::Timestamp;
use serde_json::Value;
use store::{PollState, StoredCredentials};

use super::auth::{Credentialer, to_contract};
use super::resources::{DateField, Resource};
use super::vendor::VendorError;
use super::{Overspent, PollBudget, PollError, Poller};
use crate::emit;
use crate::instances::LiveInstance;
use crate::notify::{self, Event};
use dates::render_template;
use runtime::CallError;
use runtime::LoadedConnector;
use runtime::types::{ConnectorError, Context, PollPage, PollTarget, PollWindow};

/// The most pages one poll of a resource follows.
///
/// When the vendor still reports a next page after this many, the poll fails with an error
/// naming the resource and the limit (see [`Pages::next_cursor`]): nothing is notified or
/// stored, the poll state only gets the error (shown in `GET /instances/{id}` and in the
/// answer of a manual poll) and the usual backoff, and the window does not move, so the next
/// poll asks for the same window again from its first page and no record is skipped.
///
/// Keeping what was read and moving the window only to the latest record date read would
/// not be safe: vendors do not promise to page in date order (Keap pages by offset in its
/// own order), so the pages not read may hold records older than the latest one read, and
/// the next window would start after them. The `seen` set does not help either: it only
/// drops repeats, it cannot bring back records outside the window.
///
/// A resource that keeps failing this way needs fewer, larger pages (its `pageSize`).
pub const MAX_PAGES: usize = 10_000;
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
        instance: &LiveInstance,
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
        let config = &instance.connector_config;
        let auth = Credentialer {
            connector,
            vendor: &self.inner.vendor,
            store: self.inner.store.as_ref(),
            instance_id: instance.id,
            config,
        };
        let mut credentials: Option<StoredCredentials> = auth.current().await?;
        let ctx_with = |c: &Option<StoredCredentials>| Context {
            config: config.clone(),
            credentials: c.as_ref().map(|c| to_contract(c, crate::now_ms())),
        };

        // Every page, or an error (nothing stored, the window kept) past `MAX_PAGES` or
        // past the budget.
        let budget = self.inner.config.budget;
        let mut pages = Pages::new(&resource.name, MAX_PAGES, budget.max_records);
        let mut spent = Spending::new(&resource.name, budget);
        while let Some(cursor) = pages.next_cursor()? {
            let mut renewed = false;
            let page = loop {
                let ctx = ctx_with(&credentials);
                let request = connector
                    .build_poll_request(&ctx, &target, window, cursor.as_deref())
                    .await?;
                let response = spent.run(&self.inner.vendor, &request).await?;
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
            pages.add(page)?;
        }
        let records = pages.records;

        // Classify, filter, drop repeats.
        let seen: HashSet<(String, i64)> = state.seen.iter().cloned().collect();
        let seen_ids: HashSet<&str> = state.seen.iter().map(|(id, _)| id.as_str()).collect();
        let mut events: Vec<Event> = Vec::new();
        let mut found: Vec<Value> = Vec::new();
        let mut new_seen: Vec<(String, i64)> = Vec::new();
        let mut new_seen_set: HashSet<(String, i64)> = HashSet::new();
        for record in &records {
            let Some(id) = id_of(record, &resource.id_field) else {
                tracing::warn!(instance = instance.id.0, resource = %resource.name, id_field = %resource.id_field, "a record without its id field is skipped");
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
                    tracing::warn!(instance = instance.id.0, resource = %resource.name, id = %id, error = %e, "a record with an unreadable date is skipped");
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
            events.push(Event {
                object_type: resource.name.clone(),
                object_id: id,
                event_type,
                date,
            });
            found.push(record.clone());
        }

        // The new cursor, stored with the notifications it covers. Only reached when every
        // page of the window was read (see `MAX_PAGES`): the window moves past records read.
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
        let batch = emit::Batch {
            instance,
            hub: &connector.info().hub,
            events: &events,
            raw: emit::Raw::Poll {
                object_type: &resource.name,
                records: &found,
            },
        };
        let ids = emit::emit(
            &self.inner.store,
            &self.inner.dispatcher,
            std::slice::from_ref(&batch),
            emit::Persist::WithPollState(state),
            now,
        )
        .await?;
        let count = ids.iter().map(|e| e.ids.len()).sum();
        Ok(CycleOutcome {
            records: records.len(),
            events: events.len(),
            notifications: count,
        })
    }
}

/// What a poll has spent of its [`PollBudget`] on vendor calls.
struct Spending<'a> {
    resource: &'a str,
    budget: PollBudget,
    started: std::time::Instant,
    /// Answer bytes read so far.
    bytes: usize,
}

impl<'a> Spending<'a> {
    fn new(resource: &'a str, budget: PollBudget) -> Self {
        Spending {
            resource,
            budget,
            started: std::time::Instant::now(),
            bytes: 0,
        }
    }

    fn over(&self, spent: Overspent) -> PollError {
        PollError::OverBudget {
            resource: self.resource.to_string(),
            spent,
        }
    }

    /// Runs one page request with what is left of the budget: refused when the time is up,
    /// cut at the time left, and read only up to the bytes left.
    async fn run(
        &mut self,
        vendor: &super::vendor::VendorClient,
        request: &runtime::types::HttpRequest,
    ) -> Result<runtime::types::HttpResponse, PollError> {
        let time_left = self.budget.max_time.saturating_sub(self.started.elapsed());
        if time_left.is_zero() {
            return Err(self.over(Overspent::Time(self.budget.max_time)));
        }
        let bytes_left = self.budget.max_bytes.saturating_sub(self.bytes);
        let response = match vendor.run_within(request, time_left, bytes_left).await {
            Ok(r) => r,
            // Cut by the budget, not by the client's own limits.
            Err(VendorError::Timeout(_)) if time_left < vendor.timeout() => {
                return Err(self.over(Overspent::Time(self.budget.max_time)));
            }
            Err(VendorError::TooLarge(_)) if bytes_left < vendor.max_body() => {
                return Err(self.over(Overspent::Bytes(self.budget.max_bytes)));
            }
            Err(e) => return Err(e.into()),
        };
        self.bytes += response.body.len();
        Ok(response)
    }
}

/// The records of one window, read page by page, at most `limit` pages and `max_records`
/// records.
struct Pages<'a> {
    resource: &'a str,
    limit: usize,
    max_records: usize,
    /// Pages read so far.
    read: usize,
    /// The vendor's cursor of the page after the last one read.
    cursor: Option<String>,
    records: Vec<Value>,
}

impl<'a> Pages<'a> {
    fn new(resource: &'a str, limit: usize, max_records: usize) -> Self {
        Pages {
            resource,
            limit: limit.max(1),
            max_records,
            read: 0,
            cursor: None,
            records: Vec::new(),
        }
    }

    /// What to ask next: `Some(cursor)` a page (`Some(None)`: the first), `None` nothing,
    /// every page was read. An error when `limit` pages were read and the vendor still
    /// reports a next page: the poll must then store nothing and keep its window (see
    /// [`MAX_PAGES`]).
    fn next_cursor(&self) -> Result<Option<Option<String>>, PollError> {
        match &self.cursor {
            _ if self.read == 0 => Ok(Some(None)),
            None => Ok(None),
            Some(_) if self.read >= self.limit => Err(PollError::Vendor(format!(
                "resource `{}` still has pages after {} pages, the most one poll follows: \
                 nothing was notified and the next poll asks for the same window again \
                 (a larger page size needs fewer pages)",
                self.resource, self.limit
            ))),
            Some(c) => Ok(Some(Some(c.clone()))),
        }
    }

    /// Adds a page the vendor answered; an error, before any of its records is kept, when
    /// they would make more than `max_records`.
    fn add(&mut self, page: PollPage) -> Result<(), PollError> {
        if page.records.len() > self.max_records.saturating_sub(self.records.len()) {
            return Err(PollError::OverBudget {
                resource: self.resource.to_string(),
                spent: Overspent::Records(self.max_records),
            });
        }
        for r in &page.records {
            let v: Value = serde_json::from_str(r).map_err(|e| {
                PollError::Vendor(format!(
                    "the connector returned a record that is not JSON: {e}"
                ))
            })?;
            self.records.push(v);
        }
        self.read += 1;
        self.cursor = page.next_cursor;
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Reads a window the way `poll_resource` does, from a vendor with `count` pages of one
    /// record each (page `n`'s cursor is `n`). The cursors asked, and the outcome.
    fn read(limit: usize, count: usize) -> (Vec<Option<String>>, Result<Vec<Value>, PollError>) {
        let mut pages = Pages::new("appointments", limit, usize::MAX);
        let mut asked = Vec::new();
        let outcome = loop {
            match pages.next_cursor() {
                Ok(Some(cursor)) => {
                    let n: usize = cursor.as_deref().map_or(0, |c| c.parse().unwrap());
                    asked.push(cursor);
                    pages
                        .add(PollPage {
                            records: vec![json!({ "id": n }).to_string()],
                            next_cursor: (n + 1 < count).then(|| (n + 1).to_string()),
                        })
                        .unwrap();
                }
                Ok(None) => break Ok(pages.records),
                Err(e) => break Err(e),
            }
        };
        (asked, outcome)
    }

    #[test]
    fn more_pages_than_the_limit_fail_the_poll_naming_the_resource_and_the_limit() {
        let (asked, outcome) = read(3, 5);
        assert_eq!(asked, [None, Some("1".into()), Some("2".into())]);
        let Err(PollError::Vendor(error)) = outcome else {
            panic!("the records read are not returned: {outcome:?}");
        };
        assert!(
            error.contains("`appointments`") && error.contains("after 3 pages"),
            "{error}"
        );
    }

    #[test]
    fn a_window_of_as_many_pages_as_the_limit_is_read_whole() {
        let (asked, outcome) = read(3, 3);
        assert_eq!(asked.len(), 3);
        let ids: Vec<Value> = outcome.unwrap().iter().map(|r| r["id"].clone()).collect();
        assert_eq!(ids, [json!(0), json!(1), json!(2)]);
        assert_eq!(read(3, 1).1.unwrap().len(), 1);
    }

    #[test]
    fn a_page_past_the_record_budget_fails_the_poll_before_any_of_it_is_kept() {
        let mut pages = Pages::new("appointments", MAX_PAGES, 5);
        let page = |n: usize| PollPage {
            records: (0..n).map(|i| json!({ "id": i }).to_string()).collect(),
            next_cursor: Some("next".into()),
        };
        pages.add(page(3)).unwrap();
        pages.add(page(2)).unwrap();
        assert_eq!(pages.records.len(), 5, "exactly the budget is kept");
        let outcome = pages.add(page(1));
        assert_eq!(pages.records.len(), 5);
        let Err(e @ PollError::OverBudget { .. }) = outcome else {
            panic!("{outcome:?}");
        };
        let text = e.to_string();
        assert!(
            text.contains("`appointments`")
                && text.contains("more than 5 records (--poll-max-records)"),
            "{text}"
        );
    }

    #[test]
    fn polls_follow_ten_thousand_pages_and_fail_past_them() {
        assert_eq!(MAX_PAGES, 10_000);
        assert_eq!(read(MAX_PAGES, MAX_PAGES).1.unwrap().len(), MAX_PAGES);
        let (asked, outcome) = read(MAX_PAGES, MAX_PAGES + 1);
        assert_eq!(asked.len(), MAX_PAGES);
        assert!(
            matches!(&outcome, Err(PollError::Vendor(e)) if e.contains("after 10000 pages")),
            "{outcome:?}"
        );
    }
}
