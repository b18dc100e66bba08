//! The drop-in connectors directory: every `*.wasm` in it is a connector.
//!
//! A scan compares each file's stamp (size, mtime, inode) and content hash with what is
//! loaded; new and changed files are loaded, removed files unloaded. Callers hold an
//! `Arc<LoadedConnector>` for the length of a call, so a swap never disturbs a call in
//! flight: it finishes on the version it started with.
//!
//! A file whose new content does not load (garbage, a half-copied file, a key another
//! file provides) is listed with the reason, and its last good version keeps serving until
//! the file is fixed or removed. A file refused because another file provides its key is
//! tried again when that file goes away.
//!
//! A scan only starts loads: each new or changed file is read, hashed and compiled by a
//! task of its own (the compilation on the runtime's compiling threads), so a heavy
//! component compiling for seconds delays neither the API nor the other files, and a
//! small file next to it is serving long before it. Until its load ends a file is listed
//! as loading ([`Registry::loading`]); of two files with one key, the one whose load ends
//! first serves it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use runtime::{LoadError, LoadedConnector, Runtime, sha256_hex};

/// A file that did not load, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadFailure {
    /// The file name in the connectors directory.
    pub file: String,
    /// Why it was skipped.
    pub reason: String,
}

/// A file being read and compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadingFile {
    /// The file name in the connectors directory.
    pub file: String,
    /// How long its load has been running.
    pub elapsed: Duration,
    /// The key its previous version serves meanwhile, if any.
    pub serving: Option<String>,
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
    /// `None` forces a reload on the next scan.
    stamp: Option<Stamp>,
    sha256: String,
    /// The key this file's last good version provides, if any.
    serving: Option<String>,
    /// Why the file's current content is not what is served.
    failure: Option<Failure>,
}

struct Failure {
    reason: String,
    /// The key another file already provides, when that is the reason.
    duplicate_of: Option<String>,
}

#[derive(Default)]
struct State {
    connectors: BTreeMap<String, Arc<LoadedConnector>>,
    files: HashMap<String, FileState>,
    /// The files whose load is running, and since when.
    loading: BTreeMap<String, Instant>,
}

impl State {
    /// `key` has no owner any more: every file refused because `key` was taken is read
    /// again at the next scan (or later in this one), so it may provide it now.
    fn release(&mut self, key: &str) {
        for f in self.files.values_mut() {
            if f.failure
                .as_ref()
                .is_some_and(|x| x.duplicate_of.as_deref() == Some(key))
            {
                f.stamp = None;
                f.sha256.clear();
            }
        }
    }
}

/// The loaded connectors, by key, kept in step with a directory.
pub struct Registry {
    runtime: Arc<Runtime>,
    dir: PathBuf,
    state: RwLock<State>,
    /// The key of every connector loaded, replaced or unloaded, for [`Registry::subscribe`].
    changes: tokio::sync::broadcast::Sender<String>,
    /// How many loads are running, for [`Registry::settled`].
    running: tokio::sync::watch::Sender<usize>,
}

impl Registry {
    /// A registry of the connectors in `dir`. Nothing is loaded until [`Registry::scan`].
    pub fn new(runtime: Arc<Runtime>, dir: &Path) -> Arc<Self> {
        Arc::new(Registry {
            runtime,
            dir: dir.to_path_buf(),
            state: RwLock::new(State::default()),
            changes: tokio::sync::broadcast::channel(64).0,
            running: tokio::sync::watch::channel(0).0,
        })
    }

