//! A PostgreSQL server for tests, and a fresh database on it per test ([`TestDatabase`]).
//!
//! The server is `TEST_DATABASE_URL`'s when that is set (a `postgres://` URL of a user
//! that may create databases). Otherwise the first [`TestDatabase`] of the process starts
//! a private cluster: `initdb` in a temporary directory, listening on 127.0.0.1 on a free
//! port and on a unix socket in that directory, with durability off (`fsync`, synchronous
//! commit and full-page writes) as nothing in it outlives the tests. As root it runs as
//! the `postgres` system user, since `initdb` and `pg_ctl` refuse root. A watchdog process
//! holds a pipe from this one and, when the process ends however it ends (even killed),
//! stops the cluster and removes the directory.
//!
//! The server's programs are looked for on `PATH`, then in `/usr/lib/postgresql/*/bin`
//! (the newest). `./dev.sh test` installs Debian's `postgresql` when neither has them.

use std::ffi::OsString;
use std::io::Write;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use url::Url;

/// The environment variable naming an existing server to use instead of a private cluster.
pub const DATABASE_URL_VAR: &str = "TEST_DATABASE_URL";

/// The programs a private cluster needs, all from one directory.
pub const SERVER_PROGRAMS: [&str; 3] = ["initdb", "pg_ctl", "postgres"];

/// Where Debian's packages put each major version's programs (`<root>/<version>/bin`).
pub const DEBIAN_LIB_ROOT: &str = "/usr/lib/postgresql";

/// The system user a cluster runs as when the tests run as root (Debian's package makes it).
const SYSTEM_USER: &str = "postgres";

/// A fresh, empty database on the tests' server, dropped (with its connections) on drop.
pub struct TestDatabase {
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates a database on the tests' server, starting the process's private cluster
    /// first if this is the first one. Panics naming what is missing if there is no server.
    /// Blocking; fine to call from inside a Tokio runtime.
    pub fn create() -> TestDatabase {
        let server = server();
        let name = unique_name();
        on_admin_connection(&server.admin, format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name} on {}: {e}", server.shown()));
        let mut url = server.admin.clone();
        url.set_path(&format!("/{name}"));
        TestDatabase {
            name,
            url: url.into(),
        }
    }

    /// A `postgres://` URL of the database (with the server's credentials, if any).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name (`test_…`).
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(Ok(server)) = SERVER.get() else {
            return;
        };
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(e) = on_admin_connection(&server.admin, sql) {
            eprintln!("tests/pg.rs: could not drop database {}: {e}", self.name);
        }
    }
}

/// How long this process took to start its private cluster (`initdb` and `pg_ctl start`),
/// once it has; `None` before that or when `TEST_DATABASE_URL` names the server.
pub fn cluster_start_time() -> Option<Duration> {
    SERVER
        .get()?
        .as_ref()
        .ok()?
        .cluster
        .as_ref()
        .map(|c| c.took)
}

/// The tests' server, the process's private cluster started on first use.
struct Server {
    /// A URL of the maintenance database, where test databases are created and dropped.
    admin: Url,
    /// The private cluster's parts, if this process started one.
    cluster: Option<Cluster>,
}

/// A cluster this process started.
struct Cluster {
    /// The write end of the watchdog's pipe, open until the process exits.
    _watchdog: ChildStdin,
    /// `initdb` plus `pg_ctl start`.
    took: Duration,
}

impl Server {
    /// The server's URL without its password, for messages.
    fn shown(&self) -> String {
        let mut url = self.admin.clone();
        if url.password().is_some() {
            let _ = url.set_password(Some("***"));
        }
        url.into()
    }
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();

fn server() -> &'static Server {
    match SERVER.get_or_init(start_server) {
        Ok(server) => server,
        Err(e) => panic!("no PostgreSQL server for the tests: {e}"),
    }
}

fn start_server() -> Result<Server, String> {
    if let Some(given) = std::env::var_os(DATABASE_URL_VAR) {
        let given = given
            .into_string()
            .map_err(|_| format!("{DATABASE_URL_VAR} is not UTF-8"))?;
        let admin = Url::parse(&given)
            .ok()
            .filter(|u| matches!(u.scheme(), "postgres" | "postgresql"))
            .ok_or_else(|| {
                format!(
                    "{DATABASE_URL_VAR} must be a postgres://user:password@host:port/database URL"
                )
            })?;
        return Ok(Server {
            admin,
            cluster: None,
        });
    }
    let bin = find_server_programs(std::env::var_os("PATH"), Path::new(DEBIAN_LIB_ROOT))?;
    start_cluster(&bin)
}

