//! JavaScript guests: componentize-js builds the JavaScript example connector
//! (`connectors/github-js`) once per run, for the tests and the benches.
//!
//! componentize-js comes from `target/tools/js` (`./dev.sh test` installs the pinned
//! version there with npm), or from `COMPONENTIZE_JS_HOME`. The component (about 12 MB) is
//! kept under `target/tools/js/built/` by the digest of its inputs, so a run whose sources
//! did not change builds nothing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use sha2::{Digest, Sha256};

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The example's folder.
pub fn example() -> PathBuf {
    repo().join("connectors/github-js")
}

/// The folder holding `node_modules/@bytecodealliance/componentize-js`.
pub fn tools() -> PathBuf {
    let dir = std::env::var_os("COMPONENTIZE_JS_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/tools/js"));
    assert!(
        dir.join("node_modules/@bytecodealliance/componentize-js/package.json")
            .exists(),
        "componentize-js is not installed in {}: run `./dev.sh test`, which installs the pinned \
         version there with npm (or set COMPONENTIZE_JS_HOME to a folder whose node_modules has it)",
        dir.display()
    );
    dir
}

/// The built component: built at the first call of the run, unless a build of the same
/// inputs is already kept.
pub fn component() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let tools = tools();
        let root = repo();
        let mut digest = Sha256::new();
        for input in [
            "connectors/github-js/main.js",
            "connectors/github-js/connector.js",
            "connectors/github-js/build.mjs",
            "connectors/github-js/package.json",
            "guest-sdk/js/connector-sdk.js",
            "guest-sdk/js/tools/package-lock.json",
            "wit/connector.wit",
        ] {
            digest.update(input.as_bytes());
            digest.update(std::fs::read(root.join(input)).unwrap());
        }
        let built = tools.join("built");
        std::fs::create_dir_all(&built).unwrap();
        let out = built.join(format!("github-{}.wasm", &to_hex(&digest.finalize())[..16]));
        if !out.exists() {
            let started = Instant::now();
            let run = Command::new("node")
                .arg("build.mjs")
                .arg(&out)
                .current_dir(example())
                .env("COMPONENTIZE_JS_HOME", &tools)
                .output()
                .expect("node (20 or later) is needed to build the JavaScript connector");
            assert!(
                run.status.success(),
                "npm run build failed:\n{}{}",
                String::from_utf8_lossy(&run.stdout),
                String::from_utf8_lossy(&run.stderr)
            );
            eprintln!(
                "js_connector: built {} in {:.1} s",
                out.display(),
                started.elapsed().as_secs_f64()
            );
        }
        out
    })
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
