//! The HTTP API under `/elements/api-v2`, served with hyper.

mod activity;
pub mod auth;
mod connection;
mod elements;
pub mod error;
mod events;
pub mod instances;
pub mod model;
pub mod openapi;
mod webhooks;

use std::convert::Infallible;
use std::sync::{Arc, LazyLock};

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

/// What one client may hold of the server: slow or idle senders are closed, and the
/// number of open connections is capped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// The longest a client may take to send a request's head (its line and headers), from
    /// the connection's start or from the first byte of a kept-alive connection's next
    /// request; a slower connection is closed.
    pub header_timeout: std::time::Duration,
    /// The longest a client may take to send a request's whole body, from the end of its
    /// head; a slower one is answered 408 and its connection closed.
    pub body_timeout: std::time::Duration,
    /// The longest a kept-alive connection may wait for its next request; then it is closed.
    pub idle_timeout: std::time::Duration,
    /// The most connections open at once; further clients wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_timeout: std::time::Duration::from_secs(10),
            body_timeout: std::time::Duration::from_secs(30),
            idle_timeout: std::time::Duration::from_secs(60),
            max_connections: 10_000,
        }
    }
}

/// How long accepting pauses after an error (out of file descriptors, say), so a
/// persistent error does not spin the accept loop.
const ACCEPT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);

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
    /// Time-outs and the connection cap.
    pub connections: ConnectionLimits,
    /// Where the host may connect: URLs with a refused literal address are refused.
    pub egress: crate::egress::Egress,
    /// What each organization may hold.
    pub quotas: crate::quotas::Quotas,
    /// Held from checking a new or changed instance against the quotas to storing it, so
    /// two requests at once cannot both pass the last free place (or each add to the same
    /// configuration within the limit).
    pub changing: tokio::sync::Mutex<()>,
    /// The web console's sessions.
    pub console: crate::console::session::Sessions,
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

    /// A query parameter, percent-decoded (`%3A` is `:`; as in a form, `+` is a space).
    pub fn query_param(&self, name: &str) -> Option<std::borrow::Cow<'_, str>> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// A whole-number query parameter, `default` when absent; a 400 naming it otherwise.
    pub fn number_param(&self, name: &str, default: u32) -> Result<u32, ApiError> {
        match self.query_param(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| ApiError::field(name, format!("`{name}` must be a whole number"))),
        }
    }

    /// `pageSize` (1 to 1000, default 100) and `page` (from 1) as a limit and an offset.
    pub fn page(&self) -> Result<(u32, u32), ApiError> {
        let size = self.number_param("pageSize", 100)?.clamp(1, 1000);
        let page = self.number_param("page", 1)?.max(1);
        Ok((size, (page - 1).saturating_mul(size)))
    }

    /// An RFC 3339 timestamp query parameter (`2024-01-01T00:00:00Z`), in milliseconds
    /// since the epoch; a 400 naming it when it is not one.
    pub fn timestamp_param(&self, name: &str) -> Result<Option<store::Millis>, ApiError> {
        self.query_param(name)
            .map(|v| parse_timestamp(name, &v))
            .transpose()
    }
}

/// `value`, an RFC 3339 timestamp, in milliseconds since the epoch; a 400 naming `field`
/// when it is not one.
pub fn parse_timestamp(field: &str, value: &str) -> Result<store::Millis, ApiError> {
    value
        .parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|_| {
            ApiError::field(
                field,
                format!("`{field}` must be an RFC 3339 timestamp such as 2024-01-01T00:00:00Z"),
            )
        })
}

/// Serves the API on `listener` until `shutdown` turns true.
pub async fn serve(listener: TcpListener, app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    let limits = app.connections;
    let open = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    loop {
        // A free connection slot first: at the cap, new clients wait in the backlog.
        let permit = tokio::select! {
            permit = open.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = shutdown.changed() => break,
        };
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        tokio::spawn(async move {
            let phase = connection::Phase::new();
            let phase = &phase;
            let service = service_fn(move |req| {
                let app = app.clone();
                async move {
                    phase.busy();
                    let answer = handle(&app, req).await;
                    phase.idle();
                    Ok::<_, Infallible>(answer)
                }
            });
            let io = connection::Watched { io: stream, phase };
            let served = http1::Builder::new()
                // The watchdog times heads (hyper's timer cannot tell them from idleness).
                .header_read_timeout(None)
                .serve_connection(TokioIo::new(io), service);
            tokio::select! {
                // The connection first: the watchdog reads the phase it leaves.
                biased;
                served = served => if let Err(e) = served {
                    tracing::debug!(error = %e, "connection ended with an error");
                },
                _ = connection::watchdog(phase, limits) => {
                    tracing::debug!("connection closed: a slow request head or idle");
                }
            }
            drop(permit);
        });
    }
}

