//! Polling: for vendors without webhooks the host asks what changed since the last poll
//! and notifies it as CREATED/UPDATED events.
//!
//! Each polling instance has one task that wakes at its slots: every
//! `event.poller.refresh_interval` minutes, at a phase derived from the instance id so that
//! thousands of instances spread over the interval instead of firing together. A change to
//! the instance restarts its task; a delete or disable stops it.

pub mod auth;
pub mod cycle;
pub mod resources;
pub mod vendor;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use store::{InstanceId, PollState, Store, StoreError};

use crate::cluster::Ownership;
use crate::delivery::Dispatcher;
use crate::instances::settings::{FieldError, VendorType, event_settings};
use crate::instances::{Instances, LiveInstance};
use crate::metrics::Metrics;
use crate::registry::Registry;
use cycle::CycleOutcome;
use resources::Resource;
use runtime::{CallError, LoadedConnector};
use vendor::{VendorClient, VendorError};

/// Minutes between polls when the instance does not say.
pub const DEFAULT_INTERVAL_MINUTES: f64 = 15.0;
/// The longest wait after repeated failures.
const MAX_BACKOFF_MS: i64 = 60 * 60 * 1000;

/// What one poll of one resource may spend before it is stopped.
///
/// A vendor that always answers another page (or pages too large, or too slowly) would
/// otherwise keep a poll reading, and every record read in memory, until the page limit
/// ([`cycle::MAX_PAGES`] pages of up to 32 MiB). Past any of these the poll fails like any
/// other failed poll ([`PollError::OverBudget`]): nothing is notified, the cursor stays, the
/// error shows in `GET /instances/{id}` and in a manual poll's answer, and the next poll
/// asks for the same window again after the usual backoff. A window that legitimately
/// needs more keeps failing until the limit that names itself in the error is raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollBudget {
    /// The most records the connector may return over the pages of one poll
    /// (`--poll-max-records`). Bounds the records held in memory and the notifications one
    /// poll stores, whatever their size.
    pub max_records: usize,
    /// The most answer bytes read from the vendor over the pages of one poll
    /// (`--poll-max-bytes`): a page is read only up to what is left.
    pub max_bytes: usize,
    /// The longest one poll may take (`--poll-max-ms`): checked before each page, and a
    /// page's request gets at most the time left.
    pub max_time: Duration,
}

impl Default for PollBudget {
    /// 100,000 records, 64 MiB, 5 minutes: about ten times a busy window of a large
    /// account (Keap pages of 1,000 records of under 1 KiB), while the records one poll
    /// holds stay in the low hundreds of MiB even when they are tiny, and a poll ends well
    /// within the default 15-minute interval.
    fn default() -> Self {
        PollBudget {
            max_records: 100_000,
            max_bytes: 64 << 20,
            max_time: Duration::from_secs(5 * 60),
        }
    }
}

/// Which part of the [`PollBudget`] a poll went over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Overspent {
    /// Too many records.
    #[error("more than {0} records (--poll-max-records)")]
    Records(usize),
    /// Too many bytes read from the vendor.
    #[error("more than {0} bytes read from the vendor (--poll-max-bytes)")]
    Bytes(usize),
    /// Too long.
    #[error("longer than {} ms (--poll-max-ms)", .0.as_millis())]
    Time(Duration),
}

/// How polling is limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollConfig {
    /// What one poll of one resource may spend.
    pub budget: PollBudget,
    /// The least time between two manual polls of one instance (`--poll-now-interval-ms`);
    /// zero lets every one through.
    pub now_interval: Duration,
    /// The shortest interval a schedule runs at (`--min-poll-interval-ms`): a stored
    /// configuration asking for less, from before the quota, polls at this pace.
    pub min_interval: Duration,
}

impl Default for PollConfig {
    /// The default budget; one manual poll per instance every 10 s.
    fn default() -> Self {
        PollConfig {
            budget: PollBudget::default(),
            now_interval: Duration::from_secs(10),
            min_interval: crate::quotas::Quotas::default().min_poll_interval,
        }
    }
}

