//! Counters for `GET /metrics`, rendered in the Prometheus text format.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0,
];

/// A latency histogram with fixed buckets.
#[derive(Default)]
struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_ns: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.counts[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_ns.fetch_add(d.as_nanos() as u64, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str) {
        let _ = writeln!(out, "# TYPE {name} histogram");
        let mut cumulative = 0;
        for (b, c) in BUCKETS.iter().zip(&self.counts) {
            cumulative += c.load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_ns.load(Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {count}");
    }
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

/// The host's counters.
#[derive(Default)]
pub struct Metrics {
    webhooks_accepted: AtomicU64,
    webhooks_dropped: AtomicU64,
    webhooks_duplicate: AtomicU64,
    webhooks_refused: [AtomicU64; 6],
    notifications_stored: AtomicU64,
    deliveries_ok: AtomicU64,
    deliveries_failed: AtomicU64,
    deliveries_dead: AtomicU64,
    queue_depth: AtomicU64,
    connector_calls: Histogram,
    polls_ok: AtomicU64,
    polls_failed: AtomicU64,
    poll_drift: Histogram,
    poll_drift_max_ms: AtomicU64,
    notifications_pruned: AtomicU64,
    retention_passes: AtomicU64,
}

impl Metrics {
    /// A webhook was stored.
    pub fn webhook_accepted(&self, notifications: usize) {
        self.webhooks_accepted.fetch_add(1, Relaxed);
        self.notifications_stored
            .fetch_add(notifications as u64, Relaxed);
    }

    /// A webhook was accepted and dropped (events disabled).
    pub fn webhook_dropped(&self) {
        self.webhooks_dropped.fetch_add(1, Relaxed);
    }

    /// A webhook was answered as a repeat of one already notified (idempotent intake).
    pub fn webhook_duplicate(&self) {
        self.webhooks_duplicate.fetch_add(1, Relaxed);
    }

    /// A webhook was refused.
    pub fn webhook_refused(&self, why: Refusal) {
        let i = Refusal::ALL.iter().position(|r| *r == why).unwrap_or(4);
        self.webhooks_refused[i].fetch_add(1, Relaxed);
    }

    /// A delivery attempt ended: delivered, failed (will retry) or dead-lettered.
    pub fn delivery(&self, delivered: bool, dead: bool) {
        let c = match (delivered, dead) {
            (true, _) => &self.deliveries_ok,
            (false, false) => &self.deliveries_failed,
            (false, true) => &self.deliveries_dead,
        };
        c.fetch_add(1, Relaxed);
    }

    /// The number of notifications waiting in the delivery queues changed by `delta`.
    pub fn queue_changed(&self, delta: i64) {
        if delta >= 0 {
            self.queue_depth.fetch_add(delta as u64, Relaxed);
        } else {
            self.queue_depth.fetch_sub(delta.unsigned_abs(), Relaxed);
        }
    }

    /// Notifications waiting for delivery now.
    pub fn queue_depth(&self) -> u64 {
        self.queue_depth.load(Relaxed)
    }

    /// A scheduled poll started `drift_ms` after its slot.
    pub fn poll_started(&self, drift_ms: i64) {
        let drift = drift_ms.max(0) as u64;
        self.poll_drift.observe(Duration::from_millis(drift));
        self.poll_drift_max_ms.fetch_max(drift, Relaxed);
    }

    /// A poll of one resource ended.
    pub fn poll_finished(&self, ok: bool) {
        if ok {
            &self.polls_ok
        } else {
            &self.polls_failed
        }
        .fetch_add(1, Relaxed);
    }

    /// `n` finished notifications were deleted past retention.
    pub fn notifications_pruned(&self, n: u64) {
        self.notifications_pruned.fetch_add(n, Relaxed);
    }

    /// The pruner looked for notifications past retention (on this host).
    pub fn retention_pass(&self) {
        self.retention_passes.fetch_add(1, Relaxed);
    }

    /// A connector call took `d`.
    pub fn connector_call(&self, d: Duration) {
        self.connector_calls.observe(d);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        };
        counter(
            &mut out,
            "webhooks_accepted_total",
            "Webhooks stored durably.",
            self.webhooks_accepted.load(Relaxed),
        );
        counter(
            &mut out,
            "webhooks_dropped_total",
            "Webhooks accepted and dropped because events are disabled.",
            self.webhooks_dropped.load(Relaxed),
        );
        counter(
            &mut out,
            "webhooks_duplicate_total",
            "Webhooks answered as repeats of one already notified, notifying nothing.",
            self.webhooks_duplicate.load(Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP webhooks_refused_total Webhooks refused, by reason.\n# TYPE webhooks_refused_total counter"
        );
        for (r, c) in Refusal::ALL.iter().zip(&self.webhooks_refused) {
            let _ = writeln!(
                out,
                "webhooks_refused_total{{reason=\"{}\"}} {}",
                r.label(),
                c.load(Relaxed)
            );
        }
        counter(
            &mut out,
            "notifications_stored_total",
            "Notifications stored in the outbox.",
            self.notifications_stored.load(Relaxed),
        );
        counter(
            &mut out,
            "notifications_pruned_total",
            "Finished notifications deleted past the retention period.",
            self.notifications_pruned.load(Relaxed),
        );
        counter(
            &mut out,
            "retention_passes_total",
            "Looks for notifications past retention made by this host.",
            self.retention_passes.load(Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP deliveries_total Delivery attempts, by outcome.\n# TYPE deliveries_total counter"
        );
        for (label, c) in [
            ("delivered", &self.deliveries_ok),
            ("failed", &self.deliveries_failed),
            ("dead", &self.deliveries_dead),
        ] {
            let _ = writeln!(
                out,
                "deliveries_total{{outcome=\"{label}\"}} {}",
                c.load(Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP delivery_queue_depth Notifications waiting for delivery.\n# TYPE delivery_queue_depth gauge\ndelivery_queue_depth {}",
            self.queue_depth()
        );
        let _ = writeln!(
            out,
            "# HELP connector_call_seconds Latency of calls into connectors."
        );
        self.connector_calls
            .render(&mut out, "connector_call_seconds");
        let _ = writeln!(
            out,
            "# HELP polls_total Polls of one resource, by outcome.\n# TYPE polls_total counter\npolls_total{{outcome=\"ok\"}} {}\npolls_total{{outcome=\"error\"}} {}",
            self.polls_ok.load(Relaxed),
            self.polls_failed.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP poll_drift_seconds How late scheduled polls start after their slot."
        );
        self.poll_drift.render(&mut out, "poll_drift_seconds");
        let _ = writeln!(
            out,
            "# HELP poll_drift_max_seconds The latest start of a scheduled poll after its slot.\n# TYPE poll_drift_max_seconds gauge\npoll_drift_max_seconds {}",
            self.poll_drift_max_ms.load(Relaxed) as f64 / 1000.0
        );
        out
    }
}

/// The store's group-commit counters in the Prometheus text format: their ratio is the
/// average number of writes per committed transaction.
pub fn render_group_commits(g: store::GroupCommits) -> String {
    format!(
        "# HELP store_commits_total Write transactions the store committed.\n# TYPE store_commits_total counter\nstore_commits_total {}\n\
         # HELP store_writes_total Write operations in those transactions (group commit).\n# TYPE store_writes_total counter\nstore_writes_total {}\n",
        g.commits, g.writes
    )
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
        let text = m.render();
        assert!(text.contains("webhooks_accepted_total 1"), "{text}");
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
