//! A small pool of PostgreSQL connections: `size` clients, each checked out by one task
//! at a time (a transaction needs the client to itself), a semaphore to wait for one, and
//! a reconnect when a client's connection has closed.

use std::sync::Mutex;

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_postgres::{Client, NoTls};

use super::mask_url;
use crate::StoreError;

/// `size` connections to one database.
pub(super) struct Pool {
    url: String,
    idle: Mutex<Vec<Client>>,
    permits: Semaphore,
}

/// A client checked out of the [`Pool`]; it goes back when dropped, unless its connection
/// has closed.
pub(super) struct Pooled<'a> {
    client: Option<Client>,
    pool: &'a Pool,
    _permit: SemaphorePermit<'a>,
}

/// Opens one connection to `url`; its connection task runs on the current runtime.
pub(super) async fn connect_one(url: &str) -> Result<Client, StoreError> {
    let (client, connection) =
        tokio_postgres::connect(url, NoTls)
            .await
            .map_err(|e| StoreError::Open {
                path: mask_url(url),
                message: e.to_string(),
            })?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "a PostgreSQL connection ended");
        }
    });
    Ok(client)
}

impl Pool {
    /// A pool of `size` connections to `url`, the first of them `first`, already open.
    pub(super) fn new(url: &str, size: usize, first: Client) -> Pool {
        Pool {
            url: url.to_owned(),
            idle: Mutex::new(vec![first]),
            permits: Semaphore::new(size.max(1)),
        }
    }

    /// A client to use alone: an idle one, or a new connection when none is idle (up to
    /// the pool's size; beyond it, waits for one to come back).
    pub(super) async fn get(&self) -> Result<Pooled<'_>, StoreError> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Closed)?;
        let idle = loop {
            let next = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            match next {
                Some(c) if c.is_closed() => continue,
                other => break other,
            }
        };
        let client = match idle {
            Some(c) => c,
            None => connect_one(&self.url)
                .await
                .map_err(|e| StoreError::Database(e.to_string()))?,
        };
        Ok(Pooled {
            client: Some(client),
            pool: self,
            _permit: permit,
        })
    }
}

impl std::ops::Deref for Pooled<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.client
            .as_ref()
            .expect("a pooled client is present until dropped")
    }
}

impl std::ops::DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        self.client
            .as_mut()
            .expect("a pooled client is present until dropped")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.client.take().filter(|c| !c.is_closed()) {
            self.pool
                .idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(c);
        }
    }
}