/// A manual poll refused because the instance was polled on demand too recently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "instance {instance} may be polled on demand once every {} ms (--poll-now-interval-ms); \
     retry in {} s",
    .interval.as_millis(),
    self.retry_after_secs()
)]
pub struct TooSoon {
    /// The instance.
    pub instance: InstanceId,
    /// The configured interval.
    pub interval: Duration,
    /// How long until a manual poll is let through.
    pub wait: Duration,
}

impl TooSoon {
    /// The wait in whole seconds, rounded up, at least 1 (for `Retry-After`).
    pub fn retry_after_secs(&self) -> u64 {
        self.wait.as_millis().div_ceil(1000).max(1) as u64
    }
}

/// Why a poll failed. Nothing is notified and the cursor stays where it was.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    /// A URL template could not be rendered.
    #[error("cannot render the resource URL: {0}")]
    Template(String),
    /// The vendor call failed.
    #[error("{0}")]
    Http(#[from] VendorError),
    /// The vendor's answer could not be used.
    #[error("{0}")]
    Vendor(String),
    /// The vendor asked to slow down.
    #[error("the vendor answered 429 Too Many Requests")]
    RateLimited {
        /// Its `Retry-After`, in milliseconds.
        retry_after_ms: Option<i64>,
    },
    /// The vendor refused the credentials and they could not be renewed.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The connector failed or refused.
    #[error("{0}")]
    Connector(#[from] CallError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The instance cannot be polled (not loaded, not a polling instance).
    #[error("{0}")]
    NotPollable(String),
    /// The poll went over its [`PollBudget`].
    #[error(
        "resource `{resource}` went over the poll budget, {spent}: nothing was notified and \
         the next poll asks for the same window again"
    )]
    OverBudget {
        /// The resource.
        resource: String,
        /// What ran out.
        spent: Overspent,
    },
}

/// What one poll of one resource came to.
#[derive(Debug)]
pub struct ResourceReport {
    /// The resource.
    pub resource: String,
    /// Its outcome.
    pub outcome: Result<CycleOutcome, PollError>,
}

struct Inner {
    registry: Arc<Registry>,
    store: Arc<dyn Store>,
    instances: Arc<Instances>,
    dispatcher: Dispatcher,
    /// The instances this host polls (all of them, unless it shares its store).
    ownership: Arc<Ownership>,
    metrics: Arc<Metrics>,
    vendor: VendorClient,
    config: PollConfig,
    /// When each instance last had a manual poll let through (see [`Poller::admit_now`]).
    polled_now: Mutex<RecentPolls>,
    /// A running schedule per instance. Dropping the sender stops the task between polls
    /// (never during one: a poll cut short could lose a rotated refresh token).
    tasks: Mutex<HashMap<InstanceId, tokio::sync::watch::Sender<()>>>,
    /// One poll at a time per instance (scheduled and on-demand alike).
    running: Mutex<HashMap<InstanceId, Arc<tokio::sync::Mutex<()>>>>,
    /// Each instance's poll resources, resolved once per version of the instance and of
    /// its connector (both are replaced, never changed, so a pointer names a version; the
    /// `Weak`s keep those addresses from being reused while an entry holds them).
    resources: Mutex<HashMap<InstanceId, Resolved>>,
}

/// The manual polls let through within the last interval, by instance.
struct RecentPolls {
    at: HashMap<InstanceId, Instant>,
    /// The size at which entries older than the interval are dropped: twice what was left
    /// by the last pruning, so pruning costs O(1) a poll on average.
    prune_at: usize,
}

/// An instance's resources as resolved against one version of it and of its connector.
struct Resolved {
    instance: Weak<LiveInstance>,
    connector: Weak<LoadedConnector>,
    resources: Arc<Result<Vec<Resource>, FieldError>>,
}

