//! The drop-in connectors directory: every `*.wasm` in it is a connector.
//!
//! A scan compares each file's stamp (size, mtime, inode) and content hash with what is
//! loaded; new and changed files are loaded, removed files unloaded. Callers hold an
//! `Arc<LoadedConnector>` for the length of a call, so a swap never disturbs a call in
//! flight: it finishes on the version it started with.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use crate::runtime::{LoadError, LoadedConnector, Runtime, sha256_hex};

/// A file that did not load, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadFailure {
    /// The file name in the connectors directory.
    pub file: String,
    /// Why it was skipped.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(meta);
        #[cfg(not(unix))]
        let inode = 0;
        Stamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode,
        }
    }
}

struct FileState {
    stamp: Stamp,
    sha256: String,
    outcome: Result<String, String>,
}

#[derive(Default)]
struct State {
    connectors: BTreeMap<String, Arc<LoadedConnector>>,
    files: HashMap<String, FileState>,
}

/// The loaded connectors, by key, kept in step with a directory.
pub struct Registry {
    runtime: Arc<Runtime>,
    dir: PathBuf,
    state: RwLock<State>,
}

impl Registry {
    /// A registry of the connectors in `dir`. Nothing is loaded until [`Registry::scan`].
    pub fn new(runtime: Arc<Runtime>, dir: &Path) -> Arc<Self> {
        Arc::new(Registry {
            runtime,
            dir: dir.to_path_buf(),
            state: RwLock::new(State::default()),
        })
    }

    /// The connector with this key.
    pub fn get(&self, key: &str) -> Option<Arc<LoadedConnector>> {
        self.read().connectors.get(key).cloned()
    }

    /// All loaded connectors, by key.
    pub fn connectors(&self) -> Vec<Arc<LoadedConnector>> {
        self.read().connectors.values().cloned().collect()
    }

    /// The files that failed to load, by file name.
    pub fn failures(&self) -> Vec<LoadFailure> {
        let state = self.read();
        let mut out: Vec<LoadFailure> = state
            .files
            .iter()
            .filter_map(|(file, f)| {
                f.outcome.as_ref().err().map(|reason| LoadFailure {
                    file: file.clone(),
                    reason: reason.clone(),
                })
            })
            .collect();
        out.sort_by(|a, b| a.file.cmp(&b.file));
        out
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Brings the loaded set in step with the directory. A missing directory counts as empty.
    pub async fn scan(&self) {
        let mut present: Vec<(String, Stamp)> = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if !name.ends_with(".wasm") {
                    continue;
                }
                if let Some(meta) = entry.metadata().ok().filter(|m| m.is_file()) {
                    present.push((name, Stamp::of(&meta)));
                }
            }
        }
        present.sort_by(|a, b| a.0.cmp(&b.0));

        // Unload removed files.
        {
            let mut state = self.write();
            let gone: Vec<String> = state
                .files
                .keys()
                .filter(|f| !present.iter().any(|(p, _)| p == *f))
                .cloned()
                .collect();
            for file in gone {
                if let Some(FileState {
                    outcome: Ok(key), ..
                }) = state.files.remove(&file)
                {
                    state.connectors.remove(&key);
                    tracing::info!(file, key, "connector unloaded");
                }
            }
        }

        for (file, stamp) in present {
            let unchanged = self
                .read()
                .files
                .get(&file)
                .is_some_and(|f| f.stamp == stamp);
            if unchanged {
                continue;
            }
            let bytes = match std::fs::read(self.dir.join(&file)) {
                Ok(b) => b,
                Err(e) => {
                    self.record(&file, stamp, String::new(), Err(LoadError::Io(e)));
                    continue;
                }
            };
            let sha256 = sha256_hex(&bytes);
            {
                let mut state = self.write();
                if let Some(f) = state.files.get_mut(&file).filter(|f| f.sha256 == sha256) {
                    f.stamp = stamp;
                    continue;
                }
            }
            let loaded = self.runtime.load(&file, &bytes).await;
            self.record(&file, stamp, sha256, loaded);
        }
    }

    fn record(
        &self,
        file: &str,
        stamp: Stamp,
        sha256: String,
        loaded: Result<Arc<LoadedConnector>, LoadError>,
    ) {
        let mut state = self.write();
        // Whatever this file provided before goes away first.
        if let Some(FileState {
            outcome: Ok(old), ..
        }) = state.files.get(file)
        {
            let old = old.clone();
            state.connectors.remove(&old);
        }
        let outcome = match loaded {
            Ok(connector) => {
                let key = connector.key().to_string();
                let owner = state
                    .files
                    .iter()
                    .find(|(f, s)| f.as_str() != file && s.outcome.as_ref() == Ok(&key))
                    .map(|(f, _)| f.clone());
                match owner {
                    Some(other) => Err(LoadError::DuplicateKey { key, other }.to_string()),
                    None => {
                        tracing::info!(
                            file,
                            key,
                            version = connector.contract_version(),
                            "connector loaded"
                        );
                        state.connectors.insert(key.clone(), connector);
                        Ok(key)
                    }
                }
            }
            Err(e) => Err(e.to_string()),
        };
        if let Err(reason) = &outcome {
            tracing::warn!(file, reason, "connector file skipped");
        }
        state.files.insert(
            file.to_string(),
            FileState {
                stamp,
                sha256,
                outcome,
            },
        );
    }

    /// Rescans the directory every `interval` until the registry is dropped.
    pub fn watch(self: &Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let Some(registry) = weak.upgrade() else {
                    break;
                };
                registry.scan().await;
            }
        })
    }
}
