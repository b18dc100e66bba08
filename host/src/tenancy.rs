//! Tenancy: organizations, their secrets, and the `Authorization` header.
//!
//! Platform calls carry `Authorization: User <secret>, Organization <secret>`; an instance's
//! own calls may carry `Authorization: Element <token>`. The store keeps only sha256 digests
//! of secrets and tokens.

use std::io::Write as _;
use std::path::Path;

use store::{SecretHashes, Store, StoreError};

/// What an `Authorization` header claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// `User <secret>, Organization <secret>`.
    UserOrg {
        /// The user secret.
        user: String,
        /// The organization secret.
        org: String,
    },
    /// `Element <token>`: one instance's token.
    Element(String),
}

/// Reads an `Authorization` header value; `None` when it is neither form.
pub fn parse_authorization(value: &str) -> Option<Credential> {
    let value = value.trim();
    if let Some(token) = strip_word(value, "Element") {
        return (!token.is_empty()).then(|| Credential::Element(token.to_string()));
    }
    let (mut user, mut org) = (None, None);
    for part in value.split(',') {
        let part = part.trim();
        if let Some(s) = strip_word(part, "User") {
            user = Some(s.to_string());
        } else if let Some(s) = strip_word(part, "Organization") {
            org = Some(s.to_string());
        } else {
            return None;
        }
    }
    match (user, org) {
        (Some(user), Some(org)) if !user.is_empty() && !org.is_empty() => {
            Some(Credential::UserOrg { user, org })
        }
        _ => None,
    }
}

fn strip_word<'a>(s: &'a str, word: &str) -> Option<&'a str> {
    let rest = s.strip_prefix(word)?;
    rest.starts_with(char::is_whitespace).then(|| rest.trim())
}

/// Hex sha256 of a secret or token.
pub fn digest(secret: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(secret.as_bytes()))
}

/// A new random secret: 32 bytes of the OS's randomness, hex.
pub fn new_secret() -> String {
    let mut buf = [0u8; 32];
    getrandom::fill(&mut buf).expect("the OS random source is available");
    hex::encode(buf)
}

/// A new organization and the `Authorization` value that opens it.
#[derive(Debug)]
pub struct NewOrg {
    /// The organization.
    pub org: store::Org,
    /// `User <secret>, Organization <secret>`; shown once, never stored.
    pub authorization: String,
}

/// Creates an organization with fresh secrets.
pub async fn create_org(store: &dyn Store, name: &str, now_ms: i64) -> Result<NewOrg, StoreError> {
    let secrets = Secrets::new();
    let created = store.create_org(name, &secrets.hashes(), now_ms).await?;
    Ok(NewOrg {
        org: created,
        authorization: secrets.authorization(),
    })
}

/// A fresh user secret and organization secret.
struct Secrets {
    user: String,
    org: String,
}

impl Secrets {
    fn new() -> Secrets {
        Secrets {
            user: new_secret(),
            org: new_secret(),
        }
    }

    fn hashes(&self) -> SecretHashes {
        SecretHashes {
            user: digest(&self.user),
            org: digest(&self.org),
        }
    }

    /// `User <secret>, Organization <secret>`.
    fn authorization(&self) -> String {
        format!("User {}, Organization {}", self.user, self.org)
    }
}

/// Why the first organization could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The authorization file could not be written.
    #[error("cannot write {path}: {source}")]
    File {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// On a store with no organization, creates the first one and writes its `Authorization`
/// value to `file` (mode 0600). Returns true when it did.
///
/// The file is written (atomically and durably) before the organization is created, so the
/// secrets, which the store keeps only hashed, cannot be lost: when the file cannot be
/// written no organization is created, and a later start tries again. When organizations
/// exist but `file` does not, it warns (the value cannot be recovered) and says how to get
/// a new one; that does not fail.
pub async fn bootstrap(
    store: &dyn Store,
    file: &Path,
    now_ms: i64,
) -> Result<bool, BootstrapError> {
    // Hosts starting together on an empty shared store: one at a time looks, so one
    // makes the first organization.
    let turn = match store.shared() {
        Some(shared) => Some(BootstrapTurn::take(shared).await?),
        None => None,
    };
    let made = if store.count_orgs().await? > 0 {
        warn_if_missing(file);
        false
    } else {
        create_first_org(store, "default", file, now_ms).await?;
        true
    };
    if let Some(turn) = turn {
        turn.give_back().await;
    }
    Ok(made)
}

/// The lease hosts sharing a store take in turn to look for the first organization.
struct BootstrapTurn<'a> {
    shared: &'a dyn store::SharedStore,
    me: String,
}

impl<'a> BootstrapTurn<'a> {
    const LEASE: &'static str = "bootstrap";

    /// Waits for the turn (another host's ends when it gives it back, or after 30 s).
    async fn take(shared: &'a dyn store::SharedStore) -> Result<Self, store::StoreError> {
        let mut id = [0u8; 8];
        getrandom::fill(&mut id).map_err(|e| store::StoreError::Database(e.to_string()))?;
        let me = format!("bootstrap-{}", hex::encode(id));
        let name = [Self::LEASE.to_string()];
        while shared.claim(&me, &name, 30_000).await?.is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        Ok(BootstrapTurn { shared, me })
    }