/// The polling scheduler. Cheap to clone.
#[derive(Clone)]
pub struct Poller {
    inner: Arc<Inner>,
}

/// The poll interval of an instance, if it is a polling instance with events on.
///
/// Read when a schedule starts or restarts, not per cycle: the vendor type a connector
/// defaults to is decided here, where the connector is at hand, by the same
/// `event_settings` that checked the configuration when it was stored (so a stored
/// configuration a later host reads as invalid gets no schedule).
fn interval_of(instance: &LiveInstance, registry: &Registry, least: Duration) -> Option<Duration> {
    if !instance.events_on() {
        return None;
    }
    let connector = registry.get(&instance.element_key)?;
    let settings = event_settings(connector.info(), &instance.config_pairs()).ok()?;
    if settings.vendor_type != VendorType::Polling {
        return None;
    }
    let minutes = settings
        .refresh_interval_minutes
        .unwrap_or(DEFAULT_INTERVAL_MINUTES);
    Duration::try_from_secs_f64(minutes * 60.0)
        .ok()
        .map(|d| d.max(least).max(Duration::from_millis(100)))
}

/// The first slot after `now`: slots are `phase + k * interval`.
fn next_slot(now_ms: i64, interval_ms: i64, phase_ms: i64) -> i64 {
    let since_phase = (now_ms - phase_ms).rem_euclid(interval_ms);
    now_ms - since_phase + interval_ms
}

/// A stable spread of instance ids over an interval.
fn phase(InstanceId(id): InstanceId, interval_ms: i64) -> i64 {
    let mut x = id as u64 ^ 0x9E37_79B9_7F4A_7C15;
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((x ^ (x >> 31)) % interval_ms.max(1) as u64) as i64
}