/// The directory holding all of [`SERVER_PROGRAMS`]: the first such on `path` (a `PATH`
/// value), else the newest `<lib_root>/<major version>/bin`.
pub fn find_server_programs(path: Option<OsString>, lib_root: &Path) -> Result<PathBuf, String> {
    let has_all = |dir: &Path| SERVER_PROGRAMS.iter().all(|p| is_executable(&dir.join(p)));
    if let Some(dir) = path
        .iter()
        .flat_map(std::env::split_paths)
        .find(|d| has_all(d))
    {
        return Ok(dir);
    }
    let newest = std::fs::read_dir(lib_root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, bin)| has_all(bin))
        .max_by_key(|(version, _)| *version);
    newest.map(|(_, bin)| bin).ok_or_else(|| {
        format!(
            "none of PATH's directories nor {}/*/bin holds all of {}; `./dev.sh test` installs \
             Debian's `postgresql` package (or `apt-get install postgresql`), or set \
             {DATABASE_URL_VAR} to a server's postgres:// URL",
            lib_root.display(),
            SERVER_PROGRAMS.join(", "),
        )
    })
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// True when this process runs as root (the owner of `/proc/self` is its effective user).
fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A command for `program` that runs as [`SYSTEM_USER`] when this process is root.
fn as_cluster_user(program: impl AsRef<std::ffi::OsStr>, root: bool) -> Command {
    if root {
        let mut c = Command::new(runuser());
        c.args(["-u", SYSTEM_USER, "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn runuser() -> PathBuf {
    let found = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join("runuser"))
        .find(|p| is_executable(p));
    found.unwrap_or_else(|| "runuser".into())
}

/// Runs `command` to completion, or says what failed with its output.
fn run(mut command: Command, what: &str) -> Result<(), String> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: could not run {:?}: {e}", command.get_program()))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

fn start_cluster(bin: &Path) -> Result<Server, String> {
    let started = Instant::now();
    let root = running_as_root();
    let dir = tempfile::Builder::new()
        .prefix("pg-test-")
        .tempdir()
        .map_err(|e| format!("a temporary directory for the cluster: {e}"))?
        .keep();
    if root {
        let mut chown = Command::new("chown");
        chown.arg(format!("{SYSTEM_USER}:")).arg(&dir);
        run(chown, &format!("chown {SYSTEM_USER}: {}", dir.display())).map_err(|e| {
            format!(
                "running as root, the cluster runs as the `{SYSTEM_USER}` system user (initdb \
                 refuses root), which Debian's postgresql package creates: {e}"
            )
        })?;
    }
    let data = dir.join("data");
    let pg_ctl = bin.join("pg_ctl");
    // Stops the cluster and removes its directory when this process's end closes the pipe
    // (started first, so that it also cleans up after a process killed during initdb).
    let mut watchdog = as_cluster_user("sh", root);
    let mut child = watchdog
        .arg("-c")
        .arg(r#"cat >/dev/null; "$0" -D "$1" stop -m immediate >/dev/null 2>&1; rm -rf "$2""#)
        .arg(&pg_ctl)
        .arg(&data)
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Out of the terminal's process group, so that Ctrl-C leaves it to clean up.
        .process_group(0)
        .spawn()
        .map_err(|e| format!("the cluster's watchdog (sh): {e}"))?;
    let watchdog = child.stdin.take().expect("piped stdin");

    let mut initdb = as_cluster_user(bin.join("initdb"), root);
    initdb
        .arg("-D")
        .arg(&data)
        .args(["--username=postgres", "--auth=trust", "--encoding=UTF8"])
        .args(["--locale=C", "--no-sync", "--no-instructions"]);
    run(initdb, &format!("initdb in {}", dir.display()))?;

    let log = dir.join("postgres.log");
    let mut last = String::new();
    // A free port may be taken between finding it and the server binding it: try again.
    for _ in 0..5 {
        let port = free_port()?;
        write_settings(&data, &dir, port)?;
        let mut start = as_cluster_user(&pg_ctl, root);
        start
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "start"]);
        match run(start, "pg_ctl start") {
            Ok(()) => {
                let admin = Url::parse(&format!("postgres://postgres@127.0.0.1:{port}/postgres"))
                    .expect("a URL");
                return Ok(Server {
                    admin,
                    cluster: Some(Cluster {
                        _watchdog: watchdog,
                        took: started.elapsed(),
                    }),
                });
            }
            Err(e) => {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                last = format!("{e}; {}: {}", log.display(), tail(&text, 2000));
                if !text.contains("Address already in use") {
                    break;
                }
            }
        }
    }
    Err(last)
}

fn tail(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("a free loopback port: {e}"))
}

