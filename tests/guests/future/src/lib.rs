//! The future test guest: a component built for contract `openconnectors:connector@9.0.0`,
//! a version the host does not support. The host must refuse to load it and report why.
//!
//! It does not use the guest SDK (which speaks the supported contract); it uses
//! `wit-bindgen` directly on its own WIT in `wit/`.

mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "future-connector",
    });
}

use bindings::exports::openconnectors::connector::api::Guest;

/// The future connector.
pub struct Future;

impl Guest for Future {
    fn info() -> String {
        "future".to_string()
    }
}

// Only the component exports `api`: a native cdylib cannot link the component export names.
#[cfg(target_arch = "wasm32")]
bindings::export!(Future with_types_in bindings);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_itself() {
        assert_eq!(Future::info(), "future");
    }
}