impl Poller {
    /// A scheduler; call [`Poller::start_all`] to start the stored instances.
    pub fn new(
        registry: Arc<Registry>,
        store: Arc<dyn Store>,
        instances: Arc<Instances>,
        dispatcher: Dispatcher,
        metrics: Arc<Metrics>,
        vendor: VendorClient,
        config: PollConfig,
    ) -> Self {
        // The instances this host polls are those it delivers.
        let ownership = dispatcher.ownership().clone();
        Poller {
            inner: Arc::new(Inner {
                registry,
                store,
                instances,
                dispatcher,
                ownership,
                metrics,
                vendor,
                config,
                polled_now: Mutex::new(RecentPolls {
                    at: HashMap::new(),
                    prune_at: 1024,
                }),
                tasks: Mutex::new(HashMap::new()),
                running: Mutex::new(HashMap::new()),
                resources: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The client vendor calls go through.
    pub fn vendor(&self) -> &VendorClient {
        &self.inner.vendor
    }

    /// Schedules every stored polling instance.
    pub fn start_all(&self) {
        for id in self.inner.instances.ids() {
            self.sync(id);
        }
    }

    /// Keeps the schedules in step with the drop-in directory: when a connector is loaded,
    /// replaced or unloaded, the schedules of its instances start, restart or stop. Ends
    /// when the poller or the registry is gone.
    pub fn follow(&self, mut changes: tokio::sync::broadcast::Receiver<String>) {
        use tokio::sync::broadcast::error::RecvError;
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            loop {
                let changed = changes.recv().await;
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                let poller = Poller { inner };
                match changed {
                    Ok(key) => {
                        for id in poller.inner.instances.ids() {
                            if poller
                                .inner
                                .instances
                                .get(id)
                                .is_some_and(|i| i.element_key == key)
                            {
                                poller.sync(id);
                            }
                        }
                    }
                    Err(RecvError::Lagged(_)) => poller.start_all(),
                    Err(RecvError::Closed) => return,
                }
            }
        });
    }

    /// Starts, restarts or stops the schedule of an instance after it was created,
    /// changed or deleted, or after this host gave it up.
    pub fn sync(&self, instance_id: InstanceId) {
        self.start(instance_id, false);
    }

    /// Starts the schedule of an instance this host has just taken over from another: if
    /// the last slot before now went unpolled (its host died), it is polled at once, late.
    pub fn take_over(&self, instance_id: InstanceId) {
        self.start(instance_id, true);
    }

    /// Waits until no poll of `instance_id` runs on this host.
    pub async fn idle(&self, instance_id: InstanceId) {
        let lock = self.lock_of(instance_id);
        drop(lock.lock().await);
    }

    fn start(&self, instance_id: InstanceId, catch_up: bool) {
        let mut tasks = self.inner.tasks.lock().expect("poll tasks lock poisoned");
        tasks.remove(&instance_id);
        let Some(instance) = self.inner.instances.get(instance_id) else {
            self.resources_lock().remove(&instance_id);
            return;
        };
        if !self.inner.ownership.owns(instance_id) {
            return;
        }
        let Some(interval) = interval_of(
            &instance,
            &self.inner.registry,
            self.inner.config.min_interval,
        ) else {
            return;
        };
        let this = self.clone();
        let (stop, stopped) = tokio::sync::watch::channel(());
        tokio::spawn(async move {
            this.schedule(instance_id, interval, catch_up, stopped)
                .await
        });
        tasks.insert(instance_id, stop);
    }

    /// How many instances have a running schedule.
    pub fn scheduled(&self) -> usize {
        self.inner
            .tasks
            .lock()
            .expect("poll tasks lock poisoned")
            .len()
    }

    async fn schedule(
        self,
        instance_id: InstanceId,
        interval: Duration,
        catch_up: bool,
        mut stopped: tokio::sync::watch::Receiver<()>,
    ) {
        let interval_ms = interval.as_millis() as i64;
        let phase = phase(instance_id, interval_ms);
        if catch_up {
            let last_slot = next_slot(crate::now_ms(), interval_ms, phase) - interval_ms;
            if self.missed(instance_id, last_slot).await {
                self.inner
                    .metrics
                    .poll_started((crate::now_ms() - last_slot).max(0));
                Box::pin(self.cycle(instance_id, false)).await;
            }
        }
        loop {
            let slot = next_slot(crate::now_ms(), interval_ms, phase);
            let wait = slot - crate::now_ms();
            if wait > 0 {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(wait as u64)) => {}
                    _ = stopped.changed() => return,
                }
            }
            if stopped.has_changed().is_err() || !self.inner.ownership.owns(instance_id) {
                return;
            }
            self.inner
                .metrics
                .poll_started((crate::now_ms() - slot).max(0));
            // Boxed: the poll's future is large, and ten thousand sleeping schedules should
            // not each carry one.
            Box::pin(self.cycle(instance_id, false)).await;
        }
    }

    /// Lets a manual poll of `instance_id` through, or refuses it when one was let through
    /// less than [`PollConfig::now_interval`] ago. Let through, it counts from now.
    pub fn admit_now(&self, instance_id: InstanceId) -> Result<(), TooSoon> {
        let interval = self.inner.config.now_interval;
        if interval.is_zero() {
            return Ok(());
        }
        let now = Instant::now();
        let mut recent = self
            .inner
            .polled_now
            .lock()
            .expect("manual polls lock poisoned");
        if let Some(last) = recent.at.get(&instance_id) {
            let since = now.saturating_duration_since(*last);
            if since < interval {
                return Err(TooSoon {
                    instance: instance_id,
                    interval,
                    wait: interval - since,
                });
            }
        }
        recent.at.insert(instance_id, now);
        if recent.at.len() >= recent.prune_at {
            recent
                .at
                .retain(|_, t| now.saturating_duration_since(*t) < interval);
            recent.prune_at = (recent.at.len() * 2).max(1024);
        }
        Ok(())
    }

    /// Polls an instance now (`POST /instances/{id}/events/poll`), ignoring backoff.
    pub async fn poll_now(&self, instance_id: InstanceId) -> Vec<ResourceReport> {
        self.cycle(instance_id, true).await
    }

