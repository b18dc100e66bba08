//! Several hosts on one shared store (PostgreSQL): which host does which instance's work,
//! and how each host learns of the others' changes.
//!
//! **Ownership.** Every instance's delivery and polling is done by the one host that holds
//! its lease (`i<id>` in the store's `leases` table), so its notifications go out in order
//! and its slots are polled once. Each host, every [`ClusterConfig::tick`]: marks itself
//! alive, reads the live hosts, and wants the instances whose rendezvous hash (instance,
//! host) is highest for it among them, so instances spread evenly and only ~1/n of them
//! move when a host joins or dies. It stops the work of instances it no longer wants and
//! releases their leases, then claims (or renews) the leases of those it wants: a lease is
//! taken only when free or expired, so two hosts never work on one instance until the
//! previous holder's lease has run out ([`ClusterConfig::lease`]). A host that cannot
//! renew stops all work before its leases can expire ([`Ownership::owns`] turns false at
//! 80 % of the lease). The pruner runs on the holder of the `retention` lease.
//!
//! **Changes.** An instance created, changed or deleted through any host, and
//! notifications made pending by any host (a webhook it took, a redeliver call), are
//! announced through the store's change feed: every host reads a changed instance again
//! (so it is in effect everywhere within the feed's latency), and the owner of an
//! instance loads its new pending notifications. A lost announcement is healed by the
//! resync every [`ClusterConfig::resync`]: instances are read again, and an owned
//! instance with pending notifications in the store but an empty queue is loaded again.
//!
//! **Handover.** A host giving an instance up (another host joined, or it is stopping)
//! starts nothing more for it, waits for its attempts in flight and their records
//! (`Dispatcher::drain`) and for a poll under way, then releases the lease; the release is
//! announced, so the next holder takes it at once. The taker holds the instance's queue
//! until its pending notifications are loaded, so none submitted meanwhile goes out
//! before older ones. A dead host's leases simply expire.
//!
//! With a store one host owns (SQLite) there is no cluster: [`Ownership::single`] owns
//! everything and nothing here runs.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use store::{Change, InstanceId, SharedStore, Store};

use crate::delivery::Dispatcher;
use crate::instances::Instances;
use crate::polling::Poller;

/// The lease of the pruner.
const RETENTION_LEASE: &str = "retention";

/// How a host takes part in a cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// How long a lease lasts without renewal: a dead host's work moves after at most this.
    pub lease: Duration,
    /// How often every instance and pending count is read again, to heal a lost
    /// announcement.
    pub resync: Duration,
}

impl Default for ClusterConfig {
    /// 10 s leases, a resync every 30 s.
    fn default() -> Self {
        ClusterConfig {
            lease: Duration::from_secs(10),
            resync: Duration::from_secs(30),
        }
    }
}

impl ClusterConfig {
    /// How often leases are renewed and the live hosts read: a quarter of the lease.
    pub fn tick(&self) -> Duration {
        (self.lease / 4).max(Duration::from_millis(50))
    }
}

/// Which instances this host works on. Cheap to share.
#[derive(Debug)]
pub struct Ownership {
    /// `None`: a single host, which owns everything.
    shared: Option<Mutex<Held>>,
    /// Wakes the lease loop: the instances changed here, so what this host should own may
    /// have changed.
    kick: Arc<tokio::sync::Notify>,
}

/// The leases a host holds, and until when it may act on them.
#[derive(Debug, Default)]
struct Held {
    instances: HashSet<InstanceId>,
    retention: bool,
    /// Past this instant the leases may have expired unrenewed: nothing is owned.
    valid_until: Option<Instant>,
}

impl Held {
    fn valid(&self) -> bool {
        self.valid_until.is_some_and(|t| Instant::now() < t)
    }
}

impl Ownership {
    /// A host alone on its store: it owns every instance.
    pub fn single() -> Arc<Ownership> {
        Arc::new(Ownership {
            shared: None,
            kick: Arc::default(),
        })
    }

