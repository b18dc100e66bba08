//! Idempotent intake's digest index: which `webhook_intake` rows have a given digest key.
//!
//! A digest is random, so an index on it takes each insert to a random page: one page
//! written per webhook and commit, which halved durable intake. The index here comes in
//! two parts instead. The newest rows' keys are held in memory ([`IntakeTail`]); once
//! there are [`MERGE_AT`] of them they are merged into `webhook_intake_keys` in key order,
//! [`MERGE_CHUNK`] per transaction (a slice of the key range each), so each page of it is
//! written once per merge rather than once per webhook. The rows themselves append (keyed
//! by `seq`). The last transaction of a merge records in `webhook_intake_merged` a seq up
//! to which every row is merged; at open the tail is rebuilt from the rows after it, so
//! the pair always covers every committed row, even after a merge cut short by a crash.
//!
//! The tail is a hint, not a record: an operation that is rolled back (and run again)
//! leaves its entries behind, so every candidate is checked against its row, and the merge
//! copies only entries whose row exists.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, params};

use super::SqliteStore;
use super::rows::db;
use crate::StoreError;

/// How many tail entries make a merge.
pub(super) const MERGE_AT: usize = 32768;

/// How many entries one transaction of a merge copies: a slice of the key range, so its
/// pages are written once for many entries, and the writer never stalls for long.
const MERGE_CHUNK: usize = 512;

/// The key of a digest in the index: its first 8 bytes, big-endian.
pub(super) fn intake_key(digest: &[u8; 32]) -> i64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// `(key, seq)` pairs, by key.
#[derive(Debug, Default)]
struct Entries {
    /// The seqs of each key (almost always one).
    by_key: HashMap<i64, Vec<i64>>,
    /// How many pairs there are.
    len: usize,
}

impl Entries {
    /// Adds a pair (once).
    fn insert(&mut self, key: i64, seq: i64) {
        let seqs = self.by_key.entry(key).or_default();
        if !seqs.contains(&seq) {
            seqs.push(seq);
            self.len += 1;
        }
    }

    /// Removes a pair, if there.
    fn remove(&mut self, key: i64, seq: i64) {
        if let Some(seqs) = self.by_key.get_mut(&key)
            && let Some(at) = seqs.iter().position(|&s| s == seq)
        {
            seqs.swap_remove(at);
            self.len -= 1;
            if seqs.is_empty() {
                self.by_key.remove(&key);
            }
        }
    }
}

/// The part of the digest index not yet merged into `webhook_intake_keys`.
#[derive(Debug, Default)]
pub(super) struct IntakeTail {
    /// The entries.
    entries: Mutex<Entries>,
    /// True while a merge is under way.
    merging: AtomicBool,
}

impl IntakeTail {
    /// The tail of the store open on `conn`: the keys of the `webhook_intake` rows after
    /// the seq `webhook_intake_merged` records (some of them may be merged already).
    pub(super) fn load(conn: &Connection) -> Result<IntakeTail, String> {
        let mut stmt = conn
            .prepare(
                "SELECT key, seq FROM webhook_intake WHERE seq >
                     coalesce((SELECT through_seq FROM webhook_intake_merged), 0)",
            )
            .map_err(|e| e.to_string())?;
        let mut rows = stmt.query([]).map_err(|e| e.to_string())?;
        let mut entries = Entries::default();
        while let Some(row) = rows.next().map_err(|e| e.to_string())? {
            entries.insert(
                row.get(0).map_err(|e| e.to_string())?,
                row.get(1).map_err(|e| e.to_string())?,
            );
        }
        Ok(IntakeTail {
            entries: Mutex::new(entries),
            merging: AtomicBool::new(false),
        })
    }

    /// The entries, locked.
    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // The entries are never left half-changed, so a poisoned lock's data is still good.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records that the row `seq` has the key `key`.
    pub(super) fn add(&self, key: i64, seq: i64) {
        self.lock().insert(key, seq);
    }

