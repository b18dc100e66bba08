//! The crate graph enforces the architecture's boundaries: the wasm runtime and the date
//! patterns depend on no crate of the host's, and the runtime on no HTTP or SQL crate.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// The workspace's resolved graph, as `cargo metadata` gives it.
fn metadata() -> Value {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--manifest-path",
        ])
        .arg(&manifest)
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

/// The names of every package `root` depends on, directly or not.
fn closure(meta: &Value, root: &str) -> BTreeSet<String> {
    let names: HashMap<&str, &str> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let deps: HashMap<&str, Vec<&str>> = meta["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let ds = n["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_str().unwrap())
                .collect();
            (n["id"].as_str().unwrap(), ds)
        })
        .collect();
    let start = names
        .iter()
        .find(|(id, name)| **name == root && meta_is_member(meta, id))
        .map(|(id, _)| *id)
        .unwrap_or_else(|| panic!("no workspace crate `{root}`"));
    let mut seen = BTreeSet::new();
    let mut todo = vec![start];
    while let Some(id) = todo.pop() {
        for d in deps.get(id).into_iter().flatten() {
            if seen.insert(names[d].to_string()) {
                todo.push(d);
            }
        }
    }
    seen
}

fn meta_is_member(meta: &Value, id: &str) -> bool {
    meta["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m.as_str() == Some(id))
}

/// The names of the workspace's own crates.
fn members(meta: &Value) -> BTreeSet<String> {
    meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| meta_is_member(meta, p["id"].as_str().unwrap()))
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_runtime_and_dates_crates_depend_on_no_host_http_or_sql_crate() {
    let meta = metadata();
    let members = members(&meta);
    for crate_name in ["host", "store", "runtime", "dates"] {
        assert!(members.contains(crate_name), "{members:?}");
    }

    let runtime = closure(&meta, "runtime");
    assert!(runtime.contains("wasmtime"), "{runtime:?}");
    let own: Vec<_> = runtime.intersection(&members).collect();
    assert!(own.is_empty(), "the runtime depends on {own:?}");
    for banned in [
        "hyper",
        "http",
        "rusqlite",
        "libsqlite3-sys",
        "tokio-postgres",
    ] {
        assert!(
            !runtime.contains(banned),
            "the runtime depends on `{banned}`"
        );
    }

    let dates = closure(&meta, "dates");
    assert!(dates.contains("jiff"), "{dates:?}");
    let own: Vec<_> = dates.intersection(&members).collect();
    assert!(own.is_empty(), "the dates crate depends on {own:?}");

    // And the host does use both, so the boundary is the one the code goes through.
    let host = closure(&meta, "host");
    assert!(
        host.contains("runtime") && host.contains("dates"),
        "{host:?}"
    );
}
