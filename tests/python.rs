//! Python guests: componentize-py builds the Python example connector
//! (`connectors/shopify-py`) once per run, for the tests and the benches, and writes the stub
//! bindings that Python unit tests run against under plain CPython.
//!
//! componentize-py is found at `$COMPONENTIZE_PY` (which `./dev.sh test` sets after installing
//! the pinned version from PyPI), else where `dev.sh` installs it, else on `PATH`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Instant;

use sha2::{Digest, Sha256};

/// The repository's root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The componentize-py program.
pub fn componentize_py() -> PathBuf {
    if let Some(p) = std::env::var_os("COMPONENTIZE_PY") {
        return PathBuf::from(p);
    }
    let installed = root().join("target/tools/componentize-py/bin/componentize-py");
    if installed.exists() {
        return installed;
    }
    PathBuf::from("componentize-py")
}

/// The Python that runs the unit tests: the one componentize-py was installed with (its
/// virtual environment's), else `python3`.
pub fn python() -> PathBuf {
    let beside = componentize_py().with_file_name("python3");
    if beside.exists() {
        beside
    } else {
        PathBuf::from("python3")
    }
}

/// Runs `command`; panics with its output unless it succeeds.
pub fn run(command: &mut Command) -> Output {
    let out = command.output().unwrap_or_else(|e| {
        panic!(
            "cannot run {command:?}: {e} (run ./dev.sh test, which installs componentize-py, \
             or set COMPONENTIZE_PY)"
        )
    });
    assert!(
        out.status.success(),
        "{command:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Writes componentize-py's stub bindings of the contract in `wit` to `out` (which must not
/// exist yet): `wit_world` and `componentize_py_types`, for unit tests under CPython.
pub fn bindings(wit: &Path, out: &Path) {
    run(Command::new(componentize_py())
        .arg("-d")
        .arg(wit)
        .args(["-w", "connector", "bindings"])
        .arg(out));
}

/// Builds the component of the app module `module` found on `python_path` against the
/// contract in `wit`, into `out`.
pub fn componentize(wit: &Path, python_path: &[&Path], module: &str, out: &Path) {
    let mut command = Command::new(componentize_py());
    command
        .arg("-q")
        .arg("-d")
        .arg(wit)
        .args(["-w", "connector", "componentize", module]);
    for p in python_path {
        command.arg("-p").arg(p);
    }
    run(command.arg("-o").arg(out));
}

/// The Shopify example (`connectors/shopify-py` with `guest-sdk/python`), built against the
/// live contract: built at the first call of the run, and kept under
/// `target/tools/componentize-py/built/` by the digest of its inputs, so a run whose sources
/// did not change builds nothing.
pub fn shopify_example() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = root();
        let mut digest = Sha256::new();
        for input in [
            "connectors/shopify-py/app.py",
            "guest-sdk/python/connector_sdk.py",
            "wit/connector.wit",
        ] {
            digest.update(input.as_bytes());
            digest.update(std::fs::read(root.join(input)).unwrap());
        }
        digest.update(componentize_py().as_os_str().as_encoded_bytes());
        let hex: String = digest.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let built = root.join("target/tools/componentize-py/built");
        std::fs::create_dir_all(&built).unwrap();
        let out = built.join(format!("shopify-{hex}.wasm"));
        if !out.exists() {
            let started = Instant::now();
            let tmp = out.with_extension(format!("{}.tmp", std::process::id()));
            componentize(
                &root.join("wit"),
                &[
                    &root.join("connectors/shopify-py"),
                    &root.join("guest-sdk/python"),
                ],
                "app",
                &tmp,
            );
            std::fs::rename(&tmp, &out).unwrap();
            eprintln!(
                "python_connector: built {} in {:.1} s",
                out.display(),
                started.elapsed().as_secs_f64()
            );
        }
        out
    })
}

/// Runs the unit tests in `dir` (`python3 -m unittest discover -s dir`) with `path` on
/// `PYTHONPATH`; panics with their output unless they pass. Returns unittest's report.
pub fn unit_tests(dir: &Path, path: &[&Path]) -> String {
    let pythonpath = std::env::join_paths(path).expect("paths without separators");
    let out = run(Command::new(python())
        .args(["-m", "unittest", "discover", "-s"])
        .arg(dir)
        .env("PYTHONPATH", pythonpath)
        .env("PYTHONDONTWRITEBYTECODE", "1"));
    String::from_utf8_lossy(&out.stderr).into_owned()
}