    /// The seqs of the rows with the key `key`, in the tail and merged, ascending. Some
    /// may not exist, or have another digest.
    pub(super) fn candidates(&self, conn: &Connection, key: i64) -> Result<Vec<i64>, StoreError> {
        let mut seqs: Vec<i64> = self.lock().by_key.get(&key).cloned().unwrap_or_default();
        let merged = conn
            .prepare_cached("SELECT seq FROM webhook_intake_keys WHERE key = ?1")
            .map_err(db)?
            .query_map([key], |r| r.get::<_, i64>(0))
            .map_err(db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db)?;
        seqs.extend(merged);
        seqs.sort_unstable();
        seqs.dedup();
        Ok(seqs)
    }

    /// Whether the tail is due for a merge and none is under way.
    pub(super) fn is_due(&self) -> bool {
        self.lock().len >= MERGE_AT && !self.merging.load(Ordering::Acquire)
    }

    /// The entries to merge (in key order), if the tail is due for a merge (or `force`)
    /// and none is under way; the caller must then clear `merging`.
    fn due(&self, force: bool) -> Option<Vec<(i64, i64)>> {
        let len = self.lock().len;
        if len == 0 || (len < MERGE_AT && !force) || self.merging.swap(true, Ordering::AcqRel) {
            return None;
        }
        let mut all: Vec<(i64, i64)> = self
            .lock()
            .by_key
            .iter()
            .flat_map(|(&key, seqs)| seqs.iter().map(move |&seq| (key, seq)))
            .collect();
        all.sort_unstable();
        Some(all)
    }

    /// `entries` are merged: they leave the tail.
    fn merged(&self, entries: &[(i64, i64)]) {
        let mut tail = self.lock();
        for &(key, seq) in entries {
            tail.remove(key, seq);
        }
    }
}

/// Copies `entries` (in key order) into `webhook_intake_keys`, each only if its row exists.
/// With `through`, the last chunk of a merge whose entries reach up to that seq: records
/// how far every row is merged, which is to `through`, but short of any row whose entry
/// joined the tail after the merge took its entries (a rerun after a rollback can give
/// such a row a lower seq).
fn merge(
    conn: &Connection,
    tail: &IntakeTail,
    entries: &[(i64, i64)],
    through: Option<i64>,
) -> Result<(), StoreError> {
    let mut insert = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO webhook_intake_keys (key, seq)
             SELECT key, seq FROM webhook_intake WHERE seq = ?2 AND key = ?1",
        )
        .map_err(db)?;
    for (key, seq) in entries {
        insert.execute(params![key, seq]).map_err(db)?;
    }
    if let Some(through) = through {
        // The tail now holds this chunk's entries and those that joined after the merge
        // took its entries.
        let newer = tail
            .lock()
            .by_key
            .iter()
            .flat_map(|(&key, seqs)| seqs.iter().map(move |&seq| (key, seq)))
            .filter(|entry| entries.binary_search(entry).is_err())
            .map(|(_, seq)| seq)
            .min();
        let through = newer.map_or(through, |seq| through.min(seq - 1));
        conn.prepare_cached(
            "INSERT INTO webhook_intake_merged (id, through_seq) VALUES (0, ?1)
             ON CONFLICT (id) DO UPDATE SET through_seq = excluded.through_seq",
        )
        .map_err(db)?
        .execute([through])
        .map_err(db)?;
    }
    Ok(())
}

impl SqliteStore {
    /// Merges the digest index's tail into `webhook_intake_keys` if it is due (or `force`),
    /// a chunk per transaction, each chunk leaving the tail once committed. A failure is
    /// logged and leaves the rest in the tail for the next merge.
    pub(super) async fn merge_intake(&self, force: bool) {
        let Some(entries) = self.inner.intake.due(force) else {
            return;
        };
        let through = entries.iter().map(|&(_, seq)| seq).max();
        let chunks = entries.chunks(MERGE_CHUNK).count();
        for (i, chunk) in entries.chunks(MERGE_CHUNK).enumerate() {
            let chunk = chunk.to_vec();
            let copy = chunk.clone();
            let tail = Arc::clone(&self.inner.intake);
            let through = through.filter(|_| i + 1 == chunks);
            match self
                .write(move |conn| merge(conn, &tail, &copy, through))
                .await
            {
                Ok(()) => self.inner.intake.merged(&chunk),
                Err(e) => {
                    tracing::warn!("merging idempotent intake's digest index: {e}");
                    break;
                }
            }
        }
        self.inner.intake.merging.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        Attempt, AttemptRecord, InstanceId, NewInstance, NewNotification, NotificationState,
        SecretHashes, Store, WebhookIntake,
    };

