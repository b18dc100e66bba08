//! The `connector-host` binary: command line only; the work is in the library.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};

/// A WebAssembly plugin host for event connectors.
#[derive(Parser)]
#[command(name = "connector-host", version, args_override_self = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API with the connectors of a directory.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// The drop-in connectors directory (`*.wasm`).
        #[arg(long, default_value = "connectors")]
        connectors: PathBuf,
        /// The data directory.
        #[arg(long, default_value = "data")]
        data: PathBuf,
        /// Keep the store in this PostgreSQL database, shared with other hosts
        /// (`postgres://USER:PASSWORD@HOST:PORT/DB`), instead of the SQLite file under
        /// `--data`.
        #[arg(long, env = "DATABASE_URL", value_name = "URL")]
        database_url: Option<String>,
        /// Delays before each delivery retry, in milliseconds, comma-separated
        /// (default: 9 retries of 4^x seconds).
        #[arg(long, value_name = "MS,MS,...")]
        retry_delays_ms: Option<String>,
        /// Time-out of one delivery attempt, in milliseconds.
        #[arg(long, default_value_t = 10_000)]
        delivery_timeout_ms: u64,
        /// The largest request body accepted, in bytes.
        #[arg(long, default_value_t = 1 << 20)]
        body_limit: usize,
        /// How long notifications that are done (delivered, dead-lettered, dropped) are
        /// kept after acceptance and after their last attempt, in milliseconds (default 30
        /// days); 0 keeps them forever. Pending notifications are never deleted.
        #[arg(long, value_name = "MS")]
        retention_ms: Option<u64>,
        /// How often notifications past retention are looked for, in milliseconds.
        #[arg(long, default_value_t = 60_000)]
        prune_interval_ms: u64,
        /// The longest a client may take to send a request's line and headers, in
        /// milliseconds; a slower connection is closed.
        #[arg(long, default_value_t = 10_000)]
        header_timeout_ms: u64,
        /// The longest a client may take to send a request's whole body, in milliseconds;
        /// a slower one is answered 408 and its connection closed.
        #[arg(long, default_value_t = 30_000)]
        body_timeout_ms: u64,
        /// How long a kept-alive connection may wait for its next request, in
        /// milliseconds; then it is closed.
        #[arg(long, default_value_t = 60_000)]
        idle_timeout_ms: u64,
        /// The most API connections open at once; more clients wait to be accepted.
        #[arg(long, default_value_t = 10_000)]
        max_connections: usize,
        /// A network the host may connect to although the outbound guard refuses it by
        /// default (loopback, private, link-local, CGNAT, unique-local, multicast), as CIDR
        /// (`127.0.0.0/8`, `10.1.0.0/16`, `::1/128`) or one address; repeatable.
        #[arg(long, value_name = "CIDR", value_parser = parse_network)]
        allow_network: Vec<host::egress::IpNet>,
        /// The most records one poll of a resource may read; past it the poll fails,
        /// notifying nothing and keeping its cursor.
        #[arg(long, default_value_t = 100_000)]
        poll_max_records: usize,
        /// The most answer bytes one poll of a resource may read from the vendor; past it
        /// the poll fails, notifying nothing and keeping its cursor.
        #[arg(long, default_value_t = 64 << 20)]
        poll_max_bytes: usize,
        /// The longest one poll of a resource may take, in milliseconds; past it the poll
        /// fails, notifying nothing and keeping its cursor.
        #[arg(long, default_value_t = 300_000)]
        poll_max_ms: u64,
        /// The least time between two manual polls (`POST …/events/poll`) of one instance,
        /// in milliseconds; sooner ones get a 429 with `Retry-After`. 0: no limit.
        #[arg(long, default_value_t = 10_000)]
        poll_now_interval_ms: u64,
        /// The most instances one organization may have; one more is a 403.
        #[arg(long, default_value_t = 1_000)]
        max_instances_per_org: usize,
        /// The most bytes (keys and values) of one instance's configuration; more is a 400.
        #[arg(long, default_value_t = 64 << 10)]
        max_config_bytes: usize,
        /// The most resources one instance may poll; more is a 400.
        #[arg(long, default_value_t = 50)]
        max_poll_resources: usize,
        /// The shortest `event.poller.refresh_interval`, in milliseconds; shorter is a 400,
        /// and a stored instance asking for less polls at this pace.
        #[arg(long, default_value_t = 60_000)]
        min_poll_interval_ms: u64,
        /// How long a webhook identical to one already notified (same instance, query,
        /// content type and body) is answered 200 without notifying again, in
        /// milliseconds (default 24 hours); 0 notifies every time.
        #[arg(long, default_value_t = 24 * 3600 * 1000)]
        dedupe_window_ms: u64,
        /// With --database-url: how long a host's lease on an instance's delivery and
        /// polling lasts unrenewed, in milliseconds; a dead host's instances move to the
        /// others after at most this.
        #[arg(long, default_value_t = 10_000)]
        lease_ms: u64,
        /// With --database-url: how often a host reads every instance and pending count
        /// again, in milliseconds, to heal a change announcement it missed.
        #[arg(long, default_value_t = 30_000)]
        resync_ms: u64,
        /// Answer only once every connector file present at start has loaded or failed
        /// (by default the API answers at once and lists the files still compiling as
        /// loading).
        #[arg(long)]
        wait_for_connectors: bool,
        /// Keep one spare fresh instance of each heavy connector (Python, JavaScript) made
        /// in the background, so a call skips the instantiation: lower latency when the
        /// host has idle CPU, each call still in an instance no other call used.
        #[arg(long)]
        spare_instances: bool,
        /// Mark the web console's session cookie `Secure` on every answer: for a host
        /// behind a TLS proxy (one that sends `X-Forwarded-Proto: https` gets it anyway).
        #[arg(long)]
        console_secure_cookie: bool,
    },
    /// Organizations.
    Orgs {
        #[command(subcommand)]
        command: OrgsCommand,
    },
    /// Connector author tools.
    Connectors {
        #[command(subcommand)]
        command: ConnectorsCommand,
    },
}