async fn handle(app: &App, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.uri().path() == "/metrics" && req.method() == Method::GET {
        let text = app.metrics.render(crate::metrics::Snapshot {
            polling_instances: app.poller.scheduled() as u64,
            group_commits: app.store.group_commits(),
            owned_instances: app.dispatcher.ownership().owned().map(|n| n as u64),
        });
        return Response::builder()
            .header("content-type", crate::metrics::CONTENT_TYPE)
            .body(Full::new(Bytes::from(text)))
            .expect("static response parts are valid");
    }
    if crate::console::serves(req.uri().path()) {
        return crate::console::handle(app, req).await;
    }
    let is_webhook = req.uri().path().starts_with(&format!("{PREFIX}/events/"));
    let result = match read_within(app, req).await {
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
        Err(e) => error_response(&e),
    }
}

/// The answer of an error: its status and JSON, `Retry-After` when it has one.
pub(crate) fn error_response(e: &ApiError) -> Response<Full<Bytes>> {
    let mut response = json_response(e.status(), &e.body());
    if let Some(secs) = e.retry_after_secs() {
        response
            .headers_mut()
            .insert(hyper::header::RETRY_AFTER, secs.into());
    }
    if matches!(e, ApiError::BodyTimeout(_)) {
        // The rest of the body may still come: the connection is not reused.
        response.headers_mut().insert(
            hyper::header::CONNECTION,
            hyper::header::HeaderValue::from_static("close"),
        );
    }
    response
}

/// Reads the request's body within the body time-out and the body limit.
pub(crate) async fn read_within(app: &App, req: Request<Incoming>) -> Result<Req, ApiError> {
    let timeout = app.connections.body_timeout;
    match tokio::time::timeout(timeout, read(req, app.body_limit)).await {
        Ok(read) => read,
        Err(_) => Err(ApiError::BodyTimeout(timeout)),
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

/// A JSON answer.
pub(crate) fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("static response parts are valid")
}

/// A handler's answer: a status and a JSON body.
pub type Answer = Result<(StatusCode, serde_json::Value), ApiError>;

/// An endpoint of the API, as [`ROUTER`] finds it from the path after [`PREFIX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// `/elements`
    Elements,
    /// `/elements/{key}`
    Element,
    /// `/events/{key}` and `/events/{key}/{suffix}`: a vendor webhook.
    Webhook,
    /// Any other path under `/events`: a 405 whatever the method.
    OtherEvents,
    /// `/instances`
    Instances,
    /// `/instances/{id}`
    Instance,
    /// `/instances/{id}/configuration`
    Configuration,
    /// `/instances/{id}/configuration/{cid}`
    ConfigurationEntry,
    /// `/instances/{id}/events`
    InstanceEvents,
    /// `/instances/{id}/events/{eid}` (`POST …/events/poll` polls).
    InstanceEvent,
    /// `/instances/{id}/events/{eid}/deliveries`
    Deliveries,
    /// `/instances/{id}/events/{eid}/redeliver`
    Redeliver,
    /// `/instances/{id}/dead-letters/redeliver`: every dead letter of the instance again.
    RedeliverDeadLetters,
    /// `/instances/{id}/stats`: deliveries per minute.
    Stats,
    /// Any other path under `/instances/{id}`: the caller is authorized and the instance
    /// looked up before the 404.
    OtherInstance,
    /// `/dead-letters`: dead letters across the caller's instances.
    DeadLetters,
    /// `/openapi.json`: the OpenAPI document.
    OpenApi,
}

/// The API's routes: each path after [`PREFIX`] with [`ROUTER`]'s parameter names.
const ROUTES: &[(&str, Route)] = &[
    ("/openapi.json", Route::OpenApi),
    ("/elements", Route::Elements),
    ("/elements/{key}", Route::Element),
    ("/events", Route::OtherEvents),
    ("/events/{key}", Route::Webhook),
    ("/events/{key}/{suffix}", Route::Webhook),
    ("/events/{key}/{suffix}/{*rest}", Route::OtherEvents),
    ("/instances", Route::Instances),
    ("/instances/{id}", Route::Instance),
    ("/instances/{id}/configuration", Route::Configuration),
    (
        "/instances/{id}/configuration/{cid}",
        Route::ConfigurationEntry,
    ),
    ("/instances/{id}/events", Route::InstanceEvents),
    ("/instances/{id}/events/{eid}", Route::InstanceEvent),
    ("/instances/{id}/events/{eid}/deliveries", Route::Deliveries),
    ("/instances/{id}/events/{eid}/redeliver", Route::Redeliver),
    (
        "/instances/{id}/dead-letters/redeliver",
        Route::RedeliverDeadLetters,
    ),
    ("/instances/{id}/stats", Route::Stats),
    ("/instances/{id}/{*rest}", Route::OtherInstance),
    ("/dead-letters", Route::DeadLetters),
];