    /// A host of a cluster: it owns what it holds leases for (nothing yet).
    pub fn shared() -> Arc<Ownership> {
        Arc::new(Ownership {
            shared: Some(Mutex::new(Held::default())),
            kick: Arc::default(),
        })
    }

    fn held(&self) -> Option<std::sync::MutexGuard<'_, Held>> {
        self.shared
            .as_ref()
            .map(|m| m.lock().expect("ownership lock poisoned"))
    }

    /// Whether this host delivers and polls `id` now.
    pub fn owns(&self, id: InstanceId) -> bool {
        match self.held() {
            None => true,
            Some(held) => held.valid() && held.instances.contains(&id),
        }
    }

    /// Whether this host runs the pruner now.
    pub fn runs_retention(&self) -> bool {
        match self.held() {
            None => true,
            Some(held) => held.valid() && held.retention,
        }
    }

    /// An instance was created, changed or deleted through this host: the leases are
    /// looked at now (another host's change wakes them through the change feed).
    pub fn instances_changed(&self) {
        self.kick.notify_one();
    }

    /// Whether ownership moves between hosts (a shared store).
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// How many instances this host owns (every one when alone: `None`).
    pub fn owned(&self) -> Option<usize> {
        self.held()
            .map(|h| if h.valid() { h.instances.len() } else { 0 })
    }
}

/// The lease name of an instance.
fn lease_name(id: InstanceId) -> String {
    format!("i{}", id.0)
}

/// The instance a lease name stands for.
fn lease_instance(name: &str) -> Option<InstanceId> {
    name.strip_prefix('i')?.parse().ok().map(InstanceId)
}

/// Which of `hosts` should hold `key`: the one with the highest hash of (key, host).
fn rendezvous<'a>(key: &str, hosts: &'a [String]) -> Option<&'a str> {
    hosts
        .iter()
        .max_by_key(|h| {
            let digest = Sha256::new()
                .chain_update(key.as_bytes())
                .chain_update([0])
                .chain_update(h.as_bytes())
                .finalize();
            u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
        })
        .map(String::as_str)
}

/// What the cluster loop works with.
pub struct Members {
    /// The shared store.
    pub store: Arc<dyn Store>,
    /// This host's view of the instances.
    pub instances: Arc<Instances>,
    /// This host's delivery.
    pub dispatcher: Dispatcher,
    /// This host's polling.
    pub poller: Poller,
    /// What this host owns.
    pub ownership: Arc<Ownership>,
}

