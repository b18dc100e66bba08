//! Counters for `GET /metrics`, written in the OpenMetrics text format by the Prometheus
//! project's client (`prometheus-client`): counters are registered without `_total`, which
//! the encoder appends, as it ends each help text with a period.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0,
];

/// One label and its value.
type Labels = Vec<(&'static str, &'static str)>;

/// A counter family with every label value present from the start (at 0).
fn family(label: &'static str, values: &[&'static str]) -> Family<Labels, Counter> {
    let f = Family::<Labels, Counter>::default();
    for v in values {
        drop(f.get_or_create(&vec![(label, *v)]));
    }
    f
}

/// Why a webhook was refused, as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 400.
    BadRequest,
    /// 401.
    Unauthorized,
    /// 404.
    NotFound,
    /// 413.
    TooLarge,
    /// 5xx.
    Error,
    /// 409: the instance finder matched several organizations' instances.
    Conflict,
}

impl Refusal {
    const ALL: [Refusal; 6] = [
        Refusal::BadRequest,
        Refusal::Unauthorized,
        Refusal::NotFound,
        Refusal::TooLarge,
        Refusal::Error,
        Refusal::Conflict,
    ];

    fn label(self) -> &'static str {
        match self {
            Refusal::BadRequest => "bad_request",
            Refusal::Unauthorized => "unauthorized",
            Refusal::NotFound => "not_found",
            Refusal::TooLarge => "too_large",
            Refusal::Error => "error",
            Refusal::Conflict => "conflict",
        }
    }
}

/// What the host knows only when asked: the gauges and counters of other parts.
#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    /// Instances with a running poll schedule.
    pub polling_instances: u64,
    /// The store's group-commit counters, when it keeps them.
    pub group_commits: Option<store::GroupCommits>,
    /// Instances this host holds the lease of, on a shared store.
    pub owned_instances: Option<u64>,
}

/// The host's counters.
pub struct Metrics {
    webhooks_accepted: Counter,
    webhooks_dropped: Counter,
    webhooks_duplicate: Counter,
    webhooks_refused: Family<Labels, Counter>,
    notifications_stored: Counter,
    deliveries: Family<Labels, Counter>,
    queue_depth: Gauge,
    connector_calls: Histogram,
    polls: Family<Labels, Counter>,
    poll_drift: Histogram,
    poll_drift_max_ms: AtomicU64,
    notifications_pruned: Counter,
    retention_passes: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            webhooks_accepted: Counter::default(),
            webhooks_dropped: Counter::default(),
            webhooks_duplicate: Counter::default(),
            webhooks_refused: family("reason", &Refusal::ALL.map(Refusal::label)),
            notifications_stored: Counter::default(),
            deliveries: family("outcome", &["delivered", "failed", "dead"]),
            queue_depth: Gauge::default(),
            connector_calls: Histogram::new(BUCKETS),
            polls: family("outcome", &["ok", "error"]),
            poll_drift: Histogram::new(BUCKETS),
            poll_drift_max_ms: AtomicU64::new(0),
            notifications_pruned: Counter::default(),
            retention_passes: Counter::default(),
        }
    }
}

impl Metrics {
    /// A webhook was stored.
    pub fn webhook_accepted(&self, notifications: usize) {
        self.webhooks_accepted.inc();
        self.notifications_stored.inc_by(notifications as u64);
    }

    /// A webhook was accepted and dropped (events disabled).
    pub fn webhook_dropped(&self) {
        self.webhooks_dropped.inc();
    }

    /// A webhook was answered as a repeat of one already notified (idempotent intake).
    pub fn webhook_duplicate(&self) {
        self.webhooks_duplicate.inc();
    }

    /// A webhook was refused.
    pub fn webhook_refused(&self, why: Refusal) {
        self.webhooks_refused
            .get_or_create(&vec![("reason", why.label())])
            .inc();
    }

    /// A delivery attempt ended: delivered, failed (will retry) or dead-lettered.
    pub fn delivery(&self, delivered: bool, dead: bool) {
        let outcome = match (delivered, dead) {
            (true, _) => "delivered",
            (false, false) => "failed",
            (false, true) => "dead",
        };
        self.deliveries
            .get_or_create(&vec![("outcome", outcome)])
            .inc();
    }

    /// The number of notifications waiting in the delivery queues changed by `delta`.
    pub fn queue_changed(&self, delta: i64) {
        self.queue_depth.inc_by(delta);
    }

    /// Notifications waiting for delivery now.
    pub fn queue_depth(&self) -> u64 {
        self.queue_depth.get().max(0) as u64
    }

    /// A scheduled poll started `drift_ms` after its slot.
    pub fn poll_started(&self, drift_ms: i64) {
        let drift = drift_ms.max(0) as u64;
        self.poll_drift
            .observe(Duration::from_millis(drift).as_secs_f64());
        self.poll_drift_max_ms.fetch_max(drift, Relaxed);
    }

