//! Python guests: componentize-py builds the Python example connector
//! (`connectors/shopify-py`) and connectors made from `templates/python`, and writes the stub
//! bindings their unit tests run against under plain CPython.
//!
//! componentize-py is found at `$COMPONENTIZE_PY` (which `./dev.sh test` sets after installing
//! the pinned version from PyPI), else where `dev.sh` installs it, else on `PATH`.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

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
/// live contract. Built once per process, and kept under `target/python-guests/` by the hash
/// of its inputs, so a run after no change reuses it.
pub fn shopify_example() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = root();
            let app = root.join("connectors/shopify-py");
            let sdk = root.join("guest-sdk/python");
            let wit = root.join("wit");
            let inputs = [
                app.join("app.py"),
                sdk.join("connector_sdk.py"),
                wit.join("connector.wit"),
            ];
            let out = cached("shopify-py", &inputs);
            if !out.exists() {
                let tmp = out.with_extension(format!("{}.tmp", std::process::id()));
                componentize(&wit, &[&app, &sdk], "app", &tmp);
                std::fs::rename(&tmp, &out).expect("move the built component");
            }
            out
        })
        .clone()
}

/// Where a component built from `inputs` is kept: the hash of their bytes and of
/// componentize-py's path names it.
fn cached(name: &str, inputs: &[PathBuf]) -> PathBuf {
    let mut hasher = std::hash::DefaultHasher::new();
    componentize_py().hash(&mut hasher);
    for input in inputs {
        std::fs::read(input)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", input.display()))
            .hash(&mut hasher);
    }
    let dir = root().join("target/python-guests");
    std::fs::create_dir_all(&dir).expect("create target/python-guests");
    dir.join(format!("{name}-{:016x}.wasm", hasher.finish()))
}

/// Writes a connector skeleton made from `templates/python` to `dir`, as
/// `connector-host connectors new KEY --lang python` does: the template's files with
/// `{{name}}` (the element key) and `{{display_name}}` filled in, the helper module `connector_sdk.py` and the
/// contract in `wit/`.
pub fn new_from_template(dir: &Path, key: &str, display_name: &str) {
    fn copy(from: &Path, to: &Path, key: &str, display_name: &str) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &target, key, display_name);
            } else {
                let text = std::fs::read_to_string(entry.path()).unwrap();
                let text = text
                    .replace("{{name}}", key)
                    .replace("{{display_name}}", display_name);
                std::fs::write(target, text).unwrap();
            }
        }
    }
    let root = root();
    copy(&root.join("templates/python"), dir, key, display_name);
    std::fs::copy(
        root.join("guest-sdk/python/connector_sdk.py"),
        dir.join("connector_sdk.py"),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("wit")).unwrap();
    std::fs::copy(
        root.join("wit/connector.wit"),
        dir.join("wit/connector.wit"),
    )
    .unwrap();
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
