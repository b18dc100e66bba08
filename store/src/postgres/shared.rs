//! What several hosts on one database share beyond the data ([`SharedStore`]): the
//! `hosts` table (who is alive), the `leases` table (who does which work), and the
//! change feed over `LISTEN`/`NOTIFY`.
//!
//! # The change feed
//!
//! Every write another host must hear of (an instance created, changed or deleted;
//! notifications made pending) is announced after its commit on one channel,
//! [`CHANNEL`], with a payload `ORIGIN KIND REST`: `ORIGIN` is the announcing store's
//! random id (so a store skips its own announcements), `KIND` is `i` (an instance: `REST`
//! is its id) or `p` (pending notifications: `REST` is `INSTANCE:SEQ,SEQ,...`). Announcements
//! are sent by one task in batches, so a burst of webhooks costs one round trip per batch;
//! payloads are kept under PostgreSQL's 8,000-byte limit by splitting long seq lists. An
//! announcement lost to a crash between commit and send is healed by the hosts' periodic
//! resync (see the host's `cluster` module), and a listener whose connection drops
//! reports [`Change::Resync`] when it is back.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::StreamExt as _;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

use super::outbox::{NOTIFICATION_COLUMNS, notification_from_row, whole_body};
use super::{PgStore, mask_url, pg};
use crate::{Change, InstanceId, Notification, SharedStore, StoreError};

/// The `LISTEN`/`NOTIFY` channel of the change feed.
pub(super) const CHANNEL: &str = "connector_host_changes";

/// The longest payload sent (PostgreSQL refuses 8,000 bytes and more).
const MAX_PAYLOAD: usize = 7_000;

/// Hosts whose heartbeat is older than this many lease periods are deleted from `hosts`.
const FORGET_AFTER_TTLS: i64 = 10;

/// The database's clock in milliseconds since the epoch, as SQL.
const NOW_MS: &str = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT";

/// A change to announce.
#[derive(Debug)]
pub(super) enum Announce {
    /// An instance was created, changed or deleted.
    Instance(InstanceId),
    /// These notifications of the instance became pending.
    Pending(InstanceId, Vec<i64>),
    /// Leases were given up.
    Released,
}

/// Sends the announcements queued on `rx`, in batches, until every sender is gone.
pub(super) async fn announcer(
    url: String,
    origin: String,
    mut rx: mpsc::UnboundedReceiver<Announce>,
) {
    let mut client = None;
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, 4096).await > 0 {
        let payloads = payloads(&origin, batch.drain(..));
        // One try on the current connection and one on a new one; then the batch is
        // dropped (the hosts' resync heals it) rather than held up.
        for _ in 0..2 {
            if client
                .as_ref()
                .is_none_or(|c: &tokio_postgres::Client| c.is_closed())
            {
                client = super::pool::connect_one(&url).await.ok();
            }
            let Some(c) = &client else { continue };
            match c
                .execute(
                    "SELECT pg_notify($1, p) FROM UNNEST($2::TEXT[]) AS p",
                    &[&CHANNEL, &payloads],
                )
                .await
            {
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %pg(e), "cannot announce a change to the other hosts");
                    client = None;
                }
            }
        }
    }
}

/// The payloads of `changes`: pending seqs grouped by instance, each under
/// [`MAX_PAYLOAD`] bytes.
fn payloads(origin: &str, changes: impl Iterator<Item = Announce>) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending: BTreeMap<InstanceId, Vec<i64>> = BTreeMap::new();
    for change in changes {
        match change {
            Announce::Instance(id) => out.push(format!("{origin} i {}", id.0)),
            Announce::Released => out.push(format!("{origin} r -")),
            Announce::Pending(id, seqs) => pending.entry(id).or_default().extend(seqs),
        }
    }
    for (id, seqs) in pending {
        let mut payload = String::new();
        for seq in seqs {
            if payload.len() > MAX_PAYLOAD {
                out.push(std::mem::take(&mut payload));
            }
            if payload.is_empty() {
                payload = format!("{origin} p {}:{seq}", id.0);
            } else {
                payload.push(',');
                payload.push_str(&seq.to_string());
            }
        }
        if !payload.is_empty() {
            out.push(payload);
        }
    }
    out
}

