//! Webhook intake: a webhook's notifications stored in one transaction, its body once when
//! several share it, and each instance notified of one webhook (one digest) at most once
//! within the dedupe window, across every host on the database. The calls are
//! group-committed by the writer (`writer`, `batch`): the dedupe check and the inserts run
//! under the digest's advisory lock, held to the commit.

use super::PgStore;
use super::batch::{Op, Outcome};
use crate::webhook::prepare_webhook;
use crate::{NewNotification, StoreError, WebhookIntake, WebhookStored};

impl PgStore {
    /// Implements [`Store::enqueue_webhook`](crate::Store::enqueue_webhook).
    pub(super) async fn intake_enqueue_webhook(
        &self,
        intake: WebhookIntake,
        notifications: Vec<NewNotification>,
    ) -> Result<WebhookStored, StoreError> {
        if notifications.is_empty() {
            return Ok(WebhookStored::default());
        }
        let prepared = prepare_webhook(&intake.raw, &notifications)?;
        let op = Op::Webhook {
            intake,
            notifications,
            prepared,
        };
        match self.writer.submit(op).await? {
            Outcome::Stored(stored) => Ok(stored),
            other => Err(StoreError::Database(format!(
                "enqueue_webhook answered {other:?}"
            ))),
        }
    }
}
