//! Durable delivery: the outbox's notifications go to their instance's callback URL, in
//! acceptance order per instance, with retries on the [`RetrySchedule`] and a dead letter
//! after the last.
//!
//! The outbox in the store is the truth; the dispatcher keeps a queue per instance in memory
//! and one task per non-empty queue (so at most one task per instance with pending
//! notifications, each asleep while its front waits). A notification in backoff holds back
//! only its own instance's later ones: another instance's, even to the same URL, go on.
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

/// One instance's jobs, and the signal that wakes its worker when the front changes.
#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    wake: Arc<tokio::sync::Notify>,
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
}

/// The queues and the body bytes they hold (under one lock).
#[derive(Default)]
struct Queues {
    by_instance: HashMap<InstanceId, Queue>,
    body_bytes: usize,
}

impl Queues {
    /// Takes the body bytes of `job` off the count.
    fn release(&mut self, job: &Job) {
        self.body_bytes -= job.body.as_ref().map_or(0, Bytes::len);
    }
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
        tokio::spawn(record_attempts(store.clone(), rx));
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
            }),
        }
    }

    /// Queues pending notifications read from the store (by a host taking an instance
    /// over, or told of them by another host); one already queued is updated in place.
    /// Those of instances this host does not own are left to their owner.
    pub fn load(&self, pending: Vec<Notification>) {
        self.enqueue(pending.into_iter().map(Job::from).collect(), true);
    }

    /// Drops the queue of an instance this host no longer owns; its worker stops after
    /// the attempt it may be making.
    pub fn forget(&self, instance_id: InstanceId) {
        let mut guard = self.inner.queues.lock().expect("queues lock poisoned");
        let queues = &mut *guard;
        if let Some(queue) = queues.by_instance.remove(&instance_id) {
            for job in &queue.jobs {
                queues.release(job);
            }
            self.inner.metrics.queue_changed(-(queue.jobs.len() as i64));
            queue.wake.notify_one();
        }
    }

    /// The instances this host delivers.
    pub fn ownership(&self) -> &Arc<Ownership> {
        &self.inner.ownership
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
    /// poll) cannot leave them stored but not queued.
    pub async fn store_then_submit<F, Fut, T>(
        &self,
        notifications: Vec<NewNotification>,
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
            .map(|n| Job {
                seq: 0,
                id: n.id.clone(),
                instance_id: n.instance_id,
                delivery: 1,
                attempts: 0,
                due_ms: n.created_ms,
                body: Some(Bytes::from(n.body.clone())),
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
                queue.jobs.iter().position(|j| j.id == job.id)
            } else {
                None
            };
            let front_changed = match existing {
                Some(pos) => {
                    let old = std::mem::replace(&mut queue.jobs[pos], job);
                    queues.body_bytes -= old.body.as_ref().map_or(0, Bytes::len);
                    true
                }
                None => {
                    added += 1;
                    // Almost always the back: acceptance order is seq order.
                    if queue.jobs.back().is_none_or(|last| last.seq < job.seq) {
                        queue.jobs.push_back(job);
                        queue.jobs.len() == 1
                    } else {
                        let at = queue.jobs.partition_point(|j| j.seq < job.seq);
                        queue.jobs.insert(at, job);
                        at == 0
                    }
                }
            };
            if new_worker {
                let this = self.clone();
                let wake = queue.wake.clone();
                tokio::spawn(async move { this.work(instance_id, wake).await });
            } else if front_changed {
                // The worker may be waiting out the old front's backoff.
                queue.wake.notify_one();
            }
        }
        self.inner.metrics.queue_changed(added);
    }

    /// The front job of the queue whose worker wakes on `wake`, or `None` (and the queue
    /// removed) when it is empty. `None` too when that queue was dropped ([`Dispatcher::forget`]),
    /// even if a new one for the instance has its own worker since.
    fn front(&self, instance_id: InstanceId, wake: &Arc<tokio::sync::Notify>) -> Option<Job> {
        let mut queues = self.inner.queues.lock().expect("queues lock poisoned");
        match queues.by_instance.get(&instance_id) {
            Some(q) if !Arc::ptr_eq(&q.wake, wake) => None,
            Some(q) if !q.jobs.is_empty() => Some(q.jobs[0].clone()),
            _ => {
                queues.by_instance.remove(&instance_id);
                None
            }
        }
    }

    /// After an attempt of `job`: removes it from its queue, or updates it there for
    /// another attempt. A job redelivered meanwhile (a newer round) is left alone.
    fn settle(&self, job: &Job, retry: Option<(u32, i64)>) {
        let mut guard = self.inner.queues.lock().expect("queues lock poisoned");
        let queues = &mut *guard;
        let Some(queue) = queues.by_instance.get_mut(&job.instance_id) else {
            return;
        };
        let Some(pos) = queue
            .jobs
            .iter()
            .position(|j| j.id == job.id && j.delivery == job.delivery)
        else {
            return;
        };
        match retry {
            Some((attempts, due_ms)) => {
                queue.jobs[pos].attempts = attempts;
                queue.jobs[pos].due_ms = due_ms;
            }
            None => {
                if let Some(done) = queue.jobs.remove(pos) {
                    queues.release(&done);
                }
                self.inner.metrics.queue_changed(-1);
            }
        }
    }

    /// Delivers one instance's queue in order until it is empty.
    async fn work(self, instance_id: InstanceId, wake: Arc<tokio::sync::Notify>) {
        while let Some(job) = self.front(instance_id, &wake) {
            if !self.inner.ownership.owns(instance_id) {
                // Its lease was lost: the new owner delivers it.
                self.forget(instance_id);
                return;
            }
            let wait = job.due_ms - now_ms();
            if wait > 0 {
                // A redeliver call may change the front meanwhile: it wakes us.
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(wait as u64)) => {}
                    _ = wake.notified() => {}
                }
                continue;
            }
            let retry = {
                let _permit = self.inner.in_flight.acquire().await;
                self.attempt(&job).await
            };
            self.settle(&job, retry);
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

/// Writes attempt records in the order they were made, many per commit.
async fn record_attempts(store: Arc<dyn Store>, mut rx: mpsc::UnboundedReceiver<AttemptRecord>) {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, 1024).await > 0 {
        // Each call queues its write on its first poll, in order; all share a commit.
        let writes = batch.drain(..).map(|r| store.record_attempt(r));
        for result in futures_util::future::join_all(writes).await {
            if let Err(e) = result {
                tracing::warn!(error = %e, "cannot record a delivery attempt");
            }
        }
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
                })
                .collect();
            dispatcher.submit(jobs);
        }
        let queues = dispatcher.inner.queues.lock().unwrap();
        let held: usize = queues
            .by_instance
            .values()
            .flat_map(|q| q.jobs.iter())
            .filter_map(|j| j.body.as_ref().map(Bytes::len))
            .sum();
        assert_eq!(held, queues.body_bytes);
        assert_eq!(held, BODY_BYTES_IN_MEMORY, "64 of the 200 bodies are kept");
        let queued: usize = queues.by_instance.values().map(|q| q.jobs.len()).sum();
        assert_eq!(queued, 200);
        drop(queues);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