/// The change a payload announces, unless it is `origin`'s own or unreadable.
fn parse(payload: &str, origin: &str) -> Option<Change> {
    let mut parts = payload.splitn(3, ' ');
    let (from, kind, rest) = (parts.next()?, parts.next()?, parts.next()?);
    if from == origin {
        return None;
    }
    match kind {
        "i" => Some(Change::Instance(InstanceId(rest.parse().ok()?))),
        "r" => Some(Change::Released),
        "p" => {
            let (id, seqs) = rest.split_once(':')?;
            let seqs = seqs
                .split(',')
                .map(str::parse)
                .collect::<Result<Vec<i64>, _>>()
                .ok()?;
            Some(Change::Pending {
                instance_id: InstanceId(id.parse().ok()?),
                seqs,
            })
        }
        _ => None,
    }
}

/// The messages of a connection to the database.
type Messages = std::pin::Pin<
    Box<dyn futures_util::Stream<Item = Result<AsyncMessage, tokio_postgres::Error>> + Send>,
>;

/// A new connection listening on [`CHANNEL`]: its client (kept to keep it open) and its
/// messages.
async fn subscribe(url: &str) -> Result<(tokio_postgres::Client, Messages), StoreError> {
    let (client, mut connection) =
        tokio_postgres::connect(url, NoTls)
            .await
            .map_err(|e| StoreError::Open {
                path: mask_url(url),
                message: e.to_string(),
            })?;
    let mut messages: Messages = Box::pin(futures_util::stream::poll_fn(move |cx| {
        connection.poll_message(cx)
    }));
    {
        // The connection must be driven while the LISTEN runs.
        let sql = format!("LISTEN {CHANNEL}");
        let listen = client.batch_execute(&sql);
        let mut listen = std::pin::pin!(listen);
        loop {
            tokio::select! {
                done = &mut listen => { done.map_err(pg)?; break; }
                message = messages.next() => match message {
                    Some(Err(e)) => return Err(pg(e)),
                    None => return Err(StoreError::Database("the connection closed".into())),
                    Some(Ok(_)) => {}
                }
            }
        }
    }
    Ok((client, messages))
}

/// Forwards other stores' changes from `messages` to `tx` until `tx` is closed; after a
/// lost connection, listens again (every 500 ms until it can) and sends
/// [`Change::Resync`], since changes may have been missed meanwhile.
async fn forward(
    url: String,
    origin: String,
    mut listening: (tokio_postgres::Client, Messages),
    tx: mpsc::UnboundedSender<Change>,
) {
    loop {
        while let Some(message) = listening.1.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if let Some(change) = parse(n.payload(), &origin)
                        && tx.send(change).is_err()
                    {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %pg(e), "the change feed's connection failed");
                    break;
                }
            }
        }
        listening = loop {
            if tx.is_closed() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            match subscribe(&url).await {
                Ok(l) => break l,
                Err(e) => tracing::warn!(error = %e, "cannot listen for the other hosts' changes"),
            }
        };
        if tx.send(Change::Resync).is_err() {
            return;
        }
    }
}

#[async_trait::async_trait]
impl SharedStore for PgStore {
    async fn heartbeat(&self, host: &str, ttl_ms: i64) -> Result<Vec<String>, StoreError> {
        let client = self.pool.get().await?;
        client
            .execute(
                &format!(
                    "INSERT INTO hosts (id, alive_until_ms) VALUES ($1, {NOW_MS} + $2)
                     ON CONFLICT (id) DO UPDATE SET alive_until_ms = EXCLUDED.alive_until_ms"
                ),
                &[&host, &ttl_ms],
            )
            .await
            .map_err(pg)?;
        client
            .execute(
                &format!("DELETE FROM hosts WHERE alive_until_ms < {NOW_MS} - $1"),
                &[&(ttl_ms * FORGET_AFTER_TTLS)],
            )
            .await
            .map_err(pg)?;
        let rows = client
            .query(
                &format!("SELECT id FROM hosts WHERE alive_until_ms >= {NOW_MS} ORDER BY id"),
                &[],
            )
            .await
            .map_err(pg)?;
        rows.iter().map(|r| r.try_get(0).map_err(pg)).collect()
    }