/// Appends the tests' settings to `postgresql.conf` (a later line wins over an earlier one).
fn write_settings(data: &Path, socket_dir: &Path, port: u16) -> Result<(), String> {
    let conf = data.join("postgresql.conf");
    let settings = format!(
        "\n# tests/pg.rs\n\
         listen_addresses = '127.0.0.1'\n\
         port = {port}\n\
         unix_socket_directories = '{}'\n\
         max_connections = 200\n\
         fsync = off\n\
         synchronous_commit = off\n\
         full_page_writes = off\n",
        socket_dir.display()
    );
    std::fs::OpenOptions::new()
        .append(true)
        .open(&conf)
        .and_then(|mut f| f.write_all(settings.as_bytes()))
        .map_err(|e| format!("{}: {e}", conf.display()))
}

/// `test_<pid>_<n>_<time>`: unique on a server shared by several processes and runs.
fn unique_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("test_{}_{n}_{nanos:x}", std::process::id())
}

/// `e` with its cause: tokio-postgres's own text is only "db error" for the server's errors.
pub fn describe(e: &tokio_postgres::Error) -> String {
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// Runs `sql` on a new connection to `admin`, on a thread of its own (so that it also works
/// from inside a runtime, and from `Drop`).
fn on_admin_connection(admin: &Url, sql: String) -> Result<(), String> {
    let admin = admin.to_string();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
                .await
                .map_err(|e| describe(&e))?;
            let connection = tokio::spawn(connection);
            let result = client.batch_execute(&sql).await.map_err(|e| describe(&e));
            drop(client);
            let _ = connection.await;
            result
        })
    })
    .join()
    .map_err(|_| "the admin connection's thread panicked".to_string())?
}

#[cfg(test)]
mod find_tests {
    use super::*;

    /// A directory holding executable files named `programs`.
    fn bin_dir(dir: &Path, programs: &[&str]) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        for p in programs {
            let path = dir.join(p);
            std::fs::write(&path, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        dir.to_path_buf()
    }

    #[test]
    fn path_first_then_the_newest_debian_version_with_all_three() {
        let tmp = tempfile::tempdir().unwrap();
        let lib = tmp.path().join("lib");
        let partial = bin_dir(&tmp.path().join("partial"), &["initdb", "pg_ctl"]);
        let on_path = bin_dir(&tmp.path().join("on-path"), &SERVER_PROGRAMS);
        bin_dir(&lib.join("13/bin"), &SERVER_PROGRAMS);
        let v15 = bin_dir(&lib.join("15/bin"), &SERVER_PROGRAMS);
        bin_dir(&lib.join("17/bin"), &["initdb", "pg_ctl"]); // no `postgres`
        bin_dir(&lib.join("common/bin"), &SERVER_PROGRAMS); // not a version

        let path = std::env::join_paths([&partial, &on_path]).unwrap();
        assert_eq!(find_server_programs(Some(path), &lib), Ok(on_path));
        let path = std::env::join_paths([&partial]).unwrap();
        assert_eq!(find_server_programs(Some(path), &lib), Ok(v15));
        assert_eq!(
            find_server_programs(None, &lib).unwrap(),
            lib.join("15/bin")
        );
    }

    #[test]
    fn none_found_says_what_is_missing_and_how_to_get_it() {
        let tmp = tempfile::tempdir().unwrap();
        let not_executable = tmp.path().join("noexec");
        std::fs::create_dir_all(&not_executable).unwrap();
        for p in SERVER_PROGRAMS {
            std::fs::write(not_executable.join(p), "").unwrap();
        }
        let path = std::env::join_paths([&not_executable]).unwrap();
        let err = find_server_programs(Some(path), &tmp.path().join("missing")).unwrap_err();
        assert!(err.contains("initdb, pg_ctl, postgres"), "{err}");
        assert!(err.contains("./dev.sh test"), "{err}");
        assert!(err.contains(DATABASE_URL_VAR), "{err}");
    }
}