/// Every operation [`route`] serves: its method and its path after [`PREFIX`], with
/// [`ROUTER`]'s parameter names (`POST /instances/{id}/events/poll` is the event id `poll`
/// to the router). The OpenAPI document lists exactly these (`openapi::tests`), and
/// `tests::every_operation_is_routed` checks them against [`ROUTES`] both ways.
pub const OPERATIONS: &[(&str, &str)] = &[
    ("GET", "/openapi.json"),
    ("GET", "/elements"),
    ("GET", "/elements/{key}"),
    ("POST", "/events/{key}"),
    ("POST", "/events/{key}/{suffix}"),
    ("POST", "/instances"),
    ("GET", "/instances"),
    ("GET", "/instances/{id}"),
    ("PATCH", "/instances/{id}"),
    ("DELETE", "/instances/{id}"),
    ("GET", "/instances/{id}/configuration"),
    ("PATCH", "/instances/{id}/configuration/{cid}"),
    ("GET", "/instances/{id}/events"),
    ("GET", "/instances/{id}/events/{eid}"),
    ("GET", "/instances/{id}/events/{eid}/deliveries"),
    ("POST", "/instances/{id}/events/{eid}/redeliver"),
    ("POST", "/instances/{id}/events/poll"),
    ("GET", "/dead-letters"),
    ("POST", "/instances/{id}/dead-letters/redeliver"),
    ("GET", "/instances/{id}/stats"),
];

/// The API's routes, built once. Paths are matched as [`normalise`] gives them.
static ROUTER: LazyLock<matchit::Router<Route>> = LazyLock::new(|| {
    let mut router = matchit::Router::new();
    for &(path, route) in ROUTES {
        router
            .insert(path, route)
            .expect("the API's routes do not conflict");
    }
    router
});

/// The path after [`PREFIX`] as [`ROUTER`] matches it: its non-empty segments, each after a
/// `/`, so that `//elements//` reads as `/elements`. Empty when there is no segment.
fn normalise(rest: &str) -> String {
    let mut out = String::with_capacity(rest.len() + 1);
    for segment in rest.split('/').filter(|s| !s.is_empty()) {
        out.push('/');
        out.push_str(segment);
    }
    out
}