    fn resources_lock(&self) -> std::sync::MutexGuard<'_, HashMap<InstanceId, Resolved>> {
        self.inner
            .resources
            .lock()
            .expect("poll resources lock poisoned")
    }

    /// The resources `instance` polls with `connector`: resolved on the first poll of this
    /// version of the two, then reused.
    fn resources_of(
        &self,
        instance: &Arc<LiveInstance>,
        connector: &Arc<LoadedConnector>,
    ) -> Arc<Result<Vec<Resource>, FieldError>> {
        let mut cache = self.resources_lock();
        if let Some(r) = cache.get(&instance.id)
            && std::ptr::eq(r.instance.as_ptr(), Arc::as_ptr(instance))
            && std::ptr::eq(r.connector.as_ptr(), Arc::as_ptr(connector))
        {
            return r.resources.clone();
        }
        let resources = Arc::new(resources::resolve(
            connector.info(),
            &instance.config_pairs(),
        ));
        cache.insert(
            instance.id,
            Resolved {
                instance: Arc::downgrade(instance),
                connector: Arc::downgrade(connector),
                resources: resources.clone(),
            },
        );
        resources
    }

    /// Whether the slot at `slot_ms` went unpolled: no resource's poll started at or after
    /// it (an instance never polled counts when it is older than the slot).
    async fn missed(&self, instance_id: InstanceId, slot_ms: i64) -> bool {
        match self.inner.store.poll_states(instance_id).await {
            Ok(states) if states.is_empty() => self
                .inner
                .instances
                .get(instance_id)
                .is_some_and(|i| i.created_ms < slot_ms),
            Ok(states) => states
                .iter()
                .filter_map(|s| s.last_attempt_ms)
                .max()
                .is_none_or(|last| last < slot_ms),
            Err(e) => {
                tracing::warn!(instance = instance_id.0, error = %e, "cannot read the poll state");
                false
            }
        }
    }

    fn lock_of(&self, instance_id: InstanceId) -> Arc<tokio::sync::Mutex<()>> {
        self.inner
            .running
            .lock()
            .expect("poll locks poisoned")
            .entry(instance_id)
            .or_default()
            .clone()
    }

    async fn cycle(&self, instance_id: InstanceId, now: bool) -> Vec<ResourceReport> {
        let lock = self.lock_of(instance_id);
        let _guard = lock.lock().await;
        let Some(instance) = self.inner.instances.get(instance_id) else {
            return Vec::new();
        };
        let Some(connector) = self.inner.registry.get(&instance.element_key) else {
            return vec![ResourceReport {
                resource: String::new(),
                outcome: Err(PollError::NotPollable(format!(
                    "connector `{}` is not loaded",
                    instance.element_key
                ))),
            }];
        };
        let resolved = self.resources_of(&instance, &connector);
        let resources = match resolved.as_ref() {
            Ok(r) => r,
            Err(e) => {
                return vec![ResourceReport {
                    resource: String::new(),
                    outcome: Err(PollError::NotPollable(format!("{}: {}", e.field, e.reason))),
                }];
            }
        };
        let states = match self.inner.store.poll_states(instance_id).await {
            Ok(s) => s,
            Err(e) => {
                return vec![ResourceReport {
                    resource: String::new(),
                    outcome: Err(e.into()),
                }];
            }
        };
        let mut reports = Vec::new();
        for resource in resources {
            let state = states
                .iter()
                .find(|s| s.resource == resource.name)
                .cloned()
                .unwrap_or_else(|| PollState {
                    instance_id,
                    resource: resource.name.clone(),
                    last_success_ms: None,
                    seen: Vec::new(),
                    last_attempt_ms: None,
                    last_error: None,
                    failures: 0,
                    last_events: 0,
                    not_before_ms: None,
                });
            if !now && state.not_before_ms.is_some_and(|t| t > crate::now_ms()) {
                continue;
            }
            let started = crate::now_ms();
            let outcome = self
                .poll_resource(&instance, &connector, resource, state.clone())
                .await;
            match &outcome {
                Ok(o) => {
                    self.inner.metrics.poll_finished(true);
                    tracing::info!(instance = instance_id.0, resource = %resource.name, records = o.records, events = o.events, "poll done");
                }
                Err(e) => {
                    self.inner.metrics.poll_finished(false);
                    tracing::warn!(instance = instance_id.0, resource = %resource.name, error = %e, "poll failed");
                    let interval = interval_of(
                        &instance,
                        &self.inner.registry,
                        self.inner.config.min_interval,
                    )
                    .map(|d| d.as_millis() as i64)
                    .unwrap_or(60_000);
                    let failures = state.failures + 1;
                    let backoff = match e {
                        PollError::RateLimited {
                            retry_after_ms: Some(ms),
                        } => *ms,
                        _ => (interval << (failures - 1).min(16)).min(MAX_BACKOFF_MS) - interval,
                    };
                    let failed = PollState {
                        last_attempt_ms: Some(started),
                        last_error: Some(e.to_string()),
                        failures,
                        not_before_ms: (backoff > 0).then_some(started + backoff),
                        ..state
                    };
                    if let Err(e) = self.inner.store.save_poll(failed, Vec::new()).await {
                        tracing::warn!(instance = instance_id.0, error = %e, "cannot record the failed poll");
                    }
                }
            }
            reports.push(ResourceReport {
                resource: resource.name.clone(),
                outcome,
            });
        }
        reports
    }
}

