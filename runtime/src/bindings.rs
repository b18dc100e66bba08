//! Generated bindings, one module per contract version the host accepts.
//!
//! A released WIT version is frozen; when the contract grows, the old version's bindings stay
//! here next to the new ones and calls are converted to the latest types (the pattern of Zed's
//! extension host). 0.2 is the latest; 0.1 connectors are called through the frozen 0.1
//! bindings where the types differ, and through the latest types where they do not (the
//! component model checks types by shape, so an unchanged record lifts and lowers the same).

/// Bindings of `openconnectors:connector@0.1.x`, from the frozen copy in `wit/frozen/0.1.0/`
/// (never from the live `wit/`, so editing the live contract cannot change what 0.1 means).
#[allow(missing_docs, clippy::all)]
pub mod v0_1 {
    wasmtime::component::bindgen!({
        path: "../wit/frozen/0.1.0",
        world: "connector",
        exports: { default: async },
    });
}

/// Bindings of `openconnectors:connector@0.2.x`, the latest contract, from its frozen copy
/// in `wit/frozen/0.2.0/` (the same text as the live `wit/connector.wit`, a test checks).
#[allow(missing_docs, clippy::all)]
pub mod v0_2 {
    wasmtime::component::bindgen!({
        path: "../wit/frozen/0.2.0",
        world: "connector",
        exports: { default: async },
    });
}

/// The contract versions this host accepts, as `major.minor` semver tracks.
pub const SUPPORTED: &[&str] = &["0.1", "0.2"];

/// A contract track the host speaks, as found from a component's exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Contract {
    /// `0.1.x`: untyped configuration keys, `verify-webhook` and `parse-webhook`.
    V0_1,
    /// `0.2.x`: typed keys, vendor event ids, `handle-webhook`.
    V0_2,
}

impl Contract {
    /// The track of a full version (`0.2.0` gives `V0_2`); `None` when unsupported.
    pub fn of(version: &str) -> Option<Self> {
        let mut parts = version.split('.');
        match (parts.next(), parts.next()) {
            (Some("0"), Some("1")) => Some(Contract::V0_1),
            (Some("0"), Some("2")) => Some(Contract::V0_2),
            _ => None,
        }
    }
}

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
    Contract::of(version).is_some()
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
        assert!(is_supported("0.2.0"));
        assert!(!is_supported("0.3.0"));
        assert_eq!(Contract::of("0.1.7"), Some(Contract::V0_1));
        assert_eq!(Contract::of("0.2.0"), Some(Contract::V0_2));
        // Every supported track has a `Contract`, and only those.
        for track in SUPPORTED {
            assert!(Contract::of(&format!("{track}.0")).is_some(), "{track}");
        }
        assert_eq!(exported_version(["other:pkg/api@1.0.0"]), None);
    }

    /// The live contract, which guests build against.
    const LIVE_WIT: &str =
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../wit/connector.wit"));
    /// The frozen 0.1.0 contract, which `v0_1` is generated from.
    const FROZEN_0_1_0_WIT: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../wit/frozen/0.1.0/connector.wit"
    ));

    /// The version on a WIT file's `package openconnectors:connector@x.y.z;` line.
    fn package_version(wit: &str) -> Option<&str> {
        wit.lines().find_map(|line| {
            let rest = line
                .trim()
                .strip_prefix("package openconnectors:connector@")?;
            Some(rest.trim_end_matches(';').trim())
        })
    }

    #[test]
    fn the_live_wit_has_a_frozen_copy_of_its_version_and_matches_it() {
        assert_eq!(package_version(FROZEN_0_1_0_WIT), Some("0.1.0"));
        let live_version =
            package_version(LIVE_WIT).expect("wit/connector.wit has no package line");
        // The live contract's version must be frozen beside it, word for word: a bump
        // without a new frozen folder fails here, as does an edit of a frozen version.
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../wit/frozen")
            .join(live_version)
            .join("connector.wit");
        let frozen_text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "wit/connector.wit is version {live_version}, but {} cannot be read ({e}). \
                 Copy the contract there when its version is bumped, add bindings for it in \
                 runtime/src/bindings.rs and its track to SUPPORTED.",
                path.display()
            )
        });
        let live: Vec<&str> = LIVE_WIT.lines().collect();
        let frozen: Vec<&str> = frozen_text.lines().collect();
        if let Some(line) =
            (0..live.len().max(frozen.len())).find(|&i| live.get(i) != frozen.get(i))
        {
            panic!(
                "wit/connector.wit differs from wit/frozen/{live_version}/connector.wit (first \
                 at line {}) while its package version is still {live_version}. Released \
                 contracts are frozen: do not edit one. Bump the package version in \
                 wit/connector.wit, copy it to wit/frozen/<new version>/connector.wit and add \
                 bindings for it in runtime/src/bindings.rs (and to SUPPORTED) instead.",
                line + 1
            );
        }
    }
}