/// This host's place in a cluster: its lease loop and change-feed reader.
pub struct Membership {
    me: String,
    members: Arc<Members>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Membership {
    /// Leaves the cluster: stops the lease loop, this host's deliveries and polls, and
    /// gives its leases up, so the other hosts take its instances over at their next
    /// renewal instead of after the lease.
    pub async fn leave(self) {
        for task in &self.tasks {
            task.abort();
        }
        let Some(shared) = self.members.store.shared() else {
            return;
        };
        let ids: Vec<InstanceId> = {
            let Some(mut held) = self.members.ownership.held() else {
                return;
            };
            held.retention = false;
            held.valid_until = None;
            held.instances.drain().collect()
        };
        stop(&self.members, &ids).await;
        let mut names: Vec<String> = ids.iter().map(|id| lease_name(*id)).collect();
        names.push(RETENTION_LEASE.to_string());
        if let Err(e) = shared.release(&self.me, &names).await {
            tracing::warn!(error = %e, "cannot give the leases up; they expire unrenewed");
        }
        if let Err(e) = shared.heartbeat(&self.me, -1).await {
            tracing::debug!(error = %e, "cannot mark this host gone");
        }
    }
}

/// Joins the cluster of a shared store: starts the lease loop and the change feed's
/// reader. The feed is listened to before this returns, so no change made after it is
/// missed. `None` for a store one host owns.
pub async fn join(
    config: ClusterConfig,
    members: Members,
) -> Result<Option<Membership>, store::StoreError> {
    let Some(shared) = members.store.shared() else {
        return Ok(None);
    };
    let mut changes = shared.listen().await?;
    let mut id = [0u8; 8];
    getrandom::fill(&mut id).map_err(|e| store::StoreError::Database(e.to_string()))?;
    let me = hex::encode(id);
    tracing::info!(host = %me, lease_ms = config.lease.as_millis() as u64, "joining the hosts of the shared store");
    let kick = members.ownership.kick.clone();
    let members = Arc::new(members);
    let leases = {
        let (members, kick, me) = (members.clone(), kick.clone(), me.clone());
        tokio::spawn(async move { lease_loop(config, me, members, kick).await })
    };
    let feed = {
        let members = members.clone();
        tokio::spawn(async move {
            while let Some(change) = changes.recv().await {
                apply(&members, change).await;
                kick.notify_one();
            }
        })
    };
    Ok(Some(Membership {
        me,
        members,
        tasks: vec![leases, feed],
    }))
}

/// Acts on one change another host made.
async fn apply(m: &Members, change: Change) {
    let Some(shared) = m.store.shared() else {
        return;
    };
    match change {
        Change::Instance(id) => reload_instance(m, id).await,
        Change::Pending { instance_id, seqs } => {
            if !m.ownership.owns(instance_id) {
                return;
            }
            match shared.pending_among(&seqs).await {
                Ok(pending) => m.dispatcher.load_with_bodies(pending),
                Err(e) => tracing::warn!(error = %e, "cannot read newly pending notifications"),
            }
        }
        Change::Resync => resync(m, shared).await,
        // The feed's reader wakes the lease loop after every change: that is all.
        Change::Released => {}
    }
}

/// Reads instance `id` again into this host's view, and starts, restarts or stops its
/// schedule.
async fn reload_instance(m: &Members, id: InstanceId) {
    match m.store.get_instance(id).await {
        Ok(Some(instance)) => {
            m.instances.put(instance);
        }
        Ok(None) => m.instances.remove(id),
        Err(e) => {
            tracing::warn!(instance = id.0, error = %e, "cannot read a changed instance");
            return;
        }
    }
    m.poller.sync(id);
}

/// Reads every instance again, and loads the pending notifications of owned instances
/// whose queue holds fewer than the store.
async fn resync(m: &Members, shared: &dyn SharedStore) {
    match m.store.all_instances().await {
        Ok(all) => {
            let stored: HashSet<InstanceId> = all.iter().map(|i| i.id).collect();
            for instance in all {
                let id = instance.id;
                let same = m.instances.get(id).is_some_and(|l| **l == instance);
                if !same {
                    m.instances.put(instance);
                    m.poller.sync(id);
                }
            }
            for id in m.instances.ids() {
                if !stored.contains(&id) {
                    m.instances.remove(id);
                    m.poller.sync(id);
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the instances to resync"),
    }
    // An owned instance with pending notifications in the store but none queued here
    // missed an announcement. (One with a queue is left alone: the store lags its queue
    // by the attempt records not yet written, so comparing counts would send some twice.)
    // The records written first, an idle instance's pending rows are really pending.
    m.dispatcher.flush_records().await;
    match shared.pending_counts().await {
        Ok(counts) => {
            for (id, _) in counts {
                if m.ownership.owns(id) && m.dispatcher.queued(id) == 0 {
                    load_all(m, shared, id).await;
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot count the pending notifications"),
    }
}

/// Loads every pending notification of `id` into this host's delivery.
async fn load_all(m: &Members, shared: &dyn SharedStore, id: InstanceId) {
    match shared.pending_of(id).await {
        Ok(pending) => m.dispatcher.load(pending),
        Err(e) => tracing::warn!(instance = id.0, error = %e, "cannot read pending notifications"),
    }
}

/// Renews this host's leases every tick (sooner when kicked), moves instances as hosts
/// come and go, and resyncs now and then.
async fn lease_loop(
    config: ClusterConfig,
    me: String,
    m: Arc<Members>,
    kick: Arc<tokio::sync::Notify>,
) {
    let shared = m.store.shared().expect("a cluster has a shared store");
    let ttl_ms = config.lease.as_millis() as i64;
    let mut last_resync = Instant::now();
    loop {
        let started = Instant::now();
        if let Err(e) = round(&config, &me, &m, shared, ttl_ms, started).await {
            tracing::warn!(error = %e, "cannot renew this host's leases");
            if !m.ownership.held().is_some_and(|h| h.valid()) {
                stop_all(&m);
            }
        }
        if last_resync.elapsed() >= config.resync {
            last_resync = Instant::now();
            resync(&m, shared).await;
        }
        tokio::select! {
            _ = tokio::time::sleep(config.tick()) => {}
            _ = kick.notified() => {}
        }
    }
}

/// One renewal: heartbeat, hand over what another host should have, claim what this
/// host should have.
async fn round(
    config: &ClusterConfig,
    me: &str,
    m: &Arc<Members>,
    shared: &dyn SharedStore,
    ttl_ms: i64,
    started: Instant,
) -> Result<(), store::StoreError> {
    let live = shared.heartbeat(me, ttl_ms).await?;
    let mut wanted: HashSet<InstanceId> = HashSet::new();
    for id in m.instances.ids() {
        if rendezvous(&lease_name(id), &live) == Some(me) {
            wanted.insert(id);
        }
    }
    let want_retention = rendezvous(RETENTION_LEASE, &live) == Some(me);

    // Hand over first: stop the work, then give the leases up.
    let handing: Vec<InstanceId> = {
        let mut held = m.ownership.held().expect("a cluster's ownership is shared");
        let handing: Vec<InstanceId> = held
            .instances
            .iter()
            .filter(|id| !wanted.contains(id))
            .copied()
            .collect();
        for id in &handing {
            held.instances.remove(id);
        }
        if !want_retention {
            held.retention = false;
        }
        handing
    };
    if !want_retention {
        shared.release(me, &[RETENTION_LEASE.to_string()]).await?;
    }
    if !handing.is_empty() {
        // In its own task, so a slow callback's attempt does not hold up the renewal of
        // the other leases; the handed leases are not renewed meanwhile.
        let (m, me) = (m.clone(), me.to_string());
        tokio::spawn(async move {
            stop(&m, &handing).await;
            // One wanted again meanwhile (hosts came and went) is kept.
            let names: Vec<String> = handing
                .iter()
                .filter(|id| !m.ownership.owns(**id))
                .map(|id| lease_name(*id))
                .collect();
            if let Some(shared) = m.store.shared()
                && let Err(e) = shared.release(&me, &names).await
            {
                tracing::warn!(error = %e, "cannot give leases up; they expire unrenewed");
            }
        });
    }

    let mut names: Vec<String> = wanted.iter().map(|id| lease_name(*id)).collect();
    if want_retention {
        names.push(RETENTION_LEASE.to_string());
    }
    let got = shared.claim(me, &names, ttl_ms).await?;
    let got_instances: HashSet<InstanceId> = got.iter().filter_map(|n| lease_instance(n)).collect();
    // An instance taken now delivers nothing until its pending notifications are loaded:
    // one submitted meanwhile must not go out before older ones. (Held before it is
    // owned, and outside the ownership lock, which the dispatcher takes under its own.)
    let taking: Vec<InstanceId> = {
        let held = m.ownership.held().expect("a cluster's ownership is shared");
        let valid = held.valid();
        got_instances
            .iter()
            .filter(|id| !valid || !held.instances.contains(id))
            .copied()
            .collect()
    };
    for id in &taking {
        m.dispatcher.hold(*id);
    }
    let (gained, lost) = {
        let mut held = m.ownership.held().expect("a cluster's ownership is shared");
        let was_valid = held.valid();
        held.valid_until = Some(started + config.lease.mul_f64(0.8));
        held.retention = got.iter().any(|n| n == RETENTION_LEASE);
        let before = if was_valid {
            std::mem::take(&mut held.instances)
        } else {
            HashSet::new()
        };
        let gained: Vec<InstanceId> = got_instances.difference(&before).copied().collect();
        let lost: Vec<InstanceId> = before.difference(&got_instances).copied().collect();
        held.instances = got_instances;
        (gained, lost)
    };
    if !lost.is_empty() {
        // Another host took these (this host's lease had run out): stop them.
        let m = m.clone();
        tokio::spawn(async move { stop(&m, &lost).await });
    }
    if !gained.is_empty() {
        tracing::info!(instances = gained.len(), "taking over instances");
    }
    if !gained.is_empty() {
        // Read only those with something pending: one count query, not one per instance
        // (a host starting takes thousands at once).
        let with_pending: Option<HashSet<InstanceId>> = match shared.pending_counts().await {
            Ok(counts) => Some(counts.into_iter().map(|(id, _)| id).collect()),
            Err(e) => {
                tracing::warn!(error = %e, "cannot count the pending notifications");
                None
            }
        };
        for id in &gained {
            if with_pending.as_ref().is_none_or(|ids| ids.contains(id)) {
                load_all(m, shared, *id).await;
            }
        }
    }
    for id in &taking {
        m.dispatcher.unhold(*id);
    }
    for id in gained {
        m.poller.take_over(id);
    }
    Ok(())
}

/// Stops this host's work on `ids` (no longer owned: their leases are being given up, or
/// were lost) and waits for what is under way: an attempt in flight ends (so the next
/// owner's attempts come after it), a poll under way finishes (cut short, it could lose a
/// rotated refresh token).
async fn stop(m: &Members, ids: &[InstanceId]) {
    for id in ids {
        m.poller.sync(*id);
    }
    futures_util::future::join_all(ids.iter().map(|id| async {
        m.dispatcher.drain(*id).await;
        m.poller.idle(*id).await;
    }))
    .await;
}

/// Stops all work: this host could not renew its leases in time.
fn stop_all(m: &Members) {
    let ids: Vec<InstanceId> = {
        let Some(mut held) = m.ownership.held() else {
            return;
        };
        held.retention = false;
        held.instances.drain().collect()
    };
    if !ids.is_empty() {
        tracing::warn!(
            instances = ids.len(),
            "leases not renewed in time: stopping their work"
        );
    }
    for id in ids {
        m.poller.sync(id);
        m.dispatcher.forget(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendezvous_spreads_instances_and_moves_few_when_a_host_joins() {
        let two: Vec<String> = vec!["a".into(), "b".into()];
        let three: Vec<String> = vec!["a".into(), "b".into(), "c".into()];
        let mut on_a = 0;
        let mut moved = 0;
        for i in 0..3000 {
            let key = lease_name(InstanceId(i));
            let before = rendezvous(&key, &two).unwrap();
            let after = rendezvous(&key, &three).unwrap();
            on_a += usize::from(before == "a");
            if before != after {
                assert_eq!(after, "c", "an instance moves only to the new host");
                moved += 1;
            }
        }
        assert!((1300..1700).contains(&on_a), "{on_a} of 3000 on a");
        assert!((800..1200).contains(&moved), "{moved} of 3000 moved");
        assert_eq!(
            lease_instance(&lease_name(InstanceId(42))),
            Some(InstanceId(42))
        );
        assert_eq!(lease_instance(RETENTION_LEASE), None);
    }

    #[test]
    fn a_single_host_owns_everything_and_a_clustered_one_only_valid_leases() {
        assert!(Ownership::single().owns(InstanceId(1)));
        let shared = Ownership::shared();
        assert!(!shared.owns(InstanceId(1)));
        {
            let mut held = shared.held().unwrap();
            held.instances.insert(InstanceId(1));
            held.valid_until = Some(Instant::now() + Duration::from_secs(60));
        }
        assert!(shared.owns(InstanceId(1)));
        assert!(!shared.owns(InstanceId(2)));
        shared.held().unwrap().valid_until = Some(Instant::now());
        assert!(
            !shared.owns(InstanceId(1)),
            "an unrenewed lease is not acted on"
        );
    }
}
