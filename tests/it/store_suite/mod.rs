//! One test suite for every backend of the `Store` trait: each scenario (`scenarios`) is an
//! async function taking a [`Subject`] (an `Arc<dyn Store>` plus a side door to its tables),
//! written once and run on a fresh `SqliteStore` (a file in a temp dir) and on a fresh
//! `PgStore` (a database of the tests' PostgreSQL server, `tests::pg`):
//! `store_suite::sqlite::<scenario>` and `store_suite::postgres::<scenario>`.
//!
//! What only one backend has (reopening a file, group commit, old schema files; concurrent
//! migrations, the pool, several hosts on one database) is tested in `sqlite_store.rs` and
//! `pg_store.rs`, with the helpers of `fixtures`.

mod activity;
pub mod fixtures;
mod scenarios;

use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;

use store::Store;
use tests::pg::{TestDatabase, describe};
use tokio_postgres::NoTls;

/// A store under test, as the host sees it (`Deref` to `dyn Store`), with a side door to
/// the tables behind it, to check what the trait cannot show (a body stored once) or to
/// tamper with a row.
pub struct Subject {
    /// The store (dropped before its database).
    pub store: Arc<dyn Store>,
    side: Side,
}

/// Where a [`Subject`]'s data lives.
enum Side {
    Sqlite {
        path: PathBuf,
        _dir: tempfile::TempDir,
    },
    Postgres(TestDatabase),
}

impl Deref for Subject {
    type Target = dyn Store;

    fn deref(&self) -> &Self::Target {
        &*self.store
    }
}

impl Subject {
    /// A `SqliteStore` on a new file in a new temp dir.
    pub fn sqlite() -> Subject {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("store.db");
        Subject {
            store: Arc::new(fixtures::open_sqlite(&path)),
            side: Side::Sqlite { path, _dir: dir },
        }
    }

    /// A `PgStore` on a new database of the tests' server.
    pub async fn postgres() -> Subject {
        let db = TestDatabase::create();
        Subject {
            store: Arc::new(fixtures::open_pg(&db).await),
            side: Side::Postgres(db),
        }
    }

    /// Closes the store and opens its data again, as a restarted host does. Panics if
    /// the store is still shared (a task holding it would keep it open).
    pub async fn reopen(self) -> Subject {
        let Subject { store, side } = self;
        assert_eq!(Arc::strong_count(&store), 1, "the store is still in use");
        drop(store);
        let store: Arc<dyn Store> = match &side {
            Side::Sqlite { path, .. } => Arc::new(fixtures::open_sqlite(path)),
            Side::Postgres(db) => Arc::new(fixtures::open_pg(db).await),
        };
        Subject { store, side }
    }

    /// The one integer `sql` selects, read beside the store. Write it in SQL both
    /// backends take (e.g. `CAST(… AS BIGINT)`).
    pub async fn scalar(&self, sql: &str) -> i64 {
        match &self.side {
            Side::Sqlite { path, .. } => rusqlite::Connection::open(path)
                .and_then(|c| c.query_row(sql, [], |r| r.get::<_, Option<i64>>(0)))
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
                .unwrap_or(0),
            Side::Postgres(db) => pg_client(db)
                .await
                .query_one(sql, &[])
                .await
                .unwrap_or_else(|e| panic!("{sql}: {}", describe(&e)))
                .get::<_, Option<i64>>(0)
                .unwrap_or(0),
        }
    }

    /// The rows of `table`.
    pub async fn count(&self, table: &str) -> i64 {
        self.scalar(&format!("SELECT COUNT(*) FROM {table}")).await
    }

    /// Runs `sql` beside the store (to tamper with what it wrote).
    pub async fn execute(&self, sql: &str) {
        match &self.side {
            Side::Sqlite { path, .. } => {
                rusqlite::Connection::open(path)
                    .and_then(|c| c.execute_batch(sql))
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
            }
            Side::Postgres(db) => {
                pg_client(db)
                    .await
                    .batch_execute(sql)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {}", describe(&e)));
            }
        }
    }
}

/// A plain client on `db`, beside the store.
pub async fn pg_client(db: &TestDatabase) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(db.url(), NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {}", db.name(), describe(&e)));
    tokio::spawn(connection);
    client
}

/// Instantiates each scenario twice: `sqlite::<name>` and `postgres::<name>`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::scenarios::$name(super::Subject::sqlite()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::scenarios::$name(super::Subject::postgres().await).await;
                }
            )*
        }
    };
}

on_both_backends![
    orgs_are_created_and_found_by_secret_hashes,
    instances_crud_and_config_upsert_keeps_ids,
    deleting_an_instance_drops_its_pending_notifications_only,
    outbox_enqueue_pending_body_and_attempts,
    attempts_recorded_in_one_batch_fail_one_by_one,
    list_attempts_redeliver_and_counts_by_state,
    a_failing_write_fails_only_its_caller,
    everything_survives_a_reopen,
    save_poll_stores_the_notifications_and_the_cursor_together,
    a_failed_poll_records_its_error_without_notifications,
    a_failed_save_poll_stores_neither_the_state_nor_any_notification,
    a_corrupt_seen_list_is_reported_naming_the_instance_and_the_resource,
    concurrent_save_polls_fail_only_the_failing_one,
    credentials_round_trip_replace_and_remove,
    deleting_an_instance_removes_its_poll_states_and_credentials,
    prune_deletes_old_finished_notifications_with_their_attempts_and_never_a_pending_one,
    prune_never_deletes_a_notification_accepted_after_the_cut_whatever_its_seq,
    a_webhook_body_is_stored_once_and_every_notification_reads_back_whole,
    the_same_webhook_within_the_window_notifies_each_instance_once,
    prune_deletes_a_shared_body_and_its_intake_run_with_their_last_notification,
    find_notifications_filters_by_status_time_and_instances,
    redeliver_dead_starts_a_round_for_each_dead_letter_since_a_time_oldest_first,
    attempt_stats_count_each_minute_of_one_instance,
    activity_of_reads_each_instance_s_last_event_backlog_and_dead_letters_and_poll_health,
];
