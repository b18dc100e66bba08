//! A small pool of PostgreSQL connections: `size` clients, each checked out by one task
//! at a time (a transaction needs the client to itself), a semaphore to wait for one, and
//! a reconnect when a client's connection has closed. Each connection keeps the statements
//! prepared on it ([`Statements`]), so a statement is parsed once per connection, not once
//! per call.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_postgres::{Client, Config, GenericClient, NoTls, Statement};

use super::{mask_url, pg};
use crate::StoreError;

/// How long opening a connection (TCP, startup, authentication) may take when the URL sets
/// no `connect_timeout`.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The statements prepared on one connection, by their SQL text.
#[derive(Default)]
pub(super) struct Statements(HashMap<&'static str, Statement>);

impl Statements {
    /// The statement of `sql`, prepared on `client`'s connection the first time.
    pub(super) async fn get(
        &mut self,
        client: &impl GenericClient,
        sql: &'static str,
    ) -> Result<Statement, StoreError> {
        if let Some(s) = self.0.get(sql) {
            return Ok(s.clone());
        }
        let s = client.prepare(sql).await.map_err(pg)?;
        self.0.insert(sql, s.clone());
        Ok(s)
    }
}

/// One connection and the statements prepared on it.
struct Conn {
    client: Client,
    statements: Statements,
}

/// `size` connections to one database.
pub(super) struct Pool {
    url: String,
    idle: Mutex<Vec<Conn>>,
    permits: Semaphore,
}

/// A client checked out of the [`Pool`]; it goes back when dropped, unless its connection
/// has closed.
pub(super) struct Pooled<'a> {
    conn: Option<Conn>,
    pool: &'a Pool,
    _permit: SemaphorePermit<'a>,
}

/// Opens one connection to `url`; its connection task runs on the current runtime. Fails
/// with [`StoreError::Open`] naming the URL (password masked) when the server refuses, or
/// does not finish the connection within the URL's `connect_timeout` (seconds), by default
/// [`CONNECT_TIMEOUT`].
pub(super) async fn connect_one(url: &str) -> Result<Client, StoreError> {
    let open_error = |message: String| StoreError::Open {
        path: mask_url(url),
        message,
    };
    let config: Config = url.parse().map_err(|e| open_error(format!("{e}")))?;
    let limit = config
        .get_connect_timeout()
        .copied()
        .unwrap_or(CONNECT_TIMEOUT);
    let (client, connection) = tokio::time::timeout(limit, config.connect(NoTls))
        .await
        .map_err(|_| {
            open_error(format!(
                "no connection within {} s (the connect timeout; the URL's connect_timeout \
                 parameter sets it)",
                limit.as_secs_f64()
            ))
        })?
        .map_err(|e| open_error(e.to_string()))?;
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
            idle: Mutex::new(vec![Conn {
                client: first,
                statements: Statements::default(),
            }]),
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
                Some(c) if c.client.is_closed() => continue,
                other => break other,
            }
        };
        let conn = match idle {
            Some(c) => c,
            None => Conn {
                client: connect_one(&self.url)
                    .await
                    .map_err(|e| StoreError::Database(e.to_string()))?,
                statements: Statements::default(),
            },
        };
        Ok(Pooled {
            conn: Some(conn),
            pool: self,
            _permit: permit,
        })
    }
}

impl Pooled<'_> {
    /// The client and its connection's prepared statements, to use together (e.g. a
    /// transaction of the client preparing through the cache).
    pub(super) fn parts(&mut self) -> (&mut Client, &mut Statements) {
        let conn = self
            .conn
            .as_mut()
            .expect("a pooled client is present until dropped");
        (&mut conn.client, &mut conn.statements)
    }

    /// The statement of `sql`, prepared on this connection the first time.
    pub(super) async fn statement(&mut self, sql: &'static str) -> Result<Statement, StoreError> {
        let (client, statements) = self.parts();
        statements.get(&*client, sql).await
    }
}

impl std::ops::Deref for Pooled<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self
            .conn
            .as_ref()
            .expect("a pooled client is present until dropped")
            .client
    }
}

impl std::ops::DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        self.parts().0
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take().filter(|c| !c.client.is_closed()) {
            self.pool
                .idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(c);
        }
    }
}
