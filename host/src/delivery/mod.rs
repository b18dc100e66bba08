//! Durable delivery: the outbox's notifications go to their instance's callback URL, in
//! acceptance order per instance, with retries on the [`RetrySchedule`] and a dead letter
//! after the last.
//!
//! The outbox in the store is the truth; the dispatcher keeps a queue per instance in memory
//! and one task per non-empty queue (so at most one task per instance with pending
//! notifications, each asleep while nothing of its queue can start). A notification in
//! backoff holds back only its own instance's later ones: another instance's, even to the
//! same URL, go on.
//!
//! An instance has one attempt in flight at a time by default (strict acceptance order: a
//! notification in backoff holds back all its instance's later ones). With
//! `event.notification.max.in.flight` = K > 1 it has up to K: notifications that share an
//! object id (`events[].objectId`) are never in flight together and go in acceptance
//! order, and one in backoff holds back only the later ones of its object ids (looking at
//! most [`LOOKAHEAD`] notifications into the queue for ones that may pass). A notification
//! whose object ids are not known (loaded from the store at start, or redelivered) passes
//! nothing and is passed by nothing.
//! Each attempt reads the instance's settings as they are then (callback URL, signature key,
//! headers, Basic auth), so after a change the pending notifications go to the new URL with
//! the new credentials, never to the old URL; one queue per instance keeps their order
//! across the change. At start every pending notification is loaded again, so a crash
//! loses nothing (a notification whose success was not yet recorded is sent again:
//! at-least-once). Attempt records are written in batches behind the sends, so a slow disk
//! does not slow delivery.

pub mod client;
pub mod schedule;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use store::{
    Attempt, AttemptRecord, InstanceId, NewNotification, Notification, NotificationId,
    NotificationState, Store,
};
use tokio::sync::mpsc;

use crate::cluster::Ownership;
use crate::instances::Instances;
use crate::instances::settings::CallbackSettings;
use crate::metrics::Metrics;
use crate::now_ms;
use client::{CallbackClient, Post};
pub use schedule::RetrySchedule;

/// A notification waiting in a delivery queue.
#[derive(Debug, Clone)]
pub struct Job {
    /// Acceptance order.
    pub seq: i64,
    /// `message.eventId`.
    pub id: NotificationId,
    /// The instance, whose queue it waits in and whose current callback settings each
    /// attempt uses.
    pub instance_id: InstanceId,
    /// The delivery round.
    pub delivery: u32,
    /// Attempts made in this round.
    pub attempts: u32,
    /// When the next attempt is due (ms since the epoch).
    pub due_ms: i64,
    /// The body, when known; read from the store otherwise.
    pub body: Option<Bytes>,
    /// The keys of its object ids ([`objects`]), when known.
    pub objects: Option<Objects>,
}

/// The keys of a notification's object ids (`events[].objectId`): a hash of each, sorted,
/// without duplicates. Two notifications that share a key keep their order and are never
/// in flight together; a hash collision only orders two that need not be.
pub type Objects = Arc<[u64]>;

/// A set of [`Objects`] keys. They are hashes already: they are their own hash, not
/// hashed again with SipHash on every look into a queue (one per attempt finished).
type Held = std::collections::HashSet<u64, std::hash::BuildHasherDefault<KeyHasher>>;

