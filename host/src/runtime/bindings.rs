//! Generated bindings, one module per contract version the host accepts.
//!
//! A released WIT version is frozen; when the contract grows, the old version's bindings stay
//! here next to the new ones and calls are converted to the latest types (the pattern of Zed's
//! extension host). Today 0.1 is the only version.

/// Bindings of `openconnectors:connector@0.1.x`.
#[allow(missing_docs, clippy::all)]
pub mod v0_1 {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "connector",
        exports: { default: async },
    });
}

/// The contract versions this host accepts, as `major.minor` semver tracks.
pub const SUPPORTED: &[&str] = &["0.1"];

/// The interface every connector exports, without version.
pub const API_INTERFACE: &str = "openconnectors:connector/api";

/// Finds the contract version a component was built for, from the name of the `api`
/// interface it exports (e.g. `openconnectors:connector/api@0.1.0` gives `0.1.0`).
pub fn exported_version<'a>(export_names: impl IntoIterator<Item = &'a str>) -> Option<String> {
    export_names.into_iter().find_map(|name| {
        let rest = name.strip_prefix(API_INTERFACE)?;
        Some(rest.strip_prefix('@').unwrap_or("").to_string())
    })
}

/// True when `version` is on a supported semver track (`0.1.z` for `0.1`).
pub fn is_supported(version: &str) -> bool {
    let mut parts = version.split('.');
    let (Some(major), Some(minor)) = (parts.next(), parts.next()) else {
        return false;
    };
    SUPPORTED.contains(&format!("{major}.{minor}").as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_comes_from_the_api_export_name() {
        let names = ["wasi:cli/run@0.2.0", "openconnectors:connector/api@0.1.3"];
        assert_eq!(exported_version(names).as_deref(), Some("0.1.3"));
        assert!(is_supported("0.1.3"));
        assert!(!is_supported("9.0.0"));
        assert!(!is_supported("0.2.0"));
        assert_eq!(exported_version(["other:pkg/api@1.0.0"]), None);
    }
}