    /// A poll of one resource ended.
    pub fn poll_finished(&self, ok: bool) {
        let outcome = if ok { "ok" } else { "error" };
        self.polls.get_or_create(&vec![("outcome", outcome)]).inc();
    }

    /// `n` finished notifications were deleted past retention.
    pub fn notifications_pruned(&self, n: u64) {
        self.notifications_pruned.inc_by(n);
    }

    /// The pruner looked for notifications past retention (on this host).
    pub fn retention_pass(&self) {
        self.retention_passes.inc();
    }

    /// A connector call took `d`.
    pub fn connector_call(&self, d: Duration) {
        self.connector_calls.observe(d.as_secs_f64());
    }

    /// The OpenMetrics text exposition ([`CONTENT_TYPE`]), with what `now` says of the
    /// other parts of the host.
    pub fn render(&self, now: Snapshot) -> String {
        let mut r = Registry::default();
        r.register(
            "webhooks_accepted",
            "Webhooks stored durably",
            self.webhooks_accepted.clone(),
        );
        r.register(
            "webhooks_dropped",
            "Webhooks accepted and dropped because events are disabled",
            self.webhooks_dropped.clone(),
        );
        r.register(
            "webhooks_duplicate",
            "Webhooks answered as repeats of one already notified, notifying nothing",
            self.webhooks_duplicate.clone(),
        );
        r.register(
            "webhooks_refused",
            "Webhooks refused, by reason",
            self.webhooks_refused.clone(),
        );
        r.register(
            "notifications_stored",
            "Notifications stored in the outbox",
            self.notifications_stored.clone(),
        );
        r.register(
            "notifications_pruned",
            "Finished notifications deleted past the retention period",
            self.notifications_pruned.clone(),
        );
        r.register(
            "retention_passes",
            "Looks for notifications past retention made by this host",
            self.retention_passes.clone(),
        );
        r.register(
            "deliveries",
            "Delivery attempts, by outcome",
            self.deliveries.clone(),
        );
        r.register(
            "delivery_queue_depth",
            "Notifications waiting for delivery",
            self.queue_depth.clone(),
        );
        r.register(
            "connector_call_seconds",
            "Latency of calls into connectors",
            self.connector_calls.clone(),
        );
        r.register(
            "polls",
            "Polls of one resource, by outcome",
            self.polls.clone(),
        );
        r.register(
            "poll_drift_seconds",
            "How late scheduled polls start after their slot",
            self.poll_drift.clone(),
        );
        r.register(
            "poll_drift_max_seconds",
            "The latest start of a scheduled poll after its slot",
            ConstGauge::new(self.poll_drift_max_ms.load(Relaxed) as f64 / 1000.0),
        );
        r.register(
            "polling_instances",
            "Instances with a running poll schedule",
            ConstGauge::new(now.polling_instances as i64),
        );
        if let Some(g) = now.group_commits {
            r.register(
                "store_commits",
                "Write transactions the store committed",
                ConstCounter::new(g.commits),
            );
            r.register(
                "store_writes",
                "Write operations in those transactions (group commit)",
                ConstCounter::new(g.writes),
            );
        }
        if let Some(n) = now.owned_instances {
            r.register(
                "cluster_owned_instances",
                "Instances this host holds the lease of",
                ConstGauge::new(n as i64),
            );
        }
        let mut out = String::new();
        encode(&mut out, &r).expect("writing to a String does not fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_the_histogram() {
        let m = Metrics::default();
        m.webhook_accepted(3);
        m.webhook_refused(Refusal::Unauthorized);
        m.delivery(true, false);
        m.queue_changed(5);
        m.queue_changed(-2);
        m.connector_call(Duration::from_micros(20));
        let text = m.render(Snapshot {
            polling_instances: 2,
            group_commits: None,
            owned_instances: Some(4),
        });
        assert!(text.contains("webhooks_accepted_total 1"), "{text}");
        assert!(text.contains("webhooks_refused_total{reason=\"conflict\"} 0"));
        assert!(text.contains("polling_instances 2"), "{text}");
        assert!(text.contains("cluster_owned_instances 4"), "{text}");
        assert!(!text.contains("store_commits"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(text.contains("notifications_stored_total 3"), "{text}");
        assert!(text.contains("webhooks_refused_total{reason=\"unauthorized\"} 1"));
        assert!(text.contains("deliveries_total{outcome=\"delivered\"} 1"));
        assert!(text.contains("delivery_queue_depth 3"));
        assert!(
            text.contains("connector_call_seconds_bucket{le=\"0.00005\"} 1"),
            "{text}"
        );
        assert!(text.contains("connector_call_seconds_count 1"));
    }
}
