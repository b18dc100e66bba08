//! What the host keeps on disk is private to its user: the data directory and the compile
//! cache's directories are 0700, the store (with its WAL) and the cached artifacts 0600.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use tests::seeds::echo_instance;
use tests::{TestHost, create_instance};

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
    for file in ["store.sqlite", "store.sqlite-wal", "authorization"] {
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
