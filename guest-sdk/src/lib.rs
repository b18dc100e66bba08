//! # guest-sdk: write an event connector
//!
//! A connector is a small WebAssembly component that translates between one vendor and the
//! connector host: it parses webhooks, builds poll requests and reads poll answers. It never
//! does I/O; the host runs every HTTP call and keeps every credential.
//!
//! Implement [`Connector`] on a unit struct and call [`export_connector!`]. Every method but
//! [`Connector::info`] has a default, so a webhook-only connector writes two or three
//! methods. The same code runs natively under `cargo test`, so a connector's logic is tested
//! like any Rust library.
//!
//! ```
//! use guest_sdk::prelude::*;
//!
//! struct Shop;
//!
//! impl Connector for Shop {
//!     fn info() -> ConnectorInfo {
//!         ConnectorInfo::new("shop", "Shop", "ecommerce").webhooks()
//!     }
//!
//!     fn parse_webhook(_ctx: &Context, req: &WebhookRequest) -> Result<Vec<EventObject>, Error> {
//!         let body = req.json()?;
//!         let id = json::string_at(&body, "order.id")
//!             .ok_or_else(|| Error::bad_request("order.id is missing"))?;
//!         Ok(vec![EventObject::new("orders", id, EventType::Created).with_fields(&body)])
//!     }
//! }
//!
//! guest_sdk::export_connector!(Shop);
//! ```
//!
//! The walk-through in `guest-sdk/README.md` builds, checks and loads a connector end to end.

#[cfg(any(test, all(target_arch = "wasm32", target_os = "unknown")))]
mod alloc;
pub mod config;
pub mod dates;
pub mod form;
pub mod json;
pub mod log;
pub mod signature;
mod types;

pub use config::{Config, Context};
pub use types::*;

/// The generated component bindings. Not part of the API: use the re-exports instead.
#[doc(hidden)]
#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "connector",
        pub_export_macro: true,
        export_macro_name: "__export_connector_world",
        generate_unused_types: true,
        additional_derives: [PartialEq, Eq],
    });
}

mod adapter;

/// Calls of a fresh instance allocate from the initial memory's free space first (see
/// `alloc.rs`). Turn off the `arena` feature to bring your own global allocator.
#[cfg(all(target_arch = "wasm32", target_os = "unknown", feature = "arena"))]
#[global_allocator]
static ALLOCATOR: alloc::Arena = alloc::Arena::new();

#[doc(hidden)]
pub use adapter::Adapter;

/// Everything a connector usually needs, in one `use`.
pub mod prelude {
    pub use crate::dates;
    pub use crate::form;
    pub use crate::json;
    pub use crate::log;
    pub use crate::signature;
    pub use crate::{
        AuthStep, Config, ConfigKey, Connector, ConnectorInfo, Context, Credentials,
        DatesConfiguration, Error, EventObject, EventType, HttpRequest, HttpResponse,
        InstanceFinder, PollPage, PollResource, PollTarget, PollWindow, ValueType, WebhookRequest,
    };
}

/// A connector: the translation between one vendor and the host.
///
/// Methods are associated functions because a connector keeps no state between calls: the
/// host gives each call a fresh instance.
pub trait Connector {
    /// Describes the connector: key, hub, modes, configuration keys, default resources.
    fn info() -> ConnectorInfo;

    /// Checks an instance's configuration. The default checks that every key marked
    /// `required` in [`Connector::info`] is present and not empty.
    fn validate_config(config: &Config) -> Result<(), Error> {
        for key in Self::info().config_keys.iter().filter(|k| k.required) {
            config.require(&key.key)?;
        }
        Ok(())
    }

    /// Verifies a webhook's vendor signature. The default accepts every webhook.
    fn verify_webhook(_ctx: &Context, _req: &WebhookRequest) -> Result<(), Error> {
        Ok(())
    }

    /// Parses a verified webhook into standardized events.
    fn parse_webhook(_ctx: &Context, _req: &WebhookRequest) -> Result<Vec<EventObject>, Error> {
        Err(Error::unsupported(
            "this connector does not receive webhooks",
        ))
    }

    /// Builds the vendor request of an authentication step; `None` when not needed.
    fn build_auth_request(_ctx: &Context, _step: &AuthStep) -> Result<Option<HttpRequest>, Error> {
        Ok(None)
    }

    /// Reads the vendor's answer to an authentication step.
    fn parse_auth_response(
        _ctx: &Context,
        _step: &AuthStep,
        _resp: &HttpResponse,
    ) -> Result<Credentials, Error> {
        Err(Error::unsupported(
            "this connector has no authentication step",
        ))
    }

    /// Builds the vendor request for one page of a poll.
    fn build_poll_request(
        _ctx: &Context,
        _target: &PollTarget,
        _window: &PollWindow,
        _cursor: Option<&str>,
    ) -> Result<HttpRequest, Error> {
        Err(Error::unsupported("this connector does not poll"))
    }

    /// Reads one page of a poll answer to the request built with `cursor`.
    fn parse_poll_response(
        _ctx: &Context,
        _target: &PollTarget,
        _cursor: Option<&str>,
        _resp: &HttpResponse,
    ) -> Result<PollPage, Error> {
        Err(Error::unsupported("this connector does not poll"))
    }
}

/// Exports a [`Connector`] implementation as the component's `api`.
///
/// Call it once, at the crate root of a `cdylib` crate, with the connector's type.
#[macro_export]
macro_rules! export_connector {
    ($connector:ty) => {
        // Exports exist only in the component; native builds (unit tests) skip them.
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type __GuestSdkExport = $crate::Adapter<$connector>;
            $crate::bindings::__export_connector_world!(__GuestSdkExport with_types_in $crate::bindings);
        };
    };
}