/// The [`std::hash::Hasher`] of [`Held`]: a `u64` key is its own hash.
#[derive(Default)]
struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64`s are hashed here; any other input still hashes consistently.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, key: u64) {
        self.0 = key;
    }
}

/// The [`Objects`] of a notification whose events have these object ids.
pub fn objects<'a>(ids: impl IntoIterator<Item = &'a str>) -> Objects {
    let mut keys: Vec<u64> = ids.into_iter().map(seed).collect();
    keys.sort_unstable();
    keys.dedup();
    keys.into()
}

impl From<Notification> for Job {
    fn from(n: Notification) -> Self {
        Job {
            seq: n.seq,
            id: n.id,
            instance_id: n.instance_id,
            delivery: n.delivery,
            attempts: n.attempts,
            due_ms: n.next_attempt_ms,
            body: None,
            objects: None,
        }
    }
}

/// The bytes of bodies kept in memory across all queues; past it a job keeps no body and
/// reads it from the store when its turn comes, so a long outage of many instances does
/// not hold every body in RAM.
const BODY_BYTES_IN_MEMORY: usize = 64 << 20;

/// Attempts in flight at once, across all instances: a host with many instances in
/// backlog opens at most this many connections for callbacks.
const ATTEMPTS_IN_FLIGHT: usize = 256;

/// How far into an instance's queue its worker looks for a notification that may start
/// while earlier ones wait (K > 1): past it, later notifications wait too. Bounds the work
/// of one look (one per attempt finished) when many notifications of one object id wait.
pub const LOOKAHEAD: usize = 1024;

/// One instance's jobs, and the signal that wakes its worker when they change.
#[derive(Default)]
struct Queue {
    jobs: VecDeque<Entry>,
    /// Entries with an attempt in flight.
    running: usize,
    wake: Arc<tokio::sync::Notify>,
}

/// A queued job and the delivery round of its attempt in flight, if one is.
struct Entry {
    job: Job,
    running: Option<u32>,
}

/// How deliveries are made.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// When failed attempts are tried again.
    pub schedule: RetrySchedule,
    /// The time-out of one attempt.
    pub attempt_timeout: Duration,
    /// Where callbacks may connect.
    pub egress: crate::egress::Egress,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            schedule: RetrySchedule::default(),
            attempt_timeout: Duration::from_secs(10),
            egress: crate::egress::Egress::default(),
        }
    }
}

struct Inner {
    store: Arc<dyn Store>,
    instances: Arc<Instances>,
    /// The instances this host delivers (all of them, unless it shares its store).
    ownership: Arc<Ownership>,
    metrics: Arc<Metrics>,
    client: CallbackClient,
    config: DeliveryConfig,
    /// Instance → its queue in `seq` order, and the bytes of the bodies they hold. A present
    /// entry means a worker runs for it.
    queues: Mutex<Queues>,
    /// Permits for attempts in flight.
    in_flight: tokio::sync::Semaphore,
    records: mpsc::UnboundedSender<AttemptRecord>,
    /// Attempt records sent to the writer so far, and written so far (see `drain`).
    records_sent: std::sync::atomic::AtomicU64,
    records_written: tokio::sync::watch::Receiver<u64>,
}

/// The queues and the body bytes they hold (under one lock).
#[derive(Default)]
struct Queues {
    by_instance: HashMap<InstanceId, Queue>,
    body_bytes: usize,
    /// Instances whose queues start nothing for now (see [`Dispatcher::hold`]).
    held: std::collections::HashSet<InstanceId>,
}

impl Queues {
    /// Takes the body bytes of `job` off the count.
    fn release(&mut self, job: &Job) {
        self.body_bytes -= job.body.as_ref().map_or(0, Bytes::len);
    }
}

/// What an instance's worker starts now, and when it looks again at the latest.
struct Pick {
    start: Vec<Job>,
    wake_at: Option<i64>,
    wake: Arc<tokio::sync::Notify>,
    /// K = 1: nothing else may start until this attempt ends, so the worker makes it
    /// itself rather than spawning a task for it.
    one_at_a_time: bool,
}

/// The delivery engine. Cheap to clone.
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

impl Dispatcher {
    /// A dispatcher over `store`; call [`Dispatcher::resume`] to load what is pending.
    pub fn new(
        store: Arc<dyn Store>,
        instances: Arc<Instances>,
        ownership: Arc<Ownership>,
        metrics: Arc<Metrics>,
        config: DeliveryConfig,
    ) -> Self {
        let (records, rx) = mpsc::unbounded_channel();
        let (written, records_written) = tokio::sync::watch::channel(0);
        tokio::spawn(record_attempts(store.clone(), rx, written));
        Dispatcher {
            inner: Arc::new(Inner {
                store,
                instances,
                ownership,
                metrics,
                client: CallbackClient::new(config.attempt_timeout, config.egress.clone()),
                config,
                queues: Mutex::new(Queues::default()),
                in_flight: tokio::sync::Semaphore::new(ATTEMPTS_IN_FLIGHT),
                records,
                records_sent: std::sync::atomic::AtomicU64::new(0),
                records_written,
            }),
        }
    }

    /// Queues pending notifications read from the store (by a host taking an instance
    /// over, or told of them by another host); one already queued is updated in place.
    /// Those of instances this host does not own are left to their owner.
    pub fn load(&self, pending: Vec<Notification>) {
        self.enqueue(pending.into_iter().map(Job::from).collect(), true);
    }

    /// [`Dispatcher::load`] with the notifications' bodies at hand (kept in memory within
    /// the budget, as new ones are).
    pub fn load_with_bodies(&self, pending: Vec<(Notification, Vec<u8>)>) {
        let jobs = pending
            .into_iter()
            .map(|(n, body)| Job {
                body: Some(Bytes::from(body)),
                ..Job::from(n)
            })
            .collect();
        self.enqueue(jobs, true);
    }

    /// Drops the queue of an instance this host no longer owns; its worker stops after
    /// the attempt it may be making.
    pub fn forget(&self, instance_id: InstanceId) {
        let mut guard = self.inner.queues.lock().expect("queues lock poisoned");
        let queues = &mut *guard;
        if let Some(queue) = queues.by_instance.remove(&instance_id) {
            for entry in &queue.jobs {
                queues.release(&entry.job);
            }
            self.inner.metrics.queue_changed(-(queue.jobs.len() as i64));
            queue.wake.notify_one();
        }
    }

    /// The instances this host delivers.
    pub fn ownership(&self) -> &Arc<Ownership> {
        &self.inner.ownership
    }

    /// Waits until the attempts in flight of an instance this host no longer owns have
    /// ended, its queue is gone and their records are written, so the next owner starts
    /// after them and knows their outcome (at most the attempt time-out and a second;
    /// then the queue is dropped anyway).
    pub async fn drain(&self, instance_id: InstanceId) {
        let deadline = tokio::time::Instant::now()
            + self.inner.config.attempt_timeout
            + Duration::from_secs(1);
        loop {
            let wake = {
                let queues = self.inner.queues.lock().expect("queues lock poisoned");
                queues.by_instance.get(&instance_id).map(|q| q.wake.clone())
            };
            let Some(wake) = wake else {
                let _ = tokio::time::timeout_at(deadline, self.records_written()).await;
                return;
            };
            if self.inner.ownership.owns(instance_id) {
                // Owned again (hosts came and went): its queue stays.
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                self.forget(instance_id);
                return;
            }
            // Its worker looks again, and ends the queue once nothing is in flight.
            wake.notify_one();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until the records of every attempt made so far are written (at most the
    /// attempt time-out).
    pub async fn flush_records(&self) {
        let _ =
            tokio::time::timeout(self.inner.config.attempt_timeout, self.records_written()).await;
    }

    /// Resolves once the records of the attempts made until now are written.
    async fn records_written(&self) {
        let sent = self
            .inner
            .records_sent
            .load(std::sync::atomic::Ordering::SeqCst);
        let mut written = self.inner.records_written.clone();
        let _ = written.wait_for(|w| *w >= sent).await;
    }

    /// Starts nothing more of an instance's queue until [`Dispatcher::unhold`]: its
    /// pending notifications are being loaded (an instance just taken over), and one
    /// submitted meanwhile must not go out before them.
    pub fn hold(&self, instance_id: InstanceId) {
        let mut queues = self.inner.queues.lock().expect("queues lock poisoned");
        queues.held.insert(instance_id);
    }

    /// Lets an instance's queue start again after [`Dispatcher::hold`].
    pub fn unhold(&self, instance_id: InstanceId) {
        let mut queues = self.inner.queues.lock().expect("queues lock poisoned");
        if queues.held.remove(&instance_id)
            && let Some(queue) = queues.by_instance.get(&instance_id)
        {
            queue.wake.notify_one();
        }
    }

    /// How many notifications of an instance are queued here.
    pub fn queued(&self, instance_id: InstanceId) -> usize {
        let queues = self.inner.queues.lock().expect("queues lock poisoned");
        queues
            .by_instance
            .get(&instance_id)
            .map_or(0, |q| q.jobs.len())
    }

    /// Queues every pending notification of the store (after a start or a crash).
    pub async fn resume(&self) -> Result<usize, store::StoreError> {
        let pending = self.inner.store.pending().await?;
        let n = pending.len();
        self.submit(pending.into_iter().map(Job::from).collect());
        Ok(n)
    }

    /// Stores notifications with `write` (which returns their seqs, `None` for one it did
    /// not store, and what else it has to say) and queues those stored, as one step: it
    /// runs in its own task, so a caller that goes away (a client that hangs up, an aborted
    /// poll) cannot leave them stored but not queued. `objects` has each notification's
    /// [`Objects`], in the same order.
    pub async fn store_then_submit<F, Fut, T>(
        &self,
        notifications: Vec<NewNotification>,
        objects: Vec<Objects>,
        write: F,
    ) -> Result<T, store::StoreError>
    where
        F: FnOnce(Vec<NewNotification>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<(Vec<Option<i64>>, T), store::StoreError>>
            + Send
            + 'static,
        T: Send + 'static,
    {
        let jobs: Vec<Job> = notifications
            .iter()
            .zip(objects.into_iter().map(Some).chain(std::iter::repeat(None)))
            .map(|(n, objects)| Job {
                seq: 0,
                id: n.id.clone(),
                instance_id: n.instance_id,
                delivery: 1,
                attempts: 0,
                due_ms: n.created_ms,
                body: Some(Bytes::from(n.body.clone())),
                objects,
            })
            .collect();
        let this = self.clone();
        tokio::spawn(async move {
            let (seqs, said) = write(notifications).await?;
            let jobs = jobs
                .into_iter()
                .zip(seqs)
                .filter_map(|(job, seq)| Some(Job { seq: seq?, ..job }))
                .collect();
            this.submit(jobs);
            Ok(said)
        })
        .await
        .unwrap_or_else(|e| {
            Err(store::StoreError::Database(format!(
                "the store task failed: {e}"
            )))
        })
    }

    /// Queues newly stored notifications for delivery.
    pub fn submit(&self, jobs: Vec<Job>) {
        self.enqueue(jobs, false);
    }

    /// Queues a notification again for a new delivery round; if it is still queued, it is
    /// updated in place.
    pub fn resubmit(&self, job: Job) {
        self.enqueue(vec![job], true);
    }

    fn enqueue(&self, jobs: Vec<Job>, replace: bool) {
        let mut guard = self.inner.queues.lock().expect("queues lock poisoned");
        let queues = &mut *guard;
        let mut added = 0i64;
        for mut job in jobs {
            if !self.inner.ownership.owns(job.instance_id) {
                // Its owner loads it from the store.
                continue;
            }
            let size = job.body.as_ref().map_or(0, Bytes::len);
            if queues.body_bytes + size > BODY_BYTES_IN_MEMORY {
                job.body = None;
            } else {
                queues.body_bytes += size;
            }
            // A new queue gets its worker.
            let new_worker = !queues.by_instance.contains_key(&job.instance_id);
            let instance_id = job.instance_id;
            let queue = queues.by_instance.entry(instance_id).or_default();
            let existing = if replace {
                queue.jobs.iter().position(|e| e.job.id == job.id)
            } else {
                None
            };
            match existing {
                Some(pos) => {
                    // A new round of a queued notification. An attempt of the old round
                    // still in flight keeps it from starting until it ends.
                    let entry = &mut queue.jobs[pos];
                    if job.objects.is_none() {
                        job.objects = entry.job.objects.clone();
                    }
                    let old = std::mem::replace(&mut entry.job, job);
                    queues.body_bytes -= old.body.as_ref().map_or(0, Bytes::len);
                }
                None => {
                    added += 1;
                    let entry = Entry { job, running: None };
                    // Almost always the back: acceptance order is seq order.
                    if queue
                        .jobs
                        .back()
                        .is_none_or(|last| last.job.seq < entry.job.seq)
                    {
                        queue.jobs.push_back(entry);
                    } else {
                        let at = queue.jobs.partition_point(|e| e.job.seq < entry.job.seq);
                        queue.jobs.insert(at, entry);
                    }
                }
            }
            if new_worker {
                let this = self.clone();
                let wake = queue.wake.clone();
                tokio::spawn(async move { this.work(instance_id, wake).await });
            } else {
                // The worker may be waiting out a backoff, or have room for this one.
                queue.wake.notify_one();
            }
        }
        self.inner.metrics.queue_changed(added);
    }

    /// Marks the jobs of an instance's queue that may start now as in flight and returns
    /// them, with the time its worker should look again (the earliest backoff that holds
    /// one back) and its wake signal; `None` (and the queue removed) when it is empty.
    /// `None` too when the queue whose worker wakes on `wake` was dropped
    /// ([`Dispatcher::forget`]), even if a new one for the instance has its own worker since.
    fn pick(&self, instance_id: InstanceId, wake: &Arc<tokio::sync::Notify>) -> Option<Pick> {
        // The instance's setting now: a change applies from the next look.
        let k = self
            .inner
            .instances
            .get(instance_id)
            .map_or(1, |i| i.settings.max_in_flight.max(1));
        let mut queues = self.inner.queues.lock().expect("queues lock poisoned");
        let queue = match queues.by_instance.get_mut(&instance_id) {
            Some(q) if !Arc::ptr_eq(&q.wake, wake) => return None,
            Some(q) if !q.jobs.is_empty() => q,
            _ => {
                queues.by_instance.remove(&instance_id);
                return None;
            }
        };
        let mut pick = Pick {
            start: Vec::new(),
            wake_at: None,
            wake: queue.wake.clone(),
            one_at_a_time: k == 1,
        };
        if queues.held.contains(&instance_id) {
            return Some(pick);
        }
        let queue = queues
            .by_instance
            .get_mut(&instance_id)
            .expect("the queue was found above");
        if !self.inner.ownership.owns(instance_id) {
            // Its lease was given up or lost: nothing more starts here, and once the
            // attempts in flight have ended the queue goes (the new owner loads it).
            if queue.running > 0 {
                return Some(pick);
            }
            if let Some(queue) = queues.by_instance.remove(&instance_id) {
                for entry in &queue.jobs {
                    queues.release(&entry.job);
                }
                self.inner.metrics.queue_changed(-(queue.jobs.len() as i64));
            }
            return None;
        }
        let now = now_ms();
        let mut room = k.saturating_sub(queue.running);
        // The object ids of the jobs looked at, so later jobs of the same ids wait.
        let mut held = Held::default();
        for (pos, entry) in queue.jobs.iter_mut().enumerate().take(LOOKAHEAD) {
            if room == 0 {
                break;
            }
            // K = 1 keeps strict order: only the front may start, once nothing is in
            // flight. So does a job whose object ids are not known.
            let objects = match &entry.job.objects {
                Some(o) if k > 1 => o,
                _ => {
                    if pos == 0 && entry.running.is_none() && queue.running == 0 {
                        if entry.job.due_ms <= now {
                            entry.running = Some(entry.job.delivery);
                            queue.running += 1;
                            pick.start.push(entry.job.clone());
                        } else {
                            pick.wake_at = Some(entry.job.due_ms);
                        }
                    }
                    break;
                }
            };
            let waits = entry.running.is_some() || objects.iter().any(|o| held.contains(o));
            if !waits && entry.job.due_ms > now {
                pick.wake_at = Some(
                    pick.wake_at
                        .map_or(entry.job.due_ms, |w: i64| w.min(entry.job.due_ms)),
                );
            } else if !waits {
                entry.running = Some(entry.job.delivery);
                queue.running += 1;
                room -= 1;
                pick.start.push(entry.job.clone());
            }
            // Whatever its fate, later jobs of its object ids go after it.
            held.extend(objects.iter().copied());
        }
        Some(pick)
    }

    /// After an attempt of `job`: removes it from its queue, or updates it there for
    /// another attempt. A job redelivered meanwhile (a newer round) is left alone, free to
    /// start.
    fn settle(&self, job: &Job, retry: Option<(u32, i64)>) {
        let mut guard = self.inner.queues.lock().expect("queues lock poisoned");
        let queues = &mut *guard;
        let Some(queue) = queues.by_instance.get_mut(&job.instance_id) else {
            return;
        };
        let Some(pos) = queue.jobs.iter().position(|e| e.job.id == job.id) else {
            return;
        };
        let entry = &mut queue.jobs[pos];
        if entry.running.take().is_some() {
            queue.running -= 1;
        }
        if entry.job.delivery != job.delivery {
            return;
        }
        match retry {
            Some((attempts, due_ms)) => {
                entry.job.attempts = attempts;
                entry.job.due_ms = due_ms;
            }
            None => {
                if let Some(done) = queue.jobs.remove(pos) {
                    queues.release(&done.job);
                }
                self.inner.metrics.queue_changed(-1);
            }
        }
    }

    /// Delivers one instance's queue until it is empty: starts what may start (each
    /// attempt in its own task, within the host's [`ATTEMPTS_IN_FLIGHT`]), then sleeps until
    /// an attempt ends, the queue changes or a backoff is over.
    async fn work(self, instance_id: InstanceId, mine: Arc<tokio::sync::Notify>) {
        while let Some(Pick {
            mut start,
            wake_at,
            wake,
            one_at_a_time,
        }) = self.pick(instance_id, &mine)
        {
            if one_at_a_time && start.len() == 1 {
                let job = start.pop().expect("one job");
                let retry = {
                    let _permit = self.inner.in_flight.acquire().await;
                    self.attempt(&job).await
                };
                self.settle(&job, retry);
                continue;
            }
            for job in start {
                let (this, wake) = (self.clone(), wake.clone());
                tokio::spawn(async move {
                    let retry = {
                        let _permit = this.inner.in_flight.acquire().await;
                        this.attempt(&job).await
                    };
                    this.settle(&job, retry);
                    wake.notify_one();
                });
            }
            match wake_at {
                Some(at) => {
                    let wait = (at - now_ms()).max(0) as u64;
                    // A redeliver call may change the front meanwhile: it wakes us.
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
                        _ = wake.notified() => {}
                    }
                }
                None => wake.notified().await,
            }
        }
    }

    /// Makes one attempt; returns the next attempt's number and due time when it will be
    /// retried, `None` when the job is done (delivered, dead, or its instance is gone).
    async fn attempt(&self, job: &Job) -> Option<(u32, i64)> {
        let inner = &self.inner;
        let Some(instance) = inner.instances.get(job.instance_id) else {
            tracing::info!(notification = %job.id, instance = job.instance_id.0, "instance deleted; notification dropped");
            return None;
        };
        let body = match &job.body {
            Some(b) => b.clone(),
            None => match inner.store.body(&job.id).await {
                Ok(Some(b)) => Bytes::from(b),
                Ok(None) => return None,
                Err(e) => {
                    tracing::warn!(notification = %job.id, error = %e, "cannot read the notification body");
                    return Some((job.attempts, now_ms() + 1000));
                }
            },
        };
        // The instance's settings now, not when the notification was accepted: after a
        // change, a pending notification goes to the new URL with the new credentials.
        let url = instance.settings.callback_url.as_str();
        let CallbackSettings {
            signature_key,
            headers: callback_headers,
            basic_auth,
        } = &instance.settings.callback;
        let at_ms = now_ms();
        let outcome = if url.is_empty() {
            // A checked configuration never loses its URL; should one, nothing is sent.
            client::Outcome {
                status: None,
                latency: Duration::ZERO,
                error: Some("the instance has no callback URL".to_string()),
            }
        } else {
            let mut headers = callback_headers.clone();
            if let Some(key) = signature_key {
                for (k, v) in
                    crate::notify::signature_headers(key, job.id.as_str(), at_ms / 1000, &body)
                {
                    headers.push((k.to_string(), v));
                }
            }
            inner
                .client
                .post(Post {
                    url,
                    headers,
                    basic_auth: basic_auth.as_ref().map(|(u, p)| (u.as_str(), p.as_str())),
                    body,
                })
                .await
        };
        let attempt = job.attempts + 1;
        let delivered = outcome.delivered();
        let delay = if delivered {
            None
        } else {
            inner
                .config
                .schedule
                .after_failure(attempt, seed(job.id.as_str()))
        };
        let (state, next) = match (delivered, delay) {
            (true, _) => (NotificationState::Delivered, 0),
            (false, Some(d)) => (NotificationState::Pending, now_ms() + d.as_millis() as i64),
            (false, None) => (NotificationState::Dead, 0),
        };
        inner
            .metrics
            .delivery(delivered, state == NotificationState::Dead);
        tracing::info!(
            notification = %job.id,
            instance = job.instance_id.0,
            attempt,
            status = outcome.status,
            latency_us = outcome.latency.as_micros() as u64,
            error = outcome.error.as_deref().unwrap_or(""),
            state = state.as_str(),
            "delivery attempt"
        );
        inner
            .records_sent
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let _ = inner.records.send(AttemptRecord {
            attempt: Attempt {
                notification_id: job.id.clone(),
                delivery: job.delivery,
                attempt,
                at_ms,
                status_code: outcome.status,
                latency_us: outcome.latency.as_micros() as i64,
                error: outcome.error,
            },
            new_state: state,
            next_attempt_ms: next,
        });
        (state == NotificationState::Pending).then_some((attempt, next))
    }
}

fn seed(id: &str) -> u64 {
    id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Writes attempt records in the order they were made, many per commit: what is waiting
/// goes to the store as one batch. Counts them on `written`.
async fn record_attempts(
    store: Arc<dyn Store>,
    mut rx: mpsc::UnboundedReceiver<AttemptRecord>,
    written: tokio::sync::watch::Sender<u64>,
) {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, 1024).await > 0 {
        let n = batch.len() as u64;
        for result in store.record_attempts(std::mem::take(&mut batch)).await {
            if let Err(e) = result {
                tracing::warn!(error = %e, "cannot record a delivery attempt");
            }
        }
        written.send_modify(|w| *w += n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn bodies_held_in_memory_stay_within_the_byte_budget() {
        let mut name = [0u8; 8];
        getrandom::fill(&mut name).unwrap();
        let dir = std::env::temp_dir().join(format!("delivery-{}", hex::encode(name)));
        std::fs::create_dir_all(&dir).unwrap();
        let store = Arc::new(store::sqlite::SqliteStore::open(&dir.join("s.sqlite")).unwrap());
        let dispatcher = Dispatcher::new(
            store,
            Arc::new(Instances::new(Vec::new())),
            Ownership::single(),
            Arc::new(Metrics::default()),
            DeliveryConfig::default(),
        );
        // Two instances' backlogs of 1 MiB bodies, 100 each: the workers do not run until
        // this test awaits, so every job is still queued when counted.
        let body = Bytes::from(vec![b'x'; 1 << 20]);
        for instance in [1, 2] {
            let jobs = (0..100)
                .map(|i| Job {
                    seq: instance * 1000 + i,
                    id: NotificationId::from(format!("n-{instance}-{i}").as_str()),
                    instance_id: InstanceId(instance),
                    delivery: 1,
                    attempts: 0,
                    due_ms: 0,
                    body: Some(body.clone()),
                    objects: None,
                })
                .collect();
            dispatcher.submit(jobs);
        }
        let queues = dispatcher.inner.queues.lock().unwrap();
        let held: usize = queues
            .by_instance
            .values()
            .flat_map(|q| q.jobs.iter())
            .filter_map(|e| e.job.body.as_ref().map(Bytes::len))
            .sum();
        assert_eq!(held, queues.body_bytes);
        assert_eq!(held, BODY_BYTES_IN_MEMORY, "64 of the 200 bodies are kept");
        let queued: usize = queues.by_instance.values().map(|q| q.jobs.len()).sum();
        assert_eq!(queued, 200);
        drop(queues);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
