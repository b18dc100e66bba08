//! Retention: notifications that are done (delivered, dead-lettered, or dropped with their
//! instance) are deleted with their attempts once older than the retention period, so the
//! outbox does not grow without bound; a webhook's shared body goes with the last
//! notification that carries it. Age counts from acceptance, and a notification with
//! an attempt or a delivery within the retention (a late redelivery) is kept. A pending
//! notification is never deleted. Of several hosts on one database, only the holder of
//! the `retention` lease prunes (see `cluster`).

use std::sync::Arc;
use std::time::Duration;

use store::Store;

use crate::metrics::Metrics;

/// How long finished notifications are kept.
#[derive(Debug, Clone)]
pub struct RetentionConfig {
    /// How long a finished notification is kept after its acceptance and after its last
    /// attempt; `None` keeps everything.
    pub keep: Option<Duration>,
    /// How often the pruner looks for notifications to delete (at most once a day).
    pub interval: Duration,
    /// Notifications deleted per store transaction: small enough that webhooks committed
    /// in the same group commit do not wait long for it.
    pub batch: u32,
}

impl Default for RetentionConfig {
    /// 30 days, checked every minute, 500 per transaction.
    fn default() -> Self {
        RetentionConfig {
            keep: Some(Duration::from_secs(30 * 24 * 3600)),
            interval: Duration::from_secs(60),
            batch: 500,
        }
    }
}

/// The longest pause between two prunes: a larger interval is taken as this.
const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// Starts the pruner; it runs until the task is aborted. `None` when retention is off.
pub fn start(
    config: RetentionConfig,
    store: Arc<dyn Store>,
    ownership: Arc<crate::cluster::Ownership>,
    metrics: Arc<Metrics>,
) -> Option<tokio::task::JoinHandle<()>> {
    let keep = config.keep?;
    let keep_ms = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
    let interval = config
        .interval
        .clamp(Duration::from_millis(1), MAX_INTERVAL);
    let batch = config.batch.max(1);
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if !ownership.runs_retention() {
                // Another host of the cluster prunes.
                continue;
            }
            metrics.retention_pass();
            let before = crate::now_ms().saturating_sub(keep_ms);
            let pruned = prune_all(store.as_ref(), before, batch).await;
            if pruned > 0 {
                metrics.notifications_pruned(pruned);
                tracing::info!(
                    pruned,
                    older_than_ms = keep_ms,
                    "deleted finished notifications past retention"
                );
            }
        }
    }))
}

/// Deletes batch after batch until a batch comes back short; returns the total.
async fn prune_all(store: &dyn Store, before: i64, batch: u32) -> u64 {
    let mut total = 0;
    loop {
        match store.prune(before, batch).await {
            Ok(n) => {
                total += n;
                if n < u64::from(batch) {
                    return total;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "pruning finished notifications failed");
                return total;
            }
        }
        // Let intake and delivery commit between batches.
        tokio::task::yield_now().await;
    }
}
