//! The compiled-component cache: precompiled artifacts keyed by the source file's sha256
//! and the engine's compatibility hash, in a directory the host owns, each authenticated
//! by a MAC keyed with a secret the host keeps beside it.
//!
//! Invariant: only artifacts this module wrote are ever deserialized; a file from the
//! connectors directory is always compiled, never deserialized. A cached file is
//! `HMAC-SHA256(key, domain, name, artifact) ‖ artifact`: one whose MAC does not verify
//! (changed bytes, no MAC, another connector's artifact renamed, another key's) is deleted
//! and recompiled, and its bytes are never handed to `deserialize`.

use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The length of the MAC that starts each cached file.
const MAC_LEN: usize = 32;

/// What the MAC covers first, so that it is never valid for anything but a cached artifact.
const DOMAIN: &[u8] = b"connector-host compiled component v1\0";

/// The secret the cache's MACs are keyed with: 32 random bytes, never printed.
#[derive(Clone)]
pub struct CacheKey([u8; 32]);

impl CacheKey {
    /// A key of these bytes.
    pub fn new(bytes: [u8; 32]) -> Self {
        CacheKey(bytes)
    }
}

impl std::fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CacheKey(..)")
    }
}

/// A directory of precompiled components.
pub struct CompileCache {
    dir: Dir,
    engine_hash: String,
    key: CacheKey,
    /// How many cached artifacts were deserialized (for tests: a rejected one never is).
    deserialized: AtomicUsize,
}

impl CompileCache {
    /// Opens (creating it if needed) the cache directory at `path`, whose artifacts are
    /// authenticated with `key`.
    pub fn open(engine: &Engine, path: &Path, key: CacheKey) -> std::io::Result<Self> {
        std::fs::create_dir_all(path)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
        }
        let dir = Dir::open_ambient_dir(path, ambient_authority())?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        env!("CARGO_PKG_VERSION").hash(&mut hasher);
        // A core module's artifact is of the component made from it: a new way of making
        // it must not reuse artifacts made the old way.
        super::componentize::VERSION.hash(&mut hasher);
        Ok(CompileCache {
            dir,
            engine_hash: format!("{:016x}", hasher.finish()),
            key,
            deserialized: AtomicUsize::new(0),
        })
    }

    /// Writes `bytes` to a new file `name` readable by this user alone (0600 on Unix).
    fn write_private(&self, name: &str, parts: &[&[u8]]) -> std::io::Result<()> {
        use std::io::Write as _;
        let mut options = cap_std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        cap_std::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = self.dir.open_with(name, &options)?;
        for part in parts {
            file.write_all(part)?;
        }
        Ok(())
    }

    fn name(&self, sha256: &str) -> String {
        format!("{sha256}-{}.cwasm", self.engine_hash)
    }

    /// The MAC of `artifact` cached as `name`: the name is covered, so a valid artifact
    /// of one connector is not valid under another's name.
    fn mac(&self, name: &str, artifact: &[u8]) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key.0).expect("HMAC takes a key of any length");
        mac.update(DOMAIN);
        mac.update(&(name.len() as u64).to_le_bytes());
        mac.update(name.as_bytes());
        mac.update(artifact);
        mac
    }

    /// The artifact in a cached file when its MAC verifies (in constant time).
    fn verified<'f>(&self, name: &str, file: &'f [u8]) -> Option<&'f [u8]> {
        let (tag, artifact) = file.split_at_checked(MAC_LEN)?;
        self.mac(name, artifact).verify_slice(tag).ok()?;
        Some(artifact)
    }

    /// The component for `bytes` (whose sha256 is `sha256`): from the cache when present
    /// and authentic, otherwise compiled and written to the cache. A cache that cannot be
    /// written only costs a recompilation next time. (The runtime calls the two halves
    /// itself, to make the bytes to compile only when nothing is cached.)
    #[cfg(test)]
    pub fn load(
        &self,
        engine: &Engine,
        sha256: &str,
        bytes: &[u8],
    ) -> wasmtime::Result<(Component, bool)> {
        match self.cached(engine, sha256) {
            Some(component) => Ok((component, true)),
            None => self.compile(engine, sha256, bytes).map(|c| (c, false)),
        }
    }

    /// The cached component of the source whose sha256 is `sha256`, when present and
    /// authentic; an artifact that fails its check is deleted.
    pub fn cached(&self, engine: &Engine, sha256: &str) -> Option<Component> {
        let name = self.name(sha256);
        if let Ok(file) = self.dir.read(&name) {
            match self.verified(&name, &file) {
                Some(artifact) => {
                    self.deserialized.fetch_add(1, Ordering::Relaxed);
                    // SAFETY: the artifact's MAC, keyed with the host's secret and covering
                    // its name, verified: `precompile_component` below wrote it, for these
                    // source bytes and an engine with this compatibility hash.
                    #[allow(unsafe_code)]
                    match unsafe { Component::deserialize(engine, artifact) } {
                        Ok(component) => return Some(component),
                        Err(e) => {
                            tracing::warn!(artifact = %name, error = %e, "discarding unreadable cached artifact")
                        }
                    }
                }
                None => {
                    tracing::warn!(
                        artifact = %name,
                        "cached artifact fails its MAC check (changed or not written by this host); deleting it and recompiling"
                    );
                    let _ = self.dir.remove_file(&name);
                }
            }
        }
        None
    }

    /// Compiles `bytes` (whose sha256 is `sha256`, or that of the file they were made
    /// from) and writes the artifact to the cache. A cache that cannot be written only
    /// costs a recompilation next time.
    pub fn compile(
        &self,
        engine: &Engine,
        sha256: &str,
        bytes: &[u8],
    ) -> wasmtime::Result<Component> {
        let name = self.name(sha256);
        let artifact = engine.precompile_component(bytes)?;
        let mac = self.mac(&name, &artifact).finalize().into_bytes();
        let tmp = format!("{name}.tmp{}", std::process::id());
        if self.write_private(&tmp, &[&mac, &artifact]).is_ok() {
            if self.dir.rename(&tmp, &self.dir, &name).is_err() {
                let _ = self.dir.remove_file(&tmp);
            }
        } else {
            let _ = self.dir.remove_file(&tmp);
        }
        // SAFETY: these bytes were produced by this engine a moment ago.
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize(engine, &artifact)? };
        Ok(component)
    }
}

/// Hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system's temporary directory, removed on drop.
    struct TempDir(std::path::PathBuf);

    impl TempDir {
        fn new(what: &str) -> Self {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            let dir = std::env::temp_dir().join(format!(
                "runtime-cache-{what}-{}-{nanos}",
                std::process::id()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn engine() -> Engine {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        Engine::new(&config).unwrap()
    }

    /// A component that exports one core module under `name`: components with different
    /// names compile to different artifacts, and a loaded one tells which it is.
    fn component(name: &str) -> Vec<u8> {
        let mut component = wasm_encoder::Component::new();
        component.section(&wasm_encoder::ModuleSection(&wasm_encoder::Module::new()));
        let mut exports = wasm_encoder::ComponentExportSection::new();
        exports.export(name, wasm_encoder::ComponentExportKind::Module, 0, None);
        component.section(&exports);
        component.finish()
    }

    fn exports(engine: &Engine, c: &Component) -> Vec<String> {
        c.component_type()
            .exports(engine)
            .map(|(n, _)| n.to_string())
            .collect()
    }

    struct Fixture {
        engine: Engine,
        dir: TempDir,
        cache: CompileCache,
        one: Vec<u8>,
        one_sha: String,
    }

    impl Fixture {
        fn new(what: &str) -> Self {
            let engine = engine();
            let dir = TempDir::new(what);
            let cache = CompileCache::open(&engine, &dir.0, CacheKey::new([7; 32])).unwrap();
            let one = component("one");
            let one_sha = sha256_hex(&one);
            Fixture {
                engine,
                dir,
                cache,
                one,
                one_sha,
            }
        }

        fn file(&self, sha256: &str) -> std::path::PathBuf {
            self.dir.0.join(self.cache.name(sha256))
        }

        /// Loads `one`: whether from the cache, after checking it is `one`.
        fn load_one(&self) -> bool {
            let (c, cached) = self
                .cache
                .load(&self.engine, &self.one_sha, &self.one)
                .unwrap();
            assert_eq!(exports(&self.engine, &c), ["one"]);
            cached
        }

        fn deserialized(&self) -> usize {
            self.cache.deserialized.load(Ordering::Relaxed)
        }
    }

    #[test]
    fn an_artifact_is_cached_with_its_mac_and_reused() {
        let f = Fixture::new("reuse");
        assert!(!f.load_one(), "the first load compiles");
        let file = std::fs::read(f.file(&f.one_sha)).unwrap();
        let (tag, artifact) = file.split_at(MAC_LEN);
        let name = f.cache.name(&f.one_sha);
        assert_eq!(
            tag,
            &f.cache.mac(&name, artifact).finalize().into_bytes()[..]
        );
        assert!(f.load_one(), "the second load takes the cached artifact");
        assert_eq!(f.deserialized(), 1);
    }

    #[test]
    fn a_tampered_swapped_unsigned_or_foreign_keyed_artifact_is_recompiled_never_deserialized() {
        let f = Fixture::new("tamper");
        assert!(!f.load_one());
        let path = f.file(&f.one_sha);
        let valid = std::fs::read(&path).unwrap();

        // Another component's valid artifact, under its own name.
        let two = component("two");
        let two_sha = sha256_hex(&two);
        f.cache.load(&f.engine, &two_sha, &two).unwrap();
        let two_file = std::fs::read(f.file(&two_sha)).unwrap();

        let mut flipped = valid.clone();
        let middle = MAC_LEN + (valid.len() - MAC_LEN) / 2;
        flipped[middle] ^= 0xff;
        let mut bad_tag = valid.clone();
        bad_tag[0] ^= 1;
        let unsigned = valid[MAC_LEN..].to_vec();
        let other_key = {
            let other = CompileCache::open(&f.engine, &f.dir.0, CacheKey::new([8; 32])).unwrap();
            let name = other.name(&f.one_sha);
            let artifact = &valid[MAC_LEN..];
            let mut file = other.mac(&name, artifact).finalize().into_bytes().to_vec();
            file.extend_from_slice(artifact);
            file
        };
        for (what, bytes) in [
            ("a flipped artifact byte", flipped),
            ("a flipped MAC byte", bad_tag),
            ("another component's artifact", two_file),
            ("an artifact without a MAC", unsigned),
            ("a MAC of another key", other_key),
            ("an empty file", Vec::new()),
        ] {
            std::fs::write(&path, &bytes).unwrap();
            assert!(
                !f.load_one(),
                "{what}: recompiled, not taken from the cache"
            );
            assert_eq!(f.deserialized(), 0, "{what}: never deserialized");
            assert_eq!(
                std::fs::read(&path).unwrap(),
                valid,
                "{what}: replaced by the valid artifact"
            );
        }
        assert!(f.load_one(), "the rewritten artifact is used");
        assert_eq!(f.deserialized(), 1);
    }
}
