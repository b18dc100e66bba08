//! connector-host: a WebAssembly plugin host for event connectors.
//!
//! The binary (`main.rs`) parses the command line; [`start`] wires the pieces and serves.
//! See `ARCHITECTURE.md` at the repository root for the map of this crate.

pub mod api;
pub mod cache_key;
pub mod check;
pub mod cluster;
pub mod console;
pub mod delivery;
pub mod egress;
pub mod emit;
pub mod http;
pub mod ingest;
pub mod instances;
pub mod metrics;
pub mod notify;
pub mod polling;
pub mod quotas;
pub mod registry;
pub mod retention;
pub mod scaffold;
pub mod tenancy;
pub mod views;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use delivery::{DeliveryConfig, Dispatcher};
use instances::Instances;
use metrics::Metrics;
use registry::Registry;
use runtime::{Limits, Runtime};
use store::Store;

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The database file under a data directory.
pub fn store_path(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("store.sqlite")
}

/// Creates `dir` (with its parents) when missing and makes it private to this user
/// (0700 on Unix): the store, the compile cache and the authorization file live there.
pub fn private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Opens (creating if needed) the store: the PostgreSQL database at `database_url` when
/// one is given (its schema created or migrated), else the SQLite file of the data
/// directory.
pub async fn open_store(
    data_dir: &std::path::Path,
    database_url: Option<&str>,
) -> Result<Arc<dyn Store>, StartError> {
    private_dir(data_dir).map_err(|source| StartError::DataDir {
        path: data_dir.to_path_buf(),
        source,
    })?;
    if let Some(url) = database_url {
        let store = store::postgres::PgStore::connect(url).await?;
        return Ok(Arc::new(store));
    }
    let store =
        store::sqlite::SqliteStore::open(&store_path(data_dir)).map_err(StartError::Store)?;
    Ok(Arc::new(store))
}

/// How a host is configured.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// The drop-in connectors directory.
    pub connectors_dir: PathBuf,
    /// The data directory: the compiled-component cache, the first organization's
    /// `authorization` file and, without a `database_url`, the SQLite store.
    pub data_dir: PathBuf,
    /// A PostgreSQL database shared by several hosts (`postgres://user@host:port/db`);
    /// `None` keeps the store in the data directory.
    pub database_url: Option<String>,
    /// Limits on every connector call.
    pub limits: Limits,
    /// How often the connectors directory is rescanned.
    pub scan_interval: Duration,
    /// Retries and time-outs of notification delivery.
    pub delivery: DeliveryConfig,
    /// The largest request body accepted, in bytes.
    pub body_limit: usize,
    /// How long finished notifications are kept.
    pub retention: retention::RetentionConfig,
    /// The time-out of one vendor call.
    pub vendor_timeout: Duration,
    /// The largest vendor answer read, in bytes.
    pub vendor_max_body: usize,
    /// Header time-out and connection cap of the API's server.
    pub connections: api::ConnectionLimits,
    /// Where the host may connect (callbacks, vendors, OAuth); also in `delivery`.
    pub egress: egress::Egress,
    /// A poll's budget and the pace of manual polls.
    pub polling: polling::PollConfig,
    /// What each organization may hold.
    pub quotas: quotas::Quotas,
    /// How long an identical webhook (same instance, same request) is answered without
    /// notifying again; `None` notifies every time.
    pub dedupe_window: Option<Duration>,
    /// Leases and resync of hosts sharing a database (unused on SQLite).
    pub cluster: cluster::ClusterConfig,
    /// Serve only once every connector file present at start has loaded or failed;
    /// `false` serves at once, listing the files still compiling as loading.
    pub wait_for_connectors: bool,
    /// Keep a spare fresh instance of each heavy connector (Python, JavaScript), made in
    /// the background, so a call skips the instantiation (`Runtime::set_spare_instances`).
    pub spare_instances: bool,
    /// The web console's sessions: idle expiry, cap, `Secure` cookie.
    pub console: console::session::SessionConfig,
}

impl HostConfig {
    /// A configuration with default limits and a 500 ms rescan.
    pub fn new(connectors_dir: PathBuf, data_dir: PathBuf) -> Self {
        HostConfig {
            connectors_dir,
            data_dir,
            database_url: None,
            limits: Limits::default(),
            scan_interval: Duration::from_millis(500),
            delivery: DeliveryConfig::default(),
            body_limit: 1 << 20,
            retention: retention::RetentionConfig::default(),
            vendor_timeout: Duration::from_secs(30),
            vendor_max_body: 32 << 20,
            connections: api::ConnectionLimits::default(),
            egress: egress::Egress::default(),
            polling: polling::PollConfig::default(),
            quotas: quotas::Quotas::default(),
            dedupe_window: Some(ingest::DEFAULT_DEDUPE_WINDOW),
            cluster: cluster::ClusterConfig::default(),
            wait_for_connectors: false,
            spare_instances: false,
            console: console::session::SessionConfig::default(),
        }
    }
}