/// The last poll of each resource, by resource name, as the API shows it.
pub fn poll_view(
    states: &[PollState],
) -> std::collections::BTreeMap<String, crate::api::model::PollStatus> {
    let date = |ms: Option<i64>| ms.map(crate::notify::rfc3339_ms);
    states
        .iter()
        .map(|s| {
            (
                s.resource.clone(),
                crate::api::model::PollStatus {
                    last_poll_date: date(s.last_attempt_ms),
                    last_success_date: date(s.last_success_ms),
                    outcome: if s.last_error.is_some() {
                        "error"
                    } else {
                        "ok"
                    }
                    .to_string(),
                    error: s.last_error.clone(),
                    failures: s.failures,
                    last_events: s.last_events,
                    next_poll_not_before: date(s.not_before_ms),
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_manual_poll_says_when_to_retry_in_whole_seconds_rounded_up() {
        let too_soon = |wait_ms| TooSoon {
            instance: InstanceId(7),
            interval: Duration::from_secs(10),
            wait: Duration::from_millis(wait_ms),
        };
        assert_eq!(too_soon(9_001).retry_after_secs(), 10);
        assert_eq!(too_soon(9_000).retry_after_secs(), 9);
        assert_eq!(too_soon(1).retry_after_secs(), 1);
        assert_eq!(too_soon(0).retry_after_secs(), 1);
        let text = too_soon(2_500).to_string();
        assert!(
            text.contains("instance 7")
                && text.contains("10000 ms (--poll-now-interval-ms)")
                && text.contains("retry in 3 s"),
            "{text}"
        );
    }

    #[test]
    fn slots_follow_the_phase() {
        assert_eq!(next_slot(1_000, 600, 100), 1_300);
        assert_eq!(next_slot(1_300, 600, 100), 1_900);
        assert_eq!(next_slot(50, 600, 100), 100);
    }

    #[test]
    fn phases_spread_over_the_interval() {
        let interval = 60_000;
        let mut buckets = [0u32; 10];
        for id in 1..=10_000 {
            let p = phase(InstanceId(id), interval);
            assert!((0..interval).contains(&p));
            buckets[(p * 10 / interval) as usize] += 1;
        }
        assert!(
            buckets.iter().all(|b| (800..1200).contains(b)),
            "{buckets:?}"
        );
    }
}
