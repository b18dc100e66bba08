//! `/instances/{id}/events`: the notifications of an instance, their delivery attempts, and
//! redelivery.

use hyper::StatusCode;
use serde_json::{Value, json};
use store::{
    Attempt, Instance, Notification, NotificationFilter, NotificationId, NotificationState,
    NotificationStatus,
};

use super::error::ApiError;
use super::model;
use super::{Answer, App, Req};
use crate::delivery::Job;
use crate::instances::settings::mask_url;
use crate::notify::rfc3339_ms;

/// The Open Connectors status of a notification: `NEW` (stored, not tried yet),
/// `DISPATCHED` (tried, retrying), `NOTIFIED` (delivered), `FAILED` (dead-lettered),
/// `DROPPED` (its instance was deleted first).
fn status(n: &Notification) -> model::EventStatus {
    match NotificationStatus::of(n) {
        NotificationStatus::New => model::EventStatus::New,
        NotificationStatus::Dispatched => model::EventStatus::Dispatched,
        NotificationStatus::Notified => model::EventStatus::Notified,
        NotificationStatus::Failed => model::EventStatus::Failed,
        NotificationStatus::Dropped => model::EventStatus::Dropped,
    }
}

/// A notification as the API shows it. `instance` is its instance as stored now: a pending
/// notification's next attempt goes to the instance's current callback URL, so that is the
/// URL shown for it; a finished one shows the URL it was accepted for.
pub(super) fn summary(instance: &Instance, n: &Notification) -> model::EventSummary {
    let url = match n.state {
        NotificationState::Pending => instance
            .config_value(crate::instances::settings::CALLBACK_URL)
            .unwrap_or(&n.endpoint),
        _ => &n.endpoint,
    };
    model::EventSummary {
        id: n.id.0.clone(),
        event_date: rfc3339_ms(n.created_ms),
        status: status(n),
        state: n.state.as_str().to_string(),
        instance_id: n.instance_id.0,
        // The URL deliveries use may carry secrets; the API shows it masked.
        callback_url: mask_url(url).into_owned(),
        event_count: n.event_count,
        delivery: n.delivery,
        attempts: n.attempts,
        dead_lettered: n.state == NotificationState::Dead,
        next_attempt_date: (n.state == NotificationState::Pending)
            .then(|| rfc3339_ms(n.next_attempt_ms)),
        delivered_date: n.delivered_ms.map(rfc3339_ms),
    }
}

fn attempt_view(a: &Attempt) -> model::AttemptView {
    model::AttemptView {
        delivery: a.delivery,
        attempt: a.attempt,
        date: rfc3339_ms(a.at_ms),
        status_code: a.status_code,
        latency_ms: a.latency_us as f64 / 1000.0,
        error: a.error.clone(),
    }
}

async fn notification(
    app: &App,
    instance: &Instance,
    id: &NotificationId,
) -> Result<Notification, ApiError> {
    app.store
        .get_notification(id)
        .await?
        .filter(|n| n.instance_id == instance.id)
        .ok_or_else(|| ApiError::NotFound(format!("instance {} has no event {id}", instance.id)))
}

/// `GET /instances/{id}/events?status=&since=&until=&pageSize=&page=`: newest first;
/// `status` a comma list of statuses, `since` (inclusive) and `until` (exclusive) RFC 3339
/// timestamps on the acceptance time. The filter runs in the store.
pub async fn list(app: &App, instance: &Instance, req: &Req) -> Answer {
    let (limit, offset) = req.page()?;
    let filter = NotificationFilter {
        statuses: statuses(req)?,
        since: req.timestamp_param("since")?,
        until: req.timestamp_param("until")?,
    };
    let list = app
        .store
        .find_notifications(&[instance.id], &filter, limit, offset)
        .await?;
    let shown: Vec<model::EventSummary> = list.iter().map(|n| summary(instance, n)).collect();
    Ok((StatusCode::OK, json!(shown)))
}