    /// The keys of connectors loaded, replaced or unloaded from now on (a receiver that
    /// lags behind is told so, and should then treat every key as changed).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.changes.subscribe()
    }

    fn changed(&self, key: &str) {
        // Nobody listening is fine.
        let _ = self.changes.send(key.to_string());
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
                f.failure.as_ref().map(|failure| LoadFailure {
                    file: file.clone(),
                    reason: failure.reason.clone(),
                })
            })
            .collect();
        out.sort_by(|a, b| a.file.cmp(&b.file));
        out
    }

    /// The files whose load is running, by file name.
    pub fn loading(&self) -> Vec<LoadingFile> {
        let state = self.read();
        state
            .loading
            .iter()
            .map(|(file, since)| LoadingFile {
                file: file.clone(),
                elapsed: since.elapsed(),
                serving: state.files.get(file).and_then(|f| f.serving.clone()),
            })
            .collect()
    }

    /// Waits until no load is running (at once when none is).
    pub async fn settled(&self) {
        let mut running = self.running.subscribe();
        // The sender lives as long as `self`.
        let _ = running.wait_for(|n| *n == 0).await;
    }

    /// Ends the load of `file`, whatever its outcome.
    fn loaded(&self, state: &mut State, file: &str) {
        if state.loading.remove(file).is_some() {
            self.running.send_replace(state.loading.len());
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Brings the loaded set in step with the directory: unloads removed files and starts
    /// a load of each new or changed file not loading already; returns without waiting for
    /// them ([`Registry::settled`] does). A missing directory counts as empty.
    pub fn scan(self: &Arc<Self>) {
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
                    serving: Some(key), ..
                }) = state.files.remove(&file)
                {
                    state.connectors.remove(&key);
                    tracing::info!(file, key, "connector unloaded");
                    self.changed(&key);
                    state.release(&key);
                }
            }
        }

        for (file, stamp) in present {
            {
                let mut state = self.write();
                let unchanged = state
                    .files
                    .get(&file)
                    .is_some_and(|f| f.stamp.as_ref() == Some(&stamp));
                if unchanged || state.loading.contains_key(&file) {
                    continue;
                }
                state.loading.insert(file.clone(), Instant::now());
                self.running.send_replace(state.loading.len());
            }
            tokio::spawn(self.clone().load(file, stamp));
        }
    }

    /// Reads, hashes and (when its content changed) loads `file`, then records the outcome.
    async fn load(self: Arc<Self>, file: String, stamp: Stamp) {
        // Whatever happens to this task, the file does not stay listed as loading.
        let _ending = Ending {
            registry: &self,
            file: &file,
        };
        let path = self.dir.join(&file);
        let read = tokio::task::spawn_blocking(move || {
            std::fs::read(path).map(|bytes| {
                let sha256 = sha256_hex(&bytes);
                (bytes, sha256)
            })
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        let (bytes, sha256) = match read {
            Ok(read) => read,
            Err(e) => {
                self.record(&file, stamp, String::new(), Err(LoadError::Io(e)));
                return;
            }
        };
        {
            let mut state = self.write();
            if let Some(f) = state.files.get_mut(&file).filter(|f| f.sha256 == sha256) {
                f.stamp = Some(stamp);
                self.loaded(&mut state, &file);
                return;
            }
        }
        let loaded = self.runtime.load(&file, &bytes).await;
        self.record(&file, stamp, sha256, loaded);
    }

    fn record(
        &self,
        file: &str,
        stamp: Stamp,
        sha256: String,
        loaded: Result<Arc<LoadedConnector>, LoadError>,
    ) {
        let mut state = self.write();
        self.loaded(&mut state, file);
        let serving = state.files.get(file).and_then(|f| f.serving.clone());
        let mut failure = match loaded {
            Ok(connector) => {
                let key = connector.key().to_string();
                let owner = state
                    .files
                    .iter()
                    .find(|(f, s)| f.as_str() != file && s.serving.as_ref() == Some(&key))
                    .map(|(f, _)| f.clone());
                match owner {
                    Some(other) => Failure {
                        reason: LoadError::DuplicateKey {
                            key: key.clone(),
                            other,
                        }
                        .to_string(),
                        duplicate_of: Some(key),
                    },
                    None => {
                        tracing::info!(
                            file,
                            key,
                            version = connector.contract_version(),
                            "connector loaded"
                        );
                        // The file's previous version goes, whatever key it had.
                        if let Some(old) = serving.as_ref().filter(|old| **old != key) {
                            state.connectors.remove(old);
                            self.changed(old);
                            state.release(old);
                        }
                        state.connectors.insert(key.clone(), connector);
                        self.changed(&key);
                        state.files.insert(
                            file.to_string(),
                            FileState {
                                stamp: Some(stamp),
                                sha256,
                                serving: Some(key),
                                failure: None,
                            },
                        );
                        return;
                    }
                }
            }
            Err(e) => Failure {
                reason: e.to_string(),
                duplicate_of: None,
            },
        };
        if let Some(key) = &serving {
            failure.reason = format!(
                "{} (the previous version of `{key}` keeps serving)",
                failure.reason
            );
        }
        tracing::warn!(file, reason = failure.reason, "connector file skipped");
        state.files.insert(
            file.to_string(),
            FileState {
                stamp: Some(stamp),
                sha256,
                serving,
                failure: Some(failure),
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
                registry.scan();
            }
        })
    }
}

/// Ends a file's load when dropped (its task ended, or panicked).
struct Ending<'a> {
    registry: &'a Registry,
    file: &'a str,
}

impl Drop for Ending<'_> {
    fn drop(&mut self) {
        let mut state = self.registry.write();
        self.registry.loaded(&mut state, self.file);
    }
}