    async fn give_back(self) {
        let _ = self
            .shared
            .release(&self.me, &[Self::LEASE.to_string()])
            .await;
    }
}

/// `connector-host orgs add`: creates an organization with fresh secrets. When it is the
/// store's first, its `Authorization` value is also written to `file`, as [`bootstrap`]
/// does, so that the file stands for the first organization however it was made (and a
/// later start does not warn that it is missing). The flag says whether it was the first.
pub async fn add_org(
    store: &dyn Store,
    name: &str,
    file: &Path,
    now_ms: i64,
) -> Result<(NewOrg, bool), BootstrapError> {
    if store.count_orgs().await? == 0 {
        return Ok((create_first_org(store, name, file, now_ms).await?, true));
    }
    Ok((create_org(store, name, now_ms).await?, false))
}

/// Writes `file`, then creates the organization it opens (see [`bootstrap`]).
async fn create_first_org(
    store: &dyn Store,
    name: &str,
    file: &Path,
    now_ms: i64,
) -> Result<NewOrg, BootstrapError> {
    let secrets = Secrets::new();
    let hashes = secrets.hashes();
    write_private(file, &secrets.authorization()).map_err(|source| BootstrapError::File {
        path: file.display().to_string(),
        source,
    })?;
    match store.create_org(name, &hashes, now_ms).await {
        Ok(org) => Ok(NewOrg {
            org,
            authorization: secrets.authorization(),
        }),
        Err(e) => {
            // The file's secrets open nothing: remove it, unless the store cannot say for
            // sure that the organization was not created after all (then the file is the
            // only copy; a start that finds no organization replaces it).
            if let Ok(None) = store.find_org(&hashes).await {
                let _ = std::fs::remove_file(file);
            }
            Err(e.into())
        }
    }
}

/// Warns when the authorization file of an existing first organization is gone.
fn warn_if_missing(file: &Path) {
    let problem = match file.try_exists() {
        Ok(true) => return,
        Ok(false) => "is missing".to_string(),
        Err(e) => format!("cannot be checked ({e})"),
    };
    let data_dir = match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    tracing::warn!(
        "organizations exist but the authorization file {} {problem}. The host writes it \
         only when it creates the first organization, and the store keeps only hashes of the \
         secrets, so a lost Authorization header value cannot be recovered. If you no longer \
         have one, run `connector-host orgs add NAME --data {}`: it creates an organization \
         and prints a new Authorization header value",
        file.display(),
        data_dir.display()
    );
}

/// Writes `content` + newline to `path`, readable by the owner only, atomically: a
/// temporary file in the same directory, created with mode 0600, is written and synced,
/// then renamed over `path`, and the directory is synced.
fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"))?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(
        ".{}.{}.tmp",
        std::process::id(),
        &new_secret()[..16]
    ));
    let tmp = dir.join(tmp_name);

    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let f = options.open(&tmp)?;
    let written = write_synced(f, content).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(dir)
}

