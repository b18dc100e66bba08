//! What only the SQLite backend (`store::sqlite::SqliteStore`) has: a file that is closed
//! and reopened, group commit, and old schema versions of the file. Everything the `Store`
//! trait promises is in `store_suite`, which runs on this backend too.

use std::collections::HashSet;
use std::time::Instant;

use store::sqlite::SqliteStore;
use store::{InstanceId, NewNotification, NotificationState, OrgId, Store, StoreError};

use crate::store_suite::fixtures::{
    attempt, creds, ids, instances, intake, nid, note, open_sqlite, poll_state, record, secrets,
    webhook_note,
};

/// A store on `store.db` in `dir`.
fn open(dir: &tempfile::TempDir) -> SqliteStore {
    open_sqlite(&dir.path().join("store.db"))
}

/// `PRAGMA user_version` of the file at `path`.
fn user_version(path: &std::path::Path) -> i64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn a_closed_store_leaves_no_wal_behind() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(&dir);
        let [inst] = instances(&store, ["i"]).await;
        store.enqueue(vec![note("a", inst.id, 1)]).await.unwrap();
        record(
            &store,
            attempt("a", 1, 1, 3, Some(200)),
            NotificationState::Delivered,
            0,
        )
        .await
        .unwrap();
        store
            .save_poll(poll_state(inst.id, "contacts", 50, 3), vec![])
            .await
            .unwrap();
        assert!(dir.path().join("store.db-wal").exists());
        // The store is dropped here: its writer thread ends and its connections close.
    }
    // Every connection closed cleanly: the last one checkpointed and removed the WAL.
    assert!(!dir.path().join("store.db-wal").exists());
    let store = open(&dir);
    assert_eq!(ids(store.pending().await.unwrap()), Vec::<String>::new());
    assert_eq!(store.attempts(&nid("a")).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    drop(SqliteStore::open(&path).unwrap());
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
    }
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");

    let bad = SqliteStore::open(&dir.path().join("no/such/dir/store.db")).unwrap_err();
    assert!(matches!(bad, StoreError::Open { .. }), "{bad:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_enqueues_are_group_committed() {
    const CALLS: usize = 2_000;
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let body = vec![b'x'; 600];
    let commits_before = store.commits();
    let ops_before = store.write_ops();

    let start = Instant::now();
    let mut tasks = Vec::with_capacity(CALLS);
    for i in 0..CALLS {
        let store = store.clone();
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let n = NewNotification {
                id: format!("evt-{i}").into(),
                instance_id: InstanceId((i % 7) as i64),
                endpoint: "https://example.com/cb".into(),
                body,
                raw_at: None,
                event_count: 1,
                created_ms: i as i64,
            };
            let seqs = store.enqueue(vec![n]).await.expect("enqueue");
            (i, seqs)
        }));
    }
    let mut seq_of = vec![0i64; CALLS];
    for task in tasks {
        let (i, seqs) = task.await.unwrap();
        assert_eq!(seqs.len(), 1);
        seq_of[i] = seqs[0];
    }
    let elapsed = start.elapsed();
    let commits = store.commits() - commits_before;
    let ops = store.write_ops() - ops_before;
    eprintln!(
        "enqueue: {CALLS} concurrent calls in {elapsed:?} = {:.0} notifications/s, \
         {commits} commits (mean batch {:.1} ops)",
        CALLS as f64 / elapsed.as_secs_f64(),
        ops as f64 / commits.max(1) as f64,
    );
    assert_eq!(ops, CALLS as u64);
    assert!(commits >= 1 && commits <= CALLS as u64);

    // Every seq distinct, and each stored notification carries the seq its caller got.
    let distinct: HashSet<i64> = seq_of.iter().copied().collect();
    assert_eq!(distinct.len(), CALLS);
    let pending = store.pending().await.unwrap();
    assert_eq!(pending.len(), CALLS);
    assert!(pending.windows(2).all(|w| w[0].seq < w[1].seq));
    for n in &pending {
        let i: usize = n.id.0.strip_prefix("evt-").unwrap().parse().unwrap();
        assert_eq!(n.seq, seq_of[i]);
        assert_eq!(n.created_ms, i as i64);
        assert_eq!(n.next_attempt_ms, i as i64);
    }
    assert_eq!(store.body(&nid("evt-1999")).await.unwrap(), Some(body));
    assert_eq!(
        store.count_by_state().await.unwrap(),
        vec![(NotificationState::Pending, CALLS as u64)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sustained_enqueue_load_forms_batches() {
    // Closed loop: each worker waits for its enqueue to commit before sending the next,
    // as webhook handlers do, so batches form only from the commits' own duration.
    const WORKERS: usize = 64;
    const CALLS_EACH: usize = 50;
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let commits_before = store.commits();

    let start = Instant::now();
    let mut tasks = Vec::with_capacity(WORKERS);
    for w in 0..WORKERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut last = 0;
            for c in 0..CALLS_EACH {
                let n = NewNotification {
                    id: format!("w{w}-c{c}").into(),
                    instance_id: InstanceId(w as i64),
                    endpoint: "https://example.com/cb".into(),
                    body: vec![b'y'; 600],
                    raw_at: None,
                    event_count: 1,
                    created_ms: c as i64,
                };
                let seq = store.enqueue(vec![n]).await.expect("enqueue")[0];
                // One caller's notifications get increasing seqs.
                assert!(seq > last);
                last = seq;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = start.elapsed();
    let total = WORKERS * CALLS_EACH;
    let commits = store.commits() - commits_before;
    eprintln!(
        "sustained enqueue: {total} calls from {WORKERS} workers in {elapsed:?} = {:.0} \
         notifications/s, {commits} commits (mean batch {:.1})",
        total as f64 / elapsed.as_secs_f64(),
        total as f64 / commits.max(1) as f64,
    );
    assert!(commits >= 1 && commits <= total as u64);
    assert_eq!(store.pending().await.unwrap().len(), total);
    for w in 0..WORKERS {
        let listed = store
            .list_notifications(InstanceId(w as i64), 1_000, 0)
            .await
            .unwrap();
        assert_eq!(listed.len(), CALLS_EACH);
        assert!(listed.windows(2).all(|p| p[0].seq > p[1].seq));
    }
}

#[tokio::test]
async fn a_lone_enqueue_commits_at_once() {
    // No timed batching window: sequential writes each commit on their own.
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let before = store.commits();
    let mut latencies = Vec::new();
    for i in 0..200 {
        let start = Instant::now();
        store
            .enqueue(vec![note(&format!("n{i}"), InstanceId(1), i)])
            .await
            .unwrap();
        latencies.push(start.elapsed());
    }
    assert_eq!(store.commits() - before, 200);
    latencies.sort();
    eprintln!(
        "lone enqueue latency: p50 {:?}, p99 {:?}, max {:?}",
        latencies[100], latencies[197], latencies[199]
    );
}

/// The schema version 1 wrote, verbatim (the code before poll states and credentials).
const SCHEMA_V1: &str = "
CREATE TABLE IF NOT EXISTS orgs (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    name               TEXT    NOT NULL,
    user_secret_sha256 TEXT    NOT NULL,
    org_secret_sha256  TEXT    NOT NULL,
    created_ms         INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS orgs_by_secrets ON orgs (user_secret_sha256, org_secret_sha256);

CREATE TABLE IF NOT EXISTS instances (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id        INTEGER NOT NULL,
    element_key   TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    token_sha256  TEXT    NOT NULL,
    tags          TEXT    NOT NULL,
    provider_data TEXT    NOT NULL,
    disabled      INTEGER NOT NULL,
    created_ms    INTEGER NOT NULL,
    updated_ms    INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS config (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id INTEGER NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    key         TEXT    NOT NULL,
    value       TEXT    NOT NULL,
    UNIQUE (instance_id, key)
);

-- The body is the last column: the other columns stay on the row's first page, so
-- scans that do not need the body never read its overflow pages.
CREATE TABLE IF NOT EXISTS notifications (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT    NOT NULL UNIQUE,
    instance_id     INTEGER NOT NULL,
    endpoint        TEXT    NOT NULL,
    event_count     INTEGER NOT NULL,
    created_ms      INTEGER NOT NULL,
    state           TEXT    NOT NULL,
    delivery        INTEGER NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_ms INTEGER NOT NULL,
    delivered_ms    INTEGER,
    body            BLOB    NOT NULL
);
CREATE INDEX IF NOT EXISTS notifications_by_state ON notifications (state, seq);
CREATE INDEX IF NOT EXISTS notifications_by_instance ON notifications (instance_id, seq);

CREATE TABLE IF NOT EXISTS attempts (
    id              INTEGER PRIMARY KEY,
    notification_id TEXT    NOT NULL,
    delivery        INTEGER NOT NULL,
    attempt         INTEGER NOT NULL,
    at_ms           INTEGER NOT NULL,
    status_code     INTEGER,
    latency_us      INTEGER NOT NULL,
    error           TEXT
);
CREATE INDEX IF NOT EXISTS attempts_by_notification ON attempts (notification_id, id);
";

#[tokio::test]
async fn a_version_1_file_is_migrated_and_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    // A file as the version-1 code left it, with an org, an instance and a notification.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(SCHEMA_V1).unwrap();
        conn.execute_batch(
            "INSERT INTO orgs (name, user_secret_sha256, org_secret_sha256, created_ms)
                 VALUES ('acme', 'u', 'o', 5);
             INSERT INTO instances (org_id, element_key, name, token_sha256, tags,
                 provider_data, disabled, created_ms, updated_ms)
                 VALUES (1, 'ecwid', 'old', 'tok', '[\"t\"]', '{}', 0, 6, 7);
             INSERT INTO config (instance_id, key, value) VALUES (1, 'k', 'v');
             INSERT INTO notifications (id, instance_id, endpoint, event_count, created_ms,
                 state, delivery, attempts, next_attempt_ms, body)
                 VALUES ('old-n', 1, 'https://example.com/cb', 1, 8, 'pending', 1, 0, 8,
                     x'7b7d');
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }

    let (inst, polls, saved) = {
        let store = SqliteStore::open(&path).unwrap();
        // The version-1 data is all there.
        let org = store.find_org(&secrets("u", "o")).await.unwrap().unwrap();
        assert_eq!(
            (org.id, org.name.as_str(), org.created_ms),
            (OrgId(1), "acme", 5)
        );
        let inst = store.get_instance(InstanceId(1)).await.unwrap().unwrap();
        assert_eq!(inst.name, "old");
        assert_eq!(inst.tags, vec!["t".to_string()]);
        assert_eq!(inst.config_value("k"), Some("v"));
        let pending = store.pending().await.unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].id, "old-n");
        assert_eq!(
            store.body(&nid("old-n")).await.unwrap(),
            Some(b"{}".to_vec())
        );

        // The new tables exist and work.
        assert_eq!(store.poll_states(inst.id).await.unwrap(), vec![]);
        assert_eq!(store.credentials(inst.id).await.unwrap(), None);
        let state = poll_state(inst.id, "contacts", 100, 2);
        let seqs = store
            .save_poll(state, vec![note("new-n", inst.id, 100)])
            .await
            .unwrap();
        assert!(seqs[0] > pending[0].seq);
        let saved = creds("tok", Some("ref"), 9);
        store
            .save_credentials(inst.id, Some(saved.clone()))
            .await
            .unwrap();
        let polls = store.poll_states(inst.id).await.unwrap();
        assert_eq!(polls.len(), 1);
        // And so do version 3's shared webhook bodies.
        let raw = b"[1]";
        let hooked = store
            .enqueue_webhook(
                intake(5, raw, Some(0)),
                vec![webhook_note("hook-n", inst.id, 101, raw)],
            )
            .await
            .unwrap();
        assert!(hooked.seqs[0].is_some());
        assert_eq!(
            store.body(&nid("hook-n")).await.unwrap(),
            Some(webhook_note("hook-n", inst.id, 101, raw).body)
        );
        (inst, polls, saved)
    };

    assert_eq!(user_version(&path), 5);

    // Opening the migrated file again changes nothing.
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(
        store.get_instance(inst.id).await.unwrap(),
        Some(inst.clone())
    );
    assert_eq!(store.poll_states(inst.id).await.unwrap(), polls);
    assert_eq!(store.credentials(inst.id).await.unwrap(), Some(saved));
    assert_eq!(
        ids(store.pending().await.unwrap()),
        ["old-n", "new-n", "hook-n"]
    );
    // And deleting the migrated instance cascades to the new tables.
    assert!(store.delete_instance(inst.id).await.unwrap());
    assert_eq!(store.poll_states(inst.id).await.unwrap(), vec![]);
    assert_eq!(store.credentials(inst.id).await.unwrap(), None);
}

#[tokio::test]
async fn a_new_file_gets_the_current_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    drop(SqliteStore::open(&path).unwrap());
    assert_eq!(user_version(&path), 5);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for t in [
        "credentials",
        "instances",
        "notifications",
        "poll_state",
        "webhook_intake",
        "webhook_intake_keys",
        "webhook_intake_merged",
        "webhook_bodies",
        "notification_bodies",
    ] {
        assert!(tables.iter().any(|n| n == t), "{t} missing from {tables:?}");
    }
}