/// The `status` query parameter: a comma list of `NEW`, `DISPATCHED`, `NOTIFIED`,
/// `FAILED`, `DROPPED` (empty or absent: every status); a 400 naming it otherwise.
fn statuses(req: &Req) -> Result<Vec<NotificationStatus>, ApiError> {
    let Some(given) = req.query_param("status") else {
        return Ok(Vec::new());
    };
    given
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            NotificationStatus::parse(&s.to_ascii_uppercase()).ok_or_else(|| {
                let known: Vec<&str> = NotificationStatus::ALL.iter().map(|s| s.as_str()).collect();
                ApiError::field(
                    "status",
                    format!("`status` names {s:?}; it takes {}", known.join(", ")),
                )
            })
        })
        .collect()
}

/// `GET /instances/{id}/events/{eventId}`: the notification, its body and `providerData`
/// (the vendor's raw data).
pub async fn show(app: &App, instance: &Instance, id: &str) -> Answer {
    let id = NotificationId::from(id);
    let n = notification(app, instance, &id).await?;
    let mut detail = model::EventDetail {
        summary: summary(instance, &n),
        provider_data: None,
        notification: None,
    };
    if let Some(body) = app.store.body(&id).await? {
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        detail.provider_data = Some(body["message"]["raw"].clone());
        detail.notification = Some(body);
    }
    Ok((StatusCode::OK, json!(detail)))
}

/// `GET /instances/{id}/events/{eventId}/deliveries`: every attempt, by delivery round.
pub async fn deliveries(app: &App, instance: &Instance, id: &str) -> Answer {
    let id = NotificationId::from(id);
    let n = notification(app, instance, &id).await?;
    let attempts = app.store.attempts(&id).await?;
    let deliveries = (1..=n.delivery)
        .map(|round| model::DeliveryRound {
            delivery: round,
            attempts: attempts
                .iter()
                .filter(|a| a.delivery == round)
                .map(attempt_view)
                .collect(),
        })
        .collect();
    Ok((
        StatusCode::OK,
        json!(model::Deliveries {
            event: summary(instance, &n),
            deliveries,
        }),
    ))
}

/// `POST /instances/{id}/events/{eventId}/redeliver`: a new delivery round, whatever the
/// notification's state.
pub async fn redeliver(app: &App, instance: &Instance, id: &str) -> Answer {
    let id = NotificationId::from(id);
    notification(app, instance, &id).await?;
    let n = app
        .store
        .redeliver(&id, crate::now_ms())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no event {id}")))?;
    tracing::info!(
        notification = %id,
        delivery = n.delivery,
        "redeliver requested"
    );
    app.dispatcher.resubmit(Job::from(n.clone()));
    Ok((StatusCode::ACCEPTED, json!(summary(instance, &n))))
}

/// `POST /instances/{id}/events/poll`: polls every resource of the instance now and says
/// what each poll found. At most one per instance every `--poll-now-interval-ms`: sooner,
/// a 429 with `Retry-After`.
pub async fn poll(app: &App, instance: &Instance) -> Answer {
    app.poller
        .admit_now(instance.id)
        .map_err(|e| ApiError::TooManyRequests {
            message: e.to_string(),
            retry_after_secs: e.retry_after_secs(),
        })?;
    let reports = app.poller.poll_now(instance.id).await;
    if reports.is_empty() {
        return Err(ApiError::bad(format!(
            "instance {} has no resource to poll",
            instance.id
        )));
    }
    let list: Vec<Value> = reports
        .iter()
        .map(|r| match &r.outcome {
            Ok(o) => json!({
                "resource": r.resource,
                "outcome": "ok",
                "records": o.records,
                "events": o.events,
                "notifications": o.notifications,
            }),
            Err(e) => json!({"resource": r.resource, "outcome": "error", "error": e.to_string()}),
        })
        .collect();
    Ok((
        StatusCode::OK,
        json!({"instanceId": instance.id, "resources": list}),
    ))
}
