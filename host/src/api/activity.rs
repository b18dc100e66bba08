//! What a console shows of the deliveries: the dead letters across the caller's instances,
//! their redelivery in bulk, an instance's deliveries per minute, and the activity shown on
//! each instance (last event, backlog, dead letters).

use std::collections::HashMap;

use hyper::StatusCode;
use serde_json::{Value, json};
use store::{Activity, Instance, InstanceId, NotificationFilter, NotificationStatus};

use super::auth::{self, Caller};
use super::error::ApiError;
use super::events::summary;
use super::model;
use super::{Answer, App, Req, parse_timestamp};
use crate::delivery::Job;
use crate::notify::rfc3339_ms;

/// The most dead letters one `POST …/dead-letters/redeliver` starts again.
pub const REDELIVER_LIMIT: u32 = 1000;

/// A minute, in milliseconds.
const MINUTE_MS: i64 = 60_000;

/// The longest window `GET …/stats` covers, in minutes (a day).
const MAX_STATS_MINUTES: u32 = 1440;

/// An instance's `activity` as the API shows it: `{"lastEventDate", "backlog",
/// "deadLetters"}` (`a` is `None` for an instance without notifications).
pub fn activity_view(a: Option<&Activity>) -> model::Activity {
    let a = a.copied().unwrap_or_default();
    model::Activity {
        last_event_date: a.last_created_ms.map(rfc3339_ms),
        backlog: a.backlog,
        dead_letters: a.dead,
    }
}

/// `GET /dead-letters?instanceId=&since=&pageSize=&page=`: the dead-lettered notifications
/// of every instance the caller may see (or of `instanceId`), newest first, each as the
/// events list shows it plus its instance's `instanceName` and `elementKey`.
pub async fn dead_letters(app: &App, caller: &Caller, req: &Req) -> Answer {
    let (limit, offset) = req.page()?;
    let since = req.timestamp_param("since")?;
    let visible = match req.query_param("instanceId") {
        Some(id) => vec![auth::instance(app, caller, &id)?],
        None => auth::visible(app, caller),
    };
    let ids: Vec<InstanceId> = visible.iter().map(|i| i.id).collect();
    let filter = NotificationFilter {
        statuses: vec![NotificationStatus::Failed],
        since,
        until: None,
    };
    let list = app
        .store
        .find_notifications(&ids, &filter, limit, offset)
        .await?;
    let by_id: HashMap<InstanceId, &Instance> = visible.iter().map(|i| (i.id, &***i)).collect();
    let shown: Vec<model::DeadLetter> = list
        .iter()
        .filter_map(|n| {
            let instance = by_id.get(&n.instance_id)?;
            Some(model::DeadLetter {
                event: summary(instance, n),
                instance_name: instance.name.clone(),
                element_key: instance.element_key.clone(),
            })
        })
        .collect();
    Ok((StatusCode::OK, json!(shown)))
}

/// `POST /instances/{id}/dead-letters/redeliver`, body `{"since": "<RFC 3339>"}` or none:
/// a new delivery round for each dead letter of the instance accepted at or after `since`
/// (every one without it), at most [`REDELIVER_LIMIT`] per call, oldest first.
pub async fn redeliver(app: &App, instance: &Instance, req: &Req) -> Answer {
    let since = if req.body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        match req.json_object()?.get("since") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(parse_timestamp("since", s)?),
            Some(_) => {
                return Err(ApiError::field(
                    "since",
                    "`since` must be an RFC 3339 timestamp such as 2024-01-01T00:00:00Z",
                ));
            }
        }
    };
    let done = app
        .store
        .redeliver_dead(instance.id, since, REDELIVER_LIMIT, crate::now_ms())
        .await?;
    tracing::info!(
        instance = instance.id.0,
        redelivered = done.notifications.len(),
        more = done.more,
        "dead letters redelivered"
    );
    let events: Vec<String> = done
        .notifications
        .iter()
        .map(|n| n.id.to_string())
        .collect();
    for n in done.notifications {
        app.dispatcher.resubmit(Job::from(n));
    }
    Ok((
        StatusCode::ACCEPTED,
        json!(model::BulkRedelivery {
            instance_id: instance.id.0,
            redelivered: events.len(),
            more: done.more,
            events,
        }),
    ))
}

/// `GET /instances/{id}/stats?minutes=60`: the delivery attempts of each of the last
/// `minutes` minutes (1 to 1440), the current one last, minutes without any shown with
/// zero counts and no latency.
pub async fn stats(app: &App, instance: &Instance, req: &Req) -> Answer {
    let minutes = req.number_param("minutes", 60)?;
    if !(1..=MAX_STATS_MINUTES).contains(&minutes) {
        return Err(ApiError::field(
            "minutes",
            format!("`minutes` must be from 1 to {MAX_STATS_MINUTES}"),
        ));
    }
    let now = crate::now_ms();
    let current = now - now.rem_euclid(MINUTE_MS);
    let from = current - (i64::from(minutes) - 1) * MINUTE_MS;
    let found = app
        .store
        .attempt_stats(instance.id, from, current + MINUTE_MS)
        .await?;
    let mut found = found.into_iter().peekable();
    let series: Vec<model::StatsMinute> = (0..i64::from(minutes))
        .map(|i| {
            let minute = from + i * MINUTE_MS;
            // Skips nothing the store returns in order; a row out of the window is ignored.
            while found.next_if(|s| s.minute_ms < minute).is_some() {}
            match found.next_if(|s| s.minute_ms == minute) {
                Some(s) => model::StatsMinute {
                    minute: rfc3339_ms(minute),
                    attempts: s.attempts,
                    delivered: s.delivered,
                    failed: s.attempts.saturating_sub(s.delivered),
                    latency_ms_avg: Some(s.latency_us_avg / 1000.0),
                    latency_ms_max: Some(s.latency_us_max as f64 / 1000.0),
                },
                None => model::StatsMinute {
                    minute: rfc3339_ms(minute),
                    attempts: 0,
                    delivered: 0,
                    failed: 0,
                    latency_ms_avg: None,
                    latency_ms_max: None,
                },
            }
        })
        .collect();
    Ok((
        StatusCode::OK,
        json!(model::Stats {
            instance_id: instance.id.0,
            minutes,
            series,
        }),
    ))
}
