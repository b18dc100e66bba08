//! The one emit path: the events an event source found (a webhook's, a poll's) become
//! notifications — batched (20 from a webhook, 10 from a poll), enveloped, stored, and only
//! then handed to delivery.
//!
//! Webhook intake (`ingest`) and a poll cycle (`polling::cycle`) both end here, so batching,
//! the envelope, the "accepted means stored" rule and the hand-off to delivery are written
//! once.

use std::sync::Arc;

use serde_json::Value;
use serde_json::value::RawValue;
use store::{NewNotification, NotificationId, PollState, Store, StoreError, WebhookIntake};

use crate::delivery::{self, Dispatcher, Objects};
use crate::instances::LiveInstance;
use crate::notify::{self, Event, POLLING_BATCH, WEBHOOK_BATCH};

/// What each notification of a batch carries as `message.raw`.
pub enum Raw<'a> {
    /// A webhook: every notification carries the vendor's whole body.
    Webhook(&'a RawValue),
    /// A poll: each notification carries the records of its own events, as
    /// `{"<objectType>": [records], "objectType", "instance_id"}`. `records[i]` is the
    /// record of `events[i]`.
    Poll {
        /// The resource's object type (`contacts`).
        object_type: &'a str,
        /// One record per event.
        records: &'a [Value],
    },
}

/// One instance's events, with the connector's hub.
pub struct Batch<'a> {
    /// The instance they are for.
    pub instance: &'a LiveInstance,
    /// The connector's hub (`ecommerce`).
    pub hub: &'a str,
    /// The events, in the order found.
    pub events: &'a [Event],
    /// What the notifications carry as `raw`.
    pub raw: Raw<'a>,
}

/// How the notifications are stored.
pub enum Persist {
    /// A webhook's: into the outbox, the body they all carry stored once, unless their
    /// instance was already notified of the same webhook (idempotent intake). Nothing is
    /// written when there is nothing to store.
    Webhook {
        /// sha256 of the request: what makes two webhooks the same.
        digest: [u8; 32],
        /// Notifications of the same webhook accepted at or after this time make it a
        /// duplicate; `None` turns the check off.
        dedupe_since: Option<i64>,
    },
    /// Into the outbox together with a poll's new state, in one transaction (the cursor
    /// moves only with the notifications it covers); written even with no notifications.
    WithPollState(PollState),
}

/// What became of one batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emitted {
    /// The ids of its notifications, stored; or, for a duplicate, those of the earlier
    /// webhook's.
    pub ids: Vec<NotificationId>,
    /// True when the instance was already notified of the same webhook, and nothing new
    /// was stored.
    pub duplicate: bool,
}

/// Builds, stores and hands to delivery the notifications of `batches`. Returns what became
/// of each batch, in order, once the notifications are durably stored.
pub async fn emit(
    store: &Arc<dyn Store>,
    dispatcher: &Dispatcher,
    batches: &[Batch<'_>],
    persist: Persist,
    now_ms: i64,
) -> Result<Vec<Emitted>, StoreError> {
    let mut out = Vec::with_capacity(batches.len());
    let mut notifications: Vec<NewNotification> = Vec::new();
    let mut objects = Vec::new();
    let mut shared: Option<&RawValue> = None;
    for batch in batches {
        let (mut built, keys) = build(batch, now_ms);
        objects.extend(keys);
        if let Raw::Webhook(raw) = batch.raw {
            shared = Some(raw);
            for n in &mut built {
                n.raw_at = notify::raw_offset(&n.body, raw.get().as_bytes());
            }
        }
        out.push(Emitted {
            ids: built.iter().map(|n| n.id.clone()).collect(),
            duplicate: false,
        });
        notifications.extend(built);
    }
    let store = store.clone();
    match persist {
        Persist::Webhook { .. } if notifications.is_empty() => {}
        Persist::Webhook {
            digest,
            dedupe_since,
        } => {
            let intake = WebhookIntake {
                digest,
                raw: shared
                    .map(|r| r.get().as_bytes().to_vec())
                    .unwrap_or_default(),
                dedupe_since,
            };
            let duplicates = dispatcher
                .store_then_submit(notifications, objects, move |n| async move {
                    let stored = store.enqueue_webhook(intake, n).await?;
                    Ok((stored.seqs, stored.duplicates))
                })
                .await?;
            for (instance, earlier) in duplicates {
                for (emitted, batch) in out.iter_mut().zip(batches) {
                    if batch.instance.id == instance {
                        *emitted = Emitted {
                            ids: earlier.clone(),
                            duplicate: true,
                        };
                    }
                }
            }
        }
        Persist::WithPollState(state) => {
            dispatcher
                .store_then_submit(notifications, objects, move |n| async move {
                    let seqs = store.save_poll(state, n).await?;
                    Ok((seqs.into_iter().map(Some).collect(), ()))
                })
                .await?
        }
    }
    Ok(out)
}

/// The outbox rows of one batch: at most [`WEBHOOK_BATCH`] or [`POLLING_BATCH`] events per
/// notification, each to the instance's callback URL; and each one's object ids, for
/// delivery's order per object.
fn build(batch: &Batch<'_>, now_ms: i64) -> (Vec<NewNotification>, Vec<Objects>) {
    let instance = batch.instance;
    let source = notify::Source {
        element_key: &instance.element_key,
        hub: batch.hub,
        instance_id: instance.id,
        instance_name: &instance.name,
        instance_tags: &instance.tags,
        org_id: instance.org_id,
    };
    let endpoint = &instance.settings.callback_url;
    let built = match &batch.raw {
        Raw::Webhook(body) => notify::build(&source, batch.events, *body, WEBHOOK_BATCH, now_ms),
        Raw::Poll {
            object_type,
            records,
        } => batch
            .events
            .chunks(POLLING_BATCH)
            .zip(records.chunks(POLLING_BATCH))
            .flat_map(|(events, records)| {
                let raw = serde_json::json!({
                    *object_type: records,
                    "objectType": object_type,
                    "instance_id": instance.id,
                });
                notify::build(&source, events, &raw, POLLING_BATCH, now_ms)
            })
            .collect(),
    };
    // Both kinds of batch are cut into the same chunks of events, one per notification.
    let size = match &batch.raw {
        Raw::Webhook(_) => WEBHOOK_BATCH,
        Raw::Poll { .. } => POLLING_BATCH,
    };
    let objects = batch
        .events
        .chunks(size)
        .map(|events| delivery::objects(events.iter().map(|e| e.object_id.as_str())))
        .collect();
    let built = built
        .into_iter()
        .map(|b| b.into_new(instance.id, endpoint, now_ms))
        .collect();
    (built, objects)
}