#[derive(Subcommand)]
enum OrgsCommand {
    /// Add an organization and print its `Authorization` header value (shown once).
    Add {
        /// The organization's name.
        name: String,
        /// The data directory.
        #[arg(long, default_value = "data")]
        data: PathBuf,
        /// The PostgreSQL database of the hosts, if they use one (see `serve`).
        #[arg(long, env = "DATABASE_URL", value_name = "URL")]
        database_url: Option<String>,
    },
}

#[derive(Subcommand)]
enum ConnectorsCommand {
    /// Load one connector, print its info, validate a configuration, run a webhook fixture.
    Check {
        /// The connector component.
        file: PathBuf,
        /// A configuration entry, `key=value`; repeatable.
        #[arg(long = "config", value_name = "KEY=VALUE")]
        config: Vec<String>,
        /// A webhook body to parse.
        #[arg(long, value_name = "FIXTURE")]
        webhook: Option<PathBuf>,
        /// A header sent with the webhook, `Name: value`; repeatable.
        #[arg(long = "header", value_name = "NAME: VALUE")]
        headers: Vec<String>,
        /// The webhook's query string, e.g. `eventtype=order.created`.
        #[arg(long, default_value = "")]
        query: String,
    },
    /// Write a new connector's skeleton: a webhook connector with a unit test, a webhook
    /// fixture and a README giving its one build command.
    New {
        /// The connector's element key, e.g. `my-shop`.
        name: String,
        /// Its language: `rust`, `python` or `js`.
        #[arg(long, default_value = "rust", value_parser = parse_lang)]
        lang: host::scaffold::Lang,
        /// Where to write it (default: `./NAME`); must not exist or be empty.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The Rust SDK (`guest-sdk`) a Rust skeleton depends on (default: this build's).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
}

fn parse_lang(name: &str) -> Result<host::scaffold::Lang, String> {
    host::scaffold::Lang::parse(name).ok_or_else(|| {
        format!("`{name}` is not a language of `connectors new`: rust, python or js")
    })
}

/// Logs go to standard error through a writer thread: a request's thread formats its
/// line and hands it over, and the writer thread writes lines in batches instead of one
/// `write` per line (one line per accepted webhook was a tenth of the host's CPU under
/// load). Lines are never dropped: when the writer falls behind, loggers wait. The guard
/// flushes what is queued when `main` returns.
fn init_tracing() -> tracing_appender::non_blocking::WorkerGuard {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("log-writer")
        .finish(std::io::BufWriter::with_capacity(
            64 << 10,
            std::io::stderr(),
        ));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(writer)
        .init();
    guard
}

fn pairs(items: &[String], sep: char, what: &str) -> anyhow::Result<Vec<(String, String)>> {
    items
        .iter()
        .map(|item| match item.split_once(sep) {
            Some((k, v)) => Ok((k.trim().to_string(), v.trim_start().to_string())),
            None => bail!("{what} `{item}` has no `{sep}`"),
        })
        .collect()
}

/// mimalloc: the webhook path allocates many small, short-lived buffers on several threads,
/// where it measured faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `--allow-network`: a CIDR, or one address (a /32 or /128).
fn parse_network(s: &str) -> Result<host::egress::IpNet, String> {
    s.parse::<host::egress::IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(host::egress::IpNet::from))
        .map(|n| n.trunc())
        .map_err(|_| format!("`{s}` is neither a CIDR network (10.0.0.0/8) nor an address"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _log_writer = init_tracing();
    match Cli::parse().command {
        Command::Serve {
            listen,
            connectors,
            data,
            database_url,
            retry_delays_ms,
            delivery_timeout_ms,
            body_limit,
            retention_ms,
            prune_interval_ms,
            header_timeout_ms,
            body_timeout_ms,
            idle_timeout_ms,
            max_connections,
            allow_network,
            poll_max_records,
            poll_max_bytes,
            poll_max_ms,
            poll_now_interval_ms,
            max_instances_per_org,
            max_config_bytes,
            max_poll_resources,
            min_poll_interval_ms,
            dedupe_window_ms,
            lease_ms,
            resync_ms,
            wait_for_connectors,
            spare_instances,
            console_secure_cookie,
        } => {
            let mut config = host::HostConfig::new(connectors, data);
            config.console.secure_cookie = console_secure_cookie;
            config.wait_for_connectors = wait_for_connectors;
            config.spare_instances = spare_instances;
            config.database_url = database_url;
            if let Some(list) = retry_delays_ms {
                config.delivery.schedule = host::delivery::RetrySchedule::parse_millis(&list)
                    .map_err(|e| anyhow::anyhow!("--retry-delays-ms: {e}"))?;
            }
            config.delivery.attempt_timeout = std::time::Duration::from_millis(delivery_timeout_ms);
            config.body_limit = body_limit;
            for (flag, value) in [
                ("--header-timeout-ms", header_timeout_ms),
                ("--body-timeout-ms", body_timeout_ms),
                ("--idle-timeout-ms", idle_timeout_ms),
                ("--max-connections", max_connections as u64),
                ("--lease-ms", lease_ms),
                ("--resync-ms", resync_ms),
            ] {
                if value == 0 {
                    bail!("{flag} must be positive");
                }
            }
            let ms = std::time::Duration::from_millis;
            config.cluster = host::cluster::ClusterConfig {
                lease: ms(lease_ms),
                resync: ms(resync_ms),
            };
            config.connections = host::api::ConnectionLimits {
                header_timeout: ms(header_timeout_ms),
                body_timeout: ms(body_timeout_ms),
                idle_timeout: ms(idle_timeout_ms),
                max_connections,
            };
            if !allow_network.is_empty() {
                let list: Vec<String> = allow_network.iter().map(|n| n.to_string()).collect();
                tracing::info!(networks = %list.join(", "), "the outbound guard allows these networks");
            }
            config.egress = host::egress::Egress::allowing(allow_network);
            config.delivery.egress = config.egress.clone();
            if poll_max_records == 0 || poll_max_bytes == 0 || poll_max_ms == 0 {
                bail!("--poll-max-records, --poll-max-bytes and --poll-max-ms must be positive");
            }
            config.polling = host::polling::PollConfig {
                budget: host::polling::PollBudget {
                    max_records: poll_max_records,
                    max_bytes: poll_max_bytes,
                    max_time: std::time::Duration::from_millis(poll_max_ms),
                },
                now_interval: std::time::Duration::from_millis(poll_now_interval_ms),
                min_interval: std::time::Duration::from_millis(min_poll_interval_ms),
            };
            config.quotas = host::quotas::Quotas {
                instances_per_org: max_instances_per_org,
                config_bytes: max_config_bytes,
                poll_resources: max_poll_resources,
                min_poll_interval: std::time::Duration::from_millis(min_poll_interval_ms),
            };
            match retention_ms {
                Some(0) => config.retention.keep = None,
                Some(ms) => config.retention.keep = Some(std::time::Duration::from_millis(ms)),
                None => {}
            }
            config.dedupe_window =
                (dedupe_window_ms > 0).then(|| std::time::Duration::from_millis(dedupe_window_ms));
            if prune_interval_ms == 0 {
                bail!("--prune-interval-ms must be positive");
            }
            config.retention.interval = std::time::Duration::from_millis(prune_interval_ms);
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            let host = host::start(config, listener).await?;
            // Tests and scripts read this line to learn the port.
            println!("listening on {}", host.local_addr());
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate() => {}
            }
            host.shutdown().await;
            Ok(())
        }
        Command::Orgs {
            command:
                OrgsCommand::Add {
                    name,
                    data,
                    database_url,
                },
        } => {
            let store = host::open_store(&data, database_url.as_deref()).await?;
            let file = data.join("authorization");
            let (created, first) =
                host::tenancy::add_org(store.as_ref(), &name, &file, host::now_ms()).await?;
            eprintln!(
                "organization {} ({}) created",
                created.org.id, created.org.name
            );
            if first {
                eprintln!(
                    "the first organization: its Authorization header value is also in {}",
                    file.display()
                );
            }
            println!("{}", created.authorization);
            Ok(())
        }
        Command::Connectors {
            command:
                ConnectorsCommand::Check {
                    file,
                    config,
                    webhook,
                    headers,
                    query,
                },
        } => {
            let input = host::check::CheckInput {
                config: pairs(&config, '=', "--config")?,
                webhook,
                headers: pairs(&headers, ':', "--header")?,
                query,
            };
            let report = host::check::check(&file, &input).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Command::Connectors {
            command:
                ConnectorsCommand::New {
                    name,
                    lang,
                    dir,
                    sdk,
                },
        } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
            let sdk = sdk.unwrap_or_else(host::scaffold::default_sdk);
            let written = host::scaffold::write(&name, lang, &dir, &sdk)?;
            for file in &written {
                println!("{}", dir.join(file).display());
            }
            eprintln!(
                "wrote connector `{name}` in {}; build it there with: {}",
                dir.display(),
                lang.build_command().replace("NAME", &name)
            );
            Ok(())
        }
    }
}

#[cfg(unix)]
async fn terminate() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn terminate() {
    std::future::pending().await
}
