//! Glue between the generated bindings and the [`Connector`] trait.

use std::marker::PhantomData;

use crate::bindings::exports::openconnectors::connector::api::Guest;
use crate::bindings::openconnectors::connector::types as wit;
use crate::{Config, Connector, Context};

/// Implements the generated export trait for any [`Connector`]. Used by
/// [`export_connector!`](crate::export_connector).
pub struct Adapter<T>(PhantomData<T>);

fn context(ctx: wit::Context) -> Context {
    Context {
        config: Config::new(ctx.config),
        credentials: ctx.credentials,
    }
}

impl<T: Connector> Guest for Adapter<T> {
    fn info() -> wit::ConnectorInfo {
        T::info()
    }

    fn validate_config(config: wit::Config) -> Result<(), wit::Error> {
        T::validate_config(&Config::new(config))
    }

    fn handle_webhook(
        ctx: wit::Context,
        request: wit::WebhookRequest,
    ) -> Result<Vec<wit::EventObject>, wit::Error> {
        let ctx = context(ctx);
        T::verify_webhook(&ctx, &request)?;
        T::parse_webhook(&ctx, &request)
    }

    fn build_auth_request(
        ctx: wit::Context,
        step: wit::AuthStep,
    ) -> Result<Option<wit::HttpRequest>, wit::Error> {
        T::build_auth_request(&context(ctx), &step)
    }

    fn parse_auth_response(
        ctx: wit::Context,
        step: wit::AuthStep,
        response: wit::HttpResponse,
    ) -> Result<wit::Credentials, wit::Error> {
        T::parse_auth_response(&context(ctx), &step, &response)
    }

    fn build_poll_request(
        ctx: wit::Context,
        target: wit::PollTarget,
        window: wit::PollWindow,
        cursor: Option<String>,
    ) -> Result<wit::HttpRequest, wit::Error> {
        T::build_poll_request(&context(ctx), &target, &window, cursor.as_deref())
    }

    fn parse_poll_response(
        ctx: wit::Context,
        target: wit::PollTarget,
        cursor: Option<String>,
        response: wit::HttpResponse,
    ) -> Result<wit::PollPage, wit::Error> {
        T::parse_poll_response(&context(ctx), &target, cursor.as_deref(), &response)
    }
}