/// Why the host could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory could not be prepared.
    #[error("cannot use the data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The compile cache's key could not be read or made.
    #[error(transparent)]
    CacheKey(#[from] cache_key::CacheKeyError),
    /// The WebAssembly engine could not be created.
    #[error("cannot create the WebAssembly engine: {0}")]
    Engine(String),
    /// The listener's address could not be read.
    #[error("cannot read the listening address: {0}")]
    Listener(std::io::Error),
    /// The store could not be opened or read.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The first organization could not be set up.
    #[error(transparent)]
    Bootstrap(#[from] tenancy::BootstrapError),
}

/// A running host. Dropping it does not stop it; call [`RunningHost::shutdown`].
pub struct RunningHost {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
    watcher: tokio::task::JoinHandle<()>,
    pruner: Option<tokio::task::JoinHandle<()>>,
    /// Its place among the hosts of a shared store.
    membership: Option<cluster::Membership>,
}

impl RunningHost {
    /// The address the API listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections and waits for the server loop to end; a host sharing
    /// its store gives its leases up first.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        self.watcher.abort();
        if let Some(pruner) = &self.pruner {
            pruner.abort();
        }
        if let Some(membership) = self.membership {
            membership.leave().await;
        }
        let _ = self.server.await;
    }

    /// Waits until the server loop ends.
    pub async fn wait(self) {
        let _ = self.server.await;
    }
}

/// Starts loading the connectors directory, watches it and serves the API on `listener`.
pub async fn start(config: HostConfig, listener: TcpListener) -> Result<RunningHost, StartError> {
    let data_err = |source| StartError::DataDir {
        path: config.data_dir.clone(),
        source,
    };
    private_dir(&config.data_dir).map_err(data_err)?;
    let cache_dir = config.data_dir.join("cache").join("components");
    let cache_key = cache_key::load_or_create(&config.data_dir)?;
    let runtime = Runtime::new(config.limits.clone(), Some((&cache_dir, &cache_key)))
        .map_err(|e| StartError::Engine(format!("{e:#}")))?;
    runtime.set_spare_instances(config.spare_instances);
    let registry = Registry::new(runtime, &config.connectors_dir);
    // The files load in the background: the API answers (listing them as loading) while
    // a heavy component compiles.
    registry.scan();
    if config.wait_for_connectors {
        registry.settled().await;
    }
    let watcher = registry.watch(config.scan_interval);

    let store = open_store(&config.data_dir, config.database_url.as_deref()).await?;
    let auth_file = config.data_dir.join("authorization");
    if tenancy::bootstrap(store.as_ref(), &auth_file, now_ms()).await? {
        // Printed, never logged: the file holds the secrets.
        eprintln!(
            "created the first organization; its Authorization header value is in {}",
            auth_file.display()
        );
    }
    let instances = Arc::new(Instances::new(store.all_instances().await?));
    let metrics = Arc::new(Metrics::default());
    // Alone on its store, a host does all the work; sharing one, what it holds leases for.
    let ownership = if store.shared().is_some() {
        cluster::Ownership::shared()
    } else {
        cluster::Ownership::single()
    };
    let dispatcher = Dispatcher::new(
        store.clone(),
        instances.clone(),
        ownership.clone(),
        metrics.clone(),
        config.delivery.clone(),
    );
    let vendor = polling::vendor::VendorClient::new(
        config.vendor_timeout,
        config.vendor_max_body,
        config.egress.clone(),
    );
    let poller = polling::Poller::new(
        registry.clone(),
        store.clone(),
        instances.clone(),
        dispatcher.clone(),
        metrics.clone(),
        vendor,
        config.polling,
    );
    // Alone, the host resumes every pending delivery; in a cluster, those of each
    // instance it takes a lease for, as it takes it.
    let membership = if ownership.is_shared() {
        cluster::join(
            config.cluster.clone(),
            cluster::Members {
                store: store.clone(),
                instances: instances.clone(),
                dispatcher: dispatcher.clone(),
                poller: poller.clone(),
                ownership: ownership.clone(),
            },
        )
        .await?
    } else {
        let resumed = dispatcher.resume().await?;
        if resumed > 0 {
            tracing::info!(resumed, "resuming pending deliveries");
        }
        None
    };

    let addr = listener.local_addr().map_err(StartError::Listener)?;
    let (shutdown, rx) = watch::channel(false);
    let ingest = ingest::Ingest {
        registry: registry.clone(),
        instances: instances.clone(),
        store: store.clone(),
        dispatcher: dispatcher.clone(),
        metrics: metrics.clone(),
        dedupe_window: config.dedupe_window,
    };
    let pruner = retention::start(
        config.retention.clone(),
        store.clone(),
        ownership,
        metrics.clone(),
    );
    poller.follow(registry.subscribe());
    poller.start_all();
    let app = Arc::new(api::App {
        poller,
        registry,
        store,
        instances,
        ingest,
        dispatcher,
        metrics,
        body_limit: config.body_limit,
        connections: config.connections,
        egress: config.egress.clone(),
        quotas: config.quotas.clone(),
        changing: tokio::sync::Mutex::new(()),
        console: console::session::Sessions::new(config.console.clone()),
    });
    let server = tokio::spawn(api::serve(listener, app, rx));
    tracing::info!(%addr, connectors = %config.connectors_dir.display(), "connector-host listening");
    Ok(RunningHost {
        addr,
        shutdown,
        server,
        watcher,
        pruner,
        membership,
    })
}