/// Runs the API route of `req.path` (under [`PREFIX`]); the console calls it too.
pub(crate) async fn route(app: &App, req: Req) -> Answer {
    let path = req.path.as_str();
    let method = &req.method;
    let no_route = || ApiError::NotFound(format!("no route for {path}"));
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return Err(no_route());
    };
    let normal = normalise(rest);
    let Ok(found) = ROUTER.at(&normal) else {
        return Err(no_route());
    };
    let param = |name| found.params.get(name).unwrap_or_default();
    let ok = |v| Ok((StatusCode::OK, v));
    let route = *found.value;
    match (route, method) {
        (Route::OpenApi, &Method::GET) => return ok(openapi::document().clone()),
        (Route::Elements, &Method::GET) => return ok(elements::list(&app.registry)),
        (Route::Element, &Method::GET) => return ok(elements::get(&app.registry, param("key"))?),
        (Route::Webhook, &Method::POST) => {
            return webhooks::post(app, &req, param("key"), found.params.get("suffix")).await;
        }
        (
            Route::OpenApi | Route::Elements | Route::Element | Route::Webhook | Route::OtherEvents,
            _,
        ) => {
            return Err(ApiError::MethodNotAllowed);
        }
        _ => {}
    }
    // Under `/instances`: the caller first, then the instance, then the method.
    let caller = auth::authorize(app, &req.headers).await?;
    let no_method = || ApiError::NotFound(format!("no route for {method} {path}"));
    if route == Route::Instances {
        return match *method {
            Method::POST => instances::create(app, &caller, &req).await,
            Method::GET => instances::list(app, &caller).await,
            _ => Err(no_method()),
        };
    }
    if route == Route::DeadLetters {
        return match *method {
            Method::GET => activity::dead_letters(app, &caller, &req).await,
            _ => Err(no_method()),
        };
    }
    let instance = auth::instance(app, &caller, param("id"))?;
    match (route, method) {
        (Route::Instance, &Method::GET) => instances::show_full(app, &instance).await,
        (Route::Instance, &Method::PATCH) => instances::patch(app, &instance, &req).await,
        (Route::Instance, &Method::DELETE) => instances::delete(app, &instance).await,
        (Route::Configuration, &Method::GET) => ok(instances::configuration(app, &instance)),
        (Route::ConfigurationEntry, &Method::PATCH) => {
            instances::patch_entry(app, &instance, param("cid"), &req).await
        }
        (Route::InstanceEvents, &Method::GET) => events::list(app, &instance, &req).await,
        (Route::InstanceEvent, &Method::POST) if param("eid") == "poll" => {
            events::poll(app, &instance).await
        }
        (Route::InstanceEvent, &Method::GET) => events::show(app, &instance, param("eid")).await,
        (Route::Deliveries, &Method::GET) => events::deliveries(app, &instance, param("eid")).await,
        (Route::Redeliver, &Method::POST) => events::redeliver(app, &instance, param("eid")).await,
        (Route::RedeliverDeadLetters, &Method::POST) => {
            activity::redeliver(app, &instance, &req).await
        }
        (Route::Stats, &Method::GET) => activity::stats(app, &instance, &req).await,
        _ => Err(no_method()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The route of `rest` (the path after the prefix) and its parameters.
    fn at(rest: &str) -> Option<(Route, Vec<(String, String)>)> {
        let normal = normalise(rest);
        let found = ROUTER.at(&normal).ok()?;
        let params = found
            .params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Some((*found.value, params))
    }

    fn route_of(rest: &str) -> Option<Route> {
        at(rest).map(|(r, _)| r)
    }

    fn req(query: &str) -> Req {
        Req {
            method: Method::GET,
            path: "/".into(),
            query: query.into(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }

    #[test]
    fn query_parameters_are_percent_decoded() {
        let r = req("since=2024-01-01T00%3A00%3A00Z&status=FAILED%2CNEW&x");
        assert_eq!(
            r.query_param("since").as_deref(),
            Some("2024-01-01T00:00:00Z")
        );
        assert_eq!(r.query_param("status").as_deref(), Some("FAILED,NEW"));
        assert_eq!(r.query_param("x").as_deref(), Some(""));
        assert_eq!(r.query_param("y"), None);
        assert_eq!(r.timestamp_param("since").unwrap(), Some(1_704_067_200_000));
        assert_eq!(req("").timestamp_param("since").unwrap(), None);
    }

    #[test]
    fn a_bad_timestamp_or_number_names_its_parameter() {
        for bad in [
            "tomorrow",
            "2024-01-01",
            "2024-01-01T00:00:00",
            "1704067200000",
        ] {
            let e = req(&format!("until={bad}"))
                .timestamp_param("until")
                .unwrap_err();
            assert_eq!(e.body()["field"], "until", "{bad}");
        }
        assert_eq!(
            parse_timestamp("since", "2024-01-01T01:00:00.5+01:00").unwrap(),
            1_704_067_200_500
        );
        let e = req("page=two").page().unwrap_err();
        assert_eq!(e.body()["field"], "page");
        assert_eq!(req("pageSize=5000&page=3").page().unwrap(), (1000, 2000));
        assert_eq!(req("").page().unwrap(), (100, 0));
    }

    #[test]
    fn every_operation_is_routed_and_every_route_has_an_operation() {
        let sample = |template: &str| {
            template
                .split('/')
                .map(|s| match s {
                    "{key}" => "k",
                    "{suffix}" => "s",
                    "{id}" => "7",
                    "{cid}" => "3",
                    "{eid}" => "e1",
                    other => other,
                })
                .collect::<Vec<_>>()
                .join("/")
        };
        let names = |template: &str| -> Vec<String> {
            template
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .map(str::to_string)
                .collect()
        };
        for (method, path) in OPERATIONS {
            let (route, params) = at(&sample(path)).unwrap_or_else(|| panic!("{path}: no route"));
            assert!(
                !matches!(route, Route::OtherEvents | Route::OtherInstance),
                "{method} {path}: a catch-all"
            );
            let got: Vec<String> = params.into_iter().map(|(k, _)| k).collect();
            // `…/events/poll` is the event id `poll` to the router.
            if !path.ends_with("/events/poll") {
                assert_eq!(got, names(path), "{method} {path}");
            }
        }
        for (path, route) in ROUTES {
            if matches!(route, Route::OtherEvents | Route::OtherInstance) {
                continue;
            }
            assert!(
                OPERATIONS.iter().any(|(_, p)| p == path),
                "{path} ({route:?}) has no operation in OPERATIONS (nor in the OpenAPI document)"
            );
        }
    }

    #[test]
    fn empty_segments_are_ignored() {
        assert_eq!(normalise("//elements//"), "/elements");
        assert_eq!(normalise("elements/"), "/elements");
        assert_eq!(normalise("/"), "");
        assert_eq!(route_of("//elements//"), Some(Route::Elements));
        // `/elements/api-v2elements` has the segment `elements` after the prefix.
        assert_eq!(route_of("elements"), Some(Route::Elements));
        assert_eq!(
            route_of("/instances//7///events/"),
            Some(Route::InstanceEvents)
        );
        assert_eq!(route_of(""), None);
        assert_eq!(route_of("/"), None);
    }

    #[test]
    fn elements_and_webhooks_are_routed() {
        assert_eq!(
            at("/elements/ecwid"),
            Some((Route::Element, vec![("key".into(), "ecwid".into())]))
        );
        assert_eq!(route_of("/elements/ecwid/more"), None);
        assert_eq!(route_of("/events"), Some(Route::OtherEvents));
        assert_eq!(
            at("/events/ecwid"),
            Some((Route::Webhook, vec![("key".into(), "ecwid".into())]))
        );
        assert_eq!(
            at("/events/ecwid/NDcxMTk2"),
            Some((
                Route::Webhook,
                vec![
                    ("key".into(), "ecwid".into()),
                    ("suffix".into(), "NDcxMTk2".into())
                ]
            ))
        );
        assert_eq!(route_of("/events/ecwid/a/b"), Some(Route::OtherEvents));
        assert_eq!(route_of("/events/ecwid/a/b/c"), Some(Route::OtherEvents));
        for rest in ["/nothing", "/elementsx", "/Elements", "/metrics"] {
            assert_eq!(route_of(rest), None, "{rest}");
        }
    }

    #[test]
    fn instance_routes_and_the_rest_under_an_instance() {
        assert_eq!(route_of("/instances"), Some(Route::Instances));
        assert_eq!(
            at("/instances/7"),
            Some((Route::Instance, vec![("id".into(), "7".into())]))
        );
        assert_eq!(
            route_of("/instances/7/configuration"),
            Some(Route::Configuration)
        );
        assert_eq!(
            at("/instances/7/configuration/3"),
            Some((
                Route::ConfigurationEntry,
                vec![("id".into(), "7".into()), ("cid".into(), "3".into())]
            ))
        );
        assert_eq!(route_of("/instances/7/events"), Some(Route::InstanceEvents));
        // `poll` is an event id to the router; `POST` on it polls.
        assert_eq!(
            at("/instances/7/events/poll"),
            Some((
                Route::InstanceEvent,
                vec![("id".into(), "7".into()), ("eid".into(), "poll".into())]
            ))
        );
        assert_eq!(
            route_of("/instances/7/events/e1/deliveries"),
            Some(Route::Deliveries)
        );
        assert_eq!(
            route_of("/instances/7/events/e1/redeliver"),
            Some(Route::Redeliver)
        );
        assert_eq!(
            at("/instances/7/dead-letters/redeliver"),
            Some((Route::RedeliverDeadLetters, vec![("id".into(), "7".into())]))
        );
        assert_eq!(
            at("/instances/7/stats"),
            Some((Route::Stats, vec![("id".into(), "7".into())]))
        );
        assert_eq!(route_of("/dead-letters"), Some(Route::DeadLetters));
        assert_eq!(route_of("//dead-letters/"), Some(Route::DeadLetters));
        assert_eq!(route_of("/dead-letters/x"), None);
        // Anything else under an instance is still authorized and looked up before the 404.
        for rest in [
            "/instances/anything/unknown",
            "/instances/7/configuration/3/x",
            "/instances/7/events/e1/other",
            "/instances/7/events/e1/deliveries/x",
            "/instances/7/Events",
            "/instances/7/dead-letters",
            "/instances/7/dead-letters/redeliver/x",
            "/instances/7/stats/x",
        ] {
            assert_eq!(route_of(rest), Some(Route::OtherInstance), "{rest}");
        }
    }
}
