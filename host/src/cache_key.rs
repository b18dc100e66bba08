//! The compile cache's secret: 32 random bytes in `<data>/cache.key` (0600), made on the
//! first start and reused after. The runtime keys the MAC of every cached artifact with
//! it, so an artifact changed or swapped on disk is recompiled, never loaded. Never logged.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use runtime::CacheKey;

/// The key file's name in the data directory.
pub const FILE: &str = "cache.key";

/// Why the key could not be read or made.
#[derive(Debug, thiserror::Error)]
pub enum CacheKeyError {
    /// The file could not be read, created or written.
    #[error("cannot use the compile cache's key file {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file does not hold exactly 32 bytes.
    #[error(
        "the compile cache's key file {path} holds {len} bytes, not 32; delete it to make a new key (the cached components are then recompiled)"
    )]
    Length {
        /// The key file.
        path: PathBuf,
        /// Its length.
        len: usize,
    },
}

/// Reads the key of the data directory `data_dir`, making it first when there is none.
pub fn load_or_create(data_dir: &Path) -> Result<CacheKey, CacheKeyError> {
    let path = data_dir.join(FILE);
    let io = |source| CacheKeyError::Io {
        path: path.clone(),
        source,
    };
    match std::fs::read(&path) {
        Ok(bytes) => return parse(bytes, &path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).expect("the OS random source is available");
    // Written whole under a temporary name, then linked in place: a crash never leaves a
    // short key, and of two hosts starting at once the second reads the first's key.
    // The temporary name is random: a process id repeats (PID 1 in every container), and
    // a crash's leftover must not block the next start.
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix).expect("the OS random source is available");
    let tmp = data_dir.join(format!(".{FILE}.{}.tmp", hex::encode(suffix)));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options
        .open(&tmp)
        .and_then(|mut f| f.write_all(&key).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::hard_link(&tmp, &path));
    let _ = std::fs::remove_file(&tmp);
    match written {
        Ok(()) => Ok(CacheKey::new(key)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            parse(std::fs::read(&path).map_err(io)?, &path)
        }
        Err(e) => Err(io(e)),
    }
}

fn parse(bytes: Vec<u8>, path: &Path) -> Result<CacheKey, CacheKeyError> {
    let key: [u8; 32] = bytes
        .try_into()
        .map_err(|b: Vec<u8>| CacheKeyError::Length {
            path: path.to_path_buf(),
            len: b.len(),
        })?;
    Ok(CacheKey::new(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system's temporary directory, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            let mut suffix = [0u8; 8];
            getrandom::fill(&mut suffix).unwrap();
            let dir = std::env::temp_dir().join(format!("cache-key-{}", hex::encode(suffix)));
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn made_once_private_then_reused_and_a_short_file_is_refused() {
        let dir = TempDir::new();
        let path = dir.0.join(FILE);
        load_or_create(&dir.0).unwrap();
        let made = std::fs::read(&path).unwrap();
        assert_eq!(made.len(), 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
        }
        load_or_create(&dir.0).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), made, "reused, not remade");
        assert_eq!(
            std::fs::read_dir(&dir.0).unwrap().count(),
            1,
            "no temporary file left"
        );

        std::fs::write(&path, [1u8; 31]).unwrap();
        let refused = load_or_create(&dir.0).unwrap_err();
        assert!(matches!(refused, CacheKeyError::Length { len: 31, .. }));
        assert!(refused.to_string().contains("cache.key"), "{refused}");
    }
}
