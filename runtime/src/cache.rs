//! The compiled-component cache: precompiled artifacts keyed by the source file's sha256
//! and the engine's compatibility hash, in a directory the host owns.
//!
//! Invariant: only artifacts this module wrote are ever deserialized; a file from the
//! connectors directory is always compiled, never deserialized.

use std::hash::{Hash, Hasher};
use std::path::Path;

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// A directory of precompiled components.
pub struct CompileCache {
    dir: Dir,
    engine_hash: String,
}

impl CompileCache {
    /// Opens (creating it if needed) the cache directory at `path`.
    pub fn open(engine: &Engine, path: &Path) -> std::io::Result<Self> {
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
        })
    }

    /// Writes `bytes` to a new file `name` readable by this user alone (0600 on Unix).
    fn write_private(&self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write as _;
        let mut options = cap_std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        cap_std::fs::OpenOptionsExt::mode(&mut options, 0o600);
        self.dir.open_with(name, &options)?.write_all(bytes)
    }

    fn name(&self, sha256: &str) -> String {
        format!("{sha256}-{}.cwasm", self.engine_hash)
    }

    /// The component for `bytes` (whose sha256 is `sha256`): from the cache when present,
    /// otherwise compiled and written to the cache. A cache that cannot be written only
    /// costs a recompilation next time.
    pub fn load(
        &self,
        engine: &Engine,
        sha256: &str,
        bytes: &[u8],
    ) -> wasmtime::Result<(Component, bool)> {
        let name = self.name(sha256);
        if let Ok(artifact) = self.dir.read(&name) {
            // SAFETY: the artifact was written by `precompile_component` below into a
            // directory only this host writes, under a name that carries the engine's
            // compatibility hash.
            #[allow(unsafe_code)]
            match unsafe { Component::deserialize(engine, &artifact) } {
                Ok(component) => return Ok((component, true)),
                Err(e) => {
                    tracing::warn!(artifact = %name, error = %e, "discarding unreadable cached artifact")
                }
            }
        }
        let artifact = engine.precompile_component(bytes)?;
        let tmp = format!("{name}.tmp{}", std::process::id());
        if self.write_private(&tmp, &artifact).is_ok()
            && self.dir.rename(&tmp, &self.dir, &name).is_err()
        {
            let _ = self.dir.remove_file(&tmp);
        }
        // SAFETY: these bytes were produced by this engine a moment ago.
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize(engine, &artifact)? };
        Ok((component, false))
    }
}

/// Hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