    async fn claim(
        &self,
        host: &str,
        names: &[String],
        ttl_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.pool.get().await?;
        // Each name is taken when free, renewed when ours, taken over when expired; a
        // live lease of another host is left alone (the `WHERE` of the update).
        let rows = client
            .query(
                &format!(
                    "INSERT INTO leases (name, holder, until_ms)
                     SELECT n, $2, {NOW_MS} + $3 FROM UNNEST($1::TEXT[]) AS n
                     ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder,
                         until_ms = EXCLUDED.until_ms
                     WHERE leases.holder = EXCLUDED.holder OR leases.until_ms < {NOW_MS}
                     RETURNING name"
                ),
                &[&names, &host, &ttl_ms],
            )
            .await
            .map_err(pg)?;
        rows.iter().map(|r| r.try_get(0).map_err(pg)).collect()
    }

    async fn release(&self, host: &str, names: &[String]) -> Result<(), StoreError> {
        if names.is_empty() {
            return Ok(());
        }
        let client = self.pool.get().await?;
        client
            .execute(
                "DELETE FROM leases WHERE holder = $1 AND name = ANY($2)",
                &[&host, &names],
            )
            .await
            .map_err(pg)?;
        let _ = self.announce.send(Announce::Released);
        Ok(())
    }

    async fn listen(&self) -> Result<mpsc::UnboundedReceiver<Change>, StoreError> {
        let (tx, rx) = mpsc::unbounded_channel();
        // The first subscription is made here: changes are caught from the return on.
        let listening = subscribe(&self.url).await?;
        tokio::spawn(forward(
            self.url.clone(),
            self.origin.clone(),
            listening,
            tx,
        ));
        Ok(rx)
    }

    async fn pending_of(&self, instance_id: InstanceId) -> Result<Vec<Notification>, StoreError> {
        let client = self.pool.get().await?;
        let sql = format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM notifications
             WHERE instance_id = $1 AND state = 'pending' ORDER BY seq"
        );
        client
            .query(&sql, &[&instance_id.0])
            .await
            .map_err(pg)?
            .iter()
            .map(notification_from_row)
            .collect()
    }

    async fn pending_among(
        &self,
        seqs: &[i64],
    ) -> Result<Vec<(Notification, Vec<u8>)>, StoreError> {
        let client = self.pool.get().await?;
        let columns: Vec<String> = NOTIFICATION_COLUMNS
            .split(',')
            .map(|c| format!("n.{}", c.trim()))
            .collect();
        let sql = format!(
            "SELECT {}, n.body, r.raw_at, b.body FROM notifications n
             LEFT JOIN notification_bodies r ON r.seq = n.seq
             LEFT JOIN webhook_bodies b ON b.id = r.body_id
             WHERE n.seq = ANY($1) AND n.state = 'pending' ORDER BY n.seq",
            columns.join(", ")
        );
        let width = columns.len();
        client
            .query(&sql, &[&seqs])
            .await
            .map_err(pg)?
            .iter()
            .map(|row| Ok((notification_from_row(row)?, whole_body(row, width)?)))
            .collect()
    }

    async fn pending_counts(&self) -> Result<Vec<(InstanceId, u64)>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT instance_id, COUNT(*) FROM notifications
                 WHERE state = 'pending' GROUP BY instance_id",
                &[],
            )
            .await
            .map_err(pg)?;
        rows.iter()
            .map(|r| {
                let id: i64 = r.try_get(0).map_err(pg)?;
                let n: i64 = r.try_get(1).map_err(pg)?;
                Ok((InstanceId(id), n as u64))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_skip_their_own_origin() {
        let seqs: Vec<i64> = (1_000_000..1_002_000).collect();
        let sent = payloads(
            "me",
            vec![
                Announce::Instance(InstanceId(7)),
                Announce::Pending(InstanceId(3), seqs[..1000].to_vec()),
                Announce::Pending(InstanceId(3), seqs[1000..].to_vec()),
            ]
            .into_iter(),
        );
        assert!(sent.iter().all(|p| p.len() < 8000), "under the limit");
        assert!(sent.len() > 2, "the long list is split");
        assert!(sent.iter().all(|p| parse(p, "me").is_none()), "own skipped");
        let got: Vec<Change> = sent.iter().filter_map(|p| parse(p, "other")).collect();
        assert_eq!(got[0], Change::Instance(InstanceId(7)));
        let back: Vec<i64> = got[1..]
            .iter()
            .flat_map(|c| match c {
                Change::Pending { instance_id, seqs } => {
                    assert_eq!(*instance_id, InstanceId(3));
                    seqs.clone()
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(back, seqs);
        assert_eq!(parse("x q 1", "me"), None);
        assert_eq!(parse("x p 1:a", "me"), None);
    }
}