    /// A store in `dir` with one instance.
    async fn store_with_instance(dir: &tempfile::TempDir) -> (SqliteStore, InstanceId) {
        let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();
        let secrets = SecretHashes {
            user: "u".into(),
            org: "o".into(),
        };
        let org = store.create_org("org", &secrets, 0).await.unwrap();
        let instance = store
            .create_instance(NewInstance {
                org_id: org.id,
                element_key: "echo".into(),
                name: "i".into(),
                token_sha256: "t".into(),
                tags: vec![],
                config: vec![],
                provider_data: serde_json::json!({}),
                disabled: false,
                created_ms: 0,
            })
            .await
            .unwrap();
        (store, instance.id)
    }

    /// Stores webhook `id` of `digest` for `instance` (one notification, window on);
    /// returns whether it was a duplicate.
    async fn post(store: &SqliteStore, instance: InstanceId, id: &str, digest: [u8; 32]) -> bool {
        let raw = b"{}".to_vec();
        let mut body = b"{\"raw\":".to_vec();
        let at = body.len();
        body.extend_from_slice(&raw);
        body.extend_from_slice(b"}}");
        let note = NewNotification {
            id: id.into(),
            instance_id: instance,
            endpoint: "http://127.0.0.1:1/".into(),
            body,
            raw_at: Some(at),
            event_count: 1,
            created_ms: 100,
        };
        let intake = WebhookIntake {
            digest,
            raw,
            dedupe_since: Some(0),
        };
        let stored = store.enqueue_webhook(intake, vec![note]).await.unwrap();
        assert_eq!(stored.seqs[0].is_none(), !stored.duplicates.is_empty());
        !stored.duplicates.is_empty()
    }

    /// The `(key, seq)` rows of `webhook_intake_keys`.
    async fn merged_keys(store: &SqliteStore) -> Vec<(i64, i64)> {
        store
            .read(|conn| {
                let mut stmt = conn
                    .prepare("SELECT key, seq FROM webhook_intake_keys ORDER BY key, seq")
                    .map_err(db)?;
                let rows = stmt
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map_err(db)?;
                rows.collect::<Result<_, _>>().map_err(db)
            })
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_webhook_is_a_duplicate_from_the_tail_after_a_merge_and_after_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (store, instance) = store_with_instance(&dir).await;
        assert!(!post(&store, instance, "one", [1; 32]).await);
        assert!(post(&store, instance, "one-again", [1; 32]).await);
        assert_eq!(store.inner.intake.lock().len, 1);

        // Merged: found in webhook_intake_keys, no longer in memory.
        store.merge_intake(true).await;
        assert_eq!(store.inner.intake.lock().len, 0);
        assert_eq!(merged_keys(&store).await.len(), 1);
        assert!(post(&store, instance, "one-merged", [1; 32]).await);

        // After a reopen the tail holds the rows not merged, and both are duplicates.
        assert!(!post(&store, instance, "two", [2; 32]).await);
        drop(store);
        let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();
        assert_eq!(store.inner.intake.lock().len, 1);
        assert!(post(&store, instance, "one-reopened", [1; 32]).await);
        assert!(post(&store, instance, "two-reopened", [2; 32]).await);
    }

