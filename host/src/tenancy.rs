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
    crate::runtime::sha256_hex(secret.as_bytes())
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
    let (user, org) = (new_secret(), new_secret());
    let hashes = SecretHashes {
        user: digest(&user),
        org: digest(&org),
    };
    let created = store.create_org(name, &hashes, now_ms).await?;
    Ok(NewOrg {
        org: created,
        authorization: format!("User {user}, Organization {org}"),
    })
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
pub async fn bootstrap(
    store: &dyn Store,
    file: &Path,
    now_ms: i64,
) -> Result<bool, BootstrapError> {
    if store.count_orgs().await? > 0 {
        return Ok(false);
    }
    let created = create_org(store, "default", now_ms).await?;
    write_private(file, &created.authorization).map_err(|source| BootstrapError::File {
        path: file.display().to_string(),
        source,
    })?;
    Ok(true)
}

/// Writes `content` + newline to `path`, readable by the owner only.
fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path)?;
    writeln!(f, "{content}")?;
    f.sync_all()
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

    #[test]
    fn secrets_are_long_and_distinct() {
        let (a, b) = (new_secret(), new_secret());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }
}
