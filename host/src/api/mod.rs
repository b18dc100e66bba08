//! The HTTP API under `/elements/api-v2`, served with hyper.

pub mod auth;
mod elements;
pub mod error;
mod events;
mod instances;
mod webhooks;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::delivery::Dispatcher;
use crate::ingest::Ingest;
use crate::instances::Instances;
use crate::metrics::Metrics;
use crate::registry::Registry;
use error::ApiError;

/// The API's prefix, as in Open Connectors.
pub const PREFIX: &str = "/elements/api-v2";

/// What request handlers share.
pub struct App {
    /// The loaded connectors.
    pub registry: Arc<Registry>,
    /// The durable store.
    pub store: Arc<dyn store::Store>,
    /// The instances, in memory.
    pub instances: Arc<Instances>,
    /// Webhook intake.
    pub ingest: Ingest,
    /// Delivery.
    pub dispatcher: Dispatcher,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// The largest request body accepted, in bytes.
    pub body_limit: usize,
    /// The polling scheduler.
    pub poller: crate::polling::Poller,
}

/// A request with its body read.
pub struct Req {
    /// The method.
    pub method: Method,
    /// The path.
    pub path: String,
    /// The query string without `?`.
    pub query: String,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl Req {
    /// The body as a JSON object; a 400 saying why when it is not one.
    pub fn json_object(&self) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
        match serde_json::from_slice(&self.body) {
            Ok(serde_json::Value::Object(m)) => Ok(m),
            Ok(_) => Err(ApiError::bad("the body must be a JSON object")),
            Err(e) => Err(ApiError::bad(format!("the body is not valid JSON: {e}"))),
        }
    }

    /// A query parameter.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .split('&')
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }
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
        let _ = stream.set_nodelay(true);
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
    if req.uri().path() == "/metrics" && req.method() == Method::GET {
        let mut text = format!(
            "{}# HELP polling_instances Instances with a running poll schedule.\n# TYPE polling_instances gauge\npolling_instances {}\n",
            app.metrics.render(),
            app.poller.scheduled()
        );
        if let Some(g) = app.store.group_commits() {
            text.push_str(&crate::metrics::render_group_commits(g));
        }
        return Response::builder()
            .header("content-type", "text/plain; version=0.0.4")
            .body(Full::new(Bytes::from(text)))
            .expect("static response parts are valid");
    }
    let is_webhook = req.uri().path().starts_with(&format!("{PREFIX}/events/"));
    let result = match read(req, app.body_limit).await {
        Ok(req) => route(app, req).await,
        Err(e) => {
            if is_webhook && matches!(e, ApiError::TooLarge(_)) {
                app.metrics
                    .webhook_refused(crate::metrics::Refusal::TooLarge);
            }
            Err(e)
        }
    };
    match result {
        Ok((status, body)) => json_response(status, &body),
        Err(e) => json_response(e.status(), &e.body()),
    }
}

/// Reads the body, refusing one over `limit` bytes with a 413.
async fn read(req: Request<Incoming>, limit: usize) -> Result<Req, ApiError> {
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::TooLarge(limit));
    }
    let body = Limited::new(body, limit)
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                ApiError::TooLarge(limit)
            } else {
                ApiError::bad(format!("cannot read the body: {e}"))
            }
        })?
        .to_bytes();
    Ok(Req {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        headers: parts.headers,
        body,
    })
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("static response parts are valid")
}

/// A handler's answer: a status and a JSON body.
pub type Answer = Result<(StatusCode, serde_json::Value), ApiError>;

async fn route(app: &App, req: Req) -> Answer {
    let path = req.path.clone();
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return Err(ApiError::NotFound(format!("no route for {path}")));
    };
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let ok = |v| Ok((StatusCode::OK, v));
    match (&req.method, segments.as_slice()) {
        (&Method::GET, ["elements"]) => ok(elements::list(&app.registry)),
        (&Method::GET, ["elements", key]) => ok(elements::get(&app.registry, key)?),
        (_, ["elements"] | ["elements", _]) => Err(ApiError::MethodNotAllowed),
        (&Method::POST, ["events", key]) => webhooks::post(app, &req, key, None).await,
        (&Method::POST, ["events", key, suffix]) => {
            webhooks::post(app, &req, key, Some(suffix)).await
        }
        (_, ["events", ..]) => Err(ApiError::MethodNotAllowed),
        (_, ["instances", ..]) => {
            let caller = auth::authorize(app, &req.headers).await?;
            match (&req.method, &segments[1..]) {
                (&Method::POST, []) => instances::create(app, &caller, &req).await,
                (&Method::GET, []) => ok(instances::list(app, &caller)),
                (m, [id, tail @ ..]) => {
                    let instance = auth::instance(app, &caller, id)?;
                    match (m, tail) {
                        (&Method::GET, []) => instances::show_full(app, &instance).await,
                        (&Method::PATCH, []) => instances::patch(app, &instance, &req).await,
                        (&Method::DELETE, []) => instances::delete(app, &instance).await,
                        (&Method::GET, ["configuration"]) => {
                            ok(instances::configuration(app, &instance))
                        }
                        (&Method::PATCH, ["configuration", cid]) => {
                            instances::patch_entry(app, &instance, cid, &req).await
                        }
                        (&Method::GET, ["events"]) => events::list(app, &instance, &req).await,
                        (&Method::POST, ["events", "poll"]) => events::poll(app, &instance).await,
                        (&Method::GET, ["events", eid]) => events::show(app, &instance, eid).await,
                        (&Method::GET, ["events", eid, "deliveries"]) => {
                            events::deliveries(app, &instance, eid).await
                        }
                        (&Method::POST, ["events", eid, "redeliver"]) => {
                            events::redeliver(app, &instance, eid).await
                        }
                        _ => Err(ApiError::NotFound(format!(
                            "no route for {} {path}",
                            req.method
                        ))),
                    }
                }
                _ => Err(ApiError::NotFound(format!(
                    "no route for {} {path}",
                    req.method
                ))),
            }
        }
        _ => Err(ApiError::NotFound(format!("no route for {path}"))),
    }
}

pub use elements::element as element_json;

/// The standardized JSON of one event object: `objectType`, `objectId`, `eventType`, `date`,
/// and the connector's vendor fields under `fields`.
pub fn event_json(e: &runtime::types::EventObject) -> serde_json::Value {
    serde_json::json!({
        "objectType": e.object_type,
        "objectId": e.object_id,
        "eventType": e.event_type.as_str(),
        "date": e.date,
        "fields": serde_json::from_str::<serde_json::Value>(&e.fields)
            .unwrap_or_else(|_| serde_json::Value::String(e.fields.clone())),
    })
}