/// Writes `content` + newline to `f` and syncs it to disk.
fn write_synced(mut f: std::fs::File, content: &str) -> std::io::Result<()> {
    writeln!(f, "{content}")?;
    f.sync_all()
}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_header_forms() {
        assert_eq!(
            parse_authorization("User abc, Organization def"),
            Some(Credential::UserOrg {
                user: "abc".into(),
                org: "def".into()
            })
        );
        assert_eq!(
            parse_authorization("Organization def,User abc"),
            Some(Credential::UserOrg {
                user: "abc".into(),
                org: "def".into()
            })
        );
        assert_eq!(
            parse_authorization("Element tok"),
            Some(Credential::Element("tok".into()))
        );
        assert_eq!(parse_authorization("User abc"), None);
        assert_eq!(parse_authorization("Bearer x"), None);
        assert_eq!(parse_authorization("Userabc, Organization def"), None);
    }

    /// A fresh directory under the system's temporary directory, removed on drop.
    struct TempDir(std::path::PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            let path = std::env::temp_dir().join(format!(
                "host-tenancy-{}-{}",
                std::process::id(),
                &new_secret()[..16]
            ));
            std::fs::create_dir(&path).unwrap();
            TempDir(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A store in its own data directory (kept apart from the authorization file's).
    async fn store(tmp: &TempDir) -> std::sync::Arc<dyn Store> {
        crate::open_store(&tmp.0.join("store"), None).await.unwrap()
    }

    /// Whether `value` opens an organization of `store`.
    async fn authenticates(store: &dyn Store, value: &str) -> bool {
        let Some(Credential::UserOrg { user, org }) = parse_authorization(value) else {
            return false;
        };
        let hashes = SecretHashes {
            user: digest(&user),
            org: digest(&org),
        };
        store.find_org(&hashes).await.unwrap().is_some()
    }

    #[tokio::test]
    async fn bootstrap_writes_a_private_file_that_authenticates() {
        let tmp = TempDir::new();
        let store = store(&tmp).await;
        let data = tmp.0.join("data");
        std::fs::create_dir(&data).unwrap();
        let file = data.join("authorization");
        // A world-readable leftover: the new value replaces it, in a file private from
        // its creation.
        std::fs::write(&file, "User stale, Organization stale\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        }

        assert!(bootstrap(store.as_ref(), &file, 1).await.unwrap());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
        }
        let value = std::fs::read_to_string(&file).unwrap();
        assert!(value.ends_with('\n'));
        assert!(authenticates(store.as_ref(), &value).await);
        assert_eq!(store.count_orgs().await.unwrap(), 1);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(&data)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["authorization"]);

        // A later start leaves the organization and the file alone.
        assert!(!bootstrap(store.as_ref(), &file, 2).await.unwrap());
        assert_eq!(std::fs::read_to_string(&file).unwrap(), value);
        assert_eq!(store.count_orgs().await.unwrap(), 1);
    }

    #[tokio::test]
    async fn bootstrap_creates_no_org_when_the_file_cannot_be_written() {
        let tmp = TempDir::new();
        let store = store(&tmp).await;
        // The file's directory is a regular file: no one, root included, can write there.
        let not_a_dir = tmp.0.join("not-a-dir");
        std::fs::write(&not_a_dir, "").unwrap();
        let unwritable = not_a_dir.join("authorization");

        let err = bootstrap(store.as_ref(), &unwritable, 1).await.unwrap_err();
        assert!(matches!(err, BootstrapError::File { .. }), "{err:?}");
        assert!(err.to_string().contains("authorization"), "{err}");
        assert_eq!(store.count_orgs().await.unwrap(), 0);

        // The next start, with a writable file, creates the organization and the file.
        let file = tmp.0.join("authorization");
        assert!(bootstrap(store.as_ref(), &file, 2).await.unwrap());
        let value = std::fs::read_to_string(&file).unwrap();
        assert!(authenticates(store.as_ref(), &value).await);
        assert_eq!(store.count_orgs().await.unwrap(), 1);
    }

    /// Log output, captured.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    /// Runs `bootstrap` with its log captured.
    async fn bootstrap_logged(store: &dyn Store, file: &Path) -> (bool, String) {
        use tracing::instrument::WithSubscriber as _;
        let log = Captured::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let created = bootstrap(store, file, 1)
            .with_subscriber(subscriber)
            .await
            .unwrap();
        (created, log.text())
    }

    #[tokio::test]
    async fn orgs_add_on_an_empty_store_writes_the_file_so_no_start_warns() {
        let tmp = TempDir::new();
        let store = store(&tmp).await;
        let file = tmp.0.join("authorization");
        let (first, was_first) = add_org(store.as_ref(), "acme", &file, 1).await.unwrap();
        assert!(was_first);
        assert_eq!(first.org.name, "acme");
        let value = std::fs::read_to_string(&file).unwrap();
        assert_eq!(value.trim_end(), first.authorization);
        assert!(authenticates(store.as_ref(), &value).await);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
        }

        // The next organization leaves the file alone.
        let (second, was_first) = add_org(store.as_ref(), "other", &file, 2).await.unwrap();
        assert!(!was_first);
        assert_ne!(second.authorization, first.authorization);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), value);

        // A start finds the file and has nothing to warn about, nor anything to create.
        let (created, log) = bootstrap_logged(store.as_ref(), &file).await;
        assert!(!created);
        assert!(!log.contains("WARN"), "{log}");
        assert_eq!(store.count_orgs().await.unwrap(), 2);
    }

    #[tokio::test]
    async fn bootstrap_warns_when_orgs_exist_but_the_file_is_gone() {
        let tmp = TempDir::new();
        let store = store(&tmp).await;
        let file = tmp.0.join("authorization");
        let (created, log) = bootstrap_logged(store.as_ref(), &file).await;
        assert!(created);
        assert!(!log.contains("WARN"), "{log}");
        let value = std::fs::read_to_string(&file).unwrap();

        // The file is there: nothing to say.
        let (created, log) = bootstrap_logged(store.as_ref(), &file).await;
        assert!(!created);
        assert!(!log.contains("WARN"), "{log}");

        // The file is gone: startup goes on, with a warning that says how to get a new value.
        std::fs::remove_file(&file).unwrap();
        let (created, log) = bootstrap_logged(store.as_ref(), &file).await;
        assert!(!created);
        assert!(!file.exists());
        assert_eq!(store.count_orgs().await.unwrap(), 1);
        assert!(log.contains("WARN"), "{log}");
        assert!(log.contains(&file.display().to_string()), "{log}");
        assert!(log.contains("is missing"), "{log}");
        assert!(
            log.contains(&format!(
                "connector-host orgs add NAME --data {}",
                tmp.0.display()
            )),
            "{log}"
        );
        // Secrets are never logged.
        let Some(Credential::UserOrg { user, org }) = parse_authorization(&value) else {
            panic!("{value}");
        };
        assert!(!log.contains(&user) && !log.contains(&org), "{log}");
    }

    #[test]
    fn secrets_are_long_and_distinct() {
        let (a, b) = (new_secret(), new_secret());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }
}
