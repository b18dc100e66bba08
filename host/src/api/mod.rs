//! The HTTP API under `/elements/api-v2`, served with hyper.

mod elements;
pub mod error;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::registry::Registry;
use error::ApiError;

/// The API's prefix, as in Open Connectors.
pub const PREFIX: &str = "/elements/api-v2";

/// What request handlers share.
pub struct App {
    /// The loaded connectors.
    pub registry: Arc<Registry>,
}

/// Serves the API on `listener` until `shutdown` turns true.
pub async fn serve(listener: TcpListener, app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let app = app.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(handle(&app, req).await) }
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
}

async fn handle(app: &App, req: Request<Incoming>) -> Response<Full<Bytes>> {
    match route(app, req).await {
        Ok((status, body)) => json_response(status, &body),
        Err(e) => json_response(e.status(), &e.body()),
    }
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("static response parts are valid")
}

async fn route(
    app: &App,
    req: Request<Incoming>,
) -> Result<(StatusCode, serde_json::Value), ApiError> {
    let path = req.uri().path().to_string();
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return Err(ApiError::NotFound(format!("no route for {path}")));
    };
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    match (req.method(), segments.as_slice()) {
        (&Method::GET, ["elements"]) => Ok((StatusCode::OK, elements::list(&app.registry))),
        (&Method::GET, ["elements", key]) => {
            Ok((StatusCode::OK, elements::get(&app.registry, key)?))
        }
        (_, ["elements"] | ["elements", _]) => Err(ApiError::MethodNotAllowed),
        _ => Err(ApiError::NotFound(format!("no route for {path}"))),
    }
}

pub use elements::element as element_json;

/// The standardized JSON of one event object: `objectType`, `objectId`, `eventType`, `date`,
/// and the connector's vendor fields under `fields`.
pub fn event_json(e: &crate::runtime::types::EventObject) -> serde_json::Value {
    serde_json::json!({
        "objectType": e.object_type,
        "objectId": e.object_id,
        "eventType": e.event_type.as_str(),
        "date": e.date,
        "fields": serde_json::from_str::<serde_json::Value>(&e.fields)
            .unwrap_or_else(|_| serde_json::Value::String(e.fields.clone())),
    })
}