    /// Runs [`merge`] of `entries` on the writer.
    async fn merge_now(store: &SqliteStore, entries: Vec<(i64, i64)>, through: Option<i64>) {
        let tail = Arc::clone(&store.inner.intake);
        store
            .write(move |conn| merge(conn, &tail, &entries, through))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_merge_cut_short_or_overtaken_leaves_no_row_out_of_the_index_after_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (store, instance) = store_with_instance(&dir).await;
        for (id, d) in [("a", 1), ("b", 2), ("c", 3)] {
            assert!(!post(&store, instance, id, [d; 32]).await);
        }
        // A merge cut short (a crash): the chunk holding the newest row committed, the
        // others not, and the last one never recorded how far the merge went.
        merge_now(&store, vec![(intake_key(&[3; 32]), 3)], None).await;
        drop(store);
        let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();
        for (id, d) in [("a-again", 1), ("b-again", 2), ("c-again", 3)] {
            assert!(post(&store, instance, id, [d; 32]).await, "{id}");
        }

        // A merge that took its entries (up to a stale seq 9) before the row `d` (seq 4)
        // joined: it records itself complete only below `d`.
        store.inner.intake.add(intake_key(&[8; 32]), 9);
        let entries = store.inner.intake.due(true).unwrap();
        assert!(!post(&store, instance, "d", [4; 32]).await);
        merge_now(&store, entries.clone(), Some(9)).await;
        store.inner.intake.merged(&entries);
        store.inner.intake.merging.store(false, Ordering::Release);
        drop(store);
        let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();
        assert_eq!(store.inner.intake.lock().len, 1);
        assert!(post(&store, instance, "d-again", [4; 32]).await);
    }

    #[tokio::test]
    async fn a_key_match_with_another_digest_or_a_stale_entry_is_not_a_duplicate_nor_merged() {
        let dir = tempfile::tempdir().unwrap();
        let (store, instance) = store_with_instance(&dir).await;
        let first = [7; 32];
        assert!(!post(&store, instance, "first", first).await);
        // Another digest with the same first 8 bytes: the same key, another webhook.
        let mut twin = [9; 32];
        twin[..8].copy_from_slice(&first[..8]);
        assert_eq!(intake_key(&twin), intake_key(&first));
        assert!(!post(&store, instance, "twin", twin).await);
        // Entries a rolled-back operation could leave: a seq with no row, and a key that is
        // not its row's.
        let other = intake_key(&[3; 32]);
        store.inner.intake.add(other, 999);
        store.inner.intake.add(other, 1);
        assert!(!post(&store, instance, "other", [3; 32]).await);

        store.merge_intake(true).await;
        assert_eq!(store.inner.intake.lock().len, 0);
        let mut wanted = vec![(intake_key(&first), 1), (intake_key(&twin), 2), (other, 3)];
        wanted.sort_unstable();
        assert_eq!(merged_keys(&store).await, wanted);
        assert!(post(&store, instance, "twin-again", twin).await);
        assert!(post(&store, instance, "first-again", first).await);
    }

    #[tokio::test]
    async fn a_pruned_webhook_takes_its_intake_record_and_merged_key_along() {
        let dir = tempfile::tempdir().unwrap();
        let (store, instance) = store_with_instance(&dir).await;
        assert!(!post(&store, instance, "gone", [5; 32]).await);
        store.merge_intake(true).await;
        assert_eq!(merged_keys(&store).await.len(), 1);
        store
            .record_attempt(AttemptRecord {
                attempt: Attempt {
                    notification_id: "gone".into(),
                    delivery: 1,
                    attempt: 1,
                    at_ms: 150,
                    status_code: Some(200),
                    latency_us: 1,
                    error: None,
                },
                new_state: NotificationState::Delivered,
                next_attempt_ms: 0,
            })
            .await
            .unwrap();
        assert_eq!(store.prune(1_000, 100).await.unwrap(), 1);
        assert_eq!(merged_keys(&store).await, vec![]);
        let records: i64 = store
            .read(|conn| {
                conn.query_row("SELECT COUNT(*) FROM webhook_intake", [], |r| r.get(0))
                    .map_err(db)
            })
            .await
            .unwrap();
        assert_eq!(records, 0);
        // Its notification is gone, so the same webhook notifies again.
        assert!(!post(&store, instance, "back", [5; 32]).await);
    }
}
