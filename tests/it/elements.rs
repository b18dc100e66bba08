//! `GET /elements`: the bundled connectors are listed with their hubs and info.

use std::time::Duration;

use tests::{TestHost, eventually, get};

#[tokio::test]
async fn bundled_connectors_are_listed_with_their_hubs() {
    let host = TestHost::start(&["ecwid", "pardot", "infusionsoftrest"]);
    let list = get(&host.url("/elements")).await;
    assert_eq!(list.status, 200);
    let list = list.json();
    let hub = |key: &str| {
        list["elements"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["key"] == key)
            .map(|e| e["hub"].as_str().unwrap().to_string())
    };
    assert_eq!(hub("ecwid").as_deref(), Some("ecommerce"));
    assert_eq!(hub("pardot").as_deref(), Some("marketing"));
    assert_eq!(hub("infusionsoftrest").as_deref(), Some("crm"));
    assert_eq!(list["failures"], serde_json::json!([]));

    let ecwid = get(&host.url("/elements/ecwid")).await;
    assert_eq!(ecwid.status, 200);
    let ecwid = ecwid.json();
    assert_eq!(ecwid["instanceFinder"], "ecwid.store.id|storeId");
    assert_eq!(ecwid["contractVersion"], "0.2.0");
    assert!(
        ecwid["modes"]
            .as_array()
            .unwrap()
            .contains(&"webhooks".into())
    );
    let secret = ecwid["configuration"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key"] == "ecwid.order.key")
        .unwrap();
    assert_eq!(secret["secret"], true);

    let pardot = get(&host.url("/elements/pardot")).await.json();
    let names: Vec<&str> = pardot["defaultPollResources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["contacts", "leads"]);

    let missing = get(&host.url("/elements/nope")).await;
    assert_eq!(missing.status, 404);
    assert!(missing.json()["message"].as_str().unwrap().contains("nope"));
}

#[tokio::test]
async fn a_restart_reuses_the_compiled_cache() {
    let dirs = tempfile::tempdir().unwrap();
    let (connectors, data) = (dirs.path().join("c"), dirs.path().join("d"));
    std::fs::create_dir_all(&connectors).unwrap();
    std::fs::copy(tests::guest("ecwid"), connectors.join("ecwid.wasm")).unwrap();

    let host = TestHost::start_in(&connectors, &data);
    let first = get(&host.url("/elements/ecwid")).await.json();
    assert_eq!(first["fromCache"], false, "the first start compiles");
    drop(host);

    let again = TestHost::start_in(&connectors, &data);
    let second = eventually(Duration::from_secs(5), "ecwid listed", || async {
        let a = get(&again.url("/elements/ecwid")).await;
        (a.status == 200).then(|| a.json())
    })
    .await;
    assert_eq!(
        second["fromCache"], true,
        "the restart loads the cached artifact"
    );
    assert_eq!(second["sha256"], first["sha256"]);
}
