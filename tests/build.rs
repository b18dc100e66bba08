//! Builds the WebAssembly guests the tests load (the three bundled connectors and the test
//! guests: hostile, echo v1 and v2, signer, future contract) and tells the tests where they are
//! through `GUESTS_DIR`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Guests built with the SDK alone: core modules the host turns into components that
/// import only `logging`.
const PURE: &str = "wasm32-unknown-unknown";
/// Guests that use std's I/O (to prove the sandbox) or are plain wasip2 components.
const WASI: &str = "wasm32-wasip2";
const GUESTS: &[(&str, &str)] = &[
    ("ecwid", PURE),
    ("pardot", PURE),
    ("infusionsoftrest", PURE),
    ("echo", PURE),
    ("signer", PURE),
    ("hostile", WASI),
    ("future", WASI),
];

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest.parent().unwrap().to_path_buf();
    for dir in [
        "wit",
        "guest-sdk",
        "connectors",
        "tests/guests",
        "Cargo.toml",
        ".cargo/config.toml",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    ensure_target(PURE);
    ensure_target(WASI);
    let target_dir = root.join("target").join("guests");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("guests");
    std::fs::create_dir_all(&out).unwrap();

    for target in [PURE, WASI] {
        let mut args: Vec<&str> = Vec::new();
        for (g, _) in GUESTS.iter().filter(|(_, t)| *t == target) {
            args.extend(["-p", g]);
        }
        cargo_build(&root, &target_dir, target, &args);
    }
    for (g, target) in GUESTS {
        copy(&target_dir, target, g, &out.join(format!("{g}.wasm")));
    }
    cargo_build(
        &root,
        &target_dir,
        PURE,
        &["-p", "echo", "--features", "echo/v2"],
    );
    copy(&target_dir, PURE, "echo", &out.join("echo-v2.wasm"));
    // Leave the v1 build in place so the next run does not rebuild both.
    println!("cargo:rustc-env=GUESTS_DIR={}", out.display());
}

fn ensure_target(target: &str) {
    let libdir = Command::new("rustc")
        .args(["--print", "target-libdir", "--target", target])
        .output()
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim().to_string()));
    if libdir.is_some_and(|d| d.exists()) {
        return;
    }
    let status = Command::new("rustup")
        .args(["target", "add", target])
        .status()
        .expect("rustup is needed to install the wasm targets");
    assert!(status.success(), "rustup target add {target} failed");
}

fn cargo_build(root: &Path, target_dir: &Path, target: &str, args: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args([
            "build",
            "--target",
            target,
            "--profile",
            "wasm",
            "--target-dir",
        ])
        .arg(target_dir)
        .args(args);
    // Not the outer build's settings; nor its clippy wrapper (`./dev.sh test`), which lints
    // the guests' crates in the outer build already.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "RUSTC_WORKSPACE_WRAPPER",
        "CLIPPY_ARGS",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("cannot run cargo for the wasm guests");
    assert!(status.success(), "building the wasm guests failed");
}

fn copy(target_dir: &Path, target: &str, crate_name: &str, to: &Path) {
    let from = target_dir
        .join(target)
        .join("wasm")
        .join(format!("{}.wasm", crate_name.replace('-', "_")));
    std::fs::copy(&from, to).unwrap_or_else(|e| panic!("cannot copy {}: {e}", from.display()));
}
