//! `POST /events/{elementKey}[/{base64(instanceId)}]`: vendor webhooks in.

use hyper::StatusCode;

use super::error::ApiError;
use super::model::{WebhookAnswer, WebhookInstance};
use super::{Answer, App, Req};
use crate::ingest::{IngestError, Webhook};
use crate::metrics::Refusal;

/// Accepts a webhook: 200 once its notifications are durably stored.
pub async fn post(app: &App, req: &Req, key: &str, suffix: Option<&str>) -> Answer {
    let webhook = Webhook {
        element_key: key.to_string(),
        suffix: suffix.map(str::to_string),
        method: req.method.to_string(),
        path: req.path.clone(),
        query: req.query.clone(),
        headers: req
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: req.body.clone(),
    };
    match app.ingest.webhook(webhook).await {
        Ok(outcomes) => {
            let notifications: usize = outcomes.iter().map(|o| o.notifications.len()).sum();
            let events: usize = outcomes.iter().map(|o| o.events).sum();
            let duplicates = outcomes.iter().filter(|o| o.duplicate).count();
            tracing::info!(
                element = key,
                instances = outcomes.len(),
                events,
                notifications,
                duplicates,
                "webhook accepted"
            );
            let instances: Vec<WebhookInstance> = outcomes
                .iter()
                .map(|o| WebhookInstance {
                    instance_id: o.instance_id.0,
                    events: o.events,
                    notifications: o.notifications.iter().map(|n| n.0.clone()).collect(),
                    dropped: o.dropped.clone(),
                    duplicate: o.duplicate.then_some(true),
                })
                .collect();
            // A repeat of a webhook already notified gets the first answer again, with
            // `duplicate` set: the vendor's retry sees success, and nothing is stored twice.
            let nothing_new = outcomes
                .iter()
                .all(|o| o.duplicate || o.notifications.is_empty());
            let answer = WebhookAnswer {
                accepted: notifications > 0,
                events,
                notifications,
                instances,
                duplicate: (duplicates > 0 && nothing_new).then_some(true),
            };
            let answer = serde_json::to_value(answer).expect("the answer serializes");
            Ok((StatusCode::OK, answer))
        }
        Err(e) => {
            let (refusal, error) = match e {
                // A connector still loading may provide the key: the vendor retries.
                IngestError::UnknownConnector(_) => {
                    match super::elements::still_loading(&app.registry, key) {
                        Some(loading) => (Refusal::Error, loading),
                        None => (Refusal::NotFound, ApiError::NotFound(e.to_string())),
                    }
                }
                IngestError::UnknownInstance(_) => {
                    (Refusal::NotFound, ApiError::NotFound(e.to_string()))
                }
                IngestError::Unauthorized(m) => (
                    Refusal::Unauthorized,
                    ApiError::Unauthorized(format!("the webhook does not verify: {m}")),
                ),
                IngestError::BadRequest(m) => (Refusal::BadRequest, ApiError::bad(m)),
                IngestError::Ambiguous(m) => (Refusal::Conflict, ApiError::Conflict(m)),
                IngestError::Connector(m) => (Refusal::Error, ApiError::BadGateway(m)),
                IngestError::Store(e) => (Refusal::Error, ApiError::Internal(e.to_string())),
            };
            app.metrics.webhook_refused(refusal);
            tracing::info!(element = key, status = error.status().as_u16(), reason = %error, "webhook refused");
            Err(error)
        }
    }
}
