//! What the host keeps on disk is private to its user: the data directory and the compile
//! cache's directories are 0700, the store (with its WAL), the cache's key and the cached
//! artifacts 0600. A cached artifact changed on disk, or swapped for another connector's,
//! fails its MAC and is recompiled, never loaded.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tests::seeds::echo_instance;
use tests::{TestHost, create_instance, get};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn the_data_directory_store_and_compile_cache_are_private_to_the_hosts_user() {
    let host = TestHost::start(&["echo"]);
    // A write, so the store's WAL exists.
    create_instance(&host, &echo_instance("http://127.0.0.1:9/")).await;

    let data = host.data.clone();
    assert_eq!(mode(&data), 0o700, "{}", data.display());
    for file in [
        "store.sqlite",
        "store.sqlite-wal",
        "authorization",
        "cache.key",
    ] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
    let components = data.join("cache").join("components");
    assert_eq!(mode(&components), 0o700);
    let artifacts: Vec<_> = std::fs::read_dir(&components)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(!artifacts.is_empty(), "the echo guest's artifact is cached");
    for a in artifacts {
        assert_eq!(mode(&a), 0o600, "{}", a.display());
    }
}

/// The cached artifact of a guest: `<sha256 of its file>-<engine hash>.cwasm`.
fn artifact_of(data: &Path, guest: &str) -> PathBuf {
    let sha256 = runtime::sha256_hex(&std::fs::read(tests::guest(guest)).unwrap());
    let components = data.join("cache").join("components");
    let found: Vec<PathBuf> = std::fs::read_dir(&components)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(&sha256) && name.ends_with(".cwasm")
        })
        .collect();
    assert_eq!(found.len(), 1, "one artifact of {guest}: {found:?}");
    found.into_iter().next().unwrap()
}

/// `GET /elements/{key}`: its JSON, after checking it is that connector.
async fn element(host: &TestHost, key: &str) -> serde_json::Value {
    let answer = get(&host.url(&format!("/elements/{key}"))).await;
    assert_eq!(
        answer.status,
        200,
        "{key}: {}",
        String::from_utf8_lossy(&answer.body)
    );
    let element = answer.json();
    assert_eq!(element["key"], key);
    element
}

#[tokio::test]
async fn a_tampered_or_swapped_cached_artifact_is_recompiled_not_loaded() {
    let host = TestHost::start(&["echo", "signer"]);
    assert_eq!(element(&host, "echo").await["fromCache"], false);
    let (connectors, data, dirs) = host.kill();
    let key = std::fs::read(data.join("cache.key")).unwrap();
    assert_eq!(key.len(), 32);
    let echo = artifact_of(&data, "echo");
    let valid = std::fs::read(&echo).unwrap();
    let signers = std::fs::read(artifact_of(&data, "signer")).unwrap();

    let mut flipped = valid.clone();
    let middle = valid.len() / 2;
    flipped[middle] ^= 0xff;
    for (what, bytes) in [
        ("a byte flipped", flipped),
        ("the signer's valid artifact", signers),
    ] {
        std::fs::write(&echo, &bytes).unwrap();
        let mut host = TestHost::start_in(&connectors, &data);
        let loaded = element(&host, "echo").await;
        assert_eq!(
            loaded["fromCache"], false,
            "{what}: echo is recompiled, not loaded from the cache"
        );
        assert_eq!(
            element(&host, "signer").await["fromCache"],
            true,
            "{what}: the signer's untouched artifact is used"
        );
        assert!(host.is_running(), "{what}: the host runs");
        assert_eq!(
            std::fs::read(&echo).unwrap(),
            valid,
            "{what}: the artifact is rewritten valid"
        );
        host.kill();
    }

    // The key is reused, so the rewritten artifact verifies and is used.
    let mut host = TestHost::start_in(&connectors, &data);
    host.adopt(dirs);
    assert_eq!(element(&host, "echo").await["fromCache"], true);
    assert_eq!(std::fs::read(data.join("cache.key")).unwrap(), key);
}
